"""The test guest, built from Debian packages, boots under QEMU TCG and reaches userspace."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from oaas_lab.openstack import guest

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(
        shutil.which("qemu-system-x86_64") is None,
        reason="needs QEMU: apt-get install qemu-system-x86",
    ),
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("guest-cache")


@pytest.fixture(scope="module")
def image(cache: Path) -> guest.GuestImage:
    return guest.build(cache)


def test_build_is_cached_and_deterministic(
    image: guest.GuestImage, cache: Path, tmp_path: Path
) -> None:
    assert guest.build(cache) == image
    # A second cache with the same packages (copied, to save the download) gives the same bytes.
    shutil.copytree(cache / "debs", tmp_path / "debs")
    again = guest.build(tmp_path, packages=image.packages)
    assert again.key == image.key
    for ours, theirs in [
        (image.kernel, again.kernel),
        (image.initramfs, again.initramfs),
        (image.root_disk, again.root_disk),
    ]:
        assert ours.read_bytes() == theirs.read_bytes(), ours.name


def test_boots_to_userspace_with_eth0_configured(image: guest.GuestImage) -> None:
    # The NIC sits on a QEMU hub with nothing else on it: no frame leaves QEMU.
    line = "oaas-lab guest eth0: 172.31.98.10/24"
    result = guest.boot(image, timeout=180, cmdline=image.cmdline(ip="172.31.98.10/24"), until=line)
    console = str(result.evidence["console"])
    assert result.ok, f"{result}\n{console[-2000:]}"
    assert guest.MARKER in console
    assert console.index(guest.MARKER) < console.index(line)
    assert "Run /init as init process" in console


def test_a_missing_marker_is_reported(image: guest.GuestImage) -> None:
    # init=/bin/false: the kernel panics, reboots at once, and QEMU (-no-reboot) exits.
    result = guest.boot(image, timeout=120, cmdline="console=ttyS0 panic=-1 rdinit=/bin/false")
    assert not result.ok
    assert "QEMU exited" in result.detail
