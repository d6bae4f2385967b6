"""Failover figures, measured N times: median and maximum of each.

Usage (as root; brings a lab up unless it is up, tears it down unless --keep-lab):

    OAAS_LAB_NAME=bench OAAS_LAB_LOCAL__SUBNET=172.31.91.0/24 \\
        .venv/bin/python benchmarks/bench_failover.py --runs 3

Each case starts a probe, injects one fault through the library the scenarios use, waits for
writes to resume and for full membership, then reads every acknowledged write back.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

from oaas_lab import config as config_mod
from oaas_lab.backends import get_lab
from oaas_lab.components.etcd import leader as etcd_leader
from oaas_lab.components.galera import active_writer
from oaas_lab.components.haproxy import front_holder
from oaas_lab.kernel.lab import Lab
from oaas_lab.probes import Faults, Measurements
from oaas_lab.secrets import SecretStore

Inject = Callable[[Lab, SecretStore, Faults], list[str]]

def cut_off(component: str, hold: float) -> Inject:
    """Cut the last member off from the others and hold the partition for ``hold`` seconds
    (longer than the component's own failure detection); healed after."""
    def inject(_lab: Lab, _store: SecretStore, faults: Faults) -> list[str]:
        pods = faults.isolate(component, 1)
        time.sleep(hold)
        return pods
    return inject


CASES: dict[str, tuple[str, Inject]] = {
    "galera writer killed": (
        "galera", lambda lab, store, f: f.kill_pods([active_writer(lab, store)])),
    "galera member lost until writes resume": (
        "galera", lambda lab, store, f: f.lose("galera", 1)),
    "etcd leader killed": ("etcd", lambda lab, store, f: f.kill_pods([etcd_leader(lab, store)])),
    "rabbitmq member killed": ("rabbitmq", lambda lab, store, f: f.kill("rabbitmq", 1)),
    "haproxy member holding the front address lost (galera writes)": (
        "galera", lambda lab, store, f: f.lose_pods([front_holder(lab)])),
    "galera member cut off for 15 s": ("galera", cut_off("galera", 15.0)),
    "etcd member cut off for 15 s": ("etcd", cut_off("etcd", 15.0)),
    # Longer than RabbitMQ's net_ticktime (components/rabbitmq.py), so the cluster notices.
    "rabbitmq member cut off for 40 s": ("rabbitmq", cut_off("rabbitmq", 40.0)),
}
FIGURES = ("longest_gap_s", "failed", "acknowledged", "lost", "writes resumed after s",
           "full membership after s")


def one_run(lab: Lab, store: SecretStore, component: str, inject: Inject,
            interval: float) -> dict[str, float]:
    """One measured fault; returns the figures of this run."""
    measured = Measurements(lab, store, interval=interval)
    faults = Faults(lab)
    try:
        ready = measured.full_membership(component, timeout=300, since_fault=0.0)
        if not ready.ok:
            raise SystemExit(f"{component} is not healthy before the fault: {ready}")
        measured.start(component)
        baseline = measured.writes_resume(component, timeout=30)
        if not baseline.ok:
            raise SystemExit(f"{component} takes no writes before the fault: {baseline}")
        inject(lab, store, faults)
        # Writes must resume while a lost member is still down (or cut off); then it comes
        # back (or the partition heals).
        measured.writes_resume(component, timeout=120)
        faults.start_stopped()
        faults.heal()
        full = measured.full_membership(component, timeout=300, since_fault=faults.since_last())
        result = measured.verify(component)
    finally:
        measured.close()
        faults.restore()
    figures = {k.removeprefix(f"{component} "): v for k, v in measured.figures.items()}
    figures["full membership after s"] = figures.get("full membership after s", float("nan"))
    if not full.ok:
        print(f"  warning: {full}", file=sys.stderr)
    figures["lost"] = len(result.lost)
    return {k: float(v) for k, v in figures.items() if isinstance(v, int | float)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per case (default 3)")
    parser.add_argument("--case", action="append", choices=sorted(CASES),
                        help="only this case (repeatable)")
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab up")
    parser.add_argument("--interval", type=float, default=0.02,
                        help="seconds between probe writes (default 0.02: a gap is known "
                             "to 20 ms)")
    args = parser.parse_args()
    cfg = config_mod.load()
    lab = get_lab(cfg)
    started = time.monotonic()
    lab.up()
    print(f"lab {cfg.name!r} up in {time.monotonic() - started:.0f}s", flush=True)
    store = SecretStore(cfg.lab_dir)
    table: dict[str, list[dict[str, float]]] = {}
    try:
        for case in args.case or list(CASES):
            component, inject = CASES[case]
            for run in range(1, args.runs + 1):
                figures = one_run(lab, store, component, inject, args.interval)
                table.setdefault(case, []).append(figures)
                shown = ", ".join(f"{k} {figures.get(k, float('nan')):g}" for k in FIGURES)
                print(f"{case} #{run}: {shown}", flush=True)
    finally:
        if not args.keep_lab:
            lab.down()
    print()
    print(f"| case (n={args.runs}) | " + " | ".join(FIGURES) + " |")
    print("|---|" + "---|" * len(FIGURES))
    for case, runs in table.items():
        cells = []
        for key in FIGURES:
            values = [r[key] for r in runs if key in r]
            cells.append(
                f"{statistics.median(values):g} / {max(values):g}" if values else "-"
            )
        print(f"| {case} | " + " | ".join(cells) + " |")
    print("\ncells: median / maximum")
    print(f"total {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
