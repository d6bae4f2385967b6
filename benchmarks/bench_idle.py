"""Idle cost of an up local lab: CPU over a window with nothing running, per process group.

Brings the lab up unless it is up, lets it settle, then samples every process of the lab (its
supervisord and everything under it) once a second for the window. A process's CPU is its own
time plus the time of the children it reaped (health-check scripts, ``ip netns exec`` wrappers),
so short-lived helpers count to whoever ran them. The whole machine's busy time over the same
window is printed beside it. Judged by: the lab's CPU in % of one core (goal <= 10 %).

    sudo OAAS_LAB_NAME=idle OAAS_LAB_LOCAL__SUBNET=172.31.93.0/24 \\
        .venv/bin/python benchmarks/bench_idle.py [--seconds 60] [--settle 30] [--runs N] \\
                                                  [--keep-lab]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import defaultdict
from pathlib import Path

from oaas_lab import config as config_mod
from oaas_lab.backends.local.lab import LocalLab

GOAL_PERCENT = 10.0
TICK = os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` in MiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    return 0.0


def proc_stat(pid: int) -> tuple[int, int] | None:
    """(parent PID, CPU ticks incl. reaped children) of ``pid``; None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces; fields follow the last ")".
    fields = raw[raw.rindex(")") + 2:].split()
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return ppid, utime + stime + cutime + cstime


def machine_busy() -> tuple[int, int]:
    """(busy, total) ticks of the whole machine from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def lab_processes(supervisord: int, programs: dict[int, str]) -> dict[int, tuple[str, int]]:
    """Every process under ``supervisord``: PID -> (program it belongs to, CPU ticks)."""
    stats: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := proc_stat(int(entry))) is not None:
            stats[int(entry)] = stat
    out: dict[int, tuple[str, int]] = {}
    for pid, (_, ticks) in stats.items():
        walk, seen = pid, 0
        while walk in stats and walk not in programs and walk != supervisord and seen < 64:
            walk, seen = stats[walk][0], seen + 1
        if walk == supervisord:
            out[pid] = ("supervisord", ticks)
        elif walk in programs:
            out[pid] = (programs[walk], ticks)
    return out


def measure(lab: LocalLab, seconds: float
            ) -> tuple[float, float, dict[str, float], dict[str, float]]:
    """(lab % of one core, machine % of one core, % per program, RSS MiB per program) over
    ``seconds``."""
    supervisord = lab.supervisor.pid()
    if supervisord is None:
        raise SystemExit(f"lab {lab.config.name!r} has no running supervisord")
    programs = {int(i["pid"]): name for name, i in lab.supervisor.all_info().items() if i["pid"]}
    first: dict[int, tuple[str, int]] = {}
    last: dict[int, tuple[str, int]] = {}
    busy0, total0 = machine_busy()
    began = time.monotonic()
    while True:
        sample = lab_processes(supervisord, programs)
        in_window = bool(last)
        for pid, value in sample.items():
            # A process born inside the window counts from zero: all its time is idle cost.
            first.setdefault(pid, (value[0], 0) if in_window else value)
            last[pid] = value
        if time.monotonic() - began >= seconds:
            break
        time.sleep(1.0)
    elapsed = time.monotonic() - began
    busy1, total1 = machine_busy()
    per_program: dict[str, float] = defaultdict(float)
    for pid, (program, ticks) in last.items():
        per_program[program] += (ticks - first[pid][1]) / TICK / elapsed * 100
    cores = os.cpu_count() or 1
    machine = (busy1 - busy0) / max(1, total1 - total0) * cores * 100
    rss: dict[str, float] = defaultdict(float)
    for pid, (program, _) in lab_processes(supervisord, programs).items():
        rss[program] += rss_mib(pid)
    return sum(per_program.values()), machine, dict(per_program), dict(rss)


def group_of(program: str, pods: dict[str, str]) -> str:
    """The component a supervisord program belongs to (its pod's), else the program."""
    for pod in sorted(pods, key=len, reverse=True):
        if program == pod or program.startswith(pod + "-"):
            return pods[pod]
    return program


def main() -> None:
    """Measure ``--runs`` idle windows and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--settle", type=float, default=30.0,
                        help="seconds to wait after up (or before the first window)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab up afterwards")
    args = parser.parse_args()
    lab = LocalLab(config_mod.load())
    brought_up = lab.supervisor.pid() is None
    try:
        if brought_up:
            lab.up(progress=lambda c, m, e: print(f"  {e:6.1f}s {c}: {m}"))
        time.sleep(args.settle)
        pods = {p.name: s.component for s in lab.status() for p in s.pods}
        runs = []
        for run in range(args.runs):
            total, machine, per_program, rss = measure(lab, args.seconds)
            runs.append(total)
            groups: dict[str, float] = defaultdict(float)
            memory: dict[str, float] = defaultdict(float)
            for program, percent in per_program.items():
                groups[group_of(program, pods)] += percent
            for program, mib in rss.items():
                memory[group_of(program, pods)] += mib
            print(f"run {run + 1}: lab {total:5.1f} % of one core, machine {machine:5.1f} %, "
                  f"lab RSS {sum(rss.values()) / 1024:.2f} GiB")
            for name, percent in sorted(groups.items(), key=lambda kv: -kv[1]):
                print(f"    {name:<20} {percent:5.1f} %  {memory[name]:7.0f} MiB")
    finally:
        if brought_up and not args.keep_lab:
            lab.down()
    median = statistics.median(runs)
    print(f"idle lab CPU: median {median:.1f} %, max {max(runs):.1f} % of one core "
          f"over {args.seconds:.0f} s; goal <= {GOAL_PERCENT:.0f} %: "
          f"ratio {median / GOAL_PERCENT:.2f}")


if __name__ == "__main__":
    main()
