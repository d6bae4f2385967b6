"""The embedded Kubernetes cluster for real: up, workloads across nodes, DNS, Services, down.

Real processes as root: etcd, the API server, the controller manager and the scheduler, and a
containerd + kubelet + kube-proxy per node, each node in its own namespaces. The cluster is
called ``ktest`` on ranges of its own (172.31.91.0/24, pods 10.245.0.0/16, Services
10.97.0.0/16) with its state in a temporary directory; the Kubernetes binaries and images come
from the shared cache (``scripts/install-deps`` builds the binaries). The last test takes it
down and checks that nothing is left; the fixture takes it down in any case.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oaas_lab import config, images
from oaas_lab.adapters import iproute
from oaas_lab.adapters.kube import Kube
from oaas_lab.cluster import host
from oaas_lab.cluster.lifecycle import EmbeddedCluster
from oaas_lab.kernel.results import CheckResult, failed, passed
from oaas_lab.kernel.wait import wait_for

pytestmark = pytest.mark.lab

NAME = "ktest"
NAMESPACE = "probe"
CONTROLLERS = {"controller-1", "controller-2", "controller-3"}
SETTINGS = [*host.EXACT, *host.AT_LEAST]


@pytest.fixture(scope="module")
def before() -> dict[str, int]:
    """The host settings as they were before the cluster came up."""
    return {key: host.read_setting(key) for key in SETTINGS}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory,
            before: dict[str, int]) -> Iterator[EmbeddedCluster]:
    if os.geteuid() != 0:
        pytest.fail("the cluster tests need root (namespaces, cgroups, mounts)")
    cfg = config.load(None, {
        "name": NAME, "state_dir": str(tmp_path_factory.mktemp("kstate")),
        "cluster.subnet": "172.31.91.0/24", "cluster.pod_cidr": "10.245.0.0/16",
        "cluster.service_cidr": "10.97.0.0/16",
    })
    embedded = EmbeddedCluster(cfg, progress=print)
    try:
        embedded.up()
        yield embedded
    finally:
        embedded.down(purge=True)


@pytest.fixture(scope="module")
def kube(cluster: EmbeddedCluster) -> Kube:
    return cluster.kube()


def test_every_node_is_ready_with_its_roles(cluster: EmbeddedCluster, kube: Kube) -> None:
    results = cluster.status()
    assert all(r.ok for r in results), "\n".join(str(r) for r in results if not r.ok)
    labels = {n["metadata"]["name"]: n["metadata"]["labels"] for n in kube.list("v1", "Node")}
    assert set(labels) == {"k8s-cp", *CONTROLLERS, "compute-1", "compute-2"}
    for name in CONTROLLERS:
        assert labels[name]["node-role.oaas-lab.io/controller"] == "true"
    assert labels["compute-2"]["node-role.oaas-lab.io/network"] == "true"
    assert "node-role.kubernetes.io/control-plane" in labels["k8s-cp"]
    assert kube.server_version() == "v1.34.4"


def test_api_server_reports_every_readiness_check(kube: Kube) -> None:
    readyz = kube.raw_get("/readyz", [("verbose", "true")])
    assert "[+]etcd ok" in readyz
    assert readyz.strip().endswith("readyz check passed")


def test_a_second_up_changes_nothing(cluster: EmbeddedCluster) -> None:
    said: list[str] = []
    cluster.progress = said.append
    try:
        assert all(r.ok for r in cluster.up())
    finally:
        cluster.progress = print
    assert any("nothing to change" in line for line in said), said
    assert not any("(pid " in line for line in said), said


def _workload(image: str) -> list[dict[str, Any]]:
    labels = {"app": "memcached"}
    spread = {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": labels}, "topologyKey": "kubernetes.io/hostname"}]}
    meta = {"namespace": NAMESPACE}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "memcached", **meta},
         "spec": {"clusterIP": "None", "selector": labels, "ports": [{"port": 11211}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "memcached-vip", **meta},
         "spec": {"selector": labels, "ports": [{"port": 11211}]}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "memcached", **meta},
         "spec": {"serviceName": "memcached", "replicas": 3, "podManagementPolicy": "Parallel",
                  "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": {
                      "nodeSelector": {"node-role.oaas-lab.io/controller": "true"},
                      "affinity": {"podAntiAffinity": spread},
                      "containers": [{"name": "memcached", "image": image,
                                      "imagePullPolicy": "Never"}]}}}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client", **meta},
         "spec": {"nodeSelector": {"node-role.oaas-lab.io/compute": "true"},
                  "containers": [{"name": "client", "image": image, "imagePullPolicy": "Never",
                                  "command": ["sleep", "900"]}]}},
    ]


def _all_running(kube: Kube) -> CheckResult:
    pods = kube.list("v1", "Pod", NAMESPACE)
    running = [p for p in pods if p.get("status", {}).get("phase") == "Running"
               and all(c.get("ready") for c in p["status"].get("containerStatuses", []))]
    if len(pods) == 4 and len(running) == 4:
        return passed("pods", "4/4 running")
    return failed("pods", f"{len(running)}/{len(pods)} running")


def test_statefulset_spreads_resolves_and_serves_across_nodes(
        cluster: EmbeddedCluster, kube: Kube, tmp_path: Path) -> None:
    cfg = cluster.config
    built = images.build(["memcached"], release=cfg.release, cache_dir=Path(cfg.cache_dir))
    assert cluster.load_images(built)
    for obj in _workload(built[0].ref):
        kube.apply(obj)
    wait_for(lambda: _all_running(kube), timeout=180, interval=1)
    pods = {p["metadata"]["name"]: p for p in kube.list("v1", "Pod", NAMESPACE)}
    members = {name: pods[name] for name in ("memcached-0", "memcached-1", "memcached-2")}
    # Required anti-affinity over the three controller nodes: one member on each.
    assert {p["spec"]["nodeName"] for p in members.values()} == CONTROLLERS
    assert pods["client"]["spec"]["nodeName"] not in CONTROLLERS

    # The headless Service names each member through cluster DNS.
    fqdn = f"memcached-0.memcached.{NAMESPACE}.svc.cluster.local"
    lookup = kube.exec(NAMESPACE, "client", ["getent", "hosts", fqdn])
    assert lookup.returncode == 0, lookup.stderr
    assert lookup.stdout.split()[0] == members["memcached-0"]["status"]["podIP"]
    # A name outside the cluster is never sent anywhere: it does not resolve.
    outside = kube.exec(NAMESPACE, "client", ["getent", "hosts", "example.com"])
    assert outside.returncode != 0

    # The ClusterIP Service, from a compute node to members that all live on other nodes.
    vip = kube.get("v1", "Service", "memcached-vip", NAMESPACE)
    assert vip is not None
    address = vip["spec"]["clusterIP"]
    for target in (address, f"memcached-vip.{NAMESPACE}.svc.cluster.local"):
        reply = kube.exec(NAMESPACE, "client", [
            "sh", "-c", f"printf 'version\\r\\nquit\\r\\n' | nc -w 5 {target} 11211"])
        assert reply.stdout.startswith("VERSION "), (target, reply)


def test_down_leaves_nothing_and_restores_the_host(cluster: EmbeddedCluster,
                                                    before: dict[str, int]) -> None:
    daemons = cluster.state().daemons
    created = [Path(p) for p in cluster.state().created_paths]
    assert daemons
    report = cluster.down(purge=True)
    assert not [p for p in created if p.exists()]
    assert report.left == []
    assert not any(d.alive() for d in daemons)
    topo = cluster.topology
    assert not [ns for ns in iproute.netns_list() if ns.startswith(f"{NAME}-k-")]
    assert not [name for name in iproute.link_names() if name.startswith(f"{NAME}-k")]
    for node in topo.nodes:
        assert host.cgroup_pids(topo.cgroup(node)) == []
        assert not any((root / topo.cgroup(node)).exists() for root in host.hierarchies())
    routes = iproute.route_list()
    assert not [r for r in routes if r.startswith(("10.245.", "10.97."))]
    assert {key: host.read_setting(key) for key in SETTINGS} == before
