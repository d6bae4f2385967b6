"""etcd: a static initial cluster; members added or removed through etcd's membership API.

Everything is in a per-pod ``etcd.yaml`` (``--config-file``), so a membership change rewrites
files, never the supervised command line, and running members are not restarted. The
bootstrap settings only matter while a member's data directory is empty; a restarted member
rejoins with its own data.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import yaml

from oaas_lab.backends.local.daemons.base import (
    PodContext,
    PodRunner,
    RenderedFile,
    SimpleDriver,
    main_log,
)
from oaas_lab.backends.local.supervisor import Program
from oaas_lab.components.etcd import (
    CLIENT_PORT,
    ELECTION_MS,
    HEARTBEAT_MS,
    PEER_PORT,
    remove_member,
)
from oaas_lab.errors import LabError
from oaas_lab.kernel.results import CheckResult, failed, passed
from oaas_lab.kernel.wait import until

LOCAL_ENDPOINT = f"http://127.0.0.1:{CLIENT_PORT}"



def peer_url(ip: str) -> str:
    """The peer URL of a member."""
    return f"http://{ip}:{PEER_PORT}"


def initial_cluster(ctx: PodContext) -> str:
    """``etcd-0=http://ip:2380,...`` over every configured member."""
    return ",".join(f"{m.name}={peer_url(m.ip)}" for m in ctx.members)


def has_data(ctx: PodContext, pod: str) -> bool:
    """True once ``pod`` has initialised its data directory."""
    return (ctx.pod_dir.parent / pod / "data" / "member").is_dir()


def cluster_state(ctx: PodContext) -> str:
    """``existing`` when another member already holds data (this one is added), else ``new``.

    Once the member has data the setting no longer matters; the value it was started with is
    kept so that a later ``up`` renders the same file and reports no change.
    """
    config = ctx.path("etcd.yaml")
    if has_data(ctx, ctx.pod.name) and config.exists():
        previous = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        return str(previous.get("initial-cluster-state", "new"))
    return "existing" if any(has_data(ctx, p.name) for p in ctx.peers) else "new"


def render_config(ctx: PodContext) -> str:
    """The member's ``etcd.yaml``."""
    ip = ctx.pod.ip
    config = {
        "name": ctx.pod.name,
        "data-dir": str(ctx.path("data")),
        "listen-client-urls": f"http://{ip}:{CLIENT_PORT},{LOCAL_ENDPOINT}",
        "advertise-client-urls": f"http://{ip}:{CLIENT_PORT}",
        "listen-peer-urls": peer_url(ip),
        "initial-advertise-peer-urls": peer_url(ip),
        "initial-cluster": initial_cluster(ctx),
        "initial-cluster-state": cluster_state(ctx),
        "initial-cluster-token": f"oaas-lab-{ctx.lab_name}",
        # The JSON gateway (/v3/...) is on by default for flags but off for a config file.
        "enable-grpc-gateway": True,
        # Faster failure detection than the WAN-friendly defaults: the lab is one host.
        "heartbeat-interval": HEARTBEAT_MS,
        "election-timeout": ELECTION_MS,
        "quota-backend-bytes": 256 * 1024 * 1024,
    }
    return yaml.safe_dump(config, default_flow_style=False)


def member_ids(list_json: str) -> dict[str, str]:
    """``etcdctl member list -w json`` as name -> hex member ID (unstarted members by URL)."""
    data = json.loads(list_json)
    out = {}
    for member in data.get("members", []):
        key = member.get("name") or ",".join(member.get("peerURLs", []))
        out[str(key)] = format(int(member["ID"]), "x")
    return out


class EtcdDriver(SimpleDriver):
    """etcd members; scaling goes through ``etcdctl member add/remove``."""

    component = "etcd"
    # The leader only accepts a new voting member while it is connected to every member, so
    # an added member has to start before the next one is announced.
    one_member_at_a_time = True

    def files(self, ctx: PodContext) -> list[RenderedFile]:
        """``etcd.yaml``."""
        return [RenderedFile(ctx.path("etcd.yaml"), render_config(ctx))]

    def programs(self, ctx: PodContext) -> list[Program]:
        """One etcd member reading its configuration file."""
        argv = ("etcd", "--config-file", str(ctx.path("etcd.yaml")))
        return [Program(name=ctx.pod.name, argv=argv, log=main_log(ctx), env=self.exec_env(ctx))]

    def _etcdctl(self, pod: str, runner: PodRunner, *args: str, check: bool = True) -> str:
        done = runner.run_in(pod, ["etcdctl", f"--endpoints={LOCAL_ENDPOINT}", *args],
                             timeout=30.0, check=check)
        return done.stdout

    def before_start(self, new: Sequence[PodContext], existing: Sequence[PodContext],
                     runner: PodRunner) -> None:
        """Announce the new members to the cluster before they start (etcd requires it)."""
        if not existing:
            return
        seed = existing[0].pod.name
        known = member_ids(self._etcdctl(seed, runner, "member", "list", "-w", "json"))
        for ctx in new:
            if ctx.pod.name in known or peer_url(ctx.pod.ip) in known:
                continue
            argv = ["etcdctl", f"--endpoints={LOCAL_ENDPOINT}", "member", "add", ctx.pod.name,
                    f"--peer-urls={peer_url(ctx.pod.ip)}"]

            def added(argv: list[str] = argv) -> CheckResult:
                done = runner.run_in(seed, argv, timeout=30.0, check=False)
                if done.ok:
                    return passed("etcd", done.stdout.strip().splitlines()[0])
                # "unhealthy cluster": the leader has not yet been connected to the member
                # added last for long enough (etcd waits a few seconds); try again.
                return failed("etcd", done.stderr.strip()[-200:])

            result, _ = until(added, timeout=60.0, interval=1.0)
            if not result.ok:
                raise LabError(f"etcd refused to add {ctx.pod.name}: {result.detail}",
                               hint=f"read {main_log(existing[0])}")

    def leave(self, ctx: PodContext, remaining: Sequence[PodContext], runner: PodRunner) -> None:
        """Remove the member from the cluster through a remaining member, then it is stopped."""
        if not remaining:
            return
        seed = remaining[0].pod.name
        known = member_ids(self._etcdctl(seed, runner, "member", "list", "-w", "json"))
        member = known.get(ctx.pod.name) or known.get(peer_url(ctx.pod.ip))
        if not member:
            return
        remove_member(
            lambda args: runner.run_in(seed, ["etcdctl", f"--endpoints={LOCAL_ENDPOINT}", *args],
                                       timeout=30.0, check=False),
            member, ctx.pod.name, hint=f"; read {main_log(remaining[0])}")
