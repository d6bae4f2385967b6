"""The pytest plugin that writes a run's reports.

Registered by ``features/conftest.py`` (and so by ``oaas-lab qualify``): it points pytest's
JUnit XML and pytest-bdd's Cucumber JSON at the reports directory, collects per scenario the
outcome, the duration, the figures the scenario recorded (``user_properties``), the files it
attached (copied to ``attachments/``) and the evidence taken when a step failed, and writes
``index.html`` when the session ends.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from oaas_lab.reports.html import render
from oaas_lab.reports.model import Attachment, RunRecord, ScenarioRecord, StepRecord, scrub

EVIDENCE_PREFIX = "evidence: "
"""``user_properties`` whose name starts with this are evidence, not figures."""

ATTACHMENT_PREFIX = "attachment: "
"""``user_properties`` named with this and a caption carry a file path to show on the page."""

ATTACHMENTS = "attachments"

JUNIT = "junit.xml"
CUCUMBER = "cucumber.json"
HTML = "index.html"


def attachment(caption: str, path: Path) -> tuple[str, str]:
    """The ``user_properties`` entry that attaches the file at ``path`` to the scenario.

    A step calls ``request.node.user_properties.append(attachment("dashboard", png))``; the
    file is copied into the reports directory when the step's phase reports, so it may be a
    temporary file.
    """
    return f"{ATTACHMENT_PREFIX}{caption}", str(path)


def scenario_of(report: pytest.TestReport) -> dict[str, Any] | None:
    """The Gherkin scenario (name, tags, steps) pytest-bdd recorded for a report, if any."""
    try:  # pytest-bdd >= 8 keeps it in a registry; older versions set ``report.scenario``
        from pytest_bdd.reporting import test_report_context_registry
    except ImportError:
        found: dict[str, Any] | None = getattr(report, "scenario", None)
        return found
    context = test_report_context_registry.get(report)
    return dict(context.scenario) if context is not None else None


class ReportsPlugin:
    """Collects scenario records during a run and writes the HTML page at its end."""

    def __init__(
        self, directory: Path, *, lab: str, release: str,
        secrets: Callable[[], Iterable[str]] = tuple,
        title: str = "oaas-lab acceptance run",
        only_under: str = "",
    ) -> None:
        self.directory = directory
        # The page is about scenarios: when unit tests run in the same session, they stay in
        # the JUnit file only.
        self.only_under = only_under
        self._secrets = secrets
        self._started = time.monotonic()
        self.run = RunRecord(
            title=title, lab=lab, release=release,
            started=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        )
        self._by_id: dict[str, ScenarioRecord] = {}
        self._attached: set[tuple[str, str, str]] = set()

    @staticmethod
    def point_builtin_reports(config: pytest.Config, directory: Path) -> None:
        """Send JUnit XML and Cucumber JSON to ``directory`` unless a path was given."""
        directory.mkdir(parents=True, exist_ok=True)
        if not getattr(config.option, "xmlpath", None):
            config.option.xmlpath = str(directory / JUNIT)
        if not getattr(config.option, "cucumber_json_path", None):
            config.option.cucumber_json_path = str(directory / CUCUMBER)

    def _record(self, report: pytest.TestReport) -> ScenarioRecord:
        record = self._by_id.get(report.nodeid)
        if record is None:
            record = ScenarioRecord(nodeid=report.nodeid, name=report.nodeid.split("::")[-1])
            self._by_id[report.nodeid] = record
            self.run.scenarios.append(record)
        return record

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Merge the setup, call and teardown reports of each item into one record."""
        if self.only_under and not report.nodeid.startswith(self.only_under):
            return
        record = self._record(report)
        record.duration += report.duration
        scenario = scenario_of(report)
        if scenario:
            record.name = str(scenario.get("name", record.name))
            record.feature = str(scenario.get("feature", {}).get("name", ""))
            record.tags = tuple(scenario.get("tags", ()))
            record.steps = [
                StepRecord(str(s["keyword"]), str(s["name"]), bool(s["failed"]),
                           float(s["duration"]))
                for s in scenario.get("steps", [])
            ]
        for name, value in report.user_properties:
            if name.startswith(EVIDENCE_PREFIX):
                record.evidence[name.removeprefix(EVIDENCE_PREFIX)] = str(value)
            elif name.startswith(ATTACHMENT_PREFIX):
                self._attach(record, name.removeprefix(ATTACHMENT_PREFIX), Path(str(value)))
            else:
                record.figures[name] = value
        if report.failed:
            record.outcome = "failed" if report.when == "call" else "error"
            text = report.longreprtext
            record.failure = (record.failure + "\n" + text).strip() if record.failure else text
        elif report.skipped and record.outcome == "passed":
            record.outcome = "skipped"
            record.failure = report.longreprtext

    def _attach(self, record: ScenarioRecord, caption: str, source: Path) -> None:
        # Each phase's report repeats the item's properties: copy each file once per scenario
        # (a later scenario may attach a new picture under the same path).
        key = (record.nodeid, caption, str(source))
        if key in self._attached:
            return
        self._attached.add(key)
        number = len(self._attached)
        safe = re.sub(r"[^A-Za-z0-9._-]+", "-", source.name).strip("-.") or "file"
        relative = f"{ATTACHMENTS}/{number:03d}-{safe}"
        try:
            (self.directory / ATTACHMENTS).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, self.directory / relative)
        except OSError as exc:
            record.attachments.append(
                Attachment(caption, "", note=f"{source} was not copied: {exc.strerror or exc}")
            )
            return
        record.attachments.append(Attachment(caption, relative))

    def write(self) -> Path:
        """Write ``index.html`` (secrets scrubbed) and return its path."""
        secrets = list(self._secrets())
        for record in self.run.scenarios:
            record.failure = scrub(record.failure, secrets)
            record.evidence = {k: scrub(v, secrets) for k, v in record.evidence.items()}
            record.attachments = [
                Attachment(scrub(a.caption, secrets), a.path, scrub(a.note, secrets))
                for a in record.attachments
            ]
        self.run.wall_seconds = time.monotonic() - self._started
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / HTML
        path.write_text(render(self.run, secrets), encoding="utf-8")
        return path

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write the page once every test has reported."""
        self.write()

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Say where the reports are."""
        terminalreporter.write_sep("-", f"reports: {self.directory / HTML}")
