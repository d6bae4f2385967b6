"""What every lab's cloud holds once it is up: the guest images, flavors and the network.

The lab bootstraps these (``oaas-lab up``) and the scenarios use them by name. The provider
network is the lab bridge's own segment: a flat network on ``physnet1`` whose subnet is the
lab's subnet, with addresses for servers from ``.200`` on (pods take theirs from ``.10`` up).
There is no DHCP agent: a server's address is fixed by its port, and the guest takes the same
address from its kernel command line (the ``oaas-guest-net`` image), so both agree.
"""

from __future__ import annotations

import ipaddress

GUEST_IMAGE = "oaas-guest"
"""The bootable guest without an address (boots with or without a NIC)."""
NETWORK_GUEST_IMAGE = "oaas-guest-net"
"""The same guest with ``network_guest_address`` on ``eth0``."""
FLAVORS = (("oaas.tiny", 256, 1), ("oaas.small", 512, 1))
"""(name, RAM MiB, disk GiB): the guest needs 128 MiB under TCG; ``small`` leaves headroom."""
FLAVOR = "oaas.tiny"
NETWORK = "oaas-lab"
PHYSNET = "physnet1"
POOL = (200, 249)
"""First and last host number of the servers' addresses in the lab subnet."""


def lab_subnet(any_pod_ip: str) -> ipaddress.IPv4Network:
    """The lab's /24 from the address of any of its pods."""
    return ipaddress.IPv4Network(f"{any_pod_ip}/24", strict=False)


def pool(subnet: ipaddress.IPv4Network) -> tuple[str, str]:
    """The allocation pool of the provider subnet."""
    base = subnet.network_address
    return str(base + POOL[0]), str(base + POOL[1])


def network_guest_address(subnet: ipaddress.IPv4Network) -> str:
    """The address the network guest image configures (the pool's first)."""
    return pool(subnet)[0]
