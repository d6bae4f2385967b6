"""HAProxy: one Galera writer with the other members as backups, and the OpenStack API front.

Observed through each proxy: a row written as the application user and read back through the
same proxy. Ready when every proxy returns what was written to it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from oaas_lab.adapters import sql
from oaas_lab.components.observing import as_evidence, unreachable, verdict, why
from oaas_lab.components.spec import Component, K8sNeeds, Role, SecretSpec, Spec
from oaas_lab.credentials import GALERA_APP_DATABASE, GALERA_APP_SECRET, GALERA_APP_USER
from oaas_lab.errors import LabError
from oaas_lab.kernel.lab import Lab
from oaas_lab.kernel.results import CheckResult
from oaas_lab.secrets import SecretStore

ENTRY = Component(
    memory_mib=40,
    name="haproxy",
    role=Role.CONTROLLER,
    replicas=2,
    ports={"mysql": 3306, "stats": 9000},
    depends_on=("galera",),
    description="one Galera writer, the other members as backups; the API front",
    ready_timeout=60.0,
)


@dataclass(frozen=True)
class RoundTrip:
    """A row written through one proxy and what reading it back through the proxy gave."""

    wrote: str
    read: str | None
    backend: str | None = None


def ready(observed: Mapping[str, RoundTrip | str], expected: int) -> CheckResult:
    """Every one of ``expected`` proxies gives back what was written through it."""
    problems = [f"{pod}: {reason}" for pod, reason in unreachable(observed).items()]
    for pod, trip in sorted(observed.items()):
        if isinstance(trip, RoundTrip) and trip.read != trip.wrote:
            problems.append(f"{pod}: wrote {trip.wrote!r} but read {trip.read!r}")
    if len(observed) != expected:
        problems.append(f"{len(observed)} proxies answered, expected {expected}")
    return verdict("haproxy", problems,
                   hint=f"read the haproxy logs and its stats page on port {ENTRY.ports['stats']}",
                   ok=f"write and read through {expected} proxies", proxies=as_evidence(observed))


def observe(lab: Lab, store: SecretStore) -> dict[str, RoundTrip | str]:
    """A row written through each proxy as the application user, read back through it."""
    password = store.get(GALERA_APP_SECRET)
    observed: dict[str, RoundTrip | str] = {}
    for pod in lab.members(ENTRY.name):
        token = f"{pod.name}-{uuid.uuid4().hex[:12]}"
        try:
            with sql.connect(lab.address(pod.name), user=GALERA_APP_USER, password=password,
                             database=GALERA_APP_DATABASE, port=ENTRY.ports["mysql"],
                             timeout=3.0) as conn:
                sql.query(conn, "CREATE TABLE IF NOT EXISTS lab_probe (proxy VARCHAR(64) "
                                "PRIMARY KEY, token VARCHAR(64), at DOUBLE)")
                sql.query(conn, "REPLACE INTO lab_probe VALUES (%s, %s, %s)",
                          (pod.name, token, time.time()))
                rows = sql.query(conn, "SELECT token, @@hostname FROM lab_probe "
                                       "WHERE proxy = %s", (pod.name,))
            observed[pod.name] = RoundTrip(token, rows[0][0] if rows else None,
                                           rows[0][1] if rows else None)
        except (sql.Error, LabError) as exc:
            observed[pod.name] = why(exc)
    return observed


def front_holder(lab: Lab) -> str:
    """The member clients reach at the front's address: the one that has the address on its
    interface (the local lab's keepalived), else the first member (behind a Service, where no
    member holds it, losing the first is the same test)."""
    address = lab.service_address("galera")
    members = [p.name for p in lab.members(ENTRY.name)]
    if not members:
        raise LabError("the lab runs no haproxy member", hint="bring haproxy up first")
    for pod in members:
        shown = lab.exec(pod, ["ip", "-4", "-o", "addr", "show"], timeout=10.0)
        if f" {address}/" in shown.stdout:
            return pod
    return members[0]


SPEC: Spec[RoundTrip] = Spec(
    entry=ENTRY,
    observe=observe,
    ready=ready,
    local="haproxy:HaproxyDriver",
    k8s=K8sNeeds(
        template="haproxy.yaml.j2",
        secrets=(SecretSpec("haproxy-credentials",
                            {"stats-password": ("k8s_haproxy_stats", "password")}),),
    ),
)
