"""One supervisord per lab: it starts every daemon and restarts one that dies (the failback).

The lab writes one ``[program:x]`` file per daemon into ``<lab_dir>/supervisor.d`` and drives
supervisord over its XML-RPC interface on a unix socket in the lab directory (the equivalent of
``supervisorctl update/start/stop``). supervisord runs in the host namespace; each program's
command line enters its pod's namespaces itself (``ip netns exec`` + ``unshare --uts``), and each
wrapper execs the next, so the PID supervisord reports is the daemon's own.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import xmlrpc.client
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

from oaas_lab.adapters import shell
from oaas_lab.errors import LabError
from oaas_lab.kernel.results import CheckResult, failed, passed
from oaas_lab.kernel.wait import until

PROGRAM_DIR = "supervisor.d"


@dataclass(frozen=True)
class Program:
    """One supervised daemon."""

    name: str
    argv: tuple[str, ...]
    log: Path
    env: Mapping[str, str] = field(default_factory=dict)
    directory: Path | None = None
    stopsignal: str = "TERM"
    stopwaitsecs: int = 30
    startsecs: int = 1
    group: bool = False
    """Stop and kill the whole process group (a pre-forking server's workers with it)."""


def _escape(text: str) -> str:
    # supervisord expands %(name)s in its option values; a literal percent must be doubled.
    return text.replace("%", "%%")


def render_program(program: Program) -> str:
    """The ``[program:x]`` section of one daemon."""
    lines = [
        f"[program:{program.name}]",
        f"command={_escape(shlex.join(program.argv))}",
        "autostart=true",
        "autorestart=true",
        f"startsecs={program.startsecs}",
        # A daemon that keeps failing keeps being retried (with supervisord's growing backoff),
        # as a kubelet keeps restarting a crash-looping container.
        "startretries=1000",
        f"stopsignal={program.stopsignal}",
        f"stopwaitsecs={program.stopwaitsecs}",
        f"stopasgroup={str(program.group).lower()}",
        f"killasgroup={str(program.group).lower()}",
        f"stdout_logfile={_escape(str(program.log))}",
        "stdout_logfile_maxbytes=20MB",
        "stdout_logfile_backups=1",
        "redirect_stderr=true",
    ]
    if program.directory is not None:
        lines.append(f"directory={_escape(str(program.directory))}")
    if program.env:
        pairs = ",".join(
            f'{key}="{_escape(value)}"' for key, value in sorted(program.env.items())
        )
        lines.append(f"environment={pairs}")
    return "\n".join(lines) + "\n"


def render_supervisord(lab_dir: Path, lab_name: str) -> str:
    """The lab's ``supervisord.conf``."""
    return "\n".join([
        "[unix_http_server]",
        f"file={_escape(str(lab_dir / 'supervisor.sock'))}",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={_escape(str(lab_dir / 'supervisord.log'))}",
        "logfile_maxbytes=10MB",
        f"pidfile={_escape(str(lab_dir / 'supervisord.pid'))}",
        f"childlogdir={_escape(str(lab_dir))}",
        f"identifier=oaas-lab-{lab_name}",
        "nodaemon=true",
        # MariaDB and RabbitMQ want more descriptors than the default 1024.
        "minfds=16384",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[include]",
        f"files = {_escape(str(lab_dir / PROGRAM_DIR))}/*.conf",
        "",
    ])


class Supervisor:
    """The lab's supervisord: start it, add and remove programs, start/stop/signal them."""

    def __init__(self, lab_dir: Path, lab_name: str) -> None:
        self.lab_dir = lab_dir
        self.lab_name = lab_name
        self.conf = lab_dir / "supervisord.conf"
        self.socket = lab_dir / "supervisor.sock"
        self.program_dir = lab_dir / PROGRAM_DIR

    def _proxy(self) -> Any:  # noqa: ANN401 -- an XML-RPC proxy is untyped by nature
        # A fresh proxy per call: the transport is not safe to share between threads.
        transport = SupervisorTransport("", "", f"unix://{self.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def _call(self, method: str, *args: object) -> Any:  # noqa: ANN401 -- XML-RPC result
        try:
            return getattr(self._proxy(), method)(*args)
        except xmlrpc.client.Fault as exc:
            raise LabError(
                f"supervisord ({self.socket}) refused {method}{args}: {exc.faultString}",
                hint=f"read {self.lab_dir / 'supervisord.log'}",
            ) from None
        except OSError as exc:
            raise LabError(
                f"supervisord of lab {self.lab_name!r} is not reachable at {self.socket} ({exc})",
                hint="run `oaas-lab up` to start the lab",
            ) from None

    def is_ours(self, pid: int) -> bool:
        """True when ``pid`` is this lab's supervisord (checked on its command line)."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return any(b"supervisord" in part for part in cmdline[:3]) and str(
            self.conf
        ).encode() in cmdline

    def pid(self) -> int | None:
        """The PID of the running supervisord of this lab, or None."""
        try:
            pid = int((self.lab_dir / "supervisord.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if self.is_ours(pid) else None

    def _answers(self) -> CheckResult:
        try:
            state = self._proxy().getState()
        except (OSError, xmlrpc.client.Fault) as exc:
            return failed("supervisord", f"not answering yet ({exc})")
        return passed("supervisord", str(state.get("statename")))

    def ensure_running(self) -> int:
        """Start supervisord unless it runs already; returns its PID."""
        self.program_dir.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(render_supervisord(self.lab_dir, self.lab_name), encoding="utf-8")
        pid = self.pid()
        if pid is not None:
            return pid
        self.socket.unlink(missing_ok=True)
        pid = shell.spawn([sys.executable, "-m", "oaas_lab.backends.local.supervisord_main",
                           "-n", "-c", str(self.conf)], log=self.lab_dir / "supervisord.out")
        answered, _ = until(self._answers, timeout=20.0, interval=0.2)
        if not answered.ok:
            raise LabError(f"supervisord did not start: {answered.detail}",
                           hint=f"read {self.lab_dir / 'supervisord.out'}")
        return pid

    def write_program(self, program: Program) -> bool:
        """Write the program's file; true when it changed (``update`` applies it)."""
        path = self.program_dir / f"{program.name}.conf"
        text = render_program(program)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            return False
        path.write_text(text, encoding="utf-8")
        return True

    def remove_program_file(self, name: str) -> None:
        """Forget the program's file (``update`` then removes the program)."""
        (self.program_dir / f"{name}.conf").unlink(missing_ok=True)

    def update(self) -> None:
        """Apply the program files: add new programs (which start), drop removed ones.

        A changed program is restarted with its new definition, like ``supervisorctl update``.
        """
        added, changed, removed = self._call("reloadConfig")[0]
        for name in removed:
            self.stop(name)
            self._call("removeProcessGroup", name)
        for name in changed:
            self.stop(name)
            self._call("removeProcessGroup", name)
            self._call("addProcessGroup", name)
        for name in added:
            self._call("addProcessGroup", name)

    def info(self, name: str) -> dict[str, Any] | None:
        """supervisord's view of a program (state name, pid ...), None when unknown."""
        try:
            result: dict[str, Any] = self._proxy().getProcessInfo(name)
        except xmlrpc.client.Fault:
            return None
        except OSError:
            return None
        return result

    def all_info(self) -> dict[str, dict[str, Any]]:
        """Every program's info by name (empty when supervisord is not running)."""
        try:
            infos = self._proxy().getAllProcessInfo()
        except (OSError, xmlrpc.client.Fault):
            return {}
        return {str(i["name"]): i for i in infos}

    def start(self, name: str) -> None:
        """Start a stopped program (no-op when it runs)."""
        info = self.info(name)
        if info is not None and info["statename"] in ("RUNNING", "STARTING"):
            return
        self._call("startProcess", name, False)

    def stop(self, name: str, timeout: float = 180.0) -> None:
        """Stop a program; it stays stopped until ``start``.

        A program that has just died is EXITED only until autorestart starts it again, and
        supervisord refuses to stop an EXITED program; returning then would let it come back.
        So the state is polled until the program is really STOPPED (or FATAL).
        """

        def stopped() -> CheckResult:
            info = self.info(name)
            state = "ABSENT" if info is None else str(info["statename"])
            if state in ("ABSENT", "STOPPED", "FATAL"):
                return passed("stop", f"{name}: {state.lower()}")
            if state != "EXITED":
                # Blocks until the program is down; a race with its own exit is harmless.
                with contextlib.suppress(LabError):
                    self._call("stopProcess", name, True)
            return failed("stop", f"{name}: {state.lower()}")

        result, _ = until(stopped, timeout=timeout, interval=0.2)
        if not result.ok:
            raise LabError(f"{name} did not stop within {timeout:.0f}s ({result.detail})",
                           hint=f"read {self.lab_dir / 'supervisord.log'}")

    def signal(self, name: str, signame: str) -> None:
        """Send a signal to the running program (e.g. ``USR2`` = reload for HAProxy)."""
        self._call("signalProcess", name, signame)

    def kill_daemon(self) -> None:
        """SIGKILL supervisord itself (``down``); its daemons are killed by namespace after."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def pids(self, names: Sequence[str]) -> dict[str, int]:
        """The PIDs of the running programs among ``names``."""
        infos = self.all_info()
        return {n: int(infos[n]["pid"]) for n in names if n in infos and infos[n]["pid"]}
