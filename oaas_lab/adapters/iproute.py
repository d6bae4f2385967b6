"""Links, network namespaces, routes and the processes inside namespaces, through ``ip``.

Shared by everything that builds networks on this host: the local lab's pods and the embedded
cluster's nodes. Every call goes through the shell adapter; nothing here knows about labs.
"""

from __future__ import annotations

import os
import signal

from oaas_lab.adapters import shell


def link_exists(name: str) -> bool:
    """True when the host has an interface called ``name``."""
    return shell.run(["ip", "link", "show", "dev", name], check=False).ok


def netns_list() -> list[str]:
    """The names of every network namespace on the host."""
    done = shell.run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in done.stdout.splitlines() if line.strip()]


def netns_pids(netns: str) -> list[int]:
    """PIDs of every process inside ``netns`` (empty when the namespace is gone)."""
    done = shell.run(["ip", "netns", "pids", netns], check=False)
    return [int(tok) for tok in done.stdout.split() if tok.isdigit()]


def kill_netns_processes(netns: str) -> list[int]:
    """SIGKILL every process inside ``netns``; returns the PIDs signalled."""
    pids = netns_pids(netns)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    return pids


def link_names() -> list[str]:
    """The name of every host interface (without the ``@peer`` suffix)."""
    done = shell.run(["ip", "-o", "link", "show"], check=False)
    names = []
    for line in done.stdout.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@", 1)[0])
    return names


def mounts_under(prefix: str) -> list[str]:
    """Mount points of this mount namespace that start with ``prefix``."""
    found = []
    with open("/proc/self/mounts", encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) > 1 and fields[1].startswith(prefix):
                found.append(fields[1])
    return found


def route_list() -> list[str]:
    """The host's IPv4 routes, one line each as ``ip route`` prints them."""
    done = shell.run(["ip", "-4", "route", "show"], check=False)
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]
