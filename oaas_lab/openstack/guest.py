"""The boot-test guest: a Debian kernel and a busybox initramfs, built from Debian packages.

The VM-boot scenarios need a guest that boots in seconds under QEMU TCG and says so on its
serial console. This module builds one from two Debian packages fetched with ``apt-get
download`` (the only source), ``linux-image-amd64``'s kernel and ``busybox-static``:

* ``vmlinuz``: the Debian kernel, unchanged;
* ``initramfs.img``: a gzip'd ``newc`` cpio with busybox, the NIC drivers (virtio-net, e1000)
  in load order, and an ``/init`` that mounts proc/sys/dev, prints ``MARKER`` on the console,
  configures ``eth0`` (``oaas.ip=ADDR/PREFIX`` [``oaas.gw=GW``] on the kernel command line,
  ``oaas.ip=none`` for no address, otherwise DHCP with ``udhcpc``), serves ``/`` with busybox
  ``httpd`` on port 80 and keeps a shell on the console;
* ``root.raw``: a 1 MiB empty disk, the root image a cloud needs to boot a kernel + ramdisk.

The build is deterministic (fixed inode numbers, owners and times, gzip without a timestamp):
the same packages give the same bytes, and the result is cached under a key made of the
packages' checksums and the builder's own inputs, so a lab builds it once.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import stat
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from oaas_lab.adapters import shell
from oaas_lab.checksums import sha256_file
from oaas_lab.errors import LabError
from oaas_lab.kernel.results import CheckResult, failed, passed

if TYPE_CHECKING:
    from oaas_lab.adapters.openstack import Connection, Image

MARKER = "oaas-lab guest reached userspace"
"""The line ``/init`` prints on the console once userspace runs."""

KERNEL_PACKAGE = "linux-image-amd64"
"""The Debian meta-package whose dependency names the current kernel package."""

BUSYBOX_PACKAGE = "busybox-static"

NET_MODULES = ("virtio_net", "virtio_pci", "e1000")
"""Drivers the guest loads so that a QEMU/libvirt NIC (virtio by default, or e1000) is eth0."""

FORMAT = 1
"""Bumped whenever the layout of the built files changes, so older caches are not reused."""

ROOT_DISK_BYTES = 1024 * 1024

INIT_TEMPLATE = """#!/bin/sh
# oaas-lab test guest: everything runs from this initramfs, nothing is read from a disk.
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
hostname oaas-guest
for m in {modules}; do insmod /lib/modules/$m.ko 2>/dev/null; done
echo "{marker}"
echo "{marker}" > /dev/tty0 2>/dev/null
addr=""
gw=""
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    oaas.ip=*) addr="${{arg#oaas.ip=}}" ;;
    oaas.gw=*) gw="${{arg#oaas.gw=}}" ;;
  esac
done
ip link set lo up
if ip link show eth0 >/dev/null 2>&1; then
  ip link set eth0 up
  if [ "$addr" = "none" ]; then
    :
  elif [ -n "$addr" ]; then
    ip addr add "$addr" dev eth0
    [ -n "$gw" ] && ip route add default via "$gw"
  else
    # Bounded: three tries, two seconds apart, then the guest carries on without an address.
    udhcpc -i eth0 -n -q -t 3 -T 2 -s /etc/udhcpc.script
  fi
fi
echo "oaas-lab guest eth0: $(ip -4 -o addr show dev eth0 2>/dev/null | awk '{{print $4}}')"
httpd -p 80 -h /www
while true; do
  setsid cttyhack sh
  sleep 1
done
"""

UDHCPC_SCRIPT = """#!/bin/sh
# Applies a lease from udhcpc to the interface (busybox ships no default script).
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
    ;;
esac
exit 0
"""

INDEX_HTML = "oaas-lab guest\n"


@dataclass(frozen=True)
class GuestImage:
    """A built guest: the three files a cloud (or QEMU) boots, and what they were made from."""

    kernel: Path
    initramfs: Path
    root_disk: Path
    key: str
    packages: Mapping[str, str] = field(default_factory=dict)
    """Debian package -> version the guest was built from."""

    @staticmethod
    def cmdline(ip: str | None = None, gateway: str | None = None) -> str:
        """The kernel command line: serial console, and eth0's address (DHCP when ``None``).

        ``ip`` is ``ADDR/PREFIX`` or ``"none"``. ``panic=-1`` reboots at once on a kernel panic,
        so a watcher started with ``-no-reboot`` sees the failure instead of waiting.
        """
        args = ["console=tty0", "console=ttyS0", "panic=-1"]
        if ip:
            args.append(f"oaas.ip={ip}")
        if gateway:
            args.append(f"oaas.gw={gateway}")
        return " ".join(args)


# --- cpio (newc) -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One member of the initramfs."""

    name: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def directory(name: str) -> Entry:
    """A directory, mode 0755."""
    return Entry(name, stat.S_IFDIR | 0o755)


def regular(name: str, data: bytes, perm: int = 0o644) -> Entry:
    """A regular file."""
    return Entry(name, stat.S_IFREG | perm, data)


def symlink(name: str, target: str) -> Entry:
    """A symbolic link."""
    return Entry(name, stat.S_IFLNK | 0o777, target.encode())


def chardev(name: str, major: int, minor: int) -> Entry:
    """A character device node (the kernel creates it while unpacking; no privilege needed)."""
    return Entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))


def _pad4(length: int) -> bytes:
    return b"\0" * (-length % 4)


def cpio_newc(entries: Iterable[Entry]) -> bytes:
    """The entries as a ``newc`` cpio archive with fixed inodes, owner root and time 0."""
    out = bytearray()
    members = [*entries, Entry("TRAILER!!!", 0)]
    for ino, entry in enumerate(members, start=1):
        name = entry.name.encode() + b"\0"
        fields = (
            0 if entry.name == "TRAILER!!!" else ino,
            entry.mode,
            0,  # uid
            0,  # gid
            2 if stat.S_ISDIR(entry.mode) else 1,
            0,  # mtime
            len(entry.data),
            0,  # devmajor
            0,  # devminor
            entry.rdev[0],
            entry.rdev[1],
            len(name),
            0,  # check
        )
        header = b"070701" + b"".join(f"{value:08x}".encode() for value in fields)
        out += header + name + _pad4(len(header) + len(name))
        out += entry.data + _pad4(len(entry.data))
    return bytes(out)


def gzip_fixed(data: bytes) -> bytes:
    """``data`` gzip'd with no file name and time 0, so equal input gives equal bytes."""
    return gzip.compress(data, compresslevel=9, mtime=0)


# --- kernel modules ----------------------------------------------------------------------------


def module_depends(ko: bytes) -> tuple[str, ...]:
    """The ``depends=`` field of a kernel module's ``.modinfo`` section."""
    at = ko.find(b"\0depends=")
    if at < 0:
        return ()
    end = ko.find(b"\0", at + 1)
    value = ko[at + len(b"\0depends=") : end].decode()
    return tuple(name.replace("-", "_") for name in value.split(",") if name)


def load_order(depends: Mapping[str, Sequence[str]], wanted: Iterable[str]) -> list[str]:
    """``wanted`` and everything they depend on, each after its dependencies."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise LabError(f"kernel module dependency cycle through {name!r}")
        if name not in depends:
            raise LabError(
                f"kernel module {name!r} is not in the kernel package",
                hint="the guest needs a Debian kernel that builds it as a module",
            )
        visiting.add(name)
        for dep in depends[name]:
            visit(dep)
        visiting.discard(name)
        order.append(name)

    for name in wanted:
        visit(name)
    return order


def _modules_in(tree: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for ko in sorted(tree.glob("lib/modules/*/kernel/**/*.ko")):
        found[ko.stem.replace("-", "_")] = ko
    return found


# --- the image ---------------------------------------------------------------------------------


def init_script(modules: Sequence[str]) -> str:
    """The guest's ``/init``: loads ``modules`` in order, prints ``MARKER``, sets up eth0."""
    return INIT_TEMPLATE.format(modules=" ".join(modules), marker=MARKER)


def initramfs_entries(
    busybox: bytes, modules: Sequence[tuple[str, bytes]]
) -> list[Entry]:
    """Every member of the initramfs; ``modules`` are (name, contents) in load order."""
    entries = [
        directory(d)
        for d in (
            "bin", "dev", "etc", "lib", "lib/modules", "proc", "root", "run", "sbin", "sys",
            "tmp", "usr", "usr/bin", "usr/sbin", "var", "www",
        )
    ]
    entries += [
        chardev("dev/console", 5, 1),
        chardev("dev/null", 1, 3),
        regular("bin/busybox", busybox, 0o755),
        symlink("bin/sh", "busybox"),
        regular("init", init_script([name for name, _ in modules]).encode(), 0o755),
        regular("etc/udhcpc.script", UDHCPC_SCRIPT.encode(), 0o755),
        regular("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
        regular("etc/group", b"root:x:0:\n"),
        regular("www/index.html", INDEX_HTML.encode()),
    ]
    entries += [regular(f"lib/modules/{name}.ko", data) for name, data in modules]
    return entries




def _apt_fields(package: str) -> dict[str, str]:
    done = shell.run(["apt-cache", "show", "--no-all-versions", package], timeout=60, check=False)
    if not done.ok or not done.stdout.strip():
        raise LabError(
            f"Debian package {package!r} is unknown to apt",
            hint="run: apt-get update (the guest is built from Debian packages)",
        )
    fields: dict[str, str] = {}
    for line in done.stdout.splitlines():
        key, sep, value = line.partition(": ")
        if sep and not line.startswith(" "):
            fields.setdefault(key, value.strip())
    return fields


def resolve_packages() -> dict[str, str]:
    """The kernel and busybox packages apt would install now: package -> version."""
    meta = _apt_fields(KERNEL_PACKAGE)
    kernel = next(
        (
            dep.split()[0]
            for dep in meta.get("Depends", "").split(",")
            if dep.strip().startswith("linux-image-")
        ),
        None,
    )
    if kernel is None:
        raise LabError(f"{KERNEL_PACKAGE} names no linux-image-* package in its Depends")
    return {
        kernel: _apt_fields(kernel)["Version"],
        BUSYBOX_PACKAGE: _apt_fields(BUSYBOX_PACKAGE)["Version"],
    }


def _fetch(package: str, version: str, debs: Path) -> Path:
    arch = shell.run(["dpkg", "--print-architecture"], timeout=30).stdout.strip()
    deb = debs / f"{package}_{version.replace(':', '%3a')}_{arch}.deb"
    if not deb.exists():
        debs.mkdir(parents=True, exist_ok=True)
        # Root downloads into a root-owned directory: tell apt not to drop to _apt for it.
        shell.run(
            ["apt-get", "download", "-o", "APT::Sandbox::User=root", f"{package}={version}"],
            cwd=debs,
            timeout=600,
        )
    if not deb.exists():
        raise LabError(f"apt-get download {package}={version} left no {deb.name} in {debs}")
    return deb


def _cache_key(debs: Sequence[Path]) -> str:
    digest = hashlib.sha256(f"format {FORMAT}\n".encode())
    # A Debian package file name carries its version, and one version has one content.
    for deb in debs:
        digest.update(f"{deb.name}\n".encode())
    digest.update(INIT_TEMPLATE.encode() + UDHCPC_SCRIPT.encode() + INDEX_HTML.encode())
    digest.update(" ".join(NET_MODULES).encode())
    return digest.hexdigest()[:16]


def _load(out: Path, key: str) -> GuestImage | None:
    manifest = out / "manifest.json"
    if not manifest.exists():
        return None
    data = json.loads(manifest.read_text(encoding="utf-8"))
    image = GuestImage(
        kernel=out / "vmlinuz",
        initramfs=out / "initramfs.img",
        root_disk=out / "root.raw",
        key=key,
        packages=dict(data["packages"]),
    )
    files = (image.kernel, image.initramfs, image.root_disk)
    if all(f.exists() and sha256_file(f) == data["sha256"][f.name] for f in files):
        return image
    return None


def build(cache_dir: Path, packages: Mapping[str, str] | None = None) -> GuestImage:
    """Build the guest into ``cache_dir/<key>/`` (or return the cached one).

    ``packages`` (package -> version, as ``resolve_packages`` returns) pins the inputs; by
    default apt's current candidates are used. The ``.deb`` files are kept in
    ``cache_dir/debs`` so a rebuild needs no download.
    """
    wanted = dict(packages) if packages is not None else resolve_packages()
    debs_dir = cache_dir / "debs"
    debs = [_fetch(name, version, debs_dir) for name, version in sorted(wanted.items())]
    key = _cache_key(debs)
    out = cache_dir / key
    cached = _load(out, key)
    if cached is not None:
        return cached
    with tempfile.TemporaryDirectory(prefix="guest-", dir=cache_dir) as tmp:
        tree = Path(tmp) / "tree"
        for deb in debs:
            shell.run(["dpkg-deb", "-x", str(deb), str(tree)], timeout=300)
        kernels = sorted(tree.glob("boot/vmlinuz-*"))
        busybox = tree / "bin" / "busybox"
        if len(kernels) != 1 or not busybox.exists():
            raise LabError(f"the packages {sorted(wanted)} hold no single kernel and busybox")
        available = _modules_in(tree)
        depends = {name: module_depends(path.read_bytes()) for name, path in available.items()}
        order = load_order(depends, NET_MODULES)
        modules = [(name, available[name].read_bytes()) for name in order]
        archive = gzip_fixed(cpio_newc(initramfs_entries(busybox.read_bytes(), modules)))

        staging = Path(tmp) / "out"
        staging.mkdir()
        shutil.copyfile(kernels[0], staging / "vmlinuz")
        (staging / "initramfs.img").write_bytes(archive)
        (staging / "root.raw").write_bytes(b"\0" * ROOT_DISK_BYTES)
        manifest = {
            "format": FORMAT,
            "packages": wanted,
            "modules": order,
            "sha256": {
                name: sha256_file(staging / name)
                for name in ("vmlinuz", "initramfs.img", "root.raw")
            },
        }
        (staging / "manifest.json").write_text(
            json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    image = _load(out, key)
    if image is None:
        raise LabError(f"the guest built in {out} does not match its manifest")
    return image


# --- booting it --------------------------------------------------------------------------------


def qemu_argv(
    image: GuestImage,
    *,
    cmdline: str,
    memory_mib: int = 256,
    netdev: str | None = "hubport,id=n0,hubid=0",
) -> list[str]:
    """QEMU (TCG, serial console on stdout) booting ``image`` directly from kernel + initramfs.

    The default NIC hangs off a hub with nothing else on it: eth0 exists and gets its address,
    but no frame can leave QEMU. Pass ``netdev=None`` for no NIC, or e.g. a ``tap,...`` netdev
    inside a lab namespace.
    """
    argv = [
        "qemu-system-x86_64",
        "-machine", "accel=tcg",
        "-m", str(memory_mib),
        "-nographic",
        "-no-reboot",
        "-kernel", str(image.kernel),
        "-initrd", str(image.initramfs),
        "-append", cmdline,
    ]
    if netdev is None:
        argv += ["-nic", "none"]
    else:
        argv += ["-netdev", netdev, "-device", "virtio-net-pci,netdev=n0"]
    return argv


def boot(
    image: GuestImage,
    *,
    timeout: float = 120.0,
    cmdline: str | None = None,
    argv: Sequence[str] | None = None,
    until: str = MARKER,
) -> CheckResult:
    """Boot ``image`` under QEMU until ``until`` shows on the console, then stop QEMU.

    ``argv`` replaces the default ``qemu_argv`` command line (e.g. to run it in a namespace).
    The result's ``evidence`` holds ``seconds`` (start to that line) and the ``console`` text.
    """
    command = list(argv) if argv is not None else qemu_argv(
        image, cmdline=cmdline or image.cmdline(ip="none")
    )
    watched = shell.run_until(command, marker=until, timeout=timeout)
    evidence = {"seconds": round(watched.elapsed, 1), "console": watched.output}
    if watched.found:
        return passed("guest boot", f"userspace after {watched.elapsed:.1f}s", **evidence)
    why = (
        f"QEMU exited {watched.returncode}"
        if watched.returncode is not None
        else f"no {until!r} after {watched.elapsed:.0f}s"
    )
    tail = watched.output.strip().splitlines()[-1:] or [""]
    return failed(
        "guest boot", f"{why}; last console line: {tail[0]!r}",
        hint="read the console text in the evidence", **evidence,
    )


# --- into glance -------------------------------------------------------------------------------


def upload(
    conn: Connection, image: GuestImage, *, name: str = "oaas-guest", cmdline: str | None = None
) -> Image:
    """Upload the guest as glance's kernel + ramdisk + root-disk triple; the bootable image.

    nova's libvirt driver boots the root image (``ami``) with the kernel (``aki``) and ramdisk
    (``ari``) its properties name, on the command line in ``os_command_line`` (DHCP on eth0
    unless ``cmdline`` says otherwise). Uploading again reuses the images of the same names.
    """
    from oaas_lab.adapters import openstack as cloud  # the SDK is optional for the rest

    kernel = cloud.upload_image(
        conn, f"{name}-kernel", image.kernel, disk_format="aki", container_format="aki"
    )
    ramdisk = cloud.upload_image(
        conn, f"{name}-initramfs", image.initramfs, disk_format="ari", container_format="ari"
    )
    return cloud.upload_image(
        conn, name, image.root_disk, disk_format="ami", container_format="ami",
        properties={
            "kernel_id": kernel.id,
            "ramdisk_id": ramdisk.id,
            "os_command_line": cmdline or image.cmdline(),
            "hw_vif_model": "virtio",
            "oaas_lab_guest": image.key,
        },
    )
