"""The embedded cluster's pure parts: wrapper modules, topology, configuration, PKI, judges."""

from __future__ import annotations

import stat

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from oaas_lab.adapters import shell
from oaas_lab.cluster import build, dns, host, lifecycle, pki, topology
from oaas_lab.cluster import node as nodes
from oaas_lab.config import ClusterSettings, LabConfig
from oaas_lab.errors import LabError, UserError

UPSTREAM_GO_MOD = """module k8s.io/kubernetes

go 1.24.0

require (
\tk8s.io/api v0.0.0
\tgithub.com/spf13/cobra v1.9.1
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tk8s.io/kube-proxy => ./staging/src/k8s.io/kube-proxy
\tgithub.com/example/forked => github.com/example/forked v1.2.3
)
"""


def test_staging_modules_are_the_local_replacements_only():
    assert build.staging_modules(UPSTREAM_GO_MOD) == [
        "k8s.io/api", "k8s.io/client-go", "k8s.io/kube-proxy"]


def test_staging_modules_refuse_an_unexpected_layout():
    with pytest.raises(LabError, match="staging"):
        build.staging_modules("module k8s.io/kubernetes\n")


def test_wrapper_go_mod_points_staging_at_published_twins():
    text = build.kubernetes_go_mod("v1.34.4", ["k8s.io/client-go", "k8s.io/api"])
    assert "require k8s.io/kubernetes v1.34.4" in text
    assert "\tk8s.io/api => k8s.io/api v0.34.4" in text
    assert "\tk8s.io/client-go => k8s.io/client-go v0.34.4" in text
    assert "./staging" not in text


@pytest.mark.parametrize("bad", ["1.34.4", "v2.0", "v1.34", "latest"])
def test_versions_not_of_the_kubernetes_form_are_refused(bad):
    with pytest.raises(LabError, match=r"cluster\.yaml"):
        build.staging_version(bad)


def test_ldflags_stamp_the_version_into_both_version_packages():
    flags = build.version_ldflags("v1.34.4")
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {package}.gitVersion=v1.34.4" in flags
        assert f"-X {package}.gitMinor=34" in flags


def test_coredns_main_lists_every_plugin_as_import_and_directive():
    text = build.tools_go([f"github.com/coredns/coredns/plugin/{p}"
                           for p in build.COREDNS_PLUGINS], main=True)
    assert "package main" in text
    assert "coremain.Run()" in text
    for plugin in build.COREDNS_PLUGINS:
        assert f'_ "github.com/coredns/coredns/plugin/{plugin}"' in text
        assert f'\t\t"{plugin}",' in text
    assert "forward" not in text


def test_pinned_versions_are_one_place():
    pins = build.pins()
    assert pins.kubernetes.startswith("v1.34.")
    assert build.staging_version(pins.kubernetes).startswith("v0.34.")


def test_default_topology_is_the_vagrant_lab():
    topo = topology.plan("oaas", ClusterSettings())
    assert [n.name for n in topo.nodes] == [
        "k8s-cp", "controller-1", "controller-2", "controller-3", "compute-1", "compute-2"]
    assert topo.control_plane.name == "k8s-cp"
    assert topo.control_plane.taints == ["node-role.kubernetes.io/control-plane:NoSchedule"]
    assert topo.node("controller-2").labels == {"node-role.oaas-lab.io/controller": "true"}
    assert topo.node("compute-1").labels == {"node-role.oaas-lab.io/compute": "true",
                                             "node-role.oaas-lab.io/network": "true"}
    assert [n.ip for n in topo.nodes][:2] == ["172.31.90.10", "172.31.90.11"]
    assert topo.node("compute-2").pod_cidr == "10.244.5.0/24"
    assert topo.node("compute-2").pod_gateway == "10.244.5.1"
    assert topo.api_server == "https://172.31.90.10:6443"
    assert topo.kubernetes_service_ip == "10.96.0.1"
    assert topo.dns_ip == "10.96.0.10"


@pytest.mark.parametrize(("total", "split"), [(6, (3, 2)), (3, (1, 1)), (4, (2, 1)),
                                              (11, (6, 4))])
def test_node_count_keeps_the_vagrant_proportion(total, split):
    assert topology.split_nodes(total) == split


@pytest.mark.parametrize("total", [0, 2, 20])
def test_node_counts_the_host_cannot_hold_are_refused(total):
    with pytest.raises(UserError, match="--nodes"):
        topology.split_nodes(total)


def test_host_interface_names_fit_the_kernel_limit():
    topo = topology.plan("abcdef", ClusterSettings(controller_nodes=9, compute_nodes=9))
    names = [topo.bridge] + [f(n) for n in topo.nodes for f in (topo.veth, topo.veth_peer)]
    assert max(len(name) for name in names) <= 15
    assert len(set(names)) == len(names)


def test_only_wrong_settings_change():
    current = dict.fromkeys(host.EXACT, 0) | dict.fromkeys(host.AT_LEAST, 10**9)
    current |= {key: value for key, value in host.EXACT.items() if key != "kernel.panic"}
    current["net.ipv4.neigh.default.gc_thresh3"] = 1024
    assert host.wanted_changes(current) == {"kernel.panic": 10,
                                            "net.ipv4.neigh.default.gc_thresh3": 16384}


def _files(tmp_path):
    return nodes.NodeFiles(tmp_path / "nodes" / "controller-1")


def test_kubelet_configuration_fits_this_host(tmp_path):
    topo = topology.plan("oaas", ClusterSettings())
    node = topo.node("controller-1")
    doc = yaml.safe_load(nodes.kubelet_yaml(node, topo, _files(tmp_path), pki.Pki(tmp_path)))
    assert doc["cgroupDriver"] == "cgroupfs"
    assert doc["cgroupRoot"] == "/oaas-lab-oaas-controller-1"
    assert doc["failCgroupV1"] is False
    assert doc["oomScoreAdj"] == 0
    assert doc["resolvConf"] == ""
    assert doc["clusterDNS"] == ["10.96.0.10"]
    assert doc["containerRuntimeEndpoint"].endswith("controller-1/containerd/containerd.sock")


def test_containerd_configuration_keeps_the_traps_handled(tmp_path):
    text = nodes.containerd_toml(_files(tmp_path), "localhost/oaas-lab/pause:abc")
    assert "restrict_oom_score_adj = true" in text
    assert "SystemdCgroup = false" in text
    assert 'sandbox_image = "localhost/oaas-lab/pause:abc"' in text
    assert str(tmp_path) in text
    assert "/var/lib/containerd" not in text


def test_cni_network_is_the_nodes_own_subnet(tmp_path):
    topo = topology.plan("oaas", ClusterSettings())
    doc = yaml.safe_load(nodes.cni_conflist(topo.node("compute-1"), _files(tmp_path)))
    bridge = doc["plugins"][0]
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.4.0/24", "gateway": "10.244.4.1"}]]
    assert bridge["ipMasq"] is False


def test_pki_is_created_once_private_and_right(tmp_path):
    topo = topology.plan("oaas", ClusterSettings())
    store = pki.Pki(tmp_path / "pki")
    created = store.ensure(topo)
    assert "ca" in created
    assert "kubelet-compute-2" in created
    assert store.ensure(topo) == []
    for path in (tmp_path / "pki").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    cert = x509.load_pem_x509_certificate(store.cert("apiserver").read_bytes())
    alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "10.96.0.1" in [str(ip) for ip in alt.get_values_for_type(x509.IPAddress)]
    assert "kubernetes.default.svc.cluster.local" in alt.get_values_for_type(x509.DNSName)
    kubelet = x509.load_pem_x509_certificate(store.cert("kubelet-compute-2").read_bytes())
    assert kubelet.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == \
        "system:node:compute-2"
    assert kubelet.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == \
        "system:nodes"
    kubeconfig = yaml.safe_load(store.kubeconfig("admin").read_text())
    assert kubeconfig["clusters"][0]["cluster"]["server"] == topo.api_server


def _node_object(ready: str, message: str = "", labels: dict[str, str] | None = None):
    return {"metadata": {"name": "controller-1", "labels": labels or {}},
            "status": {"conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": ready, "message": message}]}}


def test_node_judge_says_why_a_node_is_not_ready():
    node = topology.plan("oaas", ClusterSettings()).node("controller-1")
    assert not lifecycle.node_result(node, None, "", "kubelet.log").ok
    result = lifecycle.node_result(node, _node_object("False", "network plugin not ready"),
                                   "", "kubelet.log")
    assert not result.ok
    assert "network plugin not ready" in result.detail
    ready = lifecycle.node_result(node, _node_object(
        "True", labels={"node-role.oaas-lab.io/controller": "true"}), "", "kubelet.log")
    assert ready.ok
    assert "controller" in ready.detail


def test_dns_judge_wants_every_replica_available():
    assert not lifecycle.dns_result(None).ok
    half = {"spec": {"replicas": 2}, "status": {"availableReplicas": 1}}
    assert not lifecycle.dns_result(half).ok
    assert lifecycle.dns_result({"spec": {"replicas": 2},
                                 "status": {"availableReplicas": 2}}).ok


def test_cluster_dns_never_forwards_outside_the_cluster():
    topo = topology.plan("oaas", ClusterSettings())
    objs = dns.objects(topo, "localhost/oaas-lab/coredns:abc")
    service = next(o for o in objs if o["kind"] == "Service")
    assert service["spec"]["clusterIP"] == topo.dns_ip
    assert "forward" not in dns.COREFILE
    deployment = next(o for o in objs if o["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "localhost/oaas-lab/coredns:abc"
    assert container["imagePullPolicy"] == "Never"


def test_a_long_build_streams_its_lines_and_keeps_the_tail():
    seen: list[str] = []
    done = shell.stream(["sh", "-c", "for i in $(seq 1 250); do echo line $i; done; exit 3"],
                        on_line=seen.append, timeout=30)
    assert seen[0] == "line 1"
    assert len(seen) == 250
    assert done.returncode == 3
    assert done.stdout.splitlines()[0] == "line 51"
    assert done.stdout.splitlines()[-1] == "line 250"


def test_a_stuck_build_is_killed_at_its_timeout():
    done = shell.stream(["sh", "-c", "echo started; exec sleep 30"], on_line=lambda _l: None,
                        timeout=1)
    assert done.returncode == 124
    assert done.stdout.splitlines() == ["started", "timed out after 1s"]


def test_a_missing_build_tool_is_a_result_not_an_exception():
    done = shell.stream(["no-such-tool-here"], on_line=lambda _l: None, timeout=5)
    assert done.returncode == 127
    assert "command not found" in done.stdout


def test_a_k8s_lab_naming_a_cluster_acts_on_that_cluster():
    k8s_lab = LabConfig.model_validate(
        {"name": "kinfra", "lab": "k8s", "k8s": {"cluster": "oaas"}})
    assert lifecycle.cluster_config(k8s_lab).name == "oaas"
    assert lifecycle.cluster_config(k8s_lab).k8s.namespace == k8s_lab.k8s.namespace
    # A lab that names no cluster, or a local lab, is its own cluster's name.
    assert lifecycle.cluster_config(LabConfig(name="ci")).name == "ci"
    local = LabConfig.model_validate({"name": "loc", "k8s": {"cluster": "oaas"}})
    assert lifecycle.cluster_config(local).name == "loc"
