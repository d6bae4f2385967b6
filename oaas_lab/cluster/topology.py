"""The embedded cluster's shape: its nodes, their addresses, roles, pod subnets and names.

The default is the Vagrant lab's topology: ``k8s-cp`` (control plane, tainted so that only
what tolerates it runs there), ``controller-1..3`` and ``compute-1..2`` (also network nodes).
Node number N takes ``.10+N`` on the nodes' bridge and the pod subnet ``<pod_cidr>.N.0/24``.

Every host-side name carries the cluster name (the lab name), so interfaces and namespaces
are recognisable and a teardown removes exactly what this cluster made.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from oaas_lab.config import ClusterSettings
from oaas_lab.errors import UserError

ROLE_LABEL = "node-role.oaas-lab.io"
"""The role labels the manifests select on (as the Vagrantfile sets them)."""
CONTROL_PLANE_ROLE = "node-role.kubernetes.io/control-plane"
API_PORT = 6443
CLUSTER_DOMAIN = "cluster.local"


@dataclass(frozen=True)
class Node:
    """One node: a network + mount namespace with its own containerd, kubelet and kube-proxy."""

    name: str
    number: int
    ip: str
    pod_cidr: str
    roles: tuple[str, ...]
    control_plane: bool = False

    @property
    def labels(self) -> dict[str, str]:
        """The labels the kubelet registers the node with."""
        return {f"{ROLE_LABEL}/{role}": "true" for role in self.roles}

    @property
    def taints(self) -> list[str]:
        """``--register-with-taints`` of the kubelet."""
        return [f"{CONTROL_PLANE_ROLE}:NoSchedule"] if self.control_plane else []

    @property
    def pod_gateway(self) -> str:
        """The address of the node's pod bridge, the pods' default gateway."""
        return str(ipaddress.IPv4Network(self.pod_cidr).network_address + 1)


@dataclass(frozen=True)
class Topology:
    """The whole cluster: where its nodes and services live."""

    name: str
    subnet: str
    pod_cidr: str
    service_cidr: str
    nodes: tuple[Node, ...]

    @property
    def host_ip(self) -> str:
        """The host's address on the nodes' bridge (``.1``)."""
        return str(ipaddress.IPv4Network(self.subnet).network_address + 1)

    @property
    def prefixlen(self) -> int:
        return ipaddress.IPv4Network(self.subnet).prefixlen

    @property
    def control_plane(self) -> Node:
        """The node that runs etcd and the control-plane daemons."""
        return next(node for node in self.nodes if node.control_plane)

    @property
    def api_server(self) -> str:
        """The API server's URL, as every kubeconfig names it."""
        return f"https://{self.control_plane.ip}:{API_PORT}"

    @property
    def kubernetes_service_ip(self) -> str:
        """The first service address: the ``kubernetes`` Service in ``default``."""
        return str(ipaddress.IPv4Network(self.service_cidr).network_address + 1)

    @property
    def dns_ip(self) -> str:
        """The cluster DNS Service's address (``.10``, as kubeadm chooses it)."""
        return str(ipaddress.IPv4Network(self.service_cidr).network_address + 10)

    @property
    def bridge(self) -> str:
        """The host bridge every node's ``eth0`` hangs on."""
        return f"{self.name}-kbr"

    def netns(self, node: Node) -> str:
        """The node's network namespace."""
        return f"{self.name}-k-{node.name}"

    def veth(self, node: Node) -> str:
        """The host end of the node's veth (at most 15 characters: ``<6>-kv<3>``)."""
        return f"{self.name}-kv{node.ip.rsplit('.', 1)[1]}"

    def veth_peer(self, node: Node) -> str:
        """The node end before it moves into the namespace and becomes ``eth0``."""
        return f"{self.name}-kp{node.ip.rsplit('.', 1)[1]}"

    def cgroup(self, node: Node) -> str:
        """The node's cgroup, parent of everything its kubelet and containers create."""
        return f"oaas-lab-{self.name}-{node.name}"

    def node(self, name: str) -> Node:
        """The node called ``name``."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)


MIN_NODES = 3
MAX_NODES = 19


def split_nodes(total: int) -> tuple[int, int]:
    """``--nodes N``: the control-plane node plus controller and compute nodes in the
    Vagrant lab's proportion (6 -> 3 controller + 2 compute); returns (controllers, computes).
    """
    if not MIN_NODES <= total <= MAX_NODES:
        raise UserError(f"--nodes {total}: a cluster has {MIN_NODES} to {MAX_NODES} nodes",
                        hint="e.g. --nodes 6 (k8s-cp, controller-1..3, compute-1..2)")
    computes = max(1, round((total - 1) * 2 / 5))
    return total - 1 - computes, computes


def plan(name: str, settings: ClusterSettings) -> Topology:
    """The topology of the cluster called ``name`` (the lab name) from its settings."""
    subnet = ipaddress.IPv4Network(settings.subnet)
    pods = ipaddress.IPv4Network(settings.pod_cidr)
    shapes: list[tuple[str, tuple[str, ...], bool]] = [("k8s-cp", (), True)]
    shapes += [(f"controller-{i}", ("controller",), False)
               for i in range(1, settings.controller_nodes + 1)]
    shapes += [(f"compute-{i}", ("compute", "network"), False)
               for i in range(1, settings.compute_nodes + 1)]
    nodes = []
    for number, (node_name, roles, control_plane) in enumerate(shapes):
        pod_subnet = ipaddress.IPv4Network((int(pods.network_address) + (number << 8), 24))
        nodes.append(Node(
            name=node_name, number=number, ip=str(subnet.network_address + 10 + number),
            pod_cidr=str(pod_subnet), roles=roles, control_plane=control_plane,
        ))
    return Topology(name=name, subnet=settings.subnet, pod_cidr=settings.pod_cidr,
                    service_cidr=settings.service_cidr, nodes=tuple(nodes))
