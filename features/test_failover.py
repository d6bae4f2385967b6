"""Scenarios of ``failover.feature``; the steps are in ``features/steps/``."""

from pytest_bdd import scenarios

scenarios("failover.feature")
