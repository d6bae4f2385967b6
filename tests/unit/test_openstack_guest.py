"""The guest image's pieces: a valid, reproducible cpio; modules in dependency order; /init."""

from __future__ import annotations

import gzip
import stat

import pytest

from oaas_lab.errors import LabError
from oaas_lab.openstack import guest


def parse_newc(archive: bytes) -> list[tuple[str, int, bytes, tuple[int, int]]]:
    """A small independent newc reader: (name, mode, data, rdev) per member, trailer excluded."""
    members = []
    at = 0
    while True:
        assert archive[at : at + 6] == b"070701", f"bad magic at {at}"
        fields = [int(archive[at + 6 + 8 * i : at + 14 + 8 * i], 16) for i in range(13)]
        mode, size, rmaj, rmin, namesize = fields[1], fields[6], fields[9], fields[10], fields[11]
        name_at = at + 110
        name = archive[name_at : name_at + namesize - 1].decode()
        data_at = name_at + namesize + (-(110 + namesize) % 4)
        data = archive[data_at : data_at + size]
        at = data_at + size + (-size % 4)
        if name == "TRAILER!!!":
            assert at == len(archive)
            return members
        members.append((name, mode, data, (rmaj, rmin)))


def test_cpio_round_trip() -> None:
    entries = [
        guest.directory("bin"),
        guest.regular("bin/busybox", b"\x7fELF-ish", 0o755),
        guest.symlink("bin/sh", "busybox"),
        guest.chardev("dev/console", 5, 1),
        guest.regular("odd", b"123"),  # a length that needs padding
    ]
    members = parse_newc(guest.cpio_newc(entries))
    assert [m[0] for m in members] == ["bin", "bin/busybox", "bin/sh", "dev/console", "odd"]
    by_name = {m[0]: m for m in members}
    assert stat.S_ISDIR(by_name["bin"][1])
    assert by_name["bin/busybox"][2] == b"\x7fELF-ish"
    assert stat.S_IMODE(by_name["bin/busybox"][1]) == 0o755
    assert stat.S_ISLNK(by_name["bin/sh"][1])
    assert by_name["bin/sh"][2] == b"busybox"
    assert stat.S_ISCHR(by_name["dev/console"][1])
    assert by_name["dev/console"][3] == (5, 1)
    assert by_name["odd"][2] == b"123"


def test_same_input_same_bytes() -> None:
    entries = guest.initramfs_entries(b"busybox", [("virtio", b"ko1"), ("virtio_net", b"ko2")])
    first = guest.gzip_fixed(guest.cpio_newc(entries))
    again = guest.gzip_fixed(guest.cpio_newc(entries))
    assert first == again
    assert gzip.decompress(first) == guest.cpio_newc(entries)


def test_initramfs_has_init_console_and_modules() -> None:
    entries = guest.initramfs_entries(b"busybox", [("virtio", b"a"), ("virtio_net", b"b")])
    members = {m[0]: m for m in parse_newc(guest.cpio_newc(entries))}
    init = members["init"][2].decode()
    assert init.startswith("#!/bin/sh\n")
    assert guest.MARKER in init
    assert "for m in virtio virtio_net; do insmod" in init
    assert members["lib/modules/virtio_net.ko"][2] == b"b"
    assert members["dev/console"][3] == (5, 1)
    assert stat.S_IMODE(members["init"][1]) == 0o755


def test_module_depends_reads_modinfo() -> None:
    ko = b"\x7fELF junk\0license=GPL\0depends=virtio_ring,virtio,net-failover\0vermagic=6.1\0"
    assert guest.module_depends(ko) == ("virtio_ring", "virtio", "net_failover")
    assert guest.module_depends(b"\0depends=\0") == ()
    assert guest.module_depends(b"nothing here") == ()


def test_load_order_puts_dependencies_first() -> None:
    depends = {
        "virtio_net": ("virtio_ring", "virtio", "net_failover"),
        "net_failover": ("failover",),
        "failover": (),
        "virtio_ring": (),
        "virtio": (),
        "e1000": (),
    }
    order = guest.load_order(depends, ["virtio_net", "e1000"])
    assert order.index("failover") < order.index("net_failover") < order.index("virtio_net")
    assert order.index("virtio") < order.index("virtio_net")
    assert sorted(order) == sorted(depends)
    assert len(order) == len(set(order))


def test_load_order_names_a_missing_module() -> None:
    with pytest.raises(LabError, match="'virtio_net' is not in the kernel package"):
        guest.load_order({}, ["virtio_net"])


def test_cmdline() -> None:
    assert guest.GuestImage.cmdline() == "console=tty0 console=ttyS0 panic=-1"
    line = guest.GuestImage.cmdline(ip="192.0.2.10/24", gateway="192.0.2.1")
    assert line.endswith("oaas.ip=192.0.2.10/24 oaas.gw=192.0.2.1")
