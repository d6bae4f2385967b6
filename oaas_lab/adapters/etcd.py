"""etcd v3 over its JSON gRPC gateway: the only module speaking to etcd.

etcd 3.4 serves ``/v3/...`` as JSON; keys and values travel base64-encoded.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx

Error = httpx.HTTPError
"""Every transport failure (refused, timed out, reset)."""


class EtcdError(Exception):
    """etcd answered, but with an error (e.g. no leader, request timed out in raft)."""


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def _post(endpoint: str, path: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    resp = httpx.post(f"http://{endpoint}{path}", json=body, timeout=timeout)
    data: dict[str, Any] = resp.json() if resp.content else {}
    if resp.status_code != 200 or "error" in data:
        raise EtcdError(str(data.get("error") or data.get("message") or resp.status_code))
    return data


def put(endpoint: str, key: str, value: str, timeout: float = 2.0) -> int:
    """Write ``key``; returns the revision at which it was committed by a quorum."""
    data = _post(endpoint, "/v3/kv/put", {"key": _b64(key), "value": _b64(value)}, timeout)
    return int(data.get("header", {}).get("revision", 0))


def get(endpoint: str, key: str, timeout: float = 2.0, serializable: bool = False) -> str | None:
    """Read ``key`` (linearizable unless ``serializable``); None when it does not exist."""
    body: dict[str, Any] = {"key": _b64(key), "serializable": serializable}
    data = _post(endpoint, "/v3/kv/range", body, timeout)
    kvs = data.get("kvs") or []
    return base64.b64decode(kvs[0].get("value", "")).decode() if kvs else None


def get_prefix(endpoint: str, prefix: str, timeout: float = 5.0) -> dict[str, str]:
    """Every key under ``prefix`` with its value."""
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    body = {"key": _b64(prefix), "range_end": _b64(end)}
    data = _post(endpoint, "/v3/kv/range", body, timeout)
    return {
        base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", "")).decode()
        for kv in data.get("kvs") or []
    }


def status(endpoint: str, timeout: float = 2.0) -> dict[str, Any]:
    """The member's own status: ``header.member_id``, ``leader``, ``raftTerm`` ..."""
    return _post(endpoint, "/v3/maintenance/status", {}, timeout)


def members(endpoint: str, timeout: float = 2.0) -> list[dict[str, Any]]:
    """The cluster's member list as this member sees it."""
    data = _post(endpoint, "/v3/cluster/member/list", {}, timeout)
    result: list[dict[str, Any]] = data.get("members", [])
    return result


def health(endpoint: str, timeout: float = 2.0) -> bool:
    """``/health``: true when the member has a leader and can serve a quorum read."""
    resp = httpx.get(f"http://{endpoint}/health", timeout=timeout)
    data: dict[str, Any] = resp.json()
    return str(data.get("health")).lower() == "true"
