"""Every rendered manifest, for every release, against the Kubernetes schemas and our policy."""

from __future__ import annotations

import copy
from typing import Any

import k8s_schemas as schemas
import pytest

from oaas_lab import components, images, releases
from oaas_lab.backends.k8s import policy, render
from oaas_lab.config import ComponentSettings, LabConfig
from oaas_lab.errors import ConfigError, QuorumError, UserError
from oaas_lab.secrets import MASK

RELEASES = sorted(releases.catalogue())
VERSIONS = schemas.versions()


@pytest.fixture(scope="module")
def stacks() -> dict[str, render.Rendered]:
    from oaas_lab import config as config_mod

    cfg = config_mod.load(overrides={"lab": "k8s"}, environ={})
    return {r: render.render(cfg, r) for r in RELEASES}


def test_catalogue_has_several_releases_and_versions() -> None:
    assert {"2026.2", "2025.2", "2025.1"} <= set(RELEASES)
    assert VERSIONS[0] == "1.29"
    assert len(VERSIONS) >= 2


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("release", RELEASES)
def test_every_manifest_validates(stacks: dict[str, render.Rendered], release: str,
                                  version: str) -> None:
    objects = stacks[release].objects()
    assert len(objects) >= 25
    problems = [e for obj in objects for e in schemas.errors(obj, version)]
    assert problems == []


def test_schema_validation_catches_typos_and_removed_apis(
    stacks: dict[str, render.Rendered],
) -> None:
    sts = next(o for o in stacks["2026.2"].objects() if o["kind"] == "StatefulSet")
    bad = copy.deepcopy(sts)
    bad["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    assert any("readinesProbe" in e for e in schemas.errors(bad, "1.29"))
    old = copy.deepcopy(next(o for o in stacks["2026.2"].objects()
                             if o["kind"] == "PodDisruptionBudget"))
    old["apiVersion"] = "policy/v1beta1"
    assert any("removed API" in e for e in schemas.errors(old, "1.29"))


@pytest.mark.parametrize("release", RELEASES)
def test_policy_passes_for_every_release(stacks: dict[str, render.Rendered], release: str) -> None:
    results = policy.check_all(stacks[release].objects())
    assert [str(r) for r in results if not r.ok] == []
    assert len(results) == len(policy.CHECKS)


def test_deploy_order_follows_the_catalogue_waves(stacks: dict[str, render.Rendered]) -> None:
    rendered = stacks["2026.2"]
    assert rendered.manifests[0].kind == "Namespace"
    waves = components.waves([c for c in components.catalogue() if c.name in render.templates()])
    wave_of = {c.name: i for i, wave in enumerate(waves, start=1) for c in wave}
    seen = [m.wave for m in rendered.manifests]
    assert seen == sorted(seen)
    for m in rendered.manifests[1:]:
        if m.component != render.NAMESPACE_COMPONENT:
            assert m.wave == wave_of[m.component]
    # inside a component, what a workload mounts comes before the workload
    for comp in ("galera", "rabbitmq"):
        kinds = [m.kind for m in rendered.manifests if m.component == comp]
        assert kinds.index("Secret") < kinds.index("StatefulSet")
        assert kinds.index("ConfigMap") < kinds.index("StatefulSet")


def test_replicas_come_from_the_configuration(tmp_path: Any) -> None:
    from oaas_lab import config as config_mod

    env = {"OAAS_LAB_COMPONENTS__GALERA__REPLICAS": "5"}
    objs = render.render(config_mod.load(overrides={"lab": "k8s"}, environ=env)).objects()
    galera = _find(objs, "StatefulSet", "galera")
    assert galera["spec"]["replicas"] == 5
    etcd = next(o for o in objs if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "etcd")
    assert etcd["spec"]["replicas"] == components.by_name()["etcd"].replicas
    bootstrap = next(c for c in etcd["spec"]["template"]["spec"]["initContainers"]
                     if c["name"] == "bootstrap")
    init_env = bootstrap["env"]
    assert {"name": "INITIAL_MEMBERS", "value": "3"} in init_env


def test_even_quorum_count_is_refused_before_rendering() -> None:
    from oaas_lab import config as config_mod

    with pytest.raises(ConfigError, match=r"components\.etcd\.replicas.*even"):
        config_mod.load(environ={"OAAS_LAB_COMPONENTS__ETCD__REPLICAS": "4"})
    cfg = config_mod.load(environ={})
    # model_copy skips validation: this is a configuration built in code, not loaded
    cheat = cfg.model_copy(update={"components": {"rabbitmq": ComponentSettings(replicas=2)}})
    with pytest.raises(QuorumError, match="rabbitmq: 2 replicas is even"):
        render.render(cheat)


def test_unknown_release_and_missing_image_are_clear_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from oaas_lab import config as config_mod

    cfg = config_mod.load(environ={})
    with pytest.raises(ConfigError, match=r"unknown release '1999\.1'"):
        render.render(cfg, "1999.1")
    rel = releases.get("2026.2")
    without = {k: v for k, v in rel.images.items() if k != "galera"}
    monkeypatch.setitem(releases.catalogue(), "2026.2", rel.model_copy(update={"images": without}))
    with pytest.raises(ConfigError, match=r"releases\.2026\.2\.images\.galera"):
        render.render(cfg, "2026.2")
    unknown = {**rel.images, "galera": "docker.io/library/mariadb:11.4.5"}
    monkeypatch.setitem(releases.catalogue(), "2026.2", rel.model_copy(update={"images": unknown}))
    with pytest.raises(ConfigError, match=r"images\.galera: 'docker.io/library/mariadb:11.4.5' "
                                          r"is not an oaas-lab image recipe"):
        render.render(cfg, "2026.2")


def test_rendered_secrets_are_masked_and_deployed_ones_generated(lab_config: LabConfig) -> None:
    from oaas_lab.secrets import SecretStore

    printed = render.render(lab_config).to_yaml()
    store = SecretStore(lab_config.lab_dir)
    real = render.render(lab_config, secret_value=render.from_store(store))
    assert store.names()
    for value in store.values():
        assert value not in printed
    secrets = [o for o in real.objects() if o["kind"] == "Secret"]
    names = {s["metadata"]["name"] for s in secrets}
    assert {s.name for spec in components.specs() if spec.k8s for s in spec.k8s.secrets} <= names
    assert {"openstack-credentials", "keystone-fernet-keys", "keystone-config",
            "nova-config", "neutron-config"} <= names
    import base64
    for s in secrets:
        for v in s["data"].values():
            assert base64.b64decode(v).decode() != MASK
    # the same store gives the same objects: deploys are repeatable
    store_again = SecretStore(lab_config.lab_dir)
    again = render.render(lab_config, secret_value=render.from_store(store_again))
    assert again.objects() == real.objects()


def test_every_image_comes_from_the_release(stacks: dict[str, render.Rendered]) -> None:
    for name, rendered in stacks.items():
        wanted = {images.reference(recipe, name) for recipe in releases.get(name).images.values()}
        used = set()
        for obj in rendered.objects():
            for c in policy._containers(obj):
                assert c["image"] in wanted
                used.add(c["image"])
        # oaas-lab's own images only, each named by its content-hash tag
        assert all(i.startswith("localhost/oaas-lab/") for i in used)
        assert images.reference("galera", name) in used


def test_image_placement_names_the_roles_that_run_each_image(
    stacks: dict[str, render.Rendered],
) -> None:
    placement = render.image_placement(stacks["2026.2"])
    controller = {"node-role.oaas-lab.io/controller": "true"}
    assert controller in placement[images.reference("galera", "2026.2")]
    assert placement[images.reference("etcd", "2026.2")] == [controller]
    compute = placement[images.reference("nova-compute", "2026.2")]
    assert compute
    assert controller not in compute
    every = {c["image"] for o in stacks["2026.2"].objects() for c in policy._containers(o)}
    assert set(placement) == every


def test_openstack_images_follow_the_release_and_infrastructure_images_do_not(
    stacks: dict[str, render.Rendered],
) -> None:
    def refs(release: str) -> set[str]:
        return {c["image"] for o in stacks[release].objects() for c in policy._containers(o)}

    newest, older = refs("2026.2"), refs("2025.1")
    assert images.reference("galera", "2026.2") in newest & older
    assert images.reference("openstack", "2026.2") in newest - older
    assert images.reference("openstack", "2025.1") in older - newest


# --- each policy check fails on a manifest that breaks its rule -------------------------------

def _find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


@pytest.fixture
def objects(stacks: dict[str, render.Rendered]) -> list[dict[str, Any]]:
    return copy.deepcopy(stacks["2026.2"].objects())


def test_even_quorum_count_fails(objects: list[dict[str, Any]]) -> None:
    _find(objects, "StatefulSet", "galera")["spec"]["replicas"] = 4
    result = policy.quorum_replicas(objects)
    assert not result.ok
    assert "StatefulSet/galera has 4 replicas" in result.detail


def test_missing_probe_fails(objects: list[dict[str, Any]]) -> None:
    ctr = _find(objects, "StatefulSet", "rabbitmq")["spec"]["template"]["spec"]["containers"][0]
    del ctr["livenessProbe"]
    result = policy.probes(objects)
    assert not result.ok
    assert "rabbitmq lacks livenessProbe" in result.detail


@pytest.mark.parametrize(("key", "text"), [
    ("db-password", "hunter2"),
    ("keystone.conf", "[database]\nconnection = mysql+pymysql://keystone:hunter2@haproxy/keystone\n"),
    ("nova.conf", "[keystone_authtoken]\npassword = hunter2\n"),
    ("haproxy.cfg", "stats auth admin:hunter2\nrabbit_password: s3cr3t\n"),
])
def test_secret_in_configmap_fails(objects: list[dict[str, Any]], key: str, text: str) -> None:
    _find(objects, "ConfigMap", "galera-config")["data"][key] = text
    result = policy.no_secrets_in_configmaps(objects)
    assert not result.ok
    assert "ConfigMap/galera-config" in result.detail


def test_secret_reference_in_configmap_passes(objects: list[dict[str, Any]]) -> None:
    _find(objects, "ConfigMap", "galera-config")["data"]["x.conf"] = (
        'password = "${DB_PASSWORD}"\nstats auth admin:"${STATS_PASSWORD}"\n'
    )
    assert policy.no_secrets_in_configmaps(objects).ok


def test_literal_password_env_fails(objects: list[dict[str, Any]]) -> None:
    ctr = _find(objects, "StatefulSet", "galera")["spec"]["template"]["spec"]["containers"][0]
    ctr["env"] = [e for e in ctr["env"] if e["name"] != "MARIADB_ROOT_PASSWORD"]
    ctr["env"].append({"name": "MARIADB_ROOT_PASSWORD", "value": "passw0rd"})
    result = policy.no_secrets_in_configmaps(objects)
    assert not result.ok
    assert "MARIADB_ROOT_PASSWORD is a literal" in result.detail


@pytest.mark.parametrize(("image", "why"), [
    ("docker.io/library/mariadb", "has no tag"),
    ("mariadb:latest", "uses the latest tag"),
    ("registry.example:5000/mariadb", "has no tag"),
])
def test_unpinned_image_fails(objects: list[dict[str, Any]], image: str, why: str) -> None:
    ctr = _find(objects, "StatefulSet", "galera")["spec"]["template"]["spec"]["containers"][0]
    ctr["image"] = image
    result = policy.pinned_images(objects)
    assert not result.ok
    assert why in result.detail


def test_digest_and_registry_port_are_pinned(objects: list[dict[str, Any]]) -> None:
    ctrs = _find(objects, "StatefulSet", "galera")["spec"]["template"]["spec"]["containers"]
    ctrs[0]["image"] = "registry.example:5000/mariadb@sha256:" + "a" * 64
    assert policy.pinned_images(objects).ok
    ctrs[0]["image"] = "registry.example:5000/mariadb:11.4.5"
    assert policy.pinned_images(objects).ok


def test_missing_quorum_spread_fails(objects: list[dict[str, Any]]) -> None:
    spec = _find(objects, "StatefulSet", "etcd")["spec"]["template"]["spec"]
    del spec["topologySpreadConstraints"]
    result = policy.quorum_spread(objects)
    assert not result.ok
    assert "StatefulSet/etcd" in result.detail


@pytest.mark.parametrize(("budget", "why"), [
    ({"maxUnavailable": 2}, "loses the majority"),
    ({"minAvailable": 3}, "allows no disruption"),
])
def test_inconsistent_budget_fails(objects: list[dict[str, Any]], budget: dict[str, int],
                                   why: str) -> None:
    pdb = _find(objects, "PodDisruptionBudget", "galera")
    pdb["spec"] = {"selector": pdb["spec"]["selector"], **budget}
    result = policy.disruption_budgets(objects)
    assert not result.ok
    assert why in result.detail


def test_missing_budget_fails(objects: list[dict[str, Any]]) -> None:
    pdb = _find(objects, "PodDisruptionBudget", "haproxy")
    objects.remove(pdb)
    result = policy.disruption_budgets(objects)
    assert not result.ok
    assert "Deployment/haproxy has no PodDisruptionBudget" in result.detail


def test_missing_requests_fail(objects: list[dict[str, Any]]) -> None:
    ctr = _find(objects, "Deployment", "haproxy")["spec"]["template"]["spec"]["containers"][0]
    del ctr["resources"]
    assert not policy.resource_requests(objects).ok


def test_enforce_refuses_with_one_line(objects: list[dict[str, Any]]) -> None:
    _find(objects, "StatefulSet", "etcd")["spec"]["replicas"] = 2
    with pytest.raises(UserError, match="policy: odd quorum") as info:
        policy.enforce(objects)
    assert "\n" not in info.value.one_line()


def test_openstack_tier_config_lives_in_secrets_with_quorum_queues(
    stacks: dict[str, render.Rendered],
) -> None:
    import base64

    objs = stacks["2026.2"].objects()
    nova = _find(objs, "Secret", "nova-config")
    conf = base64.b64decode(nova["data"]["nova.conf"]).decode()
    assert "rabbit_quorum_queue = true" in conf
    assert "rabbitmq-2.rabbitmq-peers.oaas.svc.cluster.local:5672" in conf
    assert "haproxy.oaas.svc.cluster.local:3306" in conf
    assert not [o for o in objs if o["kind"] == "ConfigMap" and "nova.conf" in o.get("data", {})]
    compute = _find(objs, "DaemonSet", "nova-compute")
    spec = compute["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"node-role.oaas-lab.io/compute": "true"}
    env = {e["name"]: e.get("value") for e in spec["containers"][1]["env"]}
    assert env["OS_DEFAULT__HOST"] == "$(NODE_NAME)"
    neutron = _find(objs, "Deployment", "neutron-server")
    assert neutron["spec"]["template"]["spec"]["nodeSelector"] == {
        "node-role.oaas-lab.io/network": "true"}
