"""``oaas-lab render | deploy | destroy | preflight`` end to end, against the fake API server."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fake_apiserver import FakeApiServer

from oaas_lab import config as config_mod
from oaas_lab import images as oaas_images
from oaas_lab.adapters import vagrant_hosts
from oaas_lab.backends.k8s import preflight, render
from oaas_lab.cli.main import main
from oaas_lab.secrets import SecretStore

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in [k for k in os.environ if k.startswith("OAAS_LAB_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("OAAS_LAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    with FakeApiServer() as srv:
        yield srv


def test_render_prints_the_stack_without_a_cluster(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render", "--release", "2025.1"]) == 0
    out = capsys.readouterr().out
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert docs[0]["kind"] == "Namespace"
    images = [c["image"] for d in docs if d["kind"] == "StatefulSet"
              for c in d["spec"]["template"]["spec"]["containers"]]
    assert oaas_images.reference("galera", "2025.1") in images
    secrets = [d for d in docs if d["kind"] == "Secret"]
    assert secrets
    assert all(d["metadata"]["annotations"]["oaas-lab.io/values"].startswith("masked")
               for d in secrets)
    assert not (env / "state").exists()  # rendering generates no secrets


def test_render_bad_input_is_one_line_exit_2(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["render", "--release", "1999.1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("oaas-lab: error:")
    assert "1999.1" in err
    assert len(err.strip().splitlines()) == 1
    monkeypatch.setenv("OAAS_LAB_COMPONENTS__RABBITMQ__REPLICAS", "2")
    assert main(["render"]) == 2
    assert "components.rabbitmq.replicas" in capsys.readouterr().err


def test_deploy_dry_run_offline_lists_every_object_in_order(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deploy", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "offline (cluster not reachable" in out
    lines = [ln for ln in out.splitlines() if ln.startswith("  wave ")]
    assert lines[0].split()[-1] == "Namespace/oaas"
    assert len(lines) == len(render.render(config_mod.load(environ={})).manifests)
    workloads = [i for i, ln in enumerate(lines) if "StatefulSet/" in ln or "Deployment/" in ln]
    assert lines[-1].split()[-1] in {ln.split()[-1] for ln in lines[workloads[0]:]}
    assert "nothing was changed" in out
    assert not (env / "state").exists()


def test_deploy_twice_then_destroy(
    env: Path, server: FakeApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = str(server.kubeconfig(env / "kubeconfig"))
    assert main(["--kubeconfig", kubeconfig, "deploy", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "against http://127.0.0.1" in out
    assert "create" in out
    assert server.writes() == []
    assert main(["--kubeconfig", kubeconfig, "deploy"]) == 0
    out = capsys.readouterr().out
    total = len(render.render(config_mod.load(environ={})).manifests)
    assert f"applied {total} objects, 0 unchanged" in out
    assert "ready    galera" in out
    store = SecretStore(env / "state" / "oaas")
    for value in store.values():
        assert value not in out
    server.requests.clear()
    assert main(["--kubeconfig", kubeconfig, "deploy"]) == 0
    out = capsys.readouterr().out
    assert "nothing to apply" in out
    assert server.writes() == []
    assert main(["--kubeconfig", kubeconfig, "deploy", "--diff"]) == 0
    assert "no differences" in capsys.readouterr().out
    assert main(["--kubeconfig", kubeconfig, "destroy", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "deleted  StatefulSet/galera" in out
    assert f"deleted {total - 1} objects" in out  # everything but the namespace
    assert main(["--kubeconfig", kubeconfig, "destroy", "--yes"]) == 0
    assert "nothing to delete" in capsys.readouterr().out


def test_deploy_unreachable_cluster_is_a_clear_error(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--kubeconfig", str(env / "missing"), "deploy"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err
    assert "--kubeconfig" in err


# --- preflight ----------------------------------------------------------------------------

def test_preflight_checks_fail_and_pass_on_a_real_host() -> None:
    host = vagrant_hosts.local_host()
    # a module this kernel has, loaded or built in (some kernels have no /proc/modules)
    modules = Path("/proc/modules")
    first = (modules.read_text().split()[0] if modules.exists()
             else sorted(p.name for p in Path("/sys/module").iterdir())[0])
    assert preflight.modules_loaded(host, [first]).ok
    missing = preflight.modules_loaded(host, [first, "oaas_no_such_module"])
    assert not missing.ok
    assert "oaas_no_such_module" in missing.detail
    assert "modprobe oaas_no_such_module" in missing.hint
    wrong = preflight.sysctls(host, {"kernel.ostype": "Windows"})
    assert not wrong.ok
    assert "kernel.ostype=Linux" in wrong.detail
    assert preflight.sysctls(host, {"kernel.ostype": "Linux"}).ok
    assert preflight.clocks_agree([host, host]).ok


def test_clock_checks_detect_skew() -> None:
    host = vagrant_hosts.local_host()
    other = vagrant_hosts.Host("other", None)
    times = {"localhost": 1000.0, "other": 1030.0}
    result = preflight.clocks_agree([host, other], now=lambda h: times[h.name])
    assert not result.ok
    assert "spread 30.00s" in result.detail


def test_role_labels() -> None:
    def node(*roles: str) -> dict[str, object]:
        return {"metadata": {"labels": {f"node-role.oaas-lab.io/{r}": "true" for r in roles}}}

    lab = [node(), node("controller"), node("controller"), node("controller"),
           node("compute", "network"), node("compute", "network")]
    assert preflight.role_labels(lab).ok
    short = preflight.role_labels(lab[:3] + lab[4:])
    assert not short.ok
    assert "controller: 2 < 3" in short.detail


def test_preflight_without_machines_is_a_clear_error(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["preflight", "--vagrant-dir", str(env)]) in (1, 2)
    err = capsys.readouterr().err
    assert err.startswith("oaas-lab: error:")
    assert "Traceback" not in err


# --- the Vagrantfile ----------------------------------------------------------------------

VAGRANT = shutil.which("vagrant")
needs_vagrant = pytest.mark.skipif(
    VAGRANT is None, reason="vagrant is not installed (Debian: apt-get install vagrant)")


def _validate(directory: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    directory.mkdir(exist_ok=True)
    shutil.copy(REPO / "Vagrantfile", directory / "Vagrantfile")
    return subprocess.Popen(
        [str(VAGRANT), "validate", "--ignore-provider"], cwd=directory, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "VAGRANT_CHECKPOINT_DISABLE": "1", **env},
    )


@needs_vagrant
def test_vagrantfile_validates_and_refuses_an_unknown_provider(tmp_path: Path) -> None:
    # Both runs at once: vagrant takes seconds to start.
    good = _validate(tmp_path / "good", {})
    bogus = _validate(tmp_path / "bogus", {"OAAS_LAB_PROVIDER": "bogus"})
    out, _ = good.communicate(timeout=120)
    bogus_out, _ = bogus.communicate(timeout=120)
    assert good.returncode == 0, out
    assert "validated successfully" in out
    for name in ("k8s-cp", "controller-1", "controller-2", "controller-3",
                 "compute-1", "compute-2"):
        assert f"{name}:" in out
    token = tmp_path / "good" / ".vagrant" / "kubeadm-token"
    assert token.stat().st_mode & 0o777 == 0o600
    assert len(token.read_text().strip()) == 23
    assert bogus.returncode != 0
    assert "use virtualbox or libvirt" in bogus_out


def test_vagrant_machine_readable_errors_become_one_line() -> None:
    output = (
        "1795849296,,ui,error,The provider...\n"
        "1795849296,,error-exit,Vagrant::Errors::ProviderNotUsable,The provider 'virtualbox'"
        " that was requested to back the machine\\n'k8s-cp' is reporting that it isn't usable"
        " on this system.\\n\\nVagrant could not detect VirtualBox! Make sure VirtualBox is"
        " properly installed%!(VAGRANT_COMMA) please.\n"
    )
    text = vagrant_hosts.vagrant_message(output)
    assert text.startswith("The provider 'virtualbox' that was requested to back the machine "
                           "'k8s-cp' is reporting")
    assert "\\n" not in text
    assert "installed, please." in text
    assert vagrant_hosts.vagrant_message("plain failure\n") == "plain failure"


def test_vagrantfile_and_manifests_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from oaas_lab.adapters import kube

    text = (REPO / "Vagrantfile").read_text()
    assert f'ROLE = "{render.ROLE_LABEL}"' in text
    assert "roles: %w[controller]" in text
    assert "roles: %w[compute network]" in text
    for module in (*preflight.MODULES_ALL, *preflight.MODULES_NETWORK):
        assert module in text  # what preflight checks, the Vagrantfile loads
    # vagrant up writes .vagrant/kubeconfig; deploy uses it when nothing else is given
    assert ".vagrant/kubeconfig" in text
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    assert kube.default_kubeconfig(None) is None
    (tmp_path / ".vagrant").mkdir()
    (tmp_path / ".vagrant" / "kubeconfig").write_text("{}")
    assert kube.default_kubeconfig(None) == ".vagrant/kubeconfig"
    assert kube.default_kubeconfig("/elsewhere") == "/elsewhere"
    monkeypatch.setenv("KUBECONFIG", "/from/env")
    assert kube.default_kubeconfig(None) is None  # the client then reads $KUBECONFIG
