"""Checks return results; they never assert and never print.

The CLI prints a list of ``CheckResult`` as a table, the BDD steps assert on ``ok`` and show
``detail``/``hint`` when it is false, so an operator reads the same words in both places.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    ``detail`` says what was seen, ``hint`` what to do or read when ``ok`` is false, and
    ``evidence`` holds the raw observations (status variables, member lists) for reports.
    """

    name: str
    ok: bool
    detail: str
    hint: str = ""
    evidence: Mapping[str, object] = field(default_factory=dict)

    def __str__(self) -> str:
        mark = "ok" if self.ok else "FAILED"
        text = f"{self.name}: {mark}: {self.detail}"
        return f"{text} ({self.hint})" if self.hint and not self.ok else text


def passed(name: str, detail: str, **evidence: object) -> CheckResult:
    """A successful result."""
    return CheckResult(name=name, ok=True, detail=detail, evidence=evidence)


def failed(name: str, detail: str, hint: str = "", **evidence: object) -> CheckResult:
    """A failed result, with what to do about it."""
    return CheckResult(name=name, ok=False, detail=detail, hint=hint, evidence=evidence)


def all_ok(results: Iterable[CheckResult]) -> bool:
    """True when every result passed."""
    return all(r.ok for r in results)


def summary(results: Iterable[CheckResult]) -> str:
    """The failed results on one line each, for an assertion message."""
    return "\n".join(str(r) for r in results if not r.ok)
