"""Steps about the lab and the membership of its quorum components."""

from __future__ import annotations

from pytest_bdd import given, parsers, then

from oaas_lab.components import membership, quorum
from oaas_lab.kernel.lab import Lab
from oaas_lab.kernel.results import CheckResult, all_ok, failed, passed, summary
from oaas_lab.kernel.wait import until
from oaas_lab.probes import Faults, Measurements
from oaas_lab.secrets import SecretStore

LAB_READY_SECONDS = 300.0
QUORUM_SETTLE_SECONDS = 15.0


@given("the lab is up")
def lab_is_up(lab: Lab) -> None:
    # A scenario may follow one that killed pods: members still restarting get a bounded wait.
    def ready() -> CheckResult:
        results = [status.ready for status in lab.status()]
        if all_ok(results):
            return passed("lab", "every component ready")
        return failed("lab", summary(results))

    result, _ = until(ready, timeout=LAB_READY_SECONDS, interval=5.0)
    assert result.ok, result.detail


@given(parsers.parse("{component} has its full membership"))
def has_full_membership(component: str, measurements: Measurements) -> None:
    result = measurements.full_membership(component, timeout=300, since_fault=0.0)
    assert result.ok, str(result)


@then(parsers.parse("every member of {component} is healthy and agrees on the membership"))
def every_member_agrees(component: str, lab: Lab, secrets: SecretStore) -> None:
    result = membership(lab, secrets, component)
    assert result.ok, str(result)


@then(parsers.parse(
    "every member of {component} is healthy and agrees on the membership "
    "within {seconds:d} seconds"
))
def every_member_agrees_within(
    component: str, seconds: int, measurements: Measurements, faults: Faults
) -> None:
    result = measurements.full_membership(component, seconds, since_fault=faults.since_last())
    assert result.ok, str(result)


@then(parsers.parse("the {component} quorum holds"))
def quorum_holds(component: str, lab: Lab, secrets: SecretStore, faults: Faults) -> None:
    # The survivors alone must hold the quorum; if the lost member led etcd's raft, they report
    # healthy only once they elected a new leader, which takes a few election timeouts.
    lost = faults.last_pods()
    result, _ = until(lambda: quorum(lab, secrets, component, without=lost),
                      timeout=QUORUM_SETTLE_SECONDS, interval=0.5)
    assert result.ok, str(result)


@then(parsers.parse("{component} has {count:d} members"))
def has_members(component: str, count: int, lab: Lab) -> None:
    pods = [p.name for p in lab.members(component)]
    assert len(pods) == count, f"{component} has {len(pods)} members: {', '.join(pods)}"
