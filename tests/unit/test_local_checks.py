"""The infra readiness judges decide from raw observations (no daemons needed)."""

from __future__ import annotations

from oaas_lab.checks.infra import (
    judge_etcd,
    judge_galera,
    judge_haproxy,
    judge_memcached,
    judge_rabbitmq,
)

ETCD = ["etcd-0", "etcd-1", "etcd-2"]
GALERA = ["galera-0", "galera-1", "galera-2"]


def etcd_obs(leader="7", members=ETCD, healthy=True):
    return {"healthy": healthy, "leader": leader, "member_id": "1", "members": list(members)}


def wsrep(status="Primary", state="4", size="3", uuid="u1"):
    return {"wsrep_cluster_status": status, "wsrep_local_state": state,
            "wsrep_local_state_comment": "Synced" if state == "4" else "Joining",
            "wsrep_cluster_size": size, "wsrep_cluster_state_uuid": uuid}


def test_etcd_healthy_cluster_passes_with_evidence():
    result = judge_etcd(ETCD, {n: etcd_obs() for n in ETCD})
    assert result.ok
    assert set(result.evidence["members"]) == set(ETCD)


def test_etcd_fails_on_leader_disagreement_unreachable_member_or_wrong_members():
    seen = {n: etcd_obs() for n in ETCD}
    seen["etcd-2"] = etcd_obs(leader="9")
    assert "disagree" in judge_etcd(ETCD, seen).detail
    seen = {n: etcd_obs() for n in ETCD}
    seen["etcd-1"] = {"error": "ConnectError: refused"}
    result = judge_etcd(ETCD, seen)
    assert not result.ok
    assert "etcd-1: ConnectError" in result.detail
    seen = {n: etcd_obs(members=ETCD[:2]) for n in ETCD}
    assert "member list" in judge_etcd(ETCD, seen).detail
    assert not judge_etcd(ETCD, {n: etcd_obs(leader="0") for n in ETCD}).ok


def test_galera_passes_only_when_every_member_is_primary_synced_and_sized():
    assert judge_galera(GALERA, {n: wsrep() for n in GALERA}).ok
    seen = {n: wsrep() for n in GALERA}
    seen["galera-1"] = wsrep(status="non-Primary", size="1")
    result = judge_galera(GALERA, seen)
    assert not result.ok
    assert "galera-1: cluster status non-Primary" in result.detail
    seen = {n: wsrep() for n in GALERA}
    seen["galera-2"] = wsrep(state="1")
    assert "not Synced" in judge_galera(GALERA, seen).detail
    seen = {n: wsrep(size="2") for n in GALERA}
    assert "cluster size 2 != 3" in judge_galera(GALERA, seen).detail


def test_galera_detects_two_clusters():
    seen = {n: wsrep() for n in GALERA}
    seen["galera-2"] = wsrep(uuid="u2")
    assert "different clusters" in judge_galera(GALERA, seen).detail


def test_haproxy_needs_the_written_value_back():
    ok = {"haproxy-0": {"wrote": "a", "read": "a"}}
    assert judge_haproxy(["haproxy-0"], ok).ok
    bad = {"haproxy-0": {"wrote": "a", "read": None}}
    assert not judge_haproxy(["haproxy-0"], bad).ok
    assert not judge_haproxy(["haproxy-0", "haproxy-1"], ok).ok


def test_rabbitmq_cluster_membership_running_and_partitions():
    nodes = ["rabbit@rabbitmq-0", "rabbit@rabbitmq-1", "rabbit@rabbitmq-2"]
    logins = {f"rabbitmq-{i}": {"login": "ok"} for i in range(3)}
    good = {"disk_nodes": nodes, "running_nodes": nodes, "partitions": {}}
    assert judge_rabbitmq(nodes, good, logins).ok
    down = {**good, "running_nodes": nodes[:2]}
    assert "not running: ['rabbit@rabbitmq-2']" in judge_rabbitmq(nodes, down, logins).detail
    split = {**good, "partitions": {"rabbit@rabbitmq-0": ["rabbit@rabbitmq-2"]}}
    assert "partitions" in judge_rabbitmq(nodes, split, logins).detail
    small = {**good, "disk_nodes": nodes[:2]}
    assert "cluster members" in judge_rabbitmq(nodes, small, logins).detail
    refused = {**logins, "rabbitmq-1": {"error": "AMQPConnectionError"}}
    assert not judge_rabbitmq(nodes, good, refused).ok


def test_memcached_every_member_answers():
    names = ["memcached-0", "memcached-1"]
    assert judge_memcached(names, {n: {"uptime": "3"} for n in names}).ok
    result = judge_memcached(names, {"memcached-0": {"uptime": "3"},
                                     "memcached-1": {"error": "refused"}})
    assert not result.ok
    assert "memcached-1: refused" in result.detail
