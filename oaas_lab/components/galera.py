"""Galera: MariaDB with synchronous multi-master replication, the lab's SQL database.

Observed on each member directly as the application user (``SHOW STATUS LIKE 'wsrep_%'``).
Full membership: every member Primary, Synced and ready, seeing the configured size, all in one
cluster (one state UUID). The probe writes INSERTs through the service address (HAProxy); the
writer lookup says which member HAProxy sends writes to; the log tells how a member rejoined.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import ExitStack

from oaas_lab.adapters import sql
from oaas_lab.components.observing import (
    WRITE_TIMEOUT,
    close_quietly,
    run_id,
    unreachable,
    verdict,
)
from oaas_lab.components.spec import (
    Component,
    K8sNeeds,
    Role,
    SecretSpec,
    Spec,
    Writing,
    majority,
)
from oaas_lab.credentials import (
    GALERA_APP_DATABASE as SQL_DATABASE,
)
from oaas_lab.credentials import (
    GALERA_APP_SECRET as SQL_SECRET,
)
from oaas_lab.credentials import (
    GALERA_APP_USER as SQL_USER,
)
from oaas_lab.credentials import (
    GALERA_ROOT_SECRET as ROOT_SECRET,
)
from oaas_lab.errors import LabError
from oaas_lab.kernel.lab import Lab
from oaas_lab.kernel.results import CheckResult, failed, passed
from oaas_lab.secrets import Secret, SecretStore

# How fast the survivors evict a member that died without leaving. Until the view changes,
# every commit on them waits, so ``evs.suspect_timeout`` bounds the write gap of a writer
# loss (Galera's PT5S default made it 6-12 s). Kept above the longest scheduling stall seen
# on a loaded 2-core host, so a busy member is not evicted as a dead one.
FAILURE_DETECTION = ";".join([
    "evs.keepalive_period=PT0.3S",
    "evs.inactive_check_period=PT0.3S",
    # Join messages repeat this often while a new view is agreed; the PT1S default added
    # about a second to every view change.
    "evs.join_retrans_period=PT0.3S",
    "evs.suspect_timeout=PT1S",
    "evs.inactive_timeout=PT5S",
    "evs.install_timeout=PT5S",
])


ENTRY = Component(
    memory_mib=256,
    name="galera",
    role=Role.CONTROLLER,
    replicas=3,
    ports={"mysql": 3306, "replication": 4567, "ist": 4568, "sst": 4444},
    quorum=True,
    description="MariaDB + Galera, synchronous multi-master SQL",
    ready_timeout=180.0,
    front="haproxy",
)

GaleraObservation = Mapping[str, str] | str
"""A member's ``wsrep_%`` status variables, or why they could not be read."""


# --- judges -----------------------------------------------------------------------------------


def member_problems(status: Mapping[str, str], expected: int) -> list[str]:
    """What is wrong with one member's view of the cluster (empty when nothing is)."""
    problems = []
    if status.get("wsrep_cluster_status") != "Primary":
        problems.append(f"cluster status {status.get('wsrep_cluster_status', '?')} (not Primary)")
    if status.get("wsrep_local_state_comment") != "Synced":
        problems.append(f"state {status.get('wsrep_local_state_comment', '?')} (not Synced)")
    if status.get("wsrep_ready") != "ON":
        problems.append(f"wsrep_ready={status.get('wsrep_ready', '?')}")
    size = status.get("wsrep_cluster_size", "?")
    if size != str(expected):
        problems.append(f"cluster size {size} (expected {expected})")
    return problems


_EVIDENCE_KEYS = ("wsrep_cluster_status", "wsrep_local_state_comment", "wsrep_cluster_size",
                  "wsrep_cluster_state_uuid", "wsrep_ready", "wsrep_last_committed")


def _evidence(observed: Mapping[str, GaleraObservation]) -> dict[str, object]:
    return {pod: {k: v for k, v in obs.items() if k in _EVIDENCE_KEYS}
            if not isinstance(obs, str) else obs for pod, obs in observed.items()}


def membership(observed: Mapping[str, GaleraObservation], expected: int) -> CheckResult:
    """Every one of ``expected`` members is Primary, Synced, ready, sees ``expected`` members,
    and all of them share one cluster state UUID."""
    name = "galera membership"
    problems: list[str] = []
    for pod, reason in unreachable(observed).items():
        problems.append(f"{pod}: unreachable ({reason})")
    views = {pod: obs for pod, obs in observed.items() if not isinstance(obs, str)}
    for pod, status in sorted(views.items()):
        problems.extend(f"{pod}: {p}" for p in member_problems(status, expected))
    uuids = {status.get("wsrep_cluster_state_uuid", "?") for status in views.values()}
    if len(uuids) > 1:
        problems.append(f"members disagree on the cluster UUID ({', '.join(sorted(uuids))})")
    if len(observed) != expected:
        problems.append(f"{len(observed)} members known to the lab, expected {expected}")
    return verdict(
        name, problems, hint="read the member logs (oaas-lab logs galera-N) and wsrep status",
        ok=f"{expected} members Primary and Synced, cluster {min(uuids, default='?')}",
        members=_evidence(observed),
    )


def quorum(observed: Mapping[str, GaleraObservation], total: int) -> CheckResult:
    """A majority of ``total`` members answer as one Primary component (some may be down)."""
    name = "galera quorum"
    primary = {
        pod: obs for pod, obs in observed.items()
        if not isinstance(obs, str) and obs.get("wsrep_cluster_status") == "Primary"
    }
    uuids = {obs.get("wsrep_cluster_state_uuid", "?") for obs in primary.values()}
    if len(primary) < majority(total) or len(uuids) != 1:
        others = sorted(set(observed) - set(primary))
        return failed(
            name,
            f"{len(primary)} of {total} members in a Primary component (need {majority(total)}); "
            f"not Primary or unreachable: {', '.join(others) or 'none'}",
            hint="a majority must be up and connected for Galera to accept writes",
            members=_evidence(observed),
        )
    return passed(name, f"{len(primary)} of {total} members Primary", members=_evidence(observed))


def non_primary(observed: Mapping[str, GaleraObservation]) -> CheckResult:
    """No reachable member claims to be Primary (what a lost majority must look like)."""
    name = "galera without quorum"
    primary = sorted(
        pod for pod, obs in observed.items()
        if not isinstance(obs, str) and obs.get("wsrep_cluster_status") == "Primary"
    )
    if primary:
        return failed(
            name, f"still Primary without a majority: {', '.join(primary)}",
            hint="a minority that stays Primary risks split brain: check pc.* provider options",
        )
    return passed(name, "no reachable member is Primary")


# --- observation ------------------------------------------------------------------------------


def observe(lab: Lab, store: SecretStore) -> dict[str, GaleraObservation]:
    """Each member's ``wsrep_%`` status, read directly on the member."""
    password = store.get(SQL_SECRET)
    observed: dict[str, GaleraObservation] = {}
    for pod in lab.members(ENTRY.name):
        try:
            with sql.connect(lab.address(pod.name), user=SQL_USER, password=password,
                             timeout=3.0) as conn:
                observed[pod.name] = sql.status(conn)
        except (sql.Error, LabError) as exc:
            observed[pod.name] = f"{type(exc).__name__}: {exc}"
    return observed


# --- the writer, and which member takes the writes ---------------------------------------------

class SqlWrites:
    """INSERTs of sequence numbers through the Galera service address (HAProxy).

    Autocommit is on, so a returned INSERT is a committed, certified transaction: that is what
    "acknowledged" means here.
    """

    def __init__(
        self, host: str, password: Secret, *, user: str = SQL_USER,
        database: str = SQL_DATABASE, port: int = 3306, run: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.user = user
        self.database = database
        self._password = password
        self.run = run or run_id()
        self.name = "galera-sql-write"
        self._stack: ExitStack | None = None
        self._conn: sql.Connection | None = None

    def _connect(self) -> tuple[ExitStack, sql.Connection]:
        stack = ExitStack()
        conn = stack.enter_context(sql.connect(
            self.host, user=self.user, password=self._password, port=self.port,
            database=self.database, timeout=WRITE_TIMEOUT,
        ))
        return stack, conn

    def prepare(self) -> None:
        """Create the probe table if needed (a primary key, as Galera requires)."""
        stack, conn = self._connect()
        with stack:
            sql.query(
                conn,
                "CREATE TABLE IF NOT EXISTS probe_writes ("
                "run CHAR(8) NOT NULL, seq INT NOT NULL, "
                "written TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), "
                "PRIMARY KEY (run, seq)) ENGINE=InnoDB",
            )

    def write(self, seq: int) -> None:
        """One INSERT; a fresh connection after any failure."""
        if self._conn is None:
            self._stack, self._conn = self._connect()
        try:
            sql.query(
                self._conn,
                "INSERT INTO probe_writes (run, seq) VALUES (%s, %s)",
                (self.run, seq),
            )
        except Exception:
            self.close()
            raise

    def read_back(self) -> set[int]:
        """Every sequence number of this run present in the table (read through HAProxy)."""
        stack, conn = self._connect()
        with stack:
            rows = sql.query(
                conn, "SELECT seq FROM probe_writes WHERE run = %s",
                (self.run,),
            )
        return {int(r[0]) for r in rows}

    def read_back_on(self, host: str) -> set[int]:
        """The same, read directly on one member (proves replication to that member)."""
        with sql.connect(
            host, user=self.user, password=self._password, port=self.port,
            database=self.database, timeout=WRITE_TIMEOUT,
        ) as conn:
            rows = sql.query(
                conn, "SELECT seq FROM probe_writes WHERE run = %s",
                (self.run,),
            )
        return {int(r[0]) for r in rows}

    def close(self) -> None:
        stack, self._stack, self._conn = self._stack, None, None
        close_quietly(stack)


def writer(lab: Lab, store: SecretStore, how: Writing) -> SqlWrites:
    """INSERTs through the service address, or to ``how.hosts[0]`` directly."""
    host = how.hosts[0] if how.hosts else lab.service_address(ENTRY.name)
    target = SqlWrites(host, store.get(SQL_SECRET), run=how.run)
    if how.prepare:
        target.prepare()
    return target


def writer_identity(lab: Lab, store: SecretStore) -> dict[str, str]:
    """What the Galera service address answers to a SQL client: node name, host, address."""
    with sql.connect(
        lab.service_address(ENTRY.name), user=SQL_USER, password=store.get(SQL_SECRET),
        timeout=3.0,
    ) as conn:
        rows = sql.query(
            conn, "SELECT @@hostname, @@wsrep_node_name, @@wsrep_node_address"
        )
    host, node, address = (str(v or "") for v in rows[0])
    return {"hostname": host, "wsrep_node_name": node, "wsrep_node_address": address}


def match_writer(identity: dict[str, str], pods: dict[str, str]) -> str | None:
    """The pod (name -> address) whose name or address matches the writer's identity."""
    names = {identity.get("hostname", ""), identity.get("wsrep_node_name", "")}
    address = identity.get("wsrep_node_address", "").split(":")[0]
    for pod, ip in pods.items():
        if pod in names or (address and ip == address):
            return pod
    for pod in pods:
        # Hostnames may carry a lab prefix or a domain ("oaas-galera-1.lab").
        if any(re.search(rf"(^|[-.]){re.escape(pod)}($|[.])", n) for n in names if n):
            return pod
    return None


def active_writer(lab: Lab, store: SecretStore) -> str:
    """The member the service address (HAProxy) sends writes to now."""
    identity = writer_identity(lab, store)
    pods = {p.name: p.ip for p in lab.members(ENTRY.name)}
    pod = match_writer(identity, pods)
    if pod is None:
        raise LabError(
            f"the Galera writer {identity} matches none of {', '.join(pods)}",
            hint="check wsrep_node_name/hostname of the Galera pods",
        )
    return pod


# --- log parsing ------------------------------------------------------------------------------


def rejoin_method(log_text: str) -> str:
    """How a member got its state at its last start: ``IST``, ``SST`` or ``unknown``.

    Only the log after the member's last start counts; an earlier SST does not make a later
    rejoin an SST.
    """
    starts = [m.end() for m in re.finditer(r"Starting MariaDB|starting as process", log_text)]
    tail = log_text[starts[-1]:] if starts else log_text
    # The SST script runs on every join and only then learns which transfer it got, and Galera
    # logs "IST received" after an SST too (the catch-up after the copy), so the SST markers
    # are looked at first.
    if re.search(r"\bSST completed on joiner|Proceeding with SST|IST will be unavailable", tail):
        return "SST"
    if re.search(r"\bIST completed on joiner|IST received", tail):
        return "IST"
    return "unknown"


def rejoined_by_ist(lab: Lab, pod: str, lines: int = 2000) -> CheckResult:
    """The member's log since its last start shows an incremental state transfer."""
    method = rejoin_method(lab.logs(pod, lines=lines))
    name = f"{pod} rejoin"
    if method == "IST":
        return passed(name, "rejoined by IST (incremental state transfer)")
    return failed(
        name, f"rejoin method is {method}, not IST",
        hint=f"a full SST means the member lost its position: read {lab.log_path(pod)}",
    )


SPEC: Spec[Mapping[str, str]] = Spec(
    entry=ENTRY,
    observe=observe,
    ready=membership,
    quorum=quorum,
    lost_quorum=non_primary,
    writer=writer,
    local="galera:GaleraDriver",
    k8s=K8sNeeds(
        template="galera.yaml.j2", storage="10Gi", service="haproxy",
        # The application user is the one the judges and the probe use, on both labs.
        secrets=(SecretSpec("galera-credentials",
                            {"root-password": (ROOT_SECRET, "password"),
                             "app-password": (SQL_SECRET, "password")}),),
    ),
)
