"""The probe loop: one client that writes at a steady cadence while a fault is injected.

A ``Target`` knows how to make one write (an SQL INSERT through HAProxy, an etcd put, a
confirmed publish) and how to read back which writes are there. ``ProbeLoop`` calls it from a
background thread at sub-second cadence, bounded by a count and a time cap, and records every
attempt. ``figures`` turns the attempts into the numbers a scenario reports: the longest gap
between acknowledged writes, the failed requests, and, once read back, the lost writes.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace

from oaas_lab.kernel.results import CheckResult, failed, passed
from oaas_lab.kernel.target import Target
from oaas_lab.kernel.wait import until

DEFAULT_INTERVAL = 0.2
"""Seconds between the starts of two attempts (five writes a second)."""

DEFAULT_MAX_ATTEMPTS = 3000
DEFAULT_MAX_SECONDS = 300.0
READ_BACK_SECONDS = 30.0
"""How long a read-back that cannot connect is tried again before its error stands."""


@dataclass(frozen=True)
class Attempt:
    """One write: when it started and ended (seconds since the probe started), and how."""

    seq: int
    started: float
    ended: float
    ok: bool
    error: str = ""


@dataclass(frozen=True)
class Figures:
    """What one probe measured; the numbers that go into the reports.

    ``longest_gap`` is the longest time without an acknowledged write, counted between
    acknowledgements and from the probe's start and to its end, so a service that never
    answered shows a gap as long as the whole run. ``lost`` is only known after ``verify``.
    """

    target: str
    duration: float
    attempts: int
    acknowledged: int
    failed: int
    longest_gap: float
    gap_started: float
    errors: dict[str, int] = field(default_factory=dict)
    capped: str = ""
    verified: int | None = None
    lost: tuple[int, ...] = ()

    def as_properties(self) -> dict[str, object]:
        """Flat name -> value pairs for reports (JUnit properties, the HTML table)."""
        data: dict[str, object] = {
            "duration_s": round(self.duration, 2),
            "attempts": self.attempts,
            "acknowledged": self.acknowledged,
            "failed": self.failed,
            "longest_gap_s": round(self.longest_gap, 2),
        }
        if self.verified is not None:
            data["verified"] = self.verified
            data["lost"] = len(self.lost)
        if self.errors:
            data["errors"] = "; ".join(f"{n}x {e}" for e, n in self.errors.items())
        if self.capped:
            data["capped"] = self.capped
        return data


def longest_gap(attempts: Sequence[Attempt], duration: float) -> tuple[float, float]:
    """The longest stretch without an acknowledgement and when it started.

    The probe's start and end count as boundaries: a probe that never got an acknowledgement
    has a gap of its whole duration.
    """
    marks = [0.0, *sorted(a.ended for a in attempts if a.ok), max(duration, 0.0)]
    best, start = 0.0, 0.0
    for before, after in itertools.pairwise(marks):
        if after - before > best:
            best, start = after - before, before
    return best, start


def error_kind(exc: BaseException) -> str:
    """A short, stable description of a failure, for counting like errors together."""
    text = " ".join(str(exc).split())
    kind = type(exc).__name__
    return f"{kind}: {text[:120]}" if text else kind


def figures(
    target: str, attempts: Sequence[Attempt], duration: float, capped: str = ""
) -> Figures:
    """Summarise a probe's attempts."""
    gap, gap_started = longest_gap(attempts, duration)
    errors = Counter(a.error for a in attempts if not a.ok)
    return Figures(
        target=target,
        duration=duration,
        attempts=len(attempts),
        acknowledged=sum(1 for a in attempts if a.ok),
        failed=sum(1 for a in attempts if not a.ok),
        longest_gap=gap,
        gap_started=gap_started,
        errors=dict(errors.most_common(5)),
        capped=capped,
    )


def verify(result: Figures, acknowledged: Collection[int], present: Collection[int]) -> Figures:
    """``result`` with the verification filled in: which acknowledged writes are missing."""
    have = set(present)
    lost = tuple(sorted(s for s in acknowledged if s not in have))
    return replace(result, verified=len(acknowledged) - len(lost), lost=lost)


def no_lost_writes(result: Figures) -> CheckResult:
    """Every acknowledged write was read back afterwards."""
    name = f"{result.target}: acknowledged writes"
    if result.verified is None:
        return failed(name, "the writes were not read back", hint="call ProbeLoop.verify first")
    if result.lost:
        shown = ", ".join(str(s) for s in result.lost[:10])
        more = f" and {len(result.lost) - 10} more" if len(result.lost) > 10 else ""
        return failed(
            name,
            f"{len(result.lost)} of {result.acknowledged} acknowledged writes are missing "
            f"(sequence numbers {shown}{more})",
            hint="an acknowledged write was lost: read the member logs around the fault",
            lost=list(result.lost),
        )
    if result.acknowledged == 0:
        return failed(
            name, "no write was acknowledged, so nothing could be verified",
            hint="the service never accepted a write during the probe",
        )
    return passed(name, f"all {result.acknowledged} acknowledged writes are present")


class ProbeLoop:
    """Write to a target from a background thread until stopped or a cap is reached.

    Usable as a context manager; ``stop`` returns the figures, ``verify`` reads back the
    acknowledged writes and adds the lost ones.
    """

    def __init__(
        self,
        target: Target,
        *,
        interval: float = DEFAULT_INTERVAL,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        max_seconds: float = DEFAULT_MAX_SECONDS,
        first_seq: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self.first_seq = first_seq
        self.interval = interval
        self.max_attempts = max_attempts
        self.max_seconds = max_seconds
        self._clock = clock
        self._stop = threading.Event()
        self._attempts: list[Attempt] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self._ended: float | None = None
        self._capped = ""
        self._result: Figures | None = None
        self._adopted: list[int] = []

    def __enter__(self) -> ProbeLoop:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Begin writing in the background."""
        if self._thread is not None:
            return
        self._started = self._clock()
        self._thread = threading.Thread(
            target=self._run, name=f"probe-{self.target.name}", daemon=True
        )
        self._thread.start()

    def _one(self) -> CheckResult:
        # One attempt per poll of the wait: the loop's pacing and time cap are the wait's.
        if self._stop.is_set():
            return passed("probe", "stopped")
        with self._lock:
            count = len(self._attempts)
        seq = self.first_seq + count
        if count >= self.max_attempts:
            self._capped = f"count cap of {self.max_attempts} attempts reached"
            return passed("probe", self._capped)
        began = self._clock() - self._started
        try:
            self.target.write(seq)
        except Exception as exc:  # any failure of a write is a measurement, not a crash
            attempt = Attempt(seq, began, self._clock() - self._started, False, error_kind(exc))
        else:
            attempt = Attempt(seq, began, self._clock() - self._started, True)
        with self._lock:
            self._attempts.append(attempt)
        return failed("probe", "running")

    def _pause(self, seconds: float) -> None:
        # The pause between writes ends early when the probe is stopped.
        self._stop.wait(seconds)

    def _run(self) -> None:
        try:
            finished, _ = until(self._one, timeout=self.max_seconds, interval=self.interval,
                                sleep=self._pause, clock=self._clock)
            if not finished.ok:
                self._capped = f"time cap of {self.max_seconds:.0f}s reached"
        finally:
            self._ended = self._clock()

    def elapsed(self) -> float:
        """Seconds since the probe started (the time base of its attempts)."""
        return self._clock() - self._started

    def attempts(self) -> list[Attempt]:
        """A copy of the attempts so far."""
        with self._lock:
            return list(self._attempts)

    def acknowledged(self) -> list[int]:
        """Sequence numbers of the acknowledged writes so far (adopted ones included)."""
        return [a.seq for a in self.attempts() if a.ok] + self._adopted

    def adopt(self, other: ProbeLoop) -> None:
        """Verify ``other``'s acknowledged writes too (it wrote under this probe's run)."""
        self._adopted.extend(a.seq for a in other.attempts() if a.ok)

    def stop_when_capped(self) -> Figures:
        """Let the probe run until its own count or time cap, then return the figures."""
        if self._thread is not None:
            # A write can take a few seconds past the cap before it returns.
            self._thread.join(self.max_seconds + 30.0)
        return self.stop()

    def stop(self, join_timeout: float = 30.0) -> Figures:
        """Stop writing and return the figures (idempotent)."""
        if self._result is not None:
            return self._result
        self._stop.set()
        if self._thread is not None:
            self._thread.join(join_timeout)
        end = self._ended if self._ended is not None else self._clock()
        capped = self._capped
        if self._thread is not None and self._thread.is_alive():
            capped = f"a write was still hanging after {join_timeout:.0f}s"
        self._result = figures(self.target.name, self.attempts(), end - self._started, capped)
        return self._result

    def verify(self) -> Figures:
        """Stop if needed, read back every acknowledged write, and record the lost ones."""
        result = self.stop()
        if result.verified is None:
            present = self._read_back()
            result = verify(result, self.acknowledged(), present)
            result = replace(result, acknowledged=len(self.acknowledged()))
            self._result = result
        return result

    def _read_back(self, seconds: float = READ_BACK_SECONDS, pause: float = 2.0) -> set[int]:
        """The target's read-back, tried again for up to ``seconds`` while it cannot connect:
        a member restarting once more after a recovery may drop the first connection, and that
        says nothing about the writes. Only the read is retried; what it finds is judged."""
        deadline = self._clock() + seconds
        for _ in range(int(seconds / pause)):  # bounded in count as well as in time
            try:
                return self.target.read_back()
            except Exception:  # any client error; the last try's stands
                if self._clock() + pause > deadline:
                    raise
                time.sleep(pause)
        return self.target.read_back()

    def close(self) -> None:
        """Stop and release the target's connections."""
        self.stop()
        self.target.close()
