"""Membership checks can fail: every way a cluster can be wrong is detected and described."""

from __future__ import annotations

import json

import pytest

from oaas_lab.components.etcd import EtcdView
from oaas_lab.components.etcd import membership as etcd_membership
from oaas_lab.components.etcd import quorum as etcd_quorum
from oaas_lab.components.galera import membership as galera_membership
from oaas_lab.components.galera import non_primary as galera_non_primary
from oaas_lab.components.galera import quorum as galera_quorum
from oaas_lab.components.rabbitmq import RabbitView
from oaas_lab.components.rabbitmq import membership as rabbitmq_membership
from oaas_lab.components.rabbitmq import parse_status as parse_rabbit_status
from oaas_lab.components.rabbitmq import quorum as rabbitmq_quorum
from oaas_lab.components.spec import majority


def wsrep(**over: str) -> dict[str, str]:
    base = {
        "wsrep_cluster_status": "Primary",
        "wsrep_local_state_comment": "Synced",
        "wsrep_ready": "ON",
        "wsrep_cluster_size": "3",
        "wsrep_cluster_state_uuid": "u-1",
    }
    return {**base, **over}


def test_majority():
    assert [majority(n) for n in (1, 3, 5)] == [1, 2, 3]


def test_galera_healthy_cluster_passes():
    result = galera_membership({f"galera-{i}": wsrep() for i in range(3)}, 3)
    assert result.ok, result.detail


def test_galera_non_primary_member_is_reported():
    observed = {"galera-0": wsrep(), "galera-1": wsrep(),
                "galera-2": wsrep(wsrep_cluster_status="non-Primary", wsrep_cluster_size="1")}
    result = galera_membership(observed, 3)
    assert not result.ok
    assert "galera-2: cluster status non-Primary (not Primary)" in result.detail
    assert "galera-2: cluster size 1 (expected 3)" in result.detail
    assert result.hint


def test_galera_missing_member_and_split_uuid_are_reported():
    observed = {"galera-0": wsrep(wsrep_cluster_size="2"),
                "galera-1": wsrep(wsrep_cluster_size="2", wsrep_cluster_state_uuid="u-2"),
                "galera-2": "OperationalError: (2003, \"Can't connect\")"}
    result = galera_membership(observed, 3)
    assert not result.ok
    assert "galera-2: unreachable" in result.detail
    assert "disagree on the cluster UUID" in result.detail
    assert "cluster size 2 (expected 3)" in result.detail


def test_galera_joiner_not_synced_is_reported():
    result = galera_membership({"galera-0": wsrep(), "galera-1": wsrep(),
                                "galera-2": wsrep(wsrep_local_state_comment="Joining")}, 3)
    assert not result.ok
    assert "state Joining (not Synced)" in result.detail


def test_galera_quorum_and_non_primary():
    two = {"galera-0": wsrep(wsrep_cluster_size="2"), "galera-1": wsrep(wsrep_cluster_size="2"),
           "galera-2": "down"}
    assert galera_quorum(two, 3).ok
    one = {"galera-0": wsrep(wsrep_cluster_status="non-Primary"), "galera-1": "down",
           "galera-2": "down"}
    lost = galera_quorum(one, 3)
    assert not lost.ok
    assert "0 of 3 members in a Primary component" in lost.detail
    assert galera_non_primary(one).ok
    still = galera_non_primary({"galera-0": wsrep(wsrep_cluster_size="1")})
    assert not still.ok
    assert "galera-0" in still.detail


ETCD_NAMES = ("etcd-0", "etcd-1", "etcd-2")


def etcd_view(mid: str, leader: str = "1", members: tuple[str, ...] = ETCD_NAMES,
              healthy: bool = True) -> EtcdView:
    return EtcdView(healthy=healthy, member_id=mid, leader=leader, members=members)


def test_etcd_healthy_cluster_passes():
    result = etcd_membership({"etcd-0": etcd_view("1"), "etcd-1": etcd_view("2"),
                              "etcd-2": etcd_view("3")}, 3)
    assert result.ok, result.detail


def test_etcd_split_leader_missing_member_and_unhealthy_are_reported():
    result = etcd_membership({
        "etcd-0": etcd_view("1", leader="1"),
        "etcd-1": etcd_view("2", leader="2", members=("etcd-0", "etcd-1"), healthy=False),
        "etcd-2": "ConnectError: refused",
    }, 3)
    assert not result.ok
    assert "different leaders" in result.detail
    assert "etcd-1: not healthy" in result.detail
    assert "etcd-2: unreachable" in result.detail
    assert "disagree on the member list" in result.detail


def test_etcd_no_leader_and_quorum():
    observed = {"etcd-0": etcd_view("1", leader="0", healthy=False), "etcd-1": "down",
                "etcd-2": "down"}
    result = etcd_membership(observed, 3)
    assert not result.ok
    assert "no leader" in result.detail
    lost = etcd_quorum(observed, 3)
    assert not lost.ok
    assert "0 of 3 members healthy (need 2)" in lost.detail
    assert etcd_quorum({"etcd-0": etcd_view("1"), "etcd-1": etcd_view("2"),
                        "etcd-2": "down"}, 3).ok


NODES = ["rabbit@rabbitmq-0", "rabbit@rabbitmq-1", "rabbit@rabbitmq-2"]


def rabbit_json(running: list[str], partitions: dict[str, list[str]] | None = None) -> str:
    return json.dumps({"disk_nodes": NODES, "running_nodes": running,
                       "partitions": partitions or {}, "alarms": []})


def test_rabbit_parse_and_healthy():
    view = parse_rabbit_status(rabbit_json(NODES))
    assert view.running == tuple(NODES)
    observed = {f"rabbitmq-{i}": view for i in range(3)}
    assert rabbitmq_membership(observed, 3).ok


def test_rabbit_partition_is_reported():
    split = parse_rabbit_status(rabbit_json(NODES[:2], {NODES[0]: [NODES[2]]}))
    observed = {"rabbitmq-0": split, "rabbitmq-1": split,
                "rabbitmq-2": parse_rabbit_status(rabbit_json(NODES))}
    result = rabbitmq_membership(observed, 3)
    assert not result.ok
    assert "partition: rabbit@rabbitmq-0 cannot see rabbit@rabbitmq-2" in result.detail
    assert "nodes not running: rabbit@rabbitmq-2" in result.detail


def test_rabbit_missing_member_and_quorum():
    observed: dict[str, RabbitView | str] = {
        "rabbitmq-0": parse_rabbit_status(rabbit_json(NODES[:1])),
        "rabbitmq-1": "rabbitmqctl exited 69: unable to connect",
        "rabbitmq-2": "rabbitmqctl exited 69: unable to connect",
    }
    result = rabbitmq_membership(observed, 3)
    assert not result.ok
    assert "rabbitmq-1: unreachable" in result.detail
    lost = rabbitmq_quorum(observed, 3)
    assert not lost.ok
    assert "at most 1 of 3" in lost.detail


def test_rabbit_garbage_is_a_clear_error():
    with pytest.raises(ValueError, match="not JSON"):
        parse_rabbit_status("Error: unable to perform an operation")
