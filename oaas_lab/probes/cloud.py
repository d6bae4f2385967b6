"""The OpenStack tier as a user sees it: tokens, servers, consoles, API requests under faults.

``Cloud`` is what one scenario does to the lab's cloud through its public APIs (the HAProxy
front): ask for tokens, boot servers from the lab's guest image and time them, read consoles,
and delete everything it created at the end. (The API-request writer a probe uses while an API
pod is killed belongs to the OpenStack components: ``oaas_lab.components.openstack_api``.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oaas_lab.adapters import browser, rfb
from oaas_lab.adapters import openstack as cloud
from oaas_lab.components.openstack_api import api_url
from oaas_lab.errors import LabError
from oaas_lab.kernel.lab import Lab
from oaas_lab.kernel.results import CheckResult, failed, passed
from oaas_lab.kernel.wait import until
from oaas_lab.openstack import resources
from oaas_lab.openstack.client import (
    ADMIN,
    MEMBER_PROJECT,
    MEMBER_SECRET,
    MEMBER_USER,
    Token,
    request_token,
)
from oaas_lab.openstack.config import DOMAIN, LabSecrets
from oaas_lab.secrets import SecretStore


@dataclass
class Cloud:
    """One scenario's use of the cloud; ``close`` deletes every server it created."""

    lab: Lab
    store: SecretStore
    servers: dict[str, float] = field(default_factory=dict)
    """Server id -> when it was asked for (monotonic)."""
    names: dict[str, str] = field(default_factory=dict)
    figures: dict[str, object] = field(default_factory=dict)
    _admin: cloud.Connection | None = None

    @property
    def keystone(self) -> str:
        """The keystone front's base URL."""
        return api_url(self.lab, "keystone")

    def admin_token(self) -> Token:
        """A token of the lab's admin on project admin."""
        return request_token(self.keystone, ADMIN, LabSecrets.from_store(self.store).admin,
                             ADMIN)

    def member_token(self) -> Token:
        """A token of the lab's member user on its project."""
        return request_token(self.keystone, MEMBER_USER, self.store.get(MEMBER_SECRET),
                             MEMBER_PROJECT)

    def admin(self) -> cloud.Connection:
        """An SDK connection as the admin."""
        if self._admin is None:
            self._admin = cloud.connect(auth={
                "auth_url": self.keystone + "/v3", "username": ADMIN,
                "password": LabSecrets.from_store(self.store).admin.reveal(),
                "project_name": ADMIN, "user_domain_name": DOMAIN,
                "project_domain_name": DOMAIN,
            })
        return self._admin

    def boot(self, name: str, network_id: str | None = None,
             fixed_ip: str | None = None, image: str = resources.GUEST_IMAGE) -> cloud.Server:
        """Ask for a server from the guest image (no NIC unless ``network_id``)."""
        conn = self.admin()
        try:
            image_id = cloud.find_image(conn, image)
            flavor_id = cloud.find_flavor(conn, resources.FLAVOR)
        except cloud.Error as exc:
            raise LabError(f"cannot look up image/flavor: {exc}", hint="`oaas-lab up`") from None
        if image_id is None or flavor_id is None:
            raise LabError(f"the lab has no image {image!r} or flavor {resources.FLAVOR!r}",
                           hint="run `oaas-lab up` (it uploads and creates them)")
        asked = time.monotonic()
        server = cloud.create_server(conn, name, image_id=image_id, flavor_id=flavor_id,
                                     network_id=network_id, fixed_ip=fixed_ip)
        self.servers[server.id] = asked
        self.names[server.id] = name
        return server

    def guest_address(self) -> str:
        """The address the network guest image configures on the lab's provider network."""
        any_pod = self.lab.members("nova-compute")[0].name
        return resources.network_guest_address(resources.lab_subnet(self.lab.address(any_pod)))

    def boot_on_network(self, name: str) -> cloud.Server:
        """A server on the lab's provider network with the address its guest configures."""
        try:
            network = cloud.find_network(self.admin(), resources.NETWORK)
        except cloud.Error as exc:
            raise LabError(f"cannot look up network {resources.NETWORK!r}: {exc}",
                           hint="is neutron up? `oaas-lab status`") from None
        if network is None:
            raise LabError(f"the lab has no network {resources.NETWORK!r}",
                           hint="run `oaas-lab up` (it creates it)")
        return self.boot(name, network_id=network, fixed_ip=self.guest_address(),
                         image=resources.NETWORK_GUEST_IMAGE)

    def ports(self, server_id: str) -> list[cloud.Port]:
        """The server's neutron ports."""
        return cloud.server_ports(self.admin(), server_id)

    def await_port_active(self, server_id: str, timeout: float) -> cloud.Port:
        """Poll until the server's port is ACTIVE (neutron saw the agent wire it)."""

        def active() -> CheckResult:
            ports = self.ports(server_id)
            if not ports:
                return failed("port", "the server has no port")
            if ports[0].vif_type == "binding_failed":
                return failed("port", "binding_failed: no live agent on the host could bind it")
            if ports[0].status != "ACTIVE":
                return failed("port", f"{ports[0].status} ({ports[0].vif_type})")
            return passed("port", "ACTIVE", port=ports[0])

        port = _wait(active, timeout, f"the port of {server_id} to be ACTIVE",
                     fatal=("binding_failed",)).evidence["port"]
        assert isinstance(port, cloud.Port)
        return port

    def from_pod(self, pod: str, argv: list[str], timeout: float, what: str) -> str:
        """Run ``argv`` in ``pod`` until it succeeds (bounded); its output."""

        def ran() -> CheckResult:
            done = self.lab.exec(pod, argv, timeout=15.0)
            if done.returncode == 0:
                return passed(what, "ok", out=done.stdout)
            return failed(what, f"exit {done.returncode}: {(done.stdout + done.stderr)[-300:]}")

        return str(_wait(ran, timeout, what).evidence["out"])

    def name_of(self, server_id: str) -> str:
        """The name a server of this scenario was created with."""
        return self.names[server_id]

    def since_asked(self, server_id: str) -> float:
        """Seconds since the server was asked for."""
        return time.monotonic() - self.servers[server_id]

    def await_status(self, server_id: str, status: str, timeout: float) -> cloud.Server:
        """Poll until the server has ``status``; an ERROR ends the wait with nova's fault."""

        def reached() -> CheckResult:
            now = cloud.get_server(self.admin(), server_id)
            if now is None:
                return failed("server", "gone")
            if now.status == status:
                return passed("server", status, server=now)
            if now.status == "ERROR":
                return failed("server", f"ERROR: {now.fault}")
            return failed("server", now.status)

        result = _wait(reached, timeout, f"server {server_id} to be {status}",
                       fatal=("ERROR", "gone"))
        server = result.evidence["server"]
        assert isinstance(server, cloud.Server)
        return server

    def await_console(self, server_id: str, text: str, timeout: float) -> str:
        """Poll the serial console log until it holds ``text``; the log."""

        def shown() -> CheckResult:
            log = cloud.console_log(self.admin(), server_id)
            if text in log:
                return passed("console", "shown", log=log)
            return failed("console", f"{len(log.splitlines())} lines, no {text!r} yet",
                          log=log[-2000:])

        return str(_wait(shown, timeout, f"{text!r} on the console").evidence["log"])

    def await_output(self, server_id: str, timeout: float) -> str:
        """Poll until the console log holds anything at all (the guest's first output)."""

        def some() -> CheckResult:
            log = cloud.console_log(self.admin(), server_id)
            return passed("console", "output", log=log) if log.strip() else failed(
                "console", "empty")

        return str(_wait(some, timeout, "the first console output").evidence["log"])

    def delete(self, server_id: str, timeout: float = 120.0) -> float:
        """Delete the server and wait until nova no longer knows it; seconds taken."""
        started = time.monotonic()
        cloud.delete_server(self.admin(), server_id)

        def gone() -> CheckResult:
            now = cloud.get_server(self.admin(), server_id)
            return passed("deleted", "gone") if now is None else failed("deleted", now.status)

        _wait(gone, timeout, f"server {server_id} to be deleted")
        self.servers.pop(server_id, None)
        return time.monotonic() - started

    def remote_console(self, server_id: str) -> str:
        """The server's noVNC console URL (with its one-time token)."""
        return cloud.remote_console_url(self.admin(), server_id)

    def rfb_handshake(self, console_url: str) -> rfb.RfbSession:
        """Open the console's websocket through the proxy and complete the RFB handshake."""
        return rfb.rfb_handshake(console_url, timeout=30.0)

    def dashboard(self, page: str, out: Path) -> browser.DashboardVisit:
        """Log into horizon (through its front) as the admin, open ``page``, screenshot it."""
        return browser.dashboard_screenshot(
            api_url(self.lab, "horizon"), ADMIN, LabSecrets.from_store(self.store).admin,
            page, out, timeout=180.0,
        )

    def close(self) -> None:
        """Delete what this scenario created (bounded), then drop the connection."""
        for server_id in list(self.servers):
            try:
                self.delete(server_id, timeout=120.0)
            except (LabError, *cloud.Error):
                continue  # the lab's `down` removes the rest with the compute pod
        self._admin = None


def _wait(check: Any, timeout: float, what: str,  # noqa: ANN401 -- a CheckResult callable
          fatal: tuple[str, ...] = ()) -> CheckResult:
    def guarded() -> CheckResult:
        try:
            result: CheckResult = check()
        except cloud.Error as exc:
            return failed(what, f"API error: {str(exc).splitlines()[0] if str(exc) else exc}")
        return result

    result, waited = until(guarded, timeout=timeout, interval=1.0,
                           fatal=lambda r: r.detail.startswith(fatal) if fatal else False)
    if not result.ok:
        raise LabError(f"waited {waited:.0f}s (of {timeout:.0f}s) for {what}: {result.detail}",
                       hint="read the nova-compute log (`oaas-lab logs nova-compute-0`)")
    return result
