"""What a probe writes to: one service as a client sees it."""

from __future__ import annotations

from typing import Protocol


class Target(Protocol):
    """Something a probe writes to: one service as a client sees it."""

    name: str
    """Short name used in reports, e.g. ``galera-sql-write``."""

    def write(self, seq: int) -> None:
        """Make write number ``seq``; return only once the service acknowledged it.

        Raise any exception when the write failed or its outcome is unknown.
        """
        ...

    def read_back(self) -> set[int]:
        """The sequence numbers of this probe's writes that the service holds now."""
        ...

    def close(self) -> None:
        """Release connections; never raises."""
        ...

