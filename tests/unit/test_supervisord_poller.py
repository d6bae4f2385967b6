"""The lab's supervisord poller drops a stale descriptor that only reports an error."""

from __future__ import annotations

import os
import time
from typing import Any

from supervisor import poller as upstream

from oaas_lab.backends.local.supervisord_main import PollPoller


class Options:
    """What a poller asks its options for: a logger."""

    class logger:  # noqa: N801 -- supervisor's attribute name
        @staticmethod
        def blather(*_args: Any, **_kwargs: Any) -> None:
            return None


def stale_write_end() -> tuple[int, int]:
    """A pipe whose reader is gone: poll reports only POLLERR on its write end."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    return read_end, write_end


def polls_in(poller: Any, count: int) -> float:  # supervisor is untyped
    started = time.monotonic()
    for _ in range(count):
        poller.poll(0.05)
    return time.monotonic() - started


def test_upstream_poller_spins_and_the_lab_poller_waits() -> None:
    _, write_end = stale_write_end()
    try:
        spinning = upstream.PollPoller(Options())
        spinning.register_readable(write_end)  # left over from a closed stdout pipe
        assert polls_in(spinning, 20) < 0.5  # returns at once every time: a busy loop

        fixed = PollPoller(Options())
        fixed.register_readable(write_end)
        assert fixed.poll(0.05) == ([], [])
        assert write_end not in fixed.readables
        assert polls_in(fixed, 5) >= 0.25  # now each poll waits its timeout
    finally:
        os.close(write_end)
