"""Plain HTTP to the lab's APIs (httpx): version documents, tokens, pages.

The readiness checks and probes of the OpenStack tier ask each member directly, under the SDK,
so that "keystone works" means "every keystone pod issues a token", not "some pod behind the
front does". Failures are ``Error``; a reply of any status is a ``Reply``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

Error = httpx.HTTPError


@dataclass(frozen=True)
class Reply:
    """One HTTP reply: status, headers (lower-case names) and body text."""

    status: int
    text: str = field(repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    def json(self) -> Any:  # noqa: ANN401 -- a JSON document of any shape
        """The body as JSON."""
        import json

        return json.loads(self.text)


def _reply(resp: httpx.Response) -> Reply:
    return Reply(resp.status_code, resp.text, {k.lower(): v for k, v in resp.headers.items()})


def get(url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 10.0) -> Reply:
    """``GET url`` (redirects not followed)."""
    return _reply(httpx.get(url, headers=dict(headers or {}), timeout=timeout))


def post_json(
    url: str, body: Mapping[str, Any], *, headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> Reply:
    """``POST url`` with a JSON body."""
    return _reply(httpx.post(url, json=dict(body), headers=dict(headers or {}), timeout=timeout))
