"""Entrypoint of one galera pod: decide join or bootstrap, then become ``mariadbd``.

Run by supervisord inside the pod on every (re)start, so the same rules cover a cold ``up``, a
member restarted after a crash, and a cluster of which every member went down:

1. A peer answers on the replication port: join it. A member with data first recovers its
   position (``--wsrep-recover``) and passes it as ``--wsrep_start_position`` so that the donor
   can send only the missing write-sets (IST) instead of a full copy (SST).
2. No peer answers but Galera saved the last primary view (``gvwstate.dat``, left by a crash):
   start and let ``pc.recovery`` restore the primary component when the others come back.
3. No peer answers and no saved view: an election. Every member writes its recovered seqno into
   a shared directory of the lab and refreshes it while it waits (bounded) for the others'
   reports; the member with the highest seqno (lowest ordinal on a tie) bootstraps a new
   cluster, the others join it.
   On a cold ``up`` every seqno is -1, so ``galera-0`` bootstraps.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import time
from pathlib import Path
from typing import Any

from oaas_lab.adapters import shell
from oaas_lab.components.galera import ENTRY
from oaas_lab.kernel.results import CheckResult, failed, passed
from oaas_lab.kernel.wait import until

GCOMM_PORT = ENTRY.ports["replication"]
HEARTBEAT_STALE = 10.0
ELECTION_TIMEOUT = 90.0
JOIN_WAIT_TIMEOUT = 300.0
RECOVERED = re.compile(r"WSREP: Recovered position:\s*([0-9a-f-]{36}):(-?\d+)")


def log(message: str) -> None:
    """A line in the pod's log (the entrypoint's stdout is the daemon's log)."""
    print(f"galera-entrypoint: {message}", flush=True)


def reachable(ip: str, port: int = GCOMM_PORT, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``ip:port``."""
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


def read_grastate(datadir: Path) -> dict[str, str]:
    """``grastate.dat`` as a dict (uuid, seqno, safe_to_bootstrap); empty when missing."""
    path = datadir / "grastate.dat"
    if not path.exists():
        return {}
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        key, sep, value = line.partition(":")
        if sep and not line.startswith("#"):
            out[key.strip()] = value.strip()
    return out


def parse_recovered(text: str) -> tuple[str, int] | None:
    """The ``uuid:seqno`` that ``mariadbd --wsrep-recover`` logged, if any."""
    found = RECOVERED.findall(text)
    if not found:
        return None
    uuid, seqno = found[-1]
    return uuid, int(seqno)


def choose_bootstrap(reports: dict[str, dict[str, Any]]) -> str:
    """The member that bootstraps: the highest seqno, then the lowest ordinal."""
    return max(reports, key=lambda n: (int(reports[n]["seqno"]), -int(reports[n]["ordinal"])))


def fresh_reports(election: Path, members: list[str], now: float) -> dict[str, dict[str, Any]]:
    """The reports of members taking part in the election now.

    A member rewrites its report on every poll while it waits, so a report that was not
    refreshed in the last ``HEARTBEAT_STALE`` seconds belongs to a member that has decided or
    to an earlier election.
    """
    out: dict[str, dict[str, Any]] = {}
    for name in members:
        path = election / f"{name}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if now - float(data.get("time", 0)) <= HEARTBEAT_STALE:
            out[name] = data
    return out


class Entrypoint:
    """The decision for one pod, from its ``entrypoint.json``."""

    def __init__(self, pod_dir: Path) -> None:
        self.spec: dict[str, Any] = json.loads((pod_dir / "entrypoint.json").read_text())
        self.name = str(self.spec["name"])
        self.datadir = Path(self.spec["datadir"])
        self.defaults = str(self.spec["defaults_file"])
        self.run_dir = Path(self.spec["run_dir"])
        self.election = Path(self.spec["election_dir"])
        self.peers = [m for m in self.spec["members"] if m["name"] != self.name]

    def mariadbd(self, *extra: str) -> list[str]:
        """The daemon's command line (``--defaults-file`` must come first)."""
        return ["mariadbd", f"--defaults-file={self.defaults}", *extra]

    def has_data(self) -> bool:
        """True once the member holds a database (it bootstrapped or received an SST)."""
        return (self.datadir / "mysql").is_dir()

    def recover(self) -> tuple[str, int] | None:
        """This member's last committed position, or None for an empty member."""
        if not self.has_data():
            return None
        state = read_grastate(self.datadir)
        seqno = int(state.get("seqno", "-1") or -1)
        if seqno >= 0 and state.get("uuid"):
            # A clean shutdown wrote the position; no need to start InnoDB to find it.
            return state["uuid"], seqno
        logfile = self.run_dir / "wsrep-recover.log"
        logfile.unlink(missing_ok=True)
        shell.run(self.mariadbd("--wsrep-recover", f"--log-error={logfile}"),
                  timeout=120.0, check=False)
        text = logfile.read_text(errors="replace") if logfile.exists() else ""
        found = parse_recovered(text)
        log(f"recovered position {found}")
        return found

    def any_peer(self) -> CheckResult:
        """Passes when a peer answers on the replication port."""
        up = [p["name"] for p in self.peers if reachable(str(p["ip"]))]
        return passed("peers", ",".join(up)) if up else failed("peers", "no peer answers")

    def start_args(self, position: tuple[str, int] | None) -> list[str]:
        """``--wsrep_start_position`` for IST when the position is known."""
        if position is None:
            return []
        return [f"--wsrep_start_position={position[0]}:{position[1]}"]

    def join(self, position: tuple[str, int] | None) -> None:
        """Become mariadbd joining the running cluster."""
        log(f"joining the cluster at position {position}")
        shell.replace_process(self.mariadbd(*self.start_args(position)))

    def bootstrap(self, position: tuple[str, int] | None) -> None:
        """Become mariadbd starting a new primary component."""
        if not self.has_data():
            log("initialising an empty data directory")
            shell.run(["mariadb-install-db", f"--defaults-file={self.defaults}",
                       "--user=root", "--skip-test-db", "--auth-root-authentication-method=socket"],
                      timeout=180.0)
        grastate = self.datadir / "grastate.dat"
        if grastate.exists():
            text = grastate.read_text(encoding="utf-8")
            grastate.write_text(re.sub(r"safe_to_bootstrap:\s*0", "safe_to_bootstrap: 1", text),
                                encoding="utf-8")
        log(f"bootstrapping a new cluster from position {position}")
        shell.replace_process(self.mariadbd("--wsrep-new-cluster", *self.start_args(position)))

    def write_report(self, report: dict[str, Any]) -> None:
        """Write (or refresh, as a heartbeat) this member's election report."""
        report["time"] = time.time()
        mine = self.election / f"{self.name}.json"
        tmp = mine.with_suffix(".tmp")
        tmp.write_text(json.dumps(report), encoding="utf-8")
        tmp.replace(mine)

    def elect(self, position: tuple[str, int] | None) -> None:
        """Agree with the other members on who bootstraps (see the module docstring)."""
        self.election.mkdir(parents=True, exist_ok=True)
        report: dict[str, Any] = {
            "seqno": position[1] if position else -1,
            "ordinal": int(self.spec["ordinal"]),
        }
        self.write_report(report)
        names = [str(m["name"]) for m in self.spec["members"]]

        def everyone_or_peer() -> CheckResult:
            if self.any_peer().ok:
                return passed("election", "a peer is up")
            self.write_report(report)
            got = fresh_reports(self.election, names, time.time())
            if len(got) == len(names):
                return passed("election", "every member reported")
            return failed("election", f"reports from {sorted(got)}")

        reported, _ = until(everyone_or_peer, timeout=ELECTION_TIMEOUT, interval=0.5)
        if not reported.ok:
            log(f"election: not every member reported in time ({reported.detail})")
        if self.any_peer().ok:
            self.join(position)
            return
        reports = fresh_reports(self.election, names, time.time())
        reports.setdefault(self.name, report)
        winner = choose_bootstrap(reports)
        log(f"election among {sorted(reports)}: {winner} bootstraps")
        if winner == self.name:
            self.bootstrap(position)
            return
        if not until(self.any_peer, timeout=JOIN_WAIT_TIMEOUT, interval=0.5)[0].ok:
            log("no member came up to join; exiting so that the supervisor retries")
            sys.exit(1)
        self.join(position)

    def run(self) -> None:
        """Decide and hand over to mariadbd (this process becomes the daemon)."""
        for sub in ("data", "run", "tmp", "log"):
            (self.datadir.parent / sub).mkdir(parents=True, exist_ok=True)
        position = self.recover()
        if self.any_peer().ok:
            self.join(position)
        elif (self.datadir / "gvwstate.dat").exists():
            log("no peer answers; the saved primary view (pc.recovery) will restore the cluster")
            shell.replace_process(self.mariadbd(*self.start_args(position)))
        else:
            self.elect(position)


def main() -> None:
    """``python -m oaas_lab.backends.local.daemons.galera_entrypoint POD_DIR``."""
    Entrypoint(Path(sys.argv[1])).run()


if __name__ == "__main__":
    main()
