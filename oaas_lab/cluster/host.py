"""What the cluster changes on the host, and how it puts everything back.

Kernel settings: the kubelet insists on a few (it sets them itself, or refuses to start when
told to protect kernel defaults), and six nodes with their pods outgrow the neighbour table
and the inotify limits. ``apply_settings`` changes only what is wrong and returns the old
values; ``restore_settings`` writes them back. Network: one bridge for the nodes, one network
namespace per node with a veth into it, and routes to each node's pod subnet and to the
service range; all of it named after the cluster, all of it removed by ``delete_network``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from oaas_lab.adapters import iproute, shell
from oaas_lab.cluster.topology import Node, Topology
from oaas_lab.errors import UserError

EXACT: dict[str, int] = {
    # What the kubelet's container manager sets at start (pkg/kubelet/cm, setupKernelTunables).
    "vm.overcommit_memory": 1,
    "vm.panic_on_oom": 0,
    "kernel.panic": 10,
    "kernel.panic_on_oops": 1,
    "kernel.keys.root_maxkeys": 1000000,
    "kernel.keys.root_maxbytes": 25000000,
}
AT_LEAST: dict[str, int] = {
    # The neighbour table overflows ("neighbor table overflow", "No buffer space available")
    # at 1024 entries, which ~100 pods across the nodes' bridges reach.
    "net.ipv4.neigh.default.gc_thresh1": 4096,
    "net.ipv4.neigh.default.gc_thresh2": 8192,
    "net.ipv4.neigh.default.gc_thresh3": 16384,
    # One containerd and kubelet per node, each watching files.
    "fs.inotify.max_user_instances": 8192,
    "fs.inotify.max_user_watches": 524288,
}


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def read_setting(key: str) -> int:
    """The current value of a numeric kernel setting."""
    return int(_sysctl_path(key).read_text(encoding="utf-8").split()[0])


def wanted_changes(current: Mapping[str, int]) -> dict[str, int]:
    """Which settings to write, given their ``current`` values (pure)."""
    changes = {key: value for key, value in EXACT.items() if current[key] != value}
    changes |= {key: value for key, value in AT_LEAST.items() if current[key] < value}
    return changes


def apply_settings() -> dict[str, int]:
    """Set what the cluster needs; returns the previous value of each setting changed."""
    current = {key: read_setting(key) for key in (*EXACT, *AT_LEAST)}
    changes = wanted_changes(current)
    for key, value in changes.items():
        _sysctl_path(key).write_text(f"{value}\n", encoding="utf-8")
    return {key: current[key] for key in changes}


def restore_settings(previous: Mapping[str, int]) -> None:
    """Write back the values ``apply_settings`` replaced."""
    for key, value in previous.items():
        _sysctl_path(key).write_text(f"{value}\n", encoding="utf-8")


# -- network ----------------------------------------------------------------------------------

def netns_path(topology: Topology, node: Node) -> str:
    """The bind mount that holds the node's network namespace."""
    return f"/run/netns/{topology.netns(node)}"


def subnet_conflicts(topology: Topology) -> list[str]:
    """Host interfaces other than the cluster's bridge holding an address in one of the
    cluster's ranges: ``up`` refuses rather than fight over them (another lab, a VPN)."""
    ranges = [ipaddress.IPv4Network(net) for net in
              (topology.subnet, topology.pod_cidr, topology.service_cidr)]
    found = []
    done = shell.run(["ip", "-o", "-4", "addr", "show"], check=False)
    for line in done.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] == "inet" and fields[1] != topology.bridge:
            address = ipaddress.IPv4Interface(fields[3])
            if any(address.network.overlaps(net) for net in ranges):
                found.append(f"{fields[1]} has {fields[3]}")
    return found


@dataclass(frozen=True)
class Network:
    """The host side of the cluster's network."""

    topology: Topology

    def create(self) -> None:
        """Bridge, node namespaces, veths, addresses and routes; idempotent."""
        topo = self.topology
        if not iproute.link_exists(topo.bridge):
            shell.run(["ip", "link", "add", "name", topo.bridge, "type", "bridge"])
            shell.run(["ip", "addr", "add", f"{topo.host_ip}/{topo.prefixlen}",
                       "dev", topo.bridge])
            shell.run(["ip", "link", "set", topo.bridge, "up"])
        existing = set(iproute.netns_list())
        for node in topo.nodes:
            if topo.netns(node) not in existing:
                self._create_node(node)
        for node in topo.nodes:
            # The host reaches every pod through the node that holds it, and every Service
            # through the control-plane node's kube-proxy.
            shell.run(["ip", "route", "replace", node.pod_cidr, "via", node.ip,
                       "dev", topo.bridge])
        shell.run(["ip", "route", "replace", topo.service_cidr, "via",
                   topo.control_plane.ip, "dev", topo.bridge])

    def _create_node(self, node: Node) -> None:
        topo = self.topology
        netns, host_end, peer = topo.netns(node), topo.veth(node), topo.veth_peer(node)
        shell.run(["ip", "netns", "add", netns])
        if iproute.link_exists(host_end):  # left by a half-failed earlier run
            shell.run(["ip", "link", "del", host_end])
        shell.run(["ip", "link", "add", host_end, "type", "veth", "peer", "name", peer])
        shell.run(["ip", "link", "set", peer, "netns", netns])
        ns = ["ip", "-n", netns]
        shell.run([*ns, "link", "set", peer, "name", "eth0"])
        shell.run([*ns, "addr", "add", f"{node.ip}/{topo.prefixlen}", "dev", "eth0"])
        shell.run([*ns, "link", "set", "eth0", "up"])
        shell.run([*ns, "link", "set", "lo", "up"])
        shell.run(["ip", "link", "set", host_end, "master", topo.bridge])
        shell.run(["ip", "link", "set", host_end, "up"])
        for other in topo.nodes:
            if other != node:
                shell.run([*ns, "route", "add", other.pod_cidr, "via", other.ip])
        # A node sends Service traffic it makes itself to its own kube-proxy rules; without a
        # route the kernel refuses it before the rules see it. No default route: nothing
        # leaves the cluster's ranges.
        shell.run([*ns, "route", "add", topo.service_cidr, "dev", "eth0"])
        # Forwarding is per namespace: the node routes for its pods, the host does not.
        shell.run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w",
                   "net.ipv4.ip_forward=1"])

    def delete(self) -> None:
        """Remove every namespace, link and route of the cluster (processes must be gone)."""
        topo = self.topology
        existing = set(iproute.netns_list())
        for node in topo.nodes:
            if topo.netns(node) in existing:
                shell.run(["ip", "netns", "del", topo.netns(node)], check=False)
            if iproute.link_exists(topo.veth(node)):
                shell.run(["ip", "link", "del", topo.veth(node)], check=False)
        # Routes through the bridge go with it.
        if iproute.link_exists(topo.bridge):
            shell.run(["ip", "link", "del", topo.bridge], check=False)

    def leftovers(self) -> list[str]:
        """What of the cluster's network still exists (empty after ``delete``)."""
        topo = self.topology
        left = [f"netns {ns}" for ns in iproute.netns_list()
                if ns.startswith(f"{topo.name}-k-")]
        left += [f"link {name}" for name in iproute.link_names()
                 if name == topo.bridge or name.startswith(f"{topo.name}-kv")]
        left += [f"mount {m}" for m in iproute.mounts_under(f"/run/netns/{topo.name}-k-")]
        return left


# -- cgroups ----------------------------------------------------------------------------------

CGROUP_ROOT = Path("/sys/fs/cgroup")


def hierarchies() -> list[Path]:
    """Every mounted cgroup hierarchy (v1 controllers, named ones and the unified one)."""
    found = []
    with open("/proc/self/mounts", encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) > 2 and fields[2] in ("cgroup", "cgroup2"):
                found.append(Path(fields[1]))
    return found


def create_cgroup(name: str) -> None:
    """The node's parent cgroup in every hierarchy; the kubelet requires it to exist.

    A new cpuset cgroup starts with no CPUs and no memory nodes: copy its parent's.
    """
    for root in hierarchies():
        path = root / name
        path.mkdir(exist_ok=True)
        if (root / "cpuset.cpus").is_file():
            for knob in ("cpuset.cpus", "cpuset.mems"):
                if not (path / knob).read_text(encoding="utf-8").strip():
                    (path / knob).write_text((root / knob).read_text(encoding="utf-8"),
                                             encoding="utf-8")


def cgroup_pids(name: str) -> list[int]:
    """Every process in the node's cgroup tree (containers that outlived their shim)."""
    pids: set[int] = set()
    for root in hierarchies():
        top = root / name
        if not top.is_dir():
            continue
        for procs in top.rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                pids |= {int(p) for p in procs.read_text(encoding="utf-8").split()}
    return sorted(pids)


def kill_cgroup(name: str) -> list[int]:
    """SIGKILL every process of the node's cgroup tree; returns the PIDs signalled."""
    pids = cgroup_pids(name)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


def remove_cgroup(name: str) -> list[str]:
    """Remove the node's cgroup tree, deepest first; returns what could not be removed."""
    left = []
    for root in hierarchies():
        top = root / name
        if not top.is_dir():
            continue
        dirs = sorted((p for p in top.rglob("*") if p.is_dir()),
                      key=lambda p: len(p.parts), reverse=True)
        for path in [*dirs, top]:
            try:
                path.rmdir()
            except OSError:
                left.append(str(path))
    return left


def require_tools(tools: Mapping[str, str]) -> None:
    """Refuse up front when a command the cluster runs is missing (tool -> Debian package)."""
    missing = sorted({package for tool, package in tools.items() if shutil.which(tool) is None})
    if missing:
        raise UserError(f"the cluster needs Debian packages that are not installed: "
                        f"{', '.join(missing)}", hint="run scripts/install-deps")
