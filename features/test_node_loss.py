"""Scenarios of ``node_loss.feature``; the steps are in ``features/steps/``."""

from pytest_bdd import scenarios

scenarios("node_loss.feature")
