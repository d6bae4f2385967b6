"""oaas-lab: a test-first lab and release-qualification harness for OpenStack on Kubernetes.

The package is layered (see ``.importlinter`` and ``docs/architecture.md``), top to bottom:
``cli`` (the only place that prints), ``reports``, ``probes``, ``backends`` (``local`` and
``k8s``), ``cluster`` (the embedded Kubernetes), ``components`` (one module per component: its
entry, observation, judges, writer and what each backend needs), ``openstack``, ``images``,
``adapters`` (the only modules that talk to an outside world) and ``kernel`` (CheckResult, the
``Lab`` seam, CommandResult, waiting). ``config``, ``releases``, ``secrets`` and ``credentials``
are the data every layer reads.
"""

__version__ = "0.1.0"
