"""A small fake of the Kubernetes API server, served over HTTP on loopback.

It stores objects by REST path and speaks just enough of the API for oaas-lab: GET of an
object or a collection (with equality label selectors and ``spec.nodeName`` field selectors),
server-side apply (``PATCH`` with ``application/apply-patch+yaml``, ``dryRun=All``), merge
patch, DELETE, pod logs and ``/version``. Every request is recorded, so tests can assert on
what went over the wire: the real ``oaas_lab.adapters.kube.Kube`` client talks to it through
the ``kubernetes`` package's own REST layer.

Workload status is not simulated by a controller; a test sets it (``set_ready``) or lets
``auto_ready`` mark every applied workload ready at once, as a healthy cluster would.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: Any = None


def _status(code: int, message: str) -> dict[str, Any]:
    reason = {404: "NotFound", 409: "Conflict", 422: "Invalid"}.get(code, "BadRequest")
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
            "reason": reason, "code": code}


def _merge(base: Any, patch: Any) -> Any:
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


def _matches(obj: dict[str, Any], selector: str) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


class FakeApiServer:
    """The store, the request log and the HTTP server around them."""

    def __init__(self, *, auto_ready: bool = True) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.requests: list[Request] = []
        self.logs: dict[tuple[str, str], str] = {}
        self.auto_ready = auto_ready
        self.execs: dict[tuple[str, str], tuple[int, str, str]] = {}
        """(namespace, pod) -> (exit code, stdout, stderr) of any command run there."""
        self.never_ready: set[str] = set()
        self._lock = threading.Lock()
        self._version = 0
        handler = self._handler()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={
            "poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> FakeApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def kubeconfig(self, path: Path) -> Path:
        """Write a kubeconfig that points at this server."""
        data = {
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        }
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return path

    # --- test helpers -------------------------------------------------------------------

    def writes(self) -> list[Request]:
        """The requests that would change the cluster (not dry runs)."""
        return [r for r in self.requests
                if r.method in ("PATCH", "POST", "PUT", "DELETE") and "dryRun" not in r.query]

    def put(self, path: str, obj: dict[str, Any]) -> None:
        with self._lock:
            self.objects[path] = copy.deepcopy(obj)

    def find(self, kind: str, name: str) -> tuple[str, dict[str, Any]]:
        for path, obj in self.objects.items():
            if obj.get("kind") == kind and obj["metadata"]["name"] == name:
                return path, obj
        raise KeyError(f"{kind}/{name}")

    def set_status(self, kind: str, name: str, status: dict[str, Any]) -> None:
        with self._lock:
            _, obj = self.find(kind, name)
            obj["status"] = status

    def add_pod(self, namespace: str, name: str, labels: dict[str, str],
                status: dict[str, Any], node: str = "node-1") -> None:
        self.put(f"/api/v1/namespaces/{namespace}/pods/{name}", {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"nodeName": node, "containers": [{"name": labels.get(
                "app.kubernetes.io/name", "main")}]},
            "status": status,
        })

    # --- the API ------------------------------------------------------------------------

    def _ready_status(self, obj: dict[str, Any]) -> dict[str, Any]:
        n = int(obj.get("spec", {}).get("replicas", 1))
        gen = int(obj["metadata"].get("generation", 1))
        if obj.get("kind") == "DaemonSet":
            return {"observedGeneration": gen, "desiredNumberScheduled": 2, "numberReady": 2,
                    "updatedNumberScheduled": 2}
        return {"observedGeneration": gen, "replicas": n, "readyReplicas": n,
                "updatedReplicas": n, "availableReplicas": n,
                "currentRevision": "r1", "updateRevision": "r1"}

    def _apply(self, path: str, body: dict[str, Any], dry_run: bool) -> dict[str, Any]:
        with self._lock:
            live = self.objects.get(path)
            obj = copy.deepcopy(body)
            meta = obj.setdefault("metadata", {})
            if live is None:
                meta["uid"] = f"uid-{len(self.objects) + 1}"
                meta["generation"] = 1
                meta["creationTimestamp"] = "2026-01-01T00:00:00Z"
            else:
                meta["uid"] = live["metadata"]["uid"]
                meta["creationTimestamp"] = live["metadata"]["creationTimestamp"]
                changed = live.get("spec") != obj.get("spec")
                meta["generation"] = live["metadata"]["generation"] + int(changed)
                if "status" in live:
                    obj["status"] = live["status"]
            meta["managedFields"] = [{"manager": "oaas-lab", "operation": "Apply"}]
            if dry_run:
                return obj
            self._version += 1
            meta["resourceVersion"] = str(self._version)
            workload = obj.get("kind") in ("StatefulSet", "Deployment", "DaemonSet")
            if self.auto_ready and workload and obj["metadata"]["name"] not in self.never_ready:
                obj["status"] = self._ready_status(obj)
            elif workload:
                obj["status"] = self._pod_status(obj)
            if obj.get("kind") == "Job" and obj["metadata"]["name"] not in self.never_ready:
                obj["status"] = {"succeeded": 1, "conditions": [
                    {"type": "Complete", "status": "True"}]}
            self.objects[path] = obj
            return copy.deepcopy(obj)

    def _pod_status(self, obj: dict[str, Any]) -> dict[str, Any]:
        """What a controller reports for the pods a test put in place."""
        match = obj["spec"]["selector"]["matchLabels"]
        ns = obj["metadata"]["namespace"]
        mine = [p for p in pods_of(self, ns)
                if all(p["metadata"]["labels"].get(k) == v for k, v in match.items())]
        ready = sum(1 for p in mine if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in p.get("status", {}).get("conditions", [])))
        status = self._ready_status(obj)
        status.update(readyReplicas=ready, availableReplicas=ready)
        return status

    def _list(self, path: str, query: dict[str, str]) -> list[dict[str, Any]]:
        collection = path.rstrip("/")
        head, _, plural = collection.rpartition("/")
        cluster_wide = "/namespaces/" not in collection
        out = []
        for p, obj in sorted(self.objects.items()):
            parent = p.rsplit("/", 1)[0]
            if parent != collection and not (
                cluster_wide and parent.startswith(head + "/namespaces/")
                and parent.endswith("/" + plural) and parent.count("/") == head.count("/") + 3
            ):
                continue
            if "labelSelector" in query and not _matches(obj, query["labelSelector"]):
                continue
            field = query.get("fieldSelector", "")
            if field.startswith("spec.nodeName=") and obj.get("spec", {}).get(
                    "nodeName") != field.split("=", 1)[1]:
                continue
            out.append(copy.deepcopy(obj))
        return out

    def _is_collection(self, path: str) -> bool:
        parts = path.strip("/").split("/")
        core = parts[0] == "api"
        rest = parts[2:] if core else parts[3:]
        if rest[:1] == ["namespaces"] and len(rest) >= 3:
            rest = rest[2:]
        return len(rest) == 1

    def handle(self, method: str, raw_path: str, body: bytes,
               content_type: str) -> tuple[int, Any]:
        split = urlsplit(raw_path)
        path = unquote(split.path)
        query = {k: v[0] for k, v in parse_qs(split.query).items()}
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        self.requests.append(Request(method, path, query, content_type, parsed))
        if path == "/version":
            return 200, {"gitVersion": "v1.31.0-fake"}
        if method == "GET" and path.endswith("/log"):
            ns, pod = path.split("/")[4], path.split("/")[6]
            text = self.logs.get((ns, pod))
            if text is None:
                return 404, _status(404, f'pods "{pod}" not found')
            tail = int(query.get("tailLines", "0") or 0)
            return 200, "\n".join(text.splitlines()[-tail:] if tail else text.splitlines())
        if method == "GET":
            if self._is_collection(path):
                return 200, {"kind": "List", "items": self._list(path, query)}
            obj = self.objects.get(path)
            if obj is None:
                return 404, _status(404, f"{path.split('/')[-1]} not found")
            return 200, copy.deepcopy(obj)
        if method == "PATCH":
            data = json.loads(body or b"{}")
            if content_type.startswith("application/apply-patch"):
                if query.get("fieldManager") != "oaas-lab":
                    return 422, _status(422, "fieldManager is required for apply patch")
                return 200, self._apply(path, data, query.get("dryRun") == "All")
            with self._lock:
                live = self.objects.get(path)
                if live is None:
                    return 404, _status(404, f"{path.split('/')[-1]} not found")
                merged = _merge(live, data)
                if merged.get("spec") != live.get("spec"):
                    merged["metadata"]["generation"] = live["metadata"]["generation"] + 1
                    if self.auto_ready and merged.get("kind") in ("StatefulSet", "Deployment"):
                        merged["status"] = self._ready_status(merged)
                self.objects[path] = merged
                return 200, copy.deepcopy(merged)
        if method == "DELETE":
            with self._lock:
                obj = self.objects.pop(path, None)
            if obj is None:
                return 404, _status(404, f"{path.split('/')[-1]} not found")
            return 200, {"kind": "Status", "status": "Success"}
        return 405, _status(405, "method not allowed")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            # one segment per response: without this, Nagle + delayed ACK cost 40 ms a request
            disable_nagle_algorithm = True
            # keep-alive, as the client's connection pool expects: no connect per request
            protocol_version = "HTTP/1.1"

            def _frame(self, payload: bytes, opcode: int = 0x2) -> None:
                head = bytes([0x80 | opcode])
                if len(payload) < 126:
                    head += bytes([len(payload)])
                else:
                    head += bytes([126]) + struct.pack("!H", len(payload))
                self.wfile.write(head + payload)

            def _exec(self) -> None:
                """The exec subresource over a websocket (channel protocol v4)."""
                split = urlsplit(self.path)
                parts = split.path.split("/")
                query = parse_qs(split.query)
                ns, pod = parts[4], parts[6]
                server.requests.append(Request("EXEC", split.path, {
                    "command": " ".join(query.get("command", [])),
                    "container": query.get("container", [""])[0]}, ""))
                key = self.headers["Sec-WebSocket-Key"]
                accept = base64.b64encode(hashlib.sha1(  # noqa: S324 -- RFC 6455 says SHA-1
                    (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
                self.send_response(101)
                self.send_header("Upgrade", "websocket")
                self.send_header("Connection", "Upgrade")
                self.send_header("Sec-WebSocket-Accept", accept)
                self.send_header("Sec-WebSocket-Protocol", "v4.channel.k8s.io")
                self.end_headers()
                rc, out, err = server.execs.get((ns, pod), (0, "", ""))
                if out:
                    self._frame(b"\x01" + out.encode())
                if err:
                    self._frame(b"\x02" + err.encode())
                status: dict[str, Any] = {"metadata": {}, "status": "Success"}
                if rc:
                    status = {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                              "details": {"causes": [{"reason": "ExitCode",
                                                      "message": str(rc)}]}}
                self._frame(b"\x03" + json.dumps(status).encode())
                self._frame(b"", opcode=0x8)
                self.close_connection = True

            def _serve(self) -> None:
                if self.headers.get("Upgrade", "").lower() == "websocket":
                    self._exec()
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                code, payload = server.handle(self.command, self.path, body,
                                              self.headers.get("Content-Type", ""))
                text = payload if isinstance(payload, str) else json.dumps(payload)
                data = text.encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain" if isinstance(payload, str)
                                 else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PATCH = do_DELETE = do_POST = do_PUT = _serve  # noqa: N815

            def log_message(self, *args: object) -> None:  # keep test output clean
                return

        return Handler


def pods_of(server: FakeApiServer, namespace: str) -> Iterator[dict[str, Any]]:
    for path, obj in server.objects.items():
        if path.startswith(f"/api/v1/namespaces/{namespace}/pods/"):
            yield obj
