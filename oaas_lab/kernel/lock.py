"""One change at a time per lab: ``up``, ``scale``, ``down`` (and what calls them) hold the
lab's change lock, so a second ``oaas-lab`` command on the same lab is refused at once with
who holds it, instead of both rewriting the same pods.

The lock is ``flock`` on ``<lab dir>/change.lock``: the kernel drops it when its holder dies,
even by SIGKILL, so an interrupted run never leaves the lab locked. Within one process the lock
is re-entrant (``up`` may scale), counted per lab directory.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from oaas_lab.errors import UserError

LOCK_FILE = "change.lock"

_HELD: dict[Path, tuple[int, int]] = {}
"""Lab directory -> (lock file descriptor, depth) for the locks this process holds."""
_GUARD = threading.RLock()


def _holder(path: Path) -> str:
    """Who holds the lock, as its holder wrote it ("`up` (pid 123, since 01:02:03)")."""
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return "another oaas-lab command"
    since = time.strftime("%H:%M:%S", time.localtime(float(info.get("since", 0))))
    return f"`{info.get('what', '?')}` (pid {info.get('pid', '?')}, since {since})"


@contextmanager
def changing(lab_dir: Path, lab_name: str, what: str) -> Iterator[None]:
    """Hold ``lab_dir``'s change lock while ``what`` changes the lab; a ``UserError`` naming the
    holder if another process has it."""
    key = lab_dir.resolve()
    with _GUARD:
        held = _HELD.get(key)
        if held is not None:
            _HELD[key] = (held[0], held[1] + 1)
        else:
            lab_dir.mkdir(parents=True, exist_ok=True)
            path = lab_dir / LOCK_FILE
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise UserError(
                    f"lab {lab_name!r} is being changed by {_holder(path)}",
                    hint="wait until it has finished; `oaas-lab status` may run meanwhile",
                ) from None
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"what": what, "pid": os.getpid(),
                                     "since": time.time()}).encode())
            _HELD[key] = (fd, 1)
    try:
        yield
    finally:
        with _GUARD:
            fd, depth = _HELD[key]
            if depth > 1:
                _HELD[key] = (fd, depth - 1)
            else:
                del _HELD[key]
                # Closing drops the flock; the file stays, since unlinking it would let a
                # waiting process lock a file nobody else opens any more.
                os.close(fd)
