"""Scenarios of ``cold_restart.feature``; the steps are in ``features/steps/``."""

from pytest_bdd import scenarios

scenarios("cold_restart.feature")
