"""The acceptance suite's plumbing: options, the lab fixture, markers, reports, evidence.

Steps live in ``features/steps/`` and are loaded as plugins below; they get the lab, the
secret store, the faults and the measurements of a scenario as fixtures. Options:

    --lab local|k8s     which lab backend (default: the lab file / OAAS_LAB_LAB / local)
    --lab-name NAME     which lab (default: the lab file / OAAS_LAB_NAME / oaas)
    --lab-config FILE   the lab file (default: OAAS_LAB_CONFIG, else built-in defaults)
    --release R         the OpenStack release to qualify
    --keep-lab          leave the lab up after the run (default: tear it down)
    --reports-dir DIR   where junit.xml, cucumber.json and index.html go (default: reports/)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oaas_lab import components
from oaas_lab import config as config_mod
from oaas_lab.backends import get_lab
from oaas_lab.config import LabConfig
from oaas_lab.kernel.lab import Lab
from oaas_lab.probes import Faults, Measurements
from oaas_lab.probes.cloud import Cloud
from oaas_lab.reports import evidence
from oaas_lab.reports.plugin import EVIDENCE_PREFIX, ReportsPlugin
from oaas_lab.secrets import SecretStore

pytest_plugins = [
    "features.steps.lab_steps",
    "features.steps.fault_steps",
    "features.steps.measure_steps",
    "features.steps.cloud_steps",
]

MARKERS = {
    "quorum": "membership and quorum of etcd, Galera and RabbitMQ",
    "failover": "members are lost while a client writes; service and data must survive",
    "scaling": "quorum components scaled out and in; even counts refused",
    "cold-restart": "every member of a component killed at once",
    "node-loss": "every pod of one controller node killed",
    "slow": "takes more than a minute",
    "identity": "keystone tokens for the admin and a member user; a keystone pod lost",
    "vm": "servers boot on libvirt/QEMU from the lab's guest image and are deleted",
    "network": "a server's port bound by neutron; the guest answers on the lab network",
    "console": "serial console log and the noVNC websocket's RFB handshake",
    "dashboard": "horizon in headless Chromium: login and the instances page",
    "api": "OpenStack API pods killed under load",
    "partition": "a member cut off by the network or paused, then healed",
    "front": "the HAProxy member clients reach is lost",
}
QUORUM_COMPONENTS = ("galera", "etcd", "rabbitmq")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("oaas-lab", "oaas-lab acceptance suite")
    group.addoption("--lab", dest="oaas_lab", default=None, choices=("local", "k8s"),
                    help="lab backend to run the scenarios against")
    group.addoption("--lab-name", dest="oaas_lab_name", default=None, metavar="NAME",
                    help="lab name (default: the lab file's / OAAS_LAB_NAME / oaas)")
    group.addoption("--lab-config", dest="oaas_lab_config", default=None, metavar="FILE",
                    help="lab file (default: OAAS_LAB_CONFIG, else the built-in defaults)")
    group.addoption("--release", dest="oaas_release", default=None,
                    help="OpenStack release to qualify (default: the lab file's)")
    group.addoption("--keep-lab", dest="oaas_keep_lab", action="store_true",
                    help="leave the lab up after the run")
    group.addoption("--reports-dir", dest="oaas_reports_dir", default="reports", metavar="DIR",
                    help="directory for junit.xml, cucumber.json and index.html")


def lab_config(config: pytest.Config) -> LabConfig:
    """The lab configuration: options, then OAAS_LAB_* environment, then the lab file."""
    cached: LabConfig | None = config.stash.get(_CONFIG_KEY, None)
    if cached is None:
        cached = config_mod.load(
            config.getoption("oaas_lab_config"),
            {"lab": config.getoption("oaas_lab"), "name": config.getoption("oaas_lab_name"),
             "release": config.getoption("oaas_release")},
        )
        config.stash[_CONFIG_KEY] = cached
    return cached


_CONFIG_KEY = pytest.StashKey[LabConfig]()


def features_prefix(config: pytest.Config) -> str:
    """The node-id prefix of the scenarios (``features/`` relative to the rootdir)."""
    here = Path(__file__).resolve().parent
    try:
        return here.relative_to(config.rootpath.resolve()).as_posix() + "/"
    except ValueError:
        return ""


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    if config.option.collectonly or getattr(config, "workerinput", None) is not None:
        return
    directory = Path(config.getoption("oaas_reports_dir"))
    ReportsPlugin.point_builtin_reports(config, directory)
    cfg = lab_config(config)
    store = SecretStore(cfg.lab_dir)
    plugin = ReportsPlugin(
        directory, lab=f"{cfg.lab} ({cfg.name})", release=cfg.release,
        secrets=lambda: store.values() if store.path.exists() else [],
        only_under=features_prefix(config),
    )
    config.pluginmanager.register(plugin, "oaas-lab-reports")


OPENSTACK_TAGS = {"identity", "vm", "network", "console", "dashboard", "api"}

K8S_OPEN_DEFECTS = {
    "test_losing_a_majority_of_component_refuses_writes_loses_nothing_and_heals[rabbitmq-": (
        "open defect on the k8s lab: after a majority loss a RabbitMQ 3.10.8 node may never "
        "finish booting or stay paused once the lost nodes are back (Erlang's global fakes a "
        "nodedown/nodeup; the broker answers ping but is not running); it passed in 2 of 3 "
        "runs, see README.md, The Kubernetes path"),
}
"""Scenarios that run but do not yet pass reliably on the k8s lab, each with its defect: skipped
there with that reason, never silently, and run everywhere else."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Among the scenarios, the OpenStack ones first: the infrastructure scenarios then break
    what they stand on. Tests outside ``features/`` keep their place (before the lab is up).
    A scenario this lab cannot run is skipped with the reason (``skip_reason``)."""
    prefix = features_prefix(config)

    def order(item: pytest.Item) -> tuple[int, int]:
        if not item.nodeid.startswith(prefix):
            return (0, 0)
        return (1, 0 if is_openstack(item) else 1)

    items.sort(key=order)
    if config.option.collectonly:
        return
    cfg = lab_config(config)
    for item in items:
        reason = skip_reason(item, cfg) if item.nodeid.startswith(prefix) else None
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


def is_openstack(item: pytest.Item) -> bool:
    return bool(OPENSTACK_TAGS & {m.name for m in item.iter_markers()})


def skip_reason(item: pytest.Item, cfg: LabConfig) -> str | None:
    """Why this lab cannot run the scenario, or None when it can: a k8s lab without the
    OpenStack tier, a fault only the embedded cluster can inject, or an open defect of the k8s
    lab."""
    if cfg.lab != "k8s":
        return None
    if is_openstack(item) and not cfg.k8s.openstack:
        return (f"lab {cfg.name!r} deploys the infrastructure tier only (k8s.openstack: false): "
                "no keystone, glance, placement, nova, neutron or horizon to test")
    if item.get_closest_marker("front"):
        return ("the k8s lab's HAProxy members are a Deployment behind a Service: holding one "
                "of its pods down, which this scenario needs, is done for StatefulSet members "
                "only")
    if item.get_closest_marker("partition") and cfg.k8s.cluster is None:
        return ("pausing or cutting off a pod needs its node's containerd, which only the "
                "embedded cluster (k8s.cluster) gives oaas-lab")
    return next((defect for name, defect in K8S_OPEN_DEFECTS.items()
                 if item.name.startswith(name)), None)


@pytest.fixture(scope="session")
def lab_settings(pytestconfig: pytest.Config) -> LabConfig:
    """The effective lab configuration of this run."""
    return lab_config(pytestconfig)


@pytest.fixture(scope="session")
def lab(lab_settings: LabConfig, pytestconfig: pytest.Config) -> Iterator[Lab]:
    """The lab, brought up once per run (idempotent); torn down unless --keep-lab."""
    the_lab = get_lab(lab_settings)
    try:
        the_lab.up()
        yield the_lab
    finally:
        if not pytestconfig.getoption("oaas_keep_lab"):
            the_lab.down()


@pytest.fixture(scope="session")
def secrets(lab: Lab, lab_settings: LabConfig) -> SecretStore:
    """The lab's secret store (credentials for the probes; values to scrub from reports)."""
    return SecretStore(lab_settings.lab_dir)


@pytest.fixture
def faults(lab: Lab) -> Iterator[Faults]:
    """Faults of one scenario; stopped members are started and scaling undone at its end."""
    injected = Faults(lab)
    yield injected
    injected.restore()


@pytest.fixture
def measurements(
    lab: Lab, secrets: SecretStore, request: pytest.FixtureRequest
) -> Iterator[Measurements]:
    """Probes and figures of one scenario; the figures go to the reports."""
    measured = Measurements(lab, secrets)
    try:
        yield measured
    finally:
        measured.close()
        report_figures(request, measured.figures)


@pytest.fixture
def cloud(lab: Lab, secrets: SecretStore, request: pytest.FixtureRequest) -> Iterator[Cloud]:
    """The cloud as one scenario uses it; the servers it created are deleted at its end."""
    used = Cloud(lab, secrets)
    try:
        yield used
    finally:
        used.close()
        report_figures(request, used.figures)


def report_figures(request: pytest.FixtureRequest, figures: dict[str, object]) -> None:
    """Hand a scenario's measured figures to the reports (as pytest user properties)."""
    for name, value in figures.items():
        request.node.user_properties.append((name, value))


def pytest_bdd_step_error(request: pytest.FixtureRequest, scenario: Any, step: Any) -> None:
    """Take evidence the moment a step fails: status and log tails of the components it names."""
    try:
        lab_obj = request.getfixturevalue("lab")
        store = request.getfixturevalue("secrets")
    except Exception:  # no lab to look at (it failed to come up): the failure says why
        return
    text = f"{scenario.name} {step.name}"
    named = [c.name for c in components.catalogue() if re.search(rf"\b{c.name}\b", text)]
    for title, body in evidence.collect(lab_obj, store, named or QUORUM_COMPONENTS).items():
        request.node.user_properties.append((f"{EVIDENCE_PREFIX}{title}", body))
