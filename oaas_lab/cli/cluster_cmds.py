"""The embedded Kubernetes cluster: ``cluster build``, ``cluster up``, ``status``, ``down``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import click
from rich.table import Table

from oaas_lab.cli.context import CliContext, pass_ctx
from oaas_lab.cluster import build
from oaas_lab.cluster.lifecycle import EmbeddedCluster, cluster_config
from oaas_lab.errors import LabError
from oaas_lab.kernel.results import CheckResult


def _progress(ctx: CliContext) -> Callable[[str], None]:
    started = time.monotonic()

    def show(message: str) -> None:
        ctx.console.print(f"[{time.monotonic() - started:6.1f}s] {message}",
                          markup=False, highlight=False)

    return show


def results_table(results: list[CheckResult], title: str) -> Table:
    """One row per check: what, ok or not, what was seen and what to read."""
    table = Table(title=title)
    table.add_column("check")
    table.add_column("ok")
    table.add_column("detail")
    for result in results:
        detail = result.detail if result.ok else f"{result.detail} -- {result.hint}".strip(" -")
        table.add_row(result.name, "[green]yes[/]" if result.ok else "[red]NO[/]", detail)
    return table


@click.group("cluster")
def cluster() -> None:
    """The embedded single-host Kubernetes cluster (built from its Go module)."""


@cluster.command("build")
@pass_ctx
def build_cmd(ctx: CliContext) -> None:
    """Build (or find in the cache) the pinned Kubernetes and CoreDNS binaries."""
    cache = Path(ctx.config.cache_dir)
    for built in (build.kubernetes(cache, _progress(ctx)), build.coredns(cache, _progress(ctx))):
        how = "cached" if built.cached else f"built in {built.seconds:.0f}s"
        ctx.console.print(f"{built.what}: {how} -> {built.bin_dir}", markup=False)


@cluster.command("up")
@click.option("--nodes", type=int, default=None, metavar="N",
              help="Nodes in all (default 6: k8s-cp, controller-1..3, compute-1..2).")
@pass_ctx
def up(ctx: CliContext, nodes: int | None) -> None:
    """Start the cluster: control plane on k8s-cp, containerd + kubelet + kube-proxy per node."""
    started = time.monotonic()
    embedded = EmbeddedCluster(cluster_config(ctx.config), _progress(ctx), nodes=nodes)
    name = embedded.config.name
    results = embedded.up()
    ctx.console.print(results_table(results, f"cluster {name}"))
    if not all(r.ok for r in results):
        raise LabError("the cluster is up but not everything is ready",
                       hint="see the table above; oaas-lab cluster status")
    ctx.console.print(f"cluster {name!r} is up in {time.monotonic() - started:.1f}s;"
                      f" kubeconfig: {embedded.kubeconfig}", markup=False)


@cluster.command("status")
@click.option("--verbose-readyz", is_flag=True, help="Also print the API server's /readyz.")
@pass_ctx
def status(ctx: CliContext, verbose_readyz: bool) -> None:
    """The control plane, every node (conditions, why not Ready) and cluster DNS."""
    embedded = EmbeddedCluster(cluster_config(ctx.config))
    results = embedded.status()
    ctx.console.print(results_table(results, f"cluster {embedded.config.name}"))
    if verbose_readyz:
        for result in results:
            if "readyz" in result.evidence:
                click.echo(str(result.evidence["readyz"]))
    if not all(r.ok for r in results):
        raise LabError("not everything in the cluster is ready", hint="see the table above")


@cluster.command("down")
@click.option("--purge", is_flag=True,
              help="Also remove the certificates, kubeconfigs and etcd's data.")
@pass_ctx
def down(ctx: CliContext, purge: bool) -> None:
    """Stop the cluster; no process, namespace, link, mount or cgroup of it stays behind."""
    embedded = EmbeddedCluster(cluster_config(ctx.config))
    report = embedded.down(purge=purge)
    restored = ", ".join(f"{k}={v}" for k, v in report.restored.items()) or "none changed"
    ctx.console.print(f"cluster {embedded.config.name!r} is down: {report.stopped} processes "
                      f"stopped; host settings restored: {restored}", markup=False)
    if report.left:
        raise LabError(f"left behind: {'; '.join(report.left)}",
                       hint="run oaas-lab cluster down again")


def register(cli: click.Group) -> None:
    """Add this module's commands to the CLI."""
    cli.add_command(cluster)
