"""Readiness checks of the infrastructure tier: each proves the service works, not a port.

Every check gathers raw observations from the members through ``oaas_lab.adapters`` (or
``lab.exec`` for the RabbitMQ CLI), then hands them to a pure ``judge_*`` function that decides.
The judges are unit-tested without daemons; the observations end up in ``evidence``.

* etcd: every member healthy, one leader agreed by all, member list == configured members;
* galera: every member Primary + Synced, cluster size == replicas, one cluster UUID;
* haproxy: a write and a read of it through every HAProxy, as the application user;
* rabbitmq: every node running, cluster members == configured, no partitions, AMQP login;
* memcached: every member answers ``stats``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from oaas_lab.adapters import amqp, etcd, memcache, sql
from oaas_lab.backends.base import Lab
from oaas_lab.checks import CheckResult, failed, passed
from oaas_lab.credentials import (
    GALERA_APP_DATABASE,
    GALERA_APP_SECRET,
    GALERA_APP_USER,
    GALERA_ROOT_SECRET,
    RABBITMQ_SECRET,
    RABBITMQ_USER,
)
from oaas_lab.secrets import SecretStore

Observation = dict[str, Any]


# --- pure judges -----------------------------------------------------------------------------

def judge_etcd(expected: Sequence[str], seen: Mapping[str, Observation]) -> CheckResult:
    """Decide etcd from per-member ``{"healthy", "leader", "member_id", "members"|"error"}``."""
    problems = []
    leaders = set()
    for name in expected:
        obs = seen.get(name, {"error": "not observed"})
        if "error" in obs:
            problems.append(f"{name}: {obs['error']}")
            continue
        if not obs.get("healthy"):
            problems.append(f"{name}: not healthy (no leader or no quorum)")
        leaders.add(str(obs.get("leader")))
        listed = sorted(str(m) for m in obs.get("members", []))
        if listed != sorted(expected):
            problems.append(f"{name}: member list {listed} != configured {sorted(expected)}")
    if len(leaders) > 1:
        problems.append(f"members disagree on the leader: {sorted(leaders)}")
    if leaders & {"0", "None"}:
        problems.append("a member sees no leader")
    if problems:
        return failed("etcd", "; ".join(problems), hint="read the etcd member logs",
                      members=dict(seen))
    return passed("etcd", f"{len(expected)} members healthy, one leader", members=dict(seen))


def judge_galera(expected: Sequence[str], seen: Mapping[str, Observation]) -> CheckResult:
    """Decide Galera from per-member ``SHOW STATUS LIKE 'wsrep_%'`` dicts (or ``error``)."""
    problems = []
    uuids = set()
    size = str(len(expected))
    for name in expected:
        obs = seen.get(name, {"error": "not observed"})
        if "error" in obs:
            problems.append(f"{name}: {obs['error']}")
            continue
        status = obs.get("wsrep_cluster_status")
        state = obs.get("wsrep_local_state")
        if status != "Primary":
            problems.append(f"{name}: cluster status {status} (not Primary)")
        if state != "4":
            problems.append(f"{name}: local state {obs.get('wsrep_local_state_comment', state)}"
                            " (not Synced)")
        if obs.get("wsrep_cluster_size") != size:
            problems.append(f"{name}: cluster size {obs.get('wsrep_cluster_size')} != {size}")
        uuids.add(obs.get("wsrep_cluster_state_uuid"))
    if len(uuids) > 1:
        problems.append(f"members are in different clusters: {sorted(map(str, uuids))}")
    keys = ("wsrep_cluster_status", "wsrep_local_state_comment", "wsrep_cluster_size",
            "wsrep_cluster_state_uuid", "wsrep_last_committed", "error")
    evidence = {n: {k: v for k, v in o.items() if k in keys} for n, o in seen.items()}
    if problems:
        return failed("galera", "; ".join(problems), hint="read the galera member logs",
                      members=evidence)
    return passed("galera", f"{size} members Primary and Synced in one cluster",
                  members=evidence)


def judge_haproxy(expected: Sequence[str], seen: Mapping[str, Observation]) -> CheckResult:
    """Decide HAProxy from per-proxy ``{"wrote": token, "read": value}`` (or ``error``)."""
    problems = []
    for name in expected:
        obs = seen.get(name, {"error": "not observed"})
        if "error" in obs:
            problems.append(f"{name}: {obs['error']}")
        elif obs.get("read") != obs.get("wrote"):
            problems.append(f"{name}: wrote {obs.get('wrote')!r} but read {obs.get('read')!r}")
    if problems:
        return failed("haproxy", "; ".join(problems),
                      hint="read the haproxy logs and its stats page on port 9000",
                      proxies=dict(seen))
    return passed("haproxy", f"write and read through {len(expected)} proxies",
                  proxies=dict(seen))


def judge_rabbitmq(
    expected: Sequence[str], cluster: Observation, amqp_seen: Mapping[str, Observation]
) -> CheckResult:
    """Decide RabbitMQ from one node's ``cluster_status`` and an AMQP login per node.

    ``expected`` are Erlang node names (``rabbit@rabbitmq-0``); ``amqp_seen`` is keyed by pod.
    """
    problems = []
    if "error" in cluster:
        problems.append(str(cluster["error"]))
    else:
        members = sorted(set(cluster.get("disk_nodes", [])) | set(cluster.get("ram_nodes", [])))
        running = sorted(cluster.get("running_nodes", []))
        if members != sorted(expected):
            problems.append(f"cluster members {members} != configured {sorted(expected)}")
        missing = sorted(set(expected) - set(running))
        if missing:
            problems.append(f"not running: {missing}")
        partitions = cluster.get("partitions") or {}
        if partitions:
            problems.append(f"network partitions: {partitions}")
    for pod, obs in sorted(amqp_seen.items()):
        if "error" in obs:
            problems.append(f"{pod}: AMQP: {obs['error']}")
    evidence = {"cluster_status": {k: cluster.get(k) for k in
                                   ("running_nodes", "disk_nodes", "partitions", "error")
                                   if k in cluster},
                "amqp": dict(amqp_seen)}
    if problems:
        return failed("rabbitmq", "; ".join(problems), hint="read the rabbitmq node logs",
                      **evidence)
    return passed("rabbitmq", f"{len(expected)} nodes running in one cluster, no partitions",
                  **evidence)


def judge_memcached(expected: Sequence[str], seen: Mapping[str, Observation]) -> CheckResult:
    """Decide memcached from per-member ``stats`` (or ``error``)."""
    problems = [f"{n}: {seen.get(n, {'error': 'not observed'}).get('error')}"
                for n in expected if "error" in seen.get(n, {"error": ""})]
    if problems:
        return failed("memcached", "; ".join(problems), hint="read the memcached logs",
                      members=dict(seen))
    return passed("memcached", f"{len(expected)} members answer stats", members=dict(seen))


# --- observations ----------------------------------------------------------------------------

def _error(exc: BaseException) -> Observation:
    return {"error": f"{type(exc).__name__}: {exc}".strip()[:300]}


def check_etcd(lab: Lab, secrets: SecretStore) -> CheckResult:
    """Every etcd member healthy, one leader, member list == configured."""
    pods = lab.members("etcd")
    seen: dict[str, Observation] = {}
    for pod in pods:
        endpoint = f"{lab.address(pod.name)}:2379"
        try:
            status = etcd.status(endpoint)
            seen[pod.name] = {
                "healthy": etcd.health(endpoint),
                "leader": str(status.get("leader", "0")),
                "member_id": str(status.get("header", {}).get("member_id", "")),
                "members": [m.get("name", "") for m in etcd.members(endpoint)],
            }
        except (etcd.Error, etcd.EtcdError, ValueError) as exc:
            seen[pod.name] = _error(exc)
    return judge_etcd([p.name for p in pods], seen)


def check_galera(lab: Lab, secrets: SecretStore) -> CheckResult:
    """Every Galera member Primary and Synced, in one cluster of the configured size."""
    pods = lab.members("galera")
    root = secrets.get(GALERA_ROOT_SECRET)
    seen: dict[str, Observation] = {}
    for pod in pods:
        try:
            with sql.connect(lab.address(pod.name), user="root", password=root,
                             timeout=3.0) as conn:
                seen[pod.name] = dict(sql.status(conn))
        except sql.Error as exc:
            seen[pod.name] = _error(exc)
    return judge_galera([p.name for p in pods], seen)


def check_haproxy(lab: Lab, secrets: SecretStore) -> CheckResult:
    """A row written through each HAProxy reads back through it (as the application user)."""
    pods = lab.members("haproxy")
    password = secrets.get(GALERA_APP_SECRET)
    seen: dict[str, Observation] = {}
    for pod in pods:
        token = f"{pod.name}-{uuid.uuid4().hex[:12]}"
        try:
            with sql.connect(lab.address(pod.name), user=GALERA_APP_USER, password=password,
                             database=GALERA_APP_DATABASE, timeout=3.0) as conn:
                sql.query(conn, "CREATE TABLE IF NOT EXISTS lab_probe (proxy VARCHAR(64) "
                                "PRIMARY KEY, token VARCHAR(64), at DOUBLE)")
                sql.query(conn, "REPLACE INTO lab_probe VALUES (%s, %s, %s)",
                          (pod.name, token, time.time()))
                rows = sql.query(conn, "SELECT token, @@hostname FROM lab_probe "
                                       "WHERE proxy = %s", (pod.name,))
            seen[pod.name] = {"wrote": token, "read": rows[0][0] if rows else None,
                              "backend": rows[0][1] if rows else None}
        except sql.Error as exc:
            seen[pod.name] = _error(exc)
    return judge_haproxy([p.name for p in pods], seen)


def check_rabbitmq(lab: Lab, secrets: SecretStore) -> CheckResult:
    """Every node running in one cluster without partitions; AMQP login works on each."""
    pods = lab.members("rabbitmq")
    expected = [f"rabbit@{p.name}" for p in pods]
    cluster: Observation = {"error": "no node answered cluster_status"}
    for pod in pods:
        done = lab.exec(pod.name, ["rabbitmqctl", "-q", "cluster_status", "--formatter", "json"],
                        timeout=30.0)
        if done.ok and "{" in done.stdout:
            try:
                cluster = json.loads(done.stdout[done.stdout.find("{"):])
                break
            except ValueError as exc:
                cluster = _error(exc)
        else:
            cluster = {"error": f"{pod.name}: {done.stderr.strip()[-200:]}"}
    password = secrets.get(RABBITMQ_SECRET)
    amqp_seen: dict[str, Observation] = {}
    for pod in pods:
        try:
            with amqp.channel(lab.address(pod.name), user=RABBITMQ_USER, password=password,
                              timeout=3.0):
                amqp_seen[pod.name] = {"login": "ok"}
        except (amqp.Error, OSError) as exc:
            amqp_seen[pod.name] = _error(exc)
    return judge_rabbitmq(expected, cluster, amqp_seen)


def check_memcached(lab: Lab, secrets: SecretStore) -> CheckResult:
    """Every memcached member answers ``stats``."""
    pods = lab.members("memcached")
    seen: dict[str, Observation] = {}
    for pod in pods:
        try:
            stats = memcache.stats(lab.address(pod.name))
            seen[pod.name] = {"uptime": stats.get("uptime"), "version": stats.get("version")}
        except memcache.Error as exc:
            seen[pod.name] = _error(exc)
    return judge_memcached([p.name for p in pods], seen)


CHECKS: dict[str, Callable[[Lab, SecretStore], CheckResult]] = {
    "etcd": check_etcd,
    "galera": check_galera,
    "haproxy": check_haproxy,
    "rabbitmq": check_rabbitmq,
    "memcached": check_memcached,
}
"""Readiness check by the catalogue's ``readiness`` name."""
