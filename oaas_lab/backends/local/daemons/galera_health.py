"""The wsrep health endpoint of one galera pod (run by supervisord inside the pod).

``GET /`` answers 200 only when the local member is in the Primary component and Synced
(``wsrep_local_state`` 4), 503 otherwise; HAProxy's ``option httpchk`` reads it.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from oaas_lab.adapters import sql
from oaas_lab.secrets import Secret


def verdict(status: dict[str, str]) -> tuple[int, str]:
    """HTTP status and body for the member's wsrep status variables."""
    cluster = status.get("wsrep_cluster_status", "?")
    state = status.get("wsrep_local_state", "?")
    comment = status.get("wsrep_local_state_comment", "?")
    body = f"cluster_status={cluster} local_state={state} ({comment})\n"
    ok = cluster == "Primary" and state == "4"
    return (200 if ok else 503), body


STATUS_SQL = (
    "SHOW GLOBAL STATUS WHERE Variable_name IN "
    "('wsrep_cluster_status', 'wsrep_local_state', 'wsrep_local_state_comment')"
)
CACHE_SECONDS = 0.4


class Probe:
    """One kept-open connection to the local member and a very short answer cache.

    Every HAProxy checks every second; reusing the connection and sharing an answer between
    checks arriving together keeps the endpoint's CPU use small on a crowded host.
    """

    def __init__(self, password_file: Path) -> None:
        self.password_file = password_file
        self.lock = threading.Lock()
        self.conn: Any = None
        # Holds the open connection's context; closing it closes the connection.
        self.stack = contextlib.ExitStack()
        self.cached: tuple[float, int, str] = (0.0, 503, "")

    def _status(self) -> dict[str, str]:
        if self.conn is None:
            password = Secret(self.password_file.read_text(encoding="utf-8").strip())
            self.conn = self.stack.enter_context(
                sql.connect("127.0.0.1", user="root", password=password, timeout=2.0))
        rows = sql.query(self.conn, STATUS_SQL)
        return {str(name): str(value) for name, value in rows}

    def answer(self) -> tuple[int, str]:
        """HTTP status and body, from the cache when it is fresh enough."""
        with self.lock:
            at, code, body = self.cached
            if time.monotonic() - at < CACHE_SECONDS:
                return code, body
            try:
                code, body = verdict(self._status())
            except (sql.Error, OSError) as exc:
                self.close()
                code, body = 503, f"mariadb not answering: {type(exc).__name__}\n"
            self.cached = (time.monotonic(), code, body)
            return code, body

    def close(self) -> None:
        """Drop the connection (it is reopened by the next check)."""
        with contextlib.suppress(Exception):
            self.stack.close()
        self.stack = contextlib.ExitStack()
        self.conn = None


def main() -> None:
    """Serve the health endpoint until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=9200)
    parser.add_argument("--password-file", required=True)
    args = parser.parse_args()
    probe = Probe(Path(args.password_file))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code, body = probe.answer()
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            # One line per check each second would drown the log; failures show in HAProxy's.
            return

    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("0.0.0.0", args.port), Handler)  # noqa: S104 -- inside the pod
    server.serve_forever()


if __name__ == "__main__":
    main()
