"""Network faults inside one network namespace: cut links, lossy links, a slow link; and heal.

Every rule lives in the namespace it is given (a local pod's, or a Kubernetes pod's entered
through its process), in one chain of its own, so healing is flushing that chain and deleting
the namespace removes whatever a failed heal left. ``enter`` is the argument vector that runs
a command inside the namespace (``ip netns exec NAME`` or ``nsenter -t PID -n``).

Packets are dropped, not rejected: a partition in a real network sends nothing back, and the
daemons must find out by their own timeouts. Delay (netem) is not available on every kernel
this runs on; a slow link is a rate limit (``tbf``), which exists everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

from oaas_lab.adapters import shell
from oaas_lab.errors import UserError
from oaas_lab.kernel.command import CommandResult

CHAIN = "OAAS-LAB-FAULT"
HOOKS = ("INPUT", "OUTPUT")


def _iptables(enter: Sequence[str], *args: str, check: bool = True) -> CommandResult:
    return shell.run([*enter, "iptables", "-w", "5", *args], timeout=30.0, check=check)


def _chain(enter: Sequence[str]) -> None:
    """Create the fault chain and hook it into INPUT and OUTPUT once."""
    if not _iptables(enter, "-S", CHAIN, check=False).ok:
        _iptables(enter, "-N", CHAIN)
    for hook in HOOKS:
        if not _iptables(enter, "-C", hook, "-j", CHAIN, check=False).ok:
            _iptables(enter, "-I", hook, "1", "-j", CHAIN)


def cut(enter: Sequence[str], peers: Sequence[str], loss: float = 1.0) -> None:
    """Drop packets to and from each address in ``peers``: all of them (``loss`` 1, a
    partition), or each with probability ``loss`` (a lossy link)."""
    if not 0.0 < loss <= 1.0:
        raise UserError(f"packet loss {loss} is not in (0, 1]", hint="give a fraction such as 0.3")
    _chain(enter)
    odds = [] if loss >= 1.0 else ["-m", "statistic", "--mode", "random",
                                   "--probability", f"{loss:.3f}"]
    for peer in peers:
        for side in ("-s", "-d"):
            _iptables(enter, "-A", CHAIN, side, peer, *odds, "-j", "DROP")


def slow(enter: Sequence[str], device: str, kbit: int) -> None:
    """Limit ``device``'s outgoing traffic to ``kbit`` kbit/s (queued up to 400 ms, then
    dropped), as an overloaded link would."""
    if kbit < 8:
        raise UserError(f"link rate {kbit} kbit/s is too small", hint="give at least 8 kbit/s")
    shell.run([*enter, "tc", "qdisc", "replace", "dev", device, "root", "tbf",
               "rate", f"{kbit}kbit", "burst", "16kb", "latency", "400ms"], timeout=30.0)


def heal(enter: Sequence[str], devices: Sequence[str] = ()) -> None:
    """Remove every fault this module put into the namespace (safe when there is none)."""
    if _iptables(enter, "-S", CHAIN, check=False).ok:
        _iptables(enter, "-F", CHAIN)
    for device in devices:
        # "root" is the qdisc ``slow`` replaced; deleting it brings back the kernel's default.
        shell.run([*enter, "tc", "qdisc", "del", "dev", device, "root"], timeout=30.0,
                  check=False)


def active(enter: Sequence[str], devices: Sequence[str] = ()) -> list[str]:
    """The faults in place, one line each (iptables rules of the chain, tc rate limits)."""
    found: list[str] = []
    listed = _iptables(enter, "-S", CHAIN, check=False)
    if listed.ok:
        found += [line for line in listed.stdout.splitlines() if line.startswith("-A ")]
    for device in devices:
        shown = shell.run([*enter, "tc", "qdisc", "show", "dev", device], timeout=30.0,
                          check=False)
        found += [f"{device}: {line}" for line in shown.stdout.splitlines() if " tbf " in line]
    return found
