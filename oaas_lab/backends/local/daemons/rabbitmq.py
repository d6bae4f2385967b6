"""RabbitMQ: a cluster formed by ``join_cluster``, quorum queues, an ``openstack`` user.

The node name is ``rabbit@<pod>``, which is why every RabbitMQ pod (and every command run in
one) has its own hostname. The broker and its CLI tools find the Erlang cookie in ``$HOME``.
The user is the broker's default user, set in ``rabbitmq.conf`` (mode 0600) when the first node
creates its database, so no password ever appears on a command line, and ``guest`` never
exists.

Before each start the node re-registers the quorum queue replicas its disk holds (see
``REGISTRATION_REPAIR``): a SIGKILL can lose Ra's record of a replica declared just before it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

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
from oaas_lab.components.rabbitmq import ENTRY, NET_TICKTIME, REGISTRATION_REPAIR
from oaas_lab.credentials import (
    RABBITMQ_COOKIE_SECRET as COOKIE_SECRET,
)
from oaas_lab.credentials import (
    RABBITMQ_SECRET as USER_SECRET,
)
from oaas_lab.credentials import (
    RABBITMQ_USER as USER,
)
from oaas_lab.errors import LabError
from oaas_lab.kernel.results import CheckResult, failed, passed

BIN = "/usr/lib/rabbitmq/bin"  # not /usr/sbin: the Debian wrapper there switches user
VHOST = "openstack"
AMQP_PORT = ENTRY.port
RA_SYSTEMS = ("quorum", "coordination")  # Ra systems under the node's database directory


def node_name(pod: str) -> str:
    """The Erlang node name of a pod."""
    return f"rabbit@{pod}"


def render_conf(password: str) -> str:
    """``rabbitmq.conf``; it holds the default user's password, hence mode 0600."""
    return "\n".join([
        f"listeners.tcp.default = {AMQP_PORT}",
        f"default_user = {USER}",
        f"default_pass = {password}",
        "default_user_tags.administrator = true",
        "default_permissions.configure = .*",
        "default_permissions.read = .*",
        "default_permissions.write = .*",
        "loopback_users = none",
        # A minority side pauses instead of diverging (no split brain to heal by hand).
        "cluster_partition_handling = pause_minority",
        f"net_ticktime = {NET_TICKTIME}",
        "disk_free_limit.absolute = 50MB",
        "vm_memory_high_watermark.relative = 0.1",
        "log.console = true",
        "log.console.level = info",
        "log.file = false",
        "",
    ])


def ra_dirs(ctx: PodContext) -> list[str]:
    """The node's Ra system directories (``<mnesia base>/<node>/<system>/<node>``)."""
    node = node_name(ctx.pod.name)
    return [str(ctx.path("data", "mnesia", node, system, node)) for system in RA_SYSTEMS]


def server_argv(ctx: PodContext) -> tuple[str, ...]:
    """Repair lost Ra registrations, then exec the broker (so supervisord's PID is its own).

    A failed repair is logged and the broker starts anyway: it must never turn into a crash loop.
    """
    script = ctx.path("bin", "ra-registrations.escript")
    return ("/bin/sh", "-c", f'escript "$0" "$@"; exec {BIN}/rabbitmq-server',
            str(script), *ra_dirs(ctx))


def parse_cluster_status(text: str) -> dict[str, Any]:
    """``rabbitmqctl cluster_status --formatter json`` as data (running_nodes, partitions ...)."""
    start = text.find("{")
    if start < 0:
        raise ValueError(f"no JSON in cluster_status output: {text.strip()[:200]!r}")
    data: dict[str, Any] = json.loads(text[start:])
    return data


class RabbitmqDriver(SimpleDriver):
    """One RabbitMQ node per pod."""

    component = "rabbitmq"

    def exec_env(self, ctx: PodContext) -> dict[str, str]:
        """Where the node keeps its data, cookie and configuration (also for the CLI tools)."""
        return {
            "PATH": f"{BIN}:{PATH}",
            "HOME": str(ctx.path("home")),
            "RABBITMQ_NODENAME": node_name(ctx.pod.name),
            "RABBITMQ_MNESIA_BASE": str(ctx.path("data", "mnesia")),
            "RABBITMQ_LOG_BASE": str(ctx.path("log")),
            "RABBITMQ_LOGS": "-",
            "RABBITMQ_CONFIG_FILE": str(ctx.path("etc", "rabbitmq.conf")),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(ctx.path("etc", "advanced.config")),
            "RABBITMQ_CONF_ENV_FILE": str(ctx.path("etc", "rabbitmq-env.conf")),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(ctx.path("etc", "enabled_plugins")),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(ctx.path("data", "plugins-expand")),
            "RABBITMQ_PID_FILE": str(ctx.path("run", "rabbitmq.pid")),
            # Makes the start script exec the VM, so supervisord's PID is the broker's own.
            "RUNNING_UNDER_SYSTEMD": "true",
            # Two cores shared by a whole lab: no busy-waiting schedulers.
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS":
                "+S 2:2 +sbwt none +sbwtdcpu none +sbwtdio none",
        }

    def files(self, ctx: PodContext) -> list[RenderedFile]:
        """Configuration, an empty plugin list, and the Erlang cookie."""
        cookie = ctx.secrets.get(COOKIE_SECRET, kind="erlang_cookie").reveal()
        password = ctx.secrets.get(USER_SECRET).reveal()
        return [
            RenderedFile(ctx.path("etc", "rabbitmq.conf"), render_conf(password), mode=0o600),
            RenderedFile(ctx.path("etc", "rabbitmq-env.conf"), "# the lab sets the environment\n"),
            RenderedFile(ctx.path("etc", "enabled_plugins"), "[].\n"),
            RenderedFile(ctx.path("home", ".erlang.cookie"), cookie, mode=0o400),
            RenderedFile(ctx.path("bin", "ra-registrations.escript"), REGISTRATION_REPAIR),
        ]

    def programs(self, ctx: PodContext) -> list[Program]:
        """``rabbitmq-server`` with the pod's environment, after the Ra registration repair."""
        return [Program(name=ctx.pod.name, argv=server_argv(ctx), log=main_log(ctx),
                        env=self.exec_env(ctx), directory=ctx.path("home"), stopwaitsecs=60,
                        startsecs=3)]

    def cluster_status(self, pod: str, runner: PodRunner) -> dict[str, Any]:
        """The cluster as node ``pod`` sees it; raises ``LabError`` when it does not answer."""
        done = runner.run_in(pod, ["rabbitmqctl", "-q", "cluster_status", "--formatter", "json"],
                             timeout=30.0, check=False)
        if not done.ok:
            raise LabError(f"{pod}: cluster_status failed: {done.stderr.strip()[-300:]}")
        return parse_cluster_status(done.stdout)

    def _wait_running(self, ctx: PodContext, runner: PodRunner) -> None:
        # await_startup blocks inside one CLI call until the node has booted (or gives up).
        def running() -> CheckResult:
            done = runner.run_in(ctx.pod.name, ["rabbitmqctl", "-q", "await_startup",
                                                "--timeout", "60"], timeout=75.0, check=False)
            if done.ok:
                return passed("rabbitmq", f"{ctx.pod.name} running")
            return failed("rabbitmq", f"{ctx.pod.name}: {done.stderr.strip()[-200:]}")

        await_ready("rabbitmq", running, main_log(ctx))

    def _seed_status(self, seed: PodContext, runner: PodRunner) -> dict[str, Any]:
        # cluster_status answers as soon as the node runs: one CLI call (seconds each on a busy
        # host) both waits for the seed and tells which nodes are already members.
        seen: dict[str, Any] = {}

        def answered() -> CheckResult:
            try:
                seen.update(self.cluster_status(seed.pod.name, runner))
            except (LabError, ValueError) as exc:
                return failed("rabbitmq", str(exc))
            return passed("rabbitmq", f"{seed.pod.name} answers")

        await_ready("rabbitmq", answered, main_log(seed))
        return seen

    def _join(self, ctx: PodContext, seed: PodContext, runner: PodRunner,
              join_lock: threading.Lock, grow: bool) -> None:
        pod = ctx.pod.name
        self._wait_running(ctx, runner)
        runner.run_in(pod, ["rabbitmqctl", "-q", "stop_app"], timeout=60.0)
        # join_cluster resets the node itself; one join at a time keeps the schema change simple.
        with join_lock:
            runner.run_in(pod, ["rabbitmqctl", "-q", "join_cluster", node_name(seed.pod.name)],
                          timeout=60.0)
        runner.run_in(pod, ["rabbitmqctl", "-q", "start_app"], timeout=120.0)
        if grow:
            # Quorum queues declared before this node joined get a replica on it too.
            runner.run_in(pod, ["rabbitmq-queues", "-q", "grow", node_name(pod), "all"],
                          timeout=60.0, check=False)

    def converge(self, ctxs: Sequence[PodContext], runner: PodRunner) -> None:
        """Join every node that is not yet in the first node's cluster (in parallel)."""
        seed = ctxs[0]
        status = self._seed_status(seed, runner)
        known = set(status.get("disk_nodes", [])) | set(status.get("ram_nodes", []))
        joining = [c for c in ctxs[1:] if node_name(c.pod.name) not in known]
        if joining:
            join_lock = threading.Lock()
            with ThreadPoolExecutor(max_workers=len(joining)) as pool:
                # A cluster that already had members may hold quorum queues to grow; a
                # cluster being formed now has none.
                grow = len(known) > 1
                futures = [pool.submit(self._join, c, seed, runner, join_lock, grow)
                           for c in joining]
                for future in futures:
                    future.result()
        running = set(status.get("running_nodes", []))
        for ctx in ctxs[1:]:
            node = node_name(ctx.pod.name)
            if node in known and node not in running:
                # A member, but its broker is not running: an earlier `up` that was killed
                # between `join_cluster` and `start_app` leaves it so, and nothing else would
                # ever start it. On a node that is merely still booting this changes nothing.
                runner.run_in(ctx.pod.name, ["rabbitmqctl", "-q", "start_app"], timeout=120.0,
                              check=False)
        vhosts = runner.run_in(seed.pod.name, ["rabbitmqctl", "-q", "list_vhosts"], timeout=30.0)
        if VHOST not in vhosts.stdout.split():
            runner.run_in(seed.pod.name, ["rabbitmqctl", "-q", "add_vhost", VHOST,
                                          "--default-queue-type", "quorum"], timeout=30.0)
        # Every time: a run killed between the two must not leave the vhost without them.
        runner.run_in(seed.pod.name, ["rabbitmqctl", "-q", "set_permissions", "-p", VHOST,
                                      USER, ".*", ".*", ".*"], timeout=30.0)

    def leave(self, ctx: PodContext, remaining: Sequence[PodContext], runner: PodRunner) -> None:
        """Move quorum queue replicas off the node, then take it out of the cluster."""
        pod = ctx.pod.name
        runner.run_in(pod, ["rabbitmq-queues", "-q", "shrink", node_name(pod)],
                      timeout=60.0, check=False)
        runner.run_in(pod, ["rabbitmqctl", "-q", "stop_app"], timeout=60.0, check=False)
        done = runner.run_in(pod, ["rabbitmqctl", "-q", "reset"], timeout=60.0, check=False)
        if not done.ok and remaining:
            # The node could not leave by itself: the remaining cluster forgets it.
            runner.run_in(remaining[0].pod.name,
                          ["rabbitmqctl", "-q", "forget_cluster_node", node_name(pod)],
                          timeout=60.0, check=False)
