"""The ``local`` lab: pods are network namespaces on a lab bridge of this host.

``lab`` is the ``Lab`` implementation; ``network`` builds the bridge, namespaces, veths, hosts and
resolver files; ``supervisor`` runs one supervisord per lab that restarts crashed daemons (the
local lab's kubelet); ``pods`` holds the pod model and the persisted lab state; ``daemons``
renders each infrastructure daemon's configuration and command line.
"""
