"""Steps that break the lab: kill, lose, restart, lose a node, pause, partition, scale."""

from __future__ import annotations

import time

import pytest
from pytest_bdd import parsers, then, when

from oaas_lab.components import majority
from oaas_lab.components.galera import active_writer, rejoined_by_ist
from oaas_lab.components.haproxy import front_holder
from oaas_lab.errors import QuorumError, UserError
from oaas_lab.kernel.lab import Lab
from oaas_lab.probes import Faults
from oaas_lab.secrets import SecretStore

WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}


@when(parsers.parse("one {component} member is killed"))
def one_member_killed(component: str, faults: Faults) -> None:
    faults.kill(component, 1)


@when(parsers.parse("every {component} member is killed at once"))
def every_member_killed(component: str, faults: Faults, lab: Lab) -> None:
    faults.kill(component, len(lab.members(component)))


@when(parsers.parse("a majority of the {component} members is lost"))
def majority_lost(component: str, faults: Faults, lab: Lab) -> None:
    faults.lose(component, majority(len(lab.members(component))))


@when(parsers.parse("the lost {component} members come back"))
def lost_members_back(component: str, faults: Faults) -> None:
    assert faults.start_stopped(), f"no {component} member was lost in this scenario"


@when(parsers.parse("one {component} member is paused for {seconds:d} seconds"))
def one_member_paused(component: str, seconds: int, faults: Faults) -> None:
    faults.pause(component, 1)
    try:
        time.sleep(seconds)
    finally:
        faults.resume_paused()


@when(parsers.parse("one {component} member is cut off from the other members"))
def one_member_cut_off(component: str, faults: Faults) -> None:
    faults.isolate(component, 1)


@when(parsers.parse("the partition holds for {seconds:d} seconds"))
def partition_holds(seconds: int, faults: Faults) -> None:
    # The feature holds it longer than the component's own failure detection, so the heal is
    # a real rejoin and not a blip nobody noticed.
    assert faults.cut, "no member is cut off in this scenario"
    time.sleep(seconds)


@when("the partition is healed")
def partition_healed(faults: Faults) -> None:
    assert faults.heal(), "no member was cut off in this scenario"


@when("the haproxy member holding the front address is lost")
def front_holder_lost(faults: Faults, lab: Lab) -> None:
    faults.lose_pods([front_holder(lab)])


@when("the galera member holding writes is killed")
def writer_killed(faults: Faults, lab: Lab, secrets: SecretStore) -> None:
    faults.kill_pods([active_writer(lab, secrets)])


@when(parsers.parse("every pod of node {node} is killed"))
def node_killed(node: str, faults: Faults) -> None:
    assert faults.kill_node(node), f"no pod runs on node {node}"


@when(parsers.parse("{component} is scaled to {replicas:d} members"))
def scaled(component: str, replicas: int, faults: Faults) -> None:
    faults.scale(component, replicas)


@when(parsers.parse("the operator asks for {replicas:d} {component} members"),
      target_fixture="refusal")
def asks_for(component: str, replicas: int, faults: Faults) -> UserError | None:
    return faults.try_scale(component, replicas)


@then(parsers.parse('the request is refused with a quorum error saying "{text}"'))
def refused_with_quorum_error(text: str, refusal: UserError | None) -> None:
    if refusal is None:
        pytest.fail("the request was accepted")
    assert isinstance(refusal, QuorumError), f"refused, but not as a quorum error: {refusal!r}"
    assert text in refusal.one_line(), refusal.one_line()


@then(parsers.parse("the killed {component} member rejoined by incremental state transfer"))
def rejoined_by_ist_step(component: str, faults: Faults, lab: Lab) -> None:
    pods = faults.last_pods()
    assert pods, f"no {component} member was killed in this scenario"
    result = rejoined_by_ist(lab, pods[0])
    assert result.ok, str(result)
