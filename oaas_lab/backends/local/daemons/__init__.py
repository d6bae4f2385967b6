"""One module per daemon (the OpenStack services share one): files, command line, lifecycle.

A component's spec names its driver as ``module:attribute`` of this package (``spec.local``);
``driver`` finds it. A driver class that serves several components takes the component's name.
"""

from __future__ import annotations

import importlib
import inspect
from functools import cache

from oaas_lab import components
from oaas_lab.backends.local.daemons.base import Driver
from oaas_lab.errors import UserError


@cache
def driver(component: str) -> Driver:
    """The local driver of ``component``; ``UserError`` if the local lab cannot run it."""
    module_name, _, attribute = components.spec(component).local.partition(":")
    if not module_name or not attribute:
        raise UserError(f"the local lab cannot run component {component!r}",
                        hint=f"oaas_lab/components/{component.replace('-', '_')}.py names no "
                             "local driver")
    factory = getattr(importlib.import_module(f"{__name__}.{module_name}"), attribute)
    made: Driver = factory(component) if inspect.signature(factory).parameters else factory()
    return made
