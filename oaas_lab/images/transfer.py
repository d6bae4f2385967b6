"""Move built images out of the cache: into a containerd (``ctr``) or to a registry (``skopeo``)."""

from __future__ import annotations

import ipaddress
import json
import tarfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from oaas_lab.adapters import shell
from oaas_lab.errors import LabError, UserError
from oaas_lab.images import cache
from oaas_lab.images.build import require_tool
from oaas_lab.images.cache import Built
from oaas_lab.images.catalogue import REPOSITORY, registry_host

NAMESPACE = "k8s.io"
"""The containerd namespace the kubelet's CRI plugin reads images from."""
IMPORT_TIMEOUT = 1200.0
PUSH_TIMEOUT = 1800.0


@dataclass(frozen=True)
class Loaded:
    """One image offered to a containerd: ``imported`` is ``False`` when it was there already."""

    ref: str
    archive: Path
    imported: bool
    seconds: float


def archive_ref(archive: Path) -> str:
    """The reference a docker-archive carries (its cache record's, else its manifest's)."""
    record = cache.read_record(archive.parent)
    if record is not None and record.archive == archive:
        return record.ref
    try:
        with tarfile.open(archive) as tar:
            member = tar.extractfile("manifest.json")
            manifest = json.loads(member.read()) if member is not None else []
    except (OSError, tarfile.TarError, KeyError, ValueError) as exc:
        raise UserError(f"{archive} is not a docker-archive ({exc})",
                        hint="give an image.tar from oaas-lab images build") from None
    tags = [t for entry in manifest for t in entry.get("RepoTags") or []]
    if len(tags) != 1:
        raise UserError(f"{archive} names {len(tags)} references, not one",
                        hint="give an image.tar from oaas-lab images build")
    return str(tags[0])


def _ctr(socket: Path, enter: Sequence[str], *args: str) -> list[str]:
    return [*enter, "ctr", "-a", str(socket), "-n", NAMESPACE, *args]


def _listed(socket: Path, enter: Sequence[str]) -> set[str]:
    done = shell.run(_ctr(socket, enter, "images", "ls", "-q"), timeout=60)
    return {line.strip() for line in done.stdout.splitlines() if line.strip()}


def load(items: Iterable[Built | Path], containerd_socket: Path,
         enter: Sequence[str] = ()) -> list[Loaded]:
    """Import images into the containerd at ``containerd_socket`` (namespace ``k8s.io``).

    ``items`` are ``Built`` images or docker-archive paths. An image whose reference
    ``ctr images ls -q`` already lists is skipped; an imported one must be listed afterwards.
    ``enter`` runs ``ctr`` inside another node's namespaces (an argv prefix such as
    ``nsenter -t PID --net --mount --``), where ``ctr`` finds that node's own ``/run``.
    """
    require_tool("ctr")
    socket = Path(containerd_socket)
    if not socket.exists():
        raise LabError(f"containerd socket {socket} does not exist",
                       hint="start the node's containerd first")
    wanted = [(item.ref, item.archive) if isinstance(item, Built)
              else (archive_ref(Path(item)), Path(item)) for item in items]
    present = _listed(socket, enter)
    out: list[Loaded] = []
    for ref, archive in wanted:
        start = time.monotonic()
        if ref in present:
            out.append(Loaded(ref, archive, imported=False, seconds=time.monotonic() - start))
            continue
        shell.run(_ctr(socket, enter, "images", "import", str(archive)),
                  timeout=IMPORT_TIMEOUT)
        present = _listed(socket, enter)
        if ref not in present:
            raise LabError(f"ctr imported {archive} but does not list {ref}",
                           hint=f"check: ctr -a {socket} -n {NAMESPACE} images ls")
        out.append(Loaded(ref, archive, imported=True, seconds=time.monotonic() - start))
    return out


def _is_loopback(host: str) -> bool:
    name = host[1:].split("]", 1)[0] if host.startswith("[") else host.rsplit(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def push(built: Built | Sequence[Built], registry_url: str) -> list[str]:
    """Copy images to the registry at ``registry_url``; the references pushed.

    ``registry_url`` is ``host[:port]`` or a URL of one. TLS is verified, except for a
    loopback registry (``127.0.0.1``, ``::1``, ``localhost``), the only one that may also be
    plain HTTP.
    """
    host = registry_host(registry_url)
    loopback = _is_loopback(host)
    if registry_url.startswith("http://") and not loopback:
        raise UserError(f"registry {registry_url} is plain HTTP and not on this host",
                        hint="use https:// (only a loopback registry may skip TLS)")
    require_tool("skopeo")
    items = [built] if isinstance(built, Built) else list(built)
    pushed: list[str] = []
    for item in items:
        repo_tag = item.ref.split("/", 1)[1]  # oaas-lab/<name>:<tag>
        if not repo_tag.startswith(f"{REPOSITORY}/"):
            raise UserError(f"{item.ref} is not an oaas-lab image",
                            hint="push images from oaas-lab images build")
        dest = f"{host}/{repo_tag}"
        argv = ["skopeo", "copy", "--quiet"]
        if loopback:
            argv.append("--dest-tls-verify=false")
        argv += [f"docker-archive:{item.archive}", f"docker://{dest}"]
        shell.run(argv, timeout=PUSH_TIMEOUT)
        pushed.append(dest)
    return pushed
