"""The CLI against a real local lab: up twice, status, config show, down -- and no secret leaks.

A secret may live only in the 0600 secret store and in 0600 files handed to a daemon. It must
never appear in what a command prints, in a log file, or on a process command line (which every
user of the host can read). The lab here is ``cli`` on 172.31.95.0/24 with its own state dir.
"""

from __future__ import annotations

import json
import os
import random
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from oaas_lab.backends.local.supervisor import Supervisor
from oaas_lab.probes import soak
from oaas_lab.secrets import SecretStore

pytestmark = pytest.mark.lab

NAME = "cli"
SUBNET = "172.31.95.0/24"


class Cli:
    """Runs ``oaas-lab`` as a user would, and keeps everything it printed."""

    def __init__(self, state_dir: Path) -> None:
        self.env = {
            **os.environ,
            "OAAS_LAB_NAME": NAME,
            "OAAS_LAB_LOCAL__SUBNET": SUBNET,
            "OAAS_LAB_LOCAL__OPENSTACK": "false",
            "OAAS_LAB_STATE_DIR": str(state_dir),
        }
        self.env.pop("OAAS_LAB_CONFIG", None)
        self.printed: list[str] = []

    def __call__(self, *argv: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "oaas_lab.cli.main", *argv],
            capture_output=True, text=True, env=self.env, timeout=timeout, check=False,
        )
        self.printed += [done.stdout, done.stderr]
        return done


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    if os.geteuid() != 0:
        pytest.fail("the local lab tests need root (network namespaces, bridges)")
    runner = Cli(tmp_path_factory.mktemp("clistate"))
    try:
        yield runner
    finally:
        runner("down", timeout=180)


@pytest.fixture(scope="module")
def lab_dir(cli: Cli) -> Path:
    return Path(cli.env["OAAS_LAB_STATE_DIR"]) / NAME


def lab_processes(lab_dir: Path) -> list[tuple[int, str]]:
    """PIDs of processes in the lab's namespaces or started from its directory."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            netns = os.readlink(entry / "ns" / "net")
        except OSError:
            continue
        if str(lab_dir) in cmdline or netns in lab_netns_ids():
            found.append((int(entry.name), cmdline))
    return found


def lab_netns_ids() -> set[str]:
    ids = set()
    for ns in Path("/run/netns").glob(f"{NAME}-*") if Path("/run/netns").exists() else []:
        try:
            ids.add(f"net:[{ns.stat().st_ino}]")
        except OSError:
            continue
    return ids


def readable_by_others(path: Path, top: Path) -> bool:
    """True unless the file, or a directory on its way down from ``top``, shuts others out."""
    for node in (path, *path.parents):
        if stat.S_IMODE(node.stat().st_mode) & 0o077 == 0:
            return False
        if node == top:
            break
    return True


def test_up_prints_progress_and_a_ready_table(cli: Cli) -> None:
    done = cli("up")
    assert done.returncode == 0, done.stderr
    assert f"lab '{NAME}' is up in" in done.stdout
    for component in ("etcd", "galera", "haproxy", "rabbitmq", "memcached"):
        assert component in done.stdout


def test_second_up_changes_nothing_and_says_so(cli: Cli) -> None:
    done = cli("up")
    assert done.returncode == 0, done.stderr
    assert "already up and ready: nothing to change" in done.stdout


def test_up_puts_back_changed_files_and_applies_them_to_running_members(
        cli: Cli, lab_dir: Path) -> None:
    etcd_conf = lab_dir / "pods" / "etcd-0" / "etcd.yaml"
    haproxy_cfg = lab_dir / "pods" / "haproxy-0" / "haproxy.cfg"
    originals = {etcd_conf: etcd_conf.read_text(), haproxy_cfg: haproxy_cfg.read_text()}
    for path, text in originals.items():
        path.write_text(text + "# edited by hand\n")
    done = cli("up")
    assert done.returncode == 0, done.stderr
    assert "etcd-0: files changed, restarting" in done.stdout
    assert "haproxy-0: files changed, reloading" in done.stdout
    for path, text in originals.items():
        assert path.read_text() == text
    assert "already up and ready: nothing to change" in cli("up").stdout


def test_status_reports_every_component_ready(cli: Cli) -> None:
    done = cli("status")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "NO" not in done.stdout


def test_logs_prints_the_tail_of_a_pods_log(cli: Cli, lab_dir: Path) -> None:
    done = cli("logs", "galera-0", "-n", "5")
    assert done.returncode == 0, done.stderr
    assert 0 < len(done.stdout.splitlines()) <= 5
    assert str(lab_dir / "pods" / "galera-0") in done.stderr
    unknown = cli("logs", "galera-9")
    assert unknown.returncode == 2
    assert unknown.stderr.count("\n") == 1
    assert "galera-0" in unknown.stderr  # the one-line error names the pods there are


def test_even_scale_is_one_line_and_changes_nothing(cli: Cli, lab_dir: Path) -> None:
    before = (lab_dir / "state.json").read_text()
    done = cli("scale", "rabbitmq", "4")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "even" in done.stderr
    assert (lab_dir / "state.json").read_text() == before


def test_a_scale_the_host_cannot_hold_is_refused_before_anything_starts(
        cli: Cli, lab_dir: Path) -> None:
    before = (lab_dir / "state.json").read_text()
    pods = sorted(p.name for p in (lab_dir / "pods").iterdir())
    done = cli("scale", "galera", "99")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "do not fit on this host" in done.stderr
    assert "the largest galera count that fits is" in done.stderr
    assert (lab_dir / "state.json").read_text() == before
    assert sorted(p.name for p in (lab_dir / "pods").iterdir()) == pods


def test_config_show_masks_the_generated_secrets(cli: Cli, lab_dir: Path) -> None:
    names = SecretStore(lab_dir).names()
    assert names, "up generated no secrets"
    done = cli("config", "show")
    assert done.returncode == 0
    for name in names:
        assert f"{name}: '******'" in done.stdout


def test_soak_carries_out_its_seeded_plan_and_loses_nothing(
        cli: Cli, tmp_path: Path) -> None:
    # Seed 9's three cycles: a lossy Galera link, two Galera members crashed a second apart,
    # a paused etcd member.
    reports = tmp_path / "soak"
    done = cli("soak", "--cycles", "3", "--seed", "9", "--components", "etcd,galera",
               "--duration", "4", "--reports-dir", str(reports), timeout=1500)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "seed 9 (replay: oaas-lab soak --seed 9 --cycles 3" in done.stdout
    report = json.loads((reports / "soak-9.json").read_text())
    planned = soak.plan(9, 3, ["etcd", "galera"], 4.0)
    assert [(c["component"], c["fault"]) for c in report["cycles"]] == [
        (s.component, s.kind) for s in planned]
    for cycle in report["cycles"]:
        assert cycle["ok"], cycle["problem"]
        for name in ("etcd", "galera"):
            assert cycle["figures"][f"{name} lost"] == 0
            assert cycle["figures"][f"{name} verified"] > 0


def killed_at_random(cli: Cli, argv: list[str], rng: random.Random, low: float,
                     high: float) -> None:
    """Run ``oaas-lab argv`` and SIGKILL it after a delay drawn from ``rng`` (if still running)."""
    proc = subprocess.Popen([sys.executable, "-m", "oaas_lab.cli.main", *argv], env=cli.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=rng.uniform(low, high))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_an_up_killed_at_random_points_converges_when_run_again(
        cli: Cli, lab_dir: Path) -> None:
    secrets_before = {n: SecretStore(lab_dir).get(n).reveal() for n in SecretStore(lab_dir).names()}
    assert cli("down", timeout=180).returncode == 0
    rng = random.Random(15)  # reproducible kill points  # noqa: S311
    for _ in range(2):
        killed_at_random(cli, ["up"], rng, 2.0, 20.0)
    done = cli("up")
    assert done.returncode == 0, done.stdout + done.stderr
    assert cli("status").returncode == 0
    store = SecretStore(lab_dir)
    # Secrets generated before and during the killed runs stay what they were.
    assert {n: store.get(n).reveal() for n in secrets_before} == secrets_before
    state = json.loads((lab_dir / "state.json").read_text())
    assert sorted(state["pods"]) == sorted(
        f"{c}-{i}" for c, n in state["replicas"].items() for i in range(n))
    # One supervised program per program file, each running once.
    files = sorted(p.stem for p in (lab_dir / "supervisor.d").glob("*.conf"))
    running = Supervisor(lab_dir, NAME).all_info()
    assert sorted(running) == files
    assert {info["statename"] for info in running.values()} == {"RUNNING"}
    supervisords = [pid for pid, cmd in lab_processes(lab_dir) if "supervisord_main" in cmd]
    assert len(supervisords) == 1, supervisords


def test_a_scale_killed_at_random_points_converges_when_run_again(
        cli: Cli, lab_dir: Path) -> None:
    rng = random.Random(21)  # reproducible kill points  # noqa: S311
    for _ in range(2):
        killed_at_random(cli, ["scale", "galera", "5"], rng, 2.0, 15.0)
    done = cli("scale", "galera", "5")
    assert done.returncode == 0, done.stdout + done.stderr
    state = json.loads((lab_dir / "state.json").read_text())
    assert state["replicas"]["galera"] == 5
    assert sorted(p for p in state["pods"] if p.startswith("galera-")) == [
        f"galera-{i}" for i in range(5)]
    assert cli("status").returncode == 0
    back = cli("scale", "galera", "3")
    assert back.returncode == 0, back.stdout + back.stderr
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    assert f"{NAME}-galera-3" not in netns.stdout
    assert f"{NAME}-galera-4" not in netns.stdout


def test_no_secret_in_output_logs_or_command_lines(cli: Cli, lab_dir: Path) -> None:
    secrets = [v for v in SecretStore(lab_dir).values() if len(v) >= 16]
    assert secrets
    store = SecretStore(lab_dir).path
    assert stat.S_IMODE(store.stat().st_mode) == 0o600

    leaks = [f"command output #{i}" for i, text in enumerate(cli.printed)
             for s in secrets if s in text]
    for path in lab_dir.rglob("*"):
        if not path.is_file() or path.is_symlink() or path == store:
            continue
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        if not any(s in text for s in secrets):
            continue
        is_log = path.suffix == ".log" or "log" in path.relative_to(lab_dir).parts
        if is_log:
            leaks.append(f"log file {path}")
        elif readable_by_others(path, lab_dir):
            leaks.append(f"{path} holds a secret and other users can read it")
    for pid, cmdline in lab_processes(lab_dir):
        if any(s in cmdline for s in secrets):
            leaks.append(f"command line of PID {pid}")
    assert not leaks, "secret found in: " + ", ".join(leaks)


def test_down_leaves_nothing_behind(cli: Cli, lab_dir: Path) -> None:
    done = cli("down", timeout=180)
    assert done.returncode == 0, done.stderr
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    assert not [line for line in netns.stdout.splitlines() if line.startswith(f"{NAME}-")]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                           check=True)
    assert f" {NAME}-" not in links.stdout
    assert not list(Path("/etc/netns").glob(f"{NAME}-*"))
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(lab_dir) not in mounts
    assert f"/run/netns/{NAME}-" not in mounts
    assert lab_processes(lab_dir) == []
    again = cli("down", timeout=180)
    assert again.returncode == 0, "a second down must be harmless"
