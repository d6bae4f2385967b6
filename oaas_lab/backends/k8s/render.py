"""Render the lab's Kubernetes objects from the Jinja2 templates in ``templates/``.

The templates hold the shape of each component; everything that varies comes from data: the
replica counts from the configuration (``LabConfig.replicas``, which falls back to the
component catalogue), the images from the release catalogue (which names an oaas-lab image
recipe per component; ``oaas_lab.images.reference`` gives its content-hash reference), the
namespace and StorageClass from ``k8s.*`` settings. Objects come out in deploy order: the
namespace, then the catalogue's ``waves()``, and inside a component the kinds a workload needs
before it starts.

Secrets are rendered from a value provider: ``deploy`` passes the lab's ``SecretStore``,
``render`` passes nothing and every value is masked, so printed manifests never hold one.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

from oaas_lab import components, credentials, images, releases
from oaas_lab.backends.k8s import openstack
from oaas_lab.components import rabbitmq as rabbitmq_component
from oaas_lab.components.spec import Component, K8sNeeds, SecretSpec, Tier
from oaas_lab.config import LabConfig
from oaas_lab.errors import ConfigError, UserError
from oaas_lab.openstack import config as osconf
from oaas_lab.secrets import MASK, SecretStore

TEMPLATES_DIR = Path(__file__).parent / "templates"
RELEASES_FILE = "oaas_lab/data/releases.yaml"

CLUSTER_DOMAIN = "cluster.local"
ROLE_LABEL = "node-role.oaas-lab.io"
"""Nodes carry ``node-role.oaas-lab.io/<role>=true`` (controller, compute, network)."""

MANAGED_BY = "app.kubernetes.io/managed-by"
LAB_LABEL = "oaas-lab.io/lab"
COMPONENT_LABEL = "oaas-lab.io/component"
SPEC_HASH = "oaas-lab.io/spec-hash"
CONFIG_HASH = "oaas-lab.io/config-hash"

NAMESPACE_COMPONENT = "namespace"
"""Pseudo component of the namespace and its network policy (wave 0, not in the catalogue)."""

def templates() -> dict[str, str]:
    """Component -> its template, from the component specs. A component without one is
    reported as skipped, not guessed."""
    return {s.name: s.k8s.template for s in components.specs() if s.k8s is not None}


def deployed(config: LabConfig) -> list[Component]:
    """The components this lab deploys: every one with a template, in catalogue order, the
    OpenStack tier only when ``k8s.openstack`` is on."""
    known = templates()
    return [c for c in components.catalogue() if c.name in known
            and (config.k8s.openstack or c.tier is not Tier.OPENSTACK)]


HELPER_IMAGES = ("busybox",)
"""Images used by init containers of several components; the release must pin them too."""

KIND_ORDER = (
    "Namespace", "NetworkPolicy", "ServiceAccount", "Role", "RoleBinding", "Secret",
    "ConfigMap", "Service", "PodDisruptionBudget", "Job", "StatefulSet", "Deployment",
    "DaemonSet",
)
WORKLOAD_KINDS = ("StatefulSet", "Deployment", "DaemonSet")

# libyaml's safe loader and dumper when PyYAML has them: ten times faster than pure Python.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


SecretValue = Callable[[str, str], str]
"""``value(store_name, kind)`` -> the clear value to put into a Secret."""


def masked(_name: str, _kind: str) -> str:
    """The value provider of ``oaas-lab render``: every secret shows as the mask."""
    return MASK


def from_store(store: SecretStore) -> SecretValue:
    """The value provider of ``oaas-lab deploy``: generated once, kept in the lab's store."""
    return lambda name, kind: store.get(name, kind).reveal()


@dataclass(frozen=True)
class ComponentView:
    """What a template sees of a component."""

    name: str
    role: str
    replicas: int
    quorum: bool
    tier: str
    ports: Mapping[str, int]
    storage: str
    spread_required: bool = False


@dataclass(frozen=True)
class Manifest:
    """One rendered object and where it sits in the deploy order."""

    component: str
    wave: int
    obj: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.obj["kind"])

    @property
    def api_version(self) -> str:
        return str(self.obj["apiVersion"])

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def namespace(self) -> str | None:
        ns = self.obj["metadata"].get("namespace")
        return str(ns) if ns is not None else None

    @property
    def ref(self) -> str:
        """``Kind/name``, as the CLI prints it."""
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class Rendered:
    """The whole stack for one release, in deploy order."""

    release: str
    namespace: str
    manifests: tuple[Manifest, ...]
    skipped: tuple[str, ...] = ()

    def objects(self) -> list[dict[str, Any]]:
        """The plain objects, in order."""
        return [m.obj for m in self.manifests]

    def waves(self) -> list[list[Manifest]]:
        """The manifests grouped by wave."""
        out: dict[int, list[Manifest]] = {}
        for m in self.manifests:
            out.setdefault(m.wave, []).append(m)
        return [out[w] for w in sorted(out)]

    def to_yaml(self) -> str:
        """Every object as one multi-document YAML stream."""
        return yaml.dump_all(self.objects(), Dumper=DUMPER, sort_keys=False,
                             default_flow_style=False)


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 -- YAML, not HTML; values are quoted with tojson
    )


def _view(config: LabConfig, comp: Component) -> ComponentView:
    replicas = config.replicas(comp.name)
    components.check_replicas(comp, replicas)
    return ComponentView(
        name=comp.name,
        role=str(comp.role),
        replicas=replicas,
        quorum=comp.quorum,
        tier=str(comp.tier),
        ports=dict(comp.ports),
        storage=_needs(comp.name).storage,
    )


def _images(release: releases.Release, names: Iterable[str]) -> dict[str, str]:
    """Image key -> the full reference of the oaas-lab image the release names for it (or, when
    it names none, the component's own recipe)."""
    known = {r.name for r in images.recipes()}
    defaults = {s.name: s.k8s.image for s in components.specs() if s.k8s and s.k8s.image}
    refs: dict[str, str] = {}
    for name in names:
        field = f"releases.{release.name}.images.{name}"
        recipe = release.images.get(name) or defaults.get(name)
        if not recipe:
            raise ConfigError(
                RELEASES_FILE, field, f"release {release.name} has no image for {name}",
                f"name one of the image recipes: {', '.join(sorted(known))}",
            )
        if recipe not in known:
            raise ConfigError(
                RELEASES_FILE, field, f"{recipe!r} is not an oaas-lab image recipe",
                f"use one of: {', '.join(sorted(known))} (oaas_lab/images/catalogue.py)",
            )
        # A release without a constraints file still gets the tag its OpenStack image would
        # have: the manifests render, `oaas-lab images build` refuses to build it.
        refs[name] = images.reference(recipe, release)
    return refs


def image_recipes(config: LabConfig, release_name: str | None = None) -> list[str]:
    """The oaas-lab image recipes this lab's manifests run, in first-use order."""
    release = releases.get(release_name or config.release)
    defaults = {s.name: s.k8s.image for s in components.specs() if s.k8s and s.k8s.image}
    out: list[str] = []
    for key in _image_keys(deployed(config)):
        recipe = release.images.get(key) or defaults.get(key) or key
        if recipe not in out:
            out.append(recipe)
    return out


def image_placement(rendered: Rendered) -> dict[str, list[dict[str, str]]]:
    """Per image reference, the node selectors of the pods that run it: a node whose labels
    hold none of them never pulls that image, so the embedded cluster need not load it there."""
    out: dict[str, list[dict[str, str]]] = {}
    for obj in rendered.objects():
        pod = obj.get("spec", {}).get("template", {}).get("spec")
        if not isinstance(pod, dict):
            continue
        selector = {str(k): str(v) for k, v in (pod.get("nodeSelector") or {}).items()}
        for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
            chosen = out.setdefault(str(container["image"]), [])
            if selector not in chosen:
                chosen.append(selector)
    return out


def _needs(component: str) -> K8sNeeds:
    needs = components.spec(component).k8s
    if needs is None:
        raise UserError(f"{component} has no Kubernetes template",
                        hint=f"give oaas_lab/components/{component.replace('-', '_')}.py k8s needs")
    return needs


def _image_keys(comps: Iterable[Component]) -> list[str]:
    services = openstack.by_component()
    boots = openstack.bootstraps()
    keys: list[str] = list(HELPER_IMAGES)
    for comp in comps:
        if comp.name in services:
            keys.append(services[comp.name].image)
            if services[comp.name].per_node:
                keys.append("nova-libvirt")
            if comp.name in boots:
                keys += ["galera", boots[comp.name].image]
                keys += [openstack.TOOLBOX] if boots[comp.name].register else []
        else:
            keys.append(comp.name)
    return list(dict.fromkeys(keys))


def _digest(data: object) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def spec_hash(obj: Mapping[str, Any]) -> str:
    """A digest of everything oaas-lab sets on an object except this digest itself."""
    clean = json.loads(json.dumps(obj))
    annotations = clean.get("metadata", {}).get("annotations", {})
    annotations.pop(SPEC_HASH, None)
    return _digest(clean)


def _secret_objects(
    spec: SecretSpec, value: SecretValue, base: Mapping[str, Any], is_masked: bool
) -> dict[str, Any]:
    clear = {key: value(store_name, kind) for key, (store_name, kind) in spec.values.items()}
    for key, text in spec.files.items():
        filled = text
        for name, val in clear.items():
            filled = filled.replace("{" + name + "}", val)
        clear[key] = filled
    metadata = json.loads(json.dumps(base))
    metadata["name"] = spec.name
    if is_masked:
        metadata["annotations"]["oaas-lab.io/values"] = "masked; oaas-lab deploy generates them"
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "data": {
            key: base64.b64encode(val.encode()).decode("ascii")
            for key, val in sorted(clear.items())
        },
    }


def _render_template(template: str, context: Mapping[str, Any]) -> list[dict[str, Any]]:
    text = _environment().get_template(template).render(**context)
    try:
        docs = [d for d in yaml.load_all(text, Loader=_LOADER) if d]
    except yaml.YAMLError as exc:  # a template bug, not user input: say which template
        raise UserError(f"template {template} renders invalid YAML: {exc}") from None
    return docs


def _kind_rank(obj: Mapping[str, Any]) -> int:
    kind = str(obj.get("kind"))
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


def render(config: LabConfig, release_name: str | None = None,
           secret_value: SecretValue | None = None) -> Rendered:
    """Render every component that has a template, in deploy order.

    ``secret_value`` supplies Secret values; without it they are masked (safe to print).
    Raises ``ConfigError`` for an unknown release or a missing image, ``QuorumError`` for an
    even quorum count.
    """
    release = releases.get(release_name or config.release)
    value = secret_value or masked
    is_masked = secret_value is None
    ns = config.k8s.namespace
    known = templates()
    comps = deployed(config)
    skipped = tuple(c.name for c in components.catalogue() if c.name not in known)
    refs = _images(release, _image_keys(comps))
    views = {c.name: _view(config, c) for c in comps}
    base_context: dict[str, Any] = {
        "ns": ns,
        "lab": config.name,
        "release": release,
        "images": refs,
        "storage_class": config.k8s.storage_class,
        "cluster_domain": CLUSTER_DOMAIN,
        "role_label": ROLE_LABEL,
        "app_user": credentials.GALERA_APP_USER,
        "app_database": credentials.GALERA_APP_DATABASE,
        "galera_slots": max(9, views["galera"].replicas) if "galera" in views else 9,
        "ra_registration_repair": rabbitmq_component.REGISTRATION_REPAIR,
        "rabbitmq_net_ticktime": rabbitmq_component.NET_TICKTIME,
        "memcached_servers": [
            f"memcached-{i}.memcached.{ns}.svc.{CLUSTER_DOMAIN}:"
            f"{components.by_name()['memcached'].port}"
            for i in range(views["memcached"].replicas if "memcached" in views else 0)
        ],
    }
    ns_view = ComponentView(
        name=NAMESPACE_COMPONENT, role="controller", replicas=1, quorum=False,
        tier="infra", ports={}, storage="",
    )
    manifests = [
        Manifest(NAMESPACE_COMPONENT, 0, obj)
        for obj in _render_template("namespace.yaml.j2", {**base_context, "c": ns_view})
    ]
    tier = _OpenStackTier(ns, {n: v.replicas for n, v in views.items()}, value, is_masked)
    for wave_no, wave in enumerate(components.waves(comps), start=1):
        in_wave: list[Manifest] = []
        for comp in wave:
            view = views[comp.name]
            context = {**base_context, "c": view, **tier.context(comp.name)}
            objs = _render_template(known[comp.name], context)
            secret_meta = next(o["metadata"] for o in objs if o["kind"] != "Namespace")
            for secret in _needs(comp.name).secrets:
                objs.append(_secret_objects(secret, value, secret_meta, is_masked))
            objs += tier.secrets(comp.name, secret_meta)
            objs.sort(key=_kind_rank)
            in_wave.extend(Manifest(comp.name, wave_no, o) for o in objs)
        # The deploy order inside a wave: what the workloads need (Jobs run to completion
        # included), then the workloads.
        in_wave.sort(key=lambda m: m.kind in WORKLOAD_KINDS)
        manifests.extend(in_wave)
    _stamp_config_hash([m.obj for m in manifests])
    for m in manifests:
        m.obj["metadata"].setdefault("annotations", {})[SPEC_HASH] = spec_hash(m.obj)
    return Rendered(release.name, ns, tuple(manifests), skipped)


def _references(pod_spec: Mapping[str, Any]) -> set[str]:
    """Names of the ConfigMaps and Secrets a pod template mounts or reads env from."""
    names: set[str] = set()
    for vol in pod_spec.get("volumes", []):
        if "secret" in vol:
            names.add(vol["secret"]["secretName"])
        if "configMap" in vol:
            names.add(vol["configMap"]["name"])
        for src in vol.get("projected", {}).get("sources", []):
            for kind in ("secret", "configMap"):
                if kind in src:
                    names.add(src[kind]["name"])
    for ctr in [*pod_spec.get("initContainers", []), *pod_spec.get("containers", [])]:
        for env in ctr.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                names.add(ref["name"])
    return names


def _stamp_config_hash(objs: list[dict[str, Any]]) -> None:
    """Roll pods when a ConfigMap or Secret they use changes (the seed never did).

    Each pod template gets a digest of exactly the objects it references, so a change of
    ``nova-config`` rolls every nova Deployment and nothing else.
    """
    data = {o["metadata"]["name"]: o.get("data") for o in objs
            if o["kind"] in ("ConfigMap", "Secret")}
    for obj in objs:
        if obj["kind"] in (*WORKLOAD_KINDS, "Job"):
            template = obj["spec"]["template"]
            refs = sorted(n for n in _references(template.get("spec", {})) if n in data)
            if refs:
                digest = _digest([[n, data[n]] for n in refs])
                template.setdefault("metadata", {}).setdefault("annotations", {})[
                    CONFIG_HASH] = digest


class _OpenStackTier:
    """The OpenStack components' template context and Secrets, from one set of secrets."""

    def __init__(self, ns: str, replicas: Mapping[str, int], value: SecretValue,
                 is_masked: bool) -> None:
        self.ns = ns
        self.is_masked = is_masked
        self.value = value
        self.infra = openstack.infra_addresses(ns, CLUSTER_DOMAIN, replicas)
        self.apis = openstack.api_urls(ns, CLUSTER_DOMAIN)
        self._secrets: osconf.LabSecrets | None = None
        self.services = openstack.by_component()
        self.boots = openstack.bootstraps()
        self.configs = openstack.config_owners()

    @property
    def lab_secrets(self) -> osconf.LabSecrets:
        if self._secrets is None:
            self._secrets = osconf.LabSecrets.from_store(openstack.ProvidedStore(self.value))
        return self._secrets

    def context(self, component: str) -> dict[str, Any]:
        svc = self.services.get(component)
        if svc is None:
            return {}
        boot = self.boots.get(component)
        ctx: dict[str, Any] = {"svc": svc, "boot": boot, "toolbox": openstack.TOOLBOX}
        if boot is not None:
            ctx["db_script"] = openstack.db_script(osconf.DATABASES[boot.project], boot.project)
            ctx["register_script"] = (
                openstack.registration_script(boot.register, self.apis) if boot.register else "")
        return ctx

    def secrets(self, component: str, meta: Mapping[str, Any]) -> list[dict[str, Any]]:
        svc = self.services.get(component)
        out: list[dict[str, Any]] = []
        if svc is None:
            return out
        sec = self.lab_secrets
        if _needs(component).identity:
            creds = {"admin-password": sec.admin.reveal()}
            creds.update({f"db-{k}": v for k, v in openstack.db_passwords(sec).items()})
            creds.update({f"service-{k}": v.reveal() for k, v in sec.service.items()})
            out.append(openstack.secret_object("openstack-credentials", meta, creds,
                                               self.is_masked))
            keys = {name: self.value(f"keystone_{name.replace('-', '_')}", "fernet_key")
                    for name in ("0", "1", "credential-0", "credential-1")}
            out.append(openstack.secret_object("keystone-fernet-keys", meta, keys,
                                               self.is_masked))
        config = self.configs.get(component)
        if config is not None:
            files = config(self.infra, self.apis, sec)
            out.append(openstack.secret_object(f"{svc.project}-config", meta, files,
                                               self.is_masked))
        return out
