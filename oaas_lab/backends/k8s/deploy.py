"""Deploy the rendered stack onto a cluster, wave by wave, and take it away again.

``plan`` compares every rendered object with the live one through the ``spec-hash``
annotation: an object whose hash matches is left alone, so a second deploy applies nothing.
``deploy`` server-side applies the changed objects of a wave in order, then waits for that
wave's workloads with ``oaas_lab.kernel.wait``; a pod that does not come up is named with
its state and its last log lines. ``destroy`` deletes only objects carrying this lab's labels.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import yaml

from oaas_lab.backends.k8s import pods, policy
from oaas_lab.backends.k8s.api import KubeApi
from oaas_lab.backends.k8s.render import (
    DUMPER,
    KIND_ORDER,
    LAB_LABEL,
    MANAGED_BY,
    SPEC_HASH,
    WORKLOAD_KINDS,
    Manifest,
    Rendered,
)
from oaas_lab.errors import NotReadyError
from oaas_lab.kernel.results import CheckResult, failed, passed
from oaas_lab.kernel.wait import until

LOG_LINES = 8


class Action(StrEnum):
    """What deploy does with one object."""

    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Step:
    """One object of the plan."""

    manifest: Manifest
    action: Action


@dataclass(frozen=True)
class Event:
    """A progress report: ``what`` is ``apply``, ``wait`` or ``ready``."""

    what: str
    subject: str
    message: str
    elapsed: float = 0.0


@dataclass(frozen=True)
class DeployReport:
    """What ``deploy`` did."""

    applied: tuple[str, ...]
    unchanged: tuple[str, ...]
    ready_seconds: dict[str, float] = field(default_factory=dict)
    total_seconds: float = 0.0


Progress = Callable[[Event], None]

# Fields the server owns; a diff without them shows what oaas-lab would change.
_SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp",
                  "managedFields", "selfLink")

_API_VERSIONS: dict[str, str] = {
    "NetworkPolicy": "networking.k8s.io/v1", "ServiceAccount": "v1",
    "Role": "rbac.authorization.k8s.io/v1", "RoleBinding": "rbac.authorization.k8s.io/v1",
    "Secret": "v1", "ConfigMap": "v1", "Service": "v1",
    "PodDisruptionBudget": "policy/v1", "StatefulSet": "apps/v1", "Deployment": "apps/v1",
    "DaemonSet": "apps/v1", "Job": "batch/v1", "PersistentVolumeClaim": "v1",
}


def lab_labels(lab: str) -> dict[str, str]:
    """The labels every object of lab ``lab`` carries; destroy selects on exactly these."""
    return {MANAGED_BY: "oaas-lab", LAB_LABEL: lab}


def _clean(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    if not obj:
        return {}
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = {k: v for k, v in dict(out.get("metadata", {})).items() if k not in _SERVER_FIELDS}
    out["metadata"] = meta
    if out.get("kind") == "Secret":  # never show secret values, even in a diff
        out["data"] = dict.fromkeys(out.get("data") or {}, "******")
    return out


class Deployer:
    """Applies one rendered stack to one cluster."""

    def __init__(
        self,
        api: KubeApi,
        rendered: Rendered,
        *,
        lab: str,
        timeouts: Mapping[str, float],
        progress: Progress | None = None,
        interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api = api
        self.rendered = rendered
        self.lab = lab
        self.timeouts = timeouts
        self.progress = progress
        self.interval = interval
        self.clock = clock
        self.sleep = sleep
        policy.enforce(rendered.objects())

    def _emit(self, what: str, subject: str, message: str, elapsed: float = 0.0) -> None:
        if self.progress is not None:
            self.progress(Event(what, subject, message, elapsed))

    def _live(self, m: Manifest) -> dict[str, Any] | None:
        return self.api.get(m.api_version, m.kind, m.name, m.namespace)

    def plan(self) -> list[Step]:
        """Every object in deploy order with what deploy would do to it."""
        if self.api.get("v1", "Namespace", self.rendered.namespace) is None:
            # Nothing can exist yet; skip one GET per object.
            return [Step(m, Action.CREATE) for m in self.rendered.manifests]
        steps: list[Step] = []
        for m in self.rendered.manifests:
            live = self._live(m)
            if live is None:
                steps.append(Step(m, Action.CREATE))
                continue
            annotations = live.get("metadata", {}).get("annotations") or {}
            same = annotations.get(SPEC_HASH) == m.obj["metadata"]["annotations"][SPEC_HASH]
            steps.append(Step(m, Action.UNCHANGED if same else Action.UPDATE))
        return steps

    def diff(self) -> list[tuple[Step, str]]:
        """For each object deploy would change: a unified diff of live vs. the server's
        dry-run result of the apply (secret values masked)."""
        out: list[tuple[Step, str]] = []
        namespace_exists = self.api.get("v1", "Namespace", self.rendered.namespace) is not None
        for step in self.plan():
            if step.action is Action.UNCHANGED:
                continue
            live = self._live(step.manifest) if step.action is Action.UPDATE else None
            if namespace_exists or step.manifest.kind == "Namespace":
                after = self.api.apply(step.manifest.obj, dry_run=True)
            else:  # the server cannot dry-run into a namespace that does not exist yet
                after = step.manifest.obj
            before_text = yaml.dump(_clean(live), Dumper=DUMPER, sort_keys=True) if live else ""
            after_text = yaml.dump(_clean(after), Dumper=DUMPER, sort_keys=True)
            lines = difflib.unified_diff(
                before_text.splitlines(keepends=True), after_text.splitlines(keepends=True),
                fromfile=f"live/{step.manifest.ref}", tofile=f"oaas-lab/{step.manifest.ref}",
            )
            out.append((step, "".join(lines)))
        return out

    def deploy(self, *, force: bool = False) -> DeployReport:
        """Apply what changed, wave by wave, waiting for each wave to be ready.

        Raises ``NotReadyError`` naming the pod, its state and its last log lines when a
        workload is not ready in its timeout; the next waves are then not applied.
        """
        start = self.clock()
        # A namespace still being deleted (a `down` just before) takes no new objects.
        live_ns = self.api.get("v1", "Namespace", self.rendered.namespace)
        if live_ns is not None and live_ns.get("metadata", {}).get("deletionTimestamp"):
            self._emit("wait", f"Namespace/{self.rendered.namespace}", "still being deleted")
            self._wait_namespace_gone(120.0)
        steps = {id(s.manifest): s for s in self.plan()}
        applied: list[str] = []
        unchanged: list[str] = []
        ready: dict[str, float] = {}
        for wave in self.rendered.waves():
            # First what the workloads need, one-off Jobs included, run to completion; then
            # the workloads, so a service never starts against an empty database.
            first = [m for m in wave if m.kind not in WORKLOAD_KINDS]
            then = [m for m in wave if m.kind in WORKLOAD_KINDS]
            for batch in (first, then):
                for m in batch:
                    step = steps[id(m)]
                    if step.action is Action.UNCHANGED and not force:
                        unchanged.append(m.ref)
                        continue
                    if m.kind == "Job" and step.action is Action.UPDATE:
                        self._replace_job(m)
                    self.api.apply(m.obj)
                    applied.append(m.ref)
                    self._emit("apply", m.ref, str(step.action))
                for m in batch:
                    if m.kind in (*WORKLOAD_KINDS, "Job"):
                        seconds = self.wait_ready(m)
                        if m.kind != "Job":
                            ready[m.component] = seconds
        return DeployReport(tuple(applied), tuple(unchanged), ready, self.clock() - start)

    def _wait_namespace_gone(self, timeout: float) -> None:
        ns = self.rendered.namespace

        def gone() -> CheckResult:
            live = self.api.get("v1", "Namespace", ns)
            if live is None:
                return passed(f"Namespace/{ns}", "deleted")
            phase = live.get("status", {}).get("phase", "")
            return failed(f"Namespace/{ns}", f"still there ({phase})")

        result, _ = until(gone, timeout=timeout, interval=self.interval, clock=self.clock,
                          sleep=self.sleep)
        if not result.ok:
            raise NotReadyError("namespace", f"{result.name} was not deleted in {timeout:.0f}s: "
                                f"{result.detail}", f"kubectl get namespace {ns} -o yaml")

    def _replace_job(self, m: Manifest) -> None:
        """A Job's pod template is immutable: a changed Job is deleted, then created again."""
        self.api.delete(m.api_version, m.kind, m.name, m.namespace)

        def gone() -> CheckResult:
            live = self._live(m)
            return passed(m.ref, "deleted") if live is None else failed(m.ref, "still deleting")

        result, _ = until(gone, timeout=120.0, interval=self.interval, clock=self.clock,
                          sleep=self.sleep)
        if not result.ok:
            raise NotReadyError(m.component, f"{m.ref} was not deleted: {result.detail}",
                                f"kubectl -n {m.namespace} get job {m.name}")

    def check(self, m: Manifest) -> CheckResult:
        """Is this workload ready? When not, the detail names every unhappy pod's state."""
        live = self._live(m)
        if live is None:
            return failed(m.ref, "does not exist")
        result = pods.job_done(live) if m.kind == "Job" else pods.workload_ready(live)
        if result.ok:
            return result
        if result.evidence.get("fatal"):
            return result
        selector = live.get("spec", {}).get("selector", {}).get("matchLabels", {})
        if m.kind == "Job":
            selector = {"batch.kubernetes.io/job-name": m.name}
        members = self.api.list("v1", "Pod", m.namespace, labels=selector)
        unhappy = [p for p in members if not pods.is_ready(p)]
        states = [pods.describe(p) for p in unhappy]
        fatal = next((f for f in (pods.fatal(p) for p in unhappy) if f), "")
        detail = result.detail + ("; " + "; ".join(states) if states else "")
        return failed(m.ref, detail, pods=unhappy, fatal=fatal)

    def wait_ready(self, m: Manifest) -> float:
        """Wait for one workload; returns the seconds it took."""
        timeout = self.timeouts.get(m.component, 180.0)
        start = self.clock()

        subject = m.ref if m.kind == "Job" else m.component

        def report(result: CheckResult, elapsed: float) -> None:
            self._emit("ready" if result.ok else "wait", subject, result.detail, elapsed)

        last, waited = until(
            lambda: self.check(m), timeout=timeout, interval=self.interval,
            fatal=lambda r: bool(r.evidence.get("fatal")), progress=report,
            clock=self.clock, sleep=self.sleep,
        )
        if not last.ok:
            raise self._not_ready(m, last, waited)
        return self.clock() - start

    def _not_ready(self, m: Manifest, last: CheckResult, waited: float) -> NotReadyError:
        unhappy: list[Mapping[str, Any]] = list(last.evidence.get("pods", []) or [])  # type: ignore[call-overload]
        fatal = str(last.evidence.get("fatal") or "")
        why = fatal or f"not ready after {waited:.0f}s"
        reason = f"{why}: {last.detail}"
        log_cmd = ""
        if unhappy:
            pod = unhappy[0]
            name = str(pod["metadata"]["name"])
            problems = pods.container_problems(pod)
            container, restarted = (problems[0][0], problems[0][2]) if problems else (None, False)
            try:
                text = self.api.logs(m.namespace or "", name, container, tail=LOG_LINES,
                                     previous=restarted)
            except Exception as err:  # the logs are evidence; their absence is evidence too
                text = f"(no logs: {err})"
            lines = [ln for ln in text.strip().splitlines() if ln.strip()][-LOG_LINES:]
            if lines:
                reason += f"; last log lines of {name}: " + " | ".join(lines)
            log_cmd = f"kubectl -n {m.namespace} logs {name}" + (
                f" -c {container}" if container else "") + (" --previous" if restarted else "")
        return NotReadyError(m.component, reason, log_cmd)

    def destroy(self, *, volumes: bool = False, namespace: bool = False,
                timeout: float = 120.0) -> list[str]:
        """Delete every object labelled as this lab's, workloads first.

        Volumes (PVCs) go only with ``volumes``, the namespace only with ``namespace`` and only
        when oaas-lab created it; then it waits (up to ``timeout``) until the namespace is
        gone, so a ``deploy`` right after starts clean. Returns ``Kind/name`` of what was
        deleted.
        """
        ns = self.rendered.namespace
        labels = lab_labels(self.lab)
        live_ns = self.api.get("v1", "Namespace", ns)
        if live_ns is None:
            return []
        kinds = [k for k in reversed(KIND_ORDER) if k != "Namespace"]
        if volumes:
            kinds.append("PersistentVolumeClaim")
        deleted: list[str] = []
        for kind in kinds:
            for obj in self.api.list(_API_VERSIONS[kind], kind, ns, labels=labels):
                name = str(obj["metadata"]["name"])
                if self.api.delete(_API_VERSIONS[kind], kind, name, ns):
                    deleted.append(f"{kind}/{name}")
                    self._emit("delete", f"{kind}/{name}", "deleted")
        ns_labels = live_ns.get("metadata", {}).get("labels") or {}
        if namespace and all(ns_labels.get(k) == v for k, v in labels.items()):
            self.api.delete("v1", "Namespace", ns)
            deleted.append(f"Namespace/{ns}")
            self._wait_namespace_gone(timeout)
        return deleted
