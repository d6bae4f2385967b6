"""What a component is: its catalogue entry, how it is observed and judged, and what each
backend needs to run it.

Every component module under ``oaas_lab.components`` exports one ``SPEC``. The entry says where
the component runs (node role), how many members it has by default, what it needs before it can
start and which ports it serves (written here once). The observation asks every member what it
sees; the pure judges decide readiness (full membership), quorum and a lost quorum from that one
observation, so ``up``, ``status`` and every scenario step read the same words. The writer is
the client a probe uses; ``local`` and ``k8s`` say what each backend needs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar

from oaas_lab.errors import QuorumError, UserError
from oaas_lab.kernel.lab import Lab
from oaas_lab.kernel.results import CheckResult, failed
from oaas_lab.kernel.target import Target
from oaas_lab.openstack.config import Apis, Infra, LabSecrets
from oaas_lab.secrets import SecretStore


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
    """One service of the lab, as the catalogue lists it.

    ``quorum`` components (etcd, galera, rabbitmq) need a majority of members to accept writes,
    so they only run odd member counts. ``front`` names the component whose first member clients
    go through on the local lab (HAProxy for the database and the OpenStack APIs).
    """

    name: str
    role: Role
    replicas: int
    ports: Mapping[str, int]
    tier: Tier = Tier.INFRA
    depends_on: tuple[str, ...] = ()
    quorum: bool = False
    min_replicas: int = 1
    description: str = ""
    ready_timeout: float = 180.0
    poll_interval: float = 1.0
    """Seconds between two readiness observations while ``up`` waits for the component."""
    front: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)
    memory_mib: int = 256
    """Resident memory one member takes on the local lab (its processes' RSS, measured with
    ``benchmarks/bench_up.py`` and rounded up): what a scale-out must find free."""

    @property
    def port(self) -> int:
        """The main port (the first listed)."""
        return next(iter(self.ports.values()))


@dataclass(frozen=True)
class Writing:
    """How a probe's writer is made: to the service address, or to ``hosts`` directly.

    ``run`` reuses another probe's identity (its rows, keys or queue) so that writes to a
    surviving member land where the main probe's did; ``prepare`` creates the table or queue.
    """

    hosts: Sequence[str] | None = None
    run: str | None = None
    prepare: bool = True


@dataclass(frozen=True)
class SecretSpec:
    """A Kubernetes Secret the deployer generates.

    ``values`` maps a Secret key to ``(store name, generator kind)`` of ``SecretStore``;
    ``files`` maps a Secret key to a text built from those values (``{key}`` placeholders).
    """

    name: str
    values: Mapping[str, tuple[str, str]]
    files: Mapping[str, str] = field(default_factory=dict)


ConfigFiles = Callable[[Infra, Apis, LabSecrets], dict[str, str]]


@dataclass(frozen=True)
class OsWorkload:
    """What an OpenStack service's pods run on Kubernetes and what they serve."""

    project: str
    image: str
    command: tuple[str, ...]
    probe_path: str = ""
    """HTTP path that answers without a token; empty: a worker, checked by its AMQP link."""
    files: tuple[str, ...] = ()
    """Keys of the project's config Secret mounted at ``/etc/<project>/<key>``."""
    per_node: bool = False
    """One pod per node of its role (a DaemonSet), e.g. the hypervisor."""
    config: ConfigFiles | None = None
    """The project's configuration files (name -> text; they hold secrets), rendered by the
    component that owns the project's config Secret."""


@dataclass(frozen=True)
class Bootstrap:
    """A project's one-off Job, run before the owning component's workload starts: its
    databases, schema, and keystone registration."""

    project: str
    image: str
    sync: tuple[str, ...]
    register: str = ""
    """Keystone name of the service to register (user, service, endpoints); empty: none."""


ScaleHook = Callable[[Lab, int, int, str], None]
"""``hook(lab, keep, before, peer_domain)``: what a Kubernetes scale-in must do besides
changing the replica count (``peer_domain`` is the headless Service's DNS suffix)."""


@dataclass(frozen=True)
class K8sNeeds:
    """What the Kubernetes backend renders for a component."""

    template: str
    image: str = ""
    """The image recipe it runs when a release does not name one for it (the releases pin
    every image of the components they were qualified with)."""
    storage: str = "1Gi"
    service: str = ""
    """The Service clients use, when it is another component's (Galera is reached by HAProxy)."""
    secrets: tuple[SecretSpec, ...] = ()
    workload: OsWorkload | None = None
    bootstrap: Bootstrap | None = None
    identity: bool = False
    """Renders the tier's shared credentials and keystone's fernet keys."""
    before_scale_in: ScaleHook | None = None
    after_scale_in: ScaleHook | None = None


V = TypeVar("V")


@dataclass(frozen=True)
class Spec(Generic[V]):
    """One component: its entry, its observation and judges, its writer, its backends' needs.

    ``observe`` returns, per pod, what the member answered (a typed view ``V``) or a string
    saying why it did not. ``ready`` decides full membership from that observation and the
    number of members the lab placed; ``quorum`` whether a majority works; ``lost_quorum``
    whether a minority correctly refuses to act as the cluster.
    """

    entry: Component
    observe: Callable[[Lab, SecretStore], dict[str, V | str]]
    ready: Callable[[Mapping[str, V | str], int], CheckResult]
    quorum: Callable[[Mapping[str, V | str], int], CheckResult] | None = None
    lost_quorum: Callable[[Mapping[str, V | str]], CheckResult] | None = None
    writer: Callable[[Lab, SecretStore, Writing], Target] | None = None
    local: str = ""
    """The local daemon driver, ``module:attribute`` under ``oaas_lab.backends.local.daemons``."""
    k8s: K8sNeeds | None = None

    @property
    def name(self) -> str:
        return self.entry.name

    def check(self, lab: Lab, store: SecretStore) -> CheckResult:
        """Observe every member and judge full membership (what ``up`` and ``status`` show)."""
        expected = len(lab.members(self.name))
        if expected == 0:
            return failed(self.name, "no members", hint="run `oaas-lab up`")
        return self.ready(self.observe(lab, store), expected)

    def check_quorum(self, lab: Lab, store: SecretStore,
                     without: Collection[str] = ()) -> CheckResult:
        """A majority of the members work together (some may be down). Members in ``without``
        (the ones a fault hit) do not count, even if they are back already."""
        if self.quorum is None:
            raise UserError(f"{self.name} is not a quorum component",
                            hint="quorum components are etcd, galera and rabbitmq")
        observed = {pod: v for pod, v in self.observe(lab, store).items() if pod not in without}
        return self.quorum(observed, len(lab.members(self.name)))

    def check_lost_quorum(self, lab: Lab, store: SecretStore) -> CheckResult:
        """No reachable member acts as the cluster without a majority."""
        if self.lost_quorum is None:
            raise UserError(f"{self.name} has no lost-quorum judge",
                            hint="only galera reports a non-Primary component")
        return self.lost_quorum(self.observe(lab, store))


def majority(total: int) -> int:
    """The smallest number of members that is more than half of ``total``."""
    return total // 2 + 1


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
                hint="fix depends_on in the component modules (oaas_lab/components/)",
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
