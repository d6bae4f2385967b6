"""The readiness judges of the components decide from observations (no daemons needed).

These are the judges ``up`` and ``status`` use, the same the scenarios use for membership.
"""

from __future__ import annotations

import pytest

from oaas_lab import components
from oaas_lab.components import etcd, galera, haproxy, memcached, rabbitmq
from oaas_lab.components.etcd import EtcdView
from oaas_lab.components.haproxy import RoundTrip
from oaas_lab.components.openstack_api import members_work
from oaas_lab.components.rabbitmq import RabbitView
from oaas_lab.errors import LabError
from oaas_lab.kernel.command import CommandResult

ETCD = ["etcd-0", "etcd-1", "etcd-2"]
GALERA = ["galera-0", "galera-1", "galera-2"]


def etcd_obs(member_id: str, leader: str = "1", members=ETCD, healthy=True) -> EtcdView:
    return EtcdView(healthy=healthy, member_id=member_id, leader=leader,
                    members=tuple(sorted(members)))


def etcd_cluster(**over: EtcdView | str) -> dict[str, EtcdView | str]:
    seen: dict[str, EtcdView | str] = {n: etcd_obs(str(i + 1)) for i, n in enumerate(ETCD)}
    seen.update(over)
    return seen


def wsrep(status="Primary", state="Synced", size="3", uuid="u1"):
    return {"wsrep_cluster_status": status, "wsrep_local_state_comment": state,
            "wsrep_ready": "ON", "wsrep_cluster_size": size, "wsrep_cluster_state_uuid": uuid}


def test_etcd_healthy_cluster_passes_with_evidence():
    result = etcd.membership(etcd_cluster(), 3)
    assert result.ok, result.detail
    assert set(result.evidence["members"]) == set(ETCD)


def test_etcd_fails_on_leader_disagreement_unreachable_member_or_wrong_members():
    seen = etcd_cluster(**{"etcd-2": etcd_obs("3", leader="9")})
    assert "different leaders" in etcd.membership(seen, 3).detail
    result = etcd.membership(etcd_cluster(**{"etcd-1": "ConnectError: refused"}), 3)
    assert not result.ok
    assert "etcd-1: unreachable (ConnectError" in result.detail
    short = {n: etcd_obs(str(i + 1), members=ETCD[:2]) for i, n in enumerate(ETCD)}
    assert "member list" in etcd.membership(short, 3).detail
    other = {n: etcd_obs(str(i + 1), members=["a", "b", "c"]) for i, n in enumerate(ETCD)}
    assert "member list" in etcd.membership(other, 3).detail
    no_leader = {n: etcd_obs(str(i + 1), leader="0") for i, n in enumerate(ETCD)}
    assert not etcd.membership(no_leader, 3).ok


def test_galera_passes_only_when_every_member_is_primary_synced_and_sized():
    assert galera.membership({n: wsrep() for n in GALERA}, 3).ok
    seen = {n: wsrep() for n in GALERA}
    seen["galera-1"] = wsrep(status="non-Primary", size="1")
    result = galera.membership(seen, 3)
    assert not result.ok
    assert "galera-1: cluster status non-Primary" in result.detail
    seen = {n: wsrep() for n in GALERA}
    seen["galera-2"] = wsrep(state="Joining")
    assert "not Synced" in galera.membership(seen, 3).detail
    seen = {n: wsrep(size="2") for n in GALERA}
    assert "cluster size 2 (expected 3)" in galera.membership(seen, 3).detail


def test_galera_detects_two_clusters():
    seen = {n: wsrep() for n in GALERA}
    seen["galera-2"] = wsrep(uuid="u2")
    assert "disagree on the cluster UUID" in galera.membership(seen, 3).detail


def test_haproxy_needs_the_written_value_back():
    ok: dict[str, RoundTrip | str] = {"haproxy-0": RoundTrip("a", "a")}
    assert haproxy.ready(ok, 1).ok
    bad: dict[str, RoundTrip | str] = {"haproxy-0": RoundTrip("a", None)}
    assert not haproxy.ready(bad, 1).ok
    assert not haproxy.ready(ok, 2).ok


def test_rabbitmq_cluster_membership_running_partitions_and_login():
    nodes = ("rabbit@rabbitmq-0", "rabbit@rabbitmq-1", "rabbit@rabbitmq-2")
    good = RabbitView(nodes=nodes, running=nodes, partitions=())
    pods = [f"rabbitmq-{i}" for i in range(3)]
    assert rabbitmq.membership(dict.fromkeys(pods, good), 3).ok
    down = RabbitView(nodes=nodes, running=nodes[:2], partitions=())
    assert "nodes not running: rabbit@rabbitmq-2" in rabbitmq.membership(
        dict.fromkeys(pods, down), 3).detail
    split = RabbitView(nodes=nodes, running=nodes,
                       partitions=("rabbit@rabbitmq-0 cannot see rabbit@rabbitmq-2",))
    assert "partition" in rabbitmq.membership(dict.fromkeys(pods, split), 3).detail
    small = RabbitView(nodes=nodes[:2], running=nodes[:2], partitions=())
    assert "knows 2 nodes" in rabbitmq.membership(dict.fromkeys(pods, small), 3).detail
    refused = {**dict.fromkeys(pods, good),
               "rabbitmq-1": RabbitView(nodes, nodes, (), login="AMQPConnectionError")}
    result = rabbitmq.membership(refused, 3)
    assert not result.ok
    assert "rabbitmq-1: AMQP login: AMQPConnectionError" in result.detail


def test_memcached_every_member_answers():
    assert memcached.ready({n: {"uptime": "3"} for n in ["memcached-0", "memcached-1"]}, 2).ok
    result = memcached.ready({"memcached-0": {"uptime": "3"}, "memcached-1": "refused"}, 2)
    assert not result.ok
    assert "memcached-1: refused" in result.detail


def test_openstack_members_must_each_work():
    judge = members_work("glance")
    assert judge({"glance-0": "ok", "glance-1": "ok"}, 2).ok
    result = judge({"glance-0": "ok", "glance-1": "HTTP 503"}, 2)
    assert not result.ok
    assert "glance-1: HTTP 503" in result.detail
    assert not judge({"glance-0": "ok"}, 2).ok


def test_every_component_has_one_spec_and_the_catalogue_comes_from_them():
    names = [s.name for s in components.specs()]
    assert len(names) == len(set(names))
    assert [c.name for c in components.catalogue()] == names
    assert {"etcd", "galera", "haproxy", "rabbitmq", "memcached", "keystone",
            "nova-compute", "horizon"} <= set(names)
    tiers = [s.entry.tier for s in components.specs()]
    assert tiers == sorted(tiers, key=lambda t: list(components.Tier).index(t))
    for spec in components.specs():
        assert spec.local, f"{spec.name} names no local driver"


def test_etcd_member_removal_is_retried_while_etcd_calls_the_cluster_unhealthy(monkeypatch):
    answers = [CommandResult(("etcdctl",), 1, "", "etcdserver: unhealthy cluster")] * 2 + [
        CommandResult(("etcdctl",), 0, "Member 8e9e removed", "")]
    calls: list[list[str]] = []

    def etcdctl(args):
        calls.append(list(args))
        return answers[len(calls) - 1]

    # Two refusals, then the removal: about two seconds of the real one-second retries.
    etcd.remove_member(etcdctl, "8e9e", "etcd-4", hint="")
    assert calls == [["member", "remove", "8e9e"]] * 3

    monkeypatch.setattr(etcd, "REMOVE_TIMEOUT", 0.0)
    refused = CommandResult(("etcdctl",), 1, "", "etcdserver: unhealthy cluster")
    with pytest.raises(LabError, match="etcd refused to remove etcd-4 for 0s: etcdserver: "
                                       "unhealthy cluster"):
        etcd.remove_member(lambda _a: refused, "8e9e", "etcd-4", hint="")
