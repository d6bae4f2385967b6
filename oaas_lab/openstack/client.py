"""The one OpenStack client of the lab's own code: its users, tokens and the raw API calls that
readiness, probes and bootstrapping share.

Everything takes base URLs (``http://host:port``); which address and port a service has is the
component registry's business. openstacksdk (``oaas_lab.adapters.openstack``) is for what a user
does with the cloud; this module is for what the lab asks of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from oaas_lab.adapters import http
from oaas_lab.errors import LabError
from oaas_lab.openstack.config import DOMAIN, LabSecrets
from oaas_lab.secrets import Secret, SecretStore

ADMIN = "admin"
"""The lab's admin user, and its project."""
MEMBER_USER = "demo"
"""The lab's unprivileged user (role ``member`` on project ``demo``)."""
MEMBER_PROJECT = "demo"
MEMBER_SECRET = "keystone_demo"  # noqa: S105 -- the name of a secret, not its value

REQUEST_TIMEOUT = 10.0
"""Seconds one request may take before it counts as failed."""


@dataclass(frozen=True)
class Token:
    """What keystone said about a token it issued (the token itself is a ``Secret``)."""

    value: Secret
    user: str
    project: str
    roles: tuple[str, ...]
    catalogue: tuple[str, ...]
    """Service types in the token's catalogue."""


def admin_password(store: SecretStore) -> Secret:
    """The admin user's password from the lab's store."""
    return LabSecrets.from_store(store).admin


def token_body(user: str, password: Secret, project: str) -> dict[str, Any]:
    """The keystone v3 password-auth request scoped to ``project``."""
    return {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": DOMAIN}, "password": password.reveal()}}},
        "scope": {"project": {"name": project, "domain": {"name": DOMAIN}}},
    }}


def post_token(keystone: str, user: str, password: Secret, project: str,
               timeout: float = REQUEST_TIMEOUT) -> http.Reply:
    """``POST /v3/auth/tokens`` to ``keystone`` (a base URL); raises ``http.Error``."""
    return http.post_json(f"{keystone}/v3/auth/tokens", token_body(user, password, project),
                          timeout=timeout)


def issue_token(
    keystone: str, user: str, password: Secret, project: str, timeout: float = 10.0
) -> tuple[Secret | None, str]:
    """A token from ``keystone``, or ``None`` and why not (never raises)."""
    try:
        reply = post_token(keystone, user, password, project, timeout)
    except http.Error as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if reply.status != 201:
        return None, f"HTTP {reply.status}"
    return Secret(reply.headers["x-subject-token"]), "issued"


def request_token(keystone: str, user: str, password: Secret, project: str) -> Token:
    """A project-scoped token with what keystone said about it; ``LabError`` if refused."""
    try:
        reply = post_token(keystone, user, password, project)
    except http.Error as exc:
        raise LabError(f"keystone at {keystone}: {type(exc).__name__}",
                       hint="is keystone up? `oaas-lab status`") from None
    if reply.status != 201:
        raise LabError(f"keystone refused a token for {user!r}: HTTP {reply.status}",
                       hint="read the keystone logs (`oaas-lab logs keystone-0`)")
    body = reply.json()["token"]
    return Token(
        value=Secret(reply.headers["x-subject-token"]),
        user=body["user"]["name"], project=body["project"]["name"],
        roles=tuple(sorted(r["name"] for r in body.get("roles", []))),
        catalogue=tuple(sorted(s["type"] for s in body.get("catalog", []))),
    )


def get(url: str, token: Secret, timeout: float = 20.0) -> http.Reply:
    """``GET url`` with the token; raises ``http.Error``."""
    return http.get(url, headers={"X-Auth-Token": token.reveal()}, timeout=timeout)


def _listing(url: str, token: Secret, what: str) -> Any:  # noqa: ANN401 -- decoded JSON
    reply = get(url, token)
    if reply.status != 200:
        raise http.Error(f"{what}: HTTP {reply.status}")
    return reply.json()


def compute_services(nova: str, token: Secret) -> list[dict[str, Any]]:
    """nova's service list (binary, host, state, status)."""
    services: list[dict[str, Any]] = _listing(f"{nova}/v2.1/os-services", token,
                                              "os-services")["services"]
    return services


def hypervisors(nova: str, token: Secret) -> list[str]:
    """The hypervisor host names nova knows."""
    found = _listing(f"{nova}/v2.1/os-hypervisors", token, "os-hypervisors")["hypervisors"]
    return [h["hypervisor_hostname"] for h in found]


def network_agents(neutron: str, token: Secret) -> dict[str, bool]:
    """Host -> alive, of neutron's Open vSwitch agents."""
    agents = _listing(f"{neutron}/v2.0/agents", token, "agents")["agents"]
    return {a["host"]: bool(a["alive"]) for a in agents
            if a["agent_type"] == "Open vSwitch agent"}
