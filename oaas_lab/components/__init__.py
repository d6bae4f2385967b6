"""The component registry: every module of this package that exports a ``SPEC`` is a component.

Adding a component is adding a module here (plus its local driver and its Kubernetes template);
no other module keeps a table keyed by component name. Callers ask this registry: ``spec(name)``
for one component, ``catalogue()`` for every entry in deploy order, and the check helpers for the
judges every backend and scenario shares.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Collection
from functools import cache
from typing import Any

from oaas_lab.components.spec import (
    Component,
    Role,
    Spec,
    Tier,
    check_replicas,
    critical_path,
    majority,
    waves,
)
from oaas_lab.errors import UserError
from oaas_lab.kernel.lab import Lab
from oaas_lab.kernel.results import CheckResult
from oaas_lab.secrets import SecretStore

__all__ = [
    "Component", "Role", "Spec", "Tier", "by_name", "catalogue", "check", "check_replicas",
    "critical_path", "majority", "membership", "quorum", "spec", "specs", "waves",
]


@cache
def specs() -> tuple[Spec[Any], ...]:
    """Every component's spec: the infrastructure tier first, each tier in deploy order."""
    found: list[Spec[Any]] = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        candidate = getattr(module, "SPEC", None)
        if isinstance(candidate, Spec):
            found.append(candidate)
    position = {c.name: i for i, c in enumerate(
        c for wave in waves(s.entry for s in found) for c in wave)}
    tiers = list(Tier)
    found.sort(key=lambda s: (tiers.index(s.entry.tier), position[s.name]))
    return tuple(found)


def spec(name: str) -> Spec[Any]:
    """One component's spec; ``UserError`` naming the known ones for an unknown name."""
    for candidate in specs():
        if candidate.name == name:
            return candidate
    raise UserError(f"unknown component {name!r}",
                    hint=f"use one of: {', '.join(s.name for s in specs())}")


def catalogue() -> tuple[Component, ...]:
    """Every component's entry, in the order of ``specs``."""
    return tuple(s.entry for s in specs())


def by_name() -> dict[str, Component]:
    """The catalogue as a name -> entry mapping."""
    return {s.name: s.entry for s in specs()}


def check(lab: Lab, store: SecretStore, component: str) -> CheckResult:
    """The component works on every member (readiness, as ``up`` and ``status`` decide it)."""
    return spec(component).check(lab, store)


def membership(lab: Lab, store: SecretStore, component: str) -> CheckResult:
    """Full membership: every member the lab placed is in and healthy (same as readiness)."""
    return spec(component).check(lab, store)


def quorum(lab: Lab, store: SecretStore, component: str,
           without: Collection[str] = ()) -> CheckResult:
    """A majority of the component's members work together (some may be down); members in
    ``without`` do not count."""
    return spec(component).check_quorum(lab, store, without)
