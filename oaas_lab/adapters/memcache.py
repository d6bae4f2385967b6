"""memcached text protocol: the only module using pymemcache."""

from __future__ import annotations

from pymemcache.client.base import Client

Error = (OSError, Exception)


def stats(host: str, port: int = 11211, timeout: float = 2.0) -> dict[str, str]:
    """The server's ``stats`` (uptime, curr_connections ...)."""
    client = Client((host, port), connect_timeout=timeout, timeout=timeout)
    try:
        raw = client.stats()
    finally:
        client.close()
    return {
        (k.decode() if isinstance(k, bytes) else str(k)): (
            v.decode() if isinstance(v, bytes) else str(v)
        )
        for k, v in raw.items()
    }


def roundtrip(host: str, key: str, value: str, port: int = 11211, timeout: float = 2.0) -> bool:
    """Set then get ``key``; true when the value came back."""
    client = Client((host, port), connect_timeout=timeout, timeout=timeout)
    try:
        client.set(key, value.encode(), expire=60)
        got = client.get(key)
    finally:
        client.close()
    return bool(got == value.encode())
