"""The control plane on ``k8s-cp``: Debian's etcd, kube-apiserver, controller manager, scheduler.

They run in the control-plane node's network namespace, beside its kubelet. etcd listens on
that namespace's loopback only (nothing else can reach it, so it needs no TLS); the API
server on the node's address, where the other nodes and the host reach it. Pure: argument
vectors only.
"""

from __future__ import annotations

from pathlib import Path

from oaas_lab.cluster.pki import CA, SERVICE_ACCOUNT, Pki
from oaas_lab.cluster.topology import API_PORT, CLUSTER_DOMAIN, Topology

ETCD_CLIENT = "http://127.0.0.1:2379"
ETCD_PEER = "http://127.0.0.1:2380"
CONTROLLER_MANAGER_PORT = 10257
SCHEDULER_PORT = 10259

DAEMONS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
"""In start order; each waits for the one before it to answer."""


def etcd_argv(data_dir: Path) -> list[str]:
    """A one-member etcd for the cluster's state."""
    return [
        "etcd", "--name=k8s-cp", f"--data-dir={data_dir}",
        f"--listen-client-urls={ETCD_CLIENT}", f"--advertise-client-urls={ETCD_CLIENT}",
        f"--listen-peer-urls={ETCD_PEER}", f"--initial-advertise-peer-urls={ETCD_PEER}",
        f"--initial-cluster=k8s-cp={ETCD_PEER}", "--initial-cluster-state=new",
        "--snapshot-count=10000", "--quota-backend-bytes=2147483648", "--log-level=warn",
    ]


def apiserver_argv(topology: Topology, pki: Pki, bin_dir: Path) -> list[str]:
    """kube-apiserver: client certificates and service-account tokens, Node + RBAC."""
    cp = topology.control_plane
    return [
        str(bin_dir / "kube-apiserver"),
        f"--advertise-address={cp.ip}", "--bind-address=0.0.0.0", f"--secure-port={API_PORT}",
        f"--etcd-servers={ETCD_CLIENT}",
        f"--service-cluster-ip-range={topology.service_cidr}",
        f"--client-ca-file={pki.cert(CA)}",
        f"--tls-cert-file={pki.cert('apiserver')}",
        f"--tls-private-key-file={pki.key('apiserver')}",
        f"--kubelet-client-certificate={pki.cert('apiserver-kubelet-client')}",
        f"--kubelet-client-key={pki.key('apiserver-kubelet-client')}",
        "--kubelet-preferred-address-types=InternalIP",
        f"--service-account-issuer=https://kubernetes.default.svc.{CLUSTER_DOMAIN}",
        f"--service-account-key-file={pki.sa_public}",
        f"--service-account-signing-key-file={pki.key(SERVICE_ACCOUNT)}",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        # nova-compute and the network agents need privileged pods
        "--allow-privileged=true",
        "--profiling=false",
        "--v=1",
    ]


def _component_kubeconfig(pki: Pki, stem: str) -> list[str]:
    path = pki.kubeconfig(stem)
    return [f"--kubeconfig={path}", f"--authentication-kubeconfig={path}",
            f"--authorization-kubeconfig={path}"]


def controller_manager_argv(topology: Topology, pki: Pki, bin_dir: Path,
                            plugin_dir: Path) -> list[str]:
    """kube-controller-manager: signs with the cluster CA; node subnets are fixed by the
    topology, so it allocates none. ``plugin_dir`` keeps its FlexVolume directory out of
    ``/usr/libexec``."""
    return [
        str(bin_dir / "kube-controller-manager"),
        *_component_kubeconfig(pki, "controller-manager"),
        "--bind-address=127.0.0.1", f"--secure-port={CONTROLLER_MANAGER_PORT}",
        f"--cluster-signing-cert-file={pki.cert(CA)}",
        f"--cluster-signing-key-file={pki.key(CA)}",
        f"--root-ca-file={pki.cert(CA)}",
        f"--service-account-private-key-file={pki.key(SERVICE_ACCOUNT)}",
        "--use-service-account-credentials=true",
        "--allocate-node-cidrs=false",
        # Claims get a directory on this host (cluster/storage.py): every node is on it.
        "--enable-hostpath-provisioner=true",
        f"--flex-volume-plugin-dir={plugin_dir}",
        f"--service-cluster-ip-range={topology.service_cidr}",
        f"--cluster-name={topology.name}",
        "--leader-elect=false",
        "--profiling=false",
        "--v=1",
    ]


def scheduler_argv(pki: Pki, bin_dir: Path) -> list[str]:
    """kube-scheduler."""
    return [
        str(bin_dir / "kube-scheduler"), *_component_kubeconfig(pki, "scheduler"),
        "--bind-address=127.0.0.1", f"--secure-port={SCHEDULER_PORT}",
        "--leader-elect=false", "--profiling=false", "--v=1",
    ]
