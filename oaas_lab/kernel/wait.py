"""The one waiting helper. No other module sleeps in a loop.

``wait_for`` polls a check until it passes, the deadline passes, or it reports a state that can
never become ready; each poll is reported to an optional progress callback. ``until`` is the
same wait without the exception: it returns the last result (a failed one says it timed out) and
the seconds waited, so a caller turns a timeout into its own error or assertion in one line.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from oaas_lab.kernel.results import CheckResult

Progress = Callable[[CheckResult, float], None]


class WaitTimeoutError(Exception):
    """The deadline passed; ``last`` is the last result seen."""

    def __init__(self, last: CheckResult, waited: float) -> None:
        super().__init__(f"{last.name}: not ready after {waited:.0f}s: {last.detail}")
        self.last = last
        self.waited = waited


def wait_for(
    check: Callable[[], CheckResult],
    *,
    timeout: float,
    interval: float = 0.5,
    fatal: Callable[[CheckResult], bool] | None = None,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> CheckResult:
    """Poll ``check`` until it returns an ``ok`` result and return that result.

    Raises ``WaitTimeoutError`` with the last result after ``timeout`` seconds, or at once when
    ``fatal(result)`` says the failure is final (e.g. the process exited for good).
    """
    start = clock()
    while True:
        result = check()
        elapsed = clock() - start
        if progress is not None:
            progress(result, elapsed)
        if result.ok:
            return result
        if (fatal is not None and fatal(result)) or elapsed >= timeout:
            raise WaitTimeoutError(result, elapsed)
        sleep(min(interval, max(0.0, timeout - elapsed)))


def until(
    check: Callable[[], CheckResult],
    *,
    timeout: float,
    interval: float = 0.5,
    fatal: Callable[[CheckResult], bool] | None = None,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[CheckResult, float]:
    """``wait_for`` that never raises: the last result (failed after a timeout or a fatal
    result) and the seconds it took, so the caller says in its own words what did not happen.
    """
    started = clock()
    try:
        result = wait_for(check, timeout=timeout, interval=interval, fatal=fatal,
                          progress=progress, clock=clock, sleep=sleep)
    except WaitTimeoutError as exc:
        return exc.last, clock() - started
    return result, clock() - started
