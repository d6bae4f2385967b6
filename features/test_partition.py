"""Scenarios of ``partition.feature``; the steps are in ``features/steps/``."""

from pytest_bdd import scenarios

scenarios("partition.feature")
