"""The ``k8s`` lab: the ``Lab`` seam on any cluster reachable by kubeconfig.

A pod is a Kubernetes pod and a node a Kubernetes node. Faults are what an operator would see:
``kill`` deletes a pod with no grace period (its controller brings it back), ``stop`` holds a
member down through the ``oaas-lab-holds`` ConfigMap that every pod's ``hold`` init container
reads, ``kill_node`` deletes every oaas-lab pod on a node, ``scale`` patches a workload's
replicas after the quorum rule allows the count. Talks to the cluster only through
``oaas_lab.k8s.api.KubeApi`` (``oaas_lab.adapters.kube.Kube`` by default).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from oaas_lab import catalogue
from oaas_lab.backends.base import (
    ComponentStatus,
    ExecResult,
    Pod,
    PodState,
    ProgressCallback,
    UpReport,
)
from oaas_lab.checks import CheckResult, failed
from oaas_lab.config import LabConfig
from oaas_lab.errors import LabError, NotReadyError, UserError
from oaas_lab.k8s import pods as podinfo
from oaas_lab.k8s import render
from oaas_lab.k8s.api import KubeApi
from oaas_lab.k8s.deploy import Deployer, Event, lab_labels
from oaas_lab.secrets import SecretStore

HOLDS = "oaas-lab-holds"

SERVICE_FOR: dict[str, tuple[str, str]] = {
    "galera": ("haproxy", "mysql"),
    "haproxy": ("haproxy", "mysql"),
    "etcd": ("etcd", "client"),
    "rabbitmq": ("rabbitmq", "amqp"),
    "memcached": ("memcached", "memcache"),
}
"""Component -> (Service clients use, port name)."""

_ORDINAL = re.compile(r"-(\d+)$")


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
    ) -> None:
        self.config = config
        self.name = config.name
        self.namespace = config.k8s.namespace
        self._api = api
        self._interval = interval
        self._clock = clock
        self._sleep = sleep

    @property
    def api(self) -> KubeApi:
        """The cluster connection, opened on first use."""
        if self._api is None:
            from oaas_lab.adapters.kube import Kube

            self._api = Kube(self.config.k8s.kubeconfig, self.config.k8s.context,
                             timeout=self.config.timeouts.command)
        return self._api

    # --- deploy ---------------------------------------------------------------------------

    def _rendered(self) -> render.Rendered:
        store = SecretStore(self.config.lab_dir)
        return render.render(self.config, secret_value=render.from_store(store))

    def _timeouts(self) -> dict[str, float]:
        return {c.name: self.config.ready_timeout(c.name) for c in catalogue.CATALOGUE}

    def deployer(self, progress: Callable[[Event], None] | None = None) -> Deployer:
        """A deployer of this lab's rendered stack (real secrets) onto its cluster."""
        return Deployer(
            self.api, self._rendered(), lab=self.name, timeouts=self._timeouts(),
            progress=progress, interval=self._interval, clock=self._clock, sleep=self._sleep,
        )

    def up(self, progress: ProgressCallback | None = None) -> UpReport:
        """Apply what changed and wait for every component; a second call applies nothing."""
        def forward(event: Event) -> None:
            if progress is not None:
                progress(event.subject, f"{event.what}: {event.message}", event.elapsed)

        report = self.deployer(forward).deploy()
        return UpReport(dict(report.ready_seconds), report.applied, report.total_seconds)

    def down(self) -> None:
        """Delete every object of this lab, its volumes and its namespace."""
        self.deployer().destroy(volumes=True, namespace=True)

    # --- observe --------------------------------------------------------------------------

    def _component_of(self, pod: str) -> str:
        # Longest name first: a pod of "nova-api" must not be taken for one of "nova".
        for comp in sorted(catalogue.CATALOGUE, key=lambda c: -len(c.name)):
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
        catalogue.by_name()[component]  # KeyError is a programming error, not user input
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
        obj = self._workload(component)
        if obj is None:
            return failed(component, "not deployed", hint="run `oaas-lab deploy`")
        return podinfo.workload_ready(obj)

    def status(self) -> list[ComponentStatus]:
        """Every component with a manifest, its pods, and whether all of them are ready."""
        out = []
        for comp in catalogue.CATALOGUE:
            if comp.name not in render.TEMPLATES:
                continue
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
        """Delete the pod with no grace period: its processes get SIGKILL, its controller
        creates it again."""
        self._pod(pod)
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
        holds = self._holds()
        holds[pod] = "stopped by oaas-lab"
        self._set_holds(holds)
        self.api.delete("v1", "Pod", pod, self.namespace, grace_seconds=0)

    def start(self, pod: str) -> None:
        """Release a held pod and restart it so it does not wait for the ConfigMap sync."""
        holds = self._holds()
        if holds.pop(pod, None) is None:
            raise UserError(f"{pod} is not stopped", hint="only a pod stopped by oaas-lab starts")
        self._set_holds(holds)
        if self.api.get("v1", "Pod", pod, self.namespace) is not None:
            self.api.delete("v1", "Pod", pod, self.namespace, grace_seconds=0)

    def kill_node(self, node: str) -> list[str]:
        """Delete, with no grace, every pod of this lab scheduled on ``node``."""
        objs = self.api.list("v1", "Pod", self.namespace, labels=lab_labels(self.name),
                             field_selector=f"spec.nodeName={node}")
        names = sorted(str(o["metadata"]["name"]) for o in objs)
        for name in names:
            self.api.delete("v1", "Pod", name, self.namespace, grace_seconds=0)
        return names

    def scale(self, component: str, replicas: int,
              progress: ProgressCallback | None = None) -> None:
        """Set a component's member count; even quorum counts are refused (QuorumError)."""
        comp = catalogue.by_name().get(component)
        if comp is None:
            raise UserError(f"unknown component {component!r}",
                            hint=f"use one of: {', '.join(sorted(render.TEMPLATES))}")
        catalogue.check_replicas(comp, replicas)
        obj = self._workload(component)
        if obj is None:
            raise UserError(f"{component} is not deployed", hint="run `oaas-lab deploy` first")
        if obj.get("kind") == "DaemonSet":
            raise UserError(f"{component} runs one pod per {comp.role} node",
                            hint=f"label another node {render.ROLE_LABEL}/{comp.role}=true")
        before = int(obj.get("spec", {}).get("replicas", 1))
        if replicas < before and component == "etcd":
            self._etcd_remove_members(replicas)
        # The changed hash makes the next `deploy` restore the configured count.
        self.api.patch("apps/v1", str(obj["kind"]), component, self.namespace, {
            "metadata": {"annotations": {render.SPEC_HASH: f"scaled-to-{replicas}"}},
            "spec": {"replicas": replicas},
        })
        self._wait_ready(component, progress)
        if replicas < before and component == "rabbitmq":
            self._rabbitmq_forget(replicas, before)

    def _wait_ready(self, component: str, progress: ProgressCallback | None) -> None:
        from oaas_lab.wait import WaitTimeoutError, wait_for

        def report(result: CheckResult, elapsed: float) -> None:
            if progress is not None:
                progress(component, result.detail, elapsed)

        try:
            wait_for(lambda: self._ready(component),
                     timeout=self.config.ready_timeout(component), interval=self._interval,
                     progress=report, clock=self._clock, sleep=self._sleep)
        except WaitTimeoutError as exc:
            raise NotReadyError(component, exc.last.detail,
                                f"kubectl -n {self.namespace} get pods") from None

    def _etcd_remove_members(self, keep: int) -> None:
        """etcd members leave by ``member remove`` before their pods go, or the cluster keeps
        counting them towards its quorum."""
        out = self.exec("etcd-0", ["etcdctl", "member", "list"])
        if not out.ok:
            raise LabError(f"etcd member list failed: {out.stderr.strip()}")
        for line in out.stdout.splitlines():
            fields = [f.strip() for f in line.split(",")]
            if len(fields) >= 3 and (m := _ORDINAL.search(fields[2])) and int(m.group(1)) >= keep:
                gone = self.exec("etcd-0", ["etcdctl", "member", "remove", fields[0]])
                if not gone.ok:
                    raise LabError(f"etcd member remove {fields[2]} failed: {gone.stderr.strip()}")

    def _rabbitmq_forget(self, keep: int, before: int) -> None:
        """A removed RabbitMQ node stays a quorum-queue member until it is forgotten."""
        domain = f"rabbitmq-peers.{self.namespace}.svc.{render.CLUSTER_DOMAIN}"
        for ordinal in range(keep, before):
            node = f"rabbit@rabbitmq-{ordinal}.{domain}"
            out = self.exec("rabbitmq-0", ["rabbitmqctl", "forget_cluster_node", node], 60.0)
            if not out.ok and "not_a_cluster_node" not in out.stderr + out.stdout:
                raise LabError(f"rabbitmqctl forget_cluster_node {node} failed: "
                               f"{out.stderr.strip()}")

    # --- reach ----------------------------------------------------------------------------

    def exec(self, pod: str, argv: Sequence[str], timeout: float = 30.0) -> ExecResult:
        """Run ``argv`` in the pod's main container (named after its component)."""
        component = self._component_of(pod)
        out = self.api.exec(self.namespace, pod, list(argv), container=component,
                            timeout=timeout)
        return ExecResult(tuple(argv), out.returncode, out.stdout, out.stderr)

    def address(self, pod: str) -> str:
        """The pod's IP (reachable from inside the cluster network)."""
        ip = str(self._pod(pod).get("status", {}).get("podIP") or "")
        if not ip:
            raise LabError(f"{pod} has no IP yet", hint="wait until it is running")
        return ip

    def service_address(self, component: str) -> str:
        """The Service IP clients use; for a headless Service, the first ready member's IP."""
        service, _port = SERVICE_FOR.get(component, (component, ""))
        obj = self.api.get("v1", "Service", service, self.namespace)
        if obj is None:
            raise LabError(f"no Service {service} in {self.namespace}",
                           hint="run `oaas-lab deploy`")
        ip = str(obj.get("spec", {}).get("clusterIP") or "")
        if ip and ip != "None":
            return ip
        ready = [p for p in self.members(service) if p.ip and p.state is PodState.RUNNING]
        if not ready:
            raise LabError(f"{service} has no ready member", hint="see `oaas-lab status`")
        return ready[0].ip

    def logs(self, pod: str, lines: int = 50) -> str:
        """The main container's last lines."""
        return self.api.logs(self.namespace, pod, self._component_of(pod), tail=lines)

    def log_path(self, pod: str) -> str:
        """The command an operator runs to read the same log."""
        return f"kubectl -n {self.namespace} logs {pod} -c {self._component_of(pod)}"
