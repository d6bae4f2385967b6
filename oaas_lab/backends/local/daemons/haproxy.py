"""HAProxy in front of Galera (one writer, wsrep-aware checks) and of the OpenStack APIs.

HAProxy runs in master-worker mode in the foreground; when Galera's membership changes the lab
rewrites the configuration and sends ``USR2`` to the master (a graceful reload: old workers
finish their sessions, the PID supervisord watches stays the same).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from oaas_lab.backends.local.daemons.base import (
    PodContext,
    PodRunner,
    RenderedFile,
    SimpleDriver,
    main_log,
)
from oaas_lab.backends.local.daemons.galera import HEALTH_PORT, MYSQL_PORT
from oaas_lab.backends.local.daemons.openstack import fronted, port
from oaas_lab.backends.local.pods import PodRecord
from oaas_lab.backends.local.supervisor import Program
from oaas_lab.components.haproxy import ENTRY

STATS_PORT = ENTRY.ports["stats"]


def render_api(component: str, members: Sequence[PodRecord]) -> list[str]:
    """An HTTP front for one OpenStack service: every member active, health-checked.

    A request whose connection to a member fails is sent to another member (``retry-on`` +
    ``redispatch``), and so is a GET cut off without a reply; ``inter 1s fall 2`` takes a dead
    member out within about 2 s.
    """
    listen = port(component)
    lines = [
        f"listen {component}",
        f"    bind *:{listen}",
        "    mode http",
        "    option forwardfor",
        "    timeout client 10m",
        "    timeout server 10m",
        "    timeout tunnel 1h",
        "    retries 3",
        "    option redispatch 1",
        "    retry-on conn-failure empty-response response-timeout",
        # Only a request that never reached a member is safe to send again whatever its
        # method; a POST cut off in a dying member may have been carried out already.
        "    http-request disable-l7-retry if !METH_GET",
        "    balance roundrobin",
        "    option httpchk GET /",
        # A version document (200/300), a redirect to a login form, a 401/404: it serves.
        "    http-check expect rstatus ^[234]",
        # A one-worker member may be busy for a second with a request: the check waits for it.
        "    timeout check 5s",
        # Every check is a request to a Python WSGI server (a fork for the noVNC proxy), and
        # two fronts check every member: at 1 s they were most of an idle lab's CPU. A dead
        # member is found by traffic instead: its first refused connection marks it down
        # and the request is retried on another member.
        "    default-server inter 5s fastinter 1s downinter 2s fall 2 rise 2"
        " observe layer4 error-limit 1 on-error mark-down",
    ]
    lines += [f"    server {m.name} {m.ip}:{listen} check" for m in members]
    return [*lines, ""]


def render_haproxy_cfg(
    galera: Sequence[PodRecord], admin_socket: str,
    apis: Mapping[str, Sequence[PodRecord]] | None = None,
) -> str:
    """The configuration: the first Galera member takes every write, the others are backups.

    One writer avoids certification conflicts between members; the first refused connection
    or two failed checks mark a dead writer down, and ``on-marked-down shutdown-sessions``
    moves clients at once.
    """
    servers = []
    for index, member in enumerate(galera):
        backup = " backup" if index else ""
        servers.append(f"    server {member.name} {member.ip}:{MYSQL_PORT} check{backup}")
    return "\n".join([
        "global",
        "    maxconn 4000",
        f"    stats socket {admin_socket} mode 600 level admin",
        "",
        "defaults",
        "    mode tcp",
        "    timeout connect 2s",
        "    timeout client 1h",
        "    timeout server 1h",
        "    timeout check 1s",
        "",
        "listen galera",
        f"    bind *:{MYSQL_PORT}",
        "    option httpchk GET /",
        "    http-check expect status 200",
        # A connection refused by the writer marks it down at once (``observe layer4``) and
        # the retry goes to the next member, instead of every retry waiting out HAProxy's
        # one-second turn-around on the dead writer until two checks have failed.
        "    retries 2",
        "    option redispatch 1",
        f"    default-server port {HEALTH_PORT} inter 1s fastinter 500ms downinter 1s"
        " fall 2 rise 2 observe layer4 error-limit 1 on-error mark-down"
        " on-marked-down shutdown-sessions on-marked-up shutdown-backup-sessions",
        *servers,
        "",
        *(line for component, members in sorted((apis or {}).items()) if members
          for line in render_api(component, members)),
        "listen stats",
        f"    bind *:{STATS_PORT}",
        "    mode http",
        "    timeout client 10s",
        "    timeout server 10s",
        "    stats enable",
        "    stats uri /",
        "    stats refresh 5s",
        "",
    ])


class HaproxyDriver(SimpleDriver):
    """HAProxy listing every Galera member."""

    component = "haproxy"
    watches: tuple[str, ...] = ("galera", *fronted())
    reloads = True

    def files(self, ctx: PodContext) -> list[RenderedFile]:
        """``haproxy.cfg`` over the current Galera and API members."""
        galera = ctx.others.get("galera", ())
        apis = {c: ctx.others.get(c, ()) for c in fronted()}
        cfg = render_haproxy_cfg(galera, str(ctx.path("run", "admin.sock")), apis)
        return [RenderedFile(ctx.path("haproxy.cfg"), cfg)]

    def programs(self, ctx: PodContext) -> list[Program]:
        """``haproxy -W -db``: master-worker, foreground, reloadable by ``USR2``."""
        argv = ("haproxy", "-W", "-db", "-f", str(ctx.path("haproxy.cfg")))
        return [Program(name=ctx.pod.name, argv=argv, log=main_log(ctx), env=self.exec_env(ctx),
                        stopsignal="USR1", stopwaitsecs=10)]

    def reload(self, ctx: PodContext, runner: PodRunner) -> None:
        """Graceful reload after a Galera scale: the master re-reads the file."""
        runner.signal_program(ctx.pod.name, "USR2")
