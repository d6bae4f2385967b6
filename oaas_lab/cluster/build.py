"""Kubernetes and CoreDNS built from their Go modules, cached by version outside the repository.

No Kubernetes binary exists in Debian, PyPI or npm, but the Go module proxy serves
``k8s.io/kubernetes``. ``go install k8s.io/kubernetes/cmd/...@v`` refuses it because its
``go.mod`` replaces every ``k8s.io/*`` staging module with a directory of its own tree, so a
small wrapper module requires ``k8s.io/kubernetes vX`` and points each staging module at its
published ``v0.X`` twin. CoreDNS is built the way its documentation describes for custom
builds: a ``main`` that imports only the plugins the cluster's DNS needs (fewer packages, a
much shorter build).

Layout of the cache (``<cache_dir>/kubernetes/<version>/``): ``src/`` (the wrapper module),
``bin/`` (the binaries), ``SHA256SUMS`` and ``build.json``. ``build.json`` is written last, so
a build that was interrupted is built again instead of being trusted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from oaas_lab.adapters import shell
from oaas_lab.checksums import sha256_file
from oaas_lab.errors import LabError
from oaas_lab.kernel.command import CommandResult

KUBE_COMMANDS = (
    "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy",
)
"""What ``cluster up`` runs; kubectl is not needed (oaas-lab speaks to the API itself)."""

COREDNS_PLUGINS = (
    # The order a query passes through them, as in CoreDNS's own plugin.cfg.
    "reload", "ready", "health", "errors", "log", "loadbalance", "cache", "kubernetes",
)
"""Enough for cluster DNS. No ``forward``: a name outside the cluster is never sent anywhere."""

BUILD_TIMEOUT = 3600.0
"""A cold Kubernetes build took ~10 minutes on 2 cores here; this bounds a stuck one."""

WRAPPER_MODULE = "oaas-lab.local/build"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Pins:
    """The versions the embedded cluster is built from (``data/cluster.yaml``)."""

    kubernetes: str
    coredns: str


@cache
def pins() -> Pins:
    """The pinned versions, read once."""
    text = resources.files("oaas_lab").joinpath("data/cluster.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return Pins(kubernetes=str(data["kubernetes"]), coredns=str(data["coredns"]))


@dataclass(frozen=True)
class Built:
    """Binaries in the cache: where they are, their checksums, and how long the build took."""

    what: str
    version: str
    bin_dir: Path
    sha256: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    cached: bool = False

    def path(self, command: str) -> Path:
        """The binary ``command``."""
        return self.bin_dir / command


# -- pure: what the wrapper modules say -------------------------------------------------------

_STAGING = re.compile(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/", re.MULTILINE)


def staging_modules(kubernetes_go_mod: str) -> list[str]:
    """The ``k8s.io/*`` modules that ``k8s.io/kubernetes`` replaces with its own staging tree."""
    found = sorted(set(_STAGING.findall(kubernetes_go_mod)))
    if not found:
        raise LabError("k8s.io/kubernetes go.mod names no staging modules: an unexpected layout")
    return found


def staging_version(kubernetes_version: str) -> str:
    """``v1.34.4`` -> ``v0.34.4``: staging modules are published at ``v0.<minor>.<patch>``."""
    match = re.fullmatch(r"v1\.(\d+)\.(\d+)", kubernetes_version)
    if match is None:
        raise LabError(f"Kubernetes version {kubernetes_version!r} is not of the form v1.N.M",
                       hint="fix `kubernetes:` in oaas_lab/data/cluster.yaml")
    return f"v0.{match.group(1)}.{match.group(2)}"


def kubernetes_go_mod(version: str, staging: Iterable[str], go_version: str = "1.24") -> str:
    """The wrapper module's ``go.mod``: Kubernetes at ``version``, staging at ``v0.X``."""
    twin = staging_version(version)
    lines = [f"module {WRAPPER_MODULE}/kubernetes", "", f"go {go_version}", "",
             f"require k8s.io/kubernetes {version}", "", "replace ("]
    lines += [f"\t{module} => {module} {twin}" for module in sorted(staging)]
    lines += [")", ""]
    return "\n".join(lines)


def tools_go(packages: Iterable[str], main: bool = False) -> str:
    """A Go file importing ``packages`` for their side effects.

    As a ``tools`` file it keeps the commands' packages in the wrapper's module graph for
    ``go mod tidy``; as ``main`` it is CoreDNS's custom build.
    """
    imports = "\n".join(f'\t_ "{package}"' for package in packages)
    if not main:
        return f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n"
    return (
        "// CoreDNS with only the plugins the cluster's DNS needs.\npackage main\n\nimport (\n"
        '\t"github.com/coredns/coredns/core/dnsserver"\n'
        '\t"github.com/coredns/coredns/coremain"\n'
        f"{imports}\n)\n\n"
        "func init() {\n\tdnsserver.Directives = []string{\n"
        + "".join(f'\t\t"{name}",\n' for name in COREDNS_PLUGINS)
        + "\t}\n}\n\nfunc main() { coremain.Run() }\n"
    )


def coredns_go_mod(version: str, go_version: str = "1.24") -> str:
    """The CoreDNS wrapper module's ``go.mod`` (``go mod tidy`` adds the rest)."""
    return (f"module {WRAPPER_MODULE}/coredns\n\ngo {go_version}\n\n"
            f"require github.com/coredns/coredns {version}\n")


def version_ldflags(version: str) -> str:
    """Linker flags that stamp the version, as Kubernetes' own build does.

    Without them every component reports ``v0.0.0-master``, and the API server's
    compatibility version and the kubelet's version skew checks go wrong.
    """
    match = re.fullmatch(r"v(\d+)\.(\d+)\.\d+", version)
    if match is None:
        raise LabError(f"Kubernetes version {version!r} is not of the form v1.N.M",
                       hint="fix `kubernetes:` in oaas_lab/data/cluster.yaml")
    major, minor = match.groups()
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {package}.gitVersion={version}", f"-X {package}.gitMajor={major}",
                  f"-X {package}.gitMinor={minor}", f"-X {package}.gitTreeState=clean"]
    return " ".join(flags)


# -- building ---------------------------------------------------------------------------------

def _go_env() -> dict[str, str]:
    # GOTOOLCHAIN=local: never download another toolchain; the installed go builds it all.
    # Go's own module and build caches stay where the go command keeps them.
    return {"CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}


def _go(argv: list[str], *, cwd: Path, env: dict[str, str], what: str,
        on_line: Progress | None = None, timeout: float = 900.0) -> CommandResult:
    if shutil.which("go") is None:
        raise LabError(f"cannot build {what}: the `go` command is not on PATH",
                       hint="install Go 1.24 or newer (the Kubernetes build needs it)")
    done = shell.stream(["go", *argv], on_line=on_line or (lambda _line: None),
                        timeout=timeout, env=env, cwd=cwd)
    if not done.ok:
        last = [line for line in done.stdout.splitlines() if line.strip()][-3:]
        raise LabError(f"building {what} failed: go {argv[0]} exited {done.returncode}: "
                       + " | ".join(last),
                       hint="the whole output is above; check that the Go module proxy answers")
    return done




def _cached(root: Path, what: str, version: str, commands: Iterable[str]) -> Built | None:
    record = root / "build.json"
    if not record.is_file():
        return None
    data = json.loads(record.read_text(encoding="utf-8"))
    bin_dir = root / "bin"
    if not all((bin_dir / command).is_file() for command in commands):
        return None
    return Built(what, version, bin_dir, dict(data["sha256"]), float(data["seconds"]), True)


def _finish(root: Path, what: str, version: str, commands: Iterable[str],
            started: float) -> Built:
    bin_dir = root / "bin"
    sums = {command: sha256_file(bin_dir / command) for command in commands}
    (root / "SHA256SUMS").write_text(
        "".join(f"{digest}  bin/{command}\n" for command, digest in sums.items()),
        encoding="utf-8")
    seconds = round(time.monotonic() - started, 1)
    record = {"what": what, "version": version, "sha256": sums, "seconds": seconds,
              "go": shell.run(["go", "version"], check=False).stdout.strip()}
    tmp = root / "build.json.tmp"
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, root / "build.json")
    return Built(what, version, bin_dir, sums, seconds, False)


class _Counter:
    """Turns ``go build -v`` package lines into a progress line every 50 packages."""

    def __init__(self, what: str, progress: Progress, started: float) -> None:
        self.what, self.progress, self.started, self.count = what, progress, started, 0

    def __call__(self, line: str) -> None:
        if line.startswith(("go: downloading", "go: finding")):
            return
        self.count += 1
        if self.count % 50 == 0:
            self.progress(f"{self.what}: {self.count} packages compiled, "
                          f"{time.monotonic() - self.started:.0f}s")


def _build(cache_dir: Path, name: str, version: str, commands: Iterable[str],
           progress: Progress, *, prepare: Callable[[Path, dict[str, str], str], None],
           targets: list[str], ldflags: str, note: str = "") -> Built:
    """The cached binaries of ``name`` at ``version``, or a fresh build of them.

    ``prepare(src, env, what)`` writes the wrapper module's sources into ``src``; ``go mod
    tidy`` completes its requirements and ``go build`` writes ``targets`` into ``bin/``.
    """
    what = f"{name} {version}"
    root = cache_dir / name / version
    found = _cached(root, what, version, commands)
    if found is not None:
        return found
    started = time.monotonic()
    env = _go_env()
    src = root / "src"
    src.mkdir(parents=True, exist_ok=True)
    progress(f"{what}: not in {root}, building it{note}")
    prepare(src, env, what)
    progress(f"{what}: resolving modules")
    _go(["mod", "tidy"], cwd=src, env=env, what=what)
    bin_dir = root / "bin"
    bin_dir.mkdir(exist_ok=True)
    _go(["build", "-v", "-trimpath", "-ldflags", ldflags, "-o", f"{bin_dir}/", *targets],
        cwd=src, env=env, what=what, on_line=_Counter(what, progress, started),
        timeout=BUILD_TIMEOUT)
    built = _finish(root, what, version, commands, started)
    progress(f"{what}: built in {built.seconds:.0f}s")
    return built


def kubernetes(cache_dir: Path, progress: Progress, version: str | None = None) -> Built:
    """The Kubernetes server binaries at ``version`` (the pinned one by default).

    Reused from the cache when present; otherwise built with the ordinary ``go`` command
    (``-trimpath``, version stamped) and their checksums recorded.
    """
    version = version or pins().kubernetes
    packages = [f"k8s.io/kubernetes/cmd/{command}" for command in KUBE_COMMANDS]

    def prepare(src: Path, env: dict[str, str], what: str) -> None:
        # The upstream go.mod lists the staging modules to point at their published twins.
        info = _go(["mod", "download", "-json", f"k8s.io/kubernetes@{version}"],
                   cwd=src, env=env, what=what)
        upstream = Path(json.loads(_json_object(info.stdout))["GoMod"]).read_text(
            encoding="utf-8")
        (src / "go.mod").write_text(kubernetes_go_mod(version, staging_modules(upstream)),
                                    encoding="utf-8")
        (src / "tools.go").write_text(tools_go(packages), encoding="utf-8")

    return _build(cache_dir, "kubernetes", version, KUBE_COMMANDS, progress, prepare=prepare,
                  targets=packages, ldflags=version_ldflags(version),
                  note=" (about 10 minutes on 2 cores the first time)")


def coredns(cache_dir: Path, progress: Progress, version: str | None = None) -> Built:
    """CoreDNS at ``version`` with the cluster's plugin set, cached like Kubernetes."""
    version = version or pins().coredns
    plugins = [f"github.com/coredns/coredns/plugin/{name}" for name in COREDNS_PLUGINS]

    def prepare(src: Path, _env: dict[str, str], _what: str) -> None:
        (src / "go.mod").write_text(coredns_go_mod(version), encoding="utf-8")
        (src / "main.go").write_text(tools_go(plugins, main=True), encoding="utf-8")

    # The wrapper module's last path element names the binary: coredns.
    return _build(cache_dir, "coredns", version, ["coredns"], progress, prepare=prepare,
                  targets=["."], ldflags="-s -w")


def _json_object(output: str) -> str:
    """The JSON object in ``go mod download -json``'s output (download lines may precede it)."""
    start = output.find("{")
    if start < 0:
        raise LabError("go mod download printed no module information")
    return output[start:]
