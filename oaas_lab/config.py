"""The lab configuration: typed, documented, strict.

Precedence, highest first: command-line flag -> ``OAAS_LAB_*`` environment -> lab file -> the
defaults below. The lab file is optional; with none the defaults make a working ``local`` lab.
Unknown keys are refused, and every error names the file (or variable), the dotted field path
and the fix, on one line.

Environment variables map onto fields with ``__`` between levels, for example
``OAAS_LAB_RELEASE=2026.2`` or ``OAAS_LAB_LOCAL__SUBNET=10.77.0.0/24``. ``OAAS_LAB_CONFIG``
names the lab file. Secrets are never part of this file: see ``oaas_lab.secrets``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from oaas_lab import components, releases
from oaas_lab.errors import ConfigError, QuorumError

ENV_PREFIX = "OAAS_LAB_"
ENV_CONFIG = "OAAS_LAB_CONFIG"
DEFAULT_SUBNET = "172.31.89.0/24"


def _private_net(value: str, prefixlen: int, example: str) -> str:
    """``value`` if it is a private IPv4 network of ``prefixlen`` bits, else a ValueError."""
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IPv4 network ({exc})") from exc
    if net.prefixlen != prefixlen or not net.is_private or net.is_loopback:
        raise ValueError(f"{value!r} must be a private IPv4 /{prefixlen} such as {example}")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ComponentSettings(_Strict):
    """Per-component overrides; anything unset falls back to the component catalogue."""

    replicas: int | None = Field(
        default=None, description="member count (odd for quorum components)"
    )
    ready_timeout: float | None = Field(
        default=None, gt=0, description="seconds the component may take to become ready"
    )


class LocalSettings(_Strict):
    """Settings of the ``local`` lab (network namespaces on this host)."""

    subnet: str = Field(
        default=DEFAULT_SUBNET,
        description="private IPv4 /24 of the lab bridge; .1 is the host, pods from .10 on",
    )
    controller_nodes: int = Field(default=3, ge=1, le=9, description="controller node labels")
    compute_nodes: int = Field(default=2, ge=1, le=9, description="compute/network node labels")
    openstack: bool = Field(
        default=True,
        description="run the OpenStack tier too (false: the infrastructure tier only)",
    )

    @field_validator("subnet")
    @classmethod
    def _private_24(cls, value: str) -> str:
        return _private_net(value, 24, DEFAULT_SUBNET)


class K8sSettings(_Strict):
    """Settings of the ``k8s`` lab (any cluster reachable by kubeconfig)."""

    kubeconfig: str | None = Field(default=None, description="path of the kubeconfig file")
    context: str | None = Field(default=None, description="kubeconfig context to use")
    namespace: str = Field(default="oaas", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    storage_class: str | None = Field(default=None, description="StorageClass of the volumes")
    openstack: bool = Field(
        default=True,
        description="deploy the OpenStack tier too (false: the infrastructure tier only)",
    )
    cluster: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9]{0,5}$",
        description=(
            "the embedded cluster this lab runs on (the lab name it was started with, "
            "`oaas-lab --name NAME cluster up`): its admin kubeconfig unless kubeconfig is "
            "given, and a killed member's container is SIGKILLed on its node, as a crash"
        ),
    )


DEFAULT_CLUSTER_SUBNET = "172.31.90.0/24"


class ClusterSettings(_Strict):
    """The embedded Kubernetes cluster that ``oaas-lab cluster up`` starts on this host."""

    subnet: str = Field(
        default=DEFAULT_CLUSTER_SUBNET,
        description="private IPv4 /24 of the nodes' bridge; .1 is the host, nodes from .10 on",
    )
    pod_cidr: str = Field(
        default="10.244.0.0/16", description="pod addresses; node N gets the /24 number N"
    )
    service_cidr: str = Field(default="10.96.0.0/16", description="ClusterIP addresses")
    controller_nodes: int = Field(default=3, ge=1, le=9, description="controller-N nodes")
    compute_nodes: int = Field(default=2, ge=1, le=9, description="compute-N nodes")

    @field_validator("subnet")
    @classmethod
    def _private_24(cls, value: str) -> str:
        return _private_net(value, 24, DEFAULT_CLUSTER_SUBNET)

    @field_validator("pod_cidr", "service_cidr")
    @classmethod
    def _private_16(cls, value: str) -> str:
        return _private_net(value, 16, "10.244.0.0/16")


class Timeouts(_Strict):
    """Upper bounds, in seconds, on whole operations."""

    up: float = Field(default=900.0, gt=0, description="whole `oaas-lab up`")
    down: float = Field(default=120.0, gt=0, description="whole `oaas-lab down`")
    command: float = Field(default=60.0, gt=0, description="one command inside a pod")


class LabConfig(_Strict):
    """One lab: what it is called, what it runs, and where."""

    name: str = Field(
        default="oaas",
        pattern=r"^[a-z][a-z0-9]{0,5}$",
        description="lab name; 1-6 lowercase letters/digits (it prefixes interface names)",
    )
    lab: Literal["local", "k8s"] = Field(default="local", description="which lab backend")
    release: str = Field(default="2026.2", description="OpenStack release from the catalogue")
    state_dir: str = Field(
        default="/var/lib/oaas-lab", description="parent directory of every lab's state"
    )
    cache_dir: str = Field(
        default="/var/cache/oaas-lab",
        description="built Kubernetes binaries and images, keyed by version (shared by labs)",
    )
    local: LocalSettings = LocalSettings()
    k8s: K8sSettings = K8sSettings()
    cluster: ClusterSettings = ClusterSettings()
    timeouts: Timeouts = Timeouts()
    components: dict[str, ComponentSettings] = Field(default_factory=dict)

    @field_validator("release")
    @classmethod
    def _known_release(cls, value: str) -> str:
        known = releases.catalogue()
        if value not in known:
            raise ValueError(
                f"unknown release {value!r}; the catalogue has: {', '.join(sorted(known))}"
            )
        return value

    @field_validator("components")
    @classmethod
    def _known_components(
        cls, value: dict[str, ComponentSettings]
    ) -> dict[str, ComponentSettings]:
        known = components.by_name()
        for name in value:
            if name not in known:
                raise ValueError(
                    f"unknown component {name!r}; known: {', '.join(sorted(known))}"
                )
        return value

    @property
    def lab_dir(self) -> Path:
        """This lab's own state directory (secrets, logs, data)."""
        return Path(self.state_dir) / self.name

    def replicas(self, component: str) -> int:
        """The configured member count of a component."""
        override = self.components.get(component)
        if override is not None and override.replicas is not None:
            return override.replicas
        return components.by_name()[component].replicas

    def ready_timeout(self, component: str) -> float:
        """Seconds a component may take to become ready."""
        override = self.components.get(component)
        if override is not None and override.ready_timeout is not None:
            return override.ready_timeout
        return components.by_name()[component].ready_timeout


def _dotted(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _fix_for(err: Mapping[str, Any]) -> str:
    kind = str(err.get("type", ""))
    if kind == "extra_forbidden":
        return "remove it or check its spelling (see `oaas-lab config show` for the known keys)"
    if kind.startswith("literal_error"):
        return f"use one of: {err.get('ctx', {}).get('expected', '')}"
    if kind.startswith("string_pattern"):
        return "use a value matching the documented pattern"
    return "correct the value"


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or key == ENV_CONFIG:
            continue
        path = key[len(ENV_PREFIX):].lower().split("__")
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return data


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _refuse_repeated_keys(source: str, node: yaml.Node | None, path: tuple[str, ...]) -> None:
    """A mapping that gives a key twice is refused: YAML keeps the last value silently, which
    hides the typo or the stale line an operator meant to delete."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    source, ".".join((*path, key)),
                    f"given twice (lines {seen[key]} and {line}); YAML would keep the last",
                    "keep one of them")
            seen[key] = line
            _refuse_repeated_keys(source, value_node, (*path, key))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _refuse_repeated_keys(source, item, (*path, str(index)))


def _read_file(path: Path) -> dict[str, Any]:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, "", "file not found", "give an existing lab file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(source, "", f"is not UTF-8 text (byte {exc.start} cannot be decoded)",
                          "save the lab file as UTF-8 YAML") from None
    except OSError as exc:
        raise ConfigError(
            source, "", f"cannot read ({exc.strerror})", "check its permissions"
        ) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        _refuse_repeated_keys(source, root, ())
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(source, where, "not valid YAML", "fix the YAML syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(source, "", "must be a mapping of settings", "see README for an example")
    return data


def load(
    path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> LabConfig:
    """Build the effective configuration.

    ``path`` (the ``--config`` flag) wins over ``OAAS_LAB_CONFIG``; ``overrides`` are flag
    values (dotted keys allowed) and win over the environment, which wins over the file.
    Raises ``ConfigError`` naming the source and the dotted field.
    """
    env = os.environ if environ is None else environ
    chosen = path if path is not None else env.get(ENV_CONFIG)
    source = str(chosen) if chosen else "defaults"
    file_data = _read_file(Path(chosen)) if chosen else {}
    env_data = _env_overrides(env)
    flag_data: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        node = flag_data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    merged = _merge(_merge(file_data, env_data), flag_data)
    try:
        config = LabConfig.model_validate(merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        top = str(loc[0]) if loc else ""
        origin = source
        if _has_path(flag_data, loc):
            origin = "--" + top.replace("_", "-")
        elif _has_path(env_data, loc):
            origin = ENV_PREFIX + "__".join(str(p) for p in loc).upper()
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = "unknown key"
        raise ConfigError(origin, _dotted(loc), msg, _fix_for(err)) from None
    for name, settings in config.components.items():
        if settings.replicas is not None:
            try:
                components.check_replicas(components.by_name()[name], settings.replicas)
            except QuorumError as exc:
                raise ConfigError(
                    source, f"components.{name}.replicas", exc.message, exc.hint
                ) from None
    return config


def _has_path(data: Mapping[str, Any], loc: tuple[int | str, ...]) -> bool:
    node: Any = data
    for part in loc:
        if not isinstance(node, Mapping) or str(part) not in node:
            return False
        node = node[str(part)]
    return True


def as_dict(config: LabConfig) -> dict[str, Any]:
    """The effective configuration as plain data (it never holds secrets)."""
    return config.model_dump(mode="json")
