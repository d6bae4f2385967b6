"""The component catalogue: every service of the lab as data.

One entry per component says where it runs (node role), how many members it has by default,
what it needs before it can start, which ports it serves, which readiness check proves it works,
and whether it keeps a quorum. Both labs read this catalogue: the ``local`` lab to start
namespaces in order, the ``k8s`` lab to render and apply manifests in order. The deploy order is
computed from ``depends_on`` (``waves``), never written by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from oaas_lab.errors import QuorumError, UserError


class Role(StrEnum):
    """The node role a component's pods are placed on (a node label)."""

    CONTROLLER = "controller"
    COMPUTE = "compute"
    NETWORK = "network"


class Tier(StrEnum):
    """Infrastructure daemons versus OpenStack services."""

    INFRA = "infra"
    OPENSTACK = "openstack"


@dataclass(frozen=True)
class Component:
    """One service of the lab.

    ``quorum`` components (etcd, galera, rabbitmq) need a majority of members to accept writes,
    so they only run odd member counts. ``readiness`` names the check in ``oaas_lab.checks``
    that proves the component works, not only that a port is open.
    """

    name: str
    role: Role
    replicas: int
    ports: Mapping[str, int]
    readiness: str
    tier: Tier = Tier.INFRA
    depends_on: tuple[str, ...] = ()
    quorum: bool = False
    min_replicas: int = 1
    description: str = ""
    ready_timeout: float = 180.0
    extra: Mapping[str, str] = field(default_factory=dict)


CATALOGUE: tuple[Component, ...] = (
    Component(
        name="etcd",
        role=Role.CONTROLLER,
        replicas=3,
        ports={"client": 2379, "peer": 2380},
        readiness="etcd",
        quorum=True,
        description="cluster state and discovery",
        ready_timeout=60.0,
    ),
    Component(
        name="galera",
        role=Role.CONTROLLER,
        replicas=3,
        ports={"mysql": 3306, "replication": 4567, "ist": 4568, "sst": 4444},
        readiness="galera",
        quorum=True,
        description="MariaDB + Galera, synchronous multi-master SQL",
        ready_timeout=180.0,
    ),
    Component(
        name="haproxy",
        role=Role.CONTROLLER,
        replicas=2,
        ports={"mysql": 3306, "stats": 9000},
        readiness="haproxy",
        depends_on=("galera",),
        description="one Galera writer, the other members as backups; the API front",
        ready_timeout=60.0,
    ),
    Component(
        name="rabbitmq",
        role=Role.CONTROLLER,
        replicas=3,
        ports={"amqp": 5672, "epmd": 4369, "dist": 25672},
        readiness="rabbitmq",
        quorum=True,
        description="message bus with quorum queues",
        ready_timeout=180.0,
    ),
    Component(
        name="memcached",
        role=Role.CONTROLLER,
        replicas=3,
        ports={"memcache": 11211},
        readiness="memcached",
        description="token and session caches",
        ready_timeout=30.0,
    ),
    # The OpenStack tier: quorum-free, so any count of 1 or more is allowed. The APIs run two
    # members (one can be lost); the RPC-driven daemons one each on a small lab.
    Component(
        name="keystone", role=Role.CONTROLLER, replicas=2, ports={"api": 5000},
        readiness="keystone", tier=Tier.OPENSTACK, depends_on=("haproxy", "memcached"),
        description="identity; fernet keys shared by every member", ready_timeout=600.0,
    ),
    Component(
        name="glance", role=Role.CONTROLLER, replicas=2, ports={"api": 9292},
        readiness="glance", tier=Tier.OPENSTACK, depends_on=("keystone",),
        description="images", ready_timeout=600.0,
    ),
    Component(
        name="placement", role=Role.CONTROLLER, replicas=2, ports={"api": 8778},
        readiness="placement", tier=Tier.OPENSTACK, depends_on=("keystone",),
        description="resource inventories", ready_timeout=600.0,
    ),
    Component(
        name="nova-api", role=Role.CONTROLLER, replicas=2, ports={"api": 8774},
        readiness="nova-api", tier=Tier.OPENSTACK,
        depends_on=("keystone", "placement", "rabbitmq"),
        description="compute API; owns nova's databases and cells", ready_timeout=900.0,
    ),
    Component(
        name="nova-conductor", role=Role.CONTROLLER, replicas=1, ports={},
        readiness="nova-conductor", tier=Tier.OPENSTACK, depends_on=("nova-api",),
        description="compute database proxy", ready_timeout=600.0,
    ),
    Component(
        name="nova-scheduler", role=Role.CONTROLLER, replicas=1, ports={},
        readiness="nova-scheduler", tier=Tier.OPENSTACK, depends_on=("nova-api",),
        description="compute placement decisions", ready_timeout=600.0,
    ),
    Component(
        name="nova-novncproxy", role=Role.CONTROLLER, replicas=1, ports={"novnc": 6080},
        readiness="nova-novncproxy", tier=Tier.OPENSTACK, depends_on=("nova-api",),
        description="remote console proxy", ready_timeout=600.0,
    ),
    Component(
        name="nova-compute", role=Role.COMPUTE, replicas=1, ports={"vnc": 5900},
        readiness="nova-compute", tier=Tier.OPENSTACK,
        depends_on=("nova-conductor", "placement"),
        description="libvirt/QEMU hypervisor, one per compute node", ready_timeout=900.0,
    ),
    Component(
        name="neutron-server", role=Role.NETWORK, replicas=1, ports={"api": 9696},
        readiness="neutron-server", tier=Tier.OPENSTACK, depends_on=("keystone", "rabbitmq"),
        description="networking API (the seed kept network nodes dedicated)",
        ready_timeout=900.0,
    ),
    Component(
        name="horizon", role=Role.CONTROLLER, replicas=2, ports={"http": 8080},
        readiness="horizon", tier=Tier.OPENSTACK, depends_on=("keystone", "memcached"),
        description="dashboard; shared SECRET_KEY and session cache", ready_timeout=600.0,
    ),
)


def by_name(components: Iterable[Component] = CATALOGUE) -> dict[str, Component]:
    """The catalogue as a name -> component mapping."""
    return {c.name: c for c in components}


def check_replicas(component: Component, replicas: int) -> None:
    """Refuse a member count the component cannot run with.

    Raises ``QuorumError`` for an even count of a quorum component: with an even count a
    network split can leave no majority on either side, and it tolerates no more failures
    than the odd count below it.
    """
    if replicas < component.min_replicas:
        raise QuorumError(
            f"{component.name}: {replicas} replicas is below the minimum of "
            f"{component.min_replicas}",
            hint=f"choose {component.min_replicas} or more",
        )
    if component.quorum and replicas % 2 == 0:
        raise QuorumError(
            f"{component.name}: {replicas} replicas is even; a quorum component needs an odd "
            f"count to keep a majority",
            hint=f"choose {replicas - 1} or {replicas + 1}",
        )


def waves(components: Iterable[Component]) -> list[list[Component]]:
    """Deploy order: lists of components whose dependencies are all in earlier lists.

    Components in one wave do not depend on each other and can start in parallel.
    A dependency outside ``components`` is taken as already satisfied (it may belong to a tier
    that is not being deployed). Raises ``UserError`` on a dependency cycle.
    """
    pending = {c.name: c for c in components}
    done: set[str] = set()
    order: list[list[Component]] = []
    while pending:
        ready = [
            c for c in pending.values()
            if all(d in done or d not in pending for d in c.depends_on)
        ]
        if not ready:
            raise UserError(
                f"dependency cycle among components: {', '.join(sorted(pending))}",
                hint="fix depends_on in the component catalogue",
            )
        ready.sort(key=lambda c: c.name)
        order.append(ready)
        for c in ready:
            done.add(c.name)
            del pending[c.name]
    return order


def critical_path(
    components: Iterable[Component], ready_seconds: Mapping[str, float]
) -> tuple[float, list[str]]:
    """The longest chain of dependencies weighted by each component's own ready time.

    This is the lower bound on a cold start when independent components start in parallel;
    the benchmark prints it next to the measured ``up`` time.
    """
    comps = {c.name: c for c in components}
    best: dict[str, tuple[float, list[str]]] = {}

    def longest(name: str) -> tuple[float, list[str]]:
        if name not in best:
            deps = [longest(d) for d in comps[name].depends_on if d in comps]
            base = max(deps, key=lambda item: item[0], default=(0.0, []))
            best[name] = (base[0] + ready_seconds.get(name, 0.0), [*base[1], name])
        return best[name]

    return max((longest(n) for n in comps), key=lambda item: item[0], default=(0.0, []))
