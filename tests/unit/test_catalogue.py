"""The component catalogue: quorum rule, deploy order from dependencies, critical path."""

from __future__ import annotations

import pytest

from oaas_lab import components
from oaas_lab.components import Component, Role
from oaas_lab.errors import QuorumError, UserError


def comp(name: str, *deps: str, quorum: bool = False) -> Component:
    return Component(name=name, role=Role.CONTROLLER, replicas=3, ports={},
                     depends_on=deps, quorum=quorum)


@pytest.mark.parametrize("name", ["etcd", "galera", "rabbitmq"])
@pytest.mark.parametrize("count", [2, 4, 6])
def test_quorum_components_refuse_even_counts(name: str, count: int) -> None:
    with pytest.raises(QuorumError, match="even"):
        components.check_replicas(components.by_name()[name], count)


@pytest.mark.parametrize("count", [1, 3, 5])
def test_quorum_components_accept_odd_counts(count: int) -> None:
    components.check_replicas(components.by_name()["galera"], count)


def test_zero_refused() -> None:
    with pytest.raises(QuorumError, match="below the minimum"):
        components.check_replicas(components.by_name()["memcached"], 0)


def test_quorum_components_are_the_ones_the_design_names() -> None:
    quorum = {c.name for c in components.catalogue() if c.quorum}
    assert {"etcd", "galera", "rabbitmq"} <= quorum
    assert "memcached" not in quorum
    assert "haproxy" not in quorum


def test_waves_follow_dependencies() -> None:
    order = components.waves([comp("c", "b"), comp("b", "a"), comp("a"), comp("x")])
    assert [[c.name for c in wave] for wave in order] == [["a", "x"], ["b"], ["c"]]


def test_haproxy_starts_after_galera() -> None:
    names = [[c.name for c in w] for w in components.waves(components.catalogue())]
    galera_wave = next(i for i, w in enumerate(names) if "galera" in w)
    haproxy_wave = next(i for i, w in enumerate(names) if "haproxy" in w)
    assert haproxy_wave > galera_wave


def test_cycle_is_a_clear_error() -> None:
    with pytest.raises(UserError, match="dependency cycle among components: a, b"):
        components.waves([comp("a", "b"), comp("b", "a")])


def test_critical_path_is_longest_weighted_chain() -> None:
    comps = [comp("a"), comp("b", "a"), comp("c"), comp("d", "b", "c")]
    seconds, path = components.critical_path(comps, {"a": 5, "b": 1, "c": 10, "d": 2})
    assert path == ["c", "d"]
    assert seconds == 12
