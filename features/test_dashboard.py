"""Scenarios of ``dashboard.feature``; the steps are in ``features/steps/``."""

from pytest_bdd import scenarios

scenarios("dashboard.feature")
