"""Reading pod and workload status objects: what state a pod is in, and why, in words."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oaas_lab.kernel.results import CheckResult, failed, passed

Obj = Mapping[str, Any]

FATAL_REASONS = frozenset({
    "InvalidImageName", "CreateContainerConfigError", "CreateContainerError",
    "ErrImageNeverPull",
})
"""Waiting reasons that never clear by themselves: waiting longer only hides them."""


def is_ready(pod: Obj) -> bool:
    """The pod's Ready condition is True."""
    conditions = pod.get("status", {}).get("conditions", []) or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def containers_running(pod: Obj) -> bool:
    """Every container of the pod has started and not ended (ready or not)."""
    statuses = pod.get("status", {}).get("containerStatuses", []) or []
    return bool(statuses) and all("running" in (cs.get("state") or {}) for cs in statuses)


def container_problems(pod: Obj) -> list[tuple[str, str, bool]]:
    """``(container, what is wrong, restarted)`` for every container that is not ready."""
    status = pod.get("status", {})
    out: list[tuple[str, str, bool]] = []
    for kind in ("initContainerStatuses", "containerStatuses"):
        for cs in status.get(kind, []) or []:
            if cs.get("ready") or cs.get("state", {}).get("terminated", {}).get("exitCode") == 0:
                continue
            state = cs.get("state", {})
            restarted = int(cs.get("restartCount", 0)) > 0
            if "waiting" in state:
                w = state["waiting"]
                text = str(w.get("reason", "Waiting"))
                if w.get("message"):
                    text += f" ({' '.join(str(w['message']).split())[:160]})"
            elif "terminated" in state:
                t = state["terminated"]
                text = f"terminated {t.get('reason', '')} exit {t.get('exitCode')}"
            else:
                text = "running, not ready (readiness probe failing)"
            last = cs.get("lastState", {}).get("terminated")
            if last:
                text += f"; last exit {last.get('exitCode')} {last.get('reason', '')}".rstrip()
            restarts = int(cs.get("restartCount", 0))
            if restarts:
                text += f"; {restarts} restarts"
            out.append((str(cs.get("name")), text, restarted))
    return out


def describe(pod: Obj) -> str:
    """One line: the pod's phase and, for each unhappy container, its state and reason."""
    name = pod.get("metadata", {}).get("name")
    status = pod.get("status", {})
    phase = status.get("phase", "Unknown")
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return f"{name}: Terminating"
    if phase == "Pending":
        for cond in status.get("conditions", []) or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                return f"{name}: Pending, not scheduled: {cond.get('message', cond.get('reason'))}"
    problems = container_problems(pod)
    if not problems:
        return f"{name}: {phase}" + (", ready" if is_ready(pod) else ", not ready")
    return f"{name}: {phase}, " + "; ".join(f"{c}: {t}" for c, t, _ in problems)


def fatal(pod: Obj) -> str:
    """A reason that will not clear by waiting, or ``""``."""
    for kind in ("initContainerStatuses", "containerStatuses"):
        for cs in pod.get("status", {}).get(kind, []) or []:
            reason = cs.get("state", {}).get("waiting", {}).get("reason", "")
            if reason in FATAL_REASONS:
                return f"{pod['metadata']['name']} container {cs.get('name')}: {reason}"
    return ""


def state(pod: Obj) -> str:
    """The backend-neutral state of a pod: a ``PodState`` value (this layer sits below the
    backends, so it returns the plain value).

    Running means the containers run, as a local pod's supervisor says of its processes; being
    ready is for the component's judge: a Galera or etcd member cut off from its quorum fails
    its readiness probe, yet it runs and must be asked (it is the one refusing writes)."""
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return "stopped"
    phase = pod.get("status", {}).get("phase", "Unknown")
    if phase == "Failed" or fatal(pod):
        return "failed"
    if phase == "Running" and containers_running(pod):
        return "running"
    if phase == "Succeeded":
        return "stopped"
    return "starting"


def workload_ready(obj: Obj) -> CheckResult:
    """A StatefulSet or Deployment has every desired replica updated and ready."""
    kind = str(obj.get("kind"))
    name = f"{kind}/{obj.get('metadata', {}).get('name')}"
    spec, status = obj.get("spec", {}), obj.get("status", {}) or {}
    if kind == "DaemonSet":  # one pod per matching node: the controller says how many
        want = int(status.get("desiredNumberScheduled", 0) or 0)
        ready = int(status.get("numberReady", 0) or 0)
        updated = int(status.get("updatedNumberScheduled", 0) or 0)
        if want == 0 and int(status.get("observedGeneration", 0) or 0) >= int(
                obj.get("metadata", {}).get("generation", 0) or 0):
            return failed(name, "no node carries its role label",
                          "label the compute nodes (see `oaas-lab preflight`)",
                          replicas=0, ready=0, updated=0)
    else:
        want = int(spec.get("replicas", 1))
        ready = int(status.get("readyReplicas", 0) or 0)
        updated = int(status.get("updatedReplicas", 0) or 0)
    observed = int(status.get("observedGeneration", 0) or 0)
    generation = int(obj.get("metadata", {}).get("generation", 0) or 0)
    if observed < generation:
        return failed(name, "the controller has not seen the latest spec yet",
                      replicas=want, ready=ready, updated=updated)
    if kind == "StatefulSet" and status.get("updateRevision") not in (
        None, status.get("currentRevision"),
    ) and updated < want:
        return failed(name, f"rolling update: {updated}/{want} updated, {ready} ready",
                      replicas=want, ready=ready, updated=updated)
    if ready < want or updated < want:
        return failed(name, f"{ready}/{want} ready, {updated}/{want} updated",
                      replicas=want, ready=ready, updated=updated)
    return passed(name, f"{ready}/{want} ready", replicas=want, ready=ready, updated=updated)


def job_done(obj: Obj) -> CheckResult:
    """A Job has succeeded; a Job out of retries is final (``fatal`` in the evidence)."""
    name = f"Job/{obj.get('metadata', {}).get('name')}"
    status = obj.get("status", {}) or {}
    succeeded = int(status.get("succeeded", 0) or 0)
    failures = int(status.get("failed", 0) or 0)
    limit = int(obj.get("spec", {}).get("backoffLimit", 6))
    for cond in status.get("conditions", []) or []:
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            return failed(name, f"failed: {cond.get('reason')}: {cond.get('message', '')}",
                          fatal=f"{name} failed ({cond.get('reason')})")
    if succeeded >= 1:
        return passed(name, "completed")
    if failures > limit:
        return failed(name, f"{failures} failed runs", fatal=f"{name} out of retries")
    return failed(name, f"running ({failures} failed runs so far)")


def container_id(pod: Obj, container: str) -> str | None:
    """The runtime's id of ``container`` while it runs (``containerd://<id>`` without the
    scheme), or None."""
    for status in pod.get("status", {}).get("containerStatuses", []) or []:
        if status.get("name") == container and "running" in (status.get("state") or {}):
            raw = str(status.get("containerID") or "")
            return raw.split("://", 1)[-1] or None
    return None
