"""Scenarios of ``front.feature``; the steps are in ``features/steps/``."""

from pytest_bdd import scenarios

scenarios("front.feature")
