"""Scenarios of ``identity.feature``; the steps are in ``features/steps/``."""

from pytest_bdd import scenarios

scenarios("identity.feature")
