"""HAProxy in front of Galera (one writer, wsrep-aware checks) and of the OpenStack APIs.

HAProxy runs in master-worker mode in the foreground; when Galera's membership changes the lab
rewrites the configuration and sends ``USR2`` to the master (a graceful reload: old workers
finish their sessions, the PID supervisord watches stays the same).

Clients reach the front at one virtual address (``pods.front_address``, .9 of the lab subnet),
which keepalived (VRRP v3, unicast between the members, on the lab bridge) keeps on exactly one
member: when that member is lost, another takes the address over in under a second and
announces it by gratuitous ARP. Every member's HAProxy listens on all its addresses, so
whichever holds the address serves. ``nopreempt``: a member that comes back does not take the
address back, which would cut its clients off a second time.
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
from oaas_lab.errors import LabError
from oaas_lab.kernel.results import CheckResult, failed, passed
from oaas_lab.kernel.wait import until

STATS_PORT = ENTRY.ports["stats"]
VRRP_ROUTER_ID = 51
"""The VRRP group; one per lab bridge, so every lab may use the same one."""
VRRP_ADVERT = 0.2
"""Seconds between the holder's advertisements; the others take over after three missed ones
(plus a skew below one interval): about 0.8 s."""
FRONT_IFNAME = "eth0"
FRONT_TIMEOUT = 30.0
"""Seconds the members have to agree on one holder of the front address."""


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


def render_keepalived_conf(pod: PodRecord, members: Sequence[PodRecord], address: str) -> str:
    """keepalived's VRRP instance: every member a backup, the lowest ordinal preferred. The
    address is a /32: the holder answers ARP for it on the bridge, and no route changes."""
    peers = [m.ip for m in members if m.name != pod.name]
    return "\n".join([
        "global_defs {",
        f"    router_id {pod.name}",
        "    vrrp_version 3",
        # Nothing in the lab reads keepalived's SNMP or D-Bus; a gratuitous ARP burst at
        # takeover is what moves the clients.
        "    vrrp_garp_master_repeat 3",
        "    vrrp_garp_master_delay 1",
        "}",
        "vrrp_instance front {",
        "    state BACKUP",
        "    nopreempt",
        f"    interface {FRONT_IFNAME}",
        f"    virtual_router_id {VRRP_ROUTER_ID}",
        f"    priority {max(1, 200 - pod.ordinal)}",
        f"    advert_int {VRRP_ADVERT}",
        f"    unicast_src_ip {pod.ip}",
        "    unicast_peer {",
        *(f"        {ip}" for ip in peers),
        "    }",
        "    virtual_ipaddress {",
        f"        {address}/32 dev {FRONT_IFNAME}",
        "    }",
        "}",
        "",
    ])


def holds_front(runner: PodRunner, pod: str, address: str) -> bool:
    """True when ``pod`` has the front's virtual address on its interface."""
    done = runner.run_in(pod, ["ip", "-4", "-o", "addr", "show", "dev", FRONT_IFNAME],
                         check=False)
    return f" {address}/" in done.stdout


class HaproxyDriver(SimpleDriver):
    """HAProxy listing every Galera member."""

    component = "haproxy"
    watches: tuple[str, ...] = ("galera", *fronted())
    reloads = True

    def files(self, ctx: PodContext) -> list[RenderedFile]:
        """``haproxy.cfg`` over the current Galera and API members; ``keepalived.conf``."""
        galera = ctx.others.get("galera", ())
        apis = {c: ctx.others.get(c, ()) for c in fronted()}
        cfg = render_haproxy_cfg(galera, str(ctx.path("run", "admin.sock")), apis)
        vrrp = render_keepalived_conf(ctx.pod, ctx.members, ctx.front_address)
        return [RenderedFile(ctx.path("haproxy.cfg"), cfg),
                RenderedFile(ctx.path("keepalived.conf"), vrrp)]

    def programs(self, ctx: PodContext) -> list[Program]:
        """``haproxy -W -db`` (master-worker, foreground, reloadable by ``USR2``) and
        keepalived's VRRP process for the front address."""
        argv = ("haproxy", "-W", "-db", "-f", str(ctx.path("haproxy.cfg")))
        vrrp = ("keepalived", "--dont-fork", "--log-console", "--vrrp",
                "--use-file", str(ctx.path("keepalived.conf")),
                "--pid", str(ctx.path("run", "keepalived.pid")),
                "--vrrp_pid", str(ctx.path("run", "keepalived-vrrp.pid")))
        return [Program(name=ctx.pod.name, argv=argv, log=main_log(ctx), env=self.exec_env(ctx),
                        stopsignal="USR1", stopwaitsecs=10),
                # Stopped with TERM it hands the address over at once (priority 0); killed,
                # the others take it after three missed advertisements.
                Program(name=f"{ctx.pod.name}-keepalived", argv=vrrp,
                        log=ctx.path("log", "keepalived.log"), env=self.exec_env(ctx),
                        stopwaitsecs=10)]

    def converge(self, ctxs: Sequence[PodContext], runner: PodRunner) -> None:
        """Wait until exactly one member holds the front address (bounded)."""
        if not ctxs or not ctxs[0].front_address:
            return
        address = ctxs[0].front_address

        def one_holder() -> CheckResult:
            holders = [c.pod.name for c in ctxs if holds_front(runner, c.pod.name, address)]
            if len(holders) == 1:
                return passed("haproxy", f"{holders[0]} holds the front address {address}")
            return failed("haproxy", f"front address {address} held by "
                                     f"{', '.join(holders) or 'no member'}")

        result, _ = until(one_holder, timeout=FRONT_TIMEOUT, interval=0.5)
        if not result.ok:
            raise LabError(result.detail, hint=f"read {ctxs[0].path('log', 'keepalived.log')}")

    def reload(self, ctx: PodContext, runner: PodRunner) -> None:
        """Graceful reload after a Galera scale: the master re-reads the file; keepalived
        re-reads its own (its peers change when HAProxy scales)."""
        runner.signal_program(ctx.pod.name, "USR2")
        runner.signal_program(f"{ctx.pod.name}-keepalived", "HUP")
