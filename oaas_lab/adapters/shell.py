"""Subprocesses: the only module of oaas-lab that starts one.

Every call has a timeout and an explicit argument vector (never a shell string), and a failure
becomes a ``CommandError`` unless the caller asked to look at the return code itself.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from oaas_lab.errors import CommandError
from oaas_lab.kernel.command import CommandResult


def run(
    argv: Sequence[str],
    *,
    timeout: float = 60.0,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
    cwd: str | Path | None = None,
) -> CommandResult:
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
        done = CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        done = CommandResult(tuple(argv), 124, out, err + f"\ntimed out after {timeout:.0f}s")
    except FileNotFoundError:
        done = CommandResult(tuple(argv), 127, "", f"{argv[0]}: command not found")
    if check and not done.ok:
        raise CommandError(list(argv), done.returncode, done.stderr or done.stdout)
    return done


def stream(
    argv: Sequence[str],
    *,
    on_line: Callable[[str], None],
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
) -> CommandResult:
    """Run ``argv`` to completion, handing each line of its output to ``on_line`` as it comes.

    For long builds whose progress a user should see. Stdout and stderr are read together
    (``stdout`` of the result holds the last 200 lines of both); past ``timeout`` the command
    is killed and counts as failed with return code 124. It never raises for a failed command:
    the caller reads ``returncode``.
    """
    full_env = None if env is None else {**os.environ, **env}
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=full_env, cwd=cwd, start_new_session=True,
            close_fds=True, text=True, errors="replace",
        )
    except FileNotFoundError:
        return CommandResult(tuple(argv), 127, f"{argv[0]}: command not found", "")
    assert proc.stdout is not None  # stdout=PIPE above guarantees it
    tail: list[str] = []
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            left = timeout - (time.monotonic() - start)
            if left <= 0 or not sel.select(timeout=left):
                proc.kill()
                proc.wait()
                tail.append(f"timed out after {timeout:.0f}s")
                return CommandResult(tuple(argv), 124, "\n".join(tail), "")
            line = proc.stdout.readline()
            if not line:
                break
            line = line.rstrip("\n")
            tail = [*tail[-199:], line]
            on_line(line)
    returncode = proc.wait()
    proc.stdout.close()
    return CommandResult(tuple(argv), returncode, "\n".join(tail), "")


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


def in_netns(netns: str, argv: Sequence[str], *, hostname: str | None = None) -> list[str]:
    """The argument vector that runs ``argv`` inside the network namespace ``netns``.

    ``ip netns exec`` also bind-mounts ``/etc/netns/<netns>/*`` over ``/etc``, which gives the
    command the namespace's own hosts file and resolver. With ``hostname`` the command also
    gets a UTS namespace of its own carrying that name (Erlang node names depend on it). Every
    wrapper ``exec``s the next, so the PID of the returned command line is the PID of ``argv``.
    """
    inner = list(argv)
    if hostname:
        inner = [
            "unshare", "--uts", "--", "sh", "-c", 'hostname "$0" && exec "$@"', hostname, *inner,
        ]
    return ["ip", "netns", "exec", netns, *inner]


def replace_process(argv: Sequence[str], env: Mapping[str, str] | None = None) -> NoReturn:
    """Replace the current process with ``argv`` (an entrypoint handing over to its daemon).

    The daemon keeps the entrypoint's PID, so a supervisor that started the entrypoint signals
    the daemon itself.
    """
    full_env = dict(os.environ) if env is None else {**os.environ, **env}
    os.execvpe(argv[0], list(argv), full_env)  # noqa: S606 -- argv is built by the lab, no shell


@dataclass(frozen=True)
class Watched:
    """A command watched until a marker appeared in its output (or it ended, or time ran out)."""

    argv: tuple[str, ...]
    found: bool
    elapsed: float
    output: str
    returncode: int | None
    """The exit code when the command ended by itself; ``None`` when it was stopped."""


def run_until(
    argv: Sequence[str],
    *,
    marker: str,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
) -> Watched:
    """Start ``argv``, read its output until ``marker`` appears, then stop it by its PID.

    Stdout and stderr are read together. The watch ends at the first of: the marker seen, the
    command exited, ``timeout`` seconds passed. A command still running then gets SIGTERM,
    and SIGKILL 5 s later; ``elapsed`` is the time from the start to the marker (or the end).
    """
    full_env = None if env is None else {**os.environ, **env}
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    except FileNotFoundError:
        return Watched(tuple(argv), False, 0.0, f"{argv[0]}: command not found", 127)
    assert proc.stdout is not None  # stdout=PIPE above guarantees it
    seen = bytearray()
    wanted = marker.encode()
    found = False
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while not found:
            left = timeout - (time.monotonic() - start)
            if left <= 0 or not sel.select(timeout=left):
                break
            data = os.read(proc.stdout.fileno(), 65536)
            if not data:
                # End of output: the command is exiting; reap it to learn its exit code.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
                break
            # A serial console arrives a few bytes per read: search from just before the new data.
            from_at = max(0, len(seen) - len(wanted))
            seen += data
            found = seen.find(wanted, from_at) >= 0
    elapsed = time.monotonic() - start
    returncode = proc.poll()
    if returncode is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    proc.stdout.close()
    output = bytes(seen).decode(errors="replace")
    return Watched(tuple(argv), found, elapsed, output, returncode)
