"""Adapters: the only modules that talk to an outside world.

``shell`` runs subprocesses, ``kube`` talks to the Kubernetes API, ``sql``/``etcd``/``amqp``/
``memcache`` speak the infrastructure protocols, ``rfb`` opens a VM console through nova's
websocket proxy and ``browser`` drives a headless Chromium through the dashboard.
``.importlinter`` keeps it that way.
"""
