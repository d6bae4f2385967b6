"""``oaas-lab qualify``: run the acceptance suite on a lab and write the reports.

It runs ``pytest`` on the ``features/`` directory in this process, with the lab options taken
from the CLI's configuration, so the reports (JUnit XML, Cucumber JSON, the HTML page) are the
same as those of a plain ``pytest features/`` run.
"""

from __future__ import annotations

from pathlib import Path

import click

from oaas_lab import releases
from oaas_lab.cli.context import CliContext, pass_ctx
from oaas_lab.errors import LabError, UserError

EXIT_TESTS_FAILED = 1


def find_features(start: Path | None = None) -> Path:
    """The ``features/`` directory of the source tree this package runs from, or of the
    current directory."""
    candidates = [Path.cwd() / "features", Path(__file__).resolve().parents[2] / "features"]
    if start is not None:
        candidates.insert(0, start)
    for path in candidates:
        if (path / "conftest.py").is_file():
            return path
    raise UserError(
        "no features/ directory with the acceptance suite found",
        hint="run from the oaas-lab source tree or give --features DIR",
    )


def pytest_args(
    features: Path, *, lab: str, name: str, release: str, config_path: str | None,
    reports_dir: Path,
    keep_lab: bool, marker: str | None, extra: tuple[str, ...],
) -> list[str]:
    """The pytest command line of a qualification run."""
    args = [
        str(features), "-p", "no:cacheprovider", "--rootdir", str(features.parent),
        "--lab", lab, "--lab-name", name, "--release", release,
        "--reports-dir", str(reports_dir),
    ]
    if config_path:
        args += ["--lab-config", config_path]
    if keep_lab:
        args.append("--keep-lab")
    if marker:
        args += ["-m", marker]
    return [*args, *extra]


@click.command("qualify")
@click.option("--reports-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("reports"), show_default=True,
              help="Where junit.xml, cucumber.json and index.html are written.")
@click.option("--keep-lab", is_flag=True, help="Leave the lab up afterwards.")
@click.option("-m", "--marker", metavar="EXPR",
              help="Only scenarios matching this tag expression, e.g. 'quorum and not slow'.")
@click.option("--features", "features_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="The acceptance suite (default: features/ of the source tree).")
@click.option("--release", "release_name", metavar="R", default=None,
              help="OpenStack release to qualify (same as the global --release).")
@click.argument("pytest_extra", nargs=-1, type=click.UNPROCESSED)
@pass_ctx
def qualify(  # noqa: PLR0917 -- click passes every option positionally
    ctx: CliContext, reports_dir: Path, keep_lab: bool, marker: str | None,
    features_dir: Path | None, release_name: str | None, pytest_extra: tuple[str, ...],
) -> None:
    """Run every scenario on the lab for the release (--release) and write the reports.

    Extra arguments after -- go to pytest. Exit code 1 when a scenario failed.
    """
    if release_name is not None:
        ctx.overrides["release"] = release_name
    cfg = ctx.config
    release = releases.get(cfg.release)
    features = find_features(features_dir)
    args = pytest_args(
        features, lab=cfg.lab, name=cfg.name, release=release.name, config_path=ctx.config_path,
        reports_dir=reports_dir.resolve(), keep_lab=keep_lab, marker=marker, extra=pytest_extra,
    )
    import pytest  # the test runner is only needed by this command

    ctx.err.print(f"qualifying release {release.name} on the {cfg.lab} lab {cfg.name!r}")
    code = int(pytest.main(args))
    ctx.console.print(f"reports: {reports_dir / 'index.html'}")
    if code == int(pytest.ExitCode.USAGE_ERROR):
        raise UserError("pytest refused the arguments", hint="see the message above")
    if code not in (int(pytest.ExitCode.OK), int(pytest.ExitCode.TESTS_FAILED)):
        raise LabError(f"the suite did not run to the end (pytest exit code {code})",
                       hint=f"read {reports_dir / 'index.html'} and the output above")
    if code == int(pytest.ExitCode.TESTS_FAILED):
        raise click.exceptions.Exit(EXIT_TESTS_FAILED)


def register(cli: click.Group) -> None:
    """Add this module's commands to the CLI."""
    cli.add_command(qualify)
