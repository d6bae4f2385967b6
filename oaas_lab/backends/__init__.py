"""Lab backends, by name. Imported lazily so the local lab never loads the Kubernetes client."""

from __future__ import annotations

import importlib

from oaas_lab.config import LabConfig
from oaas_lab.errors import UserError
from oaas_lab.kernel.lab import Lab

BACKENDS = {
    "local": "oaas_lab.backends.local.lab:LocalLab",
    "k8s": "oaas_lab.backends.k8s.lab:K8sLab",
}


def get_lab(config: LabConfig) -> Lab:
    """The lab backend named by ``config.lab``, built from the configuration."""
    try:
        target = BACKENDS[config.lab]
    except KeyError:
        raise UserError(
            f"unknown lab backend {config.lab!r}", hint=f"use one of: {', '.join(BACKENDS)}"
        ) from None
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    lab: Lab = cls(config)
    return lab
