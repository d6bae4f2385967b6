"""The OpenStack tier on Kubernetes: what each service runs, and its configuration as Secrets.

The configuration files come from ``oaas_lab.openstack.config``, the same renderers the local
lab uses, fed with the cluster's addresses (Service DNS names) and the lab's secrets. A file
that holds a password is a Secret, never a ConfigMap. Per-pod values (``my_ip``, ``host``) are
given to oslo.config through its environment source (``OS_DEFAULT__MY_IP``), which wins over
the files, so one Secret serves every replica.

Images are Kolla's (``quay.io/openstack.kolla/<service>:<release>-<distro>``); the services run
their own binaries or WSGI modules directly (no ``kolla_start``), from Kolla's virtualenv.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oaas_lab.openstack import config as osconf
from oaas_lab.secrets import Secret, SecretStore

KOLLA_VENV = Path("/var/lib/kolla/venv")
STATE = Path("/var/lib/oaas")
"""Per-pod scratch state (an emptyDir): locks, staging."""

TOOLBOX = "kolla-toolbox"
"""The image with the ``openstack`` client, used to register services in keystone."""


@dataclass(frozen=True)
class OsService:
    """One OpenStack workload: what it runs, what it serves, how it proves it works."""

    component: str
    project: str
    image: str
    command: tuple[str, ...]
    port: int = 0
    probe_path: str = ""
    """HTTP path that answers without a token; empty: a worker, checked by its AMQP link."""
    files: tuple[str, ...] = ()
    """Keys of the project's config Secret mounted at ``/etc/<project>/<key>``."""

    @property
    def per_node(self) -> bool:
        """One pod per node of its role (a DaemonSet), e.g. the hypervisor."""
        return self.component == "nova-compute"


def _wsgi(module: str, port: int) -> tuple[str, ...]:
    # uWSGI serves the service's own WSGI module (the eventlet servers are gone upstream);
    # ``--die-on-term`` so a SIGTERM from the kubelet stops it.
    return (str(KOLLA_VENV / "bin" / "uwsgi"), "--master", "--die-on-term", "--enable-threads",
            "--http-socket", f":{port}", "--processes", "2", "--module", module,
            "--lazy-apps", "--need-app")


SERVICES: tuple[OsService, ...] = (
    OsService("keystone", "keystone", "keystone", _wsgi("keystone.wsgi.api:application", 5000),
              5000, "/v3", ("keystone.conf",)),
    OsService("glance", "glance", "glance-api", _wsgi("glance.wsgi.api:application", 9292),
              9292, "/healthcheck", ("glance-api.conf",)),
    OsService("placement", "placement", "placement-api",
              _wsgi("placement.wsgi.api:application", 8778), 8778, "/", ("placement.conf",)),
    OsService("nova-api", "nova", "nova-api",
              _wsgi("nova.wsgi.osapi_compute:application", 8774), 8774, "/", ("nova.conf",)),
    OsService("nova-conductor", "nova", "nova-conductor", ("nova-conductor",),
              files=("nova.conf",)),
    OsService("nova-scheduler", "nova", "nova-scheduler", ("nova-scheduler",),
              files=("nova.conf",)),
    OsService("nova-novncproxy", "nova", "nova-novncproxy", ("nova-novncproxy",), 6080,
              "/vnc_lite.html", ("nova.conf",)),
    OsService("nova-compute", "nova", "nova-compute", ("nova-compute",),
              files=("nova.conf",)),
    OsService("neutron-server", "neutron", "neutron-server",
              _wsgi("neutron.wsgi.api:application", 9696), 9696, "/",
              ("neutron.conf", "ml2_conf.ini")),
    OsService("horizon", "openstack-dashboard", "horizon",
              _wsgi("openstack_dashboard.wsgi:application", 8080), 8080, "/auth/login/",
              ("local_settings",)),
)


@dataclass(frozen=True)
class Bootstrap:
    """A project's one-off Job: its databases, schema, and keystone registration."""

    project: str
    owner: str
    """The component whose deploy step runs the Job (before its workload starts)."""
    image: str
    sync: tuple[str, ...]
    register: str = ""
    """Keystone name of the service to register (user, service, endpoints); empty: none."""
    databases: tuple[str, ...] = field(default_factory=tuple)


BOOTSTRAPS: tuple[Bootstrap, ...] = (
    Bootstrap("keystone", "keystone", "keystone", (
        "keystone-manage db_sync",
        "keystone-manage bootstrap --bootstrap-username admin --bootstrap-project-name admin"
        " --bootstrap-role-name admin --bootstrap-admin-url \"${KEYSTONE_URL}\""
        " --bootstrap-internal-url \"${KEYSTONE_URL}\" --bootstrap-public-url \"${KEYSTONE_URL}\""
        " --bootstrap-region-id RegionOne",
    )),
    Bootstrap("glance", "glance", "glance-api", ("glance-manage db_sync",), "glance"),
    Bootstrap("placement", "placement", "placement-api", ("placement-manage db sync",),
              "placement"),
    Bootstrap("nova", "nova-api", "nova-api", (
        "nova-manage api_db sync",
        "nova-manage cell_v2 map_cell0",
        "nova-manage cell_v2 list_cells | grep -q ' cell1 '"
        " || nova-manage cell_v2 create_cell --name cell1",
        "nova-manage db sync",
    ), "nova"),
    Bootstrap("neutron", "neutron-server", "neutron-server", (
        "neutron-db-manage --config-file /etc/neutron/neutron.conf"
        " --config-file /etc/neutron/ml2_conf.ini upgrade heads",
    ), "neutron"),
)


def by_component() -> dict[str, OsService]:
    """The OpenStack services by component name."""
    return {s.component: s for s in SERVICES}


class ProvidedStore(SecretStore):
    """A ``SecretStore`` whose values come from a provider (masked for ``render``)."""

    def __init__(self, value: Callable[[str, str], str]) -> None:
        super().__init__(Path("/nonexistent"))  # never read: every value comes from the provider
        self._value = value

    def get(self, name: str, kind: str = "password") -> Secret:
        """The provider's value for ``name``."""
        return Secret(self._value(name, kind))


def infra_addresses(ns: str, domain: str, replicas: Mapping[str, int]) -> osconf.Infra:
    """Where OpenStack pods reach the infrastructure: Service and pod DNS names."""
    svc = f"{ns}.svc.{domain}"
    return osconf.Infra(
        database=f"haproxy.{svc}:3306",
        rabbitmq=[f"rabbitmq-{i}.rabbitmq-peers.{svc}:5672"
                  for i in range(replicas.get("rabbitmq", 1))],
        memcached=[f"memcached-{i}.memcached.{svc}:11211"
                   for i in range(replicas.get("memcached", 1))],
    )


def api_urls(ns: str, domain: str) -> osconf.Apis:
    """The APIs as the services reach them: their Services."""
    svc = f"{ns}.svc.{domain}"
    return osconf.Apis(
        keystone=f"http://keystone.{svc}:5000",
        glance=f"http://glance.{svc}:9292",
        placement=f"http://placement.{svc}:8778",
        nova=f"http://nova-api.{svc}:8774",
        neutron=f"http://neutron-server.{svc}:9696",
        novncproxy=f"http://nova-novncproxy.{svc}:6080",
    )


def config_files(project: str, infra: osconf.Infra, apis: osconf.Apis,
                 secrets: osconf.LabSecrets) -> dict[str, str]:
    """The project's configuration files (name -> text); they hold secrets."""
    etc = Path("/etc") / project
    if project == "keystone":
        files = [osconf.keystone_conf(infra, secrets, fernet_keys=etc / "fernet-keys",
                                      credential_keys=etc / "credential-keys")]
    elif project == "glance":
        files = [osconf.glance_api_conf(infra, apis, secrets, venv=KOLLA_VENV,
                                        images=Path("/var/lib/glance/images"), state=STATE)]
    elif project == "placement":
        files = [osconf.placement_conf(infra, apis, secrets)]
    elif project == "nova":
        # my_ip and host are per pod: the OS_DEFAULT__* environment overrides these.
        host = osconf.NovaHost(my_ip="127.0.0.1", host="nova", state=STATE,
                               config_path=etc / "nova.conf", venv=KOLLA_VENV)
        files = [osconf.nova_conf(infra, apis, secrets, host)]
    elif project == "neutron":
        files = [
            osconf.neutron_conf(infra, apis, secrets, venv=KOLLA_VENV, state=STATE,
                                config_files=[etc / "neutron.conf", etc / "ml2_conf.ini"]),
            osconf.ml2_conf(),
        ]
    elif project == "openstack-dashboard":
        settings = osconf.horizon_settings(apis, infra, secrets, allowed_hosts=["*"],
                                           static_root=KOLLA_VENV / "static")
        files = [f for f in settings if f.name.endswith("local_settings.py")]
        return {"local_settings": files[0].text}
    else:
        raise KeyError(project)
    return {f.name: f.text for f in files}


def db_passwords(secrets: osconf.LabSecrets) -> dict[str, str]:
    """Per project: the MariaDB password its bootstrap Job creates the user with."""
    return {name: secrets.database[name].reveal() for name in osconf.SERVICES}


def secret_object(name: str, meta: Mapping[str, Any], data: Mapping[str, str],
                  masked: bool) -> dict[str, Any]:
    """A Secret with ``data`` (base64) and this component's metadata."""
    metadata = json.loads(json.dumps(meta))
    metadata["name"] = name
    if masked:
        metadata.setdefault("annotations", {})["oaas-lab.io/values"] = (
            "masked; oaas-lab deploy generates them")
    return {
        "apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode("ascii") for k, v in sorted(data.items())},
    }


def registration_script(service: str, apis: osconf.Apis) -> str:
    """Shell for the toolbox: create the service user, role, service and endpoints once."""
    kind, url, description = apis.catalogue()[service]
    return "\n".join([
        "set -eu",
        f"openstack user show {service} >/dev/null 2>&1 || openstack user create"
        f" --domain {osconf.DOMAIN} --password \"${{SERVICE_PASSWORD}}\" {service}",
        f"openstack project show {osconf.SERVICE_PROJECT} >/dev/null 2>&1 || openstack project"
        f" create --domain {osconf.DOMAIN} {osconf.SERVICE_PROJECT}",
        f"openstack role add --project {osconf.SERVICE_PROJECT} --user {service} admin",
        f"openstack service show {kind} >/dev/null 2>&1 || openstack service create"
        f" --name {service} --description {description} {kind}",
        "for iface in public internal admin; do",
        f"  openstack endpoint list --service {kind} --interface \"$iface\" -f value -c ID"
        f" | grep -q . || openstack endpoint create --region {apis.region} {kind}"
        f" \"$iface\" {url}",
        "done",
        f"echo registered {service}",
    ])


def db_script(databases: Sequence[str], user: str) -> str:
    """SQL run through HAProxy as root: the databases and their user.

    The passwords come from the environment and reach the server on standard input, never
    on a command line.
    """
    sql = [f"CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '${{DB_PASSWORD}}';",
           f"ALTER USER '{user}'@'%' IDENTIFIED BY '${{DB_PASSWORD}}';"]
    for db in databases:
        sql.append(f"CREATE DATABASE IF NOT EXISTS {db} CHARACTER SET utf8mb4;")
        sql.append(f"GRANT ALL PRIVILEGES ON {db}.* TO '{user}'@'%';")
    return "\n".join([
        "set -eu",
        'export MYSQL_PWD="${ROOT_PASSWORD}"',
        'mariadb -uroot -h"${DB_HOST}" <<SQL',
        *sql,
        "SQL",
        f"echo databases ready: {' '.join(databases)}",
    ])
