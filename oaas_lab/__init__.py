"""oaas-lab: a test-first lab and release-qualification harness for OpenStack on Kubernetes.

The package is layered (see ``.importlinter``):

* ``oaas_lab.adapters`` -- the only modules that talk to an outside world
  (subprocesses, the Kubernetes API, MySQL, etcd, AMQP, memcached).
* ``oaas_lab.config``, ``oaas_lab.catalogue``, ``oaas_lab.releases``, ``oaas_lab.secrets`` --
  data: what a lab is made of and how it is configured.
* ``oaas_lab.backends`` -- the ``Lab`` seam and its implementations (``local``, ``k8s``).
* ``oaas_lab.checks`` / ``oaas_lab.probes`` -- health checks returning results, fault probes.
* ``oaas_lab.cli`` -- the only place that prints or configures logging.
"""

__version__ = "0.1.0"
