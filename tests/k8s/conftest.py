"""Fixtures of the Kubernetes tests: a configuration with its state in a temporary dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from oaas_lab import config as config_mod
from oaas_lab.config import LabConfig


@pytest.fixture
def lab_config(tmp_path: Path) -> LabConfig:
    """The default k8s lab, its secrets kept under ``tmp_path``."""
    return config_mod.load(
        overrides={"lab": "k8s", "state_dir": str(tmp_path / "state")}, environ={}
    )
