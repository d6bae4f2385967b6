"""Naming, addressing and the files every pod gets (no root needed)."""

from __future__ import annotations

import pytest

from oaas_lab import components
from oaas_lab.backends.local import network
from oaas_lab.backends.local.network import Naming
from oaas_lab.backends.local.pods import (
    LabState,
    allocate_ip,
    host_ip,
    node_for,
    pod_name,
)
from oaas_lab.errors import LabError, UserError

COMPONENTS = [c.name for c in components.catalogue()]


@pytest.mark.parametrize("lab", ["a", "oaas", "abcdef"])
def test_interface_names_fit_linux_limit_and_carry_the_lab(lab):
    naming = Naming(lab)
    for name in (naming.bridge, naming.veth("172.31.89.254"), naming.veth_peer("10.0.0.254")):
        assert len(name) <= network.IFNAME_MAX
        assert name.startswith(f"{lab}-")


def test_two_labs_never_share_a_name():
    acc, dev = Naming("acc"), Naming("dev")
    assert acc.bridge != dev.bridge
    assert acc.veth("172.31.90.10") != dev.veth("172.31.91.10")
    assert acc.netns("galera-0") != dev.netns("galera-0")


def test_a_lab_only_owns_its_own_namespaces():
    naming = Naming("oaas")
    assert naming.owns_netns("oaas-galera-0", COMPONENTS)
    assert naming.owns_netns("oaas-rabbitmq-12", COMPONENTS)
    assert not naming.owns_netns("oaas2-galera-0", COMPONENTS)
    assert not naming.owns_netns("oaas-galera-x", COMPONENTS)
    assert not naming.owns_netns("oaas-client", COMPONENTS)
    assert not naming.owns_netns("acc-galera-0", COMPONENTS)


def test_ip_allocation_starts_at_ten_and_skips_used():
    subnet = "172.31.89.0/24"
    assert host_ip(subnet) == "172.31.89.1"
    assert allocate_ip(subnet, set()) == "172.31.89.10"
    assert allocate_ip(subnet, {"172.31.89.10", "172.31.89.11"}) == "172.31.89.12"
    assert allocate_ip(subnet, {"172.31.89.10", "172.31.89.12"}) == "172.31.89.11"


def test_ip_allocation_reports_a_full_subnet():
    used = {f"10.9.9.{i}" for i in range(10, 255)}
    with pytest.raises(LabError, match="no free pod address"):
        allocate_ip("10.9.9.0/24", used)


def test_quorum_members_spread_over_controller_nodes():
    galera = components.by_name()["galera"]
    nodes = [node_for(galera, i, controller_nodes=3, compute_nodes=2) for i in range(5)]
    assert nodes == ["controller-1", "controller-2", "controller-3", "controller-1",
                     "controller-2"]
    assert pod_name("galera", 3) == "galera-3"


def test_state_round_trips_and_names_unknown_pods():
    state = LabState("dev", "172.31.91.0/24")
    etcd = components.by_name()["etcd"]
    first = state.add_pod(etcd, 0, 3, 2)
    second = state.add_pod(etcd, 1, 3, 2)
    state.replicas["etcd"] = 2
    again = LabState.from_json(state.to_json())
    assert again.members("etcd") == [first, second]
    assert again.pod("etcd-1").ip == "172.31.91.11"
    with pytest.raises(UserError, match="no pod 'etcd-7'"):
        again.pod("etcd-7")


def test_hosts_file_names_pods_and_services():
    text = network.hosts_file(
        {"galera-0": "172.31.89.12", "haproxy-0": "172.31.89.20"},
        {"galera": "172.31.89.20"},
    )
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert "172.31.89.12\tgalera-0" in lines
    assert "172.31.89.20\tgalera" in lines


def test_resolver_never_leaves_the_host():
    assert "nameserver 127.0.0.1" in network.RESOLV_CONF
    nameservers = [ln for ln in network.RESOLV_CONF.splitlines() if ln.startswith("nameserver")]
    assert nameservers == ["nameserver 127.0.0.1"]
