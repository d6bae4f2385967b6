"""What the component modules share: how an unreachable member reads, where clients write.

An observation of a member is either what it answered or a string saying why it did not.
"""

from __future__ import annotations

import secrets as _random
from collections.abc import Mapping, Sequence

from oaas_lab.kernel.lab import Lab, PodState

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
