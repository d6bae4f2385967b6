"""``oaas-lab soak``: random faults on a running lab while clients write; a lost write stops it.

The plan comes from the seed alone (printed first, so any run can be replayed); each cycle is
printed as it starts and with its figures when it ends; ``<reports-dir>/soak-<seed>.json``
holds every cycle, and for the cycle that stopped the soak, the evidence (membership checks
and log tails, secrets masked).
"""

from __future__ import annotations

import json
import os
import secrets as random_source
import time
from pathlib import Path

import click

from oaas_lab.backends import get_lab
from oaas_lab.cli.context import CliContext, pass_ctx
from oaas_lab.errors import LabError, UserError
from oaas_lab.kernel import lock
from oaas_lab.probes import soak
from oaas_lab.reports import evidence
from oaas_lab.reports.model import scrub
from oaas_lab.secrets import SecretStore

DEFAULT_COMPONENTS = "galera,etcd,rabbitmq"


def summary(outcome: soak.Outcome, soaked: list[str]) -> str:
    """One line per cycle: each component's longest write gap, failed and lost writes."""
    parts = []
    for name in soaked:
        gap = outcome.figures.get(f"{name} longest_gap_s", "?")
        failed = outcome.figures.get(f"{name} failed", "?")
        lost = outcome.figures.get(f"{name} lost", "?")
        healed = outcome.figures.get(f"{name} full membership after s", "?")
        parts.append(f"{name}: gap {gap}s, {failed} failed, {lost} lost, whole after {healed}s")
    return "; ".join(parts)


def write_report(path: Path, data: dict[str, object], masked: list[str]) -> None:
    """The soak's JSON report, with every secret value masked, readable by root only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = scrub(json.dumps(data, indent=2, sort_keys=True, default=str), masked)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")


@click.command("soak")
@click.option("--cycles", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="How many faults, one after another.")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=None,
              help="Seed of the plan (default: a new one, printed so the run can be replayed).")
@click.option("--components", "names", default=DEFAULT_COMPONENTS, show_default=True,
              help="Comma-separated quorum components to break and write to.")
@click.option("--duration", type=click.FloatRange(2.0, 300.0), default=15.0, show_default=True,
              help="Longest time a fault is held, seconds (each is held 2 s up to this).")
@click.option("--reports-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("reports"), show_default=True, help="Where soak-SEED.json goes.")
@pass_ctx
def soak_cmd(  # noqa: PLR0917 -- click passes every option positionally
    ctx: CliContext, cycles: int, seed: int | None, names: str, duration: float,
    reports_dir: Path,
) -> None:
    """Inject random faults into the running lab while clients write (see module docstring)."""
    cfg = ctx.config
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if not wanted:
        raise UserError("--components: no component given", hint=f"e.g. {DEFAULT_COMPONENTS}")
    lab = get_lab(cfg)
    store = SecretStore(cfg.lab_dir)
    # Only which of the wanted components have members: every readiness check (what
    # `status` runs) is the first cycle's business.
    running = [name for name in wanted if lab.members(name)]
    if not running:
        raise UserError(f"lab {cfg.name!r} is not up", hint="run: oaas-lab up")
    soaked = soak.check_components(wanted, running)
    seed = random_source.randbelow(2**31) if seed is None else seed
    steps = soak.plan(seed, cycles, soaked, duration)
    report_path = reports_dir / f"soak-{seed}.json"
    replay = (f"oaas-lab soak --seed {seed} --cycles {cycles} --components {','.join(soaked)} "
              f"--duration {duration:g}")
    ctx.console.print(f"soak of lab {cfg.name!r}: {cycles} cycles on {', '.join(soaked)}, "
                      f"seed {seed} (replay: {replay})", markup=False, soft_wrap=True)
    outcomes: list[soak.Outcome] = []
    started = time.monotonic()
    data: dict[str, object] = {"lab": cfg.name, "backend": cfg.lab, "release": cfg.release,
                               "seed": seed, "replay": replay, "components": soaked}
    with lock.changing(cfg.lab_dir, cfg.name, "soak"):
        for step in steps:
            ctx.console.print(f"{step.describe()} ...", markup=False, soft_wrap=True)
            outcome = soak.run_cycle(lab, store, step, soaked)
            outcomes.append(outcome)
            ctx.console.print(f"  {'ok' if outcome.ok else 'FAILED'}: "
                              f"{summary(outcome, soaked)}", markup=False, soft_wrap=True)
            if not outcome.ok:
                data["evidence"] = evidence.collect(lab, store, soaked)
                break
    data["seconds"] = round(time.monotonic() - started, 1)
    data["cycles"] = [{"cycle": o.step.cycle, "component": o.step.component,
                       "fault": o.step.kind, "held_s": o.step.seconds, "ok": o.ok,
                       "problem": o.problem, "healed": o.healed, "figures": o.figures}
                      for o in outcomes]
    write_report(report_path, data, store.values() if store.path.exists() else [])
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise LabError(f"soak stopped at cycle {failed[0].step.cycle} "
                       f"({failed[0].step.kind} {failed[0].step.component}): "
                       f"{failed[0].problem}",
                       hint=f"evidence in {report_path}; replay: {replay}")
    ctx.console.print(f"soak passed: {len(outcomes)} cycles in {data['seconds']}s, no write "
                      f"lost; report: {report_path}", markup=False, soft_wrap=True)


def register(cli: click.Group) -> None:
    """Add this module's commands to the CLI."""
    cli.add_command(soak_cmd)
