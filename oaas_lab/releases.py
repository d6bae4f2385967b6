"""The release catalogue (data in ``data/releases.yaml``): what each OpenStack release runs."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from oaas_lab.errors import ConfigError

CONSTRAINTS = "data/openstack-constraints-{release}.txt"
"""The release's full set of exact PyPI pins, relative to the ``oaas_lab`` package."""


class Release(BaseModel):
    """One OpenStack release: its PyPI pins for the local lab and its images for Kubernetes.

    ``images`` maps what a manifest runs (a component, or a helper such as ``busybox``) to the
    name of the oaas-lab image recipe that provides it (``oaas_lab.images``); the full
    reference, with its content-hash tag, comes from ``oaas_lab.images.reference``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    codename: str
    local: dict[str, str] = Field(default_factory=dict, description="PyPI distribution -> version")
    images: dict[str, str] = Field(
        default_factory=dict, description="component -> oaas-lab image recipe name"
    )
    notes: list[str] = Field(default_factory=list)

    @property
    def constraints_file(self) -> str:
        """The release's PyPI constraints file, as a path in the repository (may not exist)."""
        return f"oaas_lab/{CONSTRAINTS.format(release=self.name)}"

    def constraints(self) -> str | None:
        """The text of the release's constraints file; ``None`` when the release has none.

        Without it the release's OpenStack services have no exact pins: neither the local lab
        nor the OpenStack images can install them.
        """
        item = resources.files("oaas_lab").joinpath(CONSTRAINTS.format(release=self.name))
        return item.read_text(encoding="utf-8") if item.is_file() else None


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
