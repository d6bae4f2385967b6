"""Scenarios of ``compute.feature``; the steps are in ``features/steps/``."""

from pytest_bdd import scenarios

scenarios("compute.feature")
