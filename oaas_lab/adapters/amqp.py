"""AMQP 0-9-1 (RabbitMQ): the only module using pika.

Publishes use publisher confirms, so "acknowledged" means the quorum queue's leader has the
message on a majority of members.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from oaas_lab.secrets import Secret

Error = pika.exceptions.AMQPError
"""Every failure: connection refused/closed, channel closed, message nacked or returned."""


class NoAnswerError(pika.exceptions.AMQPError):  # type: ignore[misc]  # pika is untyped
    """The broker accepted the connection but did not answer a request in time (e.g. a node
    still booting). The connection is unusable afterwards."""


class ConfirmTimeoutError(NoAnswerError):
    """The broker neither confirmed nor refused a publish in time (e.g. a queue without quorum).

    The channel it happened on is unusable afterwards; close its connection.
    """


@contextmanager
def _deadline(
    conn: pika.BlockingConnection, seconds: float, error: type[NoAnswerError], what: str
) -> Iterator[None]:
    # pika's blocking adapter waits for a broker's reply without a deadline, and its public
    # timers only fire outside such a wait; the I/O loop's own timers fire inside it, so one of
    # them aborts the wait. Probes and checks must never hang on a broker that went quiet.
    def expire() -> None:
        raise error(f"no answer to {what} within {seconds:.1f}s")

    ioloop = conn._impl.ioloop
    timer = ioloop.call_later(seconds, expire)
    try:
        yield
    finally:
        ioloop.remove_timeout(timer)


@contextmanager
def channel(
    host: str, *, user: str, password: Secret, port: int = 5672, timeout: float = 5.0
) -> Iterator[BlockingChannel]:
    """A channel in confirm mode on a fresh connection."""
    params = pika.ConnectionParameters(
        host=host,
        port=port,
        credentials=pika.PlainCredentials(user, password.reveal()),
        socket_timeout=timeout,
        blocked_connection_timeout=timeout,
        connection_attempts=1,
        heartbeat=0,
        stack_timeout=timeout,
    )
    conn = pika.BlockingConnection(params)
    try:
        with _deadline(conn, timeout, NoAnswerError, "opening a channel"):
            ch = conn.channel()
            ch.confirm_delivery()
        yield ch
    finally:
        if conn.is_open:
            with suppress(Error), _deadline(conn, timeout, NoAnswerError, "closing"):
                conn.close()


def declare_quorum_queue(ch: BlockingChannel, name: str, timeout: float = 10.0) -> None:
    """A durable quorum queue (raft-replicated over the cluster)."""
    with _deadline(ch.connection, timeout, NoAnswerError, "a queue declaration"):
        ch.queue_declare(queue=name, durable=True, arguments={"x-queue-type": "quorum"})


def publish(ch: BlockingChannel, queue: str, body: str) -> None:
    """Publish persistently and wait for the broker's confirm; raises ``Error`` if refused."""
    ch.basic_publish(
        exchange="",
        routing_key=queue,
        body=body.encode(),
        properties=pika.BasicProperties(delivery_mode=2),
        mandatory=True,
    )


def drain(
    ch: BlockingChannel, queue: str, limit: int = 100000, timeout: float = 120.0
) -> list[str]:
    """Consume (and ack) up to ``limit`` messages of ``queue`` within ``timeout`` seconds;
    returns their bodies."""
    bodies: list[str] = []
    with _deadline(ch.connection, timeout, NoAnswerError, f"draining {queue}"):
        while len(bodies) < limit:
            method, _props, body = ch.basic_get(queue=queue, auto_ack=False)
            if method is None:
                break
            bodies.append(body.decode())
            ch.basic_ack(method.delivery_tag)
    return bodies


def publish_within(ch: BlockingChannel, queue: str, body: str, timeout: float) -> None:
    """``publish``, but give up after ``timeout`` seconds without a confirm.

    pika's blocking channel waits for a confirm without a deadline, and a quorum queue that has
    lost its majority holds a publish unanswered; a probe must not hang, so a timer on the
    connection's I/O loop aborts the wait with ``ConfirmTimeoutError``.
    """
    with _deadline(ch.connection, timeout, ConfirmTimeoutError, "a publish (no confirm)"):
        publish(ch, queue, body)


def delete_queue(ch: BlockingChannel, queue: str) -> None:
    """Delete ``queue`` (a probe's own queue, once it has been read back)."""
    ch.queue_delete(queue=queue)
