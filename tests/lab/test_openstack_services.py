"""The rendered configuration and WSGI wrappers run the real services (no lab needed).

A MariaDB and a memcached are started on 127.0.0.1 in a temporary directory; keystone is
synced, bootstrapped and served by gunicorn through its wrapper; then placement and glance
likewise. Every process is stopped by its own handle at the end.

These tests need the OpenStack packages in this interpreter (``import keystone``); without
them they are skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from oaas_lab.checks import CheckResult, failed, passed
from oaas_lab.openstack import clouds, config, guest
from oaas_lab.secrets import Secret, SecretStore
from oaas_lab.wait import wait_for


def _openstack_venv() -> Path | None:
    try:
        import keystone  # noqa: F401
    except ImportError:
        return None
    return Path(sys.executable).parent.parent


VENV = _openstack_venv()
if VENV is None:
    pytest.skip(
        "OpenStack packages not installed (import keystone failed; install them "
        "with -c oaas_lab/data/openstack-constraints-2026.2.txt)",
        allow_module_level=True,
    )

from oaas_lab.adapters import openstack as cloud  # noqa: E402 -- needs the SDK, checked above

pytestmark = pytest.mark.lab


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bin_(name: str) -> str:
    assert VENV is not None
    return str(VENV / "bin" / name)


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False,
                          **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{argv[:3]} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done  # type: ignore[no-any-return]


class Daemons:
    """The processes a test module started; stopped by their own handles, newest first."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: list[str],
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with open(self.logs / f"{name}.log", "ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    env=None if env is None else {**os.environ, **env})
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                # Each daemon leads its own process group: take its workers down with it.
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@dataclass
class Stack:
    """What the module fixture brought up."""

    root: Path
    daemons: Daemons
    store: SecretStore
    secrets: config.LabSecrets
    infra: config.Infra
    apis: config.Apis
    mysql_socket: Path
    keystone_url: str
    clouds_file: Path
    first_token_seconds: float
    ports: dict[str, int]
    rabbit_env: dict[str, str]
    conn: cloud.Connection = None
    served: set[str] = field(default_factory=set)
    cleanup: list[Path] = field(default_factory=list)

    def sql(self, statements: str) -> None:
        run(["mariadb", "--no-defaults", "-S", str(self.mysql_socket), "-u", "root"],
            input=statements)

    def database(self, service: str) -> None:
        password = self.secrets.database[service].reveal()
        lines = [f"CREATE USER IF NOT EXISTS '{service}'@'127.0.0.1' IDENTIFIED BY '{password}';"]
        for name in config.DATABASES[service]:
            lines.append(f"CREATE DATABASE IF NOT EXISTS {name};")
            lines.append(f"GRANT ALL ON {name}.* TO '{service}'@'127.0.0.1';")
        self.sql("\n".join(lines))

    def openstack(self, *args: str) -> str:
        return run([bin_("openstack"), "--os-cloud", clouds.CLOUD_NAME, *args],
                   env={**os.environ, "OS_CLIENT_CONFIG_FILE": str(self.clouds_file)}).stdout


def token_check(url: str, password: Secret) -> CheckResult:
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": password.reveal()}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
    }}
    try:
        reply = httpx.post(f"{url}/v3/auth/tokens", json=body, timeout=10)
    except httpx.HTTPError as exc:
        return failed("keystone token", type(exc).__name__)
    if reply.status_code != 201:
        return failed("keystone token", f"HTTP {reply.status_code}")
    return passed("keystone token", "issued", token=reply.headers["X-Subject-Token"])


def http_ok(url: str, proc: subprocess.Popen[bytes] | None = None) -> CheckResult:
    if proc is not None and proc.poll() is not None:
        return failed(url, f"server exited {proc.returncode}", hint="read its log")
    try:
        reply = httpx.get(url, timeout=10)
    except httpx.HTTPError as exc:
        return failed(url, type(exc).__name__)
    if reply.status_code >= 400:
        return failed(url, f"HTTP {reply.status_code}")
    return passed(url, f"HTTP {reply.status_code}", body=reply.text)


def exited(result: CheckResult) -> bool:
    return "server exited" in result.detail


def gunicorn(stack: Stack, service: str, conf_dir: Path, files: list[Path],
             port: int) -> subprocess.Popen[bytes]:
    config.write([config.wsgi_wrapper(service, files)], conf_dir)
    argv = config.gunicorn_argv(VENV or Path(), conf_dir, service, f"127.0.0.1:{port}",
                                workers=1)
    return stack.daemons.start(service, argv)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("openstack")
    daemons = Daemons(root)
    stack: Stack | None = None
    try:
        stack = _bring_up(root, daemons)
        yield stack
    finally:
        daemons.stop_all()
        for path in stack.cleanup if stack is not None else []:
            shutil.rmtree(path, ignore_errors=True)


def _bring_up(root: Path, daemons: Daemons) -> Stack:
    data, sock = root / "mysql", root / "mysql.sock"
    run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
         "--auth-root-authentication-method=socket", "--skip-test-db"])
    ports = {name: free_port() for name in (
        "db", "memcached", "keystone", "glance", "placement", "nova", "neutron", "horizon",
        "amqp", "epmd", "erlang", "novnc")}
    db_port, mc_port, ks_port = ports["db"], ports["memcached"], ports["keystone"]
    daemons.start("mariadb", [
        "mariadbd", "--no-defaults", f"--datadir={data}", f"--socket={sock}",
        f"--port={db_port}", "--bind-address=127.0.0.1", "--user=root", "--skip-name-resolve",
        f"--pid-file={root / 'mysql.pid'}", "--innodb-buffer-pool-size=64M",
    ])
    daemons.start("memcached", ["memcached", "-l", "127.0.0.1", "-p", str(mc_port), "-U", "0",
                                "-u", "root", "-m", "64"])

    def mysql_up() -> CheckResult:
        done = subprocess.run(["mariadb", "--no-defaults", "-S", str(sock), "-u", "root",
                               "-e", "SELECT 1"], capture_output=True, timeout=10, check=False)
        return passed("mariadb", "up") if done.returncode == 0 else failed("mariadb", "down")

    store = SecretStore(root)
    secrets = config.LabSecrets.from_store(store)
    rabbit_env = start_rabbitmq(root, daemons, ports, secrets.rabbitmq)
    wait_for(mysql_up, timeout=60)
    infra = config.Infra(database=f"127.0.0.1:{db_port}",
                         rabbitmq=[f"127.0.0.1:{ports['amqp']}"],
                         memcached=[f"127.0.0.1:{mc_port}"])
    ks_url = f"http://127.0.0.1:{ks_port}"
    apis = config.Apis(keystone=ks_url, glance=f"http://127.0.0.1:{ports['glance']}",
                       placement=f"http://127.0.0.1:{ports['placement']}",
                       nova=f"http://127.0.0.1:{ports['nova']}",
                       neutron=f"http://127.0.0.1:{ports['neutron']}",
                       novncproxy="http://127.0.0.1:6080")
    stack = Stack(root, daemons, store, secrets, infra, apis, sock, ks_url,
                  root / "clouds.yaml", 0.0, ports, rabbit_env)

    # keystone: database, configuration, shared fernet keys, bootstrap, then gunicorn.
    stack.database("keystone")
    conf_dir = root / "keystone"
    fernet, creds = conf_dir / "fernet-keys", conf_dir / "credential-keys"
    conf = config.write([config.keystone_conf(infra, secrets, fernet_keys=fernet,
                                              credential_keys=creds)], conf_dir)[0]
    config.write(config.fernet_key_files(store.get("keystone_fernet_1", "fernet_key"),
                                         store.get("keystone_fernet_0", "fernet_key")), fernet)
    fernet.chmod(0o700)
    manage = [bin_("keystone-manage"), "--config-file", str(conf)]
    run([*manage, "db_sync"])
    run([*manage, "credential_setup", "--keystone-user", "root", "--keystone-group", "root"])
    run([*manage, "bootstrap", "--bootstrap-admin-url", f"{ks_url}/v3",
         "--bootstrap-internal-url", f"{ks_url}/v3", "--bootstrap-public-url", f"{ks_url}/v3",
         "--bootstrap-region-id", apis.region],
        env={**os.environ, "OS_BOOTSTRAP_PASSWORD": secrets.admin.reveal()})
    started = time.monotonic()
    gunicorn(stack, "keystone", conf_dir, [conf], ks_port)
    wait_for(lambda: token_check(ks_url, secrets.admin), timeout=120)
    stack.first_token_seconds = time.monotonic() - started
    clouds.write_clouds(root, ks_url, secrets.admin, region=apis.region)
    stack.conn = cloud.connect(clouds_file=stack.clouds_file)
    wait_for(lambda: port_open(ports["amqp"]), timeout=90)
    return stack


def port_open(port: int) -> CheckResult:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError as exc:
        return failed(f"port {port}", str(exc))
    return passed(f"port {port}", "open")


def start_rabbitmq(root: Path, daemons: Daemons, ports: dict[str, int],
                   password: Secret) -> dict[str, str]:
    """A one-node RabbitMQ on loopback with its own epmd; the ``openstack`` user from the file."""
    base = root / "rabbitmq"
    config.write([config.ConfigFile("rabbitmq.conf", "\n".join([
        f"default_user = {config.RABBIT_USER}", f"default_pass = {password.reveal()}",
        f"listeners.tcp.default = 127.0.0.1:{ports['amqp']}", "loopback_users = none", ""]))],
        base)
    (base / "enabled_plugins").write_text("[].\n")
    (base / "home").mkdir()
    env = {
        "HOME": str(base / "home"), "ERL_EPMD_PORT": str(ports["epmd"]),
        "RABBITMQ_NODENAME": "oaastest@localhost", "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(ports["amqp"]), "RABBITMQ_DIST_PORT": str(ports["erlang"]),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"), "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
    }
    daemons.start("epmd", ["epmd", "-port", str(ports["epmd"]), "-address", "127.0.0.1"])
    daemons.start("rabbitmq", ["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=env)
    return env


def register(stack: Stack, service: str) -> None:
    """The service's database, keystone user and catalogue entry, as the lab's bootstrap does."""
    stack.database(service)
    cloud.ensure_service_user(stack.conn, service, stack.secrets.service[service])
    kind, url, description = stack.apis.catalogue()[service]
    cloud.ensure_endpoint(stack.conn, service, kind, url, region=stack.apis.region,
                          description=description)
    # A connection keeps the catalogue of its first token: take a new one to see the service.
    stack.conn = cloud.connect(clouds_file=stack.clouds_file)


def test_keystone_issues_a_token_through_its_wrapper(stack: Stack) -> None:
    result = token_check(stack.keystone_url, stack.secrets.admin)
    assert result.ok, result
    token = str(result.evidence["token"])
    check = httpx.get(f"{stack.keystone_url}/v3/auth/tokens",
                      headers={"X-Auth-Token": token, "X-Subject-Token": token}, timeout=10)
    assert check.status_code == 200
    assert check.json()["token"]["user"]["name"] == "admin"
    print(f"keystone: first token {stack.first_token_seconds:.1f}s after gunicorn started")


def test_a_second_member_validates_the_first_members_tokens(stack: Stack) -> None:
    # Same configuration, same fernet keys: the way two keystone pods share a lab.
    port = free_port()
    proc = gunicorn(stack, "keystone", stack.root / "keystone",
                    [stack.root / "keystone" / "keystone.conf"], port)
    other = f"http://127.0.0.1:{port}"
    wait_for(lambda: http_ok(f"{other}/v3", proc), timeout=120, fatal=exited)
    token = str(token_check(stack.keystone_url, stack.secrets.admin).evidence["token"])
    check = httpx.get(f"{other}/v3/auth/tokens",
                      headers={"X-Auth-Token": token, "X-Subject-Token": token}, timeout=10)
    assert check.status_code == 200


def test_openstack_cli_reads_the_clouds_yaml(stack: Stack) -> None:
    assert (stack.clouds_file.stat().st_mode & 0o777) == 0o600
    out = stack.openstack("catalog", "list", "-f", "json")
    assert "identity" in {entry["Type"] for entry in json.loads(out)}
    token = stack.openstack("token", "issue", "-f", "value", "-c", "id").strip()
    assert len(token) > 100


def test_sdk_adapter_issues_a_token(stack: Stack) -> None:
    token = cloud.issue_token(stack.conn)
    assert len(token.reveal()) > 100
    assert token.reveal() not in repr(token)


def test_bootstrap_is_idempotent(stack: Stack) -> None:
    first = cloud.ensure_endpoint(stack.conn, "placement", "placement", stack.apis.placement)
    again = cloud.ensure_endpoint(stack.conn, "placement", "placement", stack.apis.placement)
    assert first == again
    users = [cloud.ensure_service_user(stack.conn, "glance", stack.secrets.service["glance"])
             for _ in range(2)]
    assert users[0] == users[1]


def serve_placement(stack: Stack) -> None:
    """Placement up behind its wrapper (once per module: nova's tests need it too)."""
    if "placement" in stack.served:
        return
    register(stack, "placement")
    conf_dir = stack.root / "placement"
    conf = config.write([config.placement_conf(stack.infra, stack.apis, stack.secrets)],
                        conf_dir)[0]
    run([bin_("placement-manage"), "--config-file", str(conf), "db", "sync"])
    proc = gunicorn(stack, "placement", conf_dir, [conf], stack.ports["placement"])
    wait_for(lambda: http_ok(stack.apis.placement + "/", proc), timeout=120, fatal=exited)
    stack.served.add("placement")


def test_placement_serves_through_its_wrapper(stack: Stack) -> None:
    serve_placement(stack)
    result = http_ok(stack.apis.placement + "/")
    assert "versions" in json.loads(str(result.evidence["body"]))
    token = cloud.issue_token(stack.conn).reveal()
    providers = httpx.get(f"{stack.apis.placement}/resource_providers", timeout=10, headers={
        "X-Auth-Token": token, "OpenStack-API-Version": "placement 1.39"})
    assert providers.status_code == 200, providers.text
    assert providers.json() == {"resource_providers": []}


def serve_glance(stack: Stack) -> None:
    """Glance up behind its wrapper, once per module."""
    if "glance" in stack.served:
        return
    register(stack, "glance")
    conf_dir = stack.root / "glance"
    conf = config.write([config.glance_api_conf(
        stack.infra, stack.apis, stack.secrets, venv=VENV or Path(),
        images=stack.root / "images", state=stack.root / "glance-state")], conf_dir)[0]
    run([bin_("glance-manage"), "--config-file", str(conf), "db_sync"])
    proc = gunicorn(stack, "glance", conf_dir, [conf], stack.ports["glance"])
    wait_for(lambda: http_ok(stack.apis.glance + "/versions", proc), timeout=120, fatal=exited)
    stack.served.add("glance")


def test_glance_stores_and_lists_an_image(stack: Stack, tmp_path: Path) -> None:
    serve_glance(stack)
    blob = tmp_path / "disk.raw"
    blob.write_bytes(bytes(range(256)) * 4096)
    image = cloud.upload_image(stack.conn, "oaas-test-raw", blob, disk_format="raw",
                               properties={"oaas_lab": "test"})
    assert image.status == "active"
    assert image.size == blob.stat().st_size
    assert image.checksum == hashlib.md5(blob.read_bytes()).hexdigest()  # noqa: S324
    assert image.properties.get("oaas_lab") == "test"
    assert image.id in {i.id for i in cloud.list_images(stack.conn)}
    # The same call again finds the image instead of uploading a second one.
    assert cloud.upload_image(stack.conn, "oaas-test-raw", blob, disk_format="raw").id == image.id
    cloud.delete_image(stack.conn, image.id)
    assert image.id not in {i.id for i in cloud.list_images(stack.conn)}


def serve_nova(stack: Stack) -> None:
    """nova api (wrapper), conductor, scheduler and noVNC proxy up, once per module."""
    if "nova" in stack.served:
        return
    register(stack, "nova")
    serve_placement(stack)  # conductor and scheduler refuse to start without placement
    conf_dir = stack.root / "nova"
    conf_path = conf_dir / "nova.conf"
    pod = config.NovaHost(my_ip="127.0.0.1", host="nova-api-0", state=stack.root / "nova-state",
                          config_path=conf_path, venv=VENV or Path(),
                          novncproxy_port=stack.ports["novnc"])
    config.write([config.nova_conf(stack.infra, stack.apis, stack.secrets, pod)], conf_dir)
    manage = [bin_("nova-manage"), "--config-file", str(conf_path)]
    run([*manage, "api_db", "sync"])
    run([*manage, "cell_v2", "map_cell0"])
    run([*manage, "cell_v2", "create_cell", "--name", "cell1"])
    run([*manage, "db", "sync"])
    paste = (VENV or Path()) / "etc" / "nova" / "api-paste.ini"
    proc = gunicorn(stack, "nova-api", conf_dir, [paste, conf_path], stack.ports["nova"])
    result = wait_for(lambda: http_ok(stack.apis.nova + "/v2.1", proc), timeout=180,
                      fatal=exited)
    assert "version" in json.loads(str(result.evidence["body"]))
    flavor = cloud.ensure_flavor(stack.conn, "oaas.tiny", ram_mib=256, vcpus=1, disk_gib=1)
    assert cloud.ensure_flavor(stack.conn, "oaas.tiny", ram_mib=256, vcpus=1,
                               disk_gib=1) == flavor

    # conductor and scheduler over the real RabbitMQ, and the noVNC websocket proxy.
    procs = [stack.daemons.start(binary, [bin_(binary), "--config-file", str(conf_path)])
             for binary in ("nova-conductor", "nova-scheduler", "nova-novncproxy")]

    def services_up() -> CheckResult:
        gone = [p.args[0] for p in procs if p.poll() is not None]
        if gone:
            return failed("nova services", f"server exited: {gone}", hint="read their logs")
        up = {s.binary for s in cloud.compute_services(stack.conn) if s.state == "up"}
        wanted = {"nova-conductor", "nova-scheduler"}
        if wanted <= up:
            return passed("nova services", "up")
        return failed("nova services", f"up: {sorted(up)}")

    wait_for(services_up, timeout=180, interval=2, fatal=exited)
    wait_for(lambda: port_open(stack.ports["novnc"]), timeout=60)
    lite = httpx.get(f"http://127.0.0.1:{stack.ports['novnc']}/vnc_lite.html", timeout=10)
    assert lite.status_code == 200
    stack.served.add("nova")


def test_nova_api_conductor_scheduler_and_novncproxy(stack: Stack) -> None:
    serve_nova(stack)
    up = {s.binary for s in cloud.compute_services(stack.conn) if s.state == "up"}
    assert {"nova-conductor", "nova-scheduler"} <= up


def serve_neutron(stack: Stack) -> None:
    """neutron API (wrapper) and RPC server up, once per module."""
    if "neutron" in stack.served:
        return
    register(stack, "neutron")
    conf_dir = stack.root / "neutron"
    files = [conf_dir / "neutron.conf", conf_dir / "ml2_conf.ini"]
    config.write([
        config.neutron_conf(stack.infra, stack.apis, stack.secrets, venv=VENV or Path(),
                            state=stack.root / "neutron-state", config_files=files),
        config.ml2_conf(),
    ], conf_dir)
    run([bin_("neutron-db-manage"), "--config-file", str(files[0]), "--config-file",
         str(files[1]), "upgrade", "heads"])
    proc = gunicorn(stack, "neutron", conf_dir, files, stack.ports["neutron"])
    wait_for(lambda: http_ok(stack.apis.neutron + "/", proc), timeout=180, fatal=exited)
    token = cloud.issue_token(stack.conn).reveal()
    networks = httpx.get(f"{stack.apis.neutron}/v2.0/networks", timeout=30,
                         headers={"X-Auth-Token": token})
    assert networks.status_code == 200, networks.text
    assert networks.json() == {"networks": []}
    # Agents talk to the RPC server, a separate process when the API runs under WSGI.
    rpc = stack.daemons.start("neutron-rpc", [bin_("neutron-rpc-server"), "--config-file",
                                             str(files[0]), "--config-file", str(files[1])])

    def quorum_queues() -> CheckResult:
        if rpc.poll() is not None:
            return failed("queues", "server exited")
        done = subprocess.run(
            ["/usr/lib/rabbitmq/bin/rabbitmqctl", "-n", "oaastest@localhost", "-q",
             "list_queues", "name", "type"], capture_output=True, text=True, timeout=60,
            env={**os.environ, **stack.rabbit_env}, check=False)
        kinds = dict(line.split()[:2] for line in done.stdout.splitlines() if line.strip())
        if kinds.get("q-plugin") != "quorum":
            return failed("queues", f"q-plugin is {kinds.get('q-plugin')!r}", kinds=kinds)
        return passed("queues", "q-plugin is a quorum queue", kinds=kinds)

    wait_for(quorum_queues, timeout=180, interval=3, fatal=exited)
    stack.served.add("neutron")


def test_neutron_server_serves_through_its_wrapper(stack: Stack) -> None:
    serve_neutron(stack)
    # The lab's flat provider network (objects only: no agent, no traffic).
    net = cloud.ensure_flat_network(stack.conn, "oaas-flat", physnet="physnet1",
                                    cidr="192.0.2.0/24", allocation=("192.0.2.100", "192.0.2.150"))
    again = cloud.ensure_flat_network(stack.conn, "oaas-flat", physnet="physnet1",
                                      cidr="192.0.2.0/24")
    assert net == again


def test_horizon_login_through_its_wrapper(stack: Stack) -> None:
    conf_dir, static = stack.root / "horizon", stack.root / "horizon-static"
    config.write([
        *config.horizon_settings(stack.apis, stack.infra, stack.secrets,
                                 allowed_hosts=["127.0.0.1"], static_root=static),
        config.horizon_wrapper(static),
    ], conf_dir)
    env = {**os.environ, "PYTHONPATH": str(conf_dir),
           "DJANGO_SETTINGS_MODULE": "openstack_dashboard.settings"}
    run([bin_("django-admin"), "collectstatic", "--noinput"], env=env, cwd=stack.root)
    run([bin_("django-admin"), "compress", "--force"], env=env, cwd=stack.root)
    base = f"http://127.0.0.1:{stack.ports['horizon']}"
    argv = config.gunicorn_argv(VENV or Path(), conf_dir, "horizon", base[len("http://"):],
                                workers=1)
    proc = stack.daemons.start("horizon", argv)
    wait_for(lambda: http_ok(f"{base}/auth/login/", proc), timeout=120, fatal=exited)

    with httpx.Client(base_url=base, timeout=30) as browser:
        page = browser.get("/auth/login/")
        assert page.status_code == 200
        assert 'name="csrfmiddlewaretoken"' in page.text
        # The page's stylesheet is served from STATIC_ROOT by the wrapper.
        css = re.search(r'href="(/static/dashboard/css/[^"]+\.css)"', page.text)
        assert css is not None, "no compressed stylesheet linked"
        assert browser.get(css.group(1)).status_code == 200
        assert browser.get("/static/../horizon/local_settings.py").status_code == 404
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert csrf is not None
        login = browser.post("/auth/login/", data={
            "csrfmiddlewaretoken": csrf.group(1), "region": "default", "domain": "Default",
            "username": "admin", "password": stack.secrets.admin.reveal(), "next": "/",
        }, headers={"Referer": f"{base}/auth/login/"})
        assert login.status_code == 302, login.text[-2000:]
        assert "/auth/login" not in login.headers["location"]
        # A page every signed-in user may see, whichever services the catalogue has yet.
        settings = browser.get("/settings/", follow_redirects=True)
        assert settings.status_code == 200
        assert "/auth/logout/" in settings.text
        assert str(settings.url).endswith("/settings/")


def test_glance_takes_the_guest_triple(stack: Stack,
                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    serve_glance(stack)
    built = guest.build(tmp_path_factory.getbasetemp() / "guest-cache")
    bootable = guest.upload(stack.conn, built, cmdline=built.cmdline(ip="192.0.2.10/24"))
    images = {i.name: i for i in cloud.list_images(stack.conn)}
    kernel, ramdisk = images["oaas-guest-kernel"], images["oaas-guest-initramfs"]
    assert (kernel.disk_format, ramdisk.disk_format, bootable.disk_format) == ("aki", "ari", "ami")
    assert kernel.size == built.kernel.stat().st_size
    assert ramdisk.size == built.initramfs.stat().st_size
    assert bootable.status == "active"
    assert bootable.properties["kernel_id"] == kernel.id
    assert bootable.properties["ramdisk_id"] == ramdisk.id
    assert "oaas.ip=192.0.2.10/24" in bootable.properties["os_command_line"]
    assert guest.upload(stack.conn, built).id == bootable.id


def test_no_secret_in_any_log(stack: Stack) -> None:
    # Last in this module: by now every service above has written its log.
    logs = {p: p.read_text(errors="replace") for p in stack.root.rglob("*.log")}
    assert len(logs) >= 3  # at least mariadb, memcached, keystone
    for secret in stack.secrets.all():
        leaks = [p.name for p, text in logs.items() if secret.reveal() in text]
        assert not leaks, f"a secret is in {leaks}"


@pytest.mark.skipif(shutil.which("libvirtd") is None or shutil.which("qemu-system-x86_64") is None,
                    reason="needs libvirt and QEMU: apt-get install libvirt-daemon-system "
                    "qemu-system-x86")
def test_nova_compute_boots_the_guest_on_libvirt_qemu(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    serve_nova(stack)
    serve_glance(stack)
    serve_neutron(stack)  # nova's API asks neutron about every server, even one without NICs
    conf_dir = stack.root / "nova-compute"
    conf_path = conf_dir / "nova.conf"
    # QEMU runs as libvirt-qemu: the instance files need a path it can traverse (pytest's
    # temporary directories are private to root).
    state = Path(tempfile.mkdtemp(prefix="oaas-compute-"))
    state.chmod(0o711)
    stack.cleanup.append(state)
    pod = config.NovaHost(my_ip="127.0.0.1", host="compute-0", state=state,
                          config_path=conf_path, venv=VENV or Path(),
                          novncproxy_port=stack.ports["novnc"])
    config.write([config.nova_conf(stack.infra, stack.apis, stack.secrets, pod)], conf_dir)
    (pod.state / "instances").mkdir(mode=0o711)  # nova writes compute_id into state_path
    # No NIC in this guest: the compute host here is the test host, not a lab namespace.
    for binary in ("virtlogd", "libvirtd"):
        stack.daemons.start(binary, [binary])
    compute = stack.daemons.start("nova-compute", [bin_("nova-compute"), "--config-file",
                                                   str(conf_path)])

    def registered() -> CheckResult:
        if compute.poll() is not None:
            return failed("hypervisor", "server exited", hint="read nova-compute.log")
        run([bin_("nova-manage"), "--config-file", str(stack.root / "nova" / "nova.conf"),
             "cell_v2", "discover_hosts"])
        found = cloud.hypervisors(stack.conn)
        return passed("hypervisor", str(found)) if found else failed("hypervisor", "none yet")

    wait_for(registered, timeout=240, interval=5, fatal=exited)
    built = guest.build(tmp_path_factory.getbasetemp() / "guest-cache")
    image = guest.upload(stack.conn, built)
    flavor = cloud.ensure_flavor(stack.conn, "oaas.tiny", ram_mib=256, vcpus=1, disk_gib=1)
    started = time.monotonic()
    server = cloud.create_server(stack.conn, "oaas-boot", image_id=image.id, flavor_id=flavor,
                                 network_id=None)
    try:
        def active() -> CheckResult:
            now = cloud.get_server(stack.conn, server.id)
            if now is None or now.status == "ERROR":
                why = f"{now.status}: {now.fault}" if now else "gone"
                return failed("server", why)
            if now.status == "ACTIVE":
                return passed("server", "ACTIVE")
            return failed("server", now.status)

        wait_for(active, timeout=240, interval=2,
                 fatal=lambda r: r.detail.startswith(("ERROR", "gone")))
        active_after = time.monotonic() - started

        def booted() -> CheckResult:
            log = cloud.console_log(stack.conn, server.id)
            return passed("console", "marker") if guest.MARKER in log else failed("console", "-")

        wait_for(booted, timeout=240, interval=2)
        print(f"server ACTIVE after {active_after:.1f}s, "
              f"guest userspace in its console log after {time.monotonic() - started:.1f}s")
        url = cloud.remote_console_url(stack.conn, server.id)
        assert url.startswith(f"{stack.apis.novncproxy}/vnc_lite.html?path=")
        assert "token" in url
    finally:
        # QEMU outlives libvirtd: the server must be gone before the daemons are stopped.
        cloud.delete_server(stack.conn, server.id)
        wait_for(lambda: passed("deleted", "gone") if cloud.get_server(stack.conn, server.id)
                 is None else failed("deleted", "still there"), timeout=120, interval=2)
