"""``oaas-lab images build | list | load | push``: the container images oaas-lab builds itself.

Images are cached under ``<cache_dir>/images/`` (``cache_dir`` of the lab file, default
``/var/cache/oaas-lab``), keyed by their content-hash tag; see ``oaas_lab.images``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import click
from rich.table import Table

from oaas_lab import images, releases
from oaas_lab.cli.context import CliContext, pass_ctx
from oaas_lab.cluster import build as cluster_build
from oaas_lab.cluster.lifecycle import EmbeddedCluster, cluster_config
from oaas_lab.errors import OaasLabError, UserError


def _size(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def _inputs(pairs: tuple[str, ...]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise UserError(f"--input {pair!r} is not NAME=PATH",
                            hint="e.g. --input coredns=/path/to/coredns")
        out[name] = Path(path)
    return out


def _built_table(built: list[images.Built], title: str) -> Table:
    table = Table(title=title)
    table.add_column("image")
    # a reference is ~50 characters: wrap it rather than cut it on a narrow terminal
    table.add_column("reference", overflow="fold")
    table.add_column("size", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("cached")
    for b in built:
        table.add_row(b.name, b.ref, _size(b.size), f"{b.seconds:.1f}",
                      "yes" if b.cached else "no")
    return table


@click.group("images")
def images_group() -> None:
    """Build, list and push oaas-lab's own container images."""


@images_group.command("build")
@click.argument("names", nargs=-1)
@click.option("--release", default=None, help="OpenStack release (default: the lab's).")
@click.option("--input", "input_pairs", multiple=True, metavar="NAME=PATH",
              help="A file a recipe takes at build time, e.g. coredns=/path/to/coredns.")
@pass_ctx
def build(ctx: CliContext, names: tuple[str, ...], release: str | None,
          input_pairs: tuple[str, ...]) -> None:
    """Build NAMES (default: every image whose inputs are given); built ones are kept."""
    cfg = ctx.config
    rel = release or cfg.release
    inputs = _inputs(input_pairs)
    lock = threading.Lock()

    def progress(name: str, message: str, elapsed: float) -> None:
        # Called from the builder's log watcher thread too.
        with lock:
            ctx.console.print(f"[{elapsed:6.1f}s] {name}: {message}", markup=False,
                              highlight=False, soft_wrap=True)

    built = images.build(list(names), rel, Path(cfg.cache_dir), progress=progress,
                         inputs=_coredns_input(ctx, inputs))
    ctx.console.print(_built_table(built, f"images for release {rel} in {cfg.cache_dir}"))


def _current_tag(name: str, release: str) -> str | None:
    try:
        return images.tag(images.recipe(name), release)
    except OaasLabError:
        return None  # a recipe that takes inputs, or one no longer known


@images_group.command("list")
@pass_ctx
def list_cmd(ctx: CliContext) -> None:
    """List the images in the cache; `current` marks those the lab's release uses now."""
    cfg = ctx.config
    releases.get(cfg.release)
    found = images.records(Path(cfg.cache_dir))
    table = Table(title=f"images in {Path(cfg.cache_dir) / 'images'} "
                        f"(localhost/oaas-lab/IMAGE:TAG)")
    for column in ("image", "tag", "size", "built in", "built at (UTC)", "current"):
        table.add_column(column, justify="right" if column in ("size", "built in") else "left",
                         overflow="fold")
    for rec in found:
        current = _current_tag(rec.name, cfg.release)
        mark = "?" if current is None else ("yes" if current == rec.tag else "no")
        table.add_row(rec.name, rec.tag, _size(rec.size), f"{rec.seconds:.1f}s",
                      rec.built_at[:16].replace("T", " "), mark)
    ctx.console.print(table)
    if not found:
        ctx.console.print("no images built yet: oaas-lab images build", markup=False)


def _cached_images(ctx: CliContext, names: tuple[str, ...], release: str | None,
                   inputs: dict[str, Path]) -> list[images.Built]:
    """The built images NAMES (default: every one built for the release) from the cache."""
    cfg = ctx.config
    rel = release or cfg.release
    wanted = list(names) or images.default_names(inputs)
    by_ref = {r.ref: r for r in images.records(Path(cfg.cache_dir))}
    chosen: list[images.Built] = []
    missing: list[str] = []
    for name in wanted:
        if not names and images.recipe(name).needs_release and releases.get(rel).constraints() \
                is None:
            continue  # not buildable for this release: nothing to hand over
        ref = images.reference(name, rel, inputs=inputs)
        rec = by_ref.get(ref)
        if rec is None:
            missing.append(name)
            continue
        chosen.append(images.Built(rec.name, rec.ref, rec.archive, rec.size, 0.0, cached=True))
    if missing:
        raise UserError(f"not built for release {rel}: {', '.join(missing)}",
                        hint=f"run: oaas-lab images build --release {rel} {' '.join(missing)}")
    return chosen


@images_group.command("push")
@click.argument("names", nargs=-1)
@click.option("--registry", required=True, metavar="URL",
              help="Registry host[:port] or URL; TLS is verified except on loopback.")
@click.option("--release", default=None, help="OpenStack release (default: the lab's).")
@click.option("--input", "input_pairs", multiple=True, metavar="NAME=PATH",
              help="A file a recipe takes at build time (to find its tag).")
@pass_ctx
def push(ctx: CliContext, names: tuple[str, ...], registry: str, release: str | None,
         input_pairs: tuple[str, ...]) -> None:
    """Push built images NAMES (default: every one built for the release) to a registry."""
    inputs = _coredns_input(ctx, _inputs(input_pairs))
    for item in _cached_images(ctx, names, release, inputs):
        (dest,) = images.push(item, registry)
        ctx.console.print(f"pushed {item.ref} -> {dest}", markup=False, highlight=False)


@images_group.command("load")
@click.argument("names", nargs=-1)
@click.option("--release", default=None, help="OpenStack release (default: the lab's).")
@pass_ctx
def load(ctx: CliContext, names: tuple[str, ...], release: str | None) -> None:
    """Import built images NAMES (default: every one built for the release) into every node
    of the embedded cluster (``oaas-lab cluster up`` first)."""
    inputs = _coredns_input(ctx, {})
    chosen = _cached_images(ctx, names, release, inputs)
    done = EmbeddedCluster(cluster_config(ctx.config)).load_images(chosen)
    ctx.console.print(f"{len(chosen)} images on {len(done)} nodes: {', '.join(done)}",
                      markup=False, highlight=False)


def _coredns_input(ctx: CliContext, inputs: dict[str, Path]) -> dict[str, Path]:
    """The CoreDNS binary the cluster build keeps, unless ``--input coredns=...`` names one."""
    if "coredns" in inputs:
        return inputs

    def say(message: str) -> None:
        ctx.console.print(message, markup=False, highlight=False)

    built = cluster_build.coredns(Path(ctx.config.cache_dir), say)
    return {**inputs, "coredns": built.path("coredns")}


def register(cli: click.Group) -> None:
    """Add this module's commands to the CLI."""
    cli.add_command(images_group)
