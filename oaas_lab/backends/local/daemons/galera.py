"""MariaDB + Galera: rsync SST, IST rejoin, unattended recovery, a wsrep health endpoint.

Each galera pod runs two programs: ``galera_entrypoint`` (which decides join or bootstrap and
then becomes ``mariadbd``) and ``galera_health`` (HTTP on 9200: 200 only when the member is
Primary and Synced; HAProxy checks it because ``mysql-check`` cannot see a non-Primary node).
Users are created once the cluster is Primary, through the bootstrap member's unix socket as the
OS root user; their passwords come from the ``SecretStore`` in files of mode 0600 or on stdin,
never on a command line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from oaas_lab.backends.local.daemons.base import (
    PATH,
    PodContext,
    PodRunner,
    RenderedFile,
    SimpleDriver,
    await_ready,
    main_log,
)
from oaas_lab.backends.local.supervisor import Program
from oaas_lab.components.galera import ENTRY, FAILURE_DETECTION
from oaas_lab.credentials import (
    GALERA_APP_DATABASE as APP_DATABASE,
)
from oaas_lab.credentials import (
    GALERA_APP_SECRET as APP_SECRET,
)
from oaas_lab.credentials import (
    GALERA_APP_USER as APP_USER,
)
from oaas_lab.credentials import (
    GALERA_ROOT_SECRET as ROOT_SECRET,
)
from oaas_lab.kernel.results import CheckResult, failed, passed

PROVIDER = "/usr/lib/galera/libgalera_smm.so"
HEALTH_PORT = 9200
MYSQL_PORT = ENTRY.ports["mysql"]
GCOMM_PORT = ENTRY.ports["replication"]


def cluster_address(ctx: PodContext) -> str:
    """``gcomm://`` over every configured member (the pod itself included, Galera skips it)."""
    return "gcomm://" + ",".join(m.ip for m in ctx.members)


def render_my_cnf(ctx: PodContext) -> str:
    """The pod's ``my.cnf``: small buffers (a lab), rsync SST, pc.recovery for crash restarts."""
    sock = ctx.path("run", "mysqld.sock")
    options = ";".join([
        # Restores the primary component by itself when every member was killed at once.
        "pc.recovery=TRUE",
        "gcache.size=64M",
        FAILURE_DETECTION,
    ])
    return "\n".join([
        "[mysqld]",
        "user = root",
        f"datadir = {ctx.path('data')}",
        f"socket = {sock}",
        f"pid-file = {ctx.path('run', 'mysqld.pid')}",
        f"tmpdir = {ctx.path('tmp')}",
        "bind-address = 0.0.0.0",
        f"port = {MYSQL_PORT}",
        "skip-name-resolve",
        "performance_schema = OFF",
        "innodb_buffer_pool_size = 48M",
        "innodb_log_file_size = 32M",
        # Galera replicates every commit synchronously; per-commit fsync is not needed in a lab.
        "innodb_flush_log_at_trx_commit = 2",
        "max_connections = 300",
        "binlog_format = ROW",
        "default_storage_engine = InnoDB",
        "innodb_autoinc_lock_mode = 2",
        "wsrep_on = ON",
        f"wsrep_provider = {PROVIDER}",
        f"wsrep_cluster_name = oaas-lab-{ctx.lab_name}",
        f"wsrep_cluster_address = {cluster_address(ctx)}",
        f"wsrep_node_address = {ctx.pod.ip}",
        f"wsrep_node_name = {ctx.pod.name}",
        # rsync is the fastest SST here (measured); mariabackup needs credentials and is slower.
        # ``lab_rsync`` is Debian's rsync SST with the pod's rsync wrapper (see RSYNC_WRAPPER).
        "wsrep_sst_method = lab_rsync",
        f'wsrep_provider_options = "{options}"',
        "",
        "[client]",
        f"socket = {sock}",
        "",
    ])


RSYNC_WRAPPER = """#!/bin/sh
# The rsync SST daemon drops to "nobody" when started as root and then cannot write the joiner's
# data directory; the lab runs MariaDB as root, so the daemon keeps root.
case " $* " in
  *" --daemon "*) exec /usr/bin/rsync "$@" --dparam=uid=root --dparam=gid=root ;;
esac
exec /usr/bin/rsync "$@"
"""


def sst_script(ctx: PodContext) -> str:
    """``wsrep_sst_lab_rsync``: Debian's rsync SST with the pod's ``bin`` first on PATH.

    mariadbd puts its own bin directory first on the SST script's PATH, so the wrapper has to
    be put back in front before the real script runs.
    """
    return (
        "#!/bin/sh\n"
        f"export PATH=\"{ctx.path('bin')}:$PATH\"\n"
        'exec /usr/bin/wsrep_sst_rsync "$@"\n'
    )


def entrypoint_spec(ctx: PodContext) -> dict[str, object]:
    """What the entrypoint needs to decide join or bootstrap (no secrets in it)."""
    return {
        "name": ctx.pod.name,
        "ordinal": ctx.pod.ordinal,
        "ip": ctx.pod.ip,
        "members": [{"name": m.name, "ip": m.ip, "ordinal": m.ordinal} for m in ctx.members],
        "defaults_file": str(ctx.path("my.cnf")),
        "datadir": str(ctx.path("data")),
        "run_dir": str(ctx.path("run")),
        "election_dir": str(ctx.pod_dir.parent.parent / "galera-election"),
    }


def password_hash(password: str) -> str:
    """The ``mysql_native_password`` hash of ``password`` (``*`` + SHA1(SHA1(password)))."""
    inner = hashlib.sha1(password.encode()).digest()  # noqa: S324 -- the protocol's own hash
    return "*" + hashlib.sha1(inner).hexdigest().upper()  # noqa: S324


def provision_sql(root_password: str, app_password: str) -> str:
    """Users and the lab database; idempotent, so it can run on every ``up``.

    Passwords go in as hashes: statements are replicated, and Galera keeps them in its
    write-set cache on every member, so a clear password would be written to disk.
    """
    root_hash, app_hash = password_hash(root_password), password_hash(app_password)
    return "\n".join([
        f"CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY PASSWORD '{root_hash}';",
        f"ALTER USER 'root'@'%' IDENTIFIED BY PASSWORD '{root_hash}';",
        "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;",
        f"CREATE DATABASE IF NOT EXISTS `{APP_DATABASE}`;",
        f"CREATE USER IF NOT EXISTS '{APP_USER}'@'%' IDENTIFIED BY PASSWORD '{app_hash}';",
        f"ALTER USER '{APP_USER}'@'%' IDENTIFIED BY PASSWORD '{app_hash}';",
        f"GRANT ALL PRIVILEGES ON `{APP_DATABASE}`.* TO '{APP_USER}'@'%';",
        "",
    ])


def parse_wsrep_rows(text: str) -> dict[str, str]:
    """``mariadb -N -B`` output of ``SHOW STATUS`` as a dict."""
    rows = (line.split("\t", 1) for line in text.splitlines() if "\t" in line)
    return dict(rows)


class GaleraDriver(SimpleDriver):
    """MariaDB with the Galera provider."""

    component = "galera"

    def files(self, ctx: PodContext) -> list[RenderedFile]:
        """``my.cnf``, the entrypoint's spec, and the root password for the health endpoint."""
        root = ctx.secrets.get(ROOT_SECRET).reveal()
        return [
            RenderedFile(ctx.path("my.cnf"), render_my_cnf(ctx)),
            RenderedFile(ctx.path("entrypoint.json"), json.dumps(entrypoint_spec(ctx), indent=2)),
            RenderedFile(ctx.path("secrets", "root.password"), root, mode=0o600),
            # Read last by the client, so `mariadb` in the pod uses the pod's socket rather than
            # the Debian default in /etc/mysql.
            RenderedFile(ctx.path("home", ".my.cnf"),
                         f"[client]\nsocket = {ctx.path('run', 'mysqld.sock')}\n"),
            RenderedFile(ctx.path("bin", "rsync"), RSYNC_WRAPPER, mode=0o755),
            RenderedFile(ctx.path("bin", "wsrep_sst_lab_rsync"), sst_script(ctx), mode=0o755),
        ]

    def exec_env(self, ctx: PodContext) -> dict[str, str]:
        """``mariadb`` finds the pod's socket; the SST script finds the rsync wrapper first."""
        return {"PATH": f"{ctx.path('bin')}:{PATH}", "HOME": str(ctx.path("home")),
                "MYSQL_UNIX_PORT": str(ctx.path("run", "mysqld.sock"))}

    def programs(self, ctx: PodContext) -> list[Program]:
        """The entrypoint (which becomes mariadbd) and the health endpoint."""
        env = self.exec_env(ctx)
        entry = (ctx.python, "-m", "oaas_lab.backends.local.daemons.galera_entrypoint",
                 str(ctx.pod_dir))
        health = (ctx.python, "-m", "oaas_lab.backends.local.daemons.galera_health",
                  "--port", str(HEALTH_PORT),
                  "--password-file", str(ctx.path("secrets", "root.password")))
        return [
            # A clean shutdown of a big buffer pool and SST can take a while.
            Program(name=ctx.pod.name, argv=entry, log=main_log(ctx), env=env,
                    stopwaitsecs=60, startsecs=2),
            Program(name=f"{ctx.pod.name}-health", argv=health,
                    log=ctx.path("log", f"{ctx.pod.name}-health.log"), env=env),
        ]

    def converge(self, ctxs: Sequence[PodContext], runner: PodRunner) -> None:
        """Once a member is Primary and Synced, create the users (replicated by Galera)."""
        first = ctxs[0]

        def synced() -> CheckResult:
            done = runner.run_in(
                first.pod.name,
                ["mariadb", "-N", "-B", "-e",
                 "SHOW GLOBAL STATUS WHERE Variable_name IN "
                 "('wsrep_cluster_status','wsrep_local_state','wsrep_cluster_size')"],
                timeout=10.0, check=False,
            )
            if not done.ok:
                return failed("galera", f"{first.pod.name}: {done.stderr.strip()[-200:]}")
            status = parse_wsrep_rows(done.stdout)
            if status.get("wsrep_cluster_status") == "Primary" and status.get(
                "wsrep_local_state"
            ) == "4":
                return passed("galera", f"{first.pod.name} Primary and Synced")
            return failed("galera", f"{first.pod.name}: {status}")

        await_ready("galera", synced, main_log(first))
        sql = provision_sql(
            first.secrets.get(ROOT_SECRET).reveal(), first.secrets.get(APP_SECRET).reveal()
        )
        runner.run_in(first.pod.name, ["mariadb"], input_text=sql, timeout=30.0)

    def leave(self, ctx: PodContext, remaining: Sequence[PodContext], runner: PodRunner) -> None:
        """A clean mariadbd shutdown leaves the cluster gracefully: the lab stops the program."""
