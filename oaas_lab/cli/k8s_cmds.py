"""``oaas-lab render | deploy | destroy | preflight``: the Kubernetes lab's commands.

``render`` needs no cluster. ``deploy`` and ``destroy`` talk to the cluster the kubeconfig
names (``--kubeconfig``, ``k8s.kubeconfig``, then ``.vagrant/kubeconfig`` written by
``vagrant up``, then the client's defaults). ``preflight`` checks the Vagrant lab's nodes.
"""

from __future__ import annotations

import click
from rich.table import Table

from oaas_lab.backends.k8s import deploy as deploy_mod
from oaas_lab.backends.k8s import policy, render
from oaas_lab.backends.k8s.lab import K8sLab
from oaas_lab.cli.context import CliContext, pass_ctx
from oaas_lab.config import LabConfig
from oaas_lab.errors import LabError, UserError
from oaas_lab.kernel import lock
from oaas_lab.kernel.results import CheckResult


def _config(ctx: CliContext, release: str | None) -> LabConfig:
    cfg = ctx.config
    if release is not None:
        cfg = cfg.model_copy(update={"release": release})
    return cfg


def _results_table(title: str, results: list[CheckResult]) -> Table:
    table = Table(title=title, show_lines=False)
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for r in results:
        mark = "[green]ok[/green]" if r.ok else "[red]FAILED[/red]"
        table.add_row(r.name, mark, r.detail + (f" -- {r.hint}" if r.hint and not r.ok else ""))
    return table


@click.command("render")
@click.option("--release", "release", default=None, help="OpenStack release to render.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the YAML to FILE instead of standard output.")
@pass_ctx
def render_cmd(ctx: CliContext, release: str | None, output: str | None) -> None:
    """Print the whole rendered stack as YAML; no cluster needed, secret values masked.

    The policy checks run first: a manifest that breaks one is refused (exit 2).
    """
    cfg = _config(ctx, release)
    rendered = render.render(cfg)
    policy.enforce(rendered.objects())
    text = rendered.to_yaml()
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
        ctx.err.print(f"wrote {len(rendered.manifests)} objects for release "
                      f"{rendered.release} to {output}")
    else:
        click.echo(text, nl=False)
    if rendered.skipped:
        ctx.err.print(f"no manifests yet for: {', '.join(rendered.skipped)}")


@click.command("deploy")
@click.option("--release", "release", default=None, help="OpenStack release to deploy.")
@click.option("--dry-run", is_flag=True,
              help="Print the ordered list of objects deploy would apply; change nothing.")
@click.option("--diff", "show_diff", is_flag=True,
              help="Show what would change against the live cluster; change nothing.")
@click.option("--force", is_flag=True, help="Apply every object, changed or not.")
@pass_ctx
def deploy_cmd(ctx: CliContext, release: str | None, dry_run: bool, show_diff: bool,
               force: bool) -> None:
    """Apply the stack to the cluster wave by wave and wait until each wave is ready.

    Idempotent: objects whose content did not change are not applied again.
    """
    cfg = _config(ctx, release)
    lab = K8sLab(cfg)
    if dry_run:
        _dry_run(ctx, lab)
        return
    if show_diff:
        diffs = lab.deployer().diff()
        if not diffs:
            ctx.console.print("no differences: the cluster matches the rendered stack")
        for step, text in diffs:
            ctx.console.print(f"[bold]{step.action}[/bold] {step.manifest.ref}")
            click.echo(text)
        return
    _deploy(ctx, lab, force)


def _dry_run(ctx: CliContext, lab: K8sLab) -> None:
    offline = render.render(lab.config)
    policy.enforce(offline.objects())
    try:
        # Ask the server first: an unreachable cluster needs no secrets generated.
        version = lab.api.server_version()
        steps = [(s.manifest, str(s.action)) for s in lab.deployer().plan()]
        where = f"against {lab.api.host} ({version})"
    except (LabError, UserError) as exc:
        steps = [(m, "apply") for m in offline.manifests]
        where = f"offline (cluster not reachable: {exc.one_line()})"
    # Plain lines, never wrapped: this list is meant to be read and diffed.
    click.echo(f"deploy --dry-run, release {offline.release}, namespace "
               f"{offline.namespace}, {where}:")
    for manifest, action in steps:
        click.echo(f"  wave {manifest.wave}  {action:<9}  {manifest.component:<15} "
                   f"{manifest.kind}/{manifest.name}")
    changes = sum(1 for _, a in steps if a != "unchanged")
    click.echo(f"{len(steps)} objects, {changes} to apply; nothing was changed")


def _deploy(ctx: CliContext, lab: K8sLab, force: bool) -> None:
    console = ctx.console
    with console.status("rendering and comparing with the cluster ...") as status:
        def progress(event: deploy_mod.Event) -> None:
            if event.what == "apply":
                console.print(f"  applied  {event.subject} ({event.message})")
            elif event.what == "wait":
                status.update(f"waiting for {event.subject} ({event.elapsed:.0f}s): "
                              f"{event.message[:120]}")
            elif event.what == "ready":
                console.print(f"  [green]ready[/green]    {event.subject} "
                              f"after {event.elapsed:.0f}s")

        with lock.changing(ctx.config.lab_dir, lab.name, "deploy"):
            report = lab.deployer(progress).deploy(force=force)
    if not report.applied:
        console.print(f"nothing to apply: all {len(report.unchanged)} objects are unchanged; "
                      f"every component is ready")
    else:
        console.print(f"applied {len(report.applied)} objects, {len(report.unchanged)} "
                      f"unchanged; ready in {report.total_seconds:.0f}s")


@click.command("destroy")
@click.option("--volumes", is_flag=True, help="Also delete the data volumes (PVCs).")
@click.option("--namespace", "delete_namespace", is_flag=True,
              help="Also delete the namespace, if oaas-lab created it.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
def destroy_cmd(ctx: CliContext, volumes: bool, delete_namespace: bool, yes: bool) -> None:
    """Delete the objects carrying this lab's labels (nothing else); volumes are kept unless
    --volumes."""
    cfg = ctx.config
    what = "objects" + (" and volumes" if volumes else "")
    if not yes:
        click.confirm(f"delete lab {cfg.name}'s {what} in namespace {cfg.k8s.namespace}?",
                      abort=True)
    lab = K8sLab(cfg)
    with lock.changing(cfg.lab_dir, lab.name, "destroy"):
        deleted = lab.deployer().destroy(volumes=volumes, namespace=delete_namespace)
    for ref in deleted:
        ctx.console.print(f"  deleted  {ref}")
    ctx.console.print(f"deleted {len(deleted)} objects" if deleted else
                      f"nothing to delete: no objects of lab {cfg.name} in {cfg.k8s.namespace}")


@click.command("preflight")
@click.option("--vagrant-dir", default=".", type=click.Path(file_okay=False, exists=True),
              help="Directory of the Vagrantfile.")
@pass_ctx
def preflight_cmd(ctx: CliContext, vagrant_dir: str) -> None:
    """Check the Vagrant lab's nodes: kernel modules, clock sync, role labels (exit 1 if not)."""
    from oaas_lab.backends.k8s import preflight

    results = preflight.run(vagrant_dir, ctx.config)
    ctx.console.print(_results_table("preflight", results))
    if not all(r.ok for r in results):
        failed = sum(1 for r in results if not r.ok)
        raise LabError(f"preflight: {failed} of {len(results)} checks failed",
                       hint="see the table above")


def register(cli: click.Group) -> None:
    """Add this module's commands to the CLI."""
    for command in (render_cmd, deploy_cmd, destroy_cmd, preflight_cmd):
        cli.add_command(command)
