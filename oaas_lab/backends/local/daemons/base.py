"""What a daemon driver gives the local lab, and what the lab gives a driver."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from oaas_lab.backends.local.pods import PodRecord
from oaas_lab.backends.local.supervisor import Program
from oaas_lab.errors import NotReadyError
from oaas_lab.kernel.command import CommandResult
from oaas_lab.kernel.results import CheckResult
from oaas_lab.kernel.wait import until
from oaas_lab.secrets import SecretStore

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class PodContext:
    """Everything a driver needs to render one pod."""

    pod: PodRecord
    members: tuple[PodRecord, ...]
    lab_name: str
    pod_dir: Path
    secrets: SecretStore
    python: str
    others: Mapping[str, tuple[PodRecord, ...]] = field(default_factory=dict)
    front_address: str = ""
    """The front's virtual address (HAProxy's, moved by keepalived); empty without a front."""

    @property
    def peers(self) -> tuple[PodRecord, ...]:
        """The other members of the pod's component."""
        return tuple(m for m in self.members if m.name != self.pod.name)

    def path(self, *parts: str) -> Path:
        """A path inside the pod's directory."""
        return self.pod_dir.joinpath(*parts)

    @property
    def lab_dir(self) -> Path:
        """The lab's directory (``<lab_dir>/pods/<pod>`` is the pod's)."""
        return self.pod_dir.parents[1]

    def shared(self, *parts: str) -> Path:
        """A directory every member of the component shares (a ReadWriteMany volume)."""
        return self.lab_dir.joinpath("shared", self.pod.component, *parts)


@dataclass(frozen=True)
class RenderedFile:
    """A configuration file of a pod; secrets-bearing files get mode 0600."""

    path: Path
    content: str
    mode: int = 0o644


class PodRunner(Protocol):
    """The lab, as drivers see it: run a command in a pod, signal a program."""

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
        """Run ``argv`` inside ``pod`` with the pod's environment, plus ``env``."""
        ...

    def signal_program(self, program: str, signame: str) -> None:
        """Send a signal to a supervised program."""
        ...


class Driver(Protocol):
    """One infrastructure daemon."""

    component: str
    watches: tuple[str, ...]
    """Components whose membership this daemon's configuration lists (HAProxy lists Galera)."""
    one_member_at_a_time: bool
    """Scale out by one ready member at a time (etcd) rather than all new members at once."""

    def files(self, ctx: PodContext) -> list[RenderedFile]:
        """The configuration files of the pod."""
        ...

    def programs(self, ctx: PodContext) -> list[Program]:
        """The supervised programs of the pod; the first is the daemon itself."""
        ...

    def exec_env(self, ctx: PodContext) -> dict[str, str]:
        """Environment of commands run in the pod (``exec``) and of its programs."""
        ...

    def before_start(self, new: Sequence[PodContext], existing: Sequence[PodContext],
                     runner: PodRunner) -> None:
        """Before new members of a running component start (scale-out): announce them."""
        ...

    def prepare(self, ctxs: Sequence[PodContext], runner: PodRunner) -> None:
        """Before the members start (an init job): schemas, keys, shared files (idempotent)."""
        ...

    def converge(self, ctxs: Sequence[PodContext], runner: PodRunner) -> None:
        """After the members run: form the cluster, create users (idempotent)."""
        ...

    def leave(self, ctx: PodContext, remaining: Sequence[PodContext], runner: PodRunner) -> None:
        """Before a member is removed by a scale-in: leave the cluster cleanly."""
        ...

    reloads: bool
    """``reload`` applies changed files to a running member (else it must be restarted)."""

    def reload(self, ctx: PodContext, runner: PodRunner) -> None:
        """The pod's files changed while it runs (e.g. new backends): apply them gracefully."""
        ...


class SimpleDriver:
    """Defaults for drivers without cluster formation or reload."""

    component = ""
    watches: tuple[str, ...] = ()
    one_member_at_a_time = False
    reloads = False

    def exec_env(self, ctx: PodContext) -> dict[str, str]:
        """Only a sane PATH and HOME."""
        return {"PATH": PATH, "HOME": str(ctx.path("home"))}

    def before_start(self, new: Sequence[PodContext], existing: Sequence[PodContext],
                     runner: PodRunner) -> None:
        """Nothing to do: new members find the others by themselves."""

    def prepare(self, ctxs: Sequence[PodContext], runner: PodRunner) -> None:
        """Nothing to prepare."""

    def converge(self, ctxs: Sequence[PodContext], runner: PodRunner) -> None:
        """Nothing to do: members are independent or cluster by configuration."""

    def leave(self, ctx: PodContext, remaining: Sequence[PodContext], runner: PodRunner) -> None:
        """Nothing to do: stopping the member is enough."""

    def reload(self, ctx: PodContext, runner: PodRunner) -> None:
        """Nothing to do: the configuration is only read at start."""


def main_log(ctx: PodContext) -> Path:
    """The log file of the pod's daemon (what ``logs``/``log_path`` show)."""
    return ctx.path("log", f"{ctx.pod.name}.log")


def await_ready(
    component: str, check: Callable[[], CheckResult], log: Path, timeout: float = 150.0
) -> CheckResult:
    """Poll ``check`` each second; on timeout a ``NotReadyError`` names the reason and the log."""
    result, _ = until(check, timeout=timeout, interval=1.0)
    if not result.ok:
        raise NotReadyError(component, result.detail, str(log))
    return result
