"""What the host can hold: checked before ``up`` or ``scale`` starts anything.

Three limits run out on a small host long before the CPU does:

- memory: each member needs about its catalogue ``memory_mib`` (measured RSS); the new members
  must fit in what the kernel reports available, less a reserve for the host and the harness;
- addresses: one per pod in the lab subnet (.10 to .254);
- the kernel's neighbour table: it is shared by every network namespace, and each pod keeps an
  entry for every member of its own component it replicates with plus the few it talks to
  (host, front, dependencies). Past ``gc_thresh3`` the kernel drops entries
  (``neighbor table overflow``) and members lose each other.

A refusal names the limit and the largest count that fits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from oaas_lab import components
from oaas_lab.backends.local.pods import FIRST_POD_HOST, LAST_POD_HOST
from oaas_lab.errors import UserError

RESERVE_MIB = 1024
"""Memory left to the host, the harness and the page cache the databases lean on."""
NEIGHBOUR_RESERVE = 128
"""Neighbour entries left to the host's own interfaces and other labs."""
PEERS_BEYOND_COMPONENT = 8
"""Neighbours a pod has besides its own component's members (host, fronts, dependencies)."""
GC_THRESH3 = "/proc/sys/net/ipv4/neigh/default/gc_thresh3"


@dataclass(frozen=True)
class Room:
    """What the host has left for new pods."""

    memory_mib: int
    """Available memory (``MemAvailable``), less ``RESERVE_MIB``."""
    neighbour_limit: int
    """``gc_thresh3`` less ``NEIGHBOUR_RESERVE``."""
    addresses: int
    """Pod addresses of the subnet no pod of the lab holds."""


def host_room(used_addresses: int) -> Room:
    """The room on this host now, for a lab whose pods hold ``used_addresses`` addresses."""
    available_kib = 0
    for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("MemAvailable:"):
            available_kib = int(line.split()[1])
    thresh3 = int(Path(GC_THRESH3).read_text(encoding="utf-8").strip())
    return Room(
        memory_mib=available_kib // 1024 - RESERVE_MIB,
        neighbour_limit=thresh3 - NEIGHBOUR_RESERVE,
        addresses=LAST_POD_HOST - FIRST_POD_HOST + 1 - used_addresses,
    )


def neighbour_entries(counts: Mapping[str, int]) -> int:
    """Neighbour entries a lab with ``counts`` members per component keeps (an estimate from
    above: every member knows every other member of its component)."""
    return sum(n * (n + PEERS_BEYOND_COMPONENT) for n in counts.values())


def _shortfall(room: Room, before: Mapping[str, int], after: Mapping[str, int]) -> str:
    """Why ``after`` does not fit where ``before`` runs (empty when it fits)."""
    added = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    memory = sum(n * components.spec(name).entry.memory_mib
                 for name, n in added.items() if n > 0)
    if memory > room.memory_mib:
        return (f"memory: the new members need about {memory} MiB, the host has "
                f"{max(room.memory_mib, 0)} MiB available beyond a {RESERVE_MIB} MiB reserve")
    new_pods = sum(n for n in added.values() if n > 0)
    if new_pods > room.addresses:
        return (f"addresses: {new_pods} new pods, {room.addresses} free addresses left in "
                "the lab subnet")
    entries = neighbour_entries(after)
    if entries > room.neighbour_limit:
        return (f"neighbour table: about {entries} entries, more than gc_thresh3 "
                f"({room.neighbour_limit + NEIGHBOUR_RESERVE}) less {NEIGHBOUR_RESERVE} "
                "for the host")
    return ""


def check_scale(component: str, running: Mapping[str, int], replicas: int, room: Room) -> None:
    """Refuse scaling ``component`` to ``replicas`` when the host cannot hold it."""
    current = running.get(component, 0)
    if replicas <= current:
        return

    def why(count: int) -> str:
        return _shortfall(room, running, {**running, component: count})

    reason = why(replicas)
    if not reason:
        return
    entry = components.spec(component).entry
    fits = _largest(current, replicas, lambda n: not why(n),
                    lambda n: not entry.quorum or n % 2 == 1)
    raise UserError(
        f"{component}: {replicas} members do not fit on this host ({reason})",
        hint=f"the largest {component} count that fits is {fits}",
    )


def check_up(running: Mapping[str, int], wanted: Mapping[str, int], room: Room) -> None:
    """Refuse an ``up`` whose members (``wanted``) the host cannot hold beside ``running``."""
    reason = _shortfall(room, running, wanted)
    if reason:
        raise UserError(
            f"the lab's {sum(wanted.values())} pods do not fit on this host ({reason})",
            hint="lower replicas in the lab file, or stop another lab first",
        )


def _largest(low: int, high: int, fits: Callable[[int], bool],
             allowed: Callable[[int], bool]) -> int:
    """The largest allowed count in (low, high) that fits; ``low`` when none does."""
    for count in range(high - 1, low, -1):
        if allowed(count) and fits(count):
            return count
    return low
