"""Scenarios of ``api_failover.feature``; the steps are in ``features/steps/``."""

from pytest_bdd import scenarios

scenarios("api_failover.feature")
