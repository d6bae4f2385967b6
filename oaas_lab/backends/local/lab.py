"""``LocalLab``: the ``Lab`` seam implemented with network namespaces on this host.

``up`` creates the lab bridge, one namespace per pod, the lab's supervisord, then starts the
infrastructure tier and the OpenStack tier in dependency order (``components.waves``):
independent components start in parallel, each as soon as its own dependencies are ready, and
each runs its init job (``prepare``), starts its members, bootstraps (``converge``) and waits
for its own readiness check. ``progress`` is called from those parallel workers. Everything
the lab runs is recorded in ``<lab_dir>/state.json`` so that any later command (``status``,
``scale``, ``kill``, ``down``) finds it. ``down`` only ever kills this lab's supervisord (by
PID) and processes inside this lab's namespaces.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from oaas_lab import components
from oaas_lab.adapters import iproute, shell
from oaas_lab.backends.local import network
from oaas_lab.backends.local.daemons import driver
from oaas_lab.backends.local.daemons.base import (
    Driver,
    PodContext,
    RenderedFile,
    main_log,
)
from oaas_lab.backends.local.network import Naming
from oaas_lab.backends.local.pods import LabState, PodRecord, load_state, save_state
from oaas_lab.backends.local.supervisor import Supervisor
from oaas_lab.config import LabConfig
from oaas_lab.errors import CommandError, LabError, NotReadyError, UserError
from oaas_lab.kernel.command import CommandResult
from oaas_lab.kernel.lab import (
    ComponentStatus,
    Pod,
    PodState,
    ProgressCallback,
    UpReport,
)
from oaas_lab.kernel.results import CheckResult, failed, passed
from oaas_lab.kernel.wait import WaitTimeoutError, wait_for
from oaas_lab.secrets import SecretStore

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


def infra_components() -> list[components.Component]:
    """The infrastructure tier."""
    return [c for c in components.catalogue() if c.tier is components.Tier.INFRA]


def lab_components(config: LabConfig) -> list[components.Component]:
    """What the lab runs: the infrastructure tier, and the OpenStack tier unless turned off."""
    if config.local.openstack:
        return list(components.catalogue())
    return infra_components()


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
        self._lock = threading.RLock()
        self._update_lock = threading.Lock()

    # --- state and contexts -------------------------------------------------------------------

    def _state(self) -> LabState:
        state = load_state(self.lab_dir)
        if state is None:
            raise UserError(f"lab {self.name!r} is not up ({self.lab_dir} has no state)",
                            hint="run `oaas-lab up` first")
        return state

    def _pod_dir(self, pod: str) -> Path:
        return self.lab_dir / "pods" / pod

    def _ctx(self, state: LabState, pod: PodRecord) -> PodContext:
        others = {c: tuple(state.members(c)) for c in state.replicas}
        return PodContext(
            pod=pod,
            members=tuple(state.members(pod.component)),
            lab_name=self.name,
            pod_dir=self._pod_dir(pod.name),
            secrets=self.secrets,
            python=sys.executable,
            others=others,
        )

    def _driver(self, component: str) -> Driver:
        return driver(component)

    def _program_names(self, state: LabState, pod: PodRecord) -> list[str]:
        return [p.name for p in self._driver(pod.component).programs(self._ctx(state, pod))]

    def _hosts(self, state: LabState) -> str:
        pods = {p.name: p.ip for p in state.pods.values()}
        services: dict[str, str] = {}
        for component in state.replicas:
            members = state.members(component)
            if members:
                services[component] = members[0].ip
        for entry in components.catalogue():
            front = state.members(entry.front) if entry.front else []
            if entry.name in services and front:
                # Clients of the database and the APIs go through HAProxy, as through a Service.
                services[entry.name] = front[0].ip
        return network.hosts_file(pods, services)

    def _write_hosts(self, state: LabState) -> None:
        hosts = self._hosts(state)
        for pod in state.pods.values():
            network.write_netns_files(self.naming, pod.name, hosts)

    def _render_pod(self, state: LabState, pod: PodRecord) -> bool:
        """Create the pod's directories, files and program definitions; true when changed."""
        ctx = self._ctx(state, pod)
        driver = self._driver(pod.component)
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

    def _apply_programs(self) -> None:
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
        state = self._state()
        record = state.pod(pod)
        env = {**self._driver(record.component).exec_env(self._ctx(state, record)), **(env or {})}
        done = shell.run(
            shell.in_netns(self.naming.netns(pod), argv, hostname=pod),
            timeout=timeout, env=env, input_text=input_text, check=False,
            cwd=self._pod_dir(pod),
        )
        if check and not done.ok:
            # Name the command run in the pod, not the namespace wrapper around it.
            raise CommandError([f"{pod}: {argv[0]}", *argv[1:]], done.returncode,
                               done.stderr or done.stdout)
        return done

    def signal_program(self, program: str, signame: str) -> None:
        """Send a signal to a supervised program."""
        self.supervisor.signal(program, signame)

    # --- up -----------------------------------------------------------------------------------

    def up(self, progress: ProgressCallback | None = None) -> UpReport:
        """Bring the lab's components up; a second call on a healthy lab changes nothing."""
        started = time.monotonic()
        report: Callable[[str, str], None] = (
            (lambda c, m: progress(c, m, time.monotonic() - started)) if progress
            else (lambda c, m: None)
        )
        comps = lab_components(self.config)
        for component in comps:
            components.check_replicas(component, self.config.replicas(component.name))
        # Daemons' data (Galera's write-set cache, RabbitMQ's cookie) may hold secret material:
        # nobody but root gets into the lab directory.
        self.lab_dir.mkdir(parents=True, exist_ok=True)
        self.lab_dir.chmod(0o700)
        with self._lock:
            state = load_state(self.lab_dir) or LabState(self.name, self.config.local.subnet)
            if state.subnet != self.config.local.subnet:
                raise UserError(
                    f"lab {self.name!r} runs on {state.subnet}, not {self.config.local.subnet}",
                    hint="run `oaas-lab down` first, or use the lab's subnet",
                )
            owners = network.subnet_owners(state.subnet, self.naming.bridge)
            if owners:
                raise UserError(
                    f"subnet {state.subnet} of lab {self.name!r} is already used by "
                    f"{', '.join(owners)} on this host",
                    hint="choose another local.subnet (OAAS_LAB_LOCAL__SUBNET) for this lab",
                )
            for component in comps:
                if component.name not in state.replicas:
                    state.replicas[component.name] = self.config.replicas(component.name)
                for ordinal in range(state.replicas[component.name]):
                    name = f"{component.name}-{ordinal}"
                    if name not in state.pods:
                        state.add_pod(component, ordinal, self.config.local.controller_nodes,
                                      self.config.local.compute_nodes)
            save_state(self.lab_dir, state)
        changed: list[str] = []
        if network.ensure_bridge(self.naming, state.subnet):
            report("lab", f"bridge {self.naming.bridge} created")
        for pod in state.pods.values():
            if network.create_pod(self.naming, pod.name, pod.ip, state.subnet):
                changed.append(pod.component)
        self._write_hosts(state)
        state.supervisord_pid = self.supervisor.ensure_running()
        save_state(self.lab_dir, state)
        ready_seconds: dict[str, float] = {}
        # Waves give the order; within it each component starts as soon as its own
        # dependencies are ready, so HAProxy does not wait for an unrelated slow RabbitMQ.
        order = [c for wave in components.waves(comps) for c in wave]
        futures: dict[str, Future[tuple[float, bool]]] = {}
        with ThreadPoolExecutor(max_workers=len(order)) as pool:
            for component in order:
                deps = [futures[d] for d in component.depends_on if d in futures]
                futures[component.name] = pool.submit(
                    self._up_after, deps, state, component.name, report)
            errors: list[Exception] = []
            for name, future in futures.items():
                try:
                    seconds, was_changed = future.result()
                except Exception as exc:  # re-raised below once every component is done
                    errors.append(exc)
                    continue
                ready_seconds[name] = seconds
                if was_changed:
                    changed.append(name)
        if errors:
            # The first failure in dependency order; the others are usually its consequence.
            raise errors[0]
        ordered = [c.name for c in comps if c.name in set(changed)]
        return UpReport(ready_seconds=ready_seconds, changed=tuple(ordered),
                        total_seconds=time.monotonic() - started)

    def _programs_running(self, state: LabState, component: str) -> bool:
        infos = self.supervisor.all_info()
        for pod in state.members(component):
            for name in self._program_names(state, pod):
                if infos.get(name, {}).get("statename") != "RUNNING":
                    return False
        return True

    def _up_after(
        self, deps: list[Future[tuple[float, bool]]], state: LabState, component: str,
        report: Callable[[str, str], None],
    ) -> tuple[float, bool]:
        for dep in deps:
            dep.result()  # a failed dependency fails this component too, without starting it
        return self._up_component(state, component, report)

    def _up_component(
        self, state: LabState, component: str, report: Callable[[str, str], None]
    ) -> tuple[float, bool]:
        """Start one component and wait for it; returns (ready seconds, changed)."""
        started = time.monotonic()
        driver = self._driver(component)
        pods = state.members(component)
        changed = False
        for pod in pods:
            changed |= self._render_pod(state, pod)
        openstack = components.by_name()[component].tier is components.Tier.OPENSTACK
        if not changed and self._programs_running(state, component):
            result = self.check(component)
            if result.ok:
                if openstack:
                    # What the services bootstrap through the APIs (users, catalogue, flavors,
                    # the guest image) is ensured again: an earlier `up` may have stopped
                    # between starting the members and creating it.
                    driver.converge([self._ctx(state, p) for p in pods], self)
                report(component, "unchanged, ready")
                return time.monotonic() - started, False
        ctxs = [self._ctx(state, p) for p in pods]
        if openstack:
            report(component, "preparing")
        driver.prepare(ctxs, self)
        report(component, f"starting {len(pods)} member(s)")
        self._apply_programs()
        for pod in pods:
            for name in self._program_names(state, pod):
                self.supervisor.start(name)
        report(component, "bootstrapping" if openstack else "forming the cluster")
        driver.converge(ctxs, self)
        self._wait_ready(component, report)
        seconds = time.monotonic() - started
        report(component, f"ready in {seconds:.1f}s")
        return seconds, True

    def _wait_ready(self, component: str, report: Callable[[str, str], None]) -> CheckResult:
        last = [""]

        def on_poll(result: CheckResult, _elapsed: float) -> None:
            if not result.ok and result.detail != last[0]:
                last[0] = result.detail
                report(component, f"waiting: {result.detail}")

        try:
            return wait_for(lambda: self.check(component),
                            timeout=self.config.ready_timeout(component), interval=1.0,
                            progress=on_poll)
        except WaitTimeoutError as exc:
            pods = self._state().members(component)
            log = self.log_path(pods[0].name) if pods else str(self.lab_dir)
            raise NotReadyError(component, exc.last.detail, log) from None

    def check(self, component: str) -> CheckResult:
        """The component's readiness check, as ``status`` shows it."""
        try:
            return components.check(self, self.secrets, component)
        except LabError as exc:
            return failed(component, exc.message, hint=exc.hint)

    # --- observe ------------------------------------------------------------------------------

    def _pod(self, state: LabState, record: PodRecord, infos: dict[str, dict[str, object]]) -> Pod:
        main = self._program_names(state, record)[0]
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
        state = self._state()
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
        return self._state().pod(pod).ip

    def service_address(self, component: str) -> str:
        """Where clients reach a component: HAProxy for galera and the OpenStack APIs (as a
        Service would front them), else the first member."""
        state = self._state()
        front = components.by_name()[component].front if component in state.replicas else ""
        if front and state.members(front):
            return state.members(front)[0].ip
        members = state.members(component)
        if not members:
            raise UserError(f"lab {self.name!r} runs no {component!r}",
                            hint=f"components: {', '.join(sorted(state.replicas))}")
        return members[0].ip

    def log_path(self, pod: str) -> str:
        """The file holding the pod's daemon output."""
        state = self._state()
        record = state.pod(pod)
        return str(main_log(self._ctx(state, record)))

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
        state = self._state()
        main = self._program_names(state, state.pod(pod))[0]
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
        state = self._state()
        record = state.pod(pod)
        main = self._driver(record.component).programs(self._ctx(state, record))[0]
        # The PID came from this lab's supervisord, so it is one of the lab's own daemons; a
        # pre-forking server leads its own process group (supervisord makes each program one),
        # and a killed pod loses its workers too.
        if main.group:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)

    def stop(self, pod: str) -> None:
        """Stop the pod's programs; they stay stopped until ``start``."""
        state = self._state()
        for name in self._program_names(state, state.pod(pod)):
            self.supervisor.stop(name)

    def start(self, pod: str) -> None:
        """Start the pod's programs again."""
        state = self._state()
        for name in self._program_names(state, state.pod(pod)):
            self.supervisor.start(name)

    def kill_node(self, node: str) -> list[str]:
        """SIGKILL every program of every pod on ``node``; returns the pods hit."""
        state = self._state()
        pods = sorted((p for p in state.pods.values() if p.node == node),
                      key=lambda p: (p.component, p.ordinal))
        if not pods:
            nodes = sorted({p.node for p in state.pods.values()})
            raise UserError(f"lab {self.name!r} has no pod on node {node!r}",
                            hint=f"nodes: {', '.join(nodes)}")
        hit = []
        for pod in pods:
            pids = self.supervisor.pids(self._program_names(state, pod))
            for pid in pids.values():
                os.kill(pid, signal.SIGKILL)
            if pids:
                hit.append(pod.name)
        return hit

    # --- scale --------------------------------------------------------------------------------

    def scale(
        self, component: str, replicas: int, progress: ProgressCallback | None = None
    ) -> None:
        """Change a component's member count; the odd rule is checked before anything changes."""
        started = time.monotonic()

        def report(c: str, m: str) -> None:
            if progress:
                progress(c, m, time.monotonic() - started)

        spec = components.spec(component).entry
        self._driver(component)  # a component the local lab cannot run is refused here
        components.check_replicas(spec, replicas)
        with self._lock:
            state = self._state()
            current = state.members(component)
            if replicas == len(current):
                report(component, f"already {replicas} member(s)")
                return
            if replicas > len(current):
                steps = [replicas]
                if self._driver(component).one_member_at_a_time:
                    steps = list(range(len(current) + 1, replicas + 1))
                for step in steps:
                    self._scale_out(state, spec, step, report)
                    if step != replicas:
                        self._wait_ready(component, report)
            else:
                self._scale_in(state, component, replicas, report)
        self._follow(state, component, report)
        self._wait_ready(component, report)
        report(component, f"{replicas} member(s) ready")

    def _scale_out(self, state: LabState, spec: components.Component, replicas: int,
                   report: Callable[[str, str], None]) -> None:
        current = len(state.members(spec.name))
        for ordinal in range(current, replicas):
            state.add_pod(spec, ordinal, self.config.local.controller_nodes,
                          self.config.local.compute_nodes)
        state.replicas[spec.name] = replicas
        save_state(self.lab_dir, state)
        members = state.members(spec.name)
        driver = self._driver(spec.name)
        try:
            for pod in members[current:]:
                network.create_pod(self.naming, pod.name, pod.ip, state.subnet)
            self._write_hosts(state)
            report(spec.name, f"adding {replicas - current} member(s)")
            ctxs = [self._ctx(state, p) for p in members]
            driver.before_start(ctxs[current:], ctxs[:current], self)
            for pod in members:
                self._render_pod(state, pod)
            driver.prepare([self._ctx(state, p) for p in members], self)
            self._apply_programs()
            driver.converge([self._ctx(state, p) for p in members], self)
        except Exception:
            # Leave the component as it was, so that the same scale can simply be retried.
            report(spec.name, "scale-out failed: removing the new members again")
            keep = [self._ctx(state, p) for p in members[:current]]
            for pod in reversed(members[current:]):
                with contextlib.suppress(LabError):
                    driver.leave(self._ctx(state, pod), keep, self)
                for name in self._program_names(state, pod):
                    self.supervisor.stop(name)
                    self.supervisor.remove_program_file(name)
                self._apply_programs()
                self._remove_pod(state, pod)
            state.replicas[spec.name] = current
            save_state(self.lab_dir, state)
            self._write_hosts(state)
            raise

    def _scale_in(self, state: LabState, component: str, replicas: int,
                  report: Callable[[str, str], None]) -> None:
        driver = self._driver(component)
        members = state.members(component)
        keep, drop = members[:replicas], members[replicas:]
        keep_ctxs = [self._ctx(state, p) for p in keep]
        for pod in reversed(drop):
            report(component, f"removing {pod.name}")
            driver.leave(self._ctx(state, pod), keep_ctxs, self)
            for name in self._program_names(state, pod):
                self.supervisor.stop(name)
                self.supervisor.remove_program_file(name)
            self._apply_programs()
            self._remove_pod(state, pod)
        state.replicas[component] = replicas
        save_state(self.lab_dir, state)
        self._write_hosts(state)
        for pod in keep:
            self._render_pod(state, pod)

    def _remove_pod(self, state: LabState, pod: PodRecord) -> None:
        netns = self.naming.netns(pod.name)
        iproute.kill_netns_processes(netns)
        self._wait_netns_empty(netns)
        network.delete_pod(self.naming, pod.name, pod.ip)
        shutil.rmtree(self._pod_dir(pod.name), ignore_errors=True)
        del state.pods[pod.name]
        save_state(self.lab_dir, state)

    def _follow(self, state: LabState, component: str,
                report: Callable[[str, str], None]) -> None:
        """Re-render the daemons that list ``component``'s members and reload them."""
        for other in state.replicas:
            watcher = self._driver(other)
            if component not in watcher.watches:
                continue
            for pod in state.members(other):
                if self._render_pod(state, pod):
                    report(other, f"{pod.name} follows {component}: reloading")
                    watcher.reload(self._ctx(state, pod), self)

    # --- down ---------------------------------------------------------------------------------

    def _wait_netns_empty(self, netns: str) -> None:
        def empty() -> CheckResult:
            pids = iproute.netns_pids(netns)
            if not pids:
                return passed("down", f"{netns} empty")
            iproute.kill_netns_processes(netns)
            return failed("down", f"{netns} still has {pids}")

        try:
            wait_for(empty, timeout=20.0, interval=0.2)
        except WaitTimeoutError as exc:
            raise LabError(f"cannot empty namespace {netns}: {exc.last.detail}",
                           hint="look at those processes with `ps`") from None

    def _lab_netns(self, state: LabState | None) -> list[str]:
        found = set()
        if state is not None:
            found |= {self.naming.netns(p) for p in state.pods}
        names = [c.name for c in components.catalogue()]
        found |= {ns for ns in iproute.netns_list() if self.naming.owns_netns(ns, names)}
        return sorted(found)

    def down(self) -> None:
        """Remove everything this lab created; safe to call twice or after a failed ``up``."""
        with self._lock:
            state = load_state(self.lab_dir)
            self.supervisor.kill_daemon()
            if state is not None and state.supervisord_pid and self.supervisor.is_ours(
                state.supervisord_pid
            ):
                os.kill(state.supervisord_pid, signal.SIGKILL)
            namespaces = self._lab_netns(state)
            for netns in namespaces:
                iproute.kill_netns_processes(netns)
            for netns in namespaces:
                self._wait_netns_empty(netns)
            ips = {self.naming.netns(p.name): p.ip for p in (state.pods.values() if state else [])}
            for netns in namespaces:
                pod = netns[len(self.name) + 1:]
                network.delete_pod(self.naming, pod, ips.get(netns))
            for link in network.lab_links(self.naming):
                if link != self.naming.bridge:
                    shell.run(["ip", "link", "del", link], check=False)
            network.delete_bridge(self.naming)
            for mount in network.lab_mounts(self.naming):
                shell.run(["umount", mount], check=False)
            for leftover in ("pods", "shared", "supervisor.d", "galera-election"):
                shutil.rmtree(self.lab_dir / leftover, ignore_errors=True)
            # clouds.yaml holds the admin password and points at a cloud that is gone now.
            for leftover in ("state.json", "supervisor.sock", "supervisord.pid", "clouds.yaml"):
                (self.lab_dir / leftover).unlink(missing_ok=True)
