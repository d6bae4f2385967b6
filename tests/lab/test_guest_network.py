"""The test guest answers ping and HTTP on its eth0, from a namespace made for the test.

QEMU runs inside a fresh network namespace with a tap device; the guest gets its address from
the kernel command line. Nothing leaves that namespace: it has no other interface than ``lo``
and the tap, and the addresses are from a private /24 of the lab ranges (172.31.98.0/24).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from oaas_lab.checks import CheckResult, failed, passed
from oaas_lab.openstack import guest
from oaas_lab.wait import wait_for

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(
        shutil.which("qemu-system-x86_64") is None,
        reason="needs QEMU: apt-get install qemu-system-x86",
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace"),
]

HOST_ADDR, GUEST_ADDR = "172.31.98.1/24", "172.31.98.10"


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if check:
        assert done.returncode == 0, f"{argv} exited {done.returncode}: {done.stderr}"
    return done


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"oaasguest{os.getpid()}"
    sh("ip", "netns", "add", name)
    try:
        inside = ("ip", "netns", "exec", name)
        sh(*inside, "ip", "link", "set", "lo", "up")
        sh(*inside, "ip", "tuntap", "add", "dev", "tapg0", "mode", "tap")
        sh(*inside, "ip", "addr", "add", HOST_ADDR, "dev", "tapg0")
        sh(*inside, "ip", "link", "set", "tapg0", "up")
        yield name
    finally:
        sh("ip", "netns", "delete", name, check=False)


@pytest.fixture
def image(tmp_path_factory: pytest.TempPathFactory) -> guest.GuestImage:
    return guest.build(tmp_path_factory.getbasetemp() / "guest-cache")


def test_guest_answers_ping_and_http(netns: str, image: guest.GuestImage, tmp_path: Path) -> None:
    argv = guest.qemu_argv(
        image, cmdline=image.cmdline(ip=f"{GUEST_ADDR}/24"),
        netdev="tap,id=n0,ifname=tapg0,script=no,downscript=no",
    )
    console = tmp_path / "console.log"
    with open(console, "wb") as out:
        qemu = subprocess.Popen(["ip", "netns", "exec", netns, *argv], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        line = f"oaas-lab guest eth0: {GUEST_ADDR}/24"

        def configured() -> CheckResult:
            text = console.read_text(errors="replace")
            if qemu.poll() is not None:
                return failed("guest", f"QEMU exited {qemu.returncode}")
            return passed("guest", "eth0 up") if line in text else failed("guest", "booting")

        wait_for(configured, timeout=180, interval=1,
                 fatal=lambda r: r.detail.startswith("QEMU exited"))
        inside = ("ip", "netns", "exec", netns)
        ping = sh(*inside, "ping", "-c", "3", "-W", "2", GUEST_ADDR, check=False)
        assert ping.returncode == 0, ping.stdout + ping.stderr
        assert " 0% packet loss" in ping.stdout
        page = sh(*inside, "curl", "-sS", "--max-time", "10", f"http://{GUEST_ADDR}/")
        assert page.stdout == guest.INDEX_HTML
    finally:
        qemu.terminate()
        try:
            qemu.wait(timeout=10)
        except subprocess.TimeoutExpired:
            qemu.kill()
            qemu.wait()
