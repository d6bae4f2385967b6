"""Real image builds: pause (static C) and memcached (Debian) cold, then from the cache; a push.

Needs root (mmdebstrap builds as root), the tools of scripts/install-deps and a Debian mirror.
The push test starts Debian's ``docker-registry`` on 127.0.0.1 with its own configuration and
stops it by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from oaas_lab import images
from oaas_lab.adapters import shell
from oaas_lab.kernel.results import CheckResult, failed, passed
from oaas_lab.kernel.wait import WaitTimeoutError, wait_for

TOOLS = ("mmdebstrap", "umoci", "skopeo", "gcc")
pytestmark = pytest.mark.lab
NAMES = ["pause", "memcached"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.geteuid() != 0:
        pytest.fail("the image builds need root (mmdebstrap builds as root)")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run scripts/install-deps")
    return tmp_path_factory.mktemp("image-cache")


@pytest.fixture(scope="module")
def built(cache_dir: Path) -> dict[str, images.Built]:
    seen: list[str] = []
    result = images.build(NAMES, "2026.2", cache_dir,
                          progress=lambda name, msg, _t: seen.append(f"{name}: {msg}"))
    assert any(line.startswith("memcached: root file system") for line in seen)
    return {b.name: b for b in result}


def _config(archive: Path) -> dict[str, object]:
    done = shell.run(["skopeo", "inspect", "--config", f"docker-archive:{archive}"], timeout=120)
    config: dict[str, object] = json.loads(done.stdout)["config"]
    return config


def _layers(archive: Path) -> Iterator[tarfile.TarFile]:
    with tarfile.open(archive) as outer:
        manifest = json.loads(outer.extractfile("manifest.json").read())  # type: ignore[union-attr]
        for layer in manifest[0]["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(layer)) as inner:
                yield inner


def _layer_members(archive: Path) -> dict[str, tarfile.TarInfo]:
    return {info.name.removeprefix("./"): info
            for inner in _layers(archive) for info in inner.getmembers()}


def test_a_cold_build_writes_docker_archives_with_their_entrypoints(
    built: dict[str, images.Built], cache_dir: Path
) -> None:
    for name in NAMES:
        b = built[name]
        assert not b.cached
        assert b.ref == images.reference(name, "2026.2")
        assert b.archive.is_file()
        assert b.archive.stat().st_size == b.size
        assert b.archive.is_relative_to(cache_dir / "images" / name)
        config = _config(b.archive)
        assert config["Entrypoint"] == list(images.recipe(name).entrypoint)
    assert _config(built["pause"].archive)["User"] == "65535:65535"
    assert _config(built["memcached"].archive)["User"] == "memcache"
    assert images.archive_ref(built["memcached"].archive) == built["memcached"].ref
    # Nothing of the build is left beside the entries.
    assert not list((cache_dir / "images").glob("*/.build-*"))


def test_the_images_hold_what_their_recipes_say(built: dict[str, images.Built],
                                                tmp_path: Path) -> None:
    pause = _layer_members(built["pause"].archive)
    assert set(pause) == {"pause"}
    assert pause["pause"].mode == 0o755
    memcached = _layer_members(built["memcached"].archive)
    assert {"usr/bin/memcached", "usr/bin/nc.openbsd", "usr/sbin/policy-rc.d"} <= set(memcached)
    assert not any(n.startswith("usr/share/man/") and memcached[n].isfile() for n in memcached)
    # The static pause program runs anywhere and ends with 0 on SIGTERM.
    for inner in _layers(built["pause"].archive):
        inner.extract("pause", tmp_path, filter="tar")
    pid = shell.spawn([str(tmp_path / "pause")], log=tmp_path / "pause.log")
    wait_for(lambda: _handles_sigterm(pid), timeout=10, interval=0.05)
    os.kill(pid, signal.SIGTERM)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_second_build_is_a_cache_hit(built: dict[str, images.Built], cache_dir: Path) -> None:
    again = images.build(NAMES, "2026.2", cache_dir)
    assert [b.cached for b in again] == [True, True]
    assert [(b.ref, b.archive, b.size) for b in again] == [
        (built[n].ref, built[n].archive, built[n].size) for n in NAMES]
    assert all(b.seconds < 1.0 for b in again)
    assert {r.ref for r in images.records(cache_dir)} == {b.ref for b in again}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _handles_sigterm(pid: int) -> CheckResult:
    """Passed once ``pid`` has installed its SIGTERM handler (``SigCgt`` in its status)."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("SigCgt:") and int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)):
            return passed("pause", "handles SIGTERM")
    return failed("pause", "no SIGTERM handler yet")


def _exited(pid: int) -> CheckResult:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return passed("process", "gone")
    return passed("process", "exited") if done else failed("process", "running")


def _stop(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    try:
        wait_for(lambda: _exited(pid), timeout=10, interval=0.1)
        return
    except WaitTimeoutError:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _listening(port: int) -> CheckResult:
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", port)) == 0:
            return passed("registry", f"listening on {port}")
    return failed("registry", f"not listening on {port} yet")


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    if shutil.which("docker-registry") is None:
        pytest.fail("needs Debian's docker-registry: run scripts/install-deps")
    port = _free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'storage'}}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n",
        encoding="utf-8",
    )
    pid = shell.spawn(["docker-registry", "serve", str(config)], log=tmp_path / "registry.log")
    try:
        try:
            wait_for(lambda: _listening(port), timeout=15, interval=0.1)
        except WaitTimeoutError:
            log = (tmp_path / "registry.log").read_text()
            pytest.fail(f"docker-registry did not listen on 127.0.0.1:{port}: {log}")
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(pid)


def test_push_to_a_loopback_registry(built: dict[str, images.Built], registry: str) -> None:
    pause = built["pause"]
    (pushed,) = images.push(pause, registry)
    host = registry.removeprefix("http://")
    assert pushed == f"{host}/oaas-lab/pause:{pause.ref.rsplit(':', 1)[1]}"
    done = shell.run(["skopeo", "inspect", "--config", "--tls-verify=false", f"docker://{pushed}"],
                     timeout=60)
    assert json.loads(done.stdout)["config"]["Entrypoint"] == ["/pause"]
