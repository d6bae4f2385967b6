"""Scenarios of ``quorum.feature``; the steps are in ``features/steps/``."""

from pytest_bdd import scenarios

scenarios("quorum.feature")
