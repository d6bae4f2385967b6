"""Cold ``up`` of the whole local lab (infrastructure + OpenStack), against its critical path.

Prints the wall-clock time of ``up``, each component's own ready time, the critical path of the
dependency graph weighted by those times (the lower bound with perfect parallelism), and the
lab's resident memory (the sum over its supervisord and every process in its namespaces). The
lab is taken down afterwards, also when ``up`` fails.

    sudo .venv/bin/python benchmarks/bench_up.py [--infra-only] [--caches cold|warm|both]
                                                 [--name bench] [--subnet 172.31.94.0/24]

With ``--caches both`` (the default) it runs twice in one fresh state directory: first with
nothing cached, then with the guest image and the migrated schemas the first run cached.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from oaas_lab import components, config
from oaas_lab.adapters import iproute
from oaas_lab.backends.local.lab import LocalLab
from oaas_lab.backends.local.orchestrator import lab_components


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def lab_pids(lab: LocalLab) -> set[int]:
    """The lab's supervisord and every process inside its namespaces."""
    pids: set[int] = set()
    supervisord = lab.supervisor.pid()
    if supervisord:
        pids.add(supervisord)
    for pod in lab.status():
        for member in pod.pods:
            pids.update(iproute.netns_pids(lab.naming.netns(member.name)))
    return pids


def one_up(cfg: config.LabConfig) -> tuple[float, dict[str, float], int, int, float]:
    """``up`` then ``down`` once: (wall s, ready s per component, RSS KiB, processes, down s)."""
    lab = LocalLab(cfg)
    try:
        started = time.monotonic()
        report = lab.up(progress=lambda c, m, e: print(f"  {e:6.1f}s {c}: {m}"))
        wall = time.monotonic() - started
        pids = lab_pids(lab)
        rss = sum(rss_kib(pid) for pid in pids)
    finally:
        down_started = time.monotonic()
        lab.down()
        down = time.monotonic() - down_started
    return wall, dict(report.ready_seconds), rss, len(pids), down


def main() -> None:
    """Run the benchmark and print the figures of each run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="bench")
    parser.add_argument("--subnet", default="172.31.94.0/24")
    parser.add_argument("--infra-only", action="store_true",
                        help="the infrastructure tier only (no OpenStack services)")
    parser.add_argument("--caches", choices=("cold", "warm", "both"), default="both",
                        help="cold: a fresh state directory (nothing cached); warm: a second "
                             "up in it (guest image and migrated schemas cached); both")
    args = parser.parse_args()
    tiers = "infra tier" if args.infra_only else "infra + OpenStack"
    with tempfile.TemporaryDirectory(prefix="oaas-bench-") as state_dir:
        cfg = config.load(overrides={"name": args.name, "local.subnet": args.subnet,
                                     "local.openstack": not args.infra_only,
                                     "state_dir": state_dir})
        runs = {"cold": ["cold"], "warm": ["cold", "warm"], "both": ["cold", "warm"]}
        results = []
        for caches in runs[args.caches]:
            print(f"up with {caches} caches:")
            results.append((caches, one_up(cfg)))
    if args.caches == "warm":
        results = results[1:]  # the cold run only filled the caches
    for caches, (wall, ready, rss, processes, down) in results:
        path_seconds, path = components.critical_path(lab_components(cfg), ready)
        print()
        print(f"cold up ({tiers}), {caches} caches: {wall:6.1f} s")
        for name, seconds in sorted(ready.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<16} ready in {seconds:6.1f} s")
        print(f"critical path:        {path_seconds:6.1f} s  ({' -> '.join(path)})")
        print(f"up / critical path:   {wall / path_seconds:6.2f}")
        print(f"lab RSS:              {rss / 1024 / 1024:6.2f} GiB over {processes} processes")
        print(f"down:                 {down:6.1f} s")


if __name__ == "__main__":
    main()
