"""MySQL protocol (MariaDB / Galera, through HAProxy or direct): the only module using pymysql."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeAlias

import pymysql
import pymysql.cursors

from oaas_lab.secrets import Secret

Connection: TypeAlias = "pymysql.connections.Connection[Any]"
"""An open connection, as ``connect`` yields it."""

Error = pymysql.MySQLError
"""Every failure of a statement or a connection (refused, timed out, ERROR 1047 ...)."""


def error_code(exc: BaseException) -> int:
    """The MySQL error number of ``exc`` (e.g. 1047 'WSREP has not yet prepared node'), or 0."""
    args = getattr(exc, "args", ())
    return int(args[0]) if args and isinstance(args[0], int) else 0


@contextmanager
def connect(
    host: str,
    *,
    user: str,
    password: Secret,
    port: int = 3306,
    database: str | None = None,
    timeout: float = 5.0,
) -> Iterator[pymysql.connections.Connection[Any]]:
    """An autocommit connection with short connect/read/write timeouts (probes must not hang)."""
    conn = pymysql.connect(
        host=host,
        port=port,
        user=user,
        password=password.reveal(),
        database=database,
        connect_timeout=max(1, int(timeout)),
        read_timeout=max(1, int(timeout)),
        write_timeout=max(1, int(timeout)),
        autocommit=True,
        charset="utf8mb4",
    )
    try:
        yield conn
    finally:
        conn.close()


def query(
    conn: pymysql.connections.Connection[Any], sql: str, args: Sequence[Any] | None = None
) -> list[tuple[Any, ...]]:
    """Run one statement and return its rows."""
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def status(conn: pymysql.connections.Connection[Any], like: str = "wsrep_%") -> dict[str, str]:
    """``SHOW GLOBAL STATUS LIKE ...`` as a dict (wsrep_cluster_size, wsrep_cluster_status ...)."""
    rows = query(conn, "SHOW GLOBAL STATUS LIKE %s", (like,))
    return {str(name): str(value) for name, value in rows}
