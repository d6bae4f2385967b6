"""Reports: figures and failure evidence reach the HTML page; secrets never do."""

from __future__ import annotations

from pathlib import Path

import pytest

from oaas_lab.cli.main import main
from oaas_lab.cli.qualify_cmds import pytest_args
from oaas_lab.kernel.command import CommandResult
from oaas_lab.kernel.lab import Pod
from oaas_lab.reports import evidence
from oaas_lab.reports.html import render
from oaas_lab.reports.model import Attachment, RunRecord, ScenarioRecord, StepRecord, scrub
from oaas_lab.reports.plugin import ATTACHMENT_PREFIX, EVIDENCE_PREFIX, ReportsPlugin
from oaas_lab.secrets import SecretStore

pytest_plugins = ["pytester"]

SECRET = "s3cr3t-Value_xyz"


def run_with(records: list[ScenarioRecord]) -> RunRecord:
    return RunRecord(title="t", lab="local (acc)", release="2026.2", started="now",
                     scenarios=records)


def test_scrub_masks_longest_first():
    assert scrub(f"pw={SECRET} short=abcd", [SECRET, "abcd", "ab"]) == "pw=****** short=******"


def test_page_shows_outcome_figures_and_evidence_of_a_failed_step():
    failed = ScenarioRecord(
        nodeid="features/test_failover.py::test_x", name="Losing the writer",
        tags=("failover",), outcome="failed", duration=42.0,
        steps=[StepRecord("Given", "a client writes to galera continuously", False, 0.1),
               StepRecord("Then", "the longest write gap of galera is at most 20 seconds",
                          True, 0.2)],
        figures={"galera longest_gap_s": 31.5, "galera lost": 0},
        evidence={"galera-0 log": f"password {SECRET} <script>"},
        failure="AssertionError: galera: longest gap 31.5s",
    )
    page = render(run_with([failed, ScenarioRecord(nodeid="n2", name="Quorum")]), [SECRET])
    assert "Losing the writer" in page
    assert "galera longest_gap_s: 31.5" in page
    assert 'Failure at "Then the longest write gap of galera is at most 20 seconds"' in page
    assert "Evidence taken when the step failed" in page
    assert SECRET not in page
    assert "&lt;script&gt;" in page
    assert "1 failed" in page
    assert "1 passed" in page


PROBE_TEST = f'''
import pytest

@pytest.fixture
def measured(request):
    yield
    request.node.user_properties.append(("galera longest_gap_s", 3.25))

def test_passes(measured):
    pass

def test_fails(request):
    request.node.user_properties.append(("{EVIDENCE_PREFIX}etcd status", "leader {SECRET}"))
    assert 1 == 2, "the write gap was 99 seconds"
'''


def test_plugin_writes_all_three_reports(pytester: pytest.Pytester, tmp_path: Path):
    pytester.makepyfile(test_probe=PROBE_TEST)
    reports = tmp_path / "reports"
    plugin = ReportsPlugin(reports, lab="local", release="2026.2", secrets=lambda: [SECRET])

    class Point:
        @pytest.hookimpl(tryfirst=True)
        def pytest_configure(self, config: pytest.Config) -> None:
            ReportsPlugin.point_builtin_reports(config, reports)

    result = pytester.runpytest_inprocess(plugins=[Point(), plugin])
    result.assert_outcomes(passed=1, failed=1)
    page = (reports / "index.html").read_text()
    junit = (reports / "junit.xml").read_text()
    assert (reports / "cucumber.json").exists()
    assert "galera longest_gap_s: 3.25" in page
    assert "the write gap was 99 seconds" in page
    assert "etcd status" in page
    assert SECRET not in page
    assert 'name="galera longest_gap_s" value="3.25"' in junit
    outcomes = {s.name: s.outcome for s in plugin.run.scenarios}
    assert outcomes == {"test_passes": "passed", "test_fails": "failed"}


def test_page_shows_images_inline_other_files_as_links_and_missing_ones_as_notes():
    record = ScenarioRecord(
        nodeid="n", name="Dashboard", attachments=[
            Attachment("instances page <after boot>", "attachments/001-instances.png"),
            Attachment("console log", "attachments/002-console.txt"),
            Attachment("lost", "", note="/tmp/gone.png was not copied: No such file"),
        ],
    )
    page = render(run_with([record]))
    assert ('<img src="attachments/001-instances.png" '
            'alt="instances page &lt;after boot&gt;">') in page
    assert "<figcaption>instances page &lt;after boot&gt;</figcaption>" in page
    assert '<a href="attachments/002-console.txt">attachments/002-console.txt</a>' in page
    assert "<img src=\"attachments/002-console.txt\"" not in page
    assert "/tmp/gone.png was not copied: No such file" in page


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8

ATTACHING_TEST = f'''
import pytest

from oaas_lab.reports.plugin import attachment

PNG = {PNG!r}


@pytest.fixture
def shot(request, tmp_path_factory):
    # One path for every test, rewritten each time: each scenario keeps its own copy.
    path = tmp_path_factory.getbasetemp() / "login page.png"
    path.write_bytes(PNG if request.node.name == "test_passes" else PNG[:-1])
    # Attached in setup: the call and teardown reports repeat it; it must appear once.
    request.node.user_properties.append(attachment("login page", path))
    return path.parent


def test_passes(shot):
    pass


def test_fails(shot, request):
    other = shot / "instances.png"
    other.write_bytes(PNG[::-1])
    request.node.user_properties.append(attachment("instances for {SECRET}", other))
    request.node.user_properties.append(("{ATTACHMENT_PREFIX}gone", str(shot / "nope.png")))
    assert False, "the server is not listed"
'''


def test_plugin_copies_attachments_and_shows_them_for_passed_and_failed(
    pytester: pytest.Pytester, tmp_path: Path
):
    pytester.makepyfile(test_shots=ATTACHING_TEST)
    reports = tmp_path / "reports"
    plugin = ReportsPlugin(reports, lab="local", release="2026.2", secrets=lambda: [SECRET])
    result = pytester.runpytest_inprocess(plugins=[plugin])
    result.assert_outcomes(passed=1, failed=1)
    shots = {s.name: s.attachments for s in plugin.run.scenarios}
    (passed_shot,) = shots["test_passes"]
    login, instances, gone = shots["test_fails"]
    assert passed_shot.caption == login.caption == "login page"
    assert passed_shot.path != login.path  # one copy per scenario, never overwritten
    assert (reports / passed_shot.path).read_bytes() == PNG
    assert (reports / login.path).read_bytes() == PNG[:-1]
    assert (reports / instances.path).read_bytes() == PNG[::-1]
    assert passed_shot.path.startswith("attachments/")
    assert " " not in passed_shot.path
    assert gone.path == ""
    assert "nope.png was not copied" in gone.note
    page = (reports / "index.html").read_text()
    assert page.count("<img ") == 3
    assert f'<img src="{passed_shot.path}"' in page
    assert "<figcaption>instances for ******</figcaption>" in page
    assert SECRET not in page


def test_qualify_passes_the_lab_options_to_pytest(tmp_path: Path):
    args = pytest_args(tmp_path / "features", lab="local", name="acc", release="2026.2",
                       config_path="lab.yaml", reports_dir=tmp_path, keep_lab=True,
                       marker="quorum and not slow", extra=("-x",))
    assert args[0] == str(tmp_path / "features")
    for pair in (["--lab", "local"], ["--lab-name", "acc"], ["--release", "2026.2"],
                 ["--lab-config", "lab.yaml"], ["-m", "quorum and not slow"]):
        i = args.index(pair[0])
        assert args[i:i + 2] == pair
    assert "--keep-lab" in args
    assert args[-1] == "-x"


def test_qualify_unknown_release_is_a_one_line_error(capsys: pytest.CaptureFixture[str]):
    assert main(["qualify", "--release", "1999.9"]) == 2
    err = capsys.readouterr().err
    assert "unknown release '1999.9'" in err
    assert "Traceback" not in err


FEATURE = """Feature: Probe reports
  @quorum
  Scenario: A measured scenario
    Given a measured step
    Then it fails with evidence
"""

STEPS = f'''
from pytest_bdd import given, scenarios, then

scenarios("probe.feature")

@given("a measured step")
def measured(request):
    request.node.user_properties.append(("etcd longest_gap_s", 1.5))

@then("it fails with evidence")
def fails(request):
    request.node.user_properties.append(("{EVIDENCE_PREFIX}galera-0 log", "pw {SECRET}"))
    assert False, "quorum lost"
'''


def test_plugin_reads_gherkin_names_tags_and_steps(pytester: pytest.Pytester, tmp_path: Path):
    pytester.makefile(".feature", probe=FEATURE)
    pytester.makepyfile(test_probe=STEPS)
    pytester.makeini("[pytest]\nmarkers =\n    quorum: q\n")
    plugin = ReportsPlugin(tmp_path, lab="local", release="2026.2", secrets=lambda: [SECRET])
    result = pytester.runpytest_inprocess(plugins=[plugin])
    result.assert_outcomes(failed=1)
    (record,) = plugin.run.scenarios
    assert record.name == "A measured scenario"
    assert record.tags == ("quorum",)
    assert record.failed_step == "Then it fails with evidence"
    page = (tmp_path / "index.html").read_text()
    assert "A measured scenario" in page
    assert "@quorum" in page
    assert "etcd longest_gap_s: 1.5" in page
    assert SECRET not in page


class LogLab:
    """A lab at the seam: members, exec and logs only; every output leaks ``secret``."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def members(self, component: str) -> list[Pod]:
        return [Pod(name=f"{component}-0", component=component, ordinal=0, node="controller-1",
                    ip="10.0.0.10")]

    def exec(self, pod: str, argv: list[str], timeout: float = 30.0) -> CommandResult:
        return CommandResult(tuple(argv), 69, "", f"rabbitmqctl: cookie {self.secret} rejected")

    def logs(self, pod: str, lines: int = 50) -> str:
        return f"starting with password={self.secret}\nready"

    def log_path(self, pod: str) -> str:
        return f"/logs/{pod}.log"


def test_evidence_is_scrubbed_of_secrets(tmp_path: Path):
    store = SecretStore(tmp_path)
    secret = store.get("rabbitmq_cookie", kind="erlang_cookie").reveal()
    found = evidence.collect(LogLab(secret), store, ["rabbitmq"])  # type: ignore[arg-type]
    text = "\n".join(found.values())
    assert "rabbitmq-0 log (running, /logs/rabbitmq-0.log)" in found
    assert "rabbitmqctl exited 69" in found["rabbitmq status"]
    assert secret not in text
    assert "cookie ****** rejected" in text
