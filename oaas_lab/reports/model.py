"""What a report records about each scenario; plain data, filled by the pytest plugin."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from oaas_lab.secrets import MASK


@dataclass(frozen=True)
class StepRecord:
    """One Gherkin step as it ran."""

    keyword: str
    name: str
    failed: bool
    duration: float


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp")


@dataclass(frozen=True)
class Attachment:
    """A file a scenario attached (a screenshot ...), copied next to the report page."""

    caption: str
    path: str
    """Relative to the reports directory (``attachments/...``); empty when it was not copied."""
    note: str = ""
    """Why it was not copied (the file was missing ...)."""

    @property
    def is_image(self) -> bool:
        """Shown inline on the page, not as a link."""
        return self.path.lower().endswith(IMAGE_SUFFIXES)


@dataclass
class ScenarioRecord:
    """One scenario (one pytest item): outcome, time, figures and, when it failed, evidence."""

    nodeid: str
    name: str
    feature: str = ""
    tags: tuple[str, ...] = ()
    outcome: str = "passed"
    duration: float = 0.0
    steps: list[StepRecord] = field(default_factory=list)
    figures: dict[str, object] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)
    failure: str = ""

    @property
    def failed_step(self) -> str:
        """The first failed step, as written in the feature file."""
        for step in self.steps:
            if step.failed:
                return f"{step.keyword} {step.name}"
        return ""


@dataclass
class RunRecord:
    """A whole suite run."""

    title: str
    lab: str
    release: str
    started: str
    wall_seconds: float = 0.0
    scenarios: list[ScenarioRecord] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """How many scenarios passed, failed, were skipped."""
        out: dict[str, int] = {}
        for record in self.scenarios:
            out[record.outcome] = out.get(record.outcome, 0) + 1
        return out


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by the mask (longest first, so a secret that
    contains another is masked whole)."""
    for value in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text
