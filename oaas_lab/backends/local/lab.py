"""``LocalLab``: the ``Lab`` seam implemented with network namespaces on this host.

A pod is a network namespace on the lab bridge with its daemon inside, run by the lab's own
supervisord. The facade observes (``members``, ``status``, ``logs``), reaches (``exec``,
``address``) and breaks (``kill``, ``stop``, ``kill_node``) pods itself, and gives the drivers
their pod contexts and ``run_in``; what changes the lab (``up``, ``scale``, ``down``) is the
``Orchestrator``'s (``orchestrator.py``). Readiness is the component's judge
(``oaas_lab.components``), the same one every scenario uses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from oaas_lab import components
from oaas_lab.adapters import iproute, netfault, shell
from oaas_lab.backends.local import network
from oaas_lab.backends.local.daemons import driver
from oaas_lab.backends.local.daemons.base import (
    Driver,
    PodContext,
    RenderedFile,
    main_log,
)
from oaas_lab.backends.local.network import Naming
from oaas_lab.backends.local.orchestrator import Orchestrator, lab_components
from oaas_lab.backends.local.pods import LabState, PodRecord, front_address, load_state
from oaas_lab.backends.local.supervisor import Supervisor
from oaas_lab.config import LabConfig
from oaas_lab.errors import CommandError, LabError, UserError
from oaas_lab.kernel import lock
from oaas_lab.kernel.command import CommandResult
from oaas_lab.kernel.lab import (
    ComponentStatus,
    Pod,
    PodState,
    ProgressCallback,
    UpReport,
)
from oaas_lab.kernel.results import CheckResult, failed
from oaas_lab.secrets import SecretStore

FRONT = "haproxy"
"""The component clients of Galera and the APIs go through (``Component.front``)."""
POD_DIRS = ("data", "log", "run", "tmp", "home", "etc", "secrets", "bin")
SUPERVISOR_STATES = {
    "RUNNING": PodState.RUNNING,
    "STARTING": PodState.STARTING,
    "BACKOFF": PodState.STARTING,
    "STOPPED": PodState.STOPPED,
    "STOPPING": PodState.STOPPED,
    "EXITED": PodState.FAILED,
    "FATAL": PodState.FAILED,
}


def write_file(rendered: RenderedFile) -> bool:
    """Write a configuration file if its content or mode differs; true when it changed.

    Secret-bearing files are created with their final mode, never widened afterwards.
    """
    path = rendered.path
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        same_mode = (path.stat().st_mode & 0o777) == rendered.mode
        if same_mode and path.read_text(encoding="utf-8") == rendered.content:
            return False
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, rendered.mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(rendered.content)
    os.chmod(path, rendered.mode)
    return True


class LocalLab:
    """The local lab (see the module docstring)."""

    def __init__(self, config: LabConfig) -> None:
        self.config = config
        self.name = config.name
        self.lab_dir = config.lab_dir
        self.naming = Naming(config.name)
        self.supervisor = Supervisor(self.lab_dir, config.name)
        self.secrets = SecretStore(self.lab_dir)
        self._update_lock = threading.Lock()
        self.orchestrator = Orchestrator(self)

    # --- state and contexts -------------------------------------------------------------------

    def state(self) -> LabState:
        state = load_state(self.lab_dir)
        if state is None:
            raise UserError(f"lab {self.name!r} is not up ({self.lab_dir} has no state)",
                            hint="run `oaas-lab up` first")
        return state

    def pod_dir(self, pod: str) -> Path:
        return self.lab_dir / "pods" / pod

    def ctx(self, state: LabState, pod: PodRecord) -> PodContext:
        others = {c: tuple(state.members(c)) for c in state.replicas}
        return PodContext(
            pod=pod,
            members=tuple(state.members(pod.component)),
            lab_name=self.name,
            pod_dir=self.pod_dir(pod.name),
            secrets=self.secrets,
            python=sys.executable,
            others=others,
            front_address=self.front_ip(state),
        )

    def front_ip(self, state: LabState) -> str:
        """The front's virtual address, or "" while no front member is recorded."""
        return front_address(state.subnet) if state.members(FRONT) else ""

    def driver(self, component: str) -> Driver:
        return driver(component)

    def program_names(self, state: LabState, pod: PodRecord) -> list[str]:
        return [p.name for p in self.driver(pod.component).programs(self.ctx(state, pod))]

    def hosts(self, state: LabState) -> str:
        pods = {p.name: p.ip for p in state.pods.values()}
        services: dict[str, str] = {}
        for component in state.replicas:
            members = state.members(component)
            if members:
                services[component] = members[0].ip
        front = self.front_ip(state)
        for entry in components.catalogue():
            if entry.name in services and entry.front == FRONT and front:
                # Clients of the database and the APIs go through HAProxy's virtual address,
                # as through a Service: losing one HAProxy member does not strand them.
                services[entry.name] = front
        return network.hosts_file(pods, services)

    def write_hosts(self, state: LabState) -> None:
        hosts = self.hosts(state)
        for pod in state.pods.values():
            network.write_netns_files(self.naming, pod.name, hosts)

    def render_pod(self, state: LabState, pod: PodRecord) -> bool:
        """Create the pod's directories, files and program definitions; true when changed."""
        ctx = self.ctx(state, pod)
        driver = self.driver(pod.component)
        for sub in POD_DIRS:
            (ctx.pod_dir / sub).mkdir(parents=True, exist_ok=True)
        changed = False
        for rendered in driver.files(ctx):
            changed |= write_file(rendered)
        for program in driver.programs(ctx):
            wrapped = dataclasses.replace(program, argv=tuple(shell.in_netns(
                self.naming.netns(pod.name), program.argv, hostname=pod.name)))
            changed |= self.supervisor.write_program(wrapped)
        return changed

    def apply_programs(self) -> None:
        with self._update_lock:
            self.supervisor.update()

    # --- PodRunner for the drivers ------------------------------------------------------------

    def run_in(
        self,
        pod: str,
        argv: Sequence[str],
        *,
        timeout: float = 30.0,
        input_text: str | None = None,
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """Run ``argv`` inside ``pod`` (its namespaces, hostname and environment + ``env``)."""
        state = self.state()
        record = state.pod(pod)
        env = {**self.driver(record.component).exec_env(self.ctx(state, record)), **(env or {})}
        done = shell.run(
            shell.in_netns(self.naming.netns(pod), argv, hostname=pod),
            timeout=timeout, env=env, input_text=input_text, check=False,
            cwd=self.pod_dir(pod),
        )
        if check and not done.ok:
            # Name the command run in the pod, not the namespace wrapper around it.
            raise CommandError([f"{pod}: {argv[0]}", *argv[1:]], done.returncode,
                               done.stderr or done.stdout)
        return done

    def signal_program(self, program: str, signame: str) -> None:
        """Send a signal to a supervised program."""
        self.supervisor.signal(program, signame)

    # --- change: the orchestrator does it -------------------------------------------------------

    def up(self, progress: ProgressCallback | None = None) -> UpReport:
        """Bring the lab's components up; a second call on a healthy lab changes nothing."""
        with lock.changing(self.lab_dir, self.name, "up"):
            return self.orchestrator.up(progress)

    def scale(
        self, component: str, replicas: int, progress: ProgressCallback | None = None
    ) -> None:
        """Change a component's member count; the odd rule is checked before anything changes."""
        with lock.changing(self.lab_dir, self.name, f"scale {component} {replicas}"):
            self.orchestrator.scale(component, replicas, progress)

    def down(self) -> None:
        """Remove everything this lab created; safe to call twice or after a failed ``up``."""
        if not self.lab_dir.exists():
            # Never up here: nothing to lock, but stray namespaces of the name still go.
            self.orchestrator.down()
            return
        with lock.changing(self.lab_dir, self.name, "down"):
            self.orchestrator.down()

    # --- readiness ----------------------------------------------------------------------------

    def check(self, component: str) -> CheckResult:
        """The component's readiness check, as ``status`` shows it."""
        try:
            return components.check(self, self.secrets, component)
        except LabError as exc:
            return failed(component, exc.message, hint=exc.hint)

    # --- observe ------------------------------------------------------------------------------

    def _pod(self, state: LabState, record: PodRecord, infos: dict[str, dict[str, object]]) -> Pod:
        main = self.program_names(state, record)[0]
        info = infos.get(main)
        if info is None:
            pod_state, reason = PodState.ABSENT, "no supervised program"
        else:
            statename = str(info.get("statename"))
            pod_state = SUPERVISOR_STATES.get(statename, PodState.FAILED)
            reason = "" if pod_state is PodState.RUNNING else (
                f"{statename}: {info.get('spawnerr') or info.get('description') or ''}".strip()
            )
        return Pod(name=record.name, component=record.component, ordinal=record.ordinal,
                   node=record.node, ip=record.ip, state=pod_state, reason=reason)

    def members(self, component: str) -> list[Pod]:
        """The pods of a component, ordered by ordinal."""
        state = self.state()
        infos = self.supervisor.all_info()
        return [self._pod(state, r, infos) for r in state.members(component)]

    def status(self) -> list[ComponentStatus]:
        """Every component, its pods and its readiness result (with the reason)."""
        state = load_state(self.lab_dir)
        rows = []
        for component in lab_components(self.config):
            if state is None or component.name not in state.replicas:
                rows.append(ComponentStatus(
                    component=component.name, desired=self.config.replicas(component.name),
                    pods=(), ready=failed(component.name, f"lab {self.name!r} is not up",
                                          hint="run `oaas-lab up`")))
                continue
            rows.append(ComponentStatus(
                component=component.name, desired=state.replicas[component.name],
                pods=tuple(self.members(component.name)), ready=self.check(component.name)))
        return rows

    def address(self, pod: str) -> str:
        """The pod's IP on the lab bridge (reachable from this host)."""
        return self.state().pod(pod).ip

    def service_address(self, component: str) -> str:
        """Where clients reach a component: HAProxy's virtual address for galera and the
        OpenStack APIs (as a Service would front them), else the first member."""
        state = self.state()
        fronted = component in state.replicas and components.by_name()[component].front == FRONT
        if fronted and self.front_ip(state):
            return self.front_ip(state)
        members = state.members(component)
        if not members:
            raise UserError(f"lab {self.name!r} runs no {component!r}",
                            hint=f"components: {', '.join(sorted(state.replicas))}")
        return members[0].ip

    def log_path(self, pod: str) -> str:
        """The file holding the pod's daemon output."""
        state = self.state()
        record = state.pod(pod)
        return str(main_log(self.ctx(state, record)))

    def logs(self, pod: str, lines: int = 50) -> str:
        """The last ``lines`` lines of the pod's log."""
        path = Path(self.log_path(pod))
        if not path.exists():
            return ""
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 256 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def exec(self, pod: str, argv: Sequence[str], timeout: float = 30.0) -> CommandResult:
        """Run ``argv`` inside the pod (its network, hosts file, hostname, environment)."""
        return self.run_in(pod, argv, timeout=timeout, check=False)

    # --- break --------------------------------------------------------------------------------

    def _daemon_pid(self, pod: str) -> int:
        state = self.state()
        main = self.program_names(state, state.pod(pod))[0]
        info = self.supervisor.info(main)
        pid = int(info["pid"]) if info and info.get("pid") else 0
        if not pid:
            state_name = info.get("statename") if info else "absent"
            raise LabError(f"pod {pod!r} has no running daemon (it is {state_name})",
                           hint="`oaas-lab up` starts a stopped pod again")
        return pid

    def kill(self, pod: str) -> None:
        """SIGKILL the pod's daemon (with its workers); supervisord restarts it."""
        pid = self._daemon_pid(pod)
        state = self.state()
        record = state.pod(pod)
        main = self.driver(record.component).programs(self.ctx(state, record))[0]
        # The PID came from this lab's supervisord, so it is one of the lab's own daemons; a
        # pre-forking server leads its own process group (supervisord makes each program one),
        # and a killed pod loses its workers too.
        if main.group:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)

    def stop(self, pod: str) -> None:
        """Stop the pod's programs; they stay stopped until ``start``."""
        state = self.state()
        for name in self.program_names(state, state.pod(pod)):
            self.supervisor.stop(name)

    def start(self, pod: str) -> None:
        """Start the pod's programs again."""
        state = self.state()
        for name in self.program_names(state, state.pod(pod)):
            self.supervisor.start(name)

    def _processes(self, pod: str) -> list[int]:
        """Every process in the pod's network namespace: its daemon, workers and children."""
        self.state().pod(pod)
        return iproute.netns_pids(self.naming.netns(pod))

    def pause(self, pod: str) -> None:
        """SIGSTOP every process of the pod (the lab's own: they live in its namespace)."""
        pids = self._processes(pod)
        if not pids:
            raise LabError(f"pod {pod!r} runs no process to pause",
                           hint="`oaas-lab up` starts a stopped pod again")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def resume(self, pod: str) -> None:
        """SIGCONT every process of the pod."""
        for pid in self._processes(pod):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def _enter(self, pod: str) -> list[str]:
        self.state().pod(pod)
        return ["ip", "netns", "exec", self.naming.netns(pod)]

    def cut(self, pod: str, peers: Sequence[str], loss: float = 1.0) -> None:
        """Drop packets between the pod and ``peers`` in the pod's own namespace."""
        state = self.state()
        netfault.cut(self._enter(pod), [state.pod(p).ip for p in peers], loss)

    def slow(self, pod: str, kbit: int) -> None:
        """Rate-limit the pod's side of its veth."""
        netfault.slow(self._enter(pod), network.POD_IFNAME, kbit)

    def heal(self, pod: str) -> None:
        """Remove the pod's drop rules and rate limit."""
        netfault.heal(self._enter(pod), [network.POD_IFNAME])

    def kill_node(self, node: str) -> list[str]:
        """SIGKILL every program of every pod on ``node``; returns the pods hit."""
        state = self.state()
        pods = sorted((p for p in state.pods.values() if p.node == node),
                      key=lambda p: (p.component, p.ordinal))
        if not pods:
            nodes = sorted({p.node for p in state.pods.values()})
            raise UserError(f"lab {self.name!r} has no pod on node {node!r}",
                            hint=f"nodes: {', '.join(nodes)}")
        hit = []
        for pod in pods:
            pids = self.supervisor.pids(self.program_names(state, pod))
            for pid in pids.values():
                os.kill(pid, signal.SIGKILL)
            if pids:
                hit.append(pod.name)
        return hit
