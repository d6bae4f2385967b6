"""The fault soak: random faults, one after another, while clients write; nothing may be lost.

A soak is a *plan* drawn from a seed (the same seed gives the same plan, so a finding can be
replayed) and cycles that carry it out. Each cycle waits for the component's full membership,
starts a client writing to every soaked component, injects one fault, holds it for the
planned seconds, heals it, waits for full membership and an acknowledged write again, and reads
every acknowledged write back. A lost write, a component that does not heal or takes no writes
once healed, or a fault that cannot be injected ends the soak with what showed it. Every fault
is healed before the cycle ends, also when it fails.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

from oaas_lab import components
from oaas_lab.errors import OaasLabError, UserError
from oaas_lab.kernel.lab import Lab
from oaas_lab.probes.faults import Faults
from oaas_lab.probes.loop import no_lost_writes
from oaas_lab.probes.session import Measurements, within
from oaas_lab.secrets import SecretStore

KINDS: tuple[str, ...] = ("kill", "crash-twice", "pause", "partition", "lossy")
"""What a cycle may do to one member: SIGKILL it; SIGKILL two members one second apart (crashes
in quick succession); freeze it; cut it off from its peers; drop a third of its packets to
them."""

LOSSY_FRACTION = 0.33
HEAL_TIMEOUT = 300.0
"""Seconds a component has to get its full membership back, before and after each fault."""
RESUME_TIMEOUT = 60.0
"""Seconds a healed component has to acknowledge a client's write again."""


@dataclass(frozen=True)
class Step:
    """One planned cycle: which component, which fault, held for how long."""

    cycle: int
    component: str
    kind: str
    seconds: float

    def describe(self) -> str:
        return (f"cycle {self.cycle}: {self.kind} one {self.component} member "
                f"for {self.seconds:.0f}s")


@dataclass
class Outcome:
    """What one cycle measured; ``problem`` is empty when nothing went wrong."""

    step: Step
    figures: dict[str, object] = field(default_factory=dict)
    problem: str = ""
    healed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problem


def plan(seed: int, cycles: int, soaked: Sequence[str], longest: float,
         kinds: Sequence[str] = KINDS) -> list[Step]:
    """The soak's cycles, drawn from ``seed`` alone: fault, component, and hold time between
    2 s and ``longest`` (whole seconds)."""
    rng = random.Random(seed)  # noqa: S311 -- reproducible fault choice, not cryptography
    shortest = min(2.0, longest)
    return [Step(cycle=n + 1, component=rng.choice(list(soaked)), kind=rng.choice(list(kinds)),
                 seconds=float(rng.randint(int(shortest), int(longest))))
            for n in range(cycles)]


def check_components(names: Sequence[str], lab_components: Sequence[str]) -> list[str]:
    """The soaked components, refused unless each is a quorum component of this lab."""
    quorum = [c.name for c in components.catalogue() if c.quorum]
    for name in names:
        if name not in quorum:
            raise UserError(f"--components: {name!r} is not a quorum component",
                            hint=f"choose from: {', '.join(quorum)}")
        if name not in lab_components:
            raise UserError(f"--components: lab does not run {name!r}",
                            hint="bring it up first, or leave it out")
    return list(names)


def _inject(faults: Faults, step: Step, sleep: Callable[[float], None]) -> None:
    """Carry out the fault of ``step`` and heal it (the caller's ``restore`` covers failures)."""
    if step.kind == "kill":
        faults.kill(step.component, 1)
        sleep(step.seconds)
    elif step.kind == "crash-twice":
        first, second = faults.pick(step.component, 2)
        faults.kill_pods([first])
        sleep(1.0)
        faults.kill_pods([second])
        sleep(step.seconds)
    elif step.kind == "pause":
        faults.pause(step.component, 1)
        sleep(step.seconds)
        faults.resume_paused()
    elif step.kind in {"partition", "lossy"}:
        loss = 1.0 if step.kind == "partition" else LOSSY_FRACTION
        faults.isolate(step.component, 1, loss)
        sleep(step.seconds)
        faults.heal()
    else:
        raise UserError(f"unknown fault kind {step.kind!r}", hint=f"use one of: {', '.join(KINDS)}")


def run_cycle(lab: Lab, store: SecretStore, step: Step, soaked: Sequence[str],
              sleep: Callable[[float], None] = time.sleep) -> Outcome:
    """One cycle of the soak (module docstring); never raises for what the lab does."""
    outcome = Outcome(step)
    faults = Faults(lab)
    measured = Measurements(lab, store, max_seconds=step.seconds + 2 * HEAL_TIMEOUT + 120.0)
    try:
        for name in soaked:
            before, _waited = within(partial(components.membership, lab, store, name),
                                     HEAL_TIMEOUT, 1.0)
            if not before.ok:
                outcome.problem = f"{name} is not healthy before the fault: {before.detail}"
                return outcome
        for name in soaked:
            measured.start(name)
        _inject(faults, step, sleep)
        since = faults.since_last()
        for name in soaked:
            after = measured.full_membership(name, HEAL_TIMEOUT, since)
            if not after.ok:
                outcome.problem = f"{name} did not heal: {after.detail}"
                return outcome
            # Healed is not serving: the client must get a write acknowledged again, which
            # also gives a cycle whose whole fault refused writes something to read back.
            resumed = measured.writes_resume(name, RESUME_TIMEOUT)
            if not resumed.ok:
                outcome.problem = f"{name} takes no writes after healing: {resumed.detail}"
                return outcome
        for name in soaked:
            result = no_lost_writes(measured.verify(name))
            if not result.ok:
                outcome.problem = result.detail
                return outcome
    except OaasLabError as exc:
        outcome.problem = exc.one_line()
    finally:
        outcome.healed = faults.restore()
        measured.close()
        outcome.figures = dict(measured.figures)
    return outcome
