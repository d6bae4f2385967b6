"""``oaas-lab config show``: the effective configuration, secrets masked."""

from __future__ import annotations

import click
import yaml

from oaas_lab import config as config_mod
from oaas_lab import releases
from oaas_lab.cli.context import CliContext, pass_ctx
from oaas_lab.secrets import FILE_NAME, MASK, SecretStore


@click.group("config")
def config_group() -> None:
    """Inspect the lab configuration."""


@config_group.command("show")
@pass_ctx
def show(ctx: CliContext) -> None:
    """Print the effective configuration (flags, environment, lab file, defaults)."""
    cfg = ctx.config
    releases.get(cfg.release)
    data = config_mod.as_dict(cfg)
    store = SecretStore(cfg.lab_dir)
    names = sorted(store.names()) if store.path.exists() else []
    data["secrets"] = {
        "file": str(cfg.lab_dir / FILE_NAME),
        "values": dict.fromkeys(names, MASK),
    }
    click.echo(yaml.safe_dump(data, sort_keys=False).rstrip())


def register(cli: click.Group) -> None:
    """Add this module's commands to the CLI."""
    cli.add_command(config_group)
