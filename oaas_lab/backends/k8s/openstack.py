"""The OpenStack tier on Kubernetes: what each service runs, and its configuration as Secrets.

The configuration files come from ``oaas_lab.openstack.config``, the same renderers the local
lab uses, fed with the cluster's addresses (Service DNS names) and the lab's secrets. A file
that holds a password is a Secret, never a ConfigMap. Per-pod values (``my_ip``, ``host``) are
given to oslo.config through its environment source (``OS_DEFAULT__MY_IP``), which wins over
the files, so one Secret serves every replica.

What each service runs (its workload, its bootstrap Job, its configuration files) is written in
its component module; this module turns those specs into what the templates and Secrets need.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oaas_lab import components
from oaas_lab.components import openstack_api as api
from oaas_lab.components.spec import Bootstrap, ConfigFiles
from oaas_lab.openstack import config as osconf
from oaas_lab.secrets import Secret, SecretStore

TOOLBOX = api.TOOLBOX


@dataclass(frozen=True)
class OsService:
    """What a template sees of one OpenStack workload: its spec's workload and main port."""

    component: str
    project: str
    image: str
    command: tuple[str, ...]
    port: int
    probe_path: str
    files: tuple[str, ...]
    per_node: bool


def by_component() -> dict[str, OsService]:
    """The OpenStack workloads, by component, from the component specs."""
    out = {}
    for spec in components.specs():
        work = spec.k8s.workload if spec.k8s else None
        if work is not None:
            out[spec.name] = OsService(
                spec.name, work.project, work.image, work.command,
                spec.entry.port if spec.entry.ports else 0, work.probe_path, work.files,
                work.per_node)
    return out


def bootstraps() -> dict[str, Bootstrap]:
    """Component -> the bootstrap Job its deploy step runs before its workload starts."""
    return {s.name: s.k8s.bootstrap for s in components.specs()
            if s.k8s is not None and s.k8s.bootstrap is not None}


def config_owners() -> dict[str, ConfigFiles]:
    """Component -> how it renders its project's config Secret."""
    out = {}
    for spec in components.specs():
        work = spec.k8s.workload if spec.k8s else None
        if work is not None and work.config is not None:
            out[spec.name] = work.config
    return out


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
    known = components.by_name()
    return osconf.Infra(
        database=f"haproxy.{svc}:{known['haproxy'].ports['mysql']}",
        rabbitmq=[f"rabbitmq-{i}.rabbitmq-peers.{svc}:{known['rabbitmq'].port}"
                  for i in range(replicas.get("rabbitmq", 1))],
        memcached=[f"memcached-{i}.memcached.{svc}:{known['memcached'].port}"
                   for i in range(replicas.get("memcached", 1))],
    )


def api_urls(ns: str, domain: str) -> osconf.Apis:
    """The APIs as the services reach them: their Services."""
    known = components.by_name()

    def url(component: str) -> str:
        return f"http://{component}.{ns}.svc.{domain}:{known[component].port}"

    return osconf.Apis(
        keystone=url("keystone"), glance=url("glance"), placement=url("placement"),
        nova=url("nova-api"), neutron=url("neutron-server"), novncproxy=url("nova-novncproxy"),
    )


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
