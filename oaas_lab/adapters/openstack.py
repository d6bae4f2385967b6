"""OpenStack APIs through openstacksdk: the only module importing ``openstack``/``keystoneauth1``.

Calls return small frozen records (``Image``, ``Server`` ...) instead of SDK resources, so the
rest of oaas-lab depends on this module's surface, not on the SDK's. Nothing here waits in a
loop: callers poll ``get_server`` & co. through ``oaas_lab.kernel.wait``. A failed call
raises one of ``Error`` (the SDK's and keystoneauth's exception bases).

The ``ensure_*`` calls are idempotent: they find the object by name first and create it only
when it is missing, so a second ``up`` of a lab changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keystoneauth1.exceptions
import openstack.config
import openstack.exceptions
from openstack.connection import Connection
from openstack.identity.v3 import _proxy as identity_v3

from oaas_lab.secrets import Secret

__all__ = [
    "KNOWN_PROPERTIES",
    "ComputeService",
    "Connection",
    "Error",
    "Image",
    "NotFound",
    "Port",
    "Server",
    "compute_services",
    "connect",
    "console_log",
    "create_server",
    "delete_image",
    "delete_server",
    "ensure_endpoint",
    "ensure_flat_network",
    "ensure_flavor",
    "ensure_project",
    "ensure_service_user",
    "find_flavor",
    "find_image",
    "find_network",
    "get_server",
    "hypervisors",
    "issue_token",
    "list_images",
    "network_agents",
    "remote_console_url",
    "server_ports",
    "upload_image",
]

Error = (openstack.exceptions.SDKException, keystoneauth1.exceptions.ClientException)
"""Every failure of a call: ``except Error`` catches API errors, refused connections, 401s."""

NotFound = openstack.exceptions.NotFoundException


@dataclass(frozen=True)
class Image:
    """A glance image."""

    id: str
    name: str
    status: str
    disk_format: str
    size: int
    checksum: str = ""
    properties: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Server:
    """A nova server, as the scenarios look at it."""

    id: str
    name: str
    status: str
    addresses: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    fault: str = ""
    host: str = ""


@dataclass(frozen=True)
class Port:
    """A neutron port as the network scenarios look at it."""

    id: str
    status: str
    host: str
    """``binding:host_id``: the compute host the port is bound on."""
    vif_type: str
    """``binding:vif_type``: ``ovs`` when the Open vSwitch agent bound it, ``binding_failed``
    when no mechanism could."""
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class ComputeService:
    """One nova service (``nova-compute``, ``nova-conductor`` ...) on one host."""

    binary: str
    host: str
    state: str
    status: str


def connect(
    cloud: str = "oaas-lab",
    *,
    clouds_file: Path | None = None,
    auth: Mapping[str, str] | None = None,
    region: str = "RegionOne",
    timeout: float = 30.0,
) -> Connection:
    """A connection to ``cloud`` from ``clouds_file``, or from an ``auth`` mapping.

    ``auth`` holds keystoneauth password-plugin fields (``auth_url``, ``username``,
    ``password``, ``project_name``, ``user_domain_name``, ``project_domain_name``). Nothing is
    sent before the first call.
    """
    if auth is not None:
        return Connection(
            auth=dict(auth), auth_type="password", region_name=region,
            identity_api_version="3", api_timeout=timeout,
        )
    files = [str(clouds_file)] if clouds_file is not None else None
    region_config = openstack.config.OpenStackConfig(config_files=files).get_one(
        cloud=cloud, region_name=region, api_timeout=timeout
    )
    return Connection(config=region_config)


def issue_token(conn: Connection) -> Secret:
    """A fresh token (a credential, hence a ``Secret``)."""
    return Secret(conn.authorize())


# --- images ------------------------------------------------------------------------------------


# Image properties the SDK turns into attributes instead of leaving them in ``properties``.
KNOWN_PROPERTIES = ("kernel_id", "ramdisk_id", "os_command_line", "hw_vif_model", "hw_disk_bus")


def _image(raw: Any) -> Image:  # noqa: ANN401 -- an SDK resource, converted here
    props = dict(raw.properties or {})
    for name in KNOWN_PROPERTIES:
        value = getattr(raw, name, None)
        if value is not None:
            props.setdefault(name, value)
    return Image(
        id=str(raw.id), name=str(raw.name), status=str(raw.status),
        disk_format=str(raw.disk_format or ""), size=int(raw.size or 0),
        checksum=str(raw.checksum or ""),
        properties={str(k): str(v) for k, v in props.items()},
    )


def list_images(conn: Connection) -> list[Image]:
    """Every image the caller can see."""
    return [_image(raw) for raw in conn.image.images()]


def upload_image(
    conn: Connection,
    name: str,
    path: Path,
    *,
    disk_format: str,
    container_format: str = "bare",
    properties: Mapping[str, str] | None = None,
) -> Image:
    """Create image ``name`` from the file at ``path`` (or return the active one of that name)."""
    existing = conn.image.find_image(name)
    if existing is not None and existing.status == "active":
        return _image(existing)
    raw = conn.image.create_image(
        name=name, filename=str(path), disk_format=disk_format,
        container_format=container_format, meta=dict(properties or {}), visibility="public",
    )
    return _image(conn.image.get_image(raw.id))


def delete_image(conn: Connection, image_id: str) -> None:
    """Delete an image; a missing one is fine."""
    conn.image.delete_image(image_id, ignore_missing=True)


# --- servers -----------------------------------------------------------------------------------


def _server(raw: Any) -> Server:  # noqa: ANN401 -- an SDK resource, converted here
    addresses = {
        str(net): tuple(str(a["addr"]) for a in addrs)
        for net, addrs in (raw.addresses or {}).items()
    }
    fault = raw.fault or {}
    return Server(
        id=str(raw.id), name=str(raw.name), status=str(raw.status), addresses=addresses,
        fault=str(fault.get("message", "")) if isinstance(fault, dict) else str(fault),
        host=str(raw.compute_host or ""),
    )


def create_server(
    conn: Connection,
    name: str,
    *,
    image_id: str,
    flavor_id: str,
    network_id: str | None,
    fixed_ip: str | None = None,
) -> Server:
    """Ask nova for a server; it starts in BUILD (poll ``get_server`` for ACTIVE).

    ``network_id=None`` asks for no network at all (a boot test without neutron).
    """
    networks: str | list[dict[str, str]] = "none"
    if network_id is not None:
        nic = {"uuid": network_id}
        if fixed_ip:
            nic["fixed_ip"] = fixed_ip
        networks = [nic]
    raw = conn.compute.create_server(
        name=name, image_id=image_id, flavor_id=flavor_id, networks=networks
    )
    return _server(raw)


def get_server(conn: Connection, server_id: str) -> Server | None:
    """The server now, or ``None`` once it is gone."""
    try:
        return _server(conn.compute.get_server(server_id))
    except NotFound:
        return None


def delete_server(conn: Connection, server_id: str) -> None:
    """Ask nova to delete a server (poll ``get_server`` for ``None``); a missing one is fine."""
    conn.compute.delete_server(server_id, ignore_missing=True)


def console_log(conn: Connection, server_id: str, lines: int | None = None) -> str:
    """The server's serial console log (the last ``lines`` lines, or all of it)."""
    reply = conn.compute.get_server_console_output(server_id, length=lines)
    return str(reply.get("output", ""))


def remote_console_url(conn: Connection, server_id: str, kind: str = "novnc") -> str:
    """A URL of the server's remote console (noVNC by default), with its one-time token."""
    reply = conn.compute.create_console(server_id, kind)
    if not reply or not reply.get("url"):
        raise openstack.exceptions.SDKException(f"nova returned no {kind} console URL")
    return str(reply["url"])


def server_ports(conn: Connection, server_id: str) -> list[Port]:
    """The neutron ports of a server."""
    return [
        Port(id=str(p.id), status=str(p.status), host=str(p.binding_host_id or ""),
             vif_type=str(p.binding_vif_type or ""),
             addresses=tuple(str(ip["ip_address"]) for ip in p.fixed_ips or []))
        for p in conn.network.ports(device_id=server_id)
    ]


def network_agents(conn: Connection) -> list[tuple[str, str, bool]]:
    """Every neutron agent as (type, host, alive)."""
    return [(str(a.agent_type), str(a.host), bool(a.is_alive)) for a in conn.network.agents()]


def find_image(conn: Connection, name: str) -> str | None:
    """The id of image ``name``, if it exists."""
    found = conn.image.find_image(name)
    return None if found is None else str(found.id)


def find_flavor(conn: Connection, name: str) -> str | None:
    """The id of flavor ``name``, if it exists."""
    found = conn.compute.find_flavor(name)
    return None if found is None else str(found.id)


def find_network(conn: Connection, name: str) -> str | None:
    """The id of network ``name``, if it exists."""
    found = conn.network.find_network(name)
    return None if found is None else str(found.id)


def compute_services(conn: Connection) -> list[ComputeService]:
    """Every nova service and whether it is up."""
    return [
        ComputeService(str(s.binary), str(s.host), str(s.state), str(s.status))
        for s in conn.compute.services()
    ]


def hypervisors(conn: Connection) -> list[str]:
    """The host names of the registered hypervisors."""
    return [str(h.name) for h in conn.compute.hypervisors()]


# --- bootstrap (idempotent) --------------------------------------------------------------------


def _identity(conn: Connection) -> identity_v3.Proxy:
    # The lab speaks identity v3 only; the SDK types conn.identity as v2 or v3.
    proxy = conn.identity
    if not isinstance(proxy, identity_v3.Proxy):
        raise openstack.exceptions.SDKException("the cloud offers no identity v3 API")
    return proxy


def ensure_project(conn: Connection, name: str, domain: str = "default") -> str:
    """The id of project ``name``, created if missing."""
    identity = _identity(conn)
    found = identity.find_project(name, domain_id=domain)
    if found is None:
        found = identity.create_project(name=name, domain_id=domain)
    return str(found.id)


def ensure_service_user(
    conn: Connection,
    name: str,
    password: Secret,
    *,
    project: str = "service",
    roles: Sequence[str] = ("admin", "service"),
    domain: str = "default",
) -> str:
    """User ``name`` with ``roles`` on ``project``; its password is (re)set to ``password``.

    The ``service`` role matters: with ``service_token_roles_required`` a service token
    (nova's calls to neutron, for one) from a user without it is refused with a 401.
    """
    identity = _identity(conn)
    project_id = ensure_project(conn, project, domain)
    user = identity.find_user(name)
    if user is None:
        user = identity.create_user(
            name=name, password=password.reveal(), domain_id=domain,
            default_project_id=project_id,
        )
    else:
        user = identity.update_user(user, password=password.reveal())
    for role in roles:
        role_obj = identity.find_role(role, ignore_missing=False)
        identity.assign_project_role_to_user(project_id, user, role_obj)
    return str(user.id)


def ensure_endpoint(
    conn: Connection, name: str, service_type: str, url: str, *, region: str = "RegionOne",
    description: str = "", interfaces: Sequence[str] = ("public", "internal", "admin"),
) -> str:
    """Service ``name`` of ``service_type`` with ``url`` on each interface; the service id.

    An endpoint whose URL differs is updated, so a lab whose addresses changed is repaired.
    ``conn`` keeps the catalogue of its first token: ``connect`` again to use a new service.
    """
    identity = _identity(conn)
    service = next(
        (s for s in identity.services() if s.name == name and s.type == service_type), None
    )
    if service is None:
        service = identity.create_service(
            name=name, type=service_type, description=description, is_enabled=True
        )
    existing = {e.interface: e for e in identity.endpoints(service_id=service.id)}
    for interface in interfaces:
        endpoint = existing.get(interface)
        if endpoint is None:
            identity.create_endpoint(
                service_id=service.id, interface=interface, url=url, region_id=region
            )
        elif endpoint.url != url:
            identity.update_endpoint(endpoint, url=url)
    return str(service.id)


def ensure_flavor(conn: Connection, name: str, *, ram_mib: int, vcpus: int, disk_gib: int) -> str:
    """The id of flavor ``name``, created (public) if missing."""
    found = conn.compute.find_flavor(name)
    if found is None:
        found = conn.compute.create_flavor(
            name=name, ram=ram_mib, vcpus=vcpus, disk=disk_gib, is_public=True
        )
    return str(found.id)


def ensure_flat_network(
    conn: Connection, name: str, *, physnet: str, cidr: str, gateway: str | None = None,
    allocation: tuple[str, str] | None = None,
) -> str:
    """A shared flat provider network with one IPv4 subnet (no DHCP); the network id."""
    network = conn.network.find_network(name)
    if network is None:
        network = conn.network.create_network(
            name=name, provider_network_type="flat", provider_physical_network=physnet,
            is_shared=True,
        )
    if not list(conn.network.subnets(network_id=network.id)):
        extra: dict[str, Any] = {}
        if allocation is not None:
            extra["allocation_pools"] = [{"start": allocation[0], "end": allocation[1]}]
        conn.network.create_subnet(
            name=f"{name}-v4", network_id=network.id, ip_version=4, cidr=cidr,
            gateway_ip=gateway, is_dhcp_enabled=False, **extra,
        )
    return str(network.id)
