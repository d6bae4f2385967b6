"""The release catalogue (data in ``data/releases.yaml``): what each OpenStack release runs."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from oaas_lab.errors import ConfigError


class Release(BaseModel):
    """One OpenStack release: its PyPI pins for the local lab and its images for Kubernetes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    codename: str
    local: dict[str, str] = Field(default_factory=dict, description="PyPI distribution -> version")
    images: dict[str, str] = Field(default_factory=dict, description="component -> image:tag")
    notes: list[str] = Field(default_factory=list)


@cache
def catalogue() -> dict[str, Release]:
    """Every release in the catalogue, by name."""
    text = resources.files("oaas_lab").joinpath("data/releases.yaml").read_text(encoding="utf-8")
    raw: dict[str, Any] = yaml.safe_load(text)["releases"]
    return {name: Release(name=name, **entry) for name, entry in raw.items()}


def get(name: str) -> Release:
    """The release called ``name``; a ``ConfigError`` naming the known ones otherwise."""
    releases = catalogue()
    if name not in releases:
        raise ConfigError(
            "release", "release", f"unknown release {name!r}",
            f"use one of: {', '.join(sorted(releases))}",
        )
    return releases[name]
