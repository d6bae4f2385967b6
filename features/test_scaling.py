"""Scenarios of ``scaling.feature``; the steps are in ``features/steps/``."""

from pytest_bdd import scenarios

scenarios("scaling.feature")
