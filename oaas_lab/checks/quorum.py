"""Membership and quorum checks for etcd, Galera and RabbitMQ.

Each check comes in two halves: ``observe_*`` asks every member what it sees (through the
adapters or ``Lab.exec``) and returns raw observations; a pure function turns those into a
``CheckResult``. The pure half is what the unit tests drive, so every way a cluster can be
wrong (a non-Primary member, a partition, a missing member) is proven to be reported.

An observation of a member is either what it answered or a string saying why it did not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from oaas_lab.adapters import etcd, sql
from oaas_lab.backends.base import Lab
from oaas_lab.checks import CheckResult, failed, passed
from oaas_lab.credentials import (
    GALERA_APP_SECRET as SQL_SECRET,
)
from oaas_lab.credentials import (
    GALERA_APP_USER as SQL_USER,
)
from oaas_lab.secrets import SecretStore

ETCD_PORT = 2379

GaleraObservation = Mapping[str, str] | str
"""A member's ``wsrep_%`` status variables, or why they could not be read."""


def majority(total: int) -> int:
    """The smallest number of members that is more than half of ``total``."""
    return total // 2 + 1


def _unreachable(observed: Mapping[str, object]) -> dict[str, str]:
    return {pod: str(obs) for pod, obs in observed.items() if isinstance(obs, str)}


def _describe(problems: Sequence[str]) -> str:
    return "; ".join(problems)


# --- Galera -----------------------------------------------------------------------------------


def galera_member_problems(status: Mapping[str, str], expected: int) -> list[str]:
    """What is wrong with one member's view of the cluster (empty when nothing is)."""
    problems = []
    if status.get("wsrep_cluster_status") != "Primary":
        problems.append(f"cluster status {status.get('wsrep_cluster_status', '?')} (not Primary)")
    if status.get("wsrep_local_state_comment") != "Synced":
        problems.append(f"state {status.get('wsrep_local_state_comment', '?')} (not Synced)")
    if status.get("wsrep_ready") != "ON":
        problems.append(f"wsrep_ready={status.get('wsrep_ready', '?')}")
    size = status.get("wsrep_cluster_size", "?")
    if size != str(expected):
        problems.append(f"cluster size {size} (expected {expected})")
    return problems


def galera_membership(observed: Mapping[str, GaleraObservation], expected: int) -> CheckResult:
    """Every one of ``expected`` members is Primary, Synced, ready, sees ``expected`` members,
    and all of them share one cluster state UUID."""
    name = "galera membership"
    problems: list[str] = []
    for pod, why in _unreachable(observed).items():
        problems.append(f"{pod}: unreachable ({why})")
    views = {pod: obs for pod, obs in observed.items() if not isinstance(obs, str)}
    for pod, status in sorted(views.items()):
        problems.extend(f"{pod}: {p}" for p in galera_member_problems(status, expected))
    uuids = {status.get("wsrep_cluster_state_uuid", "?") for status in views.values()}
    if len(uuids) > 1:
        problems.append(f"members disagree on the cluster UUID ({', '.join(sorted(uuids))})")
    if len(observed) != expected:
        problems.append(f"{len(observed)} members known to the lab, expected {expected}")
    evidence = {pod: dict(obs) if not isinstance(obs, str) else obs
                for pod, obs in observed.items()}
    if problems:
        return failed(
            name, _describe(problems),
            hint="read the member logs (oaas-lab logs galera-N) and wsrep status", members=evidence,
        )
    return passed(
        name, f"{expected} members Primary and Synced, cluster {uuids.pop()}", members=evidence
    )


def galera_quorum(observed: Mapping[str, GaleraObservation], total: int) -> CheckResult:
    """A majority of ``total`` members answer as one Primary component (some may be down)."""
    name = "galera quorum"
    primary = {
        pod: obs for pod, obs in observed.items()
        if not isinstance(obs, str) and obs.get("wsrep_cluster_status") == "Primary"
    }
    uuids = {obs.get("wsrep_cluster_state_uuid", "?") for obs in primary.values()}
    evidence = {pod: dict(obs) if not isinstance(obs, str) else obs
                for pod, obs in observed.items()}
    if len(primary) < majority(total) or len(uuids) != 1:
        others = sorted(set(observed) - set(primary))
        return failed(
            name,
            f"{len(primary)} of {total} members in a Primary component (need {majority(total)}); "
            f"not Primary or unreachable: {', '.join(others) or 'none'}",
            hint="a majority must be up and connected for Galera to accept writes",
            members=evidence,
        )
    return passed(name, f"{len(primary)} of {total} members Primary", members=evidence)


def galera_non_primary(observed: Mapping[str, GaleraObservation]) -> CheckResult:
    """No reachable member claims to be Primary (what a lost majority must look like)."""
    name = "galera without quorum"
    primary = sorted(
        pod for pod, obs in observed.items()
        if not isinstance(obs, str) and obs.get("wsrep_cluster_status") == "Primary"
    )
    if primary:
        return failed(
            name, f"still Primary without a majority: {', '.join(primary)}",
            hint="a minority that stays Primary risks split brain: check pc.* provider options",
        )
    return passed(name, "no reachable member is Primary")


# --- etcd -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EtcdView:
    """What one etcd member reports: its health, its id, its leader and its member list."""

    healthy: bool
    member_id: str
    leader: str
    members: tuple[str, ...]


def etcd_membership(observed: Mapping[str, EtcdView | str], expected: int) -> CheckResult:
    """Every member is healthy, all name the same single leader, all list the same
    ``expected`` members."""
    name = "etcd membership"
    problems = [f"{pod}: unreachable ({why})" for pod, why in _unreachable(observed).items()]
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
    if len(observed) != expected:
        problems.append(f"{len(observed)} members known to the lab, expected {expected}")
    evidence = {pod: v.__dict__ if isinstance(v, EtcdView) else v for pod, v in observed.items()}
    if problems:
        return failed(name, _describe(problems), hint="read the etcd member logs",
                      members=evidence)
    return passed(name, f"{expected} members healthy, one leader", members=evidence)


def etcd_quorum(observed: Mapping[str, EtcdView | str], total: int) -> CheckResult:
    """A majority of ``total`` members are healthy (they have a leader and serve reads)."""
    name = "etcd quorum"
    healthy = sorted(p for p, v in observed.items() if isinstance(v, EtcdView) and v.healthy)
    if len(healthy) < majority(total):
        return failed(
            name, f"{len(healthy)} of {total} members healthy (need {majority(total)})",
            hint="etcd needs a majority of members to elect a leader",
        )
    return passed(name, f"{len(healthy)} of {total} members healthy")


# --- RabbitMQ ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RabbitView:
    """One node's ``rabbitmqctl cluster_status``: known nodes, running nodes, partitions."""

    nodes: tuple[str, ...]
    running: tuple[str, ...]
    partitions: tuple[str, ...]
    alarms: tuple[str, ...] = ()


def parse_rabbit_status(text: str) -> RabbitView:
    """Parse ``rabbitmqctl cluster_status --formatter json``; raises ``ValueError``."""
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"cluster_status is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("cluster_status is not a JSON object")
    nodes = data.get("disk_nodes", []) + data.get("ram_nodes", [])
    partitions = data.get("partitions") or {}
    split = sorted(
        f"{node} cannot see {', '.join(peers)}" for node, peers in partitions.items() if peers
    ) if isinstance(partitions, dict) else [str(p) for p in partitions]
    alarms = [json.dumps(a, sort_keys=True) for a in data.get("alarms") or []]
    return RabbitView(
        nodes=tuple(sorted(nodes)),
        running=tuple(sorted(data.get("running_nodes", []))),
        partitions=tuple(split),
        alarms=tuple(alarms),
    )


def rabbitmq_membership(observed: Mapping[str, RabbitView | str], expected: int) -> CheckResult:
    """Every node answers, knows ``expected`` nodes, sees all of them running, and reports
    no partition."""
    name = "rabbitmq membership"
    problems = [f"{pod}: unreachable ({why})" for pod, why in _unreachable(observed).items()]
    views = {pod: v for pod, v in observed.items() if isinstance(v, RabbitView)}
    for pod, v in sorted(views.items()):
        if len(v.nodes) != expected:
            problems.append(f"{pod}: knows {len(v.nodes)} nodes, expected {expected}")
        stopped = sorted(set(v.nodes) - set(v.running))
        if stopped:
            problems.append(f"{pod}: nodes not running: {', '.join(stopped)}")
        if v.partitions:
            problems.append(f"{pod}: partition: {'; '.join(v.partitions)}")
        if v.alarms:
            problems.append(f"{pod}: alarms: {', '.join(v.alarms)}")
    if len({v.nodes for v in views.values()}) > 1:
        problems.append("nodes disagree on the cluster's members")
    if len(observed) != expected:
        problems.append(f"{len(observed)} members known to the lab, expected {expected}")
    evidence = {pod: v.__dict__ if isinstance(v, RabbitView) else v
                for pod, v in observed.items()}
    if problems:
        return failed(name, _describe(problems), hint="read the rabbitmq member logs",
                      members=evidence)
    return passed(name, f"{expected} nodes running, no partition", members=evidence)


def rabbitmq_quorum(observed: Mapping[str, RabbitView | str], total: int) -> CheckResult:
    """A majority of ``total`` nodes run and see each other without a partition."""
    name = "rabbitmq quorum"
    views = [v for v in observed.values() if isinstance(v, RabbitView) and not v.partitions]
    best = max((len(v.running) for v in views), default=0)
    if best < majority(total):
        return failed(
            name, f"at most {best} of {total} nodes running together (need {majority(total)})",
            hint="quorum queues need a majority of nodes",
        )
    return passed(name, f"{best} of {total} nodes running together")


# --- observations -----------------------------------------------------------------------------


def observe_galera(lab: Lab, store: SecretStore) -> dict[str, GaleraObservation]:
    """Each Galera member's ``wsrep_%`` status, read directly on the member."""
    password = store.get(SQL_SECRET)
    observed: dict[str, GaleraObservation] = {}
    for pod in lab.members("galera"):
        try:
            with sql.connect(
                lab.address(pod.name), user=SQL_USER, password=password, timeout=3.0
            ) as conn:
                observed[pod.name] = sql.status(conn)
        except sql.Error as exc:
            observed[pod.name] = f"{type(exc).__name__}: {exc}"
    return observed


def observe_etcd(lab: Lab) -> dict[str, EtcdView | str]:
    """Each etcd member's health, status and member list."""
    observed: dict[str, EtcdView | str] = {}
    for pod in lab.members("etcd"):
        endpoint = f"{lab.address(pod.name)}:{ETCD_PORT}"
        try:
            status = etcd.status(endpoint)
            members = etcd.members(endpoint)
            healthy = etcd.health(endpoint)
        except (etcd.Error, etcd.EtcdError, ValueError) as exc:
            observed[pod.name] = f"{type(exc).__name__}: {exc}"
            continue
        observed[pod.name] = EtcdView(
            healthy=healthy,
            member_id=str(status.get("header", {}).get("member_id", "")),
            leader=str(status.get("leader", "")),
            members=tuple(sorted(str(m.get("name") or m.get("ID")) for m in members)),
        )
    return observed


def observe_rabbitmq(lab: Lab) -> dict[str, RabbitView | str]:
    """Each RabbitMQ node's cluster status, as ``rabbitmqctl`` in its pod reports it."""
    observed: dict[str, RabbitView | str] = {}
    for pod in lab.members("rabbitmq"):
        try:
            done = lab.exec(
                pod.name, ["rabbitmqctl", "cluster_status", "--formatter", "json"], timeout=30.0
            )
        except Exception as exc:  # a pod that cannot even run a command is an observation
            observed[pod.name] = f"{type(exc).__name__}: {exc}"
            continue
        if not done.ok:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            observed[pod.name] = f"rabbitmqctl exited {done.returncode}: {tail[0]}"
            continue
        try:
            observed[pod.name] = parse_rabbit_status(done.stdout)
        except ValueError as exc:
            observed[pod.name] = str(exc)
    return observed


def membership(lab: Lab, store: SecretStore, component: str) -> CheckResult:
    """Full membership of a quorum component: every member the lab placed is in and healthy."""
    expected = len(lab.members(component))
    if component == "galera":
        return galera_membership(observe_galera(lab, store), expected)
    if component == "etcd":
        return etcd_membership(observe_etcd(lab), expected)
    if component == "rabbitmq":
        return rabbitmq_membership(observe_rabbitmq(lab), expected)
    raise ValueError(f"{component} is not a quorum component")


def quorum(lab: Lab, store: SecretStore, component: str) -> CheckResult:
    """A majority of the component's members work together (some may be down)."""
    total = len(lab.members(component))
    if component == "galera":
        return galera_quorum(observe_galera(lab, store), total)
    if component == "etcd":
        return etcd_quorum(observe_etcd(lab), total)
    if component == "rabbitmq":
        return rabbitmq_quorum(observe_rabbitmq(lab), total)
    raise ValueError(f"{component} is not a quorum component")
