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
        ch = conn.channel()
        ch.confirm_delivery()
        yield ch
    finally:
        if conn.is_open:
            with suppress(Error):
                conn.close()


def declare_quorum_queue(ch: BlockingChannel, name: str) -> None:
    """A durable quorum queue (raft-replicated over the cluster)."""
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


def drain(ch: BlockingChannel, queue: str, limit: int = 100000) -> list[str]:
    """Consume (and ack) up to ``limit`` messages of ``queue``; returns their bodies."""
    bodies: list[str] = []
    while len(bodies) < limit:
        method, _props, body = ch.basic_get(queue=queue, auto_ack=False)
        if method is None:
            break
        bodies.append(body.decode())
        ch.basic_ack(method.delivery_tag)
    return bodies
