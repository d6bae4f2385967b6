"""The lab's change lock: a second command is refused with its holder; a killed holder frees it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oaas_lab.errors import UserError
from oaas_lab.kernel import lock

HOLD = """
import sys, time
from pathlib import Path
from oaas_lab.kernel import lock
with lock.changing(Path(sys.argv[1]), "t1", "scale galera 5"):
    print("held", flush=True)
    time.sleep(60)
"""


def holder(lab_dir: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lab_dir)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_process_is_refused_naming_the_holder(tmp_path: Path) -> None:
    proc = holder(tmp_path)
    try:
        with pytest.raises(UserError) as err, lock.changing(tmp_path, "t1", "up"):
            pytest.fail("the lock was taken twice")
        line = err.value.one_line()
        assert "lab 't1' is being changed by `scale galera 5`" in line
        assert f"pid {proc.pid}" in line
        assert err.value.exit_code == 2
    finally:
        proc.kill()
        proc.wait()


def test_a_killed_holder_leaves_the_lab_unlocked(tmp_path: Path) -> None:
    proc = holder(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with lock.changing(tmp_path, "t1", "up"):
        assert (tmp_path / lock.LOCK_FILE).stat().st_mode & 0o777 == 0o600


def test_reentrant_within_one_process(tmp_path: Path) -> None:
    with lock.changing(tmp_path, "t1", "up"), lock.changing(tmp_path, "t1", "scale etcd 5"):
        pass
    # Released fully: another process gets it now.
    done = subprocess.run([sys.executable, "-c", HOLD.replace("time.sleep(60)", "pass"),
                           str(tmp_path)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    started = time.monotonic()
    with lock.changing(tmp_path, "t1", "down"):
        assert time.monotonic() - started < 5
