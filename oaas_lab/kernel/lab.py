"""The ``Lab`` seam: what every lab backend offers the CLI, the checks and the scenarios.

A *pod* is one member of a component (a network namespace on the local lab, a Kubernetes pod
on the k8s lab). A *node* is a placement label: losing a node means losing every pod on it.
Backends raise ``oaas_lab.errors`` exceptions, never print, and never assert.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from oaas_lab.kernel.command import CommandResult
from oaas_lab.kernel.results import CheckResult


class PodState(StrEnum):
    """What a pod is doing, as far as the backend can tell."""

    RUNNING = "running"
    STARTING = "starting"
    STOPPED = "stopped"
    FAILED = "failed"
    ABSENT = "absent"


@dataclass(frozen=True)
class Pod:
    """One member of a component."""

    name: str  # e.g. "galera-0": component name, dash, ordinal
    component: str
    ordinal: int
    node: str  # e.g. "controller-1"
    ip: str
    state: PodState = PodState.RUNNING
    reason: str = ""


@dataclass(frozen=True)
class ComponentStatus:
    """One row of ``oaas-lab status``: a component, its members and whether it works."""

    component: str
    desired: int
    pods: tuple[Pod, ...]
    ready: CheckResult


ProgressCallback = Callable[[str, str, float], None]
"""Called as ``progress(component, message, elapsed_seconds)`` while a lab changes."""


@dataclass(frozen=True)
class UpReport:
    """What ``up`` did: per component the seconds it took to become ready, and what changed."""

    ready_seconds: dict[str, float]
    changed: tuple[str, ...]
    total_seconds: float


@runtime_checkable
class Lab(Protocol):
    """A lab the suite can deploy to, observe and break."""

    name: str

    def up(self, progress: ProgressCallback | None = None) -> UpReport:
        """Bring every configured component up; idempotent (a second call changes nothing)."""
        ...

    def down(self) -> None:
        """Remove everything this lab created."""
        ...

    def status(self) -> list[ComponentStatus]:
        """Every component, its pods and its readiness result."""
        ...

    def members(self, component: str) -> list[Pod]:
        """The pods of a component, ordered by ordinal."""
        ...

    def kill(self, pod: str) -> None:
        """SIGKILL the pod's main process; the supervisor (or kubelet) brings it back."""
        ...

    def stop(self, pod: str) -> None:
        """Stop a pod and keep it stopped until ``start``."""
        ...

    def start(self, pod: str) -> None:
        """Start a stopped pod again."""
        ...

    def kill_node(self, node: str) -> list[str]:
        """SIGKILL every pod placed on ``node``; returns their names."""
        ...

    def pause(self, pod: str) -> None:
        """Freeze every process of the pod (it holds its connections and answers nothing),
        as a stalled machine or a long garbage collection would, until ``resume``."""
        ...

    def resume(self, pod: str) -> None:
        """Thaw a paused pod."""
        ...

    def cut(self, pod: str, peers: Sequence[str], loss: float = 1.0) -> None:
        """Drop packets between ``pod`` and each pod in ``peers``: every one (a partition) or
        the fraction ``loss`` (a lossy link), until ``heal``. Clients outside are not cut."""
        ...

    def slow(self, pod: str, kbit: int) -> None:
        """Limit what the pod sends to ``kbit`` kbit/s until ``heal``."""
        ...

    def heal(self, pod: str) -> None:
        """Undo every network fault of the pod (safe when it has none)."""
        ...

    def scale(
        self, component: str, replicas: int, progress: ProgressCallback | None = None
    ) -> None:
        """Change a component's member count (odd only for quorum components)."""
        ...

    def exec(self, pod: str, argv: Sequence[str], timeout: float = 30.0) -> CommandResult:
        """Run a command inside a pod."""
        ...

    def address(self, pod: str) -> str:
        """An address the test runner can reach the pod at."""
        ...

    def service_address(self, component: str) -> str:
        """The address clients use for a component's service (a HAProxy or a Service VIP)."""
        ...

    def logs(self, pod: str, lines: int = 50) -> str:
        """The last lines of the pod's main log."""
        ...

    def log_path(self, pod: str) -> str:
        """Where an operator reads the pod's log (a file, or a kubectl command)."""
        ...
