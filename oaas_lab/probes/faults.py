"""Faults a scenario injects, remembered so they can be measured against and undone.

``Faults`` wraps the ``Lab`` verbs (kill, stop, start, kill_node, pause, cut, scale) and records
what was done and when, so a scenario can ask "how long since the fault until full membership"
and the end of a scenario can start every member it stopped, resume every member it paused,
heal every link it cut and put every scaled component back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field

from oaas_lab.errors import LabError, OaasLabError, UserError
from oaas_lab.kernel.lab import Lab, PodState
from oaas_lab.kernel.results import CheckResult, failed, passed
from oaas_lab.kernel.wait import wait_for


@dataclass(frozen=True)
class Fault:
    """One injected fault: what was done, to which pods, and when (monotonic seconds)."""

    action: str
    pods: tuple[str, ...]
    at: float


@dataclass
class Faults:
    """The faults of one scenario, and how to undo them."""

    lab: Lab
    clock: Callable[[], float] = time.monotonic
    injected: list[Fault] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    scaled: dict[str, int] = field(default_factory=dict)
    paused: list[str] = field(default_factory=list)
    cut: list[str] = field(default_factory=list)

    def _record(self, action: str, pods: list[str], at: float | None = None) -> list[str]:
        self.injected.append(Fault(action, tuple(pods), self.clock() if at is None else at))
        return pods

    def _running(self, component: str, count: int) -> list[str]:
        running = [p.name for p in self.lab.members(component) if p.state == PodState.RUNNING]
        if len(running) < count:
            raise UserError(
                f"{component} has {len(running)} running members, cannot take {count}",
                hint="wait for the component to be healthy before injecting a fault",
            )
        return running

    def pick(self, component: str, count: int) -> list[str]:
        """The first ``count`` running members of a component (by ordinal, so runs repeat)."""
        return self._running(component, count)[:count]

    def kill(self, component: str, count: int = 1) -> list[str]:
        """SIGKILL ``count`` members; the supervisor (or kubelet) brings them back."""
        pods = self.pick(component, count)
        for pod in pods:
            self.lab.kill(pod)
        return self._record("kill", pods)

    def kill_pods(self, pods: list[str]) -> list[str]:
        """SIGKILL the named pods."""
        for pod in pods:
            self.lab.kill(pod)
        return self._record("kill", pods)

    def lose(self, component: str, count: int) -> list[str]:
        """Crash ``count`` members and keep them down until ``start_stopped``.

        A lost member must not say goodbye: a clean shutdown makes Galera shrink its cluster
        (and keep a Primary component of one), which is not what losing members means. So the
        member is killed first, then kept stopped before its restart completes.
        """
        return self.lose_pods(self.pick(component, count))

    def lose_pods(self, pods: list[str]) -> list[str]:
        """Crash the named pods and keep them down until ``start_stopped`` (see ``lose``)."""
        for pod in pods:
            self.lab.kill(pod)
        self.stopped.extend(pods)
        # The supervisor (or kubelet) restarts a killed member at once, and a restarted member
        # may take its full grace period to obey the stop; killing it again while it is being
        # stopped makes the stop immediate and still gives it no chance to leave cleanly.
        with ThreadPoolExecutor(max_workers=len(pods)) as pool:
            stops = {pod: pool.submit(self.lab.stop, pod) for pod in pods}

            def all_stopped() -> CheckResult:
                pending = [pod for pod, done in stops.items() if not done.done()]
                for pod in pending:
                    # The stop deletes the pod and its controller makes it again: a pod that
                    # is absent for that moment has nothing to kill, which is the aim.
                    with suppress(OaasLabError, OSError):
                        self.lab.kill(pod)
                if pending:
                    return failed("lose", f"still stopping: {', '.join(pending)}")
                return passed("lose", "stopped")

            wait_for(all_stopped, timeout=120.0, interval=1.0)
            for done in stops.values():
                done.result()
        return self._record("lose", pods)

    def stop(self, component: str, count: int) -> list[str]:
        """Stop ``count`` members cleanly and keep them down until ``start_stopped``."""
        pods = self.pick(component, count)
        for pod in pods:
            self.lab.stop(pod)
            self.stopped.append(pod)
        return self._record("stop", pods)

    def start_stopped(self) -> list[str]:
        """Start every member this scenario stopped."""
        pods, self.stopped = self.stopped, []
        errors: list[OaasLabError] = []
        for pod in pods:
            # One member that cannot be started must not leave the others down.
            try:
                self.lab.start(pod)
            except OaasLabError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
        # Starting nothing is no event: "time since the last fault" must not restart.
        return self._record("start", pods) if pods else []

    def _split(self, component: str, count: int) -> tuple[list[str], list[str]]:
        """The last ``count`` running members and the rest: the side a fault isolates is the
        highest ordinals, so the first member (where probes start) stays with the majority."""
        running = self._running(component, count)
        return running[-count:], running[:-count]

    def pause(self, component: str, count: int = 1) -> list[str]:
        """Freeze ``count`` members (the last running ones) until ``resume_paused``."""
        pods, _ = self._split(component, count)
        for pod in pods:
            self.paused.append(pod)
            self.lab.pause(pod)
        return self._record("pause", pods)

    def resume_paused(self) -> list[str]:
        """Thaw every member this scenario paused."""
        pods = list(self.paused)
        for pod in pods:
            self.lab.resume(pod)
            # Only once thawed: one that fails stays listed, and ``restore`` tries it again.
            self.paused.remove(pod)
        return self._record("resume", pods) if pods else []

    def isolate(self, component: str, count: int = 1, loss: float = 1.0) -> list[str]:
        """Cut the last ``count`` running members off from the component's other members (a
        partition, or with ``loss`` below 1 a lossy link between the two sides), until
        ``heal``. Clients and the front still reach both sides."""
        pods, rest = self._split(component, count)
        if not rest:
            raise UserError(f"isolating {count} of {len(pods)} {component} members leaves no "
                            "other side", hint="isolate fewer members")
        for pod in pods:
            self.cut.append(pod)
            self.lab.cut(pod, rest, loss)
        return self._record("partition" if loss >= 1.0 else f"loss {loss:.0%}", pods)

    def heal(self) -> list[str]:
        """Undo every network fault of this scenario."""
        pods = list(self.cut)
        for pod in pods:
            self.lab.heal(pod)
            self.cut.remove(pod)
        return self._record("heal", pods) if pods else []

    def kill_node(self, node: str) -> list[str]:
        """SIGKILL every pod on ``node``."""
        return self._record("kill node", self.lab.kill_node(node))

    def scale(self, component: str, replicas: int) -> None:
        """Change a component's member count, remembering the first count to restore it."""
        before = len(self.lab.members(component))
        # A scale may wait for the new members itself; time is counted from its start.
        began = self.clock()
        self.lab.scale(component, replicas)
        self.scaled.setdefault(component, before)
        self._record(f"scale to {replicas}", [component], at=began)

    def try_scale(self, component: str, replicas: int) -> UserError | None:
        """Ask for ``replicas`` members; the refusal (e.g. a ``QuorumError``) comes back
        instead of being raised, so a scenario can check its wording."""
        try:
            self.scale(component, replicas)
        except UserError as exc:
            return exc
        return None

    def last_pods(self) -> tuple[str, ...]:
        """The pods of the last fault."""
        return self.injected[-1].pods if self.injected else ()

    def since_last(self) -> float:
        """Seconds since the last fault (0 when none was injected)."""
        return self.clock() - self.injected[-1].at if self.injected else 0.0

    def restore(self) -> list[str]:
        """Undo what can be undone: resume paused members, heal cut-off ones, start stopped
        ones, scale components back.

        Returns what it did, for the scenario's report; raises nothing so that a failed
        scenario still reports its own failure rather than the clean-up's.
        """
        done: list[str] = []
        # Thawed and healed first: a paused or cut-off member must not outlive the scenario.
        for pods, undo, did in ((self.paused, self.lab.resume, "resumed"),
                                (self.cut, self.lab.heal, "healed"),
                                (self.stopped, self.lab.start, "started")):
            for pod in list(pods):
                try:
                    undo(pod)
                    done.append(f"{did} {pod}")
                except OaasLabError as exc:
                    done.append(f"could not undo {pod}: {exc.one_line()}")
            pods.clear()
        for component, replicas in self.scaled.items():
            try:
                if len(self.lab.members(component)) != replicas:
                    self.lab.scale(component, replicas)
                    done.append(f"scaled {component} back to {replicas}")
            except (LabError, UserError) as exc:
                done.append(f"could not scale {component}: {exc.one_line()}")
        self.scaled = {}
        return done
