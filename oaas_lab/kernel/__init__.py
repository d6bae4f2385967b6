"""The types every layer speaks: results of checks, the ``Lab`` seam, command results, waiting.

Nothing here imports anything else of oaas-lab, so every other package may import it.
"""
