"""Steps about the OpenStack tier: tokens, servers, consoles, API requests under faults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_bdd import given, parsers, then, when

from oaas_lab.adapters.browser import DashboardVisit
from oaas_lab.kernel.lab import Lab
from oaas_lab.openstack.client import Token
from oaas_lab.openstack.guest import MARKER
from oaas_lab.probes import Faults, Measurements
from oaas_lab.probes.cloud import Cloud
from oaas_lab.reports import evidence
from oaas_lab.reports.plugin import attachment
from oaas_lab.secrets import SecretStore

BOOT_TIMEOUT = 240.0


@when("the admin asks keystone for a token", target_fixture="token")
def admin_token(cloud: Cloud) -> Token:
    return cloud.admin_token()


@when("the member user asks keystone for a token", target_fixture="token")
def member_token(cloud: Cloud) -> Token:
    return cloud.member_token()


@then(parsers.parse('the token carries the role "{role}" on project "{project}"'))
def token_role(role: str, project: str, token: Token) -> None:
    assert token.project == project, f"token scoped to {token.project!r}, not {project!r}"
    assert role in token.roles, f"token of {token.user!r} has roles {token.roles}"


@then(parsers.parse('the token does not carry the role "{role}"'))
def token_lacks_role(role: str, token: Token) -> None:
    assert role not in token.roles, f"token of {token.user!r} has roles {token.roles}"


@then(parsers.parse("the token's catalogue lists {services}"))
def token_catalogue(services: str, token: Token) -> None:
    wanted = {s.strip() for s in services.replace(" and ", ",").split(",") if s.strip()}
    missing = wanted - set(token.catalogue)
    assert not missing, f"catalogue {token.catalogue} lacks {sorted(missing)}"


@then("no secret of the lab is in the log of any pod")
def no_secret_in_logs(lab: Lab, secrets: SecretStore) -> None:
    result = evidence.no_secret_in_logs(lab, secrets)
    assert result.ok, str(result)


@given(parsers.parse("a client sends requests to {component} continuously"))
def client_requests(component: str, measurements: Measurements) -> None:
    measurements.start(component)


@then(parsers.parse("the client's requests to {component} go on within {seconds:d} seconds"))
def requests_go_on(component: str, seconds: int, measurements: Measurements) -> None:
    result = measurements.writes_resume(component, seconds)
    assert result.ok, str(result)


@then(parsers.parse("{component} works on every member again within {seconds:d} seconds"))
def works_again(component: str, seconds: int, measurements: Measurements,
                faults: Faults) -> None:
    result = measurements.works_again(component, seconds, since_fault=faults.since_last())
    assert result.ok, str(result)


@then(parsers.parse("at most {count:d} requests to {component} failed"))
def failed_at_most(count: int, component: str, measurements: Measurements) -> None:
    figures = measurements.stop(component)
    assert figures.attempts > 0, f"no request to {component} was sent"
    assert figures.failed <= count, (
        f"{figures.failed} of {figures.attempts} requests to {component} failed "
        f"(longest gap {figures.longest_gap:.1f}s): {figures.errors}"
    )


@when("a server is created from the lab's guest image", target_fixture="server_id")
def server_created(cloud: Cloud, request: pytest.FixtureRequest) -> str:
    return cloud.boot(f"oaas-{request.node.name[:40]}").id


@given("a server from the lab's guest image is ACTIVE", target_fixture="server_id")
def server_active(cloud: Cloud, request: pytest.FixtureRequest) -> str:
    server = cloud.boot(f"oaas-{request.node.name[:40]}")
    cloud.await_status(server.id, "ACTIVE", BOOT_TIMEOUT)
    return server.id


@then(parsers.parse("the server is ACTIVE within {seconds:d} seconds"))
def is_active(seconds: int, server_id: str, cloud: Cloud) -> None:
    server = cloud.await_status(server_id, "ACTIVE", seconds)
    cloud.figures["server ACTIVE after s"] = round(cloud.since_asked(server_id), 1)
    cloud.figures["compute host"] = server.host


@then(parsers.parse(
    "its console log shows the guest reached userspace within {seconds:d} seconds"))
def console_shows_userspace(seconds: int, server_id: str, cloud: Cloud) -> None:
    cloud.await_output(server_id, seconds)
    cloud.figures["first guest output after s"] = round(cloud.since_asked(server_id), 1)
    cloud.await_console(server_id, MARKER, seconds)
    cloud.figures["guest userspace after s"] = round(cloud.since_asked(server_id), 1)


@when("the server is deleted", target_fixture="deleted_in")
def server_deleted(server_id: str, cloud: Cloud) -> float:
    return cloud.delete(server_id)


@then(parsers.parse("the server is gone within {seconds:d} seconds"))
def server_gone(seconds: int, deleted_in: float, cloud: Cloud) -> None:
    cloud.figures["server deleted in s"] = round(deleted_in, 1)
    assert deleted_in <= seconds, f"deleting took {deleted_in:.1f}s"


@then("the serial console log shows the guest reached userspace")
def serial_console(server_id: str, cloud: Cloud) -> None:
    cloud.await_console(server_id, MARKER, BOOT_TIMEOUT)


@when("the operator asks nova for the server's noVNC console", target_fixture="console_url")
def novnc_console(server_id: str, cloud: Cloud) -> str:
    return cloud.remote_console(server_id)


@then("the console websocket through the proxy completes the RFB handshake")
def rfb_handshake(console_url: str, cloud: Cloud) -> None:
    session = cloud.rfb_handshake(console_url)
    assert session.width > 0, session
    assert session.height > 0, session
    cloud.figures["RFB handshake s"] = round(session.seconds, 2)
    cloud.figures["RFB server"] = session.server_version
    cloud.figures["framebuffer"] = f"{session.width}x{session.height} {session.name!r}"


@when("the admin logs into the dashboard and opens the instances page",
      target_fixture="visit")
def dashboard_visit(cloud: Cloud, tmp_path: Path, request: pytest.FixtureRequest) -> DashboardVisit:
    visit = cloud.dashboard("/project/instances/", tmp_path / "instances.png")
    request.node.user_properties.append(attachment("horizon: instances page", visit.screenshot))
    cloud.figures["dashboard login s"] = round(visit.login_seconds, 1)
    cloud.figures["dashboard visit s"] = round(visit.seconds, 1)
    return visit


@then("the instances page lists the server")
def page_lists_server(visit: DashboardVisit, server_id: str, cloud: Cloud) -> None:
    name = cloud.name_of(server_id)
    assert visit.table_id == "instances", f"no instances table on {visit.url}: {visit.excerpt}"
    assert name in visit.names, f"{name!r} not among {visit.names} on {visit.url}"


@when("a server is created on the lab network with the address its guest configures",
      target_fixture="server_id")
def server_on_network(cloud: Cloud, request: pytest.FixtureRequest) -> str:
    return cloud.boot_on_network(f"oaas-{request.node.name[:40]}").id


@then("its port is ACTIVE and bound to its compute host by the Open vSwitch agent")
def port_bound(server_id: str, cloud: Cloud) -> None:
    port = cloud.await_port_active(server_id, 120.0)
    server_host = cloud.figures.get("compute host")
    assert port.vif_type == "ovs", f"port bound as {port.vif_type!r}"
    assert port.host == server_host, f"port bound on {port.host!r}, server on {server_host!r}"
    assert cloud.guest_address() in port.addresses, port.addresses
    cloud.figures["port"] = f"{port.status} {port.vif_type} on {port.host} {port.addresses}"


@then(parsers.parse("the guest answers ping from pod {pod} within {seconds:d} seconds"))
def guest_pings(pod: str, seconds: int, server_id: str, cloud: Cloud) -> None:
    address = cloud.guest_address()
    cloud.from_pod(pod, ["ping", "-c", "1", "-W", "2", address], seconds,
                   f"ping {address} from {pod}")
    cloud.figures["first ping reply after s"] = round(cloud.since_asked(server_id), 1)
    out = cloud.from_pod(pod, ["ping", "-c", "5", "-i", "0.2", "-W", "2", address], 30,
                         f"ping {address} from {pod}")
    cloud.figures["ping"] = out.strip().splitlines()[-1]


@then(parsers.parse("the guest serves its web page to pod {pod}"))
def guest_serves(pod: str, cloud: Cloud) -> None:
    address = cloud.guest_address()
    page = cloud.from_pod(pod, ["curl", "-sS", "--max-time", "5", f"http://{address}/"], 60,
                          f"http://{address}/ from {pod}")
    assert "oaas-lab guest" in page, page[:200]
