"""Build images without a Docker engine: mmdebstrap, gcc, umoci and skopeo.

An image is at most two layers:

1. a Debian root file system (``debian`` recipes): ``mmdebstrap --mode=root
   --variant=minbase`` writes it as a tarball, with the recipe's packages, its commands and
   its OpenStack virtualenv (pip inside the chroot, with the release's constraints file)
   done in customize hooks. mmdebstrap keeps services from starting while it installs (its
   own ``policy-rc.d``) and takes the mirror Debian's defaults name (``deb.debian.org`` plus
   updates and security);
2. the recipe's own files, written here with ``tarfile``: the image's ``policy-rc.d`` (so apt
   in a container never starts services either), the recipe's files and its static C
   programs (``gcc -static``).

``umoci`` adds the layers verbatim to an OCI layout and writes the configuration
(entrypoint, command, environment, user); ``skopeo`` turns it into the docker-archive that
``ctr images import`` reads. Every command goes through ``oaas_lab.adapters.shell``.
"""

from __future__ import annotations

import datetime
import io
import os
import shlex
import shutil
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oaas_lab import releases
from oaas_lab.adapters import shell
from oaas_lab.errors import CommandError, LabError, MissingToolError, UserError
from oaas_lab.images import cache
from oaas_lab.images.cache import Built
from oaas_lab.images.catalogue import (
    DPKG_OPTIONS,
    POLICY_RC_D,
    REGISTRY,
    REPOSITORY,
    SUITE,
    VARIANT,
    File,
    Recipe,
    input_path,
    oci_arch,
    recipe,
    recipes,
    requirements,
    resource_bytes,
    spec,
)
from oaas_lab.images.catalogue import digest as spec_digest

Progress = Callable[[str, str, float], None]
"""``progress(image, message, elapsed seconds)``; may be called from a watcher thread."""

TOOLS: dict[str, tuple[str, str]] = {
    "mmdebstrap": ("mmdebstrap", "builds the images' root file systems from Debian packages"),
    "gcc": ("gcc", "compiles the static programs of scratch images (pause)"),
    "umoci": ("umoci", "assembles the OCI image from its layers"),
    "skopeo": ("skopeo", "writes the docker-archive that containerd imports, pushes images"),
    "ctr": ("containerd", "imports images into a node's containerd"),
}
"""Tool -> (Debian package, what it is needed for)."""

MMDEBSTRAP_TIMEOUT = 1200.0
VENV_TIMEOUT = 3600.0
"""An OpenStack image installs ~200 distributions from PyPI inside the chroot."""
LAYER_TIMEOUT = 1200.0
WATCH_SECONDS = 5.0
LAYER_MTIME = 0
"""Files written into a layer carry this mtime, so the same recipe gives the same layer."""

HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
"""What the host trusts; pip in the chroot trusts the same (a TLS-intercepting proxy's CA)."""
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy")

_CHROOT_ENV = ("env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8")
"""What a command inside the chroot sees: nothing of the host's environment (its PIP_* settings
name host paths); the pip steps add back the proxy variables and the host's CA bundle."""


def require_tool(tool: str) -> None:
    """Raise ``MissingToolError`` (naming the package and scripts/install-deps) if absent."""
    if shutil.which(tool) is None:
        package, purpose = TOOLS.get(tool, (tool, "is needed to build images"))
        raise MissingToolError(tool, package, purpose)


def _tools_for(rec: Recipe) -> list[str]:
    tools = ["umoci", "skopeo"]
    if rec.base == "debian":
        tools.insert(0, "mmdebstrap")
    if rec.programs:
        tools.insert(0, "gcc")
    return tools


def default_names(inputs: Mapping[str, Path] | None = None) -> list[str]:
    """What ``build`` makes when no name is given: every recipe whose inputs are given."""
    given = set(inputs or {})
    return [r.name for r in recipes() if set(r.inputs) <= given]


@dataclass(frozen=True)
class _Job:
    rec: Recipe
    tag: str
    ref: str
    spec: dict[str, Any]


class _Reporter:
    """Progress of one image: elapsed time from its start, and a watcher over its logs."""

    def __init__(self, name: str, progress: Progress | None) -> None:
        self.name = name
        self.progress = progress
        self.start = time.monotonic()

    def __call__(self, message: str) -> None:
        if self.progress is not None:
            self.progress(self.name, message, time.monotonic() - self.start)

    @contextmanager
    def watching(self, step: str, logs: Sequence[Path]) -> Iterator[None]:
        """Report ``step`` now, then the newest line of ``logs`` every few seconds."""
        self(step)
        stop = threading.Event()

        def watch() -> None:
            last = ""
            while not stop.wait(WATCH_SECONDS):
                line = _newest_line(logs)
                if line and line != last:
                    last = line
                    self(f"{step}: {line[:110]}")

        thread = threading.Thread(target=watch, name=f"images-{self.name}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def _newest_line(logs: Sequence[Path]) -> str:
    existing = [p for p in logs if p.exists()]
    if not existing:
        return ""
    newest = max(existing, key=lambda p: p.stat().st_mtime)
    with open(newest, "rb") as handle:
        handle.seek(max(0, newest.stat().st_size - 4096))
        lines = [ln.strip() for ln in handle.read().decode(errors="replace").splitlines()]
    return next((ln for ln in reversed(lines) if ln), "")


def _plan(
    names: Sequence[str], release: releases.Release, inputs: Mapping[str, Path] | None
) -> list[_Job]:
    jobs: list[_Job] = []
    for name in dict.fromkeys(names):
        rec = recipe(name)
        if rec.venv is not None and release.constraints() is None:
            raise UserError(
                f"image {name!r} cannot be built for release {release.name}: it has no "
                f"constraints file {release.constraints_file}",
                hint="build for a release that has one (e.g. --release 2026.2), or add the "
                     "file: the exact pins of a working install of the release's services",
            )
        data = spec(rec, release, inputs)
        tag = spec_digest(data)
        jobs.append(_Job(rec, tag, f"{REGISTRY}/{REPOSITORY}/{name}:{tag}", data))
    return jobs


def build(
    names: Sequence[str],
    release: str,
    cache_dir: Path,
    *,
    progress: Progress | None = None,
    inputs: Mapping[str, Path] | None = None,
    coredns_binary: Path | None = None,
) -> list[Built]:
    """Build the images ``names`` (all buildable ones if empty) for ``release``.

    An image whose tag is already in ``<cache_dir>/images/`` is not built again. ``inputs``
    gives the files recipes take at build time (``{"coredns": path}``; ``coredns_binary`` is
    short for that). Everything is checked before anything is built: unknown names, a
    release without constraints for an OpenStack image and missing inputs raise
    ``UserError``, a missing tool ``MissingToolError``; a failed build raises ``LabError``
    naming its log. Images are built one after the other, in the order given.
    """
    if coredns_binary is not None:
        inputs = {**(inputs or {}), "coredns": Path(coredns_binary)}
    rel = releases.get(release)
    jobs = _plan(list(names) or default_names(inputs), rel, inputs)
    todo = [j for j in jobs if cache.read_record(cache.entry_dir(cache_dir, j.rec.name, j.tag))
            is None]
    for job in todo:
        for tool in _tools_for(job.rec):
            require_tool(tool)
        if job.rec.base == "debian" and os.geteuid() != 0:
            raise UserError(
                f"building image {job.rec.name!r} needs root: mmdebstrap creates its root "
                "file system as root",
                hint="run it as root (sudo)",
            )
    return [_build_one(job, rel, Path(cache_dir), inputs, progress) for job in jobs]


def _build_one(
    job: _Job,
    release: releases.Release,
    cache_dir: Path,
    inputs: Mapping[str, Path] | None,
    progress: Progress | None,
) -> Built:
    report = _Reporter(job.rec.name, progress)
    final = cache.entry_dir(cache_dir, job.rec.name, job.tag)
    found = cache.read_record(final)
    if found is not None:
        report(f"cached {job.ref}")
        return Built(job.rec.name, job.ref, found.archive, found.size,
                     time.monotonic() - report.start, cached=True)
    with cache.staging(cache_dir, job.rec.name) as stage:
        try:
            layers: list[tuple[Path, str]] = []
            if job.rec.base == "debian":
                layers.append((_debian_rootfs(job.rec, release, stage, cache_dir, report),
                               f"oaas-lab: Debian {SUITE} {VARIANT} root file system"))
            layers.append((_files_layer(job.rec, stage, inputs, report),
                           "oaas-lab: the recipe's files and programs"))
            archive = _archive(job, layers, stage, report)
        except CommandError as exc:
            raise _failure(job, stage, exc) from None
        seconds = time.monotonic() - report.start
        record = cache.Record(
            name=job.rec.name, tag=job.tag, ref=job.ref, archive=archive,
            size=archive.stat().st_size, seconds=seconds,
            built_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            release=release.name, spec=job.spec,
        )
        cache.write_record(stage, record)
        for leftover in stage.iterdir():
            if leftover.is_dir():
                cache.remove_tree(leftover)
            elif leftover.name not in (cache.ARCHIVE, cache.RECORD):
                leftover.unlink()
        if not cache.commit(stage, final):
            report("built, but another build committed the same image first")
    found = cache.read_record(final)
    if found is None:
        raise LabError(f"image {job.rec.name} was built but {final} holds no valid entry")
    report(f"built {job.ref} ({found.size / 1e6:.1f} MB) in {seconds:.1f}s")
    return Built(job.rec.name, job.ref, found.archive, found.size, seconds, cached=False)


def _failure(job: _Job, stage: Path, exc: CommandError) -> LabError:
    """Keep the build's logs beside the cache entry and say where they are."""
    kept = stage.parent / f"failed-{job.tag}.log"
    with open(kept, "w", encoding="utf-8") as out:
        out.write(f"$ {shlex.join(exc.argv)}\nexit {exc.returncode}\n{exc.stderr}\n")
        for log in sorted(stage.glob("*.log")):
            out.write(f"\n===== {log.name}\n{log.read_text(encoding='utf-8', errors='replace')}")
    return LabError(f"building image {job.rec.name} failed: {_first_error(stage) or exc.message}",
                    hint=f"read {kept}")


def _first_error(stage: Path) -> str:
    """The line that says what went wrong: the hooks' error (pip's), else mmdebstrap's."""
    for name in ("hooks.log", "mmdebstrap.log"):
        log = stage / name
        if not log.exists():
            continue
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        errors = [ln.strip() for ln in lines if ln.startswith(("ERROR", "E:", "error:"))]
        if errors:
            # mmdebstrap's own last words ("mmdebstrap failed to run") say less than its first.
            return (errors[0] if name == "mmdebstrap.log" else errors[-1])[:300]
    return ""


# --- layer 1: the Debian root file system -----------------------------------------------------


def _in_chroot(argv: Sequence[str], log: Path) -> str:
    """A customize hook running ``argv`` inside the chroot ("$1"), its output to ``log``."""
    inner = shlex.join([*_CHROOT_ENV, *argv])
    return f'chroot "$1" {inner} >>{shlex.quote(str(log))} 2>&1'


def _venv_hooks(rec: Recipe, release: releases.Release, stage: Path, cache_dir: Path,
                log: Path) -> list[str]:
    assert rec.venv is not None  # only called for recipes with a virtualenv
    venv = rec.venv
    text = release.constraints()
    assert text is not None  # _plan refused releases without a constraints file
    build_dir = "/tmp/oaas-build"  # noqa: S108 -- inside the chroot, removed by the last hook
    (stage / "constraints.txt").write_text(text, encoding="utf-8")
    (stage / "requirements.txt").write_text("\n".join(requirements(venv, release)) + "\n",
                                            encoding="utf-8")
    pip_cache = cache.images_dir(cache_dir) / cache.PIP_CACHE
    pip_cache.mkdir(parents=True, exist_ok=True)
    pip = f"{venv.path}/bin/pip"
    # PIP_CONSTRAINT (not only -c) so that the isolated environments pip builds sdists in
    # (libvirt-python) are held to the same pins.
    pip_env = ["env", "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1",
               f"PIP_CONSTRAINT={build_dir}/constraints.txt"]
    pip_env += [f"{key}={value}" for key, value in sorted(os.environ.items())
                if key.lower() in _PROXY_VARIABLES]
    hooks = [
        f'mkdir -p "$1{build_dir}" "$1/root/.cache/pip"',
        f"upload {shlex.quote(str(stage / 'constraints.txt'))} {build_dir}/constraints.txt",
        f"upload {shlex.quote(str(stage / 'requirements.txt'))} {build_dir}/requirements.txt",
    ]
    if HOST_CA_BUNDLE.is_file():
        # PyPI is reached the way the host reaches it: trusting what the host trusts (a TLS
        # proxy's CA, say). The bundle stays in the build directory, not in the image.
        hooks.append(f"upload {shlex.quote(str(HOST_CA_BUNDLE))} {build_dir}/host-ca.crt")
        pip_env.append(f"PIP_CERT={build_dir}/host-ca.crt")
    return [
        *hooks,
        f"sync-in {shlex.quote(str(pip_cache))} /root/.cache/pip",
        _in_chroot(["python3", "-m", "venv", venv.path], log),
        _in_chroot([*pip_env, pip, "install", "--progress-bar", "off", f"pip=={venv.pip}"], log),
        _in_chroot([*pip_env, pip, "install", "--progress-bar", "off",
                    "-c", f"{build_dir}/constraints.txt", "-r", f"{build_dir}/requirements.txt"],
                   log),
        # the whole set must be consistent, as the local lab's is
        _in_chroot([pip, "check"], log),
        f"sync-out /root/.cache/pip {shlex.quote(str(pip_cache))}",
        f'rm -rf "$1/root/.cache" "$1{build_dir}"',
    ]


def _debian_rootfs(rec: Recipe, release: releases.Release, stage: Path, cache_dir: Path,
                   report: _Reporter) -> Path:
    out = stage / "rootfs.tar"
    mm_log = stage / "mmdebstrap.log"
    hook_log = stage / "hooks.log"
    argv = [
        "mmdebstrap", "--mode=root", f"--variant={VARIANT}", "--format=tar",
        f"--logfile={mm_log}",
        "--include=" + ",".join(sorted({*rec.packages, *rec.build_packages})),
        *(f"--dpkgopt={opt}" for opt in DPKG_OPTIONS),
    ]
    hooks: list[str] = []
    if rec.venv is not None:
        hooks += _venv_hooks(rec, release, stage, cache_dir, hook_log)
    hooks += [_in_chroot(["/bin/sh", "-c", command], hook_log) for command in rec.commands]
    if rec.build_packages:
        hooks.append(_in_chroot(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "purge",
                                 "-y", "--auto-remove", *sorted(set(rec.build_packages))],
                                hook_log))
        # Purging must not have taken a package the image needs with it: every one of them
        # must still be installed (a purged one is not even listed, hence the count).
        wanted = sorted(set(rec.packages))
        query = shlex.join(["dpkg-query", "-W", "--showformat=${db:Status-Status}\\n", *wanted])
        hooks.append(f'test "$(chroot "$1" {query} 2>>{shlex.quote(str(hook_log))} '
                     f"| grep -c '^installed$')\" = {len(wanted)} "
                     f"|| {{ echo 'a purge removed a package of the image' >>"
                     f"{shlex.quote(str(hook_log))}; exit 1; }}")
    # The host's resolver and name were copied in for the build; a runtime provides its own.
    hooks.append(': > "$1/etc/resolv.conf"; : > "$1/etc/hostname"')
    argv += [f"--customize-hook={hook}" for hook in hooks]
    argv += [SUITE, str(out)]
    timeout = VENV_TIMEOUT if rec.venv is not None else MMDEBSTRAP_TIMEOUT
    step = "root file system (mmdebstrap" + (", pip" if rec.venv else "") + ")"
    # mmdebstrap's chroot goes into the staging directory, beside the cache, not into /tmp.
    with report.watching(step, [mm_log, hook_log]):
        shell.run(argv, timeout=timeout, env={"TMPDIR": str(stage)})
    return out


# --- layer 2: the recipe's own files ------------------------------------------------------------


def _tar_entry(tar: tarfile.TarFile, path: str, data: bytes | None, mode: int) -> None:
    info = tarfile.TarInfo(path.lstrip("/"))
    info.mtime = LAYER_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode = mode
    if data is None:
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def _file_bytes(rec: Recipe, item: File, inputs: Mapping[str, Path] | None) -> bytes:
    if item.text is not None:
        return item.text.encode()
    if item.resource is not None:
        return resource_bytes(item.resource)
    assert item.input is not None  # spec() checked that every file has one source
    return input_path(rec, item.input, inputs).read_bytes()


def _compile(rec: Recipe, stage: Path, report: _Reporter) -> dict[str, bytes]:
    built: dict[str, bytes] = {}
    for number, program in enumerate(rec.programs):
        source = stage / f"program-{number}-{Path(program.source).name}"
        source.write_bytes(resource_bytes(program.source))
        binary = stage / f"program-{number}"
        report(f"compiling {program.source} -> {program.path}")
        done = shell.run(["gcc", *program.cflags, "-o", str(binary), str(source)],
                         timeout=300, check=False)
        if not done.ok:
            if "cannot find -lc" in done.stderr:
                raise MissingToolError("libc.a", "libc6-dev",
                                       "is the static C library gcc -static links against")
            raise CommandError(list(done.argv), done.returncode, done.stderr)
        built[program.path] = binary.read_bytes()
    return built


def _files_layer(rec: Recipe, stage: Path, inputs: Mapping[str, Path] | None,
                 report: _Reporter) -> Path:
    entries: dict[str, tuple[bytes, int]] = {}
    if rec.base == "debian":
        entries["/usr/sbin/policy-rc.d"] = (POLICY_RC_D.encode(), 0o755)
    for item in rec.files:
        entries[item.path] = (_file_bytes(rec, item, inputs), item.mode)
    for path, data in _compile(rec, stage, report).items():
        entries[path] = (data, 0o755)
    layer = stage / "files.tar"
    with tarfile.open(layer, "w", format=tarfile.PAX_FORMAT) as tar:
        if rec.base == "scratch":
            # Nothing below provides the parents; over a root file system they exist already
            # and an entry here would replace their owner and mode.
            parents = {str(p) for path in entries for p in Path(path).parents if str(p) != "/"}
            for parent in sorted(parents):
                _tar_entry(tar, parent, None, 0o755)
        for path in sorted(entries):
            data, mode = entries[path]
            _tar_entry(tar, path, data, mode)
    return layer


# --- the image: OCI layout, configuration, docker-archive ---------------------------------------


def _archive(job: _Job, layers: Sequence[tuple[Path, str]], stage: Path,
             report: _Reporter) -> Path:
    rec = job.rec
    image = f"{stage / 'oci'}:{job.tag}"
    shell.run(["umoci", "init", "--layout", str(stage / "oci")], timeout=60)
    shell.run(["umoci", "new", "--image", image], timeout=60)
    for layer, created_by in layers:
        report(f"layer {layer.name} ({layer.stat().st_size / 1e6:.0f} MB, compressing)")
        shell.run(["umoci", "raw", "add-layer", "--image", image,
                   f"--history.created_by={created_by}", str(layer)], timeout=LAYER_TIMEOUT)
        layer.unlink()  # the layout holds it compressed now
    config = ["umoci", "config", "--image", image, "--no-history",
              f"--architecture={oci_arch()}", "--os=linux",
              f"--config.label=org.opencontainers.image.title={rec.name}",
              f"--config.label=org.opencontainers.image.description={rec.description}",
              f"--config.label=org.opencontainers.image.version={job.tag}"]
    config += [f"--config.entrypoint={part}" for part in rec.entrypoint]
    config += [f"--config.cmd={part}" for part in rec.cmd]
    config += [f"--config.env={key}={value}" for key, value in rec.env]
    if rec.user:
        config.append(f"--config.user={rec.user}")
    if rec.workdir:
        config.append(f"--config.workingdir={rec.workdir}")
    shell.run(config, timeout=60)
    archive = stage / cache.ARCHIVE
    report("writing the docker-archive (skopeo)")
    shell.run(["skopeo", "copy", "--quiet", f"oci:{image}", f"docker-archive:{archive}:{job.ref}"],
              timeout=LAYER_TIMEOUT)
    return archive
