"""Probe targets: how a client writes to each service, and how it reads its writes back.

Each target talks through ``oaas_lab.adapters`` only and keeps one connection open between
writes, reconnecting after a failure, as a real client would. Endpoints come from the ``Lab``
(a service address or the member addresses), credentials from the lab's ``SecretStore``.
"""

from __future__ import annotations

import secrets as _random
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, suppress
from typing import Any

from oaas_lab.adapters import amqp, etcd, sql
from oaas_lab.backends.base import Lab, PodState
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
    RABBITMQ_SECRET as AMQP_SECRET,
)
from oaas_lab.credentials import (
    RABBITMQ_USER as AMQP_USER,
)
from oaas_lab.secrets import Secret, SecretStore

ETCD_PORT = 2379
WRITE_TIMEOUT = 2.0
"""Seconds one write may take before it counts as failed (probes must not hang)."""


def run_id() -> str:
    """A short random name that keeps one probe's writes apart from every other's."""
    return _random.token_hex(4)


def running_addresses(lab: Lab, component: str) -> list[str]:
    """Addresses of the component's members, running ones first."""
    pods = lab.members(component)
    pods.sort(key=lambda p: p.state != PodState.RUNNING)
    return [lab.address(p.name) for p in pods]


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
        if stack is not None:
            with suppress(Exception):
                stack.close()


class EtcdPuts:
    """etcd puts of sequence numbers; on a failure the next put goes to the next member.

    A put returns once a quorum committed it, so a returned put is acknowledged.
    """

    def __init__(self, endpoints: Sequence[str], run: str | None = None) -> None:
        if not endpoints:
            raise ValueError("EtcdPuts needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.run = run or run_id()
        self.name = "etcd-put"
        self._current = 0

    @property
    def prefix(self) -> str:
        return f"/oaas-probe/{self.run}/"

    def prepare(self) -> None:
        """Nothing to create: keys live under the run's own prefix."""

    def write(self, seq: int) -> None:
        endpoint = self.endpoints[self._current % len(self.endpoints)]
        try:
            etcd.put(endpoint, f"{self.prefix}{seq:08d}", str(seq), timeout=WRITE_TIMEOUT)
        except Exception:
            self._current += 1
            raise

    def read_back(self) -> set[int]:
        """Keys under the prefix, read (linearizably) from the first member that answers."""
        errors: list[str] = []
        for endpoint in self.endpoints:
            try:
                found = etcd.get_prefix(endpoint, self.prefix)
            except (etcd.Error, etcd.EtcdError) as exc:
                errors.append(f"{endpoint}: {exc}")
                continue
            return {int(v) for v in found.values()}
        raise etcd.EtcdError("no etcd member answered the read-back: " + "; ".join(errors))

    def close(self) -> None:
        """Nothing is kept open between puts."""


class QueuePublishes:
    """Persistent publishes to a quorum queue, each waiting for the publisher confirm.

    A confirmed publish is acknowledged. The client moves to the next member after a failure,
    like an oslo.messaging client with several transport hosts.
    """

    def __init__(
        self, hosts: Sequence[str], password: Secret, *, user: str = AMQP_USER,
        run: str | None = None,
    ) -> None:
        if not hosts:
            raise ValueError("QueuePublishes needs at least one host")
        self.hosts = list(hosts)
        self.user = user
        self._password = password
        self.run = run or run_id()
        self.name = "rabbitmq-publish"
        self._current = 0
        self._stack: ExitStack | None = None
        self._channel: Any = None

    @property
    def queue(self) -> str:
        return f"oaas-probe-{self.run}"

    def _open(self, host: str) -> tuple[ExitStack, Any]:
        stack = ExitStack()
        try:
            ch = stack.enter_context(amqp.channel(
                host, user=self.user, password=self._password, timeout=WRITE_TIMEOUT
            ))
        except BaseException:
            stack.close()
            raise
        return stack, ch

    def _each_host(self) -> Iterator[str]:
        for i in range(len(self.hosts)):
            yield self.hosts[(self._current + i) % len(self.hosts)]

    def prepare(self) -> None:
        """Declare the quorum queue (on the first member that answers)."""
        last: Exception | None = None
        for host in self._each_host():
            try:
                stack, ch = self._open(host)
                with stack:
                    amqp.declare_quorum_queue(ch, self.queue)
                return
            except amqp.Error as exc:
                last = exc
        raise amqp.NoAnswerError(f"no RabbitMQ member accepted the queue: {last}")

    def write(self, seq: int) -> None:
        if self._channel is None:
            host = self.hosts[self._current % len(self.hosts)]
            try:
                self._stack, self._channel = self._open(host)
            except Exception:
                self._current += 1
                raise
        try:
            amqp.publish_within(self._channel, self.queue, str(seq), timeout=WRITE_TIMEOUT)
        except Exception:
            self._current += 1
            self.close()
            raise

    def read_back(self) -> set[int]:
        """Drain the queue (consuming the messages) on the first member that answers."""
        errors: list[str] = []
        for host in self._each_host():
            try:
                stack, ch = self._open(host)
                with stack:
                    bodies = amqp.drain(ch, self.queue)
                    amqp.delete_queue(ch, self.queue)
            except amqp.Error as exc:
                errors.append(f"{host}: {error_text(exc)}")
                continue
            return {int(b) for b in bodies}
        raise amqp.NoAnswerError("no RabbitMQ member answered: " + "; ".join(errors))

    def close(self) -> None:
        stack, self._stack, self._channel = self._stack, None, None
        if stack is not None:
            with suppress(Exception):
                stack.close()


def error_text(exc: BaseException) -> str:
    """``str(exc)``, or the class name when an exception has no text (pika's often do not)."""
    return str(exc) or type(exc).__name__


def sql_writes(lab: Lab, store: SecretStore) -> SqlWrites:
    """A SQL writer through the lab's Galera service address, its table created."""
    target = SqlWrites(lab.service_address("galera"), store.get(SQL_SECRET))
    target.prepare()
    return target


def etcd_puts(lab: Lab) -> EtcdPuts:
    """An etcd writer that knows every member's client endpoint."""
    return EtcdPuts([f"{a}:{ETCD_PORT}" for a in running_addresses(lab, "etcd")])


def queue_publishes(lab: Lab, store: SecretStore) -> QueuePublishes:
    """A publisher to a fresh quorum queue, knowing every RabbitMQ member."""
    target = QueuePublishes(running_addresses(lab, "rabbitmq"), store.get(AMQP_SECRET))
    target.prepare()
    return target
