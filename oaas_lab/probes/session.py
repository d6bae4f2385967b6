"""The measurements of one scenario: its probes, and the figures it reports.

A scenario starts a probe per affected service, injects faults, and asks for figures; at its
end every probe is stopped and its figures (longest gap, failed and acknowledged writes,
lost writes, time until full membership) are kept in ``figures`` for the reports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from oaas_lab import components
from oaas_lab.components.galera import SqlWrites
from oaas_lab.components.spec import Writing
from oaas_lab.errors import UserError
from oaas_lab.kernel.lab import Lab, PodState
from oaas_lab.kernel.results import CheckResult, failed, passed
from oaas_lab.kernel.target import Target
from oaas_lab.kernel.wait import until
from oaas_lab.probes.loop import Figures, ProbeLoop
from oaas_lab.secrets import SecretStore


def within(check: Callable[[], CheckResult], timeout: float, interval: float
           ) -> tuple[CheckResult, float]:
    """Wait until ``check`` passes; the last result and the seconds it took. A timeout is not
    raised: the failed result says so, and the scenario asserts on it."""
    result, waited = until(check, timeout=timeout, interval=interval)
    if not result.ok:
        result = replace(result, detail=f"not within {timeout:.0f}s: {result.detail}")
    return result, waited


MINORITY_SEQ = 1_000_000
"""Writes to a minority are numbered from here, apart from the main probe's."""


def make_target(lab: Lab, store: SecretStore, component: str,
                how: Writing | None = None) -> Target:
    """The component's writer (its spec's), through its service address or to ``how.hosts``."""
    spec = components.spec(component)
    if spec.writer is None:
        writable = [s.name for s in components.specs() if s.writer is not None]
        raise UserError(f"no probe writes to {component!r}",
                        hint=f"use one of: {', '.join(writable)}")
    return spec.writer(lab, store, how or Writing())


@dataclass
class Measurements:
    """Probes of one scenario, by component, and the figures measured so far."""

    lab: Lab
    store: SecretStore
    interval: float = 0.2
    max_seconds: float = 600.0
    probes: dict[str, ProbeLoop] = field(default_factory=dict)
    figures: dict[str, object] = field(default_factory=dict)
    next_minority_seq: int = MINORITY_SEQ

    def start(self, component: str) -> ProbeLoop:
        """Start writing to ``component`` continuously (once per scenario and component)."""
        if component not in self.probes:
            target = make_target(self.lab, self.store, component)
            # The count cap follows the cadence, so a faster probe is not cut off sooner.
            probe = ProbeLoop(target, interval=self.interval, max_seconds=self.max_seconds,
                              max_attempts=int(self.max_seconds / self.interval) + 1)
            probe.start()
            self.probes[component] = probe
        return self.probes[component]

    def probe(self, component: str) -> ProbeLoop:
        """The running probe of ``component``."""
        try:
            return self.probes[component]
        except KeyError:
            raise UserError(
                f"no client writes to {component} in this scenario",
                hint="start one with the step 'a client writes to <component> continuously'",
            ) from None

    def record(self, name: str, value: object) -> None:
        """Keep a measured figure for the reports."""
        self.figures[name] = value

    def _keep(self, component: str, result: Figures) -> Figures:
        for key, value in result.as_properties().items():
            self.record(f"{component} {key}", value)
        return result

    def stop(self, component: str) -> Figures:
        """Stop the probe of ``component`` and record its figures."""
        return self._keep(component, self.probe(component).stop())

    def verify(self, component: str) -> Figures:
        """Stop, read back every acknowledged write, and record the figures with the lost."""
        return self._keep(component, self.probe(component).verify())

    def survivors(self, component: str) -> list[str]:
        """Addresses of the members of ``component`` that are running."""
        return [
            self.lab.address(p.name) for p in self.lab.members(component)
            if p.state == PodState.RUNNING
        ]

    def write_for(self, component: str, seconds: float, hosts: Sequence[str]) -> Figures:
        """Write to ``hosts`` directly for ``seconds`` (bounded) and return what happened.

        Used to show that a minority refuses writes: it reuses the main probe's identity when
        there is one, since a minority cannot create tables or queues.
        """
        main = self.probes.get(component)
        run = getattr(main.target, "run", None) if main is not None else None
        target = make_target(self.lab, self.store, component,
                             Writing(hosts=hosts, run=run, prepare=False))
        probe = ProbeLoop(
            target, interval=self.interval, max_seconds=seconds,
            max_attempts=max(1, int(seconds / self.interval) + 1),
            first_seq=self.next_minority_seq,
        )
        try:
            probe.start()
            result = probe.stop_when_capped()
        finally:
            target.close()
        self.next_minority_seq += probe.max_attempts
        for key in ("attempts", "acknowledged", "errors"):
            self.record(f"{component} minority {key}", result.as_properties().get(key, ""))
        # Writes a minority acknowledged must survive too: the main probe reads back its run.
        if main is not None:
            main.adopt(probe)
        return result

    def writes_resume(self, component: str, timeout: float) -> CheckResult:
        """Wait until the probe of ``component`` gets a write acknowledged that began now or
        later; records how long that took."""
        probe = self.probe(component)
        since = probe.elapsed()

        def resumed() -> CheckResult:
            acked = [a for a in probe.attempts() if a.ok and a.started >= since]
            if acked:
                return passed(f"{component} writes", f"acknowledged again (write {acked[0].seq})")
            if not probe.running:
                return failed(f"{component} writes", "the probe stopped before a write succeeded",
                              hint="the probe hit its count or time cap")
            last = probe.attempts()[-1:]
            why = last[0].error if last and not last[0].ok else "no write finished yet"
            return failed(f"{component} writes", f"not acknowledged yet: {why}")

        result, waited = within(resumed, timeout, 0.2)
        self.record(f"{component} writes resumed after s", round(waited, 1))
        return result

    def works_again(self, component: str, timeout: float, since_fault: float) -> CheckResult:
        """Wait until every member of an OpenStack ``component`` works (its readiness check);
        records the seconds from the last fault until then."""
        result, waited = within(lambda: components.check(self.lab, self.store, component),
                                timeout, 1.0)
        self.record(f"{component} works again after s", round(since_fault + waited, 1))
        return result

    def full_membership(self, component: str, timeout: float, since_fault: float) -> CheckResult:
        """Wait until ``component`` has its full membership; records the seconds from the last
        fault (``since_fault`` seconds ago when the wait began) until then."""
        result, waited = within(
            lambda: components.membership(self.lab, self.store, component), timeout, 1.0)
        if result.ok:
            self.record(f"{component} full membership after s", round(since_fault + waited, 1))
        return result

    def refusal(self, component: str, seconds: float, hosts: Sequence[str] = (),
                settle: float = 30.0) -> Figures:
        """Once a direct write to ``hosts`` (by default the running members, a minority) is
        refused (within ``settle`` seconds), keep writing to them for ``seconds`` and return
        what happened."""
        hosts = list(hosts) or self.survivors(component)
        if not hosts:
            raise UserError(f"no {component} member is running", hint="stop fewer members")

        def refused() -> CheckResult:
            figures = self.write_for(component, 0.1, hosts)
            if figures.acknowledged:
                return failed(f"{component} minority", "still acknowledges writes")
            return passed(f"{component} minority", "refuses writes")

        within(refused, settle, 1.0)
        return self.write_for(component, seconds, hosts)

    def replicated_everywhere(self, component: str) -> CheckResult:
        """Every member of ``component`` holds every write the probe got acknowledged
        (read on each member directly; Galera only)."""
        probe = self.probe(component)
        target = probe.target
        if not isinstance(target, SqlWrites):
            raise UserError(f"reading back on each member is done for galera, not {component}")
        acked = set(probe.acknowledged())
        missing: dict[str, int] = {}
        errors: dict[str, str] = {}
        for pod in self.lab.members(component):
            try:
                have = target.read_back_on(self.lab.address(pod.name))
            except Exception as exc:  # an unreadable member is a finding, reported below
                errors[pod.name] = f"{type(exc).__name__}: {exc}"
                continue
            if acked - have:
                missing[pod.name] = len(acked - have)
        name = f"{component} replication"
        if missing or errors or not acked:
            parts = [f"{p} lacks {n} acknowledged writes" for p, n in missing.items()]
            parts += [f"{p} unreadable ({e})" for p, e in errors.items()]
            if not acked:
                parts.append("no write was acknowledged")
            return failed(name, "; ".join(parts), hint="a member did not sync: read its log")
        return passed(name, f"all {len(acked)} acknowledged writes on every member")

    def close(self) -> None:
        """Stop every probe, keep the figures of those no step looked at, release them."""
        for component, probe in self.probes.items():
            if f"{component} attempts" not in self.figures:
                self._keep(component, probe.stop())
            probe.close()
