"""Configuration rendering of the local lab's daemons and supervisor (no root needed)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from oaas_lab import components
from oaas_lab.adapters import shell
from oaas_lab.backends.local.daemons import driver
from oaas_lab.backends.local.daemons.base import PodContext
from oaas_lab.backends.local.daemons.etcd import member_ids
from oaas_lab.backends.local.daemons.galera import parse_wsrep_rows, render_my_cnf
from oaas_lab.backends.local.daemons.galera_entrypoint import (
    choose_bootstrap,
    fresh_reports,
    parse_recovered,
    read_grastate,
)
from oaas_lab.backends.local.daemons.galera_health import verdict
from oaas_lab.backends.local.daemons.haproxy import (
    HaproxyDriver,
    render_haproxy_cfg,
    render_keepalived_conf,
)
from oaas_lab.backends.local.daemons.openstack import fronted
from oaas_lab.backends.local.daemons.rabbitmq import parse_cluster_status, ra_dirs
from oaas_lab.backends.local.pods import PodRecord
from oaas_lab.backends.local.supervisor import Program, render_program
from oaas_lab.secrets import SecretStore


def members(component: str, count: int) -> tuple[PodRecord, ...]:
    return tuple(
        PodRecord(f"{component}-{i}", component, i, f"controller-{i % 3 + 1}", f"10.7.0.{10 + i}")
        for i in range(count)
    )


@pytest.fixture
def ctx_for(tmp_path: Path):
    secrets = SecretStore(tmp_path)

    def build(component: str, count: int = 3, ordinal: int = 0) -> PodContext:
        pods = members(component, count)
        return PodContext(pod=pods[ordinal], members=pods, lab_name="t",
                          pod_dir=tmp_path / "pods" / pods[ordinal].name, secrets=secrets,
                          python="/venv/bin/python", front_address="10.7.0.9",
                          others={c: members(c, 3 if c != "haproxy" else 2)
                                  for c in ("galera", "haproxy", "rabbitmq", "memcached")})

    return build


def test_netns_wrapper_execs_down_to_the_daemon():
    argv = shell.in_netns("t-etcd-0", ["etcd", "--name", "x"], hostname="etcd-0")
    assert argv[:4] == ["ip", "netns", "exec", "t-etcd-0"]
    assert "unshare" in argv
    assert "--uts" in argv
    assert argv[-3:] == ["etcd", "--name", "x"]
    script = argv[argv.index("-c") + 1]
    assert "exec" in script


def test_galera_my_cnf_lists_every_member_and_uses_rsync_sst(ctx_for):
    text = render_my_cnf(ctx_for("galera", 5, ordinal=2))
    assert "wsrep_cluster_address = gcomm://10.7.0.10,10.7.0.11,10.7.0.12,10.7.0.13,10.7.0.14" \
        in text
    assert "wsrep_node_address = 10.7.0.12" in text
    assert "rsync" in text
    assert "pc.recovery=TRUE" in text


def test_secret_bearing_files_are_private_and_never_on_command_lines(ctx_for):
    for component, drv in ((c.name, driver(c.name)) for c in components.catalogue()):
        ctx = ctx_for(component)
        files = drv.files(ctx)
        secret_values = set(ctx.secrets.values())  # generated while rendering
        assert secret_values or component in ("etcd", "memcached", "haproxy")
        for rendered in files:
            if any(v in rendered.content for v in secret_values):
                assert rendered.mode & 0o077 == 0, f"{rendered.path} holds a secret"
        for program in drv.programs(ctx):
            line = " ".join(program.argv) + " " + " ".join(program.env.values())
            assert not any(v in line for v in secret_values), program.name


def test_rabbitmq_node_name_follows_the_pod_hostname(ctx_for):
    env = driver("rabbitmq").exec_env(ctx_for("rabbitmq", 3, ordinal=1))
    assert env["RABBITMQ_NODENAME"] == "rabbit@rabbitmq-1"
    assert env["HOME"].endswith("rabbitmq-1/home")


def test_rabbitmq_repairs_ra_registrations_before_the_broker_starts(ctx_for):
    ctx = ctx_for("rabbitmq", 3, ordinal=1)
    rabbit = driver("rabbitmq")
    argv = rabbit.programs(ctx)[0].argv
    script = next(f for f in rabbit.files(ctx) if f.path.name == "ra-registrations.escript")
    # sh runs the repair, then execs the broker: supervisord's PID stays the broker's own.
    assert argv[:2] == ("/bin/sh", "-c")
    assert argv[2].index("escript") < argv[2].index("exec /usr/lib/rabbitmq/bin/rabbitmq-server")
    assert argv[3] == str(script.path)
    quorum = ctx.path("data", "mnesia", "rabbit@rabbitmq-1", "quorum", "rabbit@rabbitmq-1")
    assert argv[4:] == tuple(ra_dirs(ctx))
    assert str(quorum) in argv[4:]


def ra_replica(system_dir: Path, uid: str, name: str) -> None:
    (system_dir / uid).mkdir(parents=True)
    (system_dir / uid / "config").write_text(
        f"#{{id => {{'{name}', 'rabbit@rabbitmq-1'}}, uid => <<\"{uid}\">>}}.\n")


def registered(system_dir: Path) -> str:
    done = shell.run(["erl", "-noshell", "-eval",
                      f'{{ok, T}} = dets:open_file(t, [{{file, "{system_dir}/names.dets"}}]), '
                      "io:format(\"~p\", [lists:sort(dets:match_object(T, '_'))]), halt()."])
    return done.stdout


@pytest.mark.skipif(shutil.which("escript") is None, reason="needs Erlang (rabbitmq-server)")
def test_ra_registration_lost_by_a_kill_is_restored_from_the_replica(ctx_for, tmp_path):
    script = next(f for f in driver("rabbitmq").files(ctx_for("rabbitmq"))
                  if f.path.name == "ra-registrations.escript")
    (tmp_path / "repair.escript").write_text(script.content)
    system = tmp_path / "quorum"
    # names.dets lost the record of q (a SIGKILL within Ra's 500 ms save window) ...
    ra_replica(system, "2F_QAAAA", "%2F_q")
    # ... while r, claimed by two replicas, is ambiguous and must be left alone.
    ra_replica(system, "2F_RBBBB", "%2F_r")
    ra_replica(system, "2F_RCCCC", "%2F_r")
    done = shell.run(["escript", str(tmp_path / "repair.escript"), str(system),
                      str(tmp_path / "absent")])
    assert "re-registered %2F_q as 2F_QAAAA" in done.stdout
    assert registered(system) == "[{'%2F_q',<<\"2F_QAAAA\">>}]"
    # A second boot changes nothing.
    again = shell.run(["escript", str(tmp_path / "repair.escript"), str(system)])
    assert "re-registered" not in again.stdout


def test_haproxy_has_one_writer_and_backups():
    cfg = render_haproxy_cfg(members("galera", 3), "/run/admin.sock")
    servers = [ln.strip() for ln in cfg.splitlines() if ln.strip().startswith("server ")]
    assert servers[0] == "server galera-0 10.7.0.10:3306 check"
    assert all(s.endswith("backup") for s in servers[1:])
    assert "option httpchk" in cfg
    assert "port 9200" in cfg
    assert "on-marked-down shutdown-sessions" in cfg


def test_etcd_config_names_every_member_and_stays_off_the_command_line(ctx_for):
    ctx = ctx_for("etcd", 3, ordinal=1)
    rendered = driver("etcd").files(ctx)[0]
    config = yaml.safe_load(rendered.content)
    assert config["initial-cluster"] == ("etcd-0=http://10.7.0.10:2380,etcd-1=http://10.7.0.11:"
                                         "2380,etcd-2=http://10.7.0.12:2380")
    assert config["initial-cluster-state"] == "new"
    # Membership lives in the file: a scale must not change (and so restart) the program.
    argv = driver("etcd").programs(ctx)[0].argv
    assert argv == ("etcd", "--config-file", str(rendered.path))


def test_etcd_member_added_to_a_running_cluster_joins_as_existing(ctx_for):
    ctx = ctx_for("etcd", 5, ordinal=3)
    (ctx.pod_dir.parent / "etcd-0" / "data" / "member").mkdir(parents=True)
    config = yaml.safe_load(driver("etcd").files(ctx)[0].content)
    assert config["initial-cluster-state"] == "existing"
    assert config["initial-cluster"].count("=http://") == 5


def test_etcd_member_ids_are_hex_and_unstarted_members_keyed_by_url():
    listing = ('{"members": [{"ID": 1234, "name": "etcd-0", "peerURLs": ["http://a:2380"]},'
               '{"ID": 255, "name": "", "peerURLs": ["http://b:2380"]}]}')
    assert member_ids(listing) == {"etcd-0": "4d2", "http://b:2380": "ff"}


def test_supervisor_program_round_trips_its_command_line(tmp_path):
    program = Program(name="x-0", argv=("sh", "-c", 'hostname "$0" && exec "$@"', "x-0", "50%"),
                      log=tmp_path / "x.log", env={"A": "1"})
    text = render_program(program)
    command = next(ln for ln in text.splitlines() if ln.startswith("command="))
    assert shlex.split(command[len("command="):].replace("%%", "%")) == list(program.argv)
    assert "autorestart=true" in text


def test_entrypoint_elects_highest_seqno_then_lowest_ordinal():
    reports = {"galera-0": {"seqno": 10, "ordinal": 0}, "galera-1": {"seqno": 12, "ordinal": 1},
               "galera-2": {"seqno": 12, "ordinal": 2}}
    assert choose_bootstrap(reports) == "galera-1"
    fresh = {f"galera-{i}": {"seqno": -1, "ordinal": i} for i in range(3)}
    assert choose_bootstrap(fresh) == "galera-0"


def test_entrypoint_parses_recovered_position_and_grastate(tmp_path):
    log = "2026 [Note] WSREP: Recovered position: 463851a0-eaf7-11f1-a5b9-8bdbcf28f729:32\n"
    assert parse_recovered(log) == ("463851a0-eaf7-11f1-a5b9-8bdbcf28f729", 32)
    assert parse_recovered("nothing here") is None
    (tmp_path / "grastate.dat").write_text(
        "# GALERA saved state\nversion: 2.1\nuuid:    abc\nseqno:   -1\nsafe_to_bootstrap: 0\n")
    state = read_grastate(tmp_path)
    assert state["seqno"] == "-1"
    assert state["safe_to_bootstrap"] == "0"


def test_health_endpoint_verdict():
    assert verdict({"wsrep_cluster_status": "Primary", "wsrep_local_state": "4"})[0] == 200
    assert verdict({"wsrep_cluster_status": "non-Primary", "wsrep_local_state": "4"})[0] == 503
    assert verdict({"wsrep_cluster_status": "Primary", "wsrep_local_state": "2"})[0] == 503
    assert verdict({})[0] == 503


def test_parsers_of_cli_output():
    assert parse_wsrep_rows("wsrep_cluster_size\t3\nwsrep_local_state\t4\n") == {
        "wsrep_cluster_size": "3", "wsrep_local_state": "4"}
    data = parse_cluster_status('warning line\n{"running_nodes": ["rabbit@r-0"]}')
    assert data["running_nodes"] == ["rabbit@r-0"]
    with pytest.raises(ValueError, match="no JSON"):
        parse_cluster_status("Error: unable to perform an operation")


def test_election_ignores_reports_that_stopped_refreshing(tmp_path):
    now = 1000.0
    (tmp_path / "galera-0.json").write_text('{"seqno": 5, "ordinal": 0, "time": 999.0}')
    (tmp_path / "galera-1.json").write_text('{"seqno": 9, "ordinal": 1, "time": 700.0}')
    (tmp_path / "galera-2.json").write_text("not json")
    got = fresh_reports(tmp_path, ["galera-0", "galera-1", "galera-2"], now)
    assert list(got) == ["galera-0"]


def test_provisioning_sql_carries_hashes_not_passwords() -> None:
    from oaas_lab.backends.local.daemons.galera import password_hash, provision_sql

    # MariaDB's own PASSWORD('abc'), so the server accepts the hash as that password.
    assert password_hash("abc") == "*0D3CED9BEC10A777AEC23CCC353A8C08A633045E"
    sql = provision_sql("root-secret-value", "app-secret-value")
    assert "root-secret-value" not in sql
    assert "app-secret-value" not in sql
    assert password_hash("app-secret-value") in sql


@pytest.mark.skipif(shutil.which("haproxy") is None,
                    reason="needs haproxy: apt-get install haproxy")
def test_haproxy_fronts_every_api_and_haproxy_accepts_the_file(tmp_path: Path) -> None:
    apis = {c: members(c, 2) for c in fronted()}
    cfg = render_haproxy_cfg(members("galera", 3), str(tmp_path / "admin.sock"), apis)
    for component, pods in apis.items():
        port = next(iter(components.by_name()[component].ports.values()))
        assert f"listen {component}\n    bind *:{port}\n" in cfg
        for pod in pods:
            assert f"server {pod.name} {pod.ip}:{port} check" in cfg
    # Only requests that never reached a member, or GETs, are replayed on another member.
    assert "http-request disable-l7-retry if !METH_GET" in cfg
    path = tmp_path / "haproxy.cfg"
    path.write_text(cfg)
    checked = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True,
                             check=False, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_keepalived_keeps_the_front_address_on_one_member_and_accepts_the_file(
    tmp_path: Path,
) -> None:
    pods = members("haproxy", 2)
    conf = render_keepalived_conf(pods[1], pods, "10.7.0.9")
    assert "state BACKUP\n    nopreempt" in conf
    assert "priority 199" in conf
    assert "unicast_src_ip 10.7.0.11" in conf
    assert "unicast_peer {\n        10.7.0.10\n    }" in conf
    assert "10.7.0.9/32 dev eth0" in conf
    path = tmp_path / "keepalived.conf"
    path.write_text(conf)
    checked = subprocess.run(["keepalived", "--config-test", "--use-file", str(path)],
                             capture_output=True, text=True, check=False, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_haproxy_pod_runs_keepalived_beside_haproxy(ctx_for) -> None:
    ctx = ctx_for("haproxy", 2, 0)
    driver = HaproxyDriver()
    names = [p.name for p in driver.programs(ctx)]
    assert names == ["haproxy-0", "haproxy-0-keepalived"]
    files = {f.path.name: f.content for f in driver.files(ctx)}
    assert "10.7.0.9/32" in files["keepalived.conf"]
