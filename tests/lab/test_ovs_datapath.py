"""A VM behind a compute pod's userspace Open vSwitch answers ping and HTTP from another lab pod.

The wiring is the one nova-compute and the neutron agent get: the compute pod runs its own
``ovsdb-server`` and ``ovs-vswitchd`` (``netdev`` datapath, files in the pod's directory),
``br-int`` and ``br-provider`` joined by a patch pair, the provider veth (``eth1``) on
``br-provider`` and its host end on the lab bridge, the VM's tap on ``br-int``. A second pod on
the same bridge stands for any lab pod and talks to the guest's static address.

Everything lives in a lab of its own, ``oovs`` on 172.31.97.0/24, removed at the end (and at
the start, should an interrupted run have left it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from oaas_lab.adapters import iproute, shell
from oaas_lab.backends.local import network
from oaas_lab.backends.local.daemons import openvswitch as ovs
from oaas_lab.backends.local.daemons.base import PATH
from oaas_lab.kernel.results import CheckResult, failed, passed
from oaas_lab.kernel.wait import wait_for
from oaas_lab.openstack import guest

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(
        shutil.which("qemu-system-x86_64") is None,
        reason="needs QEMU: apt-get install qemu-system-x86",
    ),
    pytest.mark.skipif(
        shutil.which("ovs-vswitchd") is None,
        reason="needs Open vSwitch: apt-get install openvswitch-switch",
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
]

NAMING = network.Naming("oovs")
SUBNET = "172.31.97.0/24"
COMPUTE, COMPUTE_IP = "compute-0", "172.31.97.30"
CLIENT, CLIENT_IP = "client-0", "172.31.97.20"
GUEST_ADDR = "172.31.97.50"
TAP = "tapoovs0"
BIG_KIB = 4096


def sh(*argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check:
        assert done.returncode == 0, f"{argv} exited {done.returncode}: {done.stderr}"
    return done


def in_pod(pod: str, *argv: str) -> list[str]:
    return shell.in_netns(NAMING.netns(pod), argv)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in reversed(procs):
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def remove_lab() -> None:
    pods = ((COMPUTE, COMPUTE_IP), (CLIENT, CLIENT_IP))
    for pod, _ in pods:
        # Only a run killed before its own teardown leaves processes in these namespaces.
        iproute.kill_netns_processes(NAMING.netns(pod))
    for pod, ip in pods:
        network.delete_pod(NAMING, pod, ip)
    network.delete_bridge(NAMING)


@pytest.fixture
def lab_net() -> Iterator[None]:
    remove_lab()
    owners = network.subnet_owners(SUBNET, NAMING.bridge)
    assert not owners, f"{SUBNET} is already used by {owners}: this test needs it for itself"
    try:
        network.ensure_bridge(NAMING, SUBNET)
        network.create_pod(NAMING, COMPUTE, COMPUTE_IP, SUBNET)
        network.create_pod(NAMING, CLIENT, CLIENT_IP, SUBNET)
        assert network.create_provider_link(NAMING, COMPUTE, COMPUTE_IP)
        assert not network.create_provider_link(NAMING, COMPUTE, COMPUTE_IP)
        # What the lab's ``down`` removes: every link ``lab_links`` names.
        assert NAMING.provider_veth(COMPUTE_IP) in network.lab_links(NAMING)
        yield
    finally:
        remove_lab()
    assert not network.lab_links(NAMING), "the test left links behind"


@pytest.fixture
def switch(lab_net: None, tmp_path: Path) -> Iterator[ovs.OvsPaths]:
    """The compute pod's ovsdb-server and ovs-vswitchd, started as supervisord would."""
    paths = ovs.ovs_paths(tmp_path / COMPUTE)
    sh(*ovs.ovs_db_init_argv(paths))
    sh(*ovs.ovs_db_init_argv(paths))  # a second time: nothing to do
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for program in ovs.ovs_programs(paths, COMPUTE, {"PATH": PATH}):
            with open(program.log, "ab") as log:
                procs.append(subprocess.Popen(
                    in_pod(COMPUTE, *program.argv), env={**os.environ, **program.env},
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT))

        def pidfiles() -> CheckResult:
            if any(proc.poll() is not None for proc in procs):
                return failed("ovs", f"a program exited, see {paths.log_dir}")
            written = [p.read_text().strip() for p in (paths.ovsdb_pidfile,
                       paths.vswitchd_pidfile) if p.exists()]
            # The wrappers exec the daemons: supervisord's PID is the daemon's own.
            if written == [str(proc.pid) for proc in procs]:
                return passed("ovs", "running")
            return failed("ovs", f"pid files {written}")

        wait_for(pidfiles, timeout=20, interval=0.2, fatal=lambda r: "exited" in r.detail)
        yield paths
    finally:
        stop(procs)


@pytest.fixture
def image(tmp_path_factory: pytest.TempPathFactory) -> guest.GuestImage:
    return guest.build(tmp_path_factory.getbasetemp() / "guest-cache")


def vsctl(paths: ovs.OvsPaths, *args: str) -> str:
    return sh(*ovs.vsctl(paths, *args)).stdout.strip()


def client_ping(count: int) -> subprocess.CompletedProcess[str]:
    return sh(*in_pod(CLIENT, "ping", "-n", "-q", "-c", str(count), "-i", "0.2", "-W", "1",
                      GUEST_ADDR), check=False)


def test_vm_on_br_int_answers_a_lab_pod(
    switch: ovs.OvsPaths, image: guest.GuestImage, tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    paths = switch
    for argv in ovs.bridge_setup_argvs(paths, network.PROVIDER_IFNAME):
        sh(*in_pod(COMPUTE, *argv))
    before = vsctl(paths, "show")
    for argv in ovs.bridge_setup_argvs(paths, network.PROVIDER_IFNAME):
        sh(*in_pod(COMPUTE, *argv))
    assert vsctl(paths, "show") == before, "a second bridge setup changed the switch"
    for bridge in (ovs.INTEGRATION_BRIDGE, ovs.PROVIDER_BRIDGE):
        assert vsctl(paths, "get", "bridge", bridge, "datapath_type") == "netdev"
    assert vsctl(paths, "get", "Open_vSwitch", ".",
                 "other_config:userspace-tso-enable") == '"true"'
    # ovs-vsctl exits 0 when a port cannot be opened; the switch says so in the port's row.
    assert vsctl(paths, "get", "interface", network.PROVIDER_IFNAME, "error") == "[]"
    for argv in ovs.patch_ports_argvs(paths):
        sh(*in_pod(COMPUTE, *argv))
    # libvirt creates the VM's tap and os-vif adds it to br-int before the guest runs.
    sh(*in_pod(COMPUTE, "ip", "tuntap", "add", "dev", TAP, "mode", "tap"))
    sh(*in_pod(COMPUTE, "ip", "link", "set", TAP, "up"))
    vsctl(paths, "--", "--may-exist", "add-port", ovs.INTEGRATION_BRIDGE, TAP)
    assert vsctl(paths, "get", "interface", TAP, "error") == "[]"
    assert vsctl(paths, "list-ports", ovs.PROVIDER_BRIDGE).split() == [
        network.PROVIDER_IFNAME, f"phy-{ovs.PROVIDER_BRIDGE}"]

    argv = guest.qemu_argv(image, cmdline=image.cmdline(ip=f"{GUEST_ADDR}/24"),
                           netdev=f"tap,id=n0,ifname={TAP},script=no,downscript=no")
    console = tmp_path / "console.log"
    with open(console, "wb") as out:
        started = time.monotonic()
        qemu = subprocess.Popen(in_pod(COMPUTE, *argv), stdin=subprocess.PIPE, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        def answers() -> CheckResult:
            if qemu.poll() is not None:
                return failed("guest", f"QEMU exited {qemu.returncode}")
            if client_ping(1).returncode == 0:
                return passed("guest", "ping answered")
            return failed("guest", "no ping reply yet")

        wait_for(answers, timeout=120, interval=0.2,
                 fatal=lambda r: r.detail.startswith("QEMU exited"))
        first_reply = time.monotonic() - started
        record_property("first_ping_s", round(first_reply, 1))

        ping = client_ping(20)
        assert " 0% packet loss" in ping.stdout, ping.stdout
        rtt = re.search(r"= ([\d.]+)/([\d.]+)/([\d.]+)/", ping.stdout)
        assert rtt is not None, ping.stdout
        record_property("ping_rtt_ms_min_avg_max", "/".join(rtt.groups()))

        # TCP both ways: without the userspace TSO setting the handshake already fails.
        page = sh(*in_pod(CLIENT, "curl", "-sS", "--max-time", "10", f"http://{GUEST_ADDR}/"))
        assert page.stdout == guest.INDEX_HTML

        # Full-size segments from the guest: a file made on its console, then fetched.
        assert qemu.stdin is not None
        qemu.stdin.write(f"\ndd if=/dev/zero of=/www/big bs=1024 count={BIG_KIB}\n".encode())
        qemu.stdin.flush()

        def fetched() -> CheckResult:
            done = sh(*in_pod(CLIENT, "curl", "-sS", "--max-time", "20", "-o", "/dev/null",
                              "-w", "%{http_code} %{size_download} %{speed_download}",
                              f"http://{GUEST_ADDR}/big"), check=False)
            code, size, speed = [*done.stdout.split(), "", "", ""][:3]
            if code == "200" and size == str(BIG_KIB * 1024):
                return passed("download", f"{float(speed) / 1e6:.1f} MB/s")
            return failed("download", f"curl exited {done.returncode}: {done.stdout}")

        download = wait_for(fetched, timeout=30, interval=1)
        record_property("download_4MiB", download.detail)
        print(f"first ping reply {first_reply:.1f}s after QEMU start; rtt min/avg/max "
              f"{'/'.join(rtt.groups())} ms; 4 MiB from the guest at {download.detail}")
    finally:
        stop([qemu])
