"""The container images of oaas-lab as data: one recipe per image, and the tag it hashes to.

A recipe says what goes into an image, never how it is built (that is ``build``): a Debian
root file system (``bookworm``, ``mmdebstrap --variant=minbase``) with packages, or nothing
(``scratch``); files, static C programs, a Python virtualenv of the release's OpenStack
services; the entrypoint, command, environment and user.

Tags are content hashes: the sha256 of the recipe's canonical JSON (``spec``), which holds
the packages, the sha256 of every file and C source, the entrypoint, environment, and for an
OpenStack image the release's constraints file and pins. Change any of them and the tag
changes; change nothing and a rebuild is a cache hit. The Debian packages themselves are
whatever the mirror holds for ``bookworm`` (security updates included) when the image is
built: the tag names the recipe, not the resolved package versions.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from oaas_lab import releases
from oaas_lab.checksums import sha256_file
from oaas_lab.errors import UserError

FORMAT = 1
"""Bump when the builder changes what it makes of the same recipe: every tag changes with it."""

SUITE = "bookworm"
VARIANT = "minbase"
REGISTRY = "localhost"
"""The registry part of a local image's reference: nothing is pulled from it."""
REPOSITORY = "oaas-lab"
TAG_LENGTH = 16

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Documentation, manual pages and translations are most of a minbase file system and nothing
# in a container reads them; the copyright files stay.
DPKG_OPTIONS: tuple[str, ...] = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/lintian/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
)

POLICY_RC_D = (
    "#!/bin/sh\n# oaas-lab: packages installed in a container never start services\nexit 101\n"
)

OPENSTACK_VENV = "/opt/openstack"
"""Where the OpenStack images hold their virtualenv; its ``bin`` is first on ``PATH``."""

OPENSTACK_DISTRIBUTIONS: tuple[str, ...] = (
    "keystone", "glance", "openstack-placement", "nova", "neutron", "horizon",
    "python-openstackclient", "openstacksdk", "keystoneauth1", "gunicorn",
    "python-memcached", "websockify", "libvirt-python",
)
"""The top-level distributions: pyproject's ``openstack`` extra (a unit test keeps them equal).

The release's ``local:`` pins (releases.yaml) are added to them, as the local lab gets them
too (PyMySQL and pymemcache come with oaas-lab itself there; the services need both).
"""

RABBITMQ_UID = 999
"""The rabbitmq user's uid and gid in its image; the manifests run the pod as it."""

PIP_VERSION = "26.3"
"""pip inside the virtualenv (Debian's 23.0 is upgraded first, as scripts/install-deps does)."""


@dataclass(frozen=True)
class File:
    """One file put into the image (root-owned), from exactly one source.

    ``text``: the content itself; ``resource``: a file shipped beside this module; ``input``:
    the name of a file the caller gives at build time (``inputs={name: path}``), such as a
    binary built elsewhere.
    """

    path: str
    mode: int = 0o644
    text: str | None = None
    resource: str | None = None
    input: str | None = None


@dataclass(frozen=True)
class Program:
    """A static C program compiled from a source shipped beside this module."""

    path: str
    source: str
    cflags: tuple[str, ...] = ("-Os", "-static", "-s", "-Wall", "-Wextra", "-Werror")


@dataclass(frozen=True)
class Venv:
    """A Python virtualenv holding the release's OpenStack services from PyPI.

    Installed with the release's constraints file, the same way the local lab installs them.
    """

    path: str = OPENSTACK_VENV
    distributions: tuple[str, ...] = OPENSTACK_DISTRIBUTIONS
    pip: str = PIP_VERSION


@dataclass(frozen=True)
class Recipe:
    """What one image holds.

    ``base`` is ``debian`` (a minbase root file system with ``packages``) or ``scratch`` (only
    ``files`` and ``programs``). ``build_packages`` are installed for ``venv`` and
    ``commands`` and purged afterwards. ``commands`` run as root inside the image (``sh -c``)
    after the packages. ``user`` is the OCI ``user`` (``name`` or ``uid:gid``).
    """

    name: str
    description: str
    base: Literal["debian", "scratch"] = "debian"
    packages: tuple[str, ...] = ()
    build_packages: tuple[str, ...] = ()
    venv: Venv | None = None
    commands: tuple[str, ...] = ()
    files: tuple[File, ...] = ()
    programs: tuple[Program, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    user: str = ""
    workdir: str = ""

    @property
    def inputs(self) -> tuple[str, ...]:
        """Names of the files the caller must give at build time."""
        return tuple(f.input for f in self.files if f.input)

    @property
    def needs_release(self) -> bool:
        """Whether the image depends on the release (its OpenStack virtualenv)."""
        return self.venv is not None


def _debian_env(*extra: tuple[str, str], path: str = DEFAULT_PATH) -> tuple[tuple[str, str], ...]:
    return (("PATH", path), ("LANG", "C.UTF-8"), *extra)


_OPENSTACK_PACKAGES: tuple[str, ...] = (
    "python3", "python3-venv", "ca-certificates", "netbase", "iproute2", "procps",
    # libvirt-python links against it (the -dev package that builds it is purged).
    "libvirt0",
    # nova-novncproxy serves noVNC's web client from /usr/share/novnc, as in the local lab.
    "novnc",
)
# libvirt-python (and any other sdist) is compiled during the pip install.
_OPENSTACK_BUILD: tuple[str, ...] = ("gcc", "libc6-dev", "python3-dev", "libvirt-dev", "pkg-config")
_OPENSTACK_ENV = _debian_env(path=f"{OPENSTACK_VENV}/bin:{DEFAULT_PATH}")

RECIPES: tuple[Recipe, ...] = (
    Recipe(
        name="etcd",
        description="etcd from Debian's etcd-server (etcdctl included)",
        packages=("etcd-server", "etcd-client"),
        entrypoint=("/usr/bin/etcd",),
        env=_debian_env(),
    ),
    Recipe(
        name="galera",
        description="MariaDB with Galera, rsync/mariabackup SST and the client for health checks",
        packages=(
            "mariadb-server", "mariadb-client", "mariadb-backup", "galera-4", "rsync", "socat",
            # the SST scripts look up listeners and processes with these
            "lsof", "iproute2", "procps",
        ),
        # mariadbd keeps its socket and PID file there; no init script creates it in a pod.
        commands=("install -d -o mysql -g mysql -m 0755 /run/mysqld",),
        # Debian's 50-server.cnf says `user = mysql`: started as root, mariadbd drops to it.
        entrypoint=("/usr/sbin/mariadbd",),
        env=_debian_env(),
    ),
    Recipe(
        name="rabbitmq",
        description="RabbitMQ from Debian's rabbitmq-server",
        packages=("rabbitmq-server", "procps"),
        # A fixed uid, so that a pod can run as the rabbitmq user by number (runAsNonRoot
        # cannot check a name): Debian's wrapper accepts root (it switches) or that user.
        commands=(
            f"usermod -u {RABBITMQ_UID} rabbitmq && groupmod -g {RABBITMQ_UID} rabbitmq"
            " && chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /var/log/rabbitmq",
        ),
        entrypoint=("/usr/sbin/rabbitmq-server",),
        env=_debian_env(),
    ),
    Recipe(
        name="memcached",
        description="memcached, with nc for the readiness probe",
        packages=("memcached", "netcat-openbsd"),
        entrypoint=("/usr/bin/memcached",),
        cmd=("-l", "0.0.0.0", "-p", "11211"),  # noqa: S104 -- the pod's own address space
        env=_debian_env(),
        # memcached refuses to run as root without -u; the package's user needs no flag.
        user="memcache",
    ),
    Recipe(
        name="haproxy",
        description="HAProxy from Debian",
        packages=("haproxy",),
        entrypoint=("/usr/sbin/haproxy",),
        cmd=("-W", "-db", "-f", "/etc/haproxy/haproxy.cfg"),
        env=_debian_env(),
    ),
    Recipe(
        name="tools",
        description="a small shell image for init containers: sh, coreutils, wget, nc, ip",
        packages=("wget", "netcat-openbsd", "iproute2", "procps"),
        cmd=("/bin/sh",),
        env=_debian_env(),
    ),
    Recipe(
        name="openstack",
        description="the release's OpenStack services from PyPI in one virtualenv",
        packages=_OPENSTACK_PACKAGES,
        build_packages=_OPENSTACK_BUILD,
        venv=Venv(),
        cmd=("/bin/bash",),
        env=_OPENSTACK_ENV,
    ),
    Recipe(
        name="nova-compute",
        description="the openstack image's services plus libvirt, QEMU and Open vSwitch",
        packages=(
            *_OPENSTACK_PACKAGES,
            "libvirt-daemon-system", "libvirt-clients", "qemu-system-x86", "qemu-utils",
            "openvswitch-switch",
        ),
        build_packages=_OPENSTACK_BUILD,
        venv=Venv(),
        cmd=("/bin/bash",),
        env=_OPENSTACK_ENV,
    ),
    Recipe(
        name="pause",
        description="the pod sandbox process: a static C program (pause.c)",
        base="scratch",
        programs=(Program("/pause", "pause.c"),),
        entrypoint=("/pause",),
        user="65535:65535",
    ),
    Recipe(
        name="coredns",
        description="CoreDNS: a static binary given at build time (inputs={'coredns': PATH})",
        base="scratch",
        files=(File("/coredns", mode=0o755, input="coredns"),),
        entrypoint=("/coredns",),
        cmd=("-conf", "/etc/coredns/Corefile"),
    ),
)


def oci_arch() -> str:
    """This host's architecture as OCI names it: images are built for the host they run on."""
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def recipes() -> tuple[Recipe, ...]:
    """Every image recipe, in the order ``build`` makes them by default."""
    return RECIPES


def recipe(name: str) -> Recipe:
    """The recipe called ``name``; a ``UserError`` naming the known ones otherwise."""
    for candidate in RECIPES:
        if candidate.name == name:
            return candidate
    raise UserError(
        f"unknown image {name!r}",
        hint=f"use one of: {', '.join(r.name for r in RECIPES)} (oaas_lab/images/catalogue.py)",
    )


def resource_bytes(name: str) -> bytes:
    """A file shipped beside this module (a C source, a script)."""
    return resources.files("oaas_lab.images").joinpath(name).read_bytes()




def input_path(rec: Recipe, name: str, inputs: Mapping[str, Path] | None) -> Path:
    """The path the caller gave for ``rec``'s input ``name``; a ``UserError`` if none or absent."""
    given = (inputs or {}).get(name)
    if given is None:
        raise UserError(
            f"image {rec.name!r} packages a file given at build time ({name!r}) and none was given",
            hint=f"pass inputs={{{name!r}: PATH}} (CLI: --input {name}=PATH)",
        )
    path = Path(given)
    if not path.is_file():
        raise UserError(
            f"input {name!r} of image {rec.name!r}: {path} is not a file",
            hint="give the path of an existing file",
        )
    return path


def requirements(venv: Venv, release: releases.Release) -> list[str]:
    """The distributions pip installs into ``venv``: the extra plus the release's pins."""
    pins = {name.lower(): (name, version) for name, version in release.local.items()}
    names = {d.lower(): d for d in venv.distributions}
    names.update({key: name for key, (name, _version) in pins.items()})
    out = []
    for key in sorted(names):
        pin = pins.get(key)
        out.append(f"{pin[0]}=={pin[1]}" if pin else names[key])
    return out


def _file_spec(rec: Recipe, item: File, inputs: Mapping[str, Path] | None) -> dict[str, Any]:
    sources = [s for s in (item.text, item.resource, item.input) if s is not None]
    if len(sources) != 1:
        raise UserError(f"image {rec.name!r}: file {item.path} needs exactly one source",
                        hint="set one of text, resource, input (oaas_lab/images/catalogue.py)")
    if item.text is not None:
        digest = hashlib.sha256(item.text.encode()).hexdigest()
    elif item.resource is not None:
        digest = hashlib.sha256(resource_bytes(item.resource)).hexdigest()
    else:
        assert item.input is not None  # exactly one source, checked above
        digest = sha256_file(input_path(rec, item.input, inputs))
    return {"path": item.path, "mode": oct(item.mode), "sha256": digest}


def _venv_spec(venv: Venv, release: releases.Release) -> dict[str, Any]:
    text = release.constraints()
    constraints: dict[str, Any]
    if text is None:
        # Nothing can be built from this; the tag still names what the release would run.
        constraints = {"missing": release.constraints_file}
    else:
        constraints = {"sha256": hashlib.sha256(text.encode()).hexdigest()}
    return {
        "path": venv.path,
        "pip": venv.pip,
        "requirements": requirements(venv, release),
        "constraints": constraints,
    }


def spec(
    rec: Recipe, release: str | releases.Release, inputs: Mapping[str, Path] | None = None
) -> dict[str, Any]:
    """The canonical content of ``rec`` for ``release``: exactly what the tag hashes.

    ``release`` matters only to an image with a virtualenv. Raises ``UserError`` for a
    missing input and ``ConfigError`` for an unknown release.
    """
    rel = releases.get(release) if isinstance(release, str) else release
    out: dict[str, Any] = {
        "format": FORMAT,
        "name": rec.name,
        "arch": oci_arch(),
        "base": rec.base,
        "files": [_file_spec(rec, f, inputs) for f in rec.files],
        "programs": [
            {
                "path": p.path,
                "source_sha256": hashlib.sha256(resource_bytes(p.source)).hexdigest(),
                "cflags": list(p.cflags),
            }
            for p in rec.programs
        ],
        "entrypoint": list(rec.entrypoint),
        "cmd": list(rec.cmd),
        "env": [list(pair) for pair in rec.env],
        "user": rec.user,
        "workdir": rec.workdir,
    }
    if rec.base == "debian":
        out["debian"] = {
            "suite": SUITE,
            "variant": VARIANT,
            "dpkg": list(DPKG_OPTIONS),
            "policy_rc_d": hashlib.sha256(POLICY_RC_D.encode()).hexdigest(),
            "packages": sorted(set(rec.packages)),
            "build_packages": sorted(set(rec.build_packages)),
            "commands": list(rec.commands),
        }
    if rec.venv is not None:
        out["venv"] = _venv_spec(rec.venv, rel)
    return out


def digest(data: Mapping[str, Any]) -> str:
    """The tag of a spec: the first hex digits of the sha256 of its canonical JSON."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:TAG_LENGTH]


def tag(
    rec: Recipe, release: str | releases.Release, inputs: Mapping[str, Path] | None = None
) -> str:
    """The image's tag: a content hash of ``spec(rec, release, inputs)``."""
    return digest(spec(rec, release, inputs))


def registry_host(registry: str) -> str:
    """``host[:port]`` of a registry given as a URL (``http://127.0.0.1:5000``) or bare."""
    host = registry.split("://", 1)[-1].strip().rstrip("/")
    if not host or "/" in host:
        raise UserError(f"registry {registry!r} is not host[:port] or a URL of one",
                        hint="e.g. 127.0.0.1:5000 or https://registry.example")
    return host


def reference(
    name: str,
    release: str | releases.Release,
    registry: str | None = None,
    inputs: Mapping[str, Path] | None = None,
) -> str:
    """The full reference of image ``name``: ``localhost/oaas-lab/<name>:<tag>``.

    With ``registry`` (``host:port`` or a URL) the reference points there instead.
    """
    host = REGISTRY if registry is None else registry_host(registry)
    return f"{host}/{REPOSITORY}/{name}:{tag(recipe(name), release, inputs)}"
