"""Cold and warm builds of oaas-lab's container images, per image: seconds and sizes.

Every image is built into a fresh cache directory (cold: nothing built, pip's cache empty;
the OpenStack images are built in the order given, so a later one finds the wheels an earlier
one built), then built again from the same cache (warm: a cache hit). Prints one row per image:
cold seconds, warm seconds and the docker-archive's size (what ``ctr images import`` reads;
its layers are uncompressed). The cache is removed afterwards unless ``--keep``.

    sudo nice -n 10 .venv/bin/python benchmarks/bench_images.py [--release 2026.2]
        [--coredns PATH] [--keep] [--cache-dir DIR] [NAME ...]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from oaas_lab import images
from oaas_lab.errors import OaasLabError


def main() -> int:
    """Build, rebuild, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="images (default: every buildable one)")
    parser.add_argument("--release", default="2026.2")
    parser.add_argument("--coredns", type=Path, default=None,
                        help="a CoreDNS binary, to build the coredns image too")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="where to build (default: a fresh directory under /var/tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the cache afterwards")
    args = parser.parse_args()
    inputs = {"coredns": args.coredns} if args.coredns else {}
    names = args.names or images.default_names(inputs)
    cache_dir = args.cache_dir or Path(tempfile.mkdtemp(prefix="oaas-bench-images-",
                                                        dir="/var/tmp"))
    rows: list[tuple[str, float, float, int, bool]] = []
    failed: list[str] = []
    start = time.monotonic()

    def progress(name: str, message: str, elapsed: float) -> None:
        print(f"[{time.monotonic() - start:7.1f}s] [{elapsed:6.1f}s] {name}: {message}",
              flush=True)

    try:
        for name in names:
            try:
                (cold,) = images.build([name], args.release, cache_dir, progress=progress,
                                       inputs=inputs)
            except OaasLabError as exc:
                print(f"{name}: FAILED: {exc.one_line()}", flush=True)
                failed.append(name)
                continue
            (warm,) = images.build([name], args.release, cache_dir, inputs=inputs)
            rows.append((name, cold.seconds, warm.seconds, cold.size, cold.cached))
        total = time.monotonic() - start
        print()
        print(f"release {args.release}, cache {cache_dir}, total {total:.1f}s")
        print(f"{'image':<14}{'cold s':>9}{'warm s':>9}{'archive MB':>12}  note")
        for name, cold_s, warm_s, size, was_cached in rows:
            note = "was cached already" if was_cached else ""
            print(f"{name:<14}{cold_s:9.1f}{warm_s:9.3f}{size / 1e6:12.1f}  {note}")
        if failed:
            print(f"failed: {', '.join(failed)}")
    finally:
        if not args.keep and args.cache_dir is None:
            shutil.rmtree(cache_dir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
