"""Steps that measure what a client sees: probes, gaps, refusals, lost writes."""

from __future__ import annotations

from pytest_bdd import given, parsers, then

from oaas_lab.probes import Faults, Figures, Measurements, no_lost_writes


@given(parsers.parse("a client writes to {component} continuously"))
def client_writes(component: str, measurements: Measurements) -> None:
    measurements.start(component)


@then(parsers.parse("the client's writes to {component} go on within {seconds:d} seconds"))
def writes_go_on(component: str, seconds: int, measurements: Measurements) -> None:
    result = measurements.writes_resume(component, seconds)
    assert result.ok, str(result)


@then(parsers.parse("the longest write gap of {component} is at most {seconds:d} seconds"))
def longest_gap_at_most(component: str, seconds: int, measurements: Measurements) -> None:
    figures = measurements.stop(component)
    assert figures.longest_gap <= seconds, (
        f"{component}: longest gap {figures.longest_gap:.1f}s at {figures.gap_started:.1f}s "
        f"into the probe; {figures.failed} of {figures.attempts} writes failed: {figures.errors}"
    )


@then(parsers.parse("every acknowledged write to {component} is still there"))
def nothing_lost(component: str, measurements: Measurements) -> None:
    result = no_lost_writes(measurements.verify(component))
    assert result.ok, str(result)


@then(parsers.parse("every {component} member holds every acknowledged write"))
def replicated(component: str, measurements: Measurements) -> None:
    result = measurements.replicated_everywhere(component)
    assert result.ok, str(result)


def refused_all(figures: Figures, who: str, text: str) -> None:
    """Every write to ``who`` was refused, with one of the " or "-separated words of ``text``."""
    assert figures.attempts > 0, f"no write to the {who} was attempted"
    assert figures.acknowledged == 0, (
        f"{figures.acknowledged} of {figures.attempts} writes were acknowledged by the {who}"
    )
    said = "; ".join(figures.errors).lower()
    expected = [word.strip().lower() for word in text.split(" or ")]
    assert any(word in said for word in expected), f"refused, but not with {text!r}: {said}"


@then(parsers.parse(
    'the remaining {component} member refuses writes for {seconds:d} seconds, saying "{text}"'
))
def minority_refuses(component: str, seconds: int, text: str, measurements: Measurements) -> None:
    refused_all(measurements.refusal(component, seconds), f"remaining {component} member", text)


@then(parsers.parse(
    'the cut-off {component} member refuses writes for {seconds:d} seconds, saying "{text}"'
))
def cut_off_refuses(component: str, seconds: int, text: str, measurements: Measurements,
                    faults: Faults) -> None:
    assert faults.cut, f"no {component} member was cut off in this scenario"
    hosts = [faults.lab.address(pod) for pod in faults.cut]
    refused_all(measurements.refusal(component, seconds, hosts),
                f"cut-off {component} member", text)
