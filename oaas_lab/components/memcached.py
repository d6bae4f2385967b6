"""memcached: the token and session caches. Ready when every member answers ``stats``."""

from __future__ import annotations

from collections.abc import Mapping

from oaas_lab.adapters import memcache
from oaas_lab.components.observing import as_evidence, unreachable, verdict, why
from oaas_lab.components.spec import Component, K8sNeeds, Role, Spec
from oaas_lab.kernel.lab import Lab
from oaas_lab.kernel.results import CheckResult
from oaas_lab.secrets import SecretStore

ENTRY = Component(
    memory_mib=16,
    name="memcached",
    role=Role.CONTROLLER,
    replicas=3,
    ports={"memcache": 11211},
    description="token and session caches",
    ready_timeout=30.0,
)

Stats = Mapping[str, str]


def ready(observed: Mapping[str, Stats | str], expected: int) -> CheckResult:
    """Every one of ``expected`` members answered ``stats``."""
    problems = [f"{pod}: {reason}" for pod, reason in unreachable(observed).items()]
    if len(observed) != expected:
        problems.append(f"{len(observed)} members answered, expected {expected}")
    return verdict(ENTRY.name, problems, hint="read the memcached logs",
                   ok=f"{expected} members answer stats", members=as_evidence(observed))


def observe(lab: Lab, store: SecretStore) -> dict[str, Stats | str]:
    """Each member's uptime and version from ``stats``."""
    observed: dict[str, Stats | str] = {}
    for pod in lab.members(ENTRY.name):
        try:
            stats = memcache.stats(lab.address(pod.name), port=ENTRY.port)
            observed[pod.name] = {"uptime": str(stats.get("uptime")),
                                  "version": str(stats.get("version"))}
        except memcache.Error as exc:  # every exception, an unknown address included
            observed[pod.name] = why(exc)
    return observed


SPEC: Spec[Stats] = Spec(
    entry=ENTRY,
    observe=observe,
    ready=ready,
    local="memcached:MemcachedDriver",
    k8s=K8sNeeds(template="memcached.yaml.j2"),
)
