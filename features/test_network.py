"""Scenarios of ``network.feature``; the steps are in ``features/steps/``."""

from pytest_bdd import scenarios

scenarios("network.feature")
