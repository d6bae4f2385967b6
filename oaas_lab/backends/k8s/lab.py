"""The ``k8s`` lab: the ``Lab`` seam on any cluster reachable by kubeconfig.

A pod is a Kubernetes pod and a node a Kubernetes node. Faults are what an operator would see:
``kill`` deletes a pod with no grace period (its controller brings it back), ``stop`` holds a
member down through the ``oaas-lab-holds`` ConfigMap that every pod's ``hold`` init container
reads, ``kill_node`` deletes every oaas-lab pod on a node, ``scale`` patches a workload's
replicas after the quorum rule allows the count. Talks to the cluster only through
``oaas_lab.backends.k8s.api.KubeApi`` (``oaas_lab.adapters.kube.Kube`` by default).
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from oaas_lab import components, images
from oaas_lab.adapters import netfault
from oaas_lab.backends.k8s import pods as podinfo
from oaas_lab.backends.k8s import render
from oaas_lab.backends.k8s.api import KubeApi
from oaas_lab.backends.k8s.deploy import Deployer, Event, lab_labels
from oaas_lab.cluster.lifecycle import EmbeddedCluster, cluster_config
from oaas_lab.config import LabConfig
from oaas_lab.errors import LabError, NotReadyError, UserError
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

HOLDS = "oaas-lab-holds"
POD_IFNAME = "eth0"
"""The pod's interface as the CNI bridge plugin names it."""

class K8sLab:
    """A lab on a Kubernetes cluster; see the module docstring."""

    def __init__(
        self,
        config: LabConfig,
        api: KubeApi | None = None,
        *,
        interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        judge_components: bool = True,
    ) -> None:
        self.config = config
        # Unit tests of the plumbing against a fake API server have no services to ask.
        self.judge_components = judge_components
        self.name = config.name
        self.namespace = config.k8s.namespace
        self._api = api
        self._embedded: EmbeddedCluster | None = None
        # Members are stopped in parallel: each read-modify-write of the holds ConfigMap must
        # see the others', or the last write drops an earlier member's hold.
        self._holds_lock = threading.Lock()
        self._interval = interval
        self._clock = clock
        self._sleep = sleep

    @property
    def embedded(self) -> EmbeddedCluster | None:
        """The embedded cluster this lab runs on (``k8s.cluster``), if it names one."""
        if self.config.k8s.cluster is None:
            return None
        if self._embedded is None:
            self._embedded = EmbeddedCluster(cluster_config(self.config))
        return self._embedded

    @property
    def api(self) -> KubeApi:
        """The cluster connection, opened on first use."""
        if self._api is None:
            from oaas_lab.adapters.kube import Kube

            kubeconfig = self.config.k8s.kubeconfig
            if kubeconfig is None and self.embedded is not None:
                kubeconfig = str(self.embedded.kubeconfig)
            self._api = Kube(kubeconfig, self.config.k8s.context,
                             timeout=self.config.timeouts.command)
        return self._api

    # --- deploy ---------------------------------------------------------------------------

    def _rendered(self) -> render.Rendered:
        store = SecretStore(self.config.lab_dir)
        return render.render(self.config, secret_value=render.from_store(store))

    def _timeouts(self) -> dict[str, float]:
        return {c.name: self.config.ready_timeout(c.name) for c in components.catalogue()}

    def deployer(self, progress: Callable[[Event], None] | None = None) -> Deployer:
        """A deployer of this lab's rendered stack (real secrets) onto its cluster."""
        return Deployer(
            self.api, self._rendered(), lab=self.name, timeouts=self._timeouts(),
            progress=progress, interval=self._interval, clock=self._clock, sleep=self._sleep,
        )

    def _prepare_embedded(self, progress: ProgressCallback | None) -> None:
        """On the embedded cluster: start it if needed and give each node the images its pods
        may run (built from the cache or now; what a node has is not loaded again)."""
        embedded = self.embedded
        if embedded is None:
            return
        started = self._clock()

        def say(message: str) -> None:
            if progress is not None:
                progress("cluster", message, self._clock() - started)

        embedded.progress = say
        embedded.up()
        built = images.build(render.image_recipes(self.config), release=self.config.release,
                             cache_dir=Path(self.config.cache_dir), progress=progress)
        embedded.load_images(built, render.image_placement(self._rendered()))

    def up(self, progress: ProgressCallback | None = None) -> UpReport:
        """Apply what changed and wait for every component; a second call applies nothing.

        With ``k8s.cluster`` the embedded cluster is brought up first and loaded with the
        images."""
        with lock.changing(self.config.lab_dir, self.name, "up"):
            return self._up(progress)

    def _up(self, progress: ProgressCallback | None) -> UpReport:
        def forward(event: Event) -> None:
            if progress is not None:
                progress(event.subject, f"{event.what}: {event.message}", event.elapsed)

        self._prepare_embedded(progress)
        report = self.deployer(forward).deploy()
        judged = 0.0
        if self.judge_components:
            # Rolled out is not working: each component's judge must pass too, as on the local
            # lab, before the lab counts as up.
            started = self._clock()
            for name in report.ready_seconds:
                self._wait_ready(name, progress)
            judged = self._clock() - started
        return UpReport(dict(report.ready_seconds), report.applied, report.total_seconds + judged)

    def down(self) -> None:
        """Delete every object of this lab, its volumes and its namespace."""
        with lock.changing(self.config.lab_dir, self.name, "down"):
            self.deployer().destroy(volumes=True, namespace=True, timeout=self.config.timeouts.down)

    # --- observe --------------------------------------------------------------------------

    def _component_of(self, pod: str) -> str:
        # Longest name first: a pod of "nova-api" must not be taken for one of "nova".
        for comp in sorted(components.catalogue(), key=lambda c: -len(c.name)):
            if pod.startswith(comp.name + "-"):
                return comp.name
        raise UserError(f"{pod!r} is not a pod of this lab",
                        hint="use a name from `oaas-lab status`, e.g. galera-0")

    def _selector(self, component: str) -> dict[str, str]:
        return {"app.kubernetes.io/name": component, "app.kubernetes.io/instance": self.name}

    def _to_pod(self, obj: dict[str, Any], component: str, index: int) -> Pod:
        name = str(obj["metadata"]["name"])
        # StatefulSet members are <component>-<ordinal>; Deployment pods get their rank.
        match = re.fullmatch(rf"{re.escape(component)}-(\d+)", name)
        return Pod(
            name=name,
            component=component,
            ordinal=int(match.group(1)) if match else index,
            node=str(obj.get("spec", {}).get("nodeName") or ""),
            ip=str(obj.get("status", {}).get("podIP") or ""),
            state=PodState(podinfo.state(obj)),
            reason=podinfo.describe(obj),
        )

    def members(self, component: str) -> list[Pod]:
        """The component's pods, by ordinal (Deployment pods by name)."""
        components.spec(component)  # an unknown name is refused with the known ones
        objs = self.api.list("v1", "Pod", self.namespace, labels=self._selector(component))
        objs.sort(key=lambda o: str(o["metadata"]["name"]))
        return sorted((self._to_pod(o, component, i) for i, o in enumerate(objs)),
                      key=lambda p: (p.ordinal, p.name))

    def _workload(self, component: str) -> dict[str, Any] | None:
        for kind in ("StatefulSet", "Deployment", "DaemonSet"):
            obj = self.api.get("apps/v1", kind, component, self.namespace)
            if obj is not None:
                return obj
        return None

    def _ready(self, component: str) -> CheckResult:
        """Rolled out, then working: the same component judge the local lab uses."""
        obj = self._workload(component)
        if obj is None:
            return failed(component, "not deployed", hint="run `oaas-lab deploy`")
        rolled_out = podinfo.workload_ready(obj)
        if not rolled_out.ok or not self.judge_components:
            return rolled_out
        try:
            return components.check(self, SecretStore(self.config.lab_dir), component)
        except (LabError, UserError) as exc:
            # A pod listed a moment ago may be gone when asked (a scale-in, a restart): an
            # observation to poll again, not an end.
            return failed(component, exc.message, hint=exc.hint)

    def status(self) -> list[ComponentStatus]:
        """Every component with a manifest, its pods, and whether all of them are ready."""
        out = []
        for comp in render.deployed(self.config):
            out.append(ComponentStatus(
                component=comp.name,
                desired=self.config.replicas(comp.name),
                pods=tuple(self.members(comp.name)),
                ready=self._ready(comp.name),
            ))
        return out

    # --- break ----------------------------------------------------------------------------

    def _pod(self, pod: str) -> dict[str, Any]:
        obj = self.api.get("v1", "Pod", pod, self.namespace)
        if obj is None:
            raise UserError(f"no pod {pod!r} in namespace {self.namespace}",
                            hint="list the pods with `oaas-lab status`")
        return obj

    def kill(self, pod: str) -> None:
        """End the member as a crash would. On the embedded cluster its main container's
        processes get SIGKILL on their node and the kubelet restarts the container in the same
        pod; elsewhere the pod is deleted with no grace period and its controller makes it
        again (the kubelet may still send SIGTERM first)."""
        obj = self._pod(pod)
        container = podinfo.container_id(obj, self._component_of(pod))
        if self.embedded is not None and container is not None:
            self.embedded.kill_container(str(obj["spec"]["nodeName"]), container)
            return
        self.api.delete("v1", "Pod", pod, self.namespace, grace_seconds=0)

    def _holds(self) -> dict[str, str]:
        obj = self.api.get("v1", "ConfigMap", HOLDS, self.namespace)
        return dict((obj or {}).get("data") or {})

    def _set_holds(self, holds: dict[str, str]) -> None:
        self.api.apply({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": HOLDS, "namespace": self.namespace,
                         "labels": lab_labels(self.name)},
            "data": holds,
        })

    def stop(self, pod: str) -> None:
        """Hold the pod down: record it in ``oaas-lab-holds``, then delete it; the new pod
        waits in its ``hold`` init container until ``start``."""
        component = self._component_of(pod)
        self._pod(pod)
        workload = self._workload(component)
        if workload is not None and workload.get("kind") != "StatefulSet":
            raise UserError(
                f"{pod} belongs to a Deployment, whose replacement pods get new names; "
                "only StatefulSet members can be held down",
                hint=f"kill it instead, or scale {component}",
            )
        with self._holds_lock:
            holds = self._holds()
            holds[pod] = "stopped by oaas-lab"
            self._set_holds(holds)
        # A crash first where the node can be reached: a stopped member must not leave its
        # cluster cleanly (Galera would shrink to a Primary component of one).
        with contextlib.suppress(LabError):
            self.kill(pod)
        if self.api.get("v1", "Pod", pod, self.namespace) is not None:
            self.api.delete("v1", "Pod", pod, self.namespace, grace_seconds=0)

    def start(self, pod: str) -> None:
        """Release a held pod and restart it so it does not wait for the ConfigMap sync."""
        with self._holds_lock:
            holds = self._holds()
            if holds.pop(pod, None) is None:
                raise UserError(f"{pod} is not stopped",
                                hint="only a pod stopped by oaas-lab starts")
            self._set_holds(holds)
        if self.api.get("v1", "Pod", pod, self.namespace) is not None:
            self.api.delete("v1", "Pod", pod, self.namespace, grace_seconds=0)

    def _on_node(self, pod: str, what: str) -> tuple[EmbeddedCluster, str, str]:
        """The embedded cluster, node and main container of ``pod``, for faults that need the
        node's containerd (any other cluster gives no such access)."""
        obj = self._pod(pod)
        container = podinfo.container_id(obj, self._component_of(pod))
        if self.embedded is None:
            raise UserError(f"{what} needs the node's container runtime, which only the "
                            "embedded cluster gives oaas-lab",
                            hint="run the lab on `k8s.cluster` (oaas-lab cluster up)")
        if container is None:
            raise LabError(f"{pod} has no running container", hint="wait until it is running")
        return self.embedded, str(obj["spec"]["nodeName"]), container

    def pause(self, pod: str) -> None:
        """Freeze the member's main container (the cgroup freezer of its node's containerd)."""
        embedded, node, container = self._on_node(pod, "pausing a pod")
        embedded.pause_container(node, container)

    def resume(self, pod: str) -> None:
        """Thaw the member's main container."""
        embedded, node, container = self._on_node(pod, "resuming a pod")
        embedded.resume_container(node, container)

    def _enter(self, pod: str) -> list[str]:
        embedded, node, container = self._on_node(pod, "a network fault")
        return ["nsenter", "-t", str(embedded.container_pid(node, container)), "--net", "--"]

    def cut(self, pod: str, peers: Sequence[str], loss: float = 1.0) -> None:
        """Drop packets between the pod and ``peers`` in the pod's own network namespace."""
        netfault.cut(self._enter(pod), [self.address(p) for p in peers], loss)

    def slow(self, pod: str, kbit: int) -> None:
        """Rate-limit the pod's interface (the CNI names it eth0)."""
        netfault.slow(self._enter(pod), POD_IFNAME, kbit)

    def heal(self, pod: str) -> None:
        """Remove the pod's drop rules and rate limit."""
        netfault.heal(self._enter(pod), [POD_IFNAME])

    def kill_node(self, node: str) -> list[str]:
        """Kill (see ``kill``) every running pod of this lab scheduled on ``node``."""
        objs = self.api.list("v1", "Pod", self.namespace, labels=lab_labels(self.name),
                             field_selector=f"spec.nodeName={node}")
        names = sorted(str(o["metadata"]["name"]) for o in objs
                       if o.get("status", {}).get("phase") == "Running")
        if not names:
            raise UserError(f"lab {self.name!r} has no running pod on node {node!r}",
                            hint="see the NODE column of `kubectl get pods -o wide`")
        for name in names:
            self.kill(name)
        return names

    def scale(self, component: str, replicas: int,
              progress: ProgressCallback | None = None) -> None:
        """Set a component's member count; even quorum counts are refused (QuorumError)."""
        with lock.changing(self.config.lab_dir, self.name, f"scale {component} {replicas}"):
            self._scale(component, replicas, progress)

    def _scale(self, component: str, replicas: int, progress: ProgressCallback | None) -> None:
        spec = components.spec(component)
        comp = spec.entry
        components.check_replicas(comp, replicas)
        obj = self._workload(component)
        if obj is None:
            raise UserError(f"{component} is not deployed", hint="run `oaas-lab deploy` first")
        if obj.get("kind") == "DaemonSet":
            raise UserError(f"{component} runs one pod per {comp.role} node",
                            hint=f"label another node {render.ROLE_LABEL}/{comp.role}=true")
        before = int(obj.get("spec", {}).get("replicas", 1))
        hooks = spec.k8s
        domain = f"{component}-peers.{self.namespace}.svc.{render.CLUSTER_DOMAIN}"
        if replicas < before and hooks is not None and hooks.before_scale_in is not None:
            hooks.before_scale_in(self, replicas, before, domain)
        # The changed hash makes the next `deploy` restore the configured count.
        self.api.patch("apps/v1", str(obj["kind"]), component, self.namespace, {
            "metadata": {"annotations": {render.SPEC_HASH: f"scaled-to-{replicas}"}},
            "spec": {"replicas": replicas},
        })
        if replicas < before:
            # The removed members' pods go first: the judge must not ask one that is leaving,
            # and the hook makes the survivors forget them, which the judge wants (RabbitMQ
            # still counts them until then).
            self._wait_ready(component, progress, check=lambda: self._scaled_in(component,
                                                                                replicas))
            if hooks is not None and hooks.after_scale_in is not None:
                hooks.after_scale_in(self, replicas, before, domain)
        self._wait_ready(component, progress)

    def _scaled_in(self, component: str, replicas: int) -> CheckResult:
        obj = self._workload(component)
        if obj is None:
            return failed(component, "not deployed", hint="run `oaas-lab deploy`")
        left = [p.name for p in self.members(component) if p.ordinal >= replicas]
        if left:
            return failed(component, f"still stopping: {', '.join(left)}")
        return podinfo.workload_ready(obj)

    def _wait_ready(self, component: str, progress: ProgressCallback | None,
                    check: Callable[[], CheckResult] | None = None) -> None:
        from oaas_lab.kernel.wait import until

        def report(result: CheckResult, elapsed: float) -> None:
            if progress is not None:
                progress(component, result.detail, elapsed)

        result, _ = until(check or (lambda: self._ready(component)),
                          timeout=self.config.ready_timeout(component), interval=self._interval,
                          progress=report, clock=self._clock, sleep=self._sleep)
        if not result.ok:
            raise NotReadyError(component, result.detail, f"kubectl -n {self.namespace} get pods")

    # --- reach ----------------------------------------------------------------------------

    def exec(self, pod: str, argv: Sequence[str], timeout: float = 30.0) -> CommandResult:
        """Run ``argv`` in the pod's main container (named after its component)."""
        component = self._component_of(pod)
        out = self.api.exec(self.namespace, pod, list(argv), container=component,
                            timeout=timeout)
        return CommandResult(tuple(argv), out.returncode, out.stdout, out.stderr)

    def address(self, pod: str) -> str:
        """The pod's IP (reachable from inside the cluster network)."""
        ip = str(self._pod(pod).get("status", {}).get("podIP") or "")
        if not ip:
            raise LabError(f"{pod} has no IP yet", hint="wait until it is running")
        return ip

    def service_address(self, component: str) -> str:
        """The Service IP clients use; for a headless Service, the first ready member's IP."""
        needs = components.spec(component).k8s
        service = needs.service if needs is not None and needs.service else component
        obj = self.api.get("v1", "Service", service, self.namespace)
        if obj is None:
            raise LabError(f"no Service {service} in {self.namespace}",
                           hint="run `oaas-lab deploy`")
        ip = str(obj.get("spec", {}).get("clusterIP") or "")
        if ip and ip != "None":
            return ip
        objs = self.api.list("v1", "Pod", self.namespace, labels=self._selector(service))
        ready = sorted((str(o["metadata"]["name"]), str(o.get("status", {}).get("podIP") or ""))
                       for o in objs if podinfo.is_ready(o))
        ready = [(name, ip) for name, ip in ready if ip]
        if not ready:
            raise LabError(f"{service} has no ready member", hint="see `oaas-lab status`")
        return ready[0][1]

    def logs(self, pod: str, lines: int = 50) -> str:
        """The main container's last lines."""
        return self.api.logs(self.namespace, pod, self._component_of(pod), tail=lines)

    def log_path(self, pod: str) -> str:
        """The command an operator runs to read the same log."""
        return f"kubectl -n {self.namespace} logs {pod} -c {self._component_of(pod)}"
