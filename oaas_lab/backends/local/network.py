"""The lab network: one bridge per lab, one network namespace per pod, joined by a veth pair.

Every name carries the lab name, so labs with different names and subnets live side by side:

* bridge ``<lab>-br`` holding the host's ``.1``;
* namespace ``<lab>-<pod>`` (e.g. ``oaas-galera-0``);
* host end of the veth ``<lab>-v<octet>`` (the last octet of the pod's IP), ``eth0`` inside;
* a compute pod's second veth, its provider link: host end ``<lab>-vp<octet>`` on the same
  bridge, ``eth1`` inside with no address (the pod's Open vSwitch bridges it to its VMs), so a
  flat provider network is the lab bridge's own segment.

Linux interface names hold at most 15 characters; with a lab name of at most 6 the longest is
``<6>-vp254`` (12). A pod has no default route and resolves through its own hosts file with
``nameserver 127.0.0.1``, so no lookup or packet ever leaves the host: a lookup that cannot be
answered from the hosts file fails at once instead of stalling on an unreachable resolver.
"""

from __future__ import annotations

import ipaddress
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from oaas_lab.adapters import iproute, shell

IFNAME_MAX = 15
POD_IFNAME = "eth0"
PROVIDER_IFNAME = "eth1"
"""The pod end of the provider veth, inside the pod's namespace."""
NETNS_ETC = Path("/etc/netns")
NETNS_RUN = Path("/run/netns")


@dataclass(frozen=True)
class Naming:
    """Names of the lab's network objects."""

    lab: str

    @property
    def bridge(self) -> str:
        """The lab bridge."""
        return f"{self.lab}-br"

    def netns(self, pod: str) -> str:
        """The network namespace of ``pod``."""
        return f"{self.lab}-{pod}"

    def veth(self, ip: str) -> str:
        """The host end of the pod's veth pair, named after the last octet of its IP."""
        return f"{self.lab}-v{ip.rsplit('.', 1)[1]}"

    def veth_peer(self, ip: str) -> str:
        """The pod end of the veth before it moves into the namespace and becomes ``eth0``."""
        return f"{self.lab}-p{ip.rsplit('.', 1)[1]}"

    def provider_veth(self, ip: str) -> str:
        """The host end of the pod's provider veth (``<lab>-v`` like every host end)."""
        return f"{self.lab}-vp{ip.rsplit('.', 1)[1]}"

    def provider_veth_peer(self, ip: str) -> str:
        """The pod end of the provider veth before it moves into the namespace."""
        return f"{self.lab}-pp{ip.rsplit('.', 1)[1]}"

    def owns_netns(self, netns: str, components: Iterable[str]) -> bool:
        """True for a namespace name this lab creates (``<lab>-<component>-<ordinal>``)."""
        for component in components:
            prefix = f"{self.lab}-{component}-"
            if netns.startswith(prefix) and netns[len(prefix):].isdigit():
                return True
        return False


def hosts_file(pods: Mapping[str, str], services: Mapping[str, str]) -> str:
    """The ``/etc/hosts`` of every pod: localhost, each pod by name, each service name.

    ``pods`` maps pod names to IPs, ``services`` service names (e.g. ``galera``) to the IP that
    serves them (for galera the HAProxy in front of it).
    """
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{ip}\t{name}" for name, ip in sorted(pods.items(), key=lambda kv: _ip_key(kv[1]))]
    lines += [f"{ip}\t{name}" for name, ip in sorted(services.items())]
    return "\n".join(lines) + "\n"


RESOLV_CONF = (
    "# lab pods resolve through their hosts file only; nothing listens here, so a name that\n"
    "# is not in the hosts file fails at once instead of waiting for an unreachable resolver\n"
    "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"
)


def _ip_key(ip: str) -> int:
    return int(ipaddress.IPv4Address(ip))


def ensure_bridge(naming: Naming, subnet: str) -> bool:
    """Create the lab bridge with the host's ``.1`` if it is missing; true when it changed."""
    bridge = naming.bridge
    net = ipaddress.IPv4Network(subnet)
    if iproute.link_exists(bridge):
        return False
    shell.run(["ip", "link", "add", "name", bridge, "type", "bridge"])
    shell.run(["ip", "addr", "add", f"{net.network_address + 1}/{net.prefixlen}", "dev", bridge])
    shell.run(["ip", "link", "set", bridge, "up"])
    return True


def write_netns_files(naming: Naming, pod: str, hosts: str) -> None:
    """Write the pod's hosts and resolver files (in place, so running daemons see changes).

    ``ip netns exec`` bind-mounts these files over ``/etc/hosts`` and ``/etc/resolv.conf``;
    a bind mount pins the inode, so the file is rewritten rather than replaced.
    """
    etc = NETNS_ETC / naming.netns(pod)
    etc.mkdir(parents=True, exist_ok=True)
    for name, text in (("hosts", hosts), ("resolv.conf", RESOLV_CONF)):
        path = etc / name
        with open(path, "a+", encoding="utf-8") as handle:
            handle.seek(0)
            if handle.read() == text:
                continue
            handle.seek(0)
            handle.truncate()
            handle.write(text)


def _veth_into(naming: Naming, netns: str, host_end: str, pod_end: str, ifname: str) -> None:
    """A veth pair: ``ifname`` (up, no address yet) inside ``netns``, the host end up on the lab
    bridge."""
    for name in (host_end, pod_end):
        if len(name) > IFNAME_MAX:  # pragma: no cover - guaranteed by the name patterns
            raise ValueError(f"interface name {name!r} is longer than {IFNAME_MAX}")
    # A half-failed earlier run may have left the host end behind.
    if iproute.link_exists(host_end):
        shell.run(["ip", "link", "del", host_end])
    shell.run(["ip", "link", "add", host_end, "type", "veth", "peer", "name", pod_end])
    shell.run(["ip", "link", "set", pod_end, "netns", netns])
    shell.run(["ip", "-n", netns, "link", "set", pod_end, "name", ifname])
    shell.run(["ip", "-n", netns, "link", "set", ifname, "up"])
    shell.run(["ip", "link", "set", host_end, "master", naming.bridge])
    shell.run(["ip", "link", "set", host_end, "up"])


def create_pod(naming: Naming, pod: str, ip: str, subnet: str) -> bool:
    """Create the pod's namespace and its veth into the lab bridge; true when it changed."""
    netns = naming.netns(pod)
    prefix = ipaddress.IPv4Network(subnet).prefixlen
    if netns in iproute.netns_list():
        return False
    shell.run(["ip", "netns", "add", netns])
    _veth_into(naming, netns, naming.veth(ip), naming.veth_peer(ip), POD_IFNAME)
    shell.run(["ip", "-n", netns, "addr", "add", f"{ip}/{prefix}", "dev", POD_IFNAME])
    shell.run(["ip", "-n", netns, "link", "set", "lo", "up"])
    # No default route on purpose: nothing in a pod may reach beyond the lab subnet.
    return True


def delete_pod(naming: Naming, pod: str, ip: str | None) -> None:
    """Remove the pod's namespace, veth and ``/etc/netns`` files (its processes must be gone)."""
    netns = naming.netns(pod)
    if netns in iproute.netns_list():
        shell.run(["ip", "netns", "del", netns], check=False)
    if ip is not None and iproute.link_exists(naming.veth(ip)):
        shell.run(["ip", "link", "del", naming.veth(ip)], check=False)
    if ip is not None:
        delete_provider_link(naming, ip)
    shutil.rmtree(NETNS_ETC / netns, ignore_errors=True)


def create_provider_link(
    naming: Naming, pod: str, ip: str, ifname: str = PROVIDER_IFNAME
) -> bool:
    """Give ``pod`` a second veth into the lab bridge, ``ifname`` inside; true when it changed.

    The pod end has no address: it is a port of the pod's Open vSwitch ``br-provider``, which
    makes the bridge's segment the provider network of the pod's VMs. The pod must exist
    (``create_pod``); its ``ip`` names the host end. Both ends keep the default offloads and
    MTU: the switch copes with them (see ``daemons/openvswitch.py``).
    """
    netns = naming.netns(pod)
    if shell.run(["ip", "-n", netns, "link", "show", "dev", ifname], check=False).ok:
        return False
    _veth_into(naming, netns, naming.provider_veth(ip), naming.provider_veth_peer(ip), ifname)
    return True


def delete_provider_link(naming: Naming, ip: str) -> None:
    """Remove the provider veth of the pod at ``ip`` (deleting one end removes both)."""
    if iproute.link_exists(naming.provider_veth(ip)):
        shell.run(["ip", "link", "del", naming.provider_veth(ip)], check=False)


def delete_bridge(naming: Naming) -> None:
    """Remove the lab bridge (and with it the host ends still attached)."""
    if iproute.link_exists(naming.bridge):
        shell.run(["ip", "link", "del", naming.bridge], check=False)


def lab_links(naming: Naming) -> list[str]:
    """Every host interface whose name belongs to this lab (bridge and veth host ends).

    ``<lab>-v`` matches the host ends of both veths of a pod, ``<lab>-v<octet>`` and the
    provider link's ``<lab>-vp<octet>``.
    """
    return [name for name in iproute.link_names()
            if name == naming.bridge or name.startswith(f"{naming.lab}-v")]


def lab_mounts(naming: Naming) -> list[str]:
    """Mount points left by this lab's namespaces (``/run/netns/<lab>-*``)."""
    return iproute.mounts_under(str(NETNS_RUN / f"{naming.lab}-"))


def subnet_owners(subnet: str, own_bridge: str) -> list[str]:
    """Host interfaces other than ``own_bridge`` holding an address inside ``subnet``.

    Two labs on one subnet would fight over the routes; ``up`` refuses before touching anything.
    """
    net = ipaddress.IPv4Network(subnet)
    done = shell.run(["ip", "-o", "-4", "addr", "show"], check=False)
    owners = []
    for line in done.stdout.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[2] != "inet":
            continue
        name = fields[1]
        address = ipaddress.IPv4Interface(fields[3])
        if name != own_bridge and address.network.overlaps(net):
            owners.append(name)
    return owners
