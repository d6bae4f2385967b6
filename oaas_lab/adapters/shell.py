"""Subprocesses: the only module of oaas-lab that starts one.

Every call has a timeout and an explicit argument vector (never a shell string), and a failure
becomes a ``CommandError`` unless the caller asked to look at the return code itself.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from oaas_lab.errors import CommandError


@dataclass(frozen=True)
class Completed:
    """A finished command."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run(
    argv: Sequence[str],
    *,
    timeout: float = 60.0,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
    cwd: str | Path | None = None,
) -> Completed:
    """Run ``argv`` to completion and capture its output.

    A timeout counts as a failure with return code 124 (like coreutils ``timeout``).
    """
    full_env = None if env is None else {**os.environ, **env}
    try:
        proc = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full_env,
            input=input_text,
            cwd=cwd,
            check=False,
        )
        done = Completed(tuple(argv), proc.returncode, proc.stdout, proc.stderr)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        done = Completed(tuple(argv), 124, out, err + f"\ntimed out after {timeout:.0f}s")
    except FileNotFoundError:
        done = Completed(tuple(argv), 127, "", f"{argv[0]}: command not found")
    if check and not done.ok:
        raise CommandError(list(argv), done.returncode, done.stderr or done.stdout)
    return done


def spawn(
    argv: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
) -> int:
    """Start a long-running process detached from this one; returns its PID.

    Its output goes to ``log``. It gets its own session so that a Ctrl-C at the CLI does not
    reach the lab's daemons; ``down`` stops it by PID.
    """
    full_env = None if env is None else {**os.environ, **env}
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
            start_new_session=True,
            close_fds=True,
        )
    return proc.pid
