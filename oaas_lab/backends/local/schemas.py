"""Migrated database schemas, cached so that a new lab restores them instead of migrating.

A service's database after its migrations is the same for every lab built from the same
packages, and migrating it is most of a cold ``up`` (nova's three databases ~80 s, neutron's
~50 s on two cores). So right after a database was migrated from empty, and before any lab's
own data (users, password hashes, cell mappings) goes in, it is dumped to
``<state_dir>/cache/schemas/<key>/<database>.sql``. The key is a hash of the installed Python
packages and their versions, which fix every service's migration heads.

A new lab restores the dump into its empty database and runs the service's own migration
command anyway: on a current schema it only reads the heads and changes nothing (3-5 s), on an
older one it migrates the rest. If the command fails on a restored schema, the databases are
emptied, migrated from scratch, and the entry is replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path

from oaas_lab.backends.local.daemons.base import PodRunner
from oaas_lab.errors import LabError

FORMAT = "1"
"""Bumped when the dump's form changes, so older entries are not restored."""
DUMP = ("mariadb-dump", "--skip-comments", "--skip-dump-date", "--single-transaction",
        "--routines", "--triggers")


class Before(Enum):
    """What a database held before the migration command ran."""

    RESTORED = "restored from the cache"
    EMPTY = "empty"
    IN_USE = "in use"


def cache_key(python: str) -> str:
    """A hash of the package set installed beside ``python`` (its ``*.dist-info`` names)."""
    env = Path(python).parent.parent
    names = sorted(p.name for p in env.glob("lib/python*/site-packages/*.dist-info"))
    digest = hashlib.sha256("\n".join([FORMAT, *names]).encode())
    return digest.hexdigest()[:16]


class SchemaCache:
    """The cache entry of one package set, used through one Galera pod."""

    def __init__(self, root: Path, key: str, runner: PodRunner, galera_pod: str) -> None:
        self.dir = root / key
        self.runner = runner
        self.galera_pod = galera_pod

    def _sql(self, statement: str) -> str:
        done = self.runner.run_in(self.galera_pod, ["mariadb", "-N", "-B", "-e", statement],
                                  timeout=60.0)
        return done.stdout.strip()

    def _tables(self, database: str) -> int:
        if not database.isidentifier():
            raise ValueError(f"not a database name: {database!r}")
        # The name is one of the catalogue's database names, checked above.
        return int(self._sql("SELECT COUNT(*) FROM information_schema.tables "  # noqa: S608
                             f"WHERE table_schema = '{database}'") or 0)

    def prepare(self, database: str) -> Before:
        """Restore the cached schema into ``database`` when it is empty and one is cached."""
        if self._tables(database):
            return Before.IN_USE
        dump = self.dir / f"{database}.sql"
        if not dump.is_file():
            return Before.EMPTY
        self.runner.run_in(self.galera_pod, ["mariadb", database],
                           input_text=dump.read_text(encoding="utf-8"), timeout=300.0)
        return Before.RESTORED

    def save(self, database: str) -> None:
        """Dump the freshly migrated ``database`` (atomically, readable by root only)."""
        done = self.runner.run_in(self.galera_pod, [*DUMP, database], timeout=300.0)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = self.dir / f"{database}.sql"
        partial = target.with_name(f".{target.name}.{os.getpid()}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(done.stdout)
        partial.replace(target)

    def empty(self, database: str) -> None:
        """Drop every table of ``database`` (the database and its grants stay)."""
        self._sql(f"DROP DATABASE `{database}`; CREATE DATABASE `{database}`")

    def forget(self, database: str) -> None:
        """Remove the entry of ``database``."""
        with contextlib.suppress(FileNotFoundError):
            (self.dir / f"{database}.sql").unlink()


def migrate(cache: SchemaCache, databases: Sequence[str], run: Callable[[], None]) -> Before:
    """Bring ``databases`` to the current heads: restore what is cached, then ``run`` the
    service's migration commands, and cache what was migrated from empty.

    Returns how the first database started (for the progress line).
    """
    before = {db: cache.prepare(db) for db in databases}
    try:
        run()
    except LabError:
        restored = [db for db, how in before.items() if how is Before.RESTORED]
        if not restored:
            raise
        # The cached schema does not take the migration (a package changed in place): start
        # over from empty databases, as if nothing had been cached.
        for db in restored:
            cache.forget(db)
            cache.empty(db)
            before[db] = Before.EMPTY
        run()
    for db, how in before.items():
        if how is Before.EMPTY:
            cache.save(db)
    return before[databases[0]]
