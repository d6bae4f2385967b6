"""What every command gets: the effective configuration, loaded once, and the console."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import click
from rich.console import Console

from oaas_lab import config as config_mod
from oaas_lab.config import LabConfig


@dataclass
class CliContext:
    """Global options of ``oaas-lab``; the configuration is built on first use."""

    config_path: str | None
    overrides: dict[str, Any]
    console: Console = field(default_factory=lambda: Console(highlight=False))
    err: Console = field(default_factory=lambda: Console(stderr=True, highlight=False))
    _config: LabConfig | None = None

    @property
    def config(self) -> LabConfig:
        if self._config is None:
            self._config = config_mod.load(self.config_path, self.overrides)
        return self._config


pass_ctx = click.make_pass_decorator(CliContext)
