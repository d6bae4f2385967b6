"""The local lab against real daemons: up, idempotency, scaling, failback, clean teardown.

Needs root, Linux network namespaces and the Debian packages of the infrastructure tier. The
lab here is called ``ltest`` on 172.31.93.0/24, so it can run next to other labs, and its state
lives in a temporary directory. Run with ``pytest -m lab tests/lab/test_local_lab.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oaas_lab import config
from oaas_lab.adapters import iproute, shell, sql
from oaas_lab.backends.local.lab import LocalLab
from oaas_lab.components.galera import rejoin_method
from oaas_lab.credentials import GALERA_APP_DATABASE as APP_DATABASE
from oaas_lab.credentials import GALERA_APP_SECRET as APP_SECRET
from oaas_lab.credentials import GALERA_APP_USER as APP_USER
from oaas_lab.errors import QuorumError, UserError
from oaas_lab.kernel.lab import PodState
from oaas_lab.kernel.results import CheckResult, failed, passed
from oaas_lab.kernel.wait import wait_for
from oaas_lab.secrets import SecretStore

pytestmark = pytest.mark.lab

NAME = "ltest"
SUBNET = "172.31.93.0/24"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("the local lab tests need root (network namespaces, bridges)")
    state_dir = tmp_path_factory.mktemp("labstate")
    # The infrastructure tier only: the OpenStack tier has scenarios of its own in features/.
    cfg = config.load(overrides={"name": NAME, "local.subnet": SUBNET, "local.openstack": False,
                                 "state_dir": str(state_dir)}, environ={})
    the_lab = LocalLab(cfg)
    events: list[tuple[str, str]] = []
    try:
        report = the_lab.up(progress=lambda c, m, _e: events.append((c, m)))
        the_lab.first_report = report  # type: ignore[attr-defined]
        the_lab.events = events  # type: ignore[attr-defined]
        yield the_lab
    finally:
        the_lab.down()


def ready(lab: LocalLab, component: str, timeout: float = 120.0) -> CheckResult:
    return wait_for(lambda: lab.check(component), timeout=timeout, interval=1.0)


def test_up_brings_every_component_up_and_every_check_passes(lab):
    report = lab.first_report
    assert set(report.ready_seconds) == {"etcd", "galera", "haproxy", "rabbitmq", "memcached"}
    assert set(report.changed) == set(report.ready_seconds)
    components = {c for c, _m in lab.events}
    assert components >= set(report.ready_seconds)
    rows = lab.status()
    for row in rows:
        assert row.ready.ok, str(row.ready)
        assert len(row.pods) == row.desired
        assert all(p.state is PodState.RUNNING for p in row.pods), row.pods
    galera_nodes = [p.node for p in lab.members("galera")]
    assert galera_nodes == ["controller-1", "controller-2", "controller-3"]


def test_a_pod_has_its_own_hostname_hosts_file_and_no_way_out(lab):
    done = lab.exec("rabbitmq-1", ["hostname"])
    assert done.stdout.strip() == "rabbitmq-1"
    routes = lab.exec("galera-0", ["ip", "route", "show"]).stdout
    assert "default" not in routes
    assert SUBNET.split("/", maxsplit=1)[0] in routes
    resolv = lab.exec("etcd-0", ["cat", "/etc/resolv.conf"]).stdout
    assert "nameserver 127.0.0.1" in resolv
    hosts = lab.exec("etcd-0", ["getent", "hosts", "galera"])
    assert hosts.stdout.split()[0] == lab.service_address("galera")
    # The front's virtual address, which keepalived keeps on one HAProxy member.
    assert lab.service_address("galera") == SUBNET.replace("0/24", "9")


def test_second_up_changes_nothing(lab):
    before = Path(lab.lab_dir / "state.json").read_text()
    pids = lab.supervisor.pids([p.name for p in lab.members("galera")])
    report = lab.up()
    assert report.changed == ()
    assert Path(lab.lab_dir / "state.json").read_text() == before
    assert lab.supervisor.pids([p.name for p in lab.members("galera")]) == pids


def test_up_starts_a_rabbitmq_member_an_interrupted_up_left_stopped(lab):
    # What an `up` killed between `join_cluster` and `start_app` leaves behind: a member whose
    # Erlang node runs while its broker does not.
    assert lab.exec("rabbitmq-2", ["rabbitmqctl", "-q", "stop_app"], timeout=60).ok
    assert not lab.check("rabbitmq").ok
    lab.up()
    assert lab.check("rabbitmq").ok


def test_even_count_is_refused_before_anything_changes(lab):
    before = Path(lab.lab_dir / "state.json").read_text()
    netns = sorted(shell.run(["ip", "netns", "list"]).stdout.split())
    with pytest.raises(QuorumError, match="even"):
        lab.scale("galera", 4)
    with pytest.raises(QuorumError, match="even"):
        lab.scale("rabbitmq", 2)
    assert Path(lab.lab_dir / "state.json").read_text() == before
    assert sorted(shell.run(["ip", "netns", "list"]).stdout.split()) == netns


def test_a_second_lab_on_the_same_subnet_is_refused_before_anything_changes(lab, tmp_path):
    cfg = config.load(overrides={"name": "lclash", "local.subnet": SUBNET,
                                 "local.openstack": False, "state_dir": str(tmp_path)},
                      environ={})
    with pytest.raises(UserError, match=f"{NAME}-br"):
        LocalLab(cfg).up()
    assert "lclash-" not in shell.run(["ip", "-o", "link", "show"]).stdout
    assert "lclash-" not in shell.run(["ip", "netns", "list"]).stdout
    assert not (tmp_path / "lclash" / "state.json").exists()


def test_killed_galera_member_comes_back_by_itself_and_rejoins(lab):
    before = lab.supervisor.pids(["galera-1"])["galera-1"]
    lab.kill("galera-1")

    def restarted() -> CheckResult:
        now = lab.supervisor.pids(["galera-1"]).get("galera-1")
        if now and now != before:
            return passed("restart", f"new pid {now}")
        return failed("restart", "not restarted yet")

    wait_for(restarted, timeout=30.0, interval=0.5)
    result = ready(lab, "galera")
    assert result.evidence["members"]["galera-1"]["wsrep_cluster_size"] == "3"
    log = Path(lab.log_path("galera-1")).read_text(errors="replace")
    rejoin = log[log.rindex("galera-entrypoint: recovered position"):]
    assert "joining the cluster" in rejoin
    # Whether any write-set was missed depends on timing here; what must never happen is a
    # full copy. The next test makes the member miss writes on purpose.
    assert rejoin_method(log) != "SST"


def test_a_member_that_missed_writes_catches_up_by_ist(lab):
    password = SecretStore(lab.lab_dir).get(APP_SECRET)
    lab.stop("galera-2")
    marker = f"missed-{os.getpid()}"
    with sql.connect(lab.service_address("galera"), user=APP_USER, password=password,
                     database=APP_DATABASE) as conn:
        sql.query(conn, "CREATE TABLE IF NOT EXISTS lab_ist (id INT AUTO_INCREMENT "
                        "PRIMARY KEY, note VARCHAR(64))")
        for _ in range(20):
            sql.query(conn, "INSERT INTO lab_ist (note) VALUES (%s)", (marker,))
    lab.start("galera-2")
    ready(lab, "galera")
    assert rejoin_method(lab.logs("galera-2", lines=2000)) == "IST"
    with sql.connect(lab.address("galera-2"), user=APP_USER, password=password,
                     database=APP_DATABASE) as conn:
        rows = sql.query(conn, "SELECT COUNT(*) FROM lab_ist WHERE note = %s", (marker,))
    assert rows[0][0] == 20


def test_galera_recovers_unattended_after_every_member_was_down(lab):
    for pod in lab.members("galera"):
        lab.stop(pod.name)
    assert {p.state for p in lab.members("galera")} == {PodState.STOPPED}
    # Started in reverse order: the last member to leave has the highest seqno whatever the order.
    for pod in reversed(lab.members("galera")):
        lab.start(pod.name)
    result = ready(lab, "galera", timeout=180.0)
    assert {m["wsrep_cluster_size"] for m in result.evidence["members"].values()} == {"3"}
    last = Path(lab.log_path("galera-2")).read_text(errors="replace")
    assert "galera-2 bootstraps" in last[last.rindex("galera-entrypoint: election"):]
    ready(lab, "haproxy")


def test_stopped_pod_stays_stopped_until_started(lab):
    lab.stop("memcached-1")
    assert lab.members("memcached")[1].state is PodState.STOPPED
    assert not lab.check("memcached").ok
    lab.start("memcached-1")
    ready(lab, "memcached", timeout=30.0)


def reaches(lab: LocalLab, pod: str, peer: str) -> bool:
    return lab.exec(pod, ["ping", "-c", "1", "-W", "1", lab.address(peer)], timeout=10).ok


def test_a_cut_member_loses_its_peers_only_and_heal_removes_every_rule(lab):
    lab.cut("memcached-1", ["memcached-0"])
    try:
        assert not reaches(lab, "memcached-1", "memcached-0")
        assert not reaches(lab, "memcached-0", "memcached-1")
        # Only the named peers: the others, and the host, still get through.
        assert reaches(lab, "memcached-1", "etcd-0")
        assert shell.run(["ping", "-c", "1", "-W", "1", lab.address("memcached-1")],
                         check=False).ok
    finally:
        lab.heal("memcached-1")
    assert reaches(lab, "memcached-1", "memcached-0")
    rules = lab.exec("memcached-1", ["iptables", "-S", "OAAS-LAB-FAULT"]).stdout
    assert "-A " not in rules


def test_a_lossy_and_a_slow_link_are_healed(lab):
    lab.cut("memcached-1", ["memcached-0"], loss=0.5)
    lab.slow("memcached-1", 512)
    try:
        done = lab.exec("memcached-1", ["ping", "-c", "20", "-i", "0.05", "-W", "1",
                                        lab.address("memcached-0")], timeout=30)
        assert " 0% packet loss" not in done.stdout, done.stdout
        assert "100% packet loss" not in done.stdout, done.stdout
        qdisc = lab.exec("memcached-1", ["tc", "qdisc", "show", "dev", "eth0"]).stdout
        assert "tbf" in qdisc, qdisc
        assert "512Kbit" in qdisc, qdisc
    finally:
        lab.heal("memcached-1")
    assert "tbf" not in lab.exec("memcached-1", ["tc", "qdisc", "show", "dev", "eth0"]).stdout


def test_a_paused_member_answers_nothing_until_resumed(lab):
    lab.pause("memcached-1")
    try:
        assert not lab.check("memcached").ok
        pids = iproute.netns_pids(lab.naming.netns("memcached-1"))
        states = shell.run(["ps", "-o", "state=", "-p", ",".join(map(str, pids))]).stdout
        assert pids
        assert set(states.split()) == {"T"}, states
    finally:
        lab.resume("memcached-1")
    ready(lab, "memcached", timeout=30.0)


def front_holders(lab: LocalLab) -> list[str]:
    front = lab.service_address("galera")
    return [p.name for p in lab.members("haproxy")
            if f" {front}/" in lab.exec(p.name, ["ip", "-4", "-o", "addr"]).stdout]


def test_the_front_address_moves_when_its_haproxy_member_stops(lab):
    front = lab.service_address("galera")
    assert front == SUBNET.replace("0/24", "9")
    holders = front_holders(lab)
    assert len(holders) == 1, holders
    lab.stop(holders[0])
    try:
        moved = wait_for(lambda: passed("front", "moved") if front_holders(lab) not in
                         ([], holders) else failed("front", str(front_holders(lab))),
                         timeout=10.0, interval=0.2)
        assert moved.ok
        assert shell.run(["ping", "-c", "1", "-W", "1", front], check=False).ok
    finally:
        lab.start(holders[0])
    ready(lab, "haproxy", timeout=60.0)
    # No preemption: the member that came back leaves the address where it is.
    assert len(front_holders(lab)) == 1
    assert front_holders(lab) != holders


def test_losing_a_node_loses_its_pods_and_they_all_come_back(lab):
    hit = lab.kill_node("controller-2")
    assert hit == ["etcd-1", "galera-1", "haproxy-1", "memcached-1", "rabbitmq-1"]
    for component in ("etcd", "galera", "haproxy", "rabbitmq", "memcached"):
        ready(lab, component, timeout=180.0)


def haproxy_servers(lab: LocalLab, pod: str) -> list[str]:
    sock = lab.lab_dir / "pods" / pod / "run" / "admin.sock"
    done = shell.run(["socat", "stdio", f"unix-connect:{sock}"],
                     input_text="show servers state galera\n")
    rows = [ln.split() for ln in done.stdout.splitlines() if ln and not ln.startswith("#")]
    return sorted(r[3] for r in rows if len(r) > 3)


def test_galera_scales_out_and_in_and_haproxy_follows(lab):
    lab.scale("galera", 5)
    result = ready(lab, "galera")
    assert {m["wsrep_cluster_size"] for m in result.evidence["members"].values()} == {"5"}
    for proxy in ("haproxy-0", "haproxy-1"):
        assert haproxy_servers(lab, proxy) == [f"galera-{i}" for i in range(5)]
    ready(lab, "haproxy")
    lab.scale("galera", 3)
    result = ready(lab, "galera")
    assert {m["wsrep_cluster_size"] for m in result.evidence["members"].values()} == {"3"}
    for proxy in ("haproxy-0", "haproxy-1"):
        assert haproxy_servers(lab, proxy) == [f"galera-{i}" for i in range(3)]
    namespaces = shell.run(["ip", "netns", "list"]).stdout
    assert f"{NAME}-galera-3" not in namespaces
    assert f"{NAME}-galera-4" not in namespaces
    ready(lab, "haproxy")


def test_rabbitmq_scales_out_and_in(lab):
    lab.scale("rabbitmq", 5)
    result = ready(lab, "rabbitmq")
    assert len(result.evidence["cluster_status"]["running_nodes"]) == 5
    lab.scale("rabbitmq", 3)
    result = ready(lab, "rabbitmq")
    assert sorted(result.evidence["cluster_status"]["disk_nodes"]) == [
        f"rabbit@rabbitmq-{i}" for i in range(3)]


def test_etcd_scales_out_and_in_through_its_membership_api(lab):
    lab.scale("etcd", 5)
    result = ready(lab, "etcd")
    assert all(len(m["members"]) == 5 for m in result.evidence["members"].values())
    lab.scale("etcd", 3)
    result = ready(lab, "etcd")
    assert sorted(result.evidence["members"]["etcd-0"]["members"]) == ["etcd-0", "etcd-1",
                                                                       "etcd-2"]


def lab_processes(lab: LocalLab) -> list[int]:
    """PIDs whose command line or working directory points into the lab's directory."""
    marker = str(lab.lab_dir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            cwd = os.readlink(entry / "cwd").encode()
        except OSError:
            continue
        if marker in cmdline or cwd.startswith(marker):
            found.append(int(entry.name))
    return found


def alive(pid: str) -> bool:
    """True for a running process; a killed one may linger as a zombie until its reaper runs."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_down_leaves_nothing_behind(lab):
    supervisord = lab.supervisor.pid()
    assert supervisord is not None
    inside = []
    for netns in shell.run(["ip", "netns", "list"]).stdout.split():
        if netns.startswith(f"{NAME}-"):
            inside += shell.run(["ip", "netns", "pids", netns]).stdout.split()
    assert len(inside) >= 14  # at least one daemon per pod was running
    lab.down()
    assert not Path(f"/proc/{supervisord}").exists()
    assert [pid for pid in inside if alive(pid)] == []
    assert [n for n in shell.run(["ip", "netns", "list"]).stdout.split()
            if n.startswith(f"{NAME}-")] == []
    links = shell.run(["ip", "-o", "link", "show"]).stdout
    assert f" {NAME}-" not in links
    assert list(Path("/etc/netns").glob(f"{NAME}-*")) == []
    mounts = Path("/proc/self/mounts").read_text()
    assert f"/run/netns/{NAME}-" not in mounts
    assert lab_processes(lab) == []
    lab.down()  # a second down is harmless
