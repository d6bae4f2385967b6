"""What the OpenStack components share: where their APIs are, how each member is observed to
*work*, and the API-request writer a probe uses while an API pod is killed.

A port that accepts connections proves little: a member works when it answers a real request
(a token, an image list) or when nova reports its service up. Members are asked directly (their
pod address); tokens come from the keystone front. A member's observation is ``"ok"`` or why it
does not work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from oaas_lab import components
from oaas_lab.adapters import http
from oaas_lab.components.observing import verdict
from oaas_lab.components.spec import Component, K8sNeeds, OsWorkload, Spec, Writing
from oaas_lab.errors import LabError, UserError
from oaas_lab.kernel.lab import Lab, PodState
from oaas_lab.kernel.results import CheckResult
from oaas_lab.openstack import client
from oaas_lab.secrets import Secret, SecretStore

OK = "ok"
KEYSTONE = "keystone"
NOVA = "nova-api"
NEUTRON = "neutron-server"

Works = str
"""A member's observation: ``"ok"``, or why it does not work."""
Observer = Callable[[Lab, SecretStore], dict[str, Works]]
Judge = Callable[[Mapping[str, Works], int], CheckResult]

KOLLA_VENV = "/var/lib/kolla/venv"
STATE = "/var/lib/oaas"
"""Per-pod scratch state on Kubernetes (an emptyDir): locks, staging."""
TOOLBOX = "kolla-toolbox"
"""The image with the ``openstack`` client, used to register services in keystone."""


def api_url(lab: Lab, component: str) -> str:
    """Where clients reach ``component``: the lab's front for it."""
    return f"http://{lab.service_address(component)}:{components.by_name()[component].port}"


def member_url(lab: Lab, pod: str, component: str) -> str:
    """One member's own address."""
    return f"http://{lab.address(pod)}:{components.by_name()[component].port}"


def admin_token(lab: Lab, store: SecretStore) -> tuple[Secret | None, str]:
    """An admin token through the keystone front, or ``None`` and why not."""
    return client.issue_token(api_url(lab, KEYSTONE), client.ADMIN,
                              client.admin_password(store), client.ADMIN)


# --- the judge --------------------------------------------------------------------------------


def members_work(component: str) -> Judge:
    """The judge of an OpenStack component: every one of ``expected`` members works."""

    def judge(observed: Mapping[str, Works], expected: int) -> CheckResult:
        bad = {pod: reason for pod, reason in observed.items() if reason != OK}
        problems = [f"{p}: {w}" for p, w in sorted(bad.items())]
        if len(observed) != expected:
            problems.append(f"{len(observed)} members answered, expected {expected}")
        return verdict(component, problems, hint="read the pod's log (`oaas-lab logs POD`)",
                       ok=f"{expected} member(s) work", members=dict(observed))

    return judge


# --- observations -----------------------------------------------------------------------------


def _running(lab: Lab, component: str) -> tuple[list[str], dict[str, Works]]:
    """The running members, or every member with why it is not running."""
    pods = lab.members(component)
    down = {p.name: f"not running ({p.state.value})" for p in pods
            if p.state is not PodState.RUNNING}
    if down:
        return [], {p.name: down.get(p.name, "a peer is not running") for p in pods}
    return [p.name for p in pods], {}


def _running_with_token(
    lab: Lab, store: SecretStore, component: str
) -> tuple[list[str], Secret] | dict[str, Works]:
    pods, early = _running(lab, component)
    if early or not pods:
        return early
    token, reason = admin_token(lab, store)
    if token is None:
        return dict.fromkeys(pods, f"no admin token from keystone: {reason}")
    return pods, token


def token_observer(component: str) -> Observer:
    """Each member issues an admin token."""

    def observe(lab: Lab, store: SecretStore) -> dict[str, Works]:
        pods, early = _running(lab, component)
        if early:
            return early
        password = client.admin_password(store)
        seen = {}
        for pod in pods:
            token, reason = client.issue_token(member_url(lab, pod, component), client.ADMIN,
                                               password, client.ADMIN)
            seen[pod] = OK if token is not None else reason
        return seen

    return observe


def api_observer(component: str, path: str) -> Observer:
    """Each member answers ``path`` with an admin token."""

    def observe(lab: Lab, store: SecretStore) -> dict[str, Works]:
        ready = _running_with_token(lab, store, component)
        if isinstance(ready, dict):
            return ready
        pods, token = ready
        seen = {}
        for pod in pods:
            try:
                reply = client.get(member_url(lab, pod, component) + path, token)
                seen[pod] = OK if reply.status == 200 else f"HTTP {reply.status}"
            except http.Error as exc:
                seen[pod] = type(exc).__name__
        return seen

    return observe


def service_observer(component: str, hypervisor: bool = False) -> Observer:
    """nova reports the service ``component`` of every member's host up; with ``hypervisor``
    the host is also a registered hypervisor with a live network agent."""

    def observe(lab: Lab, store: SecretStore) -> dict[str, Works]:
        ready = _running_with_token(lab, store, component)
        if isinstance(ready, dict):
            return ready
        pods, token = ready
        nova = api_url(lab, NOVA)
        try:
            services = client.compute_services(nova, token)
            found = client.hypervisors(nova, token) if hypervisor else []
        except http.Error as exc:
            return dict.fromkeys(pods, f"nova API: {exc}")
        state = {s["host"]: s["state"] for s in services if s["binary"] == component}
        seen = {pod: OK if state.get(pod) == "up" else f"service {state.get(pod, 'absent')}"
                for pod in pods}
        if hypervisor:
            try:
                agents = client.network_agents(api_url(lab, NEUTRON), token)
            except http.Error as exc:
                return dict.fromkeys(pods, f"neutron API: {exc}")
            for pod in pods:
                if seen[pod] == OK and pod not in found:
                    seen[pod] = "hypervisor not registered"
                elif seen[pod] == OK and not agents.get(pod, False):
                    seen[pod] = "network agent not alive"
        return seen

    return observe


def page_observer(component: str, path: str, needle: str) -> Observer:
    """Each member serves ``path`` (no token) with ``needle`` in it."""

    def observe(lab: Lab, store: SecretStore) -> dict[str, Works]:
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
                seen[pod] = OK if needle in reply.text else f"{path} lacks {needle!r}"
        return seen

    return observe


# --- API requests as a probe writer -----------------------------------------------------------


class ApiRequests:
    """One request to a service's front per attempt; a non-2xx reply counts as failed.

    Requests change nothing, so there is nothing to read back: the figures that matter are
    the failed requests and the longest gap between successful ones. ``path`` empty: the
    request is a token (keystone).
    """

    def __init__(self, lab: Lab, store: SecretStore, component: str, path: str) -> None:
        self.component = component
        self.path = path
        self.name = f"{component}-requests"
        self.url = api_url(lab, component)
        self.keystone = api_url(lab, KEYSTONE)
        self._password = client.admin_password(store)
        self._token: Secret | None = None

    def _admin_token(self) -> Secret:
        if self._token is None:
            self._token = client.request_token(self.keystone, client.ADMIN, self._password,
                                               client.ADMIN).value
        return self._token

    def write(self, seq: int) -> None:
        """One request; raises on a refused connection, a timeout or an error status."""
        if not self.path:
            reply = client.post_token(self.url, client.ADMIN, self._password, client.ADMIN)
            expected = 201
        else:
            reply = client.get(self.url + self.path, self._admin_token(),
                               timeout=client.REQUEST_TIMEOUT)
            expected = 200
        if reply.status == 401:
            self._token = None
        if reply.status != expected:
            raise LabError(f"{self.component}: HTTP {reply.status}", hint="")

    def read_back(self) -> set[int]:
        """Requests leave nothing behind to read back."""
        raise UserError(f"{self.name} makes no writes to read back",
                        hint="use the failed-requests and gap figures")

    def close(self) -> None:
        """Nothing held open between requests."""


def api_requests(component: str, path: str = "") -> Callable[[Lab, SecretStore, Writing],
                                                              ApiRequests]:
    """The writer of a spec: requests to ``path`` of the component's front."""
    return lambda lab, store, _how: ApiRequests(lab, store, component, path)


# --- what the Kubernetes backend runs -----------------------------------------------------------


def wsgi(module: str, port: int) -> tuple[str, ...]:
    """uWSGI serving the service's own WSGI module (the eventlet servers are gone upstream);
    ``--die-on-term`` so a SIGTERM from the kubelet stops it."""
    return (f"{KOLLA_VENV}/bin/uwsgi", "--master", "--die-on-term", "--enable-threads",
            "--http-socket", f":{port}", "--processes", "2", "--module", module,
            "--lazy-apps", "--need-app")




def nova_worker(entry: Component) -> Spec[Works]:
    """The spec of a nova RPC worker (conductor, scheduler): it serves no port, so it works when
    nova reports its service up on each member's host; on Kubernetes it runs its own binary."""
    return Spec(
        entry=entry,
        observe=service_observer(entry.name),
        ready=members_work(entry.name),
        local="openstack:NovaServiceDriver",
        k8s=K8sNeeds(template="openstack.yaml.j2",
                     workload=OsWorkload("nova", entry.name, (entry.name,),
                                         files=("nova.conf",))),
    )
