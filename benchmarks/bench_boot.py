"""Server boot figures, measured N times: median and maximum of each.

Usage (as root, on a lab that is up with its OpenStack tier; the lab is left as it was):

    .venv/bin/oaas-lab up
    .venv/bin/python benchmarks/bench_boot.py --runs 3 [--network]

Each run asks nova for a server from the lab's guest image through the same library the
scenarios use and times: the request until ACTIVE, until the serial console shows the guest's
first output, until the guest reached userspace (its marker), and (``--network``: on the lab's
provider network) until it answers ping from the ``haproxy-0`` pod; then deletes it and times
that. Servers are created one after the other, each deleted before the next.
"""

from __future__ import annotations

import argparse
import statistics
import time

from oaas_lab import config as config_mod
from oaas_lab.backends import get_lab
from oaas_lab.openstack.guest import MARKER
from oaas_lab.probes.cloud import Cloud
from oaas_lab.secrets import SecretStore

TIMEOUT = 300.0
PING_FROM = "haproxy-0"


def one_run(cloud: Cloud, index: int, network: bool) -> dict[str, float]:
    """Boot, observe and delete one server; the seconds of each milestone."""
    name = f"oaas-bench-{index}"
    server = cloud.boot_on_network(name) if network else cloud.boot(name)
    figures: dict[str, float] = {}
    cloud.await_status(server.id, "ACTIVE", TIMEOUT)
    figures["ACTIVE after s"] = cloud.since_asked(server.id)
    cloud.await_output(server.id, TIMEOUT)
    figures["first guest output after s"] = cloud.since_asked(server.id)
    cloud.await_console(server.id, MARKER, TIMEOUT)
    figures["guest userspace after s"] = cloud.since_asked(server.id)
    if network:
        address = cloud.guest_address()
        cloud.from_pod(PING_FROM, ["ping", "-c", "1", "-W", "2", address], TIMEOUT,
                       f"ping {address}")
        figures["first ping reply after s"] = cloud.since_asked(server.id)
    figures["deleted in s"] = cloud.delete(server.id)
    return figures


def main() -> None:
    """Run the benchmark and print median / max of every figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, choices=range(1, 11), metavar="1..10")
    parser.add_argument("--network", action="store_true",
                        help="boot on the lab's provider network and time the first ping too")
    args = parser.parse_args()
    cfg = config_mod.load()
    lab = get_lab(cfg)
    cloud = Cloud(lab, SecretStore(cfg.lab_dir))
    runs: list[dict[str, float]] = []
    started = time.monotonic()
    try:
        for index in range(args.runs):
            runs.append(one_run(cloud, index, args.network))
            print(f"run {index + 1}: " + ", ".join(f"{k} {v:.1f}" for k, v in runs[-1].items()))
    finally:
        cloud.close()
    print(f"\n{args.runs} run(s) in {time.monotonic() - started:.0f} s (median / max):")
    for key in runs[0]:
        values = [run[key] for run in runs]
        print(f"  {key:<28} {statistics.median(values):6.1f} / {max(values):6.1f}")


if __name__ == "__main__":
    main()
