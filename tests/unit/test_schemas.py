"""The migrated-schema cache: what is restored, what is saved, and the fall-back."""

from __future__ import annotations

import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from oaas_lab.backends.local import schemas
from oaas_lab.backends.local.schemas import Before, SchemaCache
from oaas_lab.errors import CommandError
from oaas_lab.kernel.command import CommandResult


class FakeGalera:
    """A pod runner whose ``mariadb`` keeps each database as the text last loaded into it."""

    def __init__(self) -> None:
        self.databases: dict[str, str] = {}

    def run_in(self, pod: str, argv: Sequence[str], *, timeout: float = 30.0,
               input_text: str | None = None, check: bool = True,
               env: Mapping[str, str] | None = None) -> CommandResult:
        out = ""
        if argv[0] == "mariadb-dump":
            out = self.databases.get(argv[-1], "")
        elif argv[:2] == ["mariadb", "-N"]:
            statement = argv[-1]
            name = statement.split("'")[1] if "'" in statement else statement.split("`")[1]
            if statement.startswith("SELECT"):
                out = "1" if self.databases.get(name) else "0"
            else:
                self.databases[name] = ""
        else:
            self.databases[argv[1]] = input_text or ""
        return CommandResult(tuple(argv), 0, out, "")

    def signal_program(self, program: str, signame: str) -> None:
        raise NotImplementedError


def test_cache_key_follows_the_installed_packages(tmp_path: Path) -> None:
    site = tmp_path / "env" / "lib" / "python3.11" / "site-packages"
    (site / "nova-32.0.0.dist-info").mkdir(parents=True)
    python = str(tmp_path / "env" / "bin" / "python")
    first = schemas.cache_key(python)
    assert first == schemas.cache_key(python)
    (site / "nova-32.0.0.dist-info").rename(site / "nova-32.0.1.dist-info")
    assert schemas.cache_key(python) != first


def test_first_lab_migrates_and_saves_the_second_restores(tmp_path: Path) -> None:
    galera = FakeGalera()
    cache = SchemaCache(tmp_path, "k", galera, "galera-0")
    migrations: list[str] = []

    def migrate() -> None:
        migrations.append("run")
        if not galera.databases.get("nova"):
            galera.databases["nova"] = "CREATE TABLE instances (...);"

    assert schemas.migrate(cache, ["nova"], migrate) is Before.EMPTY
    saved = tmp_path / "k" / "nova.sql"
    assert saved.read_text() == "CREATE TABLE instances (...);"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(saved.parent.stat().st_mode) == 0o700

    galera.databases.clear()  # a new lab
    assert schemas.migrate(cache, ["nova"], migrate) is Before.RESTORED
    assert galera.databases["nova"] == "CREATE TABLE instances (...);"
    assert migrations == ["run", "run"]  # the migration command still checks the heads


def test_a_database_in_use_is_neither_restored_nor_saved(tmp_path: Path) -> None:
    galera = FakeGalera()
    galera.databases["keystone"] = "lab data"
    cache = SchemaCache(tmp_path, "k", galera, "galera-0")
    assert schemas.migrate(cache, ["keystone"], lambda: None) is Before.IN_USE
    assert not (tmp_path / "k" / "keystone.sql").exists()


def test_a_restored_schema_the_migration_refuses_is_migrated_from_scratch(
        tmp_path: Path) -> None:
    galera = FakeGalera()
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "glance.sql").write_text("stale schema")
    cache = SchemaCache(tmp_path, "k", galera, "galera-0")

    def migrate() -> None:
        if galera.databases.get("glance") == "stale schema":
            raise CommandError(["glance-manage", "db_sync"], 1, "unknown revision")
        galera.databases["glance"] = "current schema"

    assert schemas.migrate(cache, ["glance"], migrate) is Before.EMPTY
    assert (tmp_path / "k" / "glance.sql").read_text() == "current schema"


def test_a_failure_without_a_restore_is_raised(tmp_path: Path) -> None:
    cache = SchemaCache(tmp_path, "k", FakeGalera(), "galera-0")

    def migrate() -> None:
        raise CommandError(["neutron-db-manage"], 1, "boom")

    with pytest.raises(CommandError):
        schemas.migrate(cache, ["neutron"], migrate)
