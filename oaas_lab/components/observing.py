"""What the component modules share: how an unreachable member reads, where clients write.

An observation of a member is either what it answered or a string saying why it did not.
"""

from __future__ import annotations

import dataclasses
import secrets as _random
from collections.abc import Mapping, Sequence
from contextlib import ExitStack, suppress

from oaas_lab.kernel.lab import Lab, PodState
from oaas_lab.kernel.results import CheckResult, failed, passed

WRITE_TIMEOUT = 2.0
"""Seconds one probe write may take before it counts as failed (probes must not hang)."""


def unreachable(observed: Mapping[str, object]) -> dict[str, str]:
    """The members that did not answer, and why."""
    return {pod: str(obs) for pod, obs in observed.items() if isinstance(obs, str)}


def describe(problems: Sequence[str]) -> str:
    """Problems on one line."""
    return "; ".join(problems)


def why(exc: BaseException) -> str:
    """An exception as an observation: its class and its text, bounded."""
    return f"{type(exc).__name__}: {exc}".strip()[:300]


def error_text(exc: BaseException) -> str:
    """``str(exc)``, or the class name when an exception has no text (pika's often do not)."""
    return str(exc) or type(exc).__name__


def run_id() -> str:
    """A short random name that keeps one probe's writes apart from every other's."""
    return _random.token_hex(4)


def running_addresses(lab: Lab, component: str) -> list[str]:
    """Addresses of the component's members, running ones first."""
    pods = lab.members(component)
    pods.sort(key=lambda p: p.state != PodState.RUNNING)
    return [lab.address(p.name) for p in pods]


def verdict(name: str, problems: Sequence[str], *, hint: str, ok: str,
            **evidence: object) -> CheckResult:
    """A judge's result: failed with the problems on one line and what to read, or passed."""
    if problems:
        return failed(name, describe(problems), hint=hint, **evidence)
    return passed(name, ok, **evidence)


def as_evidence(observed: Mapping[str, object]) -> dict[str, object]:
    """Per member, its view as plain data (dataclasses and mappings to dicts) or why not."""
    out: dict[str, object] = {}
    for pod, view in observed.items():
        if dataclasses.is_dataclass(view) and not isinstance(view, type):
            out[pod] = dataclasses.asdict(view)
        elif isinstance(view, Mapping):
            out[pod] = dict(view)
        else:
            out[pod] = view
    return out


def close_quietly(stack: ExitStack | None) -> None:
    """Close what a writer held open; a connection that is already gone is no error."""
    if stack is not None:
        with suppress(Exception):
            stack.close()
