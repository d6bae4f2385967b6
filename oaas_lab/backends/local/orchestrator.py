"""What changes a local lab: ``up``, ``scale`` and ``down``. ``LocalLab`` (the seam) delegates
to it, as ``K8sLab`` delegates to its deployer.

``up`` creates the lab bridge, one namespace per pod, the lab's supervisord, then starts the
infrastructure tier and the OpenStack tier in dependency order (``components.waves``):
independent components start in parallel, each as soon as its own dependencies are ready, and
each runs its init job (``prepare``), starts its members, bootstraps (``converge``) and waits
for its component's judge. ``progress`` is called from those parallel workers. Everything the lab
runs is recorded in ``<lab_dir>/state.json`` so that any later command finds it. ``down`` only
ever kills this lab's supervisord (by PID) and processes inside this lab's namespaces.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from oaas_lab import components
from oaas_lab.adapters import iproute, shell
from oaas_lab.backends.local import capacity, network
from oaas_lab.backends.local.pods import LabState, PodRecord, load_state, save_state
from oaas_lab.config import LabConfig
from oaas_lab.errors import LabError, NotReadyError, UserError
from oaas_lab.kernel.lab import ProgressCallback, UpReport
from oaas_lab.kernel.results import CheckResult, failed, passed
from oaas_lab.kernel.wait import until

if TYPE_CHECKING:
    from oaas_lab.backends.local.lab import LocalLab


def infra_components() -> list[components.Component]:
    """The infrastructure tier."""
    return [c for c in components.catalogue() if c.tier is components.Tier.INFRA]


def lab_components(config: LabConfig) -> list[components.Component]:
    """What the lab runs: the infrastructure tier, and the OpenStack tier unless turned off."""
    if config.local.openstack:
        return list(components.catalogue())
    return infra_components()


class Orchestrator:
    """Brings a local lab up, scales its components and takes it down (module docstring)."""

    def __init__(self, lab: LocalLab) -> None:
        self.lab = lab
        self._lock = threading.RLock()

    # --- up -----------------------------------------------------------------------------------

    def up(self, progress: ProgressCallback | None = None) -> UpReport:
        """Bring the lab's components up; a second call on a healthy lab changes nothing."""
        started = time.monotonic()
        report: Callable[[str, str], None] = (
            (lambda c, m: progress(c, m, time.monotonic() - started)) if progress
            else (lambda c, m: None)
        )
        comps = lab_components(self.lab.config)
        for component in comps:
            components.check_replicas(component, self.lab.config.replicas(component.name))
        # Daemons' data (Galera's write-set cache, RabbitMQ's cookie) may hold secret material:
        # nobody but root gets into the lab directory.
        self.lab.lab_dir.mkdir(parents=True, exist_ok=True)
        self.lab.lab_dir.chmod(0o700)
        with self._lock:
            subnet = self.lab.config.local.subnet
            state = load_state(self.lab.lab_dir) or LabState(self.lab.name, subnet)
            if state.subnet != subnet:
                raise UserError(
                    f"lab {self.lab.name!r} runs on {state.subnet}, not {subnet}",
                    hint="run `oaas-lab down` first, or use the lab's subnet",
                )
            owners = network.subnet_owners(state.subnet, self.lab.naming.bridge)
            if owners:
                raise UserError(
                    f"subnet {state.subnet} of lab {self.lab.name!r} is already used by "
                    f"{', '.join(owners)} on this host",
                    hint="choose another local.subnet (OAAS_LAB_LOCAL__SUBNET) for this lab",
                )
            running = {name: len(state.members(name)) for name in state.replicas}
            wanted = {c.name: state.replicas.get(c.name, self.lab.config.replicas(c.name))
                      for c in comps}
            capacity.check_up(running, wanted, capacity.host_room(len(state.pods)))
            for component in comps:
                if component.name not in state.replicas:
                    state.replicas[component.name] = self.lab.config.replicas(component.name)
                for ordinal in range(state.replicas[component.name]):
                    name = f"{component.name}-{ordinal}"
                    if name not in state.pods:
                        state.add_pod(component, ordinal, self.lab.config.local.controller_nodes,
                                      self.lab.config.local.compute_nodes)
            save_state(self.lab.lab_dir, state)
        changed: list[str] = []
        if network.ensure_bridge(self.lab.naming, state.subnet):
            report("lab", f"bridge {self.lab.naming.bridge} created")
        for pod in state.pods.values():
            if network.create_pod(self.lab.naming, pod.name, pod.ip, state.subnet):
                changed.append(pod.component)
        self.lab.write_hosts(state)
        state.supervisord_pid = self.lab.supervisor.ensure_running()
        save_state(self.lab.lab_dir, state)
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
        infos = self.lab.supervisor.all_info()
        for pod in state.members(component):
            for name in self.lab.program_names(state, pod):
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
        driver = self.lab.driver(component)
        pods = state.members(component)
        rewritten = [pod for pod in pods if self.lab.render_pod(state, pod)]
        changed = bool(rewritten)
        was_running = self._programs_running(state, component)
        openstack = components.by_name()[component].tier is components.Tier.OPENSTACK
        if not changed and was_running:
            result = self.lab.check(component)
            if result.ok:
                if openstack:
                    # What the services bootstrap through the APIs (users, catalogue, flavors,
                    # the guest image) is ensured again: an earlier `up` may have stopped
                    # between starting the members and creating it.
                    driver.converge([self.lab.ctx(state, p) for p in pods], self.lab)
                report(component, "unchanged, ready")
                return time.monotonic() - started, False
        ctxs = [self.lab.ctx(state, p) for p in pods]
        if openstack:
            report(component, "preparing")
        driver.prepare(ctxs, self.lab)
        report(component, f"starting {len(pods)} member(s)")
        self.lab.apply_programs()
        for pod in pods:
            for name in self.lab.program_names(state, pod):
                self.lab.supervisor.start(name)
        report(component, "bootstrapping" if openstack else "forming the cluster")
        driver.converge(ctxs, self.lab)
        self._wait_ready(component, report)
        if was_running:
            self._apply_rewritten(state, component, rewritten, report)
        seconds = time.monotonic() - started
        report(component, f"ready in {seconds:.1f}s")
        return seconds, True

    def _apply_rewritten(self, state: LabState, component: str, pods: list[PodRecord],
                         report: Callable[[str, str], None]) -> None:
        """Members that ran while their files were rewritten still run the old ones: reload
        those that can re-read them, restart the others one at a time, waiting for the
        component between two (a quorum keeps its majority)."""
        driver = self.lab.driver(component)
        for pod in pods:
            ctx = self.lab.ctx(state, pod)
            if driver.reloads:
                report(component, f"{pod.name}: files changed, reloading")
                driver.reload(ctx, self.lab)
                continue
            report(component, f"{pod.name}: files changed, restarting")
            for name in self.lab.program_names(state, pod):
                self.lab.supervisor.stop(name)
            for name in self.lab.program_names(state, pod):
                self.lab.supervisor.start(name)
            self._wait_ready(component, report)

    def _wait_ready(self, component: str, report: Callable[[str, str], None]) -> CheckResult:
        last = [""]

        def on_poll(result: CheckResult, _elapsed: float) -> None:
            if not result.ok and result.detail != last[0]:
                last[0] = result.detail
                report(component, f"waiting: {result.detail}")

        result, _ = until(lambda: self.lab.check(component),
                          timeout=self.lab.config.ready_timeout(component),
                          interval=components.by_name()[component].poll_interval,
                          progress=on_poll)
        if not result.ok:
            pods = self.lab.state().members(component)
            log = self.lab.log_path(pods[0].name) if pods else str(self.lab.lab_dir)
            raise NotReadyError(component, result.detail, log)
        return result

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
        self.lab.driver(component)  # a component the local lab cannot run is refused here
        components.check_replicas(spec, replicas)
        with self._lock:
            state = self.lab.state()
            current = state.members(component)
            running = {name: len(state.members(name)) for name in state.replicas}
            capacity.check_scale(component, running, replicas,
                                 capacity.host_room(len(state.pods)))
            if replicas == len(current):
                if self._programs_running(state, component) and self.lab.check(component).ok:
                    report(component, f"already {replicas} member(s)")
                    return
                # An earlier scale recorded these members and was interrupted before they all
                # ran: finish it instead of calling the count reached.
                self._finish_members(state, spec, report)
            if replicas > len(current):
                steps = [replicas]
                if self.lab.driver(component).one_member_at_a_time:
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
            state.add_pod(spec, ordinal, self.lab.config.local.controller_nodes,
                          self.lab.config.local.compute_nodes)
        state.replicas[spec.name] = replicas
        save_state(self.lab.lab_dir, state)
        members = state.members(spec.name)
        driver = self.lab.driver(spec.name)
        try:
            for pod in members[current:]:
                network.create_pod(self.lab.naming, pod.name, pod.ip, state.subnet)
            self.lab.write_hosts(state)
            report(spec.name, f"adding {replicas - current} member(s)")
            ctxs = [self.lab.ctx(state, p) for p in members]
            driver.before_start(ctxs[current:], ctxs[:current], self.lab)
            for pod in members:
                self.lab.render_pod(state, pod)
            driver.prepare([self.lab.ctx(state, p) for p in members], self.lab)
            self.lab.apply_programs()
            driver.converge([self.lab.ctx(state, p) for p in members], self.lab)
        except Exception:
            # Leave the component as it was, so that the same scale can simply be retried.
            report(spec.name, "scale-out failed: removing the new members again")
            keep = [self.lab.ctx(state, p) for p in members[:current]]
            for pod in reversed(members[current:]):
                with contextlib.suppress(LabError):
                    driver.leave(self.lab.ctx(state, pod), keep, self.lab)
                for name in self.lab.program_names(state, pod):
                    self.lab.supervisor.stop(name)
                    self.lab.supervisor.remove_program_file(name)
                self.lab.apply_programs()
                self._remove_pod(state, pod)
            state.replicas[spec.name] = current
            save_state(self.lab.lab_dir, state)
            self.lab.write_hosts(state)
            raise

    def _finish_members(self, state: LabState, spec: components.Component,
                        report: Callable[[str, str], None]) -> None:
        """Start the recorded members of ``spec`` that do not run, as a scale-out would (their
        namespaces, the membership announcement, files and programs); idempotent."""
        members = state.members(spec.name)
        infos = self.lab.supervisor.all_info()
        idle = [p for p in members if any(infos.get(n, {}).get("statename") != "RUNNING"
                                          for n in self.lab.program_names(state, p))]
        report(spec.name, f"finishing an interrupted change: {len(idle)} member(s) to start")
        for pod in members:
            network.create_pod(self.lab.naming, pod.name, pod.ip, state.subnet)
        self.lab.write_hosts(state)
        driver = self.lab.driver(spec.name)
        running = [self.lab.ctx(state, p) for p in members if p not in idle]
        driver.before_start([self.lab.ctx(state, p) for p in idle], running, self.lab)
        for pod in members:
            self.lab.render_pod(state, pod)
        ctxs = [self.lab.ctx(state, p) for p in members]
        driver.prepare(ctxs, self.lab)
        self.lab.apply_programs()
        for pod in idle:
            for name in self.lab.program_names(state, pod):
                self.lab.supervisor.start(name)
        driver.converge(ctxs, self.lab)

    def _scale_in(self, state: LabState, component: str, replicas: int,
                  report: Callable[[str, str], None]) -> None:
        driver = self.lab.driver(component)
        members = state.members(component)
        keep, drop = members[:replicas], members[replicas:]
        keep_ctxs = [self.lab.ctx(state, p) for p in keep]
        for pod in reversed(drop):
            report(component, f"removing {pod.name}")
            driver.leave(self.lab.ctx(state, pod), keep_ctxs, self.lab)
            for name in self.lab.program_names(state, pod):
                self.lab.supervisor.stop(name)
                self.lab.supervisor.remove_program_file(name)
            self.lab.apply_programs()
            self._remove_pod(state, pod)
        state.replicas[component] = replicas
        save_state(self.lab.lab_dir, state)
        self.lab.write_hosts(state)
        for pod in keep:
            self.lab.render_pod(state, pod)

    def _remove_pod(self, state: LabState, pod: PodRecord) -> None:
        netns = self.lab.naming.netns(pod.name)
        iproute.kill_netns_processes(netns)
        self._wait_netns_empty(netns)
        network.delete_pod(self.lab.naming, pod.name, pod.ip)
        shutil.rmtree(self.lab.pod_dir(pod.name), ignore_errors=True)
        del state.pods[pod.name]
        save_state(self.lab.lab_dir, state)

    def _follow(self, state: LabState, component: str,
                report: Callable[[str, str], None]) -> None:
        """Re-render the daemons that list ``component``'s members and reload them."""
        for other in state.replicas:
            watcher = self.lab.driver(other)
            if component not in watcher.watches:
                continue
            for pod in state.members(other):
                if self.lab.render_pod(state, pod):
                    report(other, f"{pod.name} follows {component}: reloading")
                    watcher.reload(self.lab.ctx(state, pod), self.lab)

    # --- down ---------------------------------------------------------------------------------

    def _wait_netns_empty(self, netns: str) -> None:
        def empty() -> CheckResult:
            pids = iproute.netns_pids(netns)
            if not pids:
                return passed("down", f"{netns} empty")
            iproute.kill_netns_processes(netns)
            return failed("down", f"{netns} still has {pids}")

        result, _ = until(empty, timeout=20.0, interval=0.2)
        if not result.ok:
            raise LabError(f"cannot empty namespace {netns}: {result.detail}",
                           hint="look at those processes with `ps`")

    def _lab_netns(self, state: LabState | None) -> list[str]:
        found = set()
        if state is not None:
            found |= {self.lab.naming.netns(p) for p in state.pods}
        names = [c.name for c in components.catalogue()]
        found |= {ns for ns in iproute.netns_list() if self.lab.naming.owns_netns(ns, names)}
        return sorted(found)

    def down(self) -> None:
        """Remove everything this lab created; safe to call twice or after a failed ``up``."""
        with self._lock:
            state = load_state(self.lab.lab_dir)
            self.lab.supervisor.kill_daemon()
            if state is not None and state.supervisord_pid and self.lab.supervisor.is_ours(
                state.supervisord_pid
            ):
                os.kill(state.supervisord_pid, signal.SIGKILL)
            namespaces = self._lab_netns(state)
            for netns in namespaces:
                iproute.kill_netns_processes(netns)
            for netns in namespaces:
                self._wait_netns_empty(netns)
            pods = state.pods.values() if state else []
            ips = {self.lab.naming.netns(p.name): p.ip for p in pods}
            for netns in namespaces:
                pod = netns[len(self.lab.name) + 1:]
                network.delete_pod(self.lab.naming, pod, ips.get(netns))
            for link in network.lab_links(self.lab.naming):
                if link != self.lab.naming.bridge:
                    shell.run(["ip", "link", "del", link], check=False)
            network.delete_bridge(self.lab.naming)
            for mount in network.lab_mounts(self.lab.naming):
                shell.run(["umount", mount], check=False)
            for leftover in ("pods", "shared", "supervisor.d", "galera-election"):
                shutil.rmtree(self.lab.lab_dir / leftover, ignore_errors=True)
            # clouds.yaml holds the admin password and points at a cloud that is gone now.
            for leftover in ("state.json", "supervisor.sock", "supervisord.pid", "clouds.yaml"):
                (self.lab.lab_dir / leftover).unlink(missing_ok=True)
