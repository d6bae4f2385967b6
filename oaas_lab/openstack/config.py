"""Configuration of the OpenStack services: pure functions from addresses and secrets to files.

Each renderer takes where the infrastructure is (``Infra``), where the APIs are (``Apis``) and
the lab's secrets (``LabSecrets``, read from the ``SecretStore``), and returns a ``ConfigFile``.
Secrets stay wrapped in ``Secret`` until the INI text is rendered, so they appear in the file
content and nowhere else (``ConfigFile``'s repr leaves the text out); ``write`` creates a file
holding a secret with mode 0600 from the start.

The WSGI wrappers exist because the services' own WSGI modules parse ``sys.argv`` with
oslo.config, which under gunicorn holds gunicorn's options (``-b``, ``-w``...) and makes them
exit; and because ``glance-api`` and ``keystone-wsgi-public`` are no longer shipped as WSGI
scripts. A wrapper sets the configuration location and a clean ``sys.argv``, then imports the
service's WSGI module. Serve it with::

    gunicorn --no-control-socket --pythonpath DIR -b ADDR:PORT oaas_wsgi_<service>:application

(``--no-control-socket`` because several gunicorns run on one host.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from oaas_lab.credentials import RABBITMQ_SECRET
from oaas_lab.credentials import RABBITMQ_USER as RABBIT_USER
from oaas_lab.errors import ConfigError
from oaas_lab.secrets import Secret, SecretStore

Value = str | int | bool | Secret | Sequence[str] | None
"""One INI value: a list renders comma-separated, ``None`` as an empty value."""

Sections = Mapping[str, Mapping[str, Value]]

SERVICES = ("keystone", "glance", "placement", "nova", "neutron")
"""The services with a database and (except keystone) a service user in keystone."""

DATABASES = {
    "keystone": ("keystone",),
    "glance": ("glance",),
    "placement": ("placement",),
    "nova": ("nova_api", "nova", "nova_cell0"),
    "neutron": ("neutron",),
}
"""The MariaDB databases of each service; the database user is the service name."""

SERVICE_PROJECT = "service"
DOMAIN = "Default"

WSGI_APPS = {
    "keystone": "keystone.wsgi.api",
    "glance": "glance.wsgi.api",
    "placement": "placement.wsgi.api",
    "nova-api": "nova.wsgi.osapi_compute",
    "neutron": "neutron.wsgi.api",
}
"""Service -> the WSGI module (``application``) its wrapper imports."""


@dataclass(frozen=True)
class LabSecrets:
    """Every secret the OpenStack tier needs, by role; all of them come from the SecretStore."""

    admin: Secret
    """The keystone ``admin`` user (clouds.yaml, horizon login)."""
    rabbitmq: Secret
    """The ``openstack`` RabbitMQ user shared by nova and neutron."""
    horizon_key: Secret
    """Django ``SECRET_KEY``, shared by every horizon member (sessions survive a failover)."""
    database: Mapping[str, Secret]
    """Service -> its MariaDB password."""
    service: Mapping[str, Secret]
    """Service -> its keystone service-user password (no entry for keystone itself)."""

    @classmethod
    def from_store(cls, store: SecretStore) -> LabSecrets:
        """Read (or generate once) every secret under a stable name in ``store``."""
        return cls(
            admin=store.get("keystone_admin"),
            rabbitmq=store.get(RABBITMQ_SECRET),
            horizon_key=store.get("horizon_secret_key", kind="token"),
            database={name: store.get(f"{name}_db") for name in SERVICES},
            service={name: store.get(f"{name}_keystone") for name in SERVICES[1:]},
        )

    def all(self) -> list[Secret]:
        """Every secret held, for tests and log scrubbers."""
        return [
            self.admin, self.rabbitmq, self.horizon_key,
            *self.database.values(), *self.service.values(),
        ]


@dataclass(frozen=True)
class Infra:
    """Where the OpenStack pods reach the infrastructure tier (``host`` or ``host:port``)."""

    database: str
    """The Galera front (HAProxy); every service connects through it."""
    rabbitmq: Sequence[str]
    """Every RabbitMQ member: the clients fail over between them."""
    memcached: Sequence[str]
    """Every memcached member."""

    def __post_init__(self) -> None:
        if not self.rabbitmq or not self.memcached:
            raise ConfigError(
                "openstack", "infra", "needs at least one RabbitMQ and one memcached member",
                "start the infrastructure tier before rendering the OpenStack configuration",
            )

    def memcached_servers(self) -> list[str]:
        """The memcached members as ``host:port``."""
        return [_with_port(m, 11211) for m in self.memcached]


@dataclass(frozen=True)
class Apis:
    """The URLs of the APIs as the services and clients reach them (through HAProxy)."""

    keystone: str
    glance: str
    placement: str
    nova: str
    neutron: str
    novncproxy: str
    """Base URL of the noVNC proxy, e.g. ``http://host:6080``."""
    region: str = "RegionOne"

    def catalogue(self) -> dict[str, tuple[str, str, str]]:
        """Service name -> (service type, endpoint URL, description) for keystone's catalogue."""
        return {
            "keystone": ("identity", self.keystone.rstrip("/") + "/v3", "Identity"),
            "glance": ("image", self.glance, "Image"),
            "placement": ("placement", self.placement, "Placement"),
            "nova": ("compute", self.nova.rstrip("/") + "/v2.1", "Compute"),
            "neutron": ("network", self.neutron, "Networking"),
        }


@dataclass(frozen=True)
class ConfigFile:
    """A rendered file: where it goes (relative), its text, and whether it holds a secret."""

    name: str
    text: str = field(repr=False)
    secret: bool = True

    @property
    def mode(self) -> int:
        """0600 for a file with a secret (it is read by the daemons, run as root), else 0644."""
        return 0o600 if self.secret else 0o644


def write(files: Sequence[ConfigFile], directory: Path) -> list[Path]:
    """Write ``files`` under ``directory``; a secret file is never readable by others."""
    written = []
    for item in files:
        path = directory / item.name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, item.mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(item.text)
        os.chmod(tmp, item.mode)  # os.open's mode is reduced by the umask
        os.replace(tmp, path)
        written.append(path)
    return written


# --- INI ---------------------------------------------------------------------------------------


def _value(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, int | str):
        return str(value)
    return ",".join(value)


def render_ini(sections: Sections) -> str:
    """INI text, sections and keys in the given order; secrets revealed here and only here."""
    blocks = []
    for section, options in sections.items():
        lines = [f"[{section}]"]
        for key, value in options.items():
            text = _value(value)
            if "\n" in text or "$" in text:
                # oslo.config would expand "$name"; a newline would start a new key.
                raise ConfigError(
                    "openstack", f"{section}.{key}", "holds a newline or '$'",
                    "use a value without them",
                )
            lines.append(f"{key} = {text}".rstrip())
        blocks.append("\n".join(lines))
    return "# Written by oaas-lab; changes are overwritten.\n\n" + "\n\n".join(blocks) + "\n"


def _with_port(address: str, port: int) -> str:
    return address if ":" in address else f"{address}:{port}"


def database_url(infra: Infra, user: str, password: Secret, database: str) -> Secret:
    """The SQLAlchemy URL of ``database`` through the Galera front (PyMySQL driver)."""
    host = _with_port(infra.database, 3306)
    return Secret(
        f"mysql+pymysql://{user}:{quote(password.reveal(), safe='')}@{host}/{database}"
        "?charset=utf8mb4"
    )


def transport_url(infra: Infra, password: Secret) -> Secret:
    """The oslo.messaging URL naming every RabbitMQ member (clients fail over in order)."""
    secret = quote(password.reveal(), safe="")
    hosts = ",".join(f"{RABBIT_USER}:{secret}@{_with_port(h, 5672)}" for h in infra.rabbitmq)
    return Secret(f"rabbit://{hosts}/")


def _authtoken(infra: Infra, apis: Apis, user: str, password: Secret) -> dict[str, Value]:
    return {
        "www_authenticate_uri": apis.keystone,
        "auth_url": apis.keystone,
        "memcached_servers": infra.memcached_servers(),
        "auth_type": "password",
        "project_domain_name": DOMAIN,
        "user_domain_name": DOMAIN,
        "project_name": SERVICE_PROJECT,
        "username": user,
        "password": password,
        "region_name": apis.region,
        "service_token_roles_required": True,
    }


def _service_user(apis: Apis, user: str, password: Secret) -> dict[str, Value]:
    """A ``[placement]``/``[neutron]``/``[nova]`` section: how one service calls another."""
    return {
        "auth_type": "password",
        "auth_url": apis.keystone,
        "project_domain_name": DOMAIN,
        "user_domain_name": DOMAIN,
        "project_name": SERVICE_PROJECT,
        "username": user,
        "password": password,
        "region_name": apis.region,
    }


def _rabbit() -> dict[str, Value]:
    # Quorum queues survive the loss of a RabbitMQ member; classic mirrored queues are gone.
    return {"rabbit_quorum_queue": True, "rabbit_transient_quorum_queue": False}


def _privsep(helper: str, config_files: Sequence[str], sections: Sequence[str]) -> Sections:
    """Start the privsep daemons directly (the lab runs as root): no sudo, no rootwrap.

    A ``helper_command`` replaces the whole default command, config files included.
    """
    args = " ".join(f"--config-file {path}" for path in config_files)
    return {section: {"helper_command": f"{helper} {args}"} for section in sections}


# --- the services ------------------------------------------------------------------------------


def keystone_conf(
    infra: Infra, secrets: LabSecrets, *, fernet_keys: Path, credential_keys: Path
) -> ConfigFile:
    """``keystone.conf``: fernet tokens from a key repository shared by every member."""
    sections: Sections = {
        "DEFAULT": {"debug": False},
        "database": {
            "connection": database_url(
                infra, "keystone", secrets.database["keystone"], "keystone"
            ),
        },
        "token": {"provider": "fernet", "expiration": 3600},
        "fernet_tokens": {"key_repository": str(fernet_keys), "max_active_keys": 3},
        # Receipts (multi-factor auth) have their own repository, /etc/keystone by default.
        "fernet_receipts": {"key_repository": str(fernet_keys), "max_active_keys": 3},
        "credential": {"key_repository": str(credential_keys)},
        "cache": {
            "enabled": True,
            "backend": "dogpile.cache.pymemcache",
            "memcache_servers": infra.memcached_servers(),
        },
        "oslo_messaging_notifications": {"driver": "noop"},
    }
    return ConfigFile("keystone.conf", render_ini(sections))


def fernet_key_files(primary: Secret, staged: Secret) -> list[ConfigFile]:
    """A fernet key repository: ``0`` is the staged key, the highest number the primary.

    Generating the keys from the lab's ``SecretStore`` makes them once per lab and the same
    for every keystone member, which is what lets a token from one member validate on another.
    """
    return [ConfigFile("0", staged.reveal()), ConfigFile("1", primary.reveal())]


def glance_api_conf(
    infra: Infra,
    apis: Apis,
    secrets: LabSecrets,
    *,
    venv: Path,
    images: Path,
    state: Path,
) -> ConfigFile:
    """``glance-api.conf``: a file store in ``images`` (shared by the members on one host)."""
    sections: Sections = {
        "DEFAULT": {
            "enabled_backends": "file:file",
            "debug": False,
        },
        "database": {
            "connection": database_url(infra, "glance", secrets.database["glance"], "glance"),
        },
        "glance_store": {"default_backend": "file"},
        "file": {"filesystem_store_datadir": str(images)},
        "os_glance_staging_store": {"filesystem_store_datadir": str(state / "staging")},
        "os_glance_tasks_store": {"filesystem_store_datadir": str(state / "tasks")},
        "keystone_authtoken": _authtoken(infra, apis, "glance", secrets.service["glance"]),
        "paste_deploy": {
            "flavor": "keystone",
            "config_file": str(venv / "etc" / "glance" / "glance-api-paste.ini"),
        },
        "oslo_concurrency": {"lock_path": str(state / "lock")},
    }
    return ConfigFile("glance-api.conf", render_ini(sections))


def placement_conf(infra: Infra, apis: Apis, secrets: LabSecrets) -> ConfigFile:
    """``placement.conf``."""
    sections: Sections = {
        "placement_database": {
            "connection": database_url(
                infra, "placement", secrets.database["placement"], "placement"
            ),
        },
        "api": {"auth_strategy": "keystone"},
        "keystone_authtoken": _authtoken(infra, apis, "placement", secrets.service["placement"]),
    }
    return ConfigFile("placement.conf", render_ini(sections))


@dataclass(frozen=True)
class NovaHost:
    """What differs between nova pods: their address and name, and local paths."""

    my_ip: str
    host: str
    """The stable service host name (the pod's hostname): nova keys services and nodes on it."""
    state: Path
    config_path: Path
    """Where this ``nova.conf`` is written (the privsep helpers are told to read it)."""
    venv: Path
    libvirt_uri: str = "qemu:///system"
    ovsdb: str = ""
    """``unix:/path/db.sock`` of the pod's Open vSwitch (compute pods)."""
    novncproxy_port: int = 6080


def nova_conf(infra: Infra, apis: Apis, secrets: LabSecrets, pod: NovaHost) -> ConfigFile:
    """``nova.conf`` for every nova process (api, conductor, scheduler, novncproxy, compute).

    The compute side uses libvirt with ``virt_type = qemu`` (TCG: no KVM needed).
    """
    novnc = apis.novncproxy.rstrip("/")
    nova_db = secrets.database["nova"]
    sections: dict[str, Mapping[str, Value]] = {
        "DEFAULT": {
            "my_ip": pod.my_ip,
            "host": pod.host,
            "transport_url": transport_url(infra, secrets.rabbitmq),
            "compute_driver": "libvirt.LibvirtDriver",
            "state_path": str(pod.state),
            "instances_path": str(pod.state / "instances"),
            "debug": False,
            # noVNC's web client (Debian package novnc); the websocket proxy works without it.
            "web": "/usr/share/novnc",
        },
        "api": {"auth_strategy": "keystone"},
        "wsgi": {"api_paste_config": str(pod.venv / "etc" / "nova" / "api-paste.ini")},
        "api_database": {"connection": database_url(infra, "nova", nova_db, "nova_api")},
        "database": {"connection": database_url(infra, "nova", nova_db, "nova")},
        "keystone_authtoken": _authtoken(infra, apis, "nova", secrets.service["nova"]),
        "service_user": {
            **_service_user(apis, "nova", secrets.service["nova"]),
            "send_service_user_token": True,
        },
        "placement": _service_user(apis, "placement", secrets.service["placement"]),
        "neutron": {
            **_service_user(apis, "neutron", secrets.service["neutron"]),
            "service_metadata_proxy": False,
        },
        "glance": {"region_name": apis.region},
        "vnc": {
            "enabled": True,
            "server_listen": pod.my_ip,
            "server_proxyclient_address": pod.my_ip,
            "novncproxy_host": pod.my_ip,
            "novncproxy_port": pod.novncproxy_port,
            # noVNC 1.x has no vnc_auto.html any more.
            "novncproxy_base_url": f"{novnc}/vnc_lite.html",
        },
        "libvirt": {"virt_type": "qemu", "connection_uri": pod.libvirt_uri},
        # One worker each: the default of one per CPU doubled their memory and their idle
        # wake-ups, and a lab's request rate needs no second one.
        "conductor": {"workers": 1},
        "scheduler": {"discover_hosts_in_cells_interval": 30, "workers": 1},
        "oslo_concurrency": {"lock_path": str(pod.state / "lock")},
        "oslo_messaging_rabbit": _rabbit(),
        "oslo_messaging_notifications": {"driver": "noop"},
    }
    if pod.ovsdb:
        sections["os_vif_ovs"] = {"ovsdb_connection": pod.ovsdb}
    sections.update(
        _privsep(
            str(pod.venv / "bin" / "privsep-helper"),
            [str(pod.config_path)],
            ["nova_sys_admin", "vif_plug_ovs_privileged", "privsep_osbrick"],
        )
    )
    return ConfigFile("nova.conf", render_ini(sections))


def neutron_conf(
    infra: Infra,
    apis: Apis,
    secrets: LabSecrets,
    *,
    venv: Path,
    state: Path,
    config_files: Sequence[Path],
) -> ConfigFile:
    """``neutron.conf``: ML2 core plugin only (no router, no DHCP), nova notified of ports.

    ``config_files`` are every file a neutron process reads (for the privsep helpers).
    """
    sections: dict[str, Mapping[str, Value]] = {
        "DEFAULT": {
            "core_plugin": "ml2",
            "service_plugins": None,
            "auth_strategy": "keystone",
            "transport_url": transport_url(infra, secrets.rabbitmq),
            "notify_nova_on_port_status_changes": True,
            "notify_nova_on_port_data_changes": True,
            "api_paste_config": str(venv / "etc" / "neutron" / "api-paste.ini"),
            "state_path": str(state),
            "debug": False,
            # One RPC worker (the API is served by gunicorn): see nova's workers.
            "rpc_workers": 1,
        },
        "database": {
            "connection": database_url(infra, "neutron", secrets.database["neutron"], "neutron"),
        },
        "keystone_authtoken": _authtoken(infra, apis, "neutron", secrets.service["neutron"]),
        "nova": _service_user(apis, "nova", secrets.service["nova"]),
        # Empty: the lab runs as root, so agents run their commands without sudo/rootwrap.
        "agent": {"root_helper": None},
        "oslo_concurrency": {"lock_path": str(state / "lock")},
        "oslo_messaging_rabbit": _rabbit(),
    }
    sections.update(
        _privsep(
            str(venv / "bin" / "privsep-helper"),
            [str(path) for path in config_files],
            [
                "privsep", "privsep_dhcp_release", "privsep_ovs_vsctl", "privsep_namespace",
                "privsep_conntrack", "privsep_link",
            ],
        )
    )
    return ConfigFile("neutron.conf", render_ini(sections))


def ml2_conf(*, physnet: str = "physnet1", security_groups: bool = False) -> ConfigFile:
    """``ml2_conf.ini``: flat provider networks on ``physnet`` through Open vSwitch.

    Security groups are off by default: the OVS firewall on the userspace datapath's own
    conntrack has not been proven in the lab yet, and the boot and ping scenarios need none.
    """
    sections: Sections = {
        "ml2": {
            "type_drivers": "flat",
            "tenant_network_types": None,
            "mechanism_drivers": "openvswitch",
            "extension_drivers": "port_security",
        },
        "ml2_type_flat": {"flat_networks": physnet},
        "securitygroup": {"enable_security_group": security_groups},
    }
    return ConfigFile("ml2_conf.ini", render_ini(sections), secret=False)


def openvswitch_agent_ini(
    *, local_ip: str, ovsdb: str, bridge: str = "br-provider", physnet: str = "physnet1",
    security_groups: bool = False,
) -> ConfigFile:
    """``openvswitch_agent.ini``: the userspace (``netdev``) datapath, no tunnels.

    The host has no Open vSwitch kernel module, so every bridge uses ``datapath_type =
    netdev`` and ``ovs-vswitchd`` forwards in userspace.
    """
    sections: Sections = {
        "ovs": {
            "bridge_mappings": f"{physnet}:{bridge}",
            "datapath_type": "netdev",
            "integration_bridge": "br-int",
            "ovsdb_connection": ovsdb,
            "local_ip": local_ip,
            "of_listen_address": "127.0.0.1",
        },
        "agent": {"tunnel_types": None, "root_helper": None},
        "securitygroup": {
            "enable_security_group": security_groups,
            "firewall_driver": "openvswitch" if security_groups else "noop",
        },
    }
    return ConfigFile("openvswitch_agent.ini", render_ini(sections), secret=False)


def horizon_settings(
    apis: Apis,
    infra: Infra,
    secrets: LabSecrets,
    *,
    allowed_hosts: Sequence[str],
    static_root: Path,
) -> list[ConfigFile]:
    """Horizon's ``local/local_settings.py`` (and its package ``__init__``).

    Horizon imports ``local.local_settings``; with the directory holding ``local/`` on
    gunicorn's ``--pythonpath``, these settings are used without writing into the installed
    package. Every member shares the ``SECRET_KEY`` and keeps sessions in every memcached
    member, so a login survives the loss of one horizon or one memcached.
    """
    if not allowed_hosts:
        raise ConfigError(
            "openstack", "horizon.allowed_hosts", "is empty",
            "name the lab addresses/host names the dashboard is reached by",
        )
    key = secrets.horizon_key.reveal()
    if "'" in key or "\\" in key:
        raise ConfigError(
            "secrets.yaml", "horizon_secret_key", "holds a quote or backslash",
            "remove the entry; it is generated again",
        )
    text = f'''"""Horizon settings of the oaas-lab dashboard (written by oaas-lab)."""

DEBUG = False
ALLOWED_HOSTS = {list(allowed_hosts)!r}
SECRET_KEY = '{key}'

OPENSTACK_KEYSTONE_URL = {apis.keystone.rstrip("/") + "/v3"!r}
OPENSTACK_KEYSTONE_DEFAULT_DOMAIN = {DOMAIN!r}
OPENSTACK_KEYSTONE_DEFAULT_ROLE = "member"
OPENSTACK_ENDPOINT_TYPE = "publicURL"

SESSION_ENGINE = "django.contrib.sessions.backends.cache"
CACHES = {{
    "default": {{
        "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
        "LOCATION": {infra.memcached_servers()!r},
    }},
}}

WEBROOT = "/"
STATIC_ROOT = {str(static_root)!r}
STATIC_URL = "/static/"
COMPRESS_OFFLINE = True

# Plain HTTP inside the lab.
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
'''
    return [
        ConfigFile("local/__init__.py", "", secret=False),
        ConfigFile("local/local_settings.py", text),
    ]


# --- WSGI wrappers -----------------------------------------------------------------------------

WRAPPER = '''"""WSGI entry point of {service} for gunicorn. Written by oaas-lab; changes are lost.

The service's own WSGI module parses sys.argv with oslo.config; under gunicorn that is
gunicorn's command line, so it gets one of its own here, and its configuration location.
"""

import os
import sys

os.environ[{env!r}] = {value!r}
sys.argv = [{prog!r}]

from {module} import application  # noqa: E402,F401
'''

HORIZON_WRAPPER = '''"""WSGI entry point of horizon for gunicorn (written by oaas-lab).

Serves STATIC_URL from STATIC_ROOT (collected and compressed beforehand), the job a front web
server does in production, and everything else through Django.
"""

import mimetypes
import os

from openstack_dashboard.wsgi import application as _django

STATIC_URL = "/static/"
STATIC_ROOT = os.path.realpath({static_root!r})


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if not path.startswith(STATIC_URL):
        return _django(environ, start_response)
    target = os.path.realpath(os.path.join(STATIC_ROOT, path[len(STATIC_URL):]))
    if not target.startswith(STATIC_ROOT + os.sep) or not os.path.isfile(target):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\\n"]
    kind = mimetypes.guess_type(target)[0] or "application/octet-stream"
    with open(target, "rb") as handle:
        body = handle.read()
    start_response("200 OK", [("Content-Type", kind), ("Content-Length", str(len(body)))])
    return [body]
'''


def wsgi_wrapper(service: str, config_files: Sequence[Path]) -> ConfigFile:
    """The module ``oaas_wsgi_<service>`` that gunicorn serves for ``service``.

    ``service`` is one of ``WSGI_APPS``; ``config_files`` the service's configuration files
    (glance and placement read a directory: that of the first file). nova-api loads its paste
    pipeline from its first file, so that one must be ``api-paste.ini``.
    """
    if service not in WSGI_APPS:
        raise ConfigError(
            "openstack", "wsgi", f"no WSGI application for {service!r}",
            f"use one of: {', '.join(WSGI_APPS)}",
        )
    if not config_files:
        raise ConfigError("openstack", f"wsgi.{service}", "no configuration file", "name one")
    if service == "nova-api" and config_files[0].name != "api-paste.ini":
        raise ConfigError(
            "openstack", "wsgi.nova-api", f"first file is {config_files[0].name}",
            "pass <venv>/etc/nova/api-paste.ini first, then nova.conf",
        )
    files = ";".join(str(path) for path in config_files)
    directory = str(config_files[0].parent)
    env, value, prog = {
        "keystone": ("OS_KEYSTONE_CONFIG_FILES", files, "keystone-wsgi-public"),
        "glance": ("OS_GLANCE_CONFIG_DIR", directory, "glance-api"),
        "placement": ("OS_PLACEMENT_CONFIG_DIR", directory, "placement-api"),
        "nova-api": ("OS_NOVA_CONFIG_FILES", files, "nova-api"),
        "neutron": ("OS_NEUTRON_CONFIG_FILES", files, "neutron-server"),
    }[service]
    # nova and neutron join each name to their config directory: absolute names survive it.
    text = WRAPPER.format(
        service=service, env=env, value=value, prog=prog, module=WSGI_APPS[service]
    )
    return ConfigFile(f"oaas_wsgi_{service.replace('-', '_')}.py", text, secret=False)


def horizon_wrapper(static_root: Path) -> ConfigFile:
    """The module ``oaas_wsgi_horizon``: horizon plus its static files."""
    return ConfigFile(
        "oaas_wsgi_horizon.py", HORIZON_WRAPPER.format(static_root=str(static_root)),
        secret=False,
    )


def gunicorn_argv(
    venv: Path, module_dir: Path, service: str, bind: str, *, workers: int = 2,
    timeout: int = 120,
) -> list[str]:
    """The gunicorn command line serving ``oaas_wsgi_<service>`` from ``module_dir``."""
    return [
        str(venv / "bin" / "gunicorn"),
        "--no-control-socket",
        "--pythonpath", str(module_dir),
        "--bind", bind,
        "--workers", str(workers),
        "--timeout", str(timeout),
        "--access-logfile", "-",
        f"oaas_wsgi_{service.replace('-', '_')}:application",
    ]
