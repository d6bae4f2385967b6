"""Readiness of the OpenStack tier: each service *works*, on every member.

A port that accepts connections proves little: keystone is ready when each member issues a
token, glance when each member lists images with it, nova's conductor and scheduler when the
API reports them up, nova-compute when its hypervisor is registered, neutron when each member
lists networks, horizon when each member serves its login form. Members are asked directly
(their pod address), the shared front (HAProxy) only where a service is reached through it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from oaas_lab import catalogue
from oaas_lab.adapters import http
from oaas_lab.backends.base import Lab, PodState
from oaas_lab.checks import CheckResult, failed, passed
from oaas_lab.openstack.config import DOMAIN, LabSecrets
from oaas_lab.secrets import Secret, SecretStore

ADMIN = "admin"
MEMBER_USER = "demo"
"""The lab's unprivileged user (role ``member`` on project ``demo``)."""
MEMBER_PROJECT = "demo"
MEMBER_SECRET = "keystone_demo"  # noqa: S105 -- the name of a secret, not its value

API_PATHS = {
    "keystone": "/v3",
    "glance": "/v2/images",
    "placement": "/resource_providers",
    "nova-api": "/v2.1/flavors",
    "neutron-server": "/v2.0/networks",
}
"""What each API member must answer (with a token) to count as working."""


def port(component: str) -> int:
    """The component's main port from the catalogue (its first)."""
    return next(iter(catalogue.by_name()[component].ports.values()))


def api_url(lab: Lab, component: str) -> str:
    """Where clients reach ``component``: the lab's front for it."""
    return f"http://{lab.service_address(component)}:{port(component)}"


def member_url(lab: Lab, pod: str, component: str) -> str:
    """One member's own address."""
    return f"http://{lab.address(pod)}:{port(component)}"


def token_body(user: str, password: Secret, project: str) -> dict[str, Any]:
    """The keystone v3 password-auth request scoped to ``project``."""
    return {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": DOMAIN}, "password": password.reveal()}}},
        "scope": {"project": {"name": project, "domain": {"name": DOMAIN}}},
    }}


def issue_token(
    keystone: str, user: str, password: Secret, project: str, timeout: float = 10.0
) -> tuple[Secret | None, str]:
    """A token from ``keystone`` (a base URL), or ``None`` and why not."""
    try:
        reply = http.post_json(f"{keystone}/v3/auth/tokens",
                               token_body(user, password, project), timeout=timeout)
    except http.Error as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if reply.status != 201:
        return None, f"HTTP {reply.status}"
    return Secret(reply.headers["x-subject-token"]), "issued"


def admin_token(lab: Lab, secrets: SecretStore) -> tuple[Secret | None, str]:
    """An admin token through the keystone front."""
    return issue_token(api_url(lab, "keystone"), ADMIN, LabSecrets.from_store(secrets).admin,
                       ADMIN)


def _running(lab: Lab, component: str) -> tuple[list[str], CheckResult | None]:
    pods = lab.members(component)
    if not pods:
        return [], failed(component, "no members", hint="run `oaas-lab up`")
    down = [f"{p.name} {p.state.value}" for p in pods if p.state is not PodState.RUNNING]
    if down:
        return [], failed(component, f"not running: {', '.join(down)}",
                          hint=f"read {lab.log_path(pods[0].name)}")
    return [p.name for p in pods], None


def _running_with_token(
    lab: Lab, secrets: SecretStore, component: str
) -> tuple[list[str], Secret] | CheckResult:
    """The running members of ``component`` and an admin token, or why the check cannot go on."""
    pods, early = _running(lab, component)
    if early:
        return early
    token, why = admin_token(lab, secrets)
    if token is None:
        return failed(component, f"no admin token from keystone: {why}",
                      hint="keystone must be ready first")
    return pods, token


def _judge(component: str, seen: Mapping[str, str]) -> CheckResult:
    bad = {pod: why for pod, why in seen.items() if why != "ok"}
    if bad:
        return failed(component, "; ".join(f"{p}: {w}" for p, w in sorted(bad.items())),
                      hint="read the pod's log (`oaas-lab logs POD`)", members=dict(seen))
    return passed(component, f"{len(seen)} member(s) work", members=dict(seen))


def check_keystone(lab: Lab, secrets: SecretStore) -> CheckResult:
    """Every keystone member issues an admin token."""
    pods, early = _running(lab, "keystone")
    if early:
        return early
    password = LabSecrets.from_store(secrets).admin
    seen = {}
    for pod in pods:
        token, why = issue_token(member_url(lab, pod, "keystone"), ADMIN, password, ADMIN)
        seen[pod] = "ok" if token is not None else why
    return _judge("keystone", seen)


def _api_check(component: str) -> Callable[[Lab, SecretStore], CheckResult]:
    def check(lab: Lab, secrets: SecretStore) -> CheckResult:
        ready = _running_with_token(lab, secrets, component)
        if isinstance(ready, CheckResult):
            return ready
        pods, token = ready
        seen = {}
        for pod in pods:
            try:
                reply = http.get(member_url(lab, pod, component) + API_PATHS[component],
                                 headers={"X-Auth-Token": token.reveal()}, timeout=20.0)
                seen[pod] = "ok" if reply.status == 200 else f"HTTP {reply.status}"
            except http.Error as exc:
                seen[pod] = type(exc).__name__
        return _judge(component, seen)

    check.__doc__ = f"Every {component} member answers {API_PATHS[component]} with a token."
    return check


def compute_services(lab: Lab, token: Secret) -> list[dict[str, Any]]:
    """nova's service list (binary, host, state, status) through the API front."""
    reply = http.get(f"{api_url(lab, 'nova-api')}/v2.1/os-services",
                     headers={"X-Auth-Token": token.reveal()}, timeout=20.0)
    if reply.status != 200:
        raise http.Error(f"os-services: HTTP {reply.status}")
    services: list[dict[str, Any]] = reply.json()["services"]
    return services


def hypervisors(lab: Lab, token: Secret) -> list[str]:
    """The hypervisor host names nova knows."""
    reply = http.get(f"{api_url(lab, 'nova-api')}/v2.1/os-hypervisors",
                     headers={"X-Auth-Token": token.reveal()}, timeout=20.0)
    if reply.status != 200:
        raise http.Error(f"os-hypervisors: HTTP {reply.status}")
    return [h["hypervisor_hostname"] for h in reply.json()["hypervisors"]]


def network_agents(lab: Lab, token: Secret) -> dict[str, bool]:
    """Host -> alive, of neutron's Open vSwitch agents."""
    reply = http.get(f"{api_url(lab, 'neutron-server')}/v2.0/agents",
                     headers={"X-Auth-Token": token.reveal()}, timeout=20.0)
    if reply.status != 200:
        raise http.Error(f"agents: HTTP {reply.status}")
    return {a["host"]: bool(a["alive"]) for a in reply.json()["agents"]
            if a["agent_type"] == "Open vSwitch agent"}


def _service_check(component: str) -> Callable[[Lab, SecretStore], CheckResult]:
    """nova reports the service ``component`` of every member's host up."""

    def check(lab: Lab, secrets: SecretStore) -> CheckResult:
        ready = _running_with_token(lab, secrets, component)
        if isinstance(ready, CheckResult):
            return ready
        pods, token = ready
        try:
            services = compute_services(lab, token)
            found = hypervisors(lab, token) if component == "nova-compute" else []
        except http.Error as exc:
            return failed(component, f"nova API: {exc}", hint="nova-api must be ready first")
        state = {s["host"]: s["state"] for s in services if s["binary"] == component}
        seen = {pod: "ok" if state.get(pod) == "up" else f"service {state.get(pod, 'absent')}"
                for pod in pods}
        if component == "nova-compute":
            try:
                agents = network_agents(lab, token)
            except http.Error as exc:
                return failed(component, f"neutron API: {exc}",
                              hint="neutron-server must be ready first")
            for pod in pods:
                if seen[pod] == "ok" and pod not in found:
                    seen[pod] = "hypervisor not registered"
                elif seen[pod] == "ok" and not agents.get(pod, False):
                    seen[pod] = "network agent not alive"
        return _judge(component, seen)

    check.__doc__ = f"nova reports {component} up on every member's host."
    return check


def check_novncproxy(lab: Lab, secrets: SecretStore) -> CheckResult:
    """Every noVNC proxy serves the console page (its websocket shares the port)."""
    return _page_check(lab, "nova-novncproxy", "/vnc_lite.html", "noVNC")


def check_horizon(lab: Lab, secrets: SecretStore) -> CheckResult:
    """Every horizon member serves the login form."""
    return _page_check(lab, "horizon", "/auth/login/", "csrfmiddlewaretoken")


def _page_check(lab: Lab, component: str, path: str, needle: str) -> CheckResult:
    pods, early = _running(lab, component)
    if early:
        return early
    seen = {}
    for pod in pods:
        try:
            reply = http.get(member_url(lab, pod, component) + path, timeout=20.0)
        except http.Error as exc:
            seen[pod] = type(exc).__name__
            continue
        if reply.status != 200:
            seen[pod] = f"HTTP {reply.status}"
        else:
            seen[pod] = "ok" if needle in reply.text else f"{path} lacks {needle!r}"
    return _judge(component, seen)


CHECKS: dict[str, Callable[[Lab, SecretStore], CheckResult]] = {
    "keystone": check_keystone,
    "glance": _api_check("glance"),
    "placement": _api_check("placement"),
    "nova-api": _api_check("nova-api"),
    "nova-conductor": _service_check("nova-conductor"),
    "nova-scheduler": _service_check("nova-scheduler"),
    "nova-novncproxy": check_novncproxy,
    "nova-compute": _service_check("nova-compute"),
    "neutron-server": _api_check("neutron-server"),
    "horizon": check_horizon,
}
"""Readiness check by the catalogue's ``readiness`` name (the OpenStack tier)."""


def no_secret_in_logs(lab: Lab, secrets: SecretStore, lines: int = 200_000) -> CheckResult:
    """No value of the lab's secret store appears in the log of any pod of any component."""
    values = [v for v in secrets.values() if len(v) >= 16]
    if not values:
        return failed("secrets", "the lab has no secrets yet", hint="run `oaas-lab up`")
    leaks, read = [], 0
    for component in catalogue.CATALOGUE:
        for pod in lab.members(component.name):
            text = lab.logs(pod.name, lines=lines)
            read += 1
            if any(v in text for v in values):
                leaks.append(pod.name)
    if leaks:
        return failed("secrets", f"a secret is in the log of {', '.join(leaks)}",
                      hint="find what prints it and mask it")
    return passed("secrets", f"{len(values)} secrets, none in the logs of {read} pods")
