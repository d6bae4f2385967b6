"""Adapters: the only modules that talk to an outside world.

``shell`` runs subprocesses, ``kube`` talks to the Kubernetes API, ``sql``/``etcd``/``amqp``/
``memcache`` speak the infrastructure protocols. ``.importlinter`` keeps it that way.
"""
