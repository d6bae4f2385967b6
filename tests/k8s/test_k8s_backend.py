"""The k8s lab backend (``K8sLab``) against the fake API server, through the real adapter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_apiserver import FakeApiServer

from oaas_lab.adapters.kube import Kube
from oaas_lab.backends import get_lab
from oaas_lab.backends.k8s import render
from oaas_lab.backends.k8s.lab import HOLDS, K8sLab
from oaas_lab.config import LabConfig
from oaas_lab.errors import QuorumError, UserError
from oaas_lab.kernel.lab import Lab, PodState

NS = "oaas"
READY = {"phase": "Running", "podIP": "10.244.1.7",
         "conditions": [{"type": "Ready", "status": "True"}],
         "containerStatuses": [{"name": "main", "ready": True, "restartCount": 0,
                                "state": {"running": {}}}]}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    with FakeApiServer() as srv:
        yield srv


@pytest.fixture
def lab(server: FakeApiServer, lab_config: LabConfig, tmp_path: Path) -> K8sLab:
    kube = Kube(str(server.kubeconfig(tmp_path / "kubeconfig")))
    clock = FakeClock()
    return K8sLab(lab_config, kube, clock=clock, sleep=clock.sleep, judge_components=False)


def _labels(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": component, "app.kubernetes.io/instance": "oaas",
            "app.kubernetes.io/managed-by": "oaas-lab", "oaas-lab.io/lab": "oaas"}


def _pods(server: FakeApiServer) -> None:
    for i, node in enumerate(("controller-1", "controller-2", "controller-3")):
        server.add_pod(NS, f"galera-{i}", _labels("galera"), dict(READY), node=node)
        server.add_pod(NS, f"etcd-{i}", _labels("etcd"), dict(READY), node=node)
    server.add_pod(NS, "stranger", {"app": "x"}, dict(READY), node="controller-1")


def test_registered_and_a_lab(lab_config: LabConfig) -> None:
    lab = get_lab(lab_config)
    assert isinstance(lab, K8sLab)
    assert isinstance(lab, Lab)


def test_up_twice_changes_nothing_the_second_time(server: FakeApiServer, lab: K8sLab) -> None:
    first = lab.up()
    assert len(first.changed) == len(render.render(lab.config).manifests)
    assert set(first.ready_seconds) == set(render.templates())
    server.requests.clear()
    second = lab.up()
    assert second.changed == ()
    assert server.writes() == []


def test_status_and_members(server: FakeApiServer, lab: K8sLab) -> None:
    lab.up()
    _pods(server)
    rows = {row.component: row for row in lab.status()}
    assert set(rows) == set(render.templates())
    assert rows["galera"].desired == 3
    assert rows["galera"].ready.ok
    members = lab.members("galera")
    assert [p.name for p in members] == ["galera-0", "galera-1", "galera-2"]
    assert [p.ordinal for p in members] == [0, 1, 2]
    assert members[1].node == "controller-2"
    assert members[0].state is PodState.RUNNING
    assert lab.address("galera-0") == "10.244.1.7"


def test_a_member_cut_off_from_its_quorum_still_runs(server: FakeApiServer, lab: K8sLab) -> None:
    # A Galera member without a Primary component fails its readiness probe, but it runs: the
    # majority-loss scenario writes to it to see it refuse.
    labels = _labels("galera")
    unready = {**READY, "conditions": [{"type": "Ready", "status": "False"}],
               "containerStatuses": [{"name": "main", "ready": False, "restartCount": 0,
                                      "state": {"running": {}}}]}
    server.add_pod(NS, "galera-2", labels, unready)
    server.add_pod(NS, "galera-1", labels, {"phase": "Pending", "initContainerStatuses": [{
        "name": "hold", "ready": False, "restartCount": 0, "state": {"running": {}}}]})
    states = {p.name: p.state for p in lab.members("galera")}
    assert states == {"galera-1": PodState.STARTING, "galera-2": PodState.RUNNING}


def test_kill_deletes_the_pod_without_grace(server: FakeApiServer, lab: K8sLab) -> None:
    _pods(server)
    lab.kill("galera-1")
    delete = server.writes()[-1]
    assert delete.method == "DELETE"
    assert delete.path == f"/api/v1/namespaces/{NS}/pods/galera-1"
    assert delete.body["gracePeriodSeconds"] == 0
    with pytest.raises(UserError, match="no pod 'galera-9'"):
        lab.kill("galera-9")


def test_kill_node_deletes_only_this_labs_pods_on_that_node(
    server: FakeApiServer, lab: K8sLab
) -> None:
    _pods(server)
    server.requests.clear()
    assert lab.kill_node("controller-1") == ["etcd-0", "galera-0"]
    deleted = [r.path.rsplit("/", 1)[1] for r in server.writes()]
    assert deleted == ["etcd-0", "galera-0"]
    assert all(r.body["gracePeriodSeconds"] == 0 for r in server.writes())
    listing = next(r for r in server.requests if r.method == "GET")
    assert listing.query["fieldSelector"] == "spec.nodeName=controller-1"


def test_stop_holds_a_member_until_start(server: FakeApiServer, lab: K8sLab) -> None:
    lab.up()
    _pods(server)
    lab.stop("galera-2")
    _, holds = server.find("ConfigMap", HOLDS)
    assert holds["data"] == {"galera-2": "stopped by oaas-lab"}
    assert holds["metadata"]["labels"]["oaas-lab.io/lab"] == "oaas"  # destroy removes it
    assert f"/api/v1/namespaces/{NS}/pods/galera-2" not in server.objects
    # every pod template mounts the holds and waits in its hold init container
    sts = server.find("StatefulSet", "galera")[1]
    inits = sts["spec"]["template"]["spec"]["initContainers"]
    assert inits[0]["name"] == "hold"
    server.add_pod(NS, "galera-2", _labels("galera"), {"phase": "Pending"})
    lab.start("galera-2")
    assert server.find("ConfigMap", HOLDS)[1].get("data") in ({}, None)
    assert f"/api/v1/namespaces/{NS}/pods/galera-2" not in server.objects
    with pytest.raises(UserError, match="galera-2 is not stopped"):
        lab.start("galera-2")


def test_scale_patches_replicas_after_the_quorum_rule(server: FakeApiServer, lab: K8sLab) -> None:
    lab.up()
    server.requests.clear()
    with pytest.raises(QuorumError, match="galera: 4 replicas is even"):
        lab.scale("galera", 4)
    assert server.writes() == []
    lab.scale("galera", 5)
    patch = server.writes()[-1]
    assert patch.content_type == "application/merge-patch+json"
    assert patch.body["spec"] == {"replicas": 5}
    assert server.find("StatefulSet", "galera")[1]["spec"]["replicas"] == 5
    # the next deploy restores the configured count
    server.requests.clear()
    assert lab.up().changed == ("StatefulSet/galera",)
    assert server.find("StatefulSet", "galera")[1]["spec"]["replicas"] == 3
    with pytest.raises(UserError, match="unknown component"):
        lab.scale("nope", 3)


def test_service_address_logs_and_log_path(server: FakeApiServer, lab: K8sLab) -> None:
    lab.up()
    _pods(server)
    path, svc = server.find("Service", "haproxy")
    svc["spec"]["clusterIP"] = "10.96.0.42"
    server.put(path, svc)
    assert lab.service_address("galera") == "10.96.0.42"
    # the fake assigns no cluster IP to the etcd Service: the first ready member answers
    assert lab.service_address("etcd") == "10.244.1.7"
    server.logs[(NS, "galera-0")] = "a\nb\nc\n"
    assert lab.logs("galera-0", lines=2) == "b\nc"
    log_req = server.requests[-1]
    assert log_req.query == {"tailLines": "2", "container": "galera"}
    assert lab.log_path("galera-0") == f"kubectl -n {NS} logs galera-0 -c galera"
    with pytest.raises(UserError, match="not a pod of this lab"):
        lab.log_path("stranger")


def test_down_removes_everything_of_the_lab(server: FakeApiServer, lab: K8sLab) -> None:
    lab.up()
    lab.down()
    assert server.objects == {}


def test_deployment_pods_rank_and_cannot_be_held(server: FakeApiServer, lab: K8sLab) -> None:
    lab.up()
    for name in ("haproxy-6d4cf56db6-x7k29", "haproxy-6d4cf56db6-abcde"):
        server.add_pod(NS, name, _labels("haproxy"), dict(READY))
    members = lab.members("haproxy")
    assert [(p.name, p.ordinal) for p in members] == [
        ("haproxy-6d4cf56db6-abcde", 0), ("haproxy-6d4cf56db6-x7k29", 1)]
    with pytest.raises(UserError, match="only StatefulSet members can be held down"):
        lab.stop("haproxy-6d4cf56db6-abcde")
    server.add_pod(NS, "nova-api-5c7b9-qq2m4", _labels("nova-api"), dict(READY))
    assert lab.log_path("nova-api-5c7b9-qq2m4") == (
        f"kubectl -n {NS} logs nova-api-5c7b9-qq2m4 -c nova-api")


def test_a_per_node_component_is_not_scaled(lab: K8sLab) -> None:
    lab.up()
    with pytest.raises(UserError, match="one pod per compute node"):
        lab.scale("nova-compute", 3)


def test_exec_runs_over_the_websocket_in_the_components_container(
    server: FakeApiServer, lab: K8sLab
) -> None:
    _pods(server)
    server.execs[(NS, "galera-0")] = (0, "Primary\n", "")
    done = lab.exec("galera-0", ["mariadb", "-e", "SHOW STATUS"])
    assert done.ok
    assert done.stdout == "Primary\n"
    call = next(r for r in server.requests if r.method == "EXEC")
    assert call.path == f"/api/v1/namespaces/{NS}/pods/galera-0/exec"
    assert call.query == {"command": "mariadb -e SHOW STATUS", "container": "galera"}
    server.execs[(NS, "galera-1")] = (3, "", "ERROR 1047: WSREP has not yet prepared node\n")
    failed = lab.exec("galera-1", ["mariadb", "-e", "INSERT ..."])
    assert failed.returncode == 3
    assert "ERROR 1047" in failed.stderr


def test_scaling_etcd_in_removes_the_members_first(server: FakeApiServer, lab: K8sLab) -> None:
    lab.up()
    _pods(server)
    lab.scale("etcd", 5)
    peers = "etcd-peers.oaas.svc.cluster.local"
    server.execs[(NS, "etcd-0")] = (0, "".join(
        f"{i:x}a1, started, etcd-{i}, http://etcd-{i}.{peers}:2380,"
        f" http://etcd-{i}.{peers}:2379, false\n" for i in range(5)), "")
    server.requests.clear()
    lab.scale("etcd", 3)
    commands = [r.query["command"] for r in server.requests if r.method == "EXEC"]
    assert commands == ["etcdctl member list", "etcdctl member remove 3a1",
                        "etcdctl member remove 4a1"]
    patch = next(r for r in server.requests if r.method == "PATCH")
    assert patch.body["spec"] == {"replicas": 3}
    # members are removed before the pods go
    log = [r.method for r in server.requests]
    assert log.index("PATCH") > max(i for i, m in enumerate(log) if m == "EXEC")


def test_scaling_rabbitmq_in_forgets_the_removed_nodes(server: FakeApiServer,
                                                       lab: K8sLab) -> None:
    lab.up()
    lab.scale("rabbitmq", 5)
    server.requests.clear()
    lab.scale("rabbitmq", 3)
    commands = [r.query["command"] for r in server.requests if r.method == "EXEC"]
    domain = "rabbitmq-peers.oaas.svc.cluster.local"
    assert commands == [f"rabbitmqctl forget_cluster_node rabbit@rabbitmq-{i}.{domain}"
                        for i in (3, 4)]
