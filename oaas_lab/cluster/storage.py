"""Volumes for the workloads: the default StorageClass of the embedded cluster.

Every node of the embedded cluster is on this host, so a directory on the host is storage any
node can mount: the controller manager's own host-path provisioner (``--enable-hostpath-
provisioner``, the one Kubernetes' ``hack/local-up-cluster.sh`` uses) creates one per claim
under ``PV_ROOT`` and deletes it with the claim. A restarted or rescheduled member finds its
data again, as it would on a network volume. The directories are created ``0750 root``: pods
that run as another user take ownership of their volume in an init container.
"""

from __future__ import annotations

from typing import Any

NAME = "oaas-hostpath"
PROVISIONER = "kubernetes.io/host-path"
PV_ROOT = "/tmp/hostpath_pv"  # noqa: S108 -- fixed by Kubernetes, not chosen here
"""Where the provisioner puts volumes: fixed in Kubernetes, and only below ``/tmp`` it deletes."""


def objects() -> list[dict[str, Any]]:
    """The StorageClass, marked default so that claims naming none get it."""
    return [{
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": NAME,
            "labels": {"app.kubernetes.io/managed-by": "oaas-lab"},
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }]
