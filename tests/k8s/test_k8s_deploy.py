"""The deployer and the Kube adapter at the HTTP seam: the real client against a fake API
server on loopback. Apply order, idempotency, waits that name the failing pod, destroy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_apiserver import FakeApiServer

from oaas_lab import components
from oaas_lab import config as config_mod
from oaas_lab.adapters.kube import Kube, KubeError
from oaas_lab.backends.k8s import render
from oaas_lab.backends.k8s.deploy import Action, Deployer, Event
from oaas_lab.config import LabConfig
from oaas_lab.errors import ConfigError, LabError, NotReadyError, UserError
from oaas_lab.secrets import SecretStore

NS = "oaas"


class FakeClock:
    """Time that passes only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    with FakeApiServer() as srv:
        yield srv


@pytest.fixture
def kube(server: FakeApiServer, tmp_path: Path) -> Kube:
    return Kube(str(server.kubeconfig(tmp_path / "kubeconfig")))


def _rendered(cfg: LabConfig) -> render.Rendered:
    return render.render(cfg, secret_value=render.from_store(SecretStore(cfg.lab_dir)))


def _deployer(kube: Kube, cfg: LabConfig, clock: FakeClock | None = None,
              events: list[Event] | None = None) -> Deployer:
    clock = clock or FakeClock()
    timeouts = {c.name: cfg.ready_timeout(c.name) for c in components.catalogue()}
    return Deployer(kube, _rendered(cfg), lab=cfg.name, timeouts=timeouts,
                    progress=None if events is None else events.append,
                    clock=clock, sleep=clock.sleep)


def _applied_paths(server: FakeApiServer) -> list[str]:
    return [r.path for r in server.writes() if r.method == "PATCH"]


def test_apply_order_is_the_rendered_order_wave_by_wave(
    server: FakeApiServer, kube: Kube, lab_config: LabConfig
) -> None:
    report = _deployer(kube, lab_config).deploy()
    rendered = _rendered(lab_config)
    assert list(report.applied) == [m.ref for m in rendered.manifests]
    paths = _applied_paths(server)
    assert paths[0] == f"/api/v1/namespaces/{NS}"
    assert [p.rsplit("/", 1)[1] for p in paths] == [m.name for m in rendered.manifests]
    # every apply is a server-side apply by our field manager
    patches = [r for r in server.writes() if r.method == "PATCH"]
    assert {r.content_type for r in patches} == {"application/apply-patch+yaml"}
    assert all(r.query["fieldManager"] == "oaas-lab" for r in patches)
    # haproxy (wave 2) is applied only after galera (wave 1) was seen ready
    log = [(r.method, r.path) for r in server.requests]
    galera_checked = max(i for i, (m, p) in enumerate(log)
                         if m == "GET" and p.endswith("/statefulsets/galera"))
    haproxy_applied = min(i for i, (m, p) in enumerate(log)
                          if m == "PATCH" and p.endswith("/deployments/haproxy"))
    assert galera_checked < haproxy_applied
    assert set(report.ready_seconds) == set(render.templates())


def test_second_deploy_applies_nothing(
    server: FakeApiServer, kube: Kube, lab_config: LabConfig
) -> None:
    _deployer(kube, lab_config).deploy()
    server.requests.clear()
    deployer = _deployer(kube, lab_config)
    assert {s.action for s in deployer.plan()} == {Action.UNCHANGED}
    report = deployer.deploy()
    assert report.applied == ()
    assert len(report.unchanged) == len(deployer.rendered.manifests)
    assert server.writes() == []


def test_a_changed_setting_applies_only_what_it_changes(
    server: FakeApiServer, kube: Kube, lab_config: LabConfig
) -> None:
    _deployer(kube, lab_config).deploy()
    bigger = config_mod.load(
        overrides={"lab": "k8s", "state_dir": lab_config.state_dir},
        environ={"OAAS_LAB_COMPONENTS__GALERA__REPLICAS": "5"},
    )
    server.requests.clear()
    report = _deployer(kube, bigger).deploy()
    assert report.applied == ("StatefulSet/galera",)
    path, galera = server.find("StatefulSet", "galera")
    assert galera["spec"]["replicas"] == 5
    assert _applied_paths(server) == [path]


def test_more_memcached_members_reach_every_consumer(
    server: FakeApiServer, kube: Kube, lab_config: LabConfig
) -> None:
    _deployer(kube, lab_config).deploy()
    bigger = config_mod.load(
        overrides={"lab": "k8s", "state_dir": lab_config.state_dir},
        environ={"OAAS_LAB_COMPONENTS__MEMCACHED__REPLICAS": "4"},
    )
    changed = {s.manifest.ref for s in _deployer(kube, bigger).plan()
               if s.action is Action.UPDATE}
    assert "StatefulSet/memcached" in changed
    # the services' configuration lists the new member, and their pods roll to read it
    assert {"Secret/keystone-config", "Deployment/keystone", "Secret/nova-config",
            "Deployment/nova-conductor", "Deployment/horizon"} <= changed
    assert not {r for r in changed if "etcd" in r or "rabbitmq" in r}
    import base64
    secret = next(m.obj for m in _rendered(bigger).manifests if m.ref == "Secret/keystone-config")
    conf = base64.b64decode(secret["data"]["keystone.conf"]).decode()
    assert "memcached-3.memcached.oaas.svc.cluster.local:11211" in conf


def test_force_applies_everything(server: FakeApiServer, kube: Kube,
                                  lab_config: LabConfig) -> None:
    _deployer(kube, lab_config).deploy()
    report = _deployer(kube, lab_config).deploy(force=True)
    assert len(report.applied) == len(_rendered(lab_config).manifests)


def _crashing_galera(server: FakeApiServer) -> None:
    server.never_ready.add("galera")
    labels = {"app.kubernetes.io/name": "galera", "app.kubernetes.io/instance": "oaas"}
    running = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
               "containerStatuses": [{"name": "galera", "ready": True, "restartCount": 0,
                                      "state": {"running": {}}}]}
    server.add_pod(NS, "galera-0", labels, running)
    server.add_pod(NS, "galera-1", labels, {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [{
            "name": "galera", "ready": False, "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff",
                                  "message": "back-off 40s restarting failed container"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
        }],
    })
    server.logs[(NS, "galera-1")] = "\n".join([
        "starting", "galera: galera-1 joins gcomm://10.244.1.5",
        "[ERROR] WSREP: failed to open gcomm backend connection: 110",
        "[ERROR] Aborting",
    ])


def test_wait_timeout_names_the_pod_its_state_and_its_last_log_lines(
    server: FakeApiServer, kube: Kube, lab_config: LabConfig
) -> None:
    _crashing_galera(server)
    clock = FakeClock()
    events: list[Event] = []
    with pytest.raises(NotReadyError) as info:
        _deployer(kube, lab_config, clock, events).deploy()
    err = info.value
    assert err.component == "galera"
    text = err.one_line()
    assert "not ready after 180s" in text
    assert "galera-1: Running, galera: CrashLoopBackOff" in text
    assert "last exit 1 Error; 4 restarts" in text
    assert "failed to open gcomm backend connection" in text
    assert "Aborting" in text
    assert "galera-0" not in text.split("last log lines")[0].split("ready, ")[1]
    assert err.log == f"kubectl -n {NS} logs galera-1 -c galera --previous"
    # the log was read from the crashed run, and bounded in lines
    log_req = next(r for r in server.requests if r.path.endswith("/galera-1/log"))
    assert log_req.query == {"tailLines": "8", "container": "galera", "previous": "true"}
    # waited with the configured timeout, polling, and reported progress while waiting
    assert clock.now >= components.by_name()["galera"].ready_timeout
    assert clock.sleeps > 10
    assert any(e.what == "wait" and e.subject == "galera" for e in events)
    # the next wave was not applied
    assert not any(p.endswith("/deployments/haproxy") for p in _applied_paths(server))


def test_a_fatal_pod_state_stops_the_wait_at_once(
    server: FakeApiServer, kube: Kube, lab_config: LabConfig
) -> None:
    server.never_ready.add("rabbitmq")
    labels = {"app.kubernetes.io/name": "rabbitmq", "app.kubernetes.io/instance": "oaas"}
    server.add_pod(NS, "rabbitmq-0", labels, {
        "phase": "Pending",
        "containerStatuses": [{"name": "rabbitmq", "ready": False, "restartCount": 0, "state": {
            "waiting": {"reason": "CreateContainerConfigError",
                        "message": 'secret "rabbitmq-credentials" not found'}}}],
    })
    server.logs[(NS, "rabbitmq-0")] = ""
    clock = FakeClock()
    with pytest.raises(NotReadyError, match="CreateContainerConfigError") as info:
        _deployer(kube, lab_config, clock).deploy()
    assert "rabbitmq-credentials" in info.value.one_line()
    assert clock.now < 5


def test_unschedulable_pod_says_why(server: FakeApiServer, kube: Kube,
                                    lab_config: LabConfig) -> None:
    server.never_ready.add("etcd")
    labels = {"app.kubernetes.io/name": "etcd", "app.kubernetes.io/instance": "oaas"}
    server.add_pod(NS, "etcd-2", labels, {"phase": "Pending", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/6 nodes are available: 3 node(s) didn't match pod anti-affinity rules"}]})
    with pytest.raises(NotReadyError, match="etcd-2: Pending, not scheduled: 0/6 nodes"):
        _deployer(kube, lab_config).deploy()


def test_diff_shows_changes_and_masks_secrets(
    server: FakeApiServer, kube: Kube, lab_config: LabConfig
) -> None:
    assert len(_deployer(kube, lab_config).diff()) == len(_rendered(lab_config).manifests)
    _deployer(kube, lab_config).deploy()
    assert _deployer(kube, lab_config).diff() == []
    bigger = config_mod.load(
        overrides={"lab": "k8s", "state_dir": lab_config.state_dir},
        environ={"OAAS_LAB_COMPONENTS__ETCD__REPLICAS": "5"},
    )
    server.requests.clear()
    diffs = _deployer(kube, bigger).diff()
    assert [(s.action, s.manifest.ref) for s, _ in diffs] == [
        (Action.UPDATE, "StatefulSet/etcd")]
    text = diffs[0][1]
    assert "-  replicas: 3" in text
    assert "+  replicas: 5" in text
    assert server.writes() == []  # a diff is a dry run
    store = SecretStore(lab_config.lab_dir)
    for s, t in _deployer(kube, lab_config).diff():
        assert s
        for value in store.values():
            assert value not in t


def test_destroy_deletes_only_this_labs_objects(
    server: FakeApiServer, kube: Kube, lab_config: LabConfig
) -> None:
    _deployer(kube, lab_config).deploy()
    foreign = {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "someone-elses", "namespace": NS}, "data": {"a": "b"}}
    other_lab = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "other-lab", "namespace": NS, "labels": {
                     "app.kubernetes.io/managed-by": "oaas-lab", "oaas-lab.io/lab": "other"}}}
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
           "metadata": {"name": "data-galera-0", "namespace": NS, "labels": {
               "app.kubernetes.io/managed-by": "oaas-lab", "oaas-lab.io/lab": "oaas"}}}
    for obj in (foreign, other_lab, pvc):
        kube.apply(obj)
    deleted = _deployer(kube, lab_config).destroy()
    assert len(deleted) == len(_rendered(lab_config).manifests) - 1  # not the namespace
    left = {o["metadata"]["name"] for o in server.objects.values()}
    assert left == {NS, "someone-elses", "other-lab", "data-galera-0"}
    # workloads go before what they mount
    order = [r.path for r in server.writes() if r.method == "DELETE"]
    assert order.index(next(p for p in order if p.endswith("statefulsets/galera"))) < \
        order.index(next(p for p in order if p.endswith("secrets/galera-credentials")))
    deleted = _deployer(kube, lab_config).destroy(volumes=True, namespace=True)
    assert deleted == ["PersistentVolumeClaim/data-galera-0", f"Namespace/{NS}"]
    assert _deployer(kube, lab_config).destroy() == []


def test_policy_refuses_before_any_request(
    server: FakeApiServer, kube: Kube, lab_config: LabConfig
) -> None:
    rendered = _rendered(lab_config)
    sts = next(m.obj for m in rendered.manifests if m.ref == "StatefulSet/etcd")
    sts["spec"]["template"]["spec"]["containers"][0]["image"] = "quay.io/coreos/etcd:latest"
    server.requests.clear()
    with pytest.raises(UserError, match="uses the latest tag"):
        Deployer(kube, rendered, lab="oaas", timeouts={})
    assert server.requests == []


def test_adapter_errors_are_clear(server: FakeApiServer, kube: Kube, tmp_path: Path) -> None:
    assert kube.server_version() == "v1.31.0-fake"
    assert kube.get("v1", "ConfigMap", "nope", NS) is None
    assert kube.delete("v1", "ConfigMap", "nope", NS) is False
    with pytest.raises(KubeError, match=r"PATCH .*configmaps/nope: 404 .*not found"):
        kube.patch("v1", "ConfigMap", "nope", NS, {"data": {"a": "b"}})
    with pytest.raises(ConfigError, match="does not exist"):
        Kube(str(tmp_path / "missing"))
    bad = tmp_path / "bad"
    bad.write_text("not: a kubeconfig\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unusable kubeconfig"):
        Kube(str(bad))
    closed = FakeApiServer()
    gone = Kube(str(closed.kubeconfig(tmp_path / "gone")), timeout=2.0)
    closed.httpd.server_close()  # nothing listens on that port any more
    with pytest.raises(LabError, match="cannot reach the Kubernetes API"):
        gone.server_version()


def test_a_daemonset_without_labelled_nodes_says_so(
    server: FakeApiServer, kube: Kube, lab_config: LabConfig
) -> None:
    server.never_ready.add("nova-compute")
    original = server._pod_status

    def no_nodes(obj: dict[str, object]) -> dict[str, object]:
        if obj.get("kind") == "DaemonSet":
            return {"observedGeneration": 1, "desiredNumberScheduled": 0, "numberReady": 0}
        return original(obj)

    server._pod_status = no_nodes
    with pytest.raises(NotReadyError, match="no node carries its role label"):
        _deployer(kube, lab_config).deploy()


def test_bootstrap_jobs_run_before_their_workload_and_are_replaced_when_changed(
    server: FakeApiServer, kube: Kube, lab_config: LabConfig
) -> None:
    _deployer(kube, lab_config).deploy()
    order = [r.path.rsplit("/", 2)[-2:] for r in server.writes()]
    assert order.index(["jobs", "keystone-bootstrap"]) < order.index(["deployments", "keystone"])
    assert order.index(["jobs", "nova-bootstrap"]) < order.index(["deployments", "nova-api"])
    # the conductor comes in a later wave than the API that syncs nova's databases
    assert order.index(["deployments", "nova-api"]) < order.index(
        ["deployments", "nova-conductor"])
    more_rabbits = config_mod.load(
        overrides={"lab": "k8s", "state_dir": lab_config.state_dir},
        environ={"OAAS_LAB_COMPONENTS__RABBITMQ__REPLICAS": "5"},
    )
    server.requests.clear()
    report = _deployer(kube, more_rabbits).deploy()
    assert "Job/nova-bootstrap" in report.applied
    job_writes = [(r.method, r.path.rsplit("/", 1)[1]) for r in server.writes()
                  if "/jobs/" in r.path]
    assert ("DELETE", "nova-bootstrap") in job_writes
    assert job_writes.index(("DELETE", "nova-bootstrap")) < job_writes.index(
        ("PATCH", "nova-bootstrap"))
