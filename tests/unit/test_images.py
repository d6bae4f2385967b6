"""Image recipes, their content-hash tags, the cache and the CLI's refusals (no root, no build)."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import tarfile
import tomllib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from oaas_lab import images, releases
from oaas_lab.cli import images_cmds
from oaas_lab.cli.context import CliContext
from oaas_lab.errors import ConfigError, LabError, MissingToolError, UserError
from oaas_lab.images import cache, catalogue, transfer

REPO = Path(__file__).resolve().parents[2]
TAG = re.compile(r"^[0-9a-f]{16}$")


def test_the_same_recipe_gives_the_same_tag_and_a_hex_content_hash() -> None:
    rec = images.recipe("memcached")
    assert images.tag(rec, "2026.2") == images.tag(images.recipe("memcached"), "2026.2")
    assert TAG.match(images.tag(rec, "2026.2"))
    # An infrastructure image does not depend on the OpenStack release.
    assert images.tag(rec, "2026.2") == images.tag(rec, "2025.1")


@pytest.mark.parametrize("change", [
    {"packages": ("memcached", "netcat-openbsd", "curl")},
    {"entrypoint": ("/usr/bin/memcached", "-v")},
    {"cmd": ("-p", "11212")},
    {"env": (("PATH", "/bin"),)},
    {"user": "root"},
    {"commands": ("true",)},
    {"files": (images.File("/etc/x", text="x"),)},
])
def test_any_change_of_the_recipe_changes_the_tag(change: dict[str, object]) -> None:
    rec = images.recipe("memcached")
    assert images.tag(dataclasses.replace(rec, **change), "2026.2") != images.tag(rec, "2026.2")


def test_package_order_and_the_description_do_not_change_the_tag() -> None:
    rec = images.recipe("galera")
    shuffled = dataclasses.replace(rec, packages=tuple(reversed(rec.packages)),
                                   description="other words")
    assert images.tag(shuffled, "2026.2") == images.tag(rec, "2026.2")


def test_the_constraints_file_changes_the_openstack_tags_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = {r.name: images.tag(r, "2026.2") for r in images.recipes() if not r.inputs}
    original = releases.Release.constraints

    def changed(self: releases.Release) -> str | None:
        text = original(self)
        return None if text is None else text.replace("nova==34.0.0", "nova==34.0.1")

    monkeypatch.setattr(releases.Release, "constraints", changed)
    after = {r.name: images.tag(r, "2026.2") for r in images.recipes() if not r.inputs}
    assert {n for n in before if before[n] != after[n]} == {"openstack", "nova-compute"}


def test_the_release_pins_change_the_openstack_tag() -> None:
    rel = releases.get("2026.2")
    bumped = rel.model_copy(update={"local": {**rel.local, "keystone": "30.0.1"}})
    rec = images.recipe("openstack")
    assert images.tag(rec, bumped) != images.tag(rec, rel)
    assert "keystone==30.0.1" in catalogue.requirements(rec.venv or images.Venv(), bumped)


def test_the_requirements_are_the_extra_plus_the_release_pins() -> None:
    rel = releases.get("2026.2")
    reqs = catalogue.requirements(images.Venv(), rel)
    names = {r.split("==")[0].lower() for r in reqs}
    assert names == {d.lower() for d in images.OPENSTACK_DISTRIBUTIONS} | {
        d.lower() for d in rel.local}
    assert "PyMySQL==1.2.4" in reqs  # the services' database driver, as in the local lab
    assert all("==" in r for r in reqs)  # 2026.2 pins every one of them


def test_the_openstack_distributions_are_pyprojects_openstack_extra() -> None:
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["openstack"]
    assert list(images.OPENSTACK_DISTRIBUTIONS) == extra


def test_the_pause_source_changes_the_pause_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = images.recipe("pause")
    before = images.tag(rec, "2026.2")
    source = catalogue.resource_bytes("pause.c")
    assert b"pause()" in source
    monkeypatch.setattr(catalogue, "resource_bytes",
                        lambda name: source + b"\n/* changed */\n" if name == "pause.c" else b"")
    assert images.tag(rec, "2026.2") != before


def test_coredns_is_tagged_by_the_binary_it_packages(tmp_path: Path) -> None:
    binary = tmp_path / "coredns"
    binary.write_bytes(b"\x7fELF one")
    rec = images.recipe("coredns")
    first = images.tag(rec, "2026.2", {"coredns": binary})
    binary.write_bytes(b"\x7fELF two")
    assert images.tag(rec, "2026.2", {"coredns": binary}) != first
    with pytest.raises(UserError, match=r"--input coredns=PATH"):
        images.tag(rec, "2026.2")
    with pytest.raises(UserError, match="is not a file"):
        images.tag(rec, "2026.2", {"coredns": tmp_path / "absent"})


def test_reference_format_and_registry() -> None:
    tag = images.tag(images.recipe("etcd"), "2026.2")
    assert images.reference("etcd", "2026.2") == f"localhost/oaas-lab/etcd:{tag}"
    assert (images.reference("etcd", "2026.2", registry="http://127.0.0.1:5000/")
            == f"127.0.0.1:5000/oaas-lab/etcd:{tag}")
    with pytest.raises(UserError, match="not host"):
        images.reference("etcd", "2026.2", registry="https://a/b")


def test_unknown_image_and_unknown_release_are_clear_errors() -> None:
    with pytest.raises(UserError, match=r"unknown image 'kolla'.*use one of: etcd, galera"):
        images.recipe("kolla")
    with pytest.raises(ConfigError, match=r"unknown release '1999\.1'"):
        images.tag(images.recipe("openstack"), "1999.1")


def test_every_release_names_known_recipes_and_a_release_without_constraints_still_tags(
) -> None:
    known = {r.name for r in images.recipes()}
    for rel in releases.catalogue().values():
        assert set(rel.images.values()) <= known, rel.name
    assert releases.get("2025.2").constraints() is None
    assert TAG.match(images.tag(images.recipe("openstack"), "2025.2"))
    assert images.tag(images.recipe("openstack"), "2025.2") != images.tag(
        images.recipe("openstack"), "2025.1")


def test_build_refuses_a_release_without_constraints_before_building(tmp_path: Path) -> None:
    with pytest.raises(UserError) as err:
        images.build(["memcached", "openstack"], "2025.2", tmp_path)
    assert "oaas_lab/data/openstack-constraints-2025.2.txt" in err.value.one_line()
    assert "--release 2026.2" in err.value.one_line()
    assert not (tmp_path / "images").exists()
    with pytest.raises(UserError, match="unknown image"):
        images.build(["memcached", "nope"], "2026.2", tmp_path)


def test_a_missing_tool_names_the_tool_and_install_deps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(MissingToolError) as err:
        images.build(["pause"], "2026.2", tmp_path)
    assert err.value.tool == "gcc"
    assert "scripts/install-deps" in err.value.one_line()
    assert err.value.exit_code == 2


def _fake_entry(cache_dir: Path, name: str, release: str = "2026.2") -> cache.Record:
    tag = images.tag(images.recipe(name), release)
    directory = cache.entry_dir(cache_dir, name, tag)
    directory.mkdir(parents=True)
    archive = directory / cache.ARCHIVE
    ref = f"localhost/oaas-lab/{name}:{tag}"
    with tarfile.open(archive, "w") as tar:
        data = json.dumps([{"Config": "c.json", "RepoTags": [ref], "Layers": []}]).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    record = cache.Record(name, tag, ref, archive, archive.stat().st_size, 12.5,
                          "2026-01-01T00:00:00+00:00", release, {"name": name})
    cache.write_record(directory, record)
    return record


def test_a_cached_image_is_not_built_again_and_needs_no_tool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _fake_entry(tmp_path, "memcached")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    seen: list[str] = []
    (built,) = images.build(["memcached"], "2026.2", tmp_path,
                            progress=lambda name, msg, _t: seen.append(f"{name}: {msg}"))
    assert built.cached
    assert (built.ref, built.archive, built.size) == (record.ref, record.archive, record.size)
    assert seen == [f"memcached: cached {record.ref}"]
    assert [r.ref for r in images.records(tmp_path)] == [record.ref]


def test_a_damaged_entry_or_a_staging_directory_never_counts_as_built(tmp_path: Path) -> None:
    record = _fake_entry(tmp_path, "memcached")
    with open(record.archive, "ab") as out:
        out.write(b"truncated elsewhere")
    assert cache.read_record(record.archive.parent) is None
    assert images.records(tmp_path) == []
    # A staging directory of a build that died is removed by the next one.
    stale = cache.images_dir(tmp_path) / "haproxy" / f"{cache.STAGING_PREFIX}999999999-aa"
    stale.mkdir(parents=True)
    (stale / cache.RECORD).write_text("{}")
    with cache.staging(tmp_path, "haproxy") as stage:
        assert stage.is_dir()
        assert str(os.getpid()) in stage.name
    assert not stale.exists()
    assert not stage.exists()


def test_commit_is_one_rename_and_the_first_build_wins(tmp_path: Path) -> None:
    record = _fake_entry(tmp_path, "etcd")
    with cache.staging(tmp_path, "etcd") as stage:
        (stage / "x").write_text("second")
        assert not cache.commit(stage, record.archive.parent)
    assert cache.read_record(record.archive.parent) == record


def test_archive_ref_reads_the_record_or_the_manifest(tmp_path: Path) -> None:
    record = _fake_entry(tmp_path, "tools")
    assert images.archive_ref(record.archive) == record.ref
    moved = tmp_path / "elsewhere.tar"
    moved.write_bytes(record.archive.read_bytes())
    assert images.archive_ref(moved) == record.ref
    (tmp_path / "junk.tar").write_bytes(b"junk")
    with pytest.raises(UserError, match="not a docker-archive"):
        images.archive_ref(tmp_path / "junk.tar")


def test_push_verifies_tls_except_on_loopback(tmp_path: Path) -> None:
    assert transfer._is_loopback("127.0.0.1:5000")
    assert transfer._is_loopback("localhost:5000")
    assert transfer._is_loopback("[::1]:5000")
    assert not transfer._is_loopback("registry.example:5000")
    record = _fake_entry(tmp_path, "pause")
    built = images.Built(record.name, record.ref, record.archive, record.size, 0.0, True)
    with pytest.raises(UserError, match="plain HTTP and not on this host"):
        images.push(built, "http://registry.example:5000")


def _cli(tmp_path: Path, args: list[str]) -> tuple[int, str, BaseException | None]:
    group = click.Group()
    images_cmds.register(group)
    obj = CliContext(config_path=None, overrides={"cache_dir": str(tmp_path)})
    result = CliRunner().invoke(group, args, obj=obj)
    return result.exit_code, result.output, result.exception


def test_cli_build_refuses_before_building(tmp_path: Path) -> None:
    _code, _out, exc = _cli(tmp_path, ["images", "build", "--release", "2025.1", "openstack"])
    assert isinstance(exc, UserError)
    assert exc.exit_code == 2
    assert "openstack-constraints-2025.1.txt" in exc.one_line()
    _code, _out, exc = _cli(tmp_path, ["images", "build", "--input", "coredns"])
    assert isinstance(exc, UserError)
    assert "NAME=PATH" in exc.one_line()


def test_cli_list_shows_the_cache_and_push_needs_a_build(tmp_path: Path) -> None:
    record = _fake_entry(tmp_path, "memcached")
    code, out, exc = _cli(tmp_path, ["images", "list"])
    assert (code, exc) == (0, None)
    row = next(line for line in out.splitlines() if "memcached" in line)
    assert record.tag in row
    assert "yes" in row
    _code, _out, exc = _cli(tmp_path, ["images", "push", "--registry", "127.0.0.1:1", "etcd"])
    assert isinstance(exc, UserError)
    assert "oaas-lab images build --release 2026.2 etcd" in exc.one_line()


FAKE_CTR = """#!/bin/sh
# A stand-in for containerd's ctr: -a SOCKET -n NAMESPACE images (ls -q | import ARCHIVE)
echo "$*" >> "$FAKE_CTR_STATE/calls"
case "$5 $6" in
  "images ls") cat "$FAKE_CTR_STATE/listed" 2>/dev/null ;;
  "images import") cat "$7.ref" >> "$FAKE_CTR_STATE/listed" ;;
  *) exit 3 ;;
esac
"""


def test_load_imports_what_containerd_does_not_list_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ctr").write_text(FAKE_CTR)
    (bin_dir / "ctr").chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_CTR_STATE", str(state))
    socket = tmp_path / "containerd.sock"
    with pytest.raises(LabError, match=r"containerd socket .* does not exist"):
        images.load([], socket)
    socket.write_text("")
    present = _fake_entry(tmp_path, "pause")
    absent = _fake_entry(tmp_path, "memcached")
    (state / "listed").write_text(present.ref + "\n")
    Path(f"{absent.archive}.ref").write_text(absent.ref + "\n")
    built = images.Built(absent.name, absent.ref, absent.archive, absent.size, 0.0, True)
    loaded = images.load([present.archive, built], socket)
    assert [(x.ref, x.imported) for x in loaded] == [(present.ref, False), (absent.ref, True)]
    calls = (state / "calls").read_text().splitlines()
    assert calls == [
        f"-a {socket} -n k8s.io images ls -q",
        f"-a {socket} -n k8s.io images import {absent.archive}",
        f"-a {socket} -n k8s.io images ls -q",
    ]
    # a second load finds both and imports nothing
    assert not any(x.imported for x in images.load([present.archive, built], socket))
    # an import that does not show up is an error, not a silent success
    (state / "listed").write_text("")
    Path(f"{absent.archive}.ref").write_text("localhost/oaas-lab/other:1\n")
    with pytest.raises(LabError, match="does not list"):
        images.load([built], socket)
