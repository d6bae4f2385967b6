"""Reports of a suite run: JUnit XML, Cucumber JSON and the HTML page a person reads first.

``model`` holds what was recorded per scenario, ``html`` renders it, ``plugin`` is the pytest
plugin that collects it during a run and writes the files, and ``evidence`` captures what a
failed step saw (member logs, wsrep and cluster status) with every known secret scrubbed.
"""
