"""The Vagrant lab's machines, and a testinfra host for each: the only module using
python-vagrant and pytest-testinfra.

python-vagrant reads the machines and their SSH settings (``vagrant status``,
``vagrant ssh-config``); testinfra runs read-only commands on them over SSH. Every failure of
either (no ``vagrant`` binary, a broken Vagrantfile, a machine that does not answer) becomes a
``UserError`` or ``LabError`` that says what to do, never a traceback.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from oaas_lab.errors import LabError, UserError


@dataclass(frozen=True)
class Machine:
    """One machine of the Vagrantfile and what Vagrant says about it."""

    name: str
    state: str  # "running", "poweroff", "not_created", ...
    provider: str


@dataclass(frozen=True)
class RunResult:
    """A command run on a machine."""

    rc: int
    stdout: str
    stderr: str


class _Outcome(Protocol):
    rc: int
    stdout: str
    stderr: str


class _TestinfraHost(Protocol):
    def run(self, command: str) -> _Outcome: ...


class _Status(Protocol):
    name: str
    state: str
    provider: str


class _Vagrant(Protocol):
    def status(self) -> list[_Status]: ...

    def ssh_config(self, vm_name: str | None = None) -> str: ...


class Host:
    """A read-only view of one machine through testinfra."""

    def __init__(self, name: str, backend: _TestinfraHost | None) -> None:
        self.name = name
        self._host = backend

    def run(self, argv: Sequence[str]) -> RunResult:
        """Run a command; a connection failure is a ``LabError`` naming the machine."""
        if self._host is None:
            raise LabError(f"{self.name}: no connection", hint="build hosts with hosts()")
        try:
            out = self._host.run(" ".join(_quote(a) for a in argv))
        except Exception as exc:  # testinfra raises bare RuntimeErrors for SSH trouble
            raise LabError(f"{self.name}: cannot run {argv[0]!r}: {exc}",
                           hint=f"check `vagrant ssh {self.name}` works") from None
        return RunResult(int(out.rc), str(out.stdout), str(out.stderr))

    def read(self, path: str) -> str:
        """A file's content ('' when it does not exist)."""
        out = self.run(["cat", path])
        return out.stdout if out.rc == 0 else ""


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def local_host() -> Host:
    """This machine, through testinfra's local backend (for tests of the checks)."""
    import testinfra

    backend: _TestinfraHost = testinfra.get_host("local://")
    return Host("localhost", backend)


def _vagrant(root: Path) -> _Vagrant:
    if shutil.which("vagrant") is None:
        raise UserError("vagrant is not installed",
                        hint="install it (Debian: apt-get install vagrant) and a provider")
    if not (root / "Vagrantfile").is_file():
        raise UserError(f"no Vagrantfile in {root}", hint="run from the repository root")
    import vagrant

    # python-vagrant has no annotations
    client: _Vagrant = vagrant.Vagrant(  # type: ignore[no-untyped-call]
        root=str(root), quiet_stdout=True, quiet_stderr=True,
    )
    return client


def vagrant_message(output: str) -> str:
    """The human part of vagrant's ``--machine-readable`` error output, on one line."""
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    for line in lines:
        fields = line.split(",", 4)
        if len(fields) == 5 and fields[2] == "error-exit":
            text = fields[4].split(",", 1)[-1]
            text = text.replace("\\n", " ").replace("%!(VAGRANT_COMMA)", ",")
            return " ".join(text.split())
    return lines[-1] if lines else "(no output)"


def _vagrant_error(what: str, exc: subprocess.CalledProcessError) -> LabError:
    output = exc.output.decode(errors="replace") if isinstance(exc.output, bytes) else str(
        exc.output or "")
    return LabError(f"vagrant {what} failed (exit {exc.returncode}): {vagrant_message(output)}",
                    hint=f"run `vagrant {what}` by hand to see the whole output")


def machines(root: Path) -> list[Machine]:
    """Every machine of the Vagrantfile with its state."""
    v = _vagrant(root)
    try:
        found = v.status()
    except subprocess.CalledProcessError as exc:
        raise _vagrant_error("status", exc) from None
    return [Machine(str(s.name), str(s.state), str(s.provider)) for s in found]


def hosts(root: Path, names: Sequence[str]) -> list[Host]:
    """A testinfra host per running machine, connected with Vagrant's own SSH settings."""
    import testinfra

    v = _vagrant(root)
    config_dir = root / ".vagrant"
    config_dir.mkdir(exist_ok=True)
    out: list[Host] = []
    for name in names:
        try:
            text = v.ssh_config(vm_name=name)
        except subprocess.CalledProcessError as exc:
            raise _vagrant_error(f"ssh-config {name}", exc) from None
        path = config_dir / f"ssh-config-{name}"
        path.write_text(text, encoding="utf-8")
        backend: _TestinfraHost = testinfra.get_host(f"ssh://{name}", ssh_config=str(path))
        out.append(Host(name, backend))
    return out
