"""``oaas-lab``: entry point, global options, and the one place errors become exit codes."""

from __future__ import annotations

import logging
import sys

import click

from oaas_lab import __version__
from oaas_lab.cli import (
    cluster_cmds,
    config_cmds,
    images_cmds,
    k8s_cmds,
    local_cmds,
    qualify_cmds,
    soak_cmds,
)
from oaas_lab.cli.context import CliContext
from oaas_lab.errors import OaasLabError

COMMAND_MODULES = [config_cmds, local_cmds, qualify_cmds, soak_cmds, k8s_cmds, cluster_cmds,
                   images_cmds]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="FILE", envvar="OAAS_LAB_CONFIG",
              help="Lab file (YAML). Default: none, the built-in defaults.")
@click.option("--lab", type=click.Choice(["local", "k8s"]), default=None,
              help="Lab backend (overrides the lab file).")
@click.option("--name", default=None, help="Lab name (overrides the lab file).")
@click.option("--release", default=None, help="OpenStack release (overrides the lab file).")
@click.option("--kubeconfig", default=None, metavar="PATH", help="kubeconfig for the k8s lab.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(__version__, prog_name="oaas-lab")
@click.pass_context
def cli(  # noqa: PLR0917 -- click passes every global option positionally
    ctx: click.Context,
    config_path: str | None,
    lab: str | None,
    name: str | None,
    release: str | None,
    kubeconfig: str | None,
    verbose: int,
) -> None:
    """Deploy, break and measure an OpenStack control plane on a lab."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    ctx.obj = CliContext(
        config_path=config_path,
        overrides={"lab": lab, "name": name, "release": release, "k8s.kubeconfig": kubeconfig},
    )


for _module in COMMAND_MODULES:
    _module.register(cli)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; a user error prints one line and exits 2, a lab failure exits 1."""
    try:
        cli.main(args=argv, prog_name="oaas-lab", standalone_mode=False)
    except OaasLabError as exc:
        click.echo(f"oaas-lab: error: {exc.one_line()}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("oaas-lab: aborted", err=True)
        return 130
    except click.UsageError as exc:
        # One line, like every other user error; the usage text is one --help away.
        where = exc.ctx.command_path if exc.ctx is not None else "oaas-lab"
        message = " ".join(exc.format_message().split())
        click.echo(f"oaas-lab: error: {message} -- see: {where} --help", err=True)
        return 2
    except click.ClickException as exc:
        click.echo(f"oaas-lab: error: {' '.join(exc.format_message().split())}", err=True)
        return 2 if exc.exit_code == 1 else exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
