"""The image cache: ``<cache_dir>/images/<name>/<tag>/`` holds one built image.

Each entry is a docker-archive (``image.tar``, what ``ctr images import`` and ``skopeo`` read)
and a small JSON record (``image.json``: reference, size, build seconds, the recipe's spec).
An image is built in a staging directory beside its entry (``.build-<pid>-<random>``) and
renamed into place in one step, so an interrupted build never leaves an entry that counts as
built; a staging directory whose process is gone is removed by the next build of that image.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IMAGES = "images"
ARCHIVE = "image.tar"
RECORD = "image.json"
STAGING_PREFIX = ".build-"
PIP_CACHE = ".pip"
"""pip's cache, shared by the OpenStack images' builds (wheels built once, e.g. libvirt-python)."""


@dataclass(frozen=True)
class Built:
    """One image as ``build`` returns it.

    ``seconds`` is the time this call spent on it (close to 0 on a cache hit); ``cached``
    says whether it was already built.
    """

    name: str
    ref: str
    archive: Path
    size: int
    seconds: float
    cached: bool


@dataclass(frozen=True)
class Record:
    """What the cache knows about one built image (its ``image.json``)."""

    name: str
    tag: str
    ref: str
    archive: Path
    size: int
    seconds: float
    """How long the build took."""
    built_at: str
    release: str
    spec: dict[str, Any]


def images_dir(cache_dir: Path) -> Path:
    """Where every image of ``cache_dir`` lives."""
    return Path(cache_dir) / IMAGES


def entry_dir(cache_dir: Path, name: str, tag: str) -> Path:
    """The directory of image ``name`` with ``tag`` (it may not exist)."""
    return images_dir(cache_dir) / name / tag


def write_record(directory: Path, record: Record) -> None:
    """Write ``record`` as ``directory/image.json``."""
    data = {
        "name": record.name,
        "tag": record.tag,
        "ref": record.ref,
        "archive": ARCHIVE,
        "size": record.size,
        "seconds": round(record.seconds, 2),
        "built_at": record.built_at,
        "release": record.release,
        "recipe": record.spec,
    }
    (directory / RECORD).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n",
                                    encoding="utf-8")


def read_record(directory: Path) -> Record | None:
    """The record of the entry in ``directory``; ``None`` if it is absent or damaged.

    An entry counts only when its archive exists with the recorded size.
    """
    try:
        data = json.loads((directory / RECORD).read_text(encoding="utf-8"))
        archive = directory / str(data["archive"])
        record = Record(
            name=str(data["name"]), tag=str(data["tag"]), ref=str(data["ref"]),
            archive=archive, size=int(data["size"]), seconds=float(data["seconds"]),
            built_at=str(data["built_at"]), release=str(data["release"]),
            spec=dict(data["recipe"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        if archive.stat().st_size != record.size:
            return None
    except OSError:
        return None
    return record


def records(cache_dir: Path) -> list[Record]:
    """Every built image in ``cache_dir``, by name then build time."""
    root = images_dir(cache_dir)
    found: list[Record] = []
    if not root.is_dir():
        return found
    for name_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for entry in name_dir.iterdir():
            if entry.is_dir() and not entry.name.startswith("."):
                record = read_record(entry)
                if record is not None:
                    found.append(record)
    return sorted(found, key=lambda r: (r.name, r.built_at))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _mounted_under(path: Path) -> bool:
    """Whether anything is mounted below ``path`` (a chroot a killed build left behind)."""
    prefix = str(path.resolve()) + "/"
    try:
        lines = Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return False
    return any(len(f := line.split()) > 4 and f[4].startswith(prefix) for line in lines)


def remove_tree(path: Path) -> bool:
    """Remove ``path`` unless something is still mounted inside it; whether it was removed."""
    if not path.exists():
        return True
    if _mounted_under(path):
        return False
    shutil.rmtree(path, ignore_errors=True)
    return not path.exists()


def clean_stale(parent: Path) -> None:
    """Remove staging directories under ``parent`` whose build process is gone."""
    if not parent.is_dir():
        return
    for entry in parent.iterdir():
        if not entry.name.startswith(STAGING_PREFIX):
            continue
        pid_text = entry.name.removeprefix(STAGING_PREFIX).split("-", 1)[0]
        if pid_text.isdigit() and not _alive(int(pid_text)):
            remove_tree(entry)


@contextlib.contextmanager
def staging(cache_dir: Path, name: str) -> Iterator[Path]:
    """A fresh staging directory for image ``name``; removed on the way out unless committed."""
    parent = images_dir(cache_dir) / name
    parent.mkdir(parents=True, exist_ok=True)
    clean_stale(parent)
    path = parent / f"{STAGING_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    path.mkdir()
    try:
        yield path
    finally:
        remove_tree(path)


def commit(stage: Path, final: Path) -> bool:
    """Move a finished staging directory into place in one rename.

    Returns ``False`` when another build committed the same entry first (the staging
    directory is then left for the caller's cleanup).
    """
    try:
        stage.rename(final)
    except OSError:
        if read_record(final) is not None:
            return False
        # A damaged entry (archive missing or truncated by hand) is replaced.
        remove_tree(final)
        stage.rename(final)
    return True
