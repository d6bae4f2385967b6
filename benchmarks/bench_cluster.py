"""The embedded Kubernetes cluster: ``cluster up`` time, readiness, memory, idle CPU, ``down``.

Prints the wall-clock time of ``cluster up`` (with the binaries and images the cache holds:
run it twice, or after ``oaas-lab cluster build``, for the warm figure), the nodes and their
roles, the API server's ``/readyz?verbose``, the resident memory of every process the cluster
runs (control plane, containerd, shims, kubelets, kube-proxies, pods), the CPU those processes
use over an idle minute, the time of ``cluster down`` and what it left behind. The cluster is
taken down afterwards, also when ``up`` fails.

    sudo .venv/bin/python benchmarks/bench_cluster.py [--name kbench] [--idle 60]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from oaas_lab import config
from oaas_lab.adapters import iproute
from oaas_lab.cluster import host
from oaas_lab.cluster.lifecycle import EmbeddedCluster

TICKS = os.sysconf("SC_CLK_TCK")


def cluster_pids(cluster: EmbeddedCluster) -> set[int]:
    """Every process of the cluster: its daemons, all in its nodes' namespaces and cgroups."""
    pids = {d.pid for d in cluster.state().daemons if d.alive()}
    for node in cluster.topology.nodes:
        pids.update(iproute.netns_pids(cluster.topology.netns(node)))
        pids.update(host.cgroup_pids(cluster.topology.cgroup(node)))
    return pids


def _status_field(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def cpu_ticks(pids: set[int]) -> int:
    """User + system CPU ticks used so far by ``pids``."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total


def main() -> None:
    """Run the benchmark once and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="kbench")
    parser.add_argument("--idle", type=float, default=60.0,
                        help="seconds to measure the idle cluster's CPU use over")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oaas-kbench-") as state_dir:
        cfg = config.load(overrides={"name": args.name, "state_dir": state_dir})
        started = time.monotonic()
        cluster = EmbeddedCluster(cfg, progress=lambda m: print(
            f"[{time.monotonic() - started:6.1f}s] {m}", flush=True))
        try:
            results = cluster.up()
            up_seconds = time.monotonic() - started
            for result in results:
                print(result)
            readyz = cluster.kube().raw_get("/readyz", [("verbose", "true")])
            print(readyz)
            pids = cluster_pids(cluster)
            rss = sum(_status_field(pid, "VmRSS") for pid in pids)
            before = cpu_ticks(pids)
            time.sleep(args.idle)
            used = (cpu_ticks(cluster_pids(cluster)) - before) / TICKS
            print(f"cluster up: {up_seconds:.1f}s, ready "
                  f"{sum(r.ok for r in results)}/{len(results)} checks")
            print(f"cluster RSS: {rss / 1024 / 1024:.2f} GiB over {len(pids)} processes")
            print(f"idle CPU: {used / args.idle * 100:.1f}% of one core over {args.idle:.0f}s")
        finally:
            down_started = time.monotonic()
            report = cluster.down(purge=True)
            print(f"cluster down: {time.monotonic() - down_started:.1f}s, "
                  f"{report.stopped} processes stopped, left behind: {report.left or 'nothing'}")


if __name__ == "__main__":
    main()
