"""Open vSwitch inside a compute pod: its own database and switch on the userspace datapath.

The lab's host has no Open vSwitch kernel module, so every bridge uses ``datapath_type=netdev``
and ``ovs-vswitchd`` forwards the frames itself: it reads and writes the pod's ``system`` ports
(a veth end, a VM's tap) through ``AF_PACKET`` sockets. Each compute pod runs its own
``ovsdb-server`` and ``ovs-vswitchd`` in the foreground under the lab's supervisord, with the
database, sockets, pid files and control sockets in the pod's directory (nothing in the host's
``/run/openvswitch``). ``OvsPaths.env`` points the Open vSwitch tools at them
(``OVS_RUNDIR`` and friends), so ``ovs-vsctl``, ``ovs-ofctl br-int`` and ``ovs-appctl -t
ovs-vswitchd`` work in the pod without arguments.

The wiring a VM needs (the neutron agent adds the patch ports and flows between the bridges)::

    guest --- tap --- br-int ==patch== br-provider --- eth1 ~~veth~~ <lab>-vp<n> --- <lab>-br
                                                                  (host end, on the lab bridge)

One setting is not optional: ``other_config:userspace-tso-enable=true``. Kernel senders on
both sides (a lab pod's TCP stack behind its veth, a virtio guest behind its tap) hand over
frames whose TCP/UDP checksum is left for the device to fill in. An ``AF_PACKET`` socket reads
such a frame as it is, so without the setting ``ovs-vswitchd`` forwards it with a wrong
checksum and the receiver drops it: ping works, every TCP connection hangs. With it, the switch
reads and writes the ports with virtio-net headers, carries the "checksum pending" mark across
and the kernel completes the checksum on the way out. No ``ethtool -K`` is needed anywhere
(turning off tx checksumming on the host end of the provider veth only fixes the direction into
the VM; nothing on the host side fixes the guest's direction). The MTU stays 1500 end to end.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from oaas_lab.backends.local.supervisor import Program

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
"""The ``Open_vSwitch`` database schema of Debian's ``openvswitch-common``."""

DATAPATH_TYPE = "netdev"
INTEGRATION_BRIDGE = "br-int"
PROVIDER_BRIDGE = "br-provider"

VSCTL_TIMEOUT = 30
"""Seconds an ``ovs-vsctl`` change may wait for ``ovs-vswitchd`` to apply it (never forever)."""

SWITCH_SETTINGS = {"userspace-tso-enable": "true"}
"""``Open_vSwitch`` ``other_config`` the userspace datapath needs (see the module docstring).

``ovs-vswitchd`` reads it when it first sees the setting, and sockets of ports added before
that keep the old behaviour: it is set before any port exists, in the database's first row.
"""


@dataclass(frozen=True)
class OvsPaths:
    """Where a pod's Open vSwitch keeps its files; every path is inside the pod's directory."""

    db: Path
    """The database file (``conf.db``)."""
    run_dir: Path
    """Sockets and pid files: ``db.sock``, ``<bridge>.mgmt``, ``<program>.<pid>.ctl``."""
    db_socket: Path
    """The database's unix socket, the only way clients reach it."""
    log_dir: Path
    """Where the supervised programs' output goes."""
    sysconf_dir: Path
    ovsdb_pidfile: Path
    vswitchd_pidfile: Path

    @property
    def db_url(self) -> str:
        """The database as Open vSwitch clients name it (``ovsdb_connection`` of neutron/os-vif)."""
        return f"unix:{self.db_socket}"

    @property
    def directories(self) -> tuple[Path, ...]:
        """Directories that must exist before the programs start."""
        return (self.db.parent, self.run_dir, self.log_dir, self.sysconf_dir)

    def env(self) -> dict[str, str]:
        """Environment that points every Open vSwitch tool at this pod's switch.

        Give it to the pod's other programs that call ``ovs-vsctl`` without ``--db`` (libvirtd
        plugging a ``<virtualport type='openvswitch'>``, the neutron agent's helpers) too.
        """
        return {
            "OVS_RUNDIR": str(self.run_dir),
            "OVS_DBDIR": str(self.db.parent),
            "OVS_LOGDIR": str(self.log_dir),
            "OVS_SYSCONFDIR": str(self.sysconf_dir),
        }


def ovs_paths(pod_dir: Path) -> OvsPaths:
    """The Open vSwitch paths of the pod whose directory is ``pod_dir``.

    The database sits with the pod's data (it survives a restart), sockets and pid files in a
    run directory of their own, program output with the pod's other logs.
    """
    run_dir = pod_dir / "run" / "openvswitch"
    return OvsPaths(
        db=pod_dir / "data" / "openvswitch" / "conf.db",
        run_dir=run_dir,
        db_socket=run_dir / "db.sock",
        log_dir=pod_dir / "log",
        sysconf_dir=pod_dir / "etc" / "openvswitch",
        ovsdb_pidfile=run_dir / "ovsdb-server.pid",
        vswitchd_pidfile=run_dir / "ovs-vswitchd.pid",
    )


def _first_row() -> str:
    # The ``Open_vSwitch`` root row, written while no server holds the file: the switch then
    # never runs, not even once, without the settings it needs.
    other_config = ["map", sorted([key, value] for key, value in SWITCH_SETTINGS.items())]
    return json.dumps([
        "Open_vSwitch",
        {"op": "insert", "table": "Open_vSwitch", "row": {"other_config": other_config}},
    ])


def ovs_db_init_argv(paths: OvsPaths, schema: Path = SCHEMA) -> list[str]:
    """The command that creates the pod's directories and database; a no-op once it exists.

    ``ovsdb-tool create`` refuses to overwrite, so the check for an existing file is part of
    the command, which makes it safe to run at every ``up`` (in the pod or on the host: the
    paths are the same). A new database gets its root row with ``SWITCH_SETTINGS`` at once
    (should that step fail, the first command of ``bridge_setup_argvs`` still adds them before
    any port exists).
    """
    script = (
        'db="$1" schema="$2" row="$3"; shift 3; mkdir -p "$@" || exit; '
        '[ -e "$db" ] && exit 0; '
        'ovsdb-tool create "$db" "$schema" && exec ovsdb-tool transact "$db" "$row" >/dev/null'
    )
    return [
        "sh", "-c", script, "ovs-db-init", str(paths.db), str(schema), _first_row(),
        *(str(directory) for directory in paths.directories),
    ]


def ovs_programs(
    paths: OvsPaths, pod: str, env: Mapping[str, str] | None = None
) -> list[Program]:
    """``ovsdb-server`` and ``ovs-vswitchd`` of ``pod`` as supervised foreground programs.

    ``env`` is the pod's base environment (``PATH``, ``HOME``); ``OvsPaths.env`` is added to it.
    Both log to their console, which supervisord writes to ``<log_dir>/<pod>-<program>.log``;
    syslog is off (a pod has none). The database must exist first (``ovs_db_init_argv``). The
    control sockets get Open vSwitch's default names in ``run_dir``, so ``ovs-appctl -t
    ovs-vswitchd`` finds them through ``OVS_RUNDIR``.
    """
    full_env = {**(env or {}), **paths.env()}
    logging = ("-vconsole:info", "-vsyslog:off")
    ovsdb = (
        "ovsdb-server", str(paths.db),
        f"--remote=punix:{paths.db_socket}",
        # Managers configured in the database itself (none by default), as ovs-ctl does.
        "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
        f"--pidfile={paths.ovsdb_pidfile}",
        *logging,
    )
    vswitchd = (
        "ovs-vswitchd", paths.db_url,
        f"--pidfile={paths.vswitchd_pidfile}",
        *logging,
    )
    return [
        Program(name=f"{pod}-{argv[0]}", argv=argv, env=full_env,
                log=paths.log_dir / f"{pod}-{argv[0]}.log", stopwaitsecs=10)
        for argv in (ovsdb, vswitchd)
    ]


def vsctl(paths: OvsPaths, *args: str) -> list[str]:
    """``ovs-vsctl`` on the pod's database, waiting at most ``VSCTL_TIMEOUT`` seconds.

    Without ``--no-wait`` a change returns once ``ovs-vswitchd`` has applied it; a missing
    database socket fails at once.
    """
    return ["ovs-vsctl", f"--db={paths.db_url}", f"--timeout={VSCTL_TIMEOUT}", *args]


def _bridge(name: str) -> list[str]:
    return ["--", "--may-exist", "add-br", name,
            "--", "set", "bridge", name, f"datapath_type={DATAPATH_TYPE}"]


def bridge_setup_argvs(paths: OvsPaths, provider_port: str) -> list[list[str]]:
    """The idempotent commands that make ``br-int`` and ``br-provider`` with its uplink.

    Run them after both programs run (they wait for ``ovs-vswitchd``, up to ``VSCTL_TIMEOUT``
    s). ``provider_port`` is the pod end of the provider veth (``network.PROVIDER_IFNAME``).
    The bridges keep Open vSwitch's default ``NORMAL`` flow until the neutron agent (with
    ``datapath_type = netdev`` and ``bridge_mappings = <physnet>:br-provider``) takes them
    over and adds the ``int-br-provider``/``phy-br-provider`` patch ports itself.

    ``ovs-vsctl`` exits 0 even when the switch cannot open a port (it only prints "Error
    detected while setting up"): ``vsctl(paths, "get", "interface", provider_port, "error")``
    prints ``[]`` when the uplink works.
    """
    settings = [f"other_config:{key}={value}" for key, value in SWITCH_SETTINGS.items()]
    return [
        # A database created elsewhere may lack the root row or the settings.
        vsctl(paths, "--", "init", "--", "set", "Open_vSwitch", ".", *settings),
        vsctl(paths, *_bridge(INTEGRATION_BRIDGE)),
        vsctl(paths, *_bridge(PROVIDER_BRIDGE),
              "--", "--may-exist", "add-port", PROVIDER_BRIDGE, provider_port),
    ]


def patch_ports_argvs(paths: OvsPaths) -> list[list[str]]:
    """The ``br-int``/``br-provider`` patch pair, for a pod where no neutron agent runs.

    Same names as the agent's, so an agent started later takes the pair over.
    """
    pairs = (
        (INTEGRATION_BRIDGE, f"int-{PROVIDER_BRIDGE}", f"phy-{PROVIDER_BRIDGE}"),
        (PROVIDER_BRIDGE, f"phy-{PROVIDER_BRIDGE}", f"int-{PROVIDER_BRIDGE}"),
    )
    args: list[str] = []
    for bridge, port, peer in pairs:
        args += ["--", "--may-exist", "add-port", bridge, port,
                 "--", "set", "interface", port, "type=patch", f"options:peer={peer}"]
    return [vsctl(paths, *args)]
