"""The service configuration renderers: every required section, secrets only in file content."""

from __future__ import annotations

import ast
import configparser
import stat
from pathlib import Path

import pytest
import yaml

from oaas_lab.errors import ConfigError
from oaas_lab.openstack import clouds, config
from oaas_lab.secrets import MASK, Secret, SecretStore

VENV = Path("/opt/openstack")


@pytest.fixture
def secrets(tmp_path: Path) -> config.LabSecrets:
    return config.LabSecrets.from_store(SecretStore(tmp_path))


@pytest.fixture
def infra() -> config.Infra:
    return config.Infra(
        database="192.0.2.5",
        rabbitmq=["192.0.2.11", "192.0.2.12", "192.0.2.13:5673"],
        memcached=["192.0.2.21", "192.0.2.22", "192.0.2.23"],
    )


@pytest.fixture
def apis() -> config.Apis:
    return config.Apis(
        keystone="http://192.0.2.2:5000", glance="http://192.0.2.2:9292",
        placement="http://192.0.2.2:8778", nova="http://192.0.2.2:8774",
        neutron="http://192.0.2.2:9696", novncproxy="http://192.0.2.2:6080",
    )


def parse(item: config.ConfigFile) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=True)
    parser.read_string(item.text)
    return parser


def all_files(
    infra: config.Infra, apis: config.Apis, secrets: config.LabSecrets
) -> list[config.ConfigFile]:
    nova_pod = config.NovaHost(
        my_ip="192.0.2.31", host="compute-0", state=Path("/var/lib/lab/nova"),
        config_path=Path("/etc/lab/nova/nova.conf"), venv=VENV, ovsdb="unix:/run/ovs/db.sock",
    )
    return [
        config.keystone_conf(infra, secrets, fernet_keys=Path("/k/f"),
                             credential_keys=Path("/k/c")),
        config.glance_api_conf(infra, apis, secrets, venv=VENV, images=Path("/i"),
                               state=Path("/s")),
        config.placement_conf(infra, apis, secrets),
        config.nova_conf(infra, apis, secrets, nova_pod),
        config.neutron_conf(infra, apis, secrets, venv=VENV, state=Path("/n"),
                            config_files=[Path("/e/neutron.conf"), Path("/e/ml2_conf.ini")]),
        *config.horizon_settings(apis, infra, secrets, allowed_hosts=["192.0.2.2", "horizon"],
                                 static_root=Path("/static")),
    ]


def test_required_sections(
    infra: config.Infra, apis: config.Apis, secrets: config.LabSecrets
) -> None:
    required = {
        "keystone.conf": {"database", "token", "fernet_tokens", "fernet_receipts", "credential",
                          "cache"},
        "glance-api.conf": {"DEFAULT", "database", "glance_store", "file", "keystone_authtoken",
                            "paste_deploy", "os_glance_staging_store", "os_glance_tasks_store"},
        "placement.conf": {"placement_database", "api", "keystone_authtoken"},
        "nova.conf": {"DEFAULT", "api", "api_database", "database", "keystone_authtoken",
                      "placement", "neutron", "vnc", "libvirt", "service_user",
                      "oslo_messaging_rabbit", "os_vif_ovs", "nova_sys_admin",
                      "vif_plug_ovs_privileged"},
        "neutron.conf": {"DEFAULT", "database", "keystone_authtoken", "nova", "agent",
                         "oslo_messaging_rabbit", "privsep"},
    }
    files = {f.name: f for f in all_files(infra, apis, secrets)}
    for name, sections in required.items():
        parsed = parse(files[name])
        assert sections <= {*parsed.sections(), "DEFAULT"}, name
        if "keystone_authtoken" in sections:
            auth = parsed["keystone_authtoken"]
            assert auth["auth_url"] == apis.keystone
            assert auth["memcached_servers"] == "192.0.2.21:11211,192.0.2.22:11211,192.0.2.23:11211"


def test_secrets_only_in_the_file_content(
    infra: config.Infra, apis: config.Apis, secrets: config.LabSecrets
) -> None:
    files = all_files(infra, apis, secrets)
    text = "".join(f.text for f in files)
    shown = " ".join(f"{f} {f!r}" for f in files) + f" {secrets!r} {infra!r} {apis!r}"
    for secret in secrets.all():
        assert secret.reveal() not in shown
    assert MASK in repr(secrets)
    # Each service's own passwords are where the daemon reads them.
    for service in config.SERVICES:
        assert secrets.database[service].reveal() in text
    for service in ("glance", "placement", "nova", "neutron"):
        assert secrets.service[service].reveal() in text
    assert secrets.rabbitmq.reveal() in text
    assert secrets.horizon_key.reveal() in text
    # The admin password belongs to clouds.yaml, not to any service file.
    assert secrets.admin.reveal() not in text
    assert all(f.mode == 0o600 for f in files if f.secret)


def test_keystone_shares_one_key_repository(
    infra: config.Infra, secrets: config.LabSecrets
) -> None:
    conf = parse(config.keystone_conf(infra, secrets, fernet_keys=Path("/lab/fernet"),
                                      credential_keys=Path("/lab/cred")))
    assert conf["token"]["provider"] == "fernet"
    assert conf["fernet_tokens"]["key_repository"] == "/lab/fernet"
    assert conf["fernet_receipts"]["key_repository"] == "/lab/fernet"
    assert conf["cache"]["backend"] == "dogpile.cache.pymemcache"
    assert conf["database"]["connection"].startswith("mysql+pymysql://keystone:")
    assert "@192.0.2.5:3306/keystone" in conf["database"]["connection"]


def test_fernet_keys_come_from_the_store(tmp_path: Path) -> None:
    store = SecretStore(tmp_path)
    primary, staged = store.get("k1", "fernet_key"), store.get("k0", "fernet_key")
    files = {f.name: f for f in config.fernet_key_files(primary, staged)}
    assert files["1"].text == primary.reveal()
    assert files["0"].text == staged.reveal()
    written = config.write(list(files.values()), tmp_path / "keys")
    assert {stat.S_IMODE(p.stat().st_mode) for p in written} == {0o600}


def test_nova_uses_libvirt_qemu_and_every_rabbit_member(
    infra: config.Infra, apis: config.Apis, secrets: config.LabSecrets
) -> None:
    files = {f.name: f for f in all_files(infra, apis, secrets)}
    nova = parse(files["nova.conf"])
    assert nova["libvirt"]["virt_type"] == "qemu"
    assert nova["DEFAULT"]["compute_driver"] == "libvirt.LibvirtDriver"
    assert nova["DEFAULT"]["my_ip"] == "192.0.2.31"
    assert nova["DEFAULT"]["host"] == "compute-0"
    transport = nova["DEFAULT"]["transport_url"]
    assert transport.startswith("rabbit://openstack:")
    for member in ("@192.0.2.11:5672", "@192.0.2.12:5672", "@192.0.2.13:5673"):
        assert member in transport
    assert nova["oslo_messaging_rabbit"]["rabbit_quorum_queue"] == "true"
    assert nova["vnc"]["novncproxy_base_url"] == "http://192.0.2.2:6080/vnc_lite.html"
    assert nova["vnc"]["server_proxyclient_address"] == "192.0.2.31"
    assert nova["api_database"]["connection"].endswith("/nova_api?charset=utf8mb4")
    assert nova["placement"]["username"] == "placement"
    assert nova["neutron"]["username"] == "neutron"
    helper = nova["nova_sys_admin"]["helper_command"]
    assert helper == "/opt/openstack/bin/privsep-helper --config-file /etc/lab/nova/nova.conf"
    assert nova["os_vif_ovs"]["ovsdb_connection"] == "unix:/run/ovs/db.sock"


def test_ml2_flat_openvswitch_and_userspace_datapath() -> None:
    ml2 = parse(config.ml2_conf(physnet="physnet1"))
    assert ml2["ml2"]["type_drivers"] == "flat"
    assert ml2["ml2"]["mechanism_drivers"] == "openvswitch"
    assert ml2["ml2_type_flat"]["flat_networks"] == "physnet1"
    agent = parse(config.openvswitch_agent_ini(local_ip="192.0.2.31",
                                               ovsdb="unix:/run/ovs/db.sock"))
    assert agent["ovs"]["datapath_type"] == "netdev"
    assert agent["ovs"]["bridge_mappings"] == "physnet1:br-provider"
    assert agent["securitygroup"]["firewall_driver"] == "noop"
    assert not config.ml2_conf().secret


def test_horizon_settings_share_key_and_every_memcached(
    infra: config.Infra, apis: config.Apis, secrets: config.LabSecrets
) -> None:
    files = config.horizon_settings(apis, infra, secrets, allowed_hosts=["192.0.2.2", "horizon"],
                                    static_root=Path("/static"))
    settings = next(f for f in files if f.name == "local/local_settings.py")
    assert settings.secret
    values: dict[str, object] = {}
    for node in ast.parse(settings.text).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            values[node.targets[0].id] = ast.literal_eval(node.value)
    assert values["SECRET_KEY"] == secrets.horizon_key.reveal()
    assert values["ALLOWED_HOSTS"] == ["192.0.2.2", "horizon"]
    assert values["SESSION_ENGINE"] == "django.contrib.sessions.backends.cache"
    cache = values["CACHES"]
    assert isinstance(cache, dict)
    assert cache["default"]["LOCATION"] == infra.memcached_servers()
    assert values["OPENSTACK_KEYSTONE_URL"] == "http://192.0.2.2:5000/v3"
    assert {f.name for f in files} == {"local/__init__.py", "local/local_settings.py"}


def test_horizon_needs_allowed_hosts(
    infra: config.Infra, apis: config.Apis, secrets: config.LabSecrets
) -> None:
    with pytest.raises(ConfigError, match="allowed_hosts"):
        config.horizon_settings(apis, infra, secrets, allowed_hosts=[], static_root=Path("/s"))


def test_wrappers_set_argv_and_config_then_import_the_app() -> None:
    for service, module in config.WSGI_APPS.items():
        item = config.wsgi_wrapper(service, [Path(f"/etc/lab/{service}/api-paste.ini")])
        tree = ast.parse(item.text)  # valid Python
        assert item.name == f"oaas_wsgi_{service.replace('-', '_')}.py"
        assert f"from {module} import application" in item.text
        assert "sys.argv = [" in item.text
        assert not item.secret
        assert tree.body
    keystone = config.wsgi_wrapper("keystone", [Path("/a/keystone.conf"), Path("/a/x.conf")])
    assert "'OS_KEYSTONE_CONFIG_FILES'] = '/a/keystone.conf;/a/x.conf'" in keystone.text
    glance = config.wsgi_wrapper("glance", [Path("/g/glance-api.conf")])
    assert "'OS_GLANCE_CONFIG_DIR'] = '/g'" in glance.text
    with pytest.raises(ConfigError, match=r"api-paste\.ini first"):
        config.wsgi_wrapper("nova-api", [Path("/n/nova.conf")])
    with pytest.raises(ConfigError, match="use one of"):
        config.wsgi_wrapper("cinder", [Path("/c.conf")])
    ast.parse(config.horizon_wrapper(Path("/static")).text)


def test_gunicorn_command_line() -> None:
    argv = config.gunicorn_argv(VENV, Path("/etc/lab/keystone"), "keystone", "192.0.2.2:5000")
    assert argv[0] == "/opt/openstack/bin/gunicorn"
    assert "--no-control-socket" in argv
    assert argv[-1] == "oaas_wsgi_keystone:application"
    assert argv[argv.index("--bind") + 1] == "192.0.2.2:5000"


def test_a_value_oslo_config_would_misread_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"x\.y: holds a newline or '\$'"):
        config.render_ini({"x": {"y": "a$b"}})
    assert config.render_ini({"s": {"k": None, "l": ["a", "b"], "b": False}}).endswith(
        "[s]\nk =\nl = a,b\nb = false\n"
    )


def test_infra_needs_members() -> None:
    with pytest.raises(ConfigError, match="RabbitMQ"):
        config.Infra(database="db", rabbitmq=[], memcached=["m"])


def test_write_creates_secret_files_0600(tmp_path: Path) -> None:
    paths = config.write(
        [config.ConfigFile("a/secret.conf", "x"), config.ConfigFile("b.ini", "y", secret=False)],
        tmp_path,
    )
    assert stat.S_IMODE(paths[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(paths[1].stat().st_mode) == 0o644
    assert paths[0].read_text() == "x"


def test_clouds_yaml(tmp_path: Path) -> None:
    password = Secret("s3cret-value")
    path = clouds.write_clouds(tmp_path, "http://192.0.2.2:5000/", password)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cloud = yaml.safe_load(path.read_text())["clouds"][clouds.CLOUD_NAME]
    assert cloud["auth"]["auth_url"] == "http://192.0.2.2:5000/v3"
    assert cloud["auth"]["password"] == "s3cret-value"
    assert cloud["auth"]["username"] == "admin"
    assert cloud["region_name"] == "RegionOne"
    assert "s3cret-value" not in repr(clouds.clouds_yaml("http://x", password))


def test_catalogue_urls(apis: config.Apis) -> None:
    catalogue = apis.catalogue()
    assert catalogue["keystone"] == ("identity", "http://192.0.2.2:5000/v3", "Identity")
    assert catalogue["nova"][1] == "http://192.0.2.2:8774/v2.1"
    assert set(catalogue) == set(config.SERVICES)
