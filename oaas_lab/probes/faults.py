"""Faults a scenario injects, remembered so they can be measured against and undone.

``Faults`` wraps the ``Lab`` verbs (kill, stop, start, kill_node, scale) and records what was
done and when, so a scenario can ask "how long since the fault until full membership" and the
end of a scenario can start every member it stopped and put every scaled component back.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field

from oaas_lab.adapters import sql
from oaas_lab.backends.base import Lab, PodState
from oaas_lab.checks import CheckResult, failed, passed
from oaas_lab.credentials import (
    GALERA_APP_SECRET as SQL_SECRET,
)
from oaas_lab.credentials import (
    GALERA_APP_USER as SQL_USER,
)
from oaas_lab.errors import LabError, UserError
from oaas_lab.secrets import SecretStore
from oaas_lab.wait import WaitTimeoutError, wait_for


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

    def _record(self, action: str, pods: list[str], at: float | None = None) -> list[str]:
        self.injected.append(Fault(action, tuple(pods), self.clock() if at is None else at))
        return pods

    def pick(self, component: str, count: int) -> list[str]:
        """The first ``count`` running members of a component (by ordinal, so runs repeat)."""
        running = [p.name for p in self.lab.members(component) if p.state == PodState.RUNNING]
        if len(running) < count:
            raise UserError(
                f"{component} has {len(running)} running members, cannot take {count}",
                hint="wait for the component to be healthy before injecting a fault",
            )
        return running[:count]

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
        pods = self.pick(component, count)
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
                    with suppress(LabError, OSError):
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
        for pod in pods:
            self.lab.start(pod)
        # Starting nothing is no event: "time since the last fault" must not restart.
        return self._record("start", pods) if pods else []

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
        """Undo what can be undone: start stopped members, scale components back.

        Returns what it did, for the scenario's report; raises nothing so that a failed
        scenario still reports its own failure rather than the clean-up's.
        """
        done: list[str] = []
        for pod in list(self.stopped):
            try:
                self.lab.start(pod)
                done.append(f"started {pod}")
            except (LabError, UserError) as exc:
                done.append(f"could not start {pod}: {exc.one_line()}")
        self.stopped = []
        for component, replicas in self.scaled.items():
            try:
                if len(self.lab.members(component)) != replicas:
                    self.lab.scale(component, replicas)
                    done.append(f"scaled {component} back to {replicas}")
            except (LabError, UserError) as exc:
                done.append(f"could not scale {component}: {exc.one_line()}")
        self.scaled = {}
        return done


def writer_identity(lab: Lab, store: SecretStore) -> dict[str, str]:
    """What the Galera service address answers to a SQL client: node name, host, address."""
    with sql.connect(
        lab.service_address("galera"), user=SQL_USER, password=store.get(SQL_SECRET), timeout=3.0
    ) as conn:
        rows = sql.query(
            conn, "SELECT @@hostname, @@wsrep_node_name, @@wsrep_node_address"
        )
    host, node, address = (str(v or "") for v in rows[0])
    return {"hostname": host, "wsrep_node_name": node, "wsrep_node_address": address}


def match_writer(identity: dict[str, str], pods: dict[str, str]) -> str | None:
    """The pod (name -> address) whose name or address matches the writer's identity."""
    names = {identity.get("hostname", ""), identity.get("wsrep_node_name", "")}
    address = identity.get("wsrep_node_address", "").split(":")[0]
    for pod, ip in pods.items():
        if pod in names or (address and ip == address):
            return pod
    for pod in pods:
        # Hostnames may carry a lab prefix or a domain ("oaas-galera-1.lab").
        if any(re.search(rf"(^|[-.]){re.escape(pod)}($|[.])", n) for n in names if n):
            return pod
    return None


def active_writer(lab: Lab, store: SecretStore) -> str:
    """The Galera member the service address (HAProxy) sends writes to now."""
    identity = writer_identity(lab, store)
    pods = {p.name: p.ip for p in lab.members("galera")}
    pod = match_writer(identity, pods)
    if pod is None:
        raise LabError(
            f"the Galera writer {identity} matches none of {', '.join(pods)}",
            hint="check wsrep_node_name/hostname of the Galera pods",
        )
    return pod


def etcd_leader(lab: Lab) -> str:
    """The etcd member that is the raft leader now."""
    from oaas_lab.checks.quorum import EtcdView, observe_etcd

    for pod, view in observe_etcd(lab).items():
        if isinstance(view, EtcdView) and view.leader and view.leader == view.member_id:
            return pod
    raise LabError("no etcd member reports itself as leader",
                   hint="check the etcd membership first (oaas-lab status)")


def time_until(check: Callable[[], CheckResult], timeout: float, interval: float = 1.0
               ) -> tuple[CheckResult, float]:
    """Wait until ``check`` passes; returns the last result and the seconds it took.

    A timeout is not raised: the failed result comes back (with the waited time in its
    detail), so the scenario asserts on it and the report shows what was seen last.
    """
    started = time.monotonic()
    try:
        result = wait_for(check, timeout=timeout, interval=interval)
    except WaitTimeoutError as exc:
        last = exc.last
        return failed(
            last.name, f"not within {timeout:.0f}s: {last.detail}", hint=last.hint,
            **dict(last.evidence),
        ), time.monotonic() - started
    return result, time.monotonic() - started


def rejoin_method(log_text: str) -> str:
    """How a Galera member got its state at its last start: ``IST``, ``SST`` or ``unknown``.

    Only the log after the member's last start counts; an earlier SST does not make a later
    rejoin an SST.
    """
    starts = [m.end() for m in re.finditer(r"Starting MariaDB|starting as process", log_text)]
    tail = log_text[starts[-1]:] if starts else log_text
    # The SST script runs on every join and only then learns which transfer it got, and Galera
    # logs "IST received" after an SST too (the catch-up after the copy), so the SST markers
    # are looked at first.
    if re.search(r"\bSST completed on joiner|Proceeding with SST|IST will be unavailable", tail):
        return "SST"
    if re.search(r"\bIST completed on joiner|IST received", tail):
        return "IST"
    return "unknown"


def rejoined_by_ist(lab: Lab, pod: str, lines: int = 2000) -> CheckResult:
    """The member's log since its last start shows an incremental state transfer."""
    method = rejoin_method(lab.logs(pod, lines=lines))
    name = f"{pod} rejoin"
    if method == "IST":
        return passed(name, "rejoined by IST (incremental state transfer)")
    return failed(
        name, f"rejoin method is {method}, not IST",
        hint=f"a full SST means the member lost its position: read {lab.log_path(pod)}",
    )
