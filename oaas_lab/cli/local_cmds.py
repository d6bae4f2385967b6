"""Lab lifecycle commands: ``up``, ``status``, ``logs``, ``scale``, ``down``.

They work on whichever backend the configuration names (``local`` by default); the progress
display and the tables live here, the backends only report through a callback.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table

from oaas_lab import components, releases
from oaas_lab.backends import get_lab
from oaas_lab.cli.context import CliContext, pass_ctx
from oaas_lab.errors import LabError
from oaas_lab.kernel.lab import ComponentStatus, ProgressCallback
from oaas_lab.openstack.clouds import CLOUD_NAME
from oaas_lab.openstack.clouds import FILE_NAME as CLOUDS_FILE
from oaas_lab.reports.model import scrub
from oaas_lab.secrets import SecretStore


class ProgressBoard:
    """A live table with one row per component: its latest message and elapsed time."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, float]] = {}
        self.started = time.monotonic()

    def update(self, component: str, message: str, elapsed: float) -> None:
        self.rows[component] = (message, elapsed)

    def render(self) -> Table:
        table = Table(title=f"oaas-lab  {time.monotonic() - self.started:5.1f}s", expand=False)
        table.add_column("component")
        table.add_column("progress")
        table.add_column("elapsed", justify="right")
        for name, (message, elapsed) in self.rows.items():
            table.add_row(name, message, f"{elapsed:.1f}s")
        return table


@contextmanager
def live_progress(console: Console) -> Iterator[ProgressCallback]:
    """A progress callback drawing a live table on a terminal, plain lines elsewhere.

    Backends call it from worker threads (components of one wave start in parallel), hence
    the lock.
    """
    board = ProgressBoard()
    lock = threading.Lock()
    if not console.is_terminal:
        def plain(component: str, message: str, elapsed: float) -> None:
            with lock:
                board.update(component, message, elapsed)
                console.print(f"[{elapsed:6.1f}s] {component}: {message}")

        yield plain
        return
    with Live(board.render(), console=console, refresh_per_second=4, transient=True) as live:
        def draw(component: str, message: str, elapsed: float) -> None:
            with lock:
                board.update(component, message, elapsed)
                live.update(board.render())

        yield draw


def status_table(rows: list[ComponentStatus], title: str) -> Table:
    """The status table: component, members up/desired, readiness and its reason."""
    table = Table(title=title)
    table.add_column("component")
    table.add_column("members", justify="right")
    table.add_column("pods")
    table.add_column("ready")
    table.add_column("detail")
    for row in rows:
        running = sum(1 for p in row.pods if p.state.value == "running")
        pods = ", ".join(
            p.name if p.state.value == "running" else f"{p.name} ({p.state.value})"
            for p in row.pods
        )
        detail = row.ready.detail if row.ready.ok else f"{row.ready.detail} {row.ready.hint}"
        table.add_row(
            row.component,
            f"{running}/{row.desired}",
            pods,
            "[green]yes[/]" if row.ready.ok else "[red]NO[/]",
            detail.strip(),
        )
    return table


@click.command("up")
@pass_ctx
def up(ctx: CliContext) -> None:
    """Bring the lab up (a second run changes nothing and says so)."""
    cfg = ctx.config
    releases.get(cfg.release)
    for name in components.by_name():
        components.check_replicas(components.by_name()[name], cfg.replicas(name))
    lab = get_lab(cfg)
    with live_progress(ctx.console) as progress:
        report = lab.up(progress=progress)
    if report.changed:
        ctx.console.print(
            f"lab {cfg.name!r} is up in {report.total_seconds:.1f}s "
            f"(started: {', '.join(report.changed)})"
        )
    else:
        ctx.console.print(f"lab {cfg.name!r} is already up and ready: nothing to change")
    rows = lab.status()
    ctx.console.print(status_table(rows, f"lab {cfg.name}"))
    if not all(r.ready.ok for r in rows):
        raise LabError("lab is up but not every component is ready", hint="see the table above")
    clouds_file = cfg.lab_dir / CLOUDS_FILE
    if clouds_file.exists():
        ctx.console.print(f"OpenStack CLI: export OS_CLIENT_CONFIG_FILE={clouds_file}; "
                          f"openstack --os-cloud {CLOUD_NAME} server list",
                          markup=False, highlight=False, soft_wrap=True)


@click.command("status")
@pass_ctx
def status(ctx: CliContext) -> None:
    """Show every component, its members and whether it works (exit 1 if not all ready)."""
    cfg = ctx.config
    rows = get_lab(cfg).status()
    ctx.console.print(status_table(rows, f"lab {cfg.name}"))
    if not rows:
        raise LabError(f"lab {cfg.name!r} is not up", hint="run: oaas-lab up")
    if not all(r.ready.ok for r in rows):
        raise LabError("not every component is ready", hint="see the table above")


@click.command("logs")
@click.argument("pod")
@click.option("-n", "--lines", default=50, show_default=True, type=click.IntRange(1, 100_000),
              help="How many of the last lines to print.")
@pass_ctx
def logs(ctx: CliContext, pod: str, lines: int) -> None:
    """Print the last lines of POD's log (secret values masked) and where the whole log is."""
    lab = get_lab(ctx.config)
    text = lab.logs(pod, lines=lines)
    store = SecretStore(ctx.config.lab_dir)
    # A daemon may print a password it was given; the terminal must not show it.
    secrets = store.values() if store.path.exists() else []
    click.echo(f"==> {lab.log_path(pod)} <==", err=True)
    click.echo(scrub(text, secrets))


@click.command("scale")
@click.argument("component")
@click.argument("replicas", type=int)
@pass_ctx
def scale(ctx: CliContext, component: str, replicas: int) -> None:
    """Change COMPONENT to REPLICAS members (odd counts only for quorum components)."""
    known = components.by_name()
    if component not in known:
        raise click.BadParameter(
            f"unknown component {component!r}; known: {', '.join(sorted(known))}",
            param_hint="COMPONENT",
        )
    components.check_replicas(known[component], replicas)
    lab = get_lab(ctx.config)
    with live_progress(ctx.console) as progress:
        lab.scale(component, replicas, progress=progress)
    ctx.console.print(f"{component} scaled to {replicas}")
    # The scaled component and what depends on it directly (HAProxy follows Galera's members).
    shown = {component} | {c.name for c in known.values() if component in c.depends_on}
    rows = [r for r in lab.status() if r.component in shown]
    ctx.console.print(status_table(rows, f"lab {ctx.config.name}"))


@click.command("down")
@pass_ctx
def down(ctx: CliContext) -> None:
    """Remove everything the lab created: processes, namespaces, bridge, links, mounts."""
    get_lab(ctx.config).down()
    ctx.console.print(f"lab {ctx.config.name!r} is down")


def register(cli: click.Group) -> None:
    """Add this module's commands to the CLI."""
    for command in (up, status, logs, scale, down):
        cli.add_command(command)
