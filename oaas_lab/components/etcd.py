"""etcd: the lab's cluster state and discovery store, a raft quorum.

Observed on each member's client port: its health, its id, its leader and its member list.
Full membership: every member healthy, all naming one leader among them, all listing the same
members, which are the lab's pods. The probe puts keys (a put returns once a quorum committed
it); the leader lookup says which member leads now.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from oaas_lab.adapters import etcd
from oaas_lab.components.observing import (
    WRITE_TIMEOUT,
    as_evidence,
    run_id,
    running_addresses,
    unreachable,
    verdict,
)
from oaas_lab.components.spec import Component, K8sNeeds, Role, Spec, Writing, majority
from oaas_lab.errors import LabError
from oaas_lab.kernel.command import CommandResult
from oaas_lab.kernel.lab import Lab
from oaas_lab.kernel.results import CheckResult, failed, passed
from oaas_lab.kernel.wait import until
from oaas_lab.secrets import SecretStore

# Raft timing for members on one host: a follower calls an election after ELECTION_MS without
# a heartbeat, so a killed leader costs about that much (etcd's 100/1000 made it ~2 s).
# Heartbeats stay at the default: each one costs every follower CPU on an idle lab.
HEARTBEAT_MS = 100
ELECTION_MS = 500
PUT_TIMEOUT = min(WRITE_TIMEOUT, ELECTION_MS / 1000)
"""A put forwarded to a leader that just died is not failed by etcd: it waits out the server's
request timeout (seconds). The probe gives up after one election timeout and puts again, so
the gap it measures is the election's, not its own patience."""


ENTRY = Component(
    memory_mib=48,
    name="etcd",
    role=Role.CONTROLLER,
    replicas=3,
    ports={"client": 2379, "peer": 2380},
    quorum=True,
    description="cluster state and discovery",
    ready_timeout=60.0,
)
CLIENT_PORT = ENTRY.ports["client"]
PEER_PORT = ENTRY.ports["peer"]

_ORDINAL = re.compile(r"-(\d+)$")
REMOVE_TIMEOUT = 60.0
"""How long a scale-in waits for etcd to accept a member's removal: etcd refuses one while a
remaining member has been connected for less than its health interval."""


@dataclass(frozen=True)
class EtcdView:
    """What one etcd member reports: its health, its id, its leader and its member list."""

    healthy: bool
    member_id: str
    leader: str
    members: tuple[str, ...]


# --- judges -----------------------------------------------------------------------------------


def membership(observed: Mapping[str, EtcdView | str], expected: int) -> CheckResult:
    """Every member is healthy, all name the same single leader, all list the same
    ``expected`` members, and those are the members the lab placed."""
    name = "etcd membership"
    problems = [f"{pod}: unreachable ({why})" for pod, why in unreachable(observed).items()]
    views = {pod: v for pod, v in observed.items() if isinstance(v, EtcdView)}
    problems.extend(f"{pod}: not healthy" for pod, v in sorted(views.items()) if not v.healthy)
    leaders = {v.leader for v in views.values()}
    lists = {tuple(sorted(v.members)) for v in views.values()}
    ids = {v.member_id for v in views.values()}
    if len(leaders) > 1:
        problems.append(f"members name different leaders ({', '.join(sorted(leaders))})")
    elif leaders and (leaders & {"", "0"}):
        problems.append("no leader")
    elif leaders and not leaders <= ids:
        problems.append(f"leader {leaders.pop()} is not one of the answering members")
    if len(lists) > 1:
        problems.append("members disagree on the member list")
    for members in lists:
        if len(members) != expected:
            problems.append(f"member list has {len(members)} members, expected {expected}")
            break
        if len(observed) == expected and list(members) != sorted(observed):
            problems.append(f"member list {list(members)} != the lab's {sorted(observed)}")
            break
    if len(observed) != expected:
        problems.append(f"{len(observed)} members known to the lab, expected {expected}")
    return verdict(name, problems, hint="read the etcd member logs",
                   ok=f"{expected} members healthy, one leader", members=as_evidence(observed))


def quorum(observed: Mapping[str, EtcdView | str], total: int) -> CheckResult:
    """A majority of ``total`` members are healthy (they have a leader and serve reads)."""
    name = "etcd quorum"
    healthy = sorted(p for p, v in observed.items() if isinstance(v, EtcdView) and v.healthy)
    if len(healthy) < majority(total):
        return failed(
            name, f"{len(healthy)} of {total} members healthy (need {majority(total)})",
            hint="etcd needs a majority of members to elect a leader",
        )
    return passed(name, f"{len(healthy)} of {total} members healthy")


# --- observation ------------------------------------------------------------------------------


def observe(lab: Lab, store: SecretStore) -> dict[str, EtcdView | str]:
    """Each member's health, status and member list (etcd has no password in the lab)."""
    observed: dict[str, EtcdView | str] = {}
    for pod in lab.members(ENTRY.name):
        try:
            endpoint = f"{lab.address(pod.name)}:{CLIENT_PORT}"
            status = etcd.status(endpoint)
            members = etcd.members(endpoint)
            healthy = etcd.health(endpoint)
        except (etcd.Error, etcd.EtcdError, ValueError, LabError) as exc:
            observed[pod.name] = f"{type(exc).__name__}: {exc}"
            continue
        observed[pod.name] = EtcdView(
            healthy=healthy,
            member_id=str(status.get("header", {}).get("member_id", "")),
            leader=str(status.get("leader", "")),
            members=tuple(sorted(str(m.get("name") or m.get("ID")) for m in members)),
        )
    return observed


def leader(lab: Lab, store: SecretStore) -> str:
    """The member that is the raft leader now."""
    for pod, view in observe(lab, store).items():
        if isinstance(view, EtcdView) and view.leader and view.leader == view.member_id:
            return pod
    raise LabError("no etcd member reports itself as leader",
                   hint="check the etcd membership first (oaas-lab status)")


# --- the writer -------------------------------------------------------------------------------


class EtcdPuts:
    """etcd puts of sequence numbers; on a failure the next put goes to the next member.

    A put returns once a quorum committed it, so a returned put is acknowledged.
    """

    def __init__(self, endpoints: Sequence[str], run: str | None = None) -> None:
        if not endpoints:
            raise ValueError("EtcdPuts needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.run = run or run_id()
        self.name = "etcd-put"
        self._current = 0

    @property
    def prefix(self) -> str:
        return f"/oaas-probe/{self.run}/"

    def prepare(self) -> None:
        """Nothing to create: keys live under the run's own prefix."""

    def write(self, seq: int) -> None:
        endpoint = self.endpoints[self._current % len(self.endpoints)]
        try:
            etcd.put(endpoint, f"{self.prefix}{seq:08d}", str(seq), timeout=PUT_TIMEOUT)
        except Exception:
            self._current += 1
            raise

    def read_back(self) -> set[int]:
        """Keys under the prefix, read (linearizably) from the first member that answers."""
        errors: list[str] = []
        for endpoint in self.endpoints:
            try:
                found = etcd.get_prefix(endpoint, self.prefix)
            except (etcd.Error, etcd.EtcdError) as exc:
                errors.append(f"{endpoint}: {exc}")
                continue
            return {int(v) for v in found.values()}
        raise etcd.EtcdError("no etcd member answered the read-back: " + "; ".join(errors))

    def close(self) -> None:
        """Nothing is kept open between puts."""


def writer(lab: Lab, store: SecretStore, how: Writing) -> EtcdPuts:
    """Puts to every member's client endpoint (running ones first), or to ``how.hosts``."""
    addresses = list(how.hosts) if how.hosts else running_addresses(lab, ENTRY.name)
    return EtcdPuts([f"{a}:{CLIENT_PORT}" for a in addresses], run=how.run)


# --- Kubernetes scale-in ------------------------------------------------------------------------


def remove_members(lab: Lab, keep: int, before: int, peer_domain: str) -> None:
    """Members leave by ``member remove`` before their pods go, or the cluster keeps counting
    them towards its quorum."""
    out = lab.exec("etcd-0", ["etcdctl", "member", "list"])
    if not out.ok:
        raise LabError(f"etcd member list failed: {out.stderr.strip()}")
    for line in out.stdout.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) >= 3 and (m := _ORDINAL.search(fields[2])) and int(m.group(1)) >= keep:
            remove_member(lambda args: lab.exec("etcd-0", ["etcdctl", *args]), fields[0],
                          fields[2], hint="")


def remove_member(etcdctl: Callable[[Sequence[str]], CommandResult], member: str, name: str,
                  hint: str) -> None:
    """``etcdctl member remove`` (``etcdctl`` runs it against a remaining member), retried for
    up to ``REMOVE_TIMEOUT`` while etcd refuses it; a ``LabError`` saying why after that."""

    def removed() -> CheckResult:
        done = etcdctl(["member", "remove", member])
        if done.ok or "member not found" in done.stderr:
            return passed("etcd", f"{name} removed")
        # "unhealthy cluster": the leader refuses a reconfiguration until every remaining
        # member has been active for a while (etcd's strict reconfiguration check), which
        # members restarted moments ago are not yet; that passes by itself.
        return failed("etcd", done.stderr.strip()[-200:])

    result, _ = until(removed, timeout=REMOVE_TIMEOUT, interval=1.0)
    if not result.ok:
        raise LabError(
            f"etcd refused to remove {name} for {REMOVE_TIMEOUT:.0f}s: {result.detail}",
            hint="wait until `oaas-lab status` shows etcd healthy, then scale again" + hint)


SPEC: Spec[EtcdView] = Spec(
    entry=ENTRY,
    observe=observe,
    ready=membership,
    quorum=quorum,
    writer=writer,
    local="etcd:EtcdDriver",
    k8s=K8sNeeds(template="etcd.yaml.j2", storage="2Gi",
                 before_scale_in=remove_members),
)
