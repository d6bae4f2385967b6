"""The OpenStack services as lab pods: keystone, glance, placement, nova, neutron, horizon.

Every service is the real one from the project's Python environment, each pod a namespace like
the infrastructure's. APIs are served by gunicorn through the WSGI wrappers of
``oaas_lab.openstack.config`` on the pod's address; clients reach them through HAProxy (the
lab's front, as a Service would be). The database is Galera through HAProxy, the bus every
RabbitMQ member, the caches every memcached member.

``prepare`` is the init job of a component (database and user, schema migrations, shared keys
and static files) and runs before its members start; ``converge`` waits for the members to
work and registers what the next services need (keystone's users and catalogue, flavors, the
guest images, the provider network). Both are idempotent: a second ``up`` finds everything in
place. openstacksdk is imported where it is used: the infrastructure tier runs without it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import NoReturn

from oaas_lab import components
from oaas_lab.adapters import http
from oaas_lab.backends.local import schemas
from oaas_lab.backends.local.daemons import openvswitch as ovs
from oaas_lab.backends.local.daemons.base import (
    PATH,
    PodContext,
    PodRunner,
    RenderedFile,
    SimpleDriver,
    await_ready,
    main_log,
)
from oaas_lab.backends.local.daemons.galera import password_hash
from oaas_lab.backends.local.network import (
    NETNS_ETC,
    PROVIDER_IFNAME,
    Naming,
    create_provider_link,
)
from oaas_lab.backends.local.supervisor import Program
from oaas_lab.errors import LabError, UserError
from oaas_lab.kernel.results import CheckResult, failed, passed
from oaas_lab.openstack import clouds, config, guest, resources
from oaas_lab.openstack.client import MEMBER_PROJECT, MEMBER_SECRET, MEMBER_USER, issue_token
from oaas_lab.openstack.config import ConfigFile
from oaas_lab.secrets import Secret

FRONT = "haproxy"
"""The component that fronts the APIs and the database (at its virtual address)."""


# --- where things are ----------------------------------------------------------------------------


def front_ip(ctx: PodContext) -> str:
    """The API/database front: HAProxy's virtual address."""
    if not ctx.front_address:
        raise_missing(FRONT)
    return ctx.front_address


def raise_missing(component: str) -> NoReturn:
    """The OpenStack tier cannot be rendered without ``component``."""
    raise UserError(f"the OpenStack tier needs {component}, which this lab does not run",
                    hint=f"set components.{component}.replicas to 1 or more")


def infra(ctx: PodContext) -> config.Infra:
    """Where the services reach Galera (through HAProxy), RabbitMQ and memcached."""
    return config.Infra(
        database=front_ip(ctx),
        rabbitmq=[m.ip for m in ctx.others.get("rabbitmq", ())],
        memcached=[m.ip for m in ctx.others.get("memcached", ())],
    )


def apis(ctx: PodContext) -> config.Apis:
    """The API URLs every service and client uses: the front, on each service's port."""
    front = front_ip(ctx)

    def url(component: str) -> str:
        return f"http://{front}:{port(component)}"

    return config.Apis(
        keystone=url("keystone"), glance=url("glance"), placement=url("placement"),
        nova=url("nova-api"), neutron=url("neutron-server"),
        novncproxy=url("nova-novncproxy"),
    )


def secrets(ctx: PodContext) -> config.LabSecrets:
    """The OpenStack secrets of the lab (generated on first use)."""
    return config.LabSecrets.from_store(ctx.secrets)


def venv(ctx: PodContext) -> Path:
    """The Python environment holding the services (the one running oaas-lab)."""
    return Path(ctx.python).parent.parent


def binary(ctx: PodContext, name: str) -> str:
    """A console script of the services' environment."""
    return str(venv(ctx) / "bin" / name)


def etc(ctx: PodContext, files: Sequence[ConfigFile]) -> list[RenderedFile]:
    """Rendered service files placed in the pod's ``etc``."""
    return [RenderedFile(ctx.path("etc", f.name), f.text, f.mode) for f in files]


def provision_database(ctx: PodContext, runner: PodRunner, service: str) -> None:
    """The service's databases and user on Galera (the password goes in as a hash)."""
    galera = ctx.others.get("galera", ())
    if not galera:
        raise_missing("galera")
    hashed = password_hash(secrets(ctx).database[service].reveal())
    lines = [
        f"CREATE USER IF NOT EXISTS '{service}'@'%' IDENTIFIED BY PASSWORD '{hashed}';",
        f"ALTER USER '{service}'@'%' IDENTIFIED BY PASSWORD '{hashed}';",
    ]
    for database in config.DATABASES[service]:
        lines.append(f"CREATE DATABASE IF NOT EXISTS `{database}`;")
        lines.append(f"GRANT ALL PRIVILEGES ON `{database}`.* TO '{service}'@'%';")
    runner.run_in(galera[0].name, ["mariadb"], input_text="\n".join(lines) + "\n", timeout=60.0)


def http_ready(ctx: PodContext, path: str, needle: str = "") -> CheckResult:
    """The pod's own server answers ``path`` (any status below 500 counts as serving)."""
    url = f"http://{ctx.pod.ip}:{port(ctx.pod.component)}{path}"
    try:
        reply = http.get(url, timeout=10.0)
    except http.Error as exc:
        return failed(ctx.pod.name, f"{url}: {type(exc).__name__}")
    if reply.status >= 500 or (needle and needle not in reply.text):
        return failed(ctx.pod.name, f"{url}: HTTP {reply.status}")
    return passed(ctx.pod.name, f"{url}: HTTP {reply.status}")


class OpenStackDriver(SimpleDriver):
    """What every OpenStack pod shares: the environment's binaries first on PATH."""

    ready_timeout = 600.0

    def exec_env(self, ctx: PodContext) -> dict[str, str]:
        """The services' environment first (``privsep-helper``, ``nova-manage`` ...)."""
        return {"PATH": f"{venv(ctx) / 'bin'}:{PATH}", "HOME": str(ctx.path("home"))}

    def manage(self, ctx: PodContext, runner: PodRunner, argv: Sequence[str],
               timeout: float = 600.0) -> str:
        """Run a service's management command in the pod; its output."""
        return runner.run_in(ctx.pod.name, [binary(ctx, argv[0]), *argv[1:]],
                             timeout=timeout).stdout

    def migrate(self, ctx: PodContext, runner: PodRunner, databases: Sequence[str],
                *commands: Sequence[str]) -> None:
        """Bring ``databases`` to the current schema with the service's migration
        ``commands``, starting from the cached schema when there is one (see ``schemas``)."""
        cache = schemas.SchemaCache(ctx.lab_dir.parent / "cache" / "schemas",
                                    schemas.cache_key(ctx.python), runner,
                                    ctx.others["galera"][0].name)

        def run() -> None:
            for argv in commands:
                self.manage(ctx, runner, argv)

        schemas.migrate(cache, databases, run)


class WsgiDriver(OpenStackDriver):
    """An API served by gunicorn through its wrapper on the pod's address."""

    wsgi = ""
    """The wrapper's service name (``config.WSGI_APPS``)."""
    ready_path = "/"
    workers = 1

    def config_files(self, ctx: PodContext) -> list[ConfigFile]:
        """The service's own configuration files (first the one the wrapper names first)."""
        raise NotImplementedError

    def wrapper_files(self, ctx: PodContext) -> list[Path]:
        """The files the WSGI wrapper loads, in order."""
        return [ctx.path("etc", f.name) for f in self.config_files(ctx)
                if f.name.endswith((".conf", ".ini"))]

    def files(self, ctx: PodContext) -> list[RenderedFile]:
        """The configuration, and the WSGI wrapper gunicorn imports."""
        wrapper = config.wsgi_wrapper(self.wsgi, self.wrapper_files(ctx))
        return etc(ctx, [*self.config_files(ctx), wrapper])

    def programs(self, ctx: PodContext) -> list[Program]:
        """gunicorn; its workers stop and die with it (a killed pod loses them all)."""
        argv = config.gunicorn_argv(venv(ctx), ctx.path("etc"), self.wsgi,
                                    f"{ctx.pod.ip}:{port(ctx.pod.component)}",
                                    workers=self.workers)
        return [Program(name=ctx.pod.name, argv=tuple(argv), log=main_log(ctx),
                        env=self.exec_env(ctx), directory=ctx.pod_dir, group=True,
                        stopwaitsecs=20, startsecs=2)]

    def await_members(self, ctxs: Sequence[PodContext]) -> None:
        """Each member serves its version document."""
        for ctx in ctxs:
            await_ready(ctx.pod.name, partial(http_ready, ctx, self.ready_path),
                        main_log(ctx), timeout=self.ready_timeout)

    def await_front(self, ctx: PodContext) -> None:
        """HAProxy has taken members in (it answers with a member's reply, not its own 503)."""
        url = f"http://{front_ip(ctx)}:{port(ctx.pod.component)}{self.ready_path}"
        await_ready(f"{ctx.pod.component} front", partial(_serves, url), main_log(ctx),
                    timeout=120.0)

    def converge(self, ctxs: Sequence[PodContext], runner: PodRunner) -> None:
        """Wait for the members to serve, and the front to reach them."""
        self.await_members(ctxs)
        self.await_front(ctxs[0])


def _serves(url: str) -> CheckResult:
    try:
        reply = http.get(url, timeout=10.0)
    except http.Error as exc:
        return failed(url, type(exc).__name__)
    if reply.status >= 500:
        return failed(url, f"HTTP {reply.status}")
    return passed(url, f"HTTP {reply.status}")


@contextlib.contextmanager
def cloud_errors(component: str) -> Iterator[None]:
    """An API error while bootstrapping becomes a one-line ``LabError`` naming the component."""
    from oaas_lab.adapters import openstack as cloud

    try:
        yield
    except cloud.Error as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LabError(f"{component}: bootstrapping through the API failed: {first}",
                       hint=f"read the {component} logs (`oaas-lab logs {component}-0`) and "
                       "run `oaas-lab up` again") from None


# --- keystone ------------------------------------------------------------------------------------


class KeystoneDriver(WsgiDriver):
    """keystone: fernet tokens from keys generated once per lab and shared by every member."""

    component = "keystone"
    wsgi = "keystone"
    ready_path = "/v3"

    def config_files(self, ctx: PodContext) -> list[ConfigFile]:
        """``keystone.conf`` naming the pod's copies of the shared key repositories."""
        return [config.keystone_conf(infra(ctx), secrets(ctx),
                                     fernet_keys=ctx.path("etc", "fernet-keys"),
                                     credential_keys=ctx.path("etc", "credential-keys"))]

    def files(self, ctx: PodContext) -> list[RenderedFile]:
        """Configuration, wrapper and the key repositories (the same keys in every member)."""
        store = ctx.secrets
        keys = [
            (ctx.path("etc", "fernet-keys", f.name), f)
            for f in config.fernet_key_files(store.get("keystone_fernet_1", "fernet_key"),
                                             store.get("keystone_fernet_0", "fernet_key"))
        ] + [
            (ctx.path("etc", "credential-keys", f.name), f)
            for f in config.fernet_key_files(store.get("keystone_credential_1", "fernet_key"),
                                             store.get("keystone_credential_0", "fernet_key"))
        ]
        return [*super().files(ctx), *(RenderedFile(p, f.text, 0o600) for p, f in keys)]

    def prepare(self, ctxs: Sequence[PodContext], runner: PodRunner) -> None:
        """Database, schema, and the admin user, project, roles and identity endpoint."""
        first = ctxs[0]
        for ctx in ctxs:
            for repo in ("fernet-keys", "credential-keys"):
                ctx.path("etc", repo).chmod(0o700)
        provision_database(first, runner, "keystone")
        conf = str(first.path("etc", "keystone.conf"))
        self.migrate(first, runner, ["keystone"], ["keystone-manage", "--config-file", conf,
                                                   "db_sync"])
        url = apis(first).keystone + "/v3"
        runner.run_in(first.pod.name, [
            binary(first, "keystone-manage"), "--config-file", conf, "bootstrap",
            "--bootstrap-admin-url", url, "--bootstrap-internal-url", url,
            "--bootstrap-public-url", url, "--bootstrap-region-id", apis(first).region,
        ], timeout=300.0, env={"OS_BOOTSTRAP_PASSWORD": secrets(first).admin.reveal()})

    def converge(self, ctxs: Sequence[PodContext], runner: PodRunner) -> None:
        """Every member issues tokens; then the service users, catalogue and member user."""
        admin = secrets(ctxs[0]).admin
        for ctx in ctxs:
            url = f"http://{ctx.pod.ip}:{port('keystone')}"
            await_ready(ctx.pod.name, partial(_token_from, ctx.pod.name, url, admin),
                        main_log(ctx), timeout=self.ready_timeout)
        with cloud_errors("keystone"):
            register_catalogue(ctxs[0])


def register_catalogue(ctx: PodContext) -> None:
    """Service users and endpoints of every service, the ``demo`` member user, clouds.yaml."""
    from oaas_lab.adapters import openstack as cloud

    endpoints, lab_secrets = apis(ctx), secrets(ctx)
    # HAProxy takes a member in once its health check passed twice.
    await_ready("keystone front",
                partial(_token_from, "keystone front", endpoints.keystone, lab_secrets.admin),
                main_log(ctx), timeout=120.0)
    path = clouds.write_clouds(ctx.lab_dir, endpoints.keystone, lab_secrets.admin,
                               region=endpoints.region)
    conn = cloud.connect(clouds_file=path)
    for service in config.SERVICES[1:]:
        cloud.ensure_service_user(conn, service, lab_secrets.service[service])
        kind, url, description = endpoints.catalogue()[service]
        cloud.ensure_endpoint(conn, service, kind, url, region=endpoints.region,
                              description=description)
    cloud.ensure_service_user(conn, MEMBER_USER, ctx.secrets.get(MEMBER_SECRET),
                              project=MEMBER_PROJECT, roles=("member",))


def _token_from(name: str, keystone: str, password: Secret) -> CheckResult:
    got, why = issue_token(keystone, "admin", password, "admin")
    return passed(name, why) if got else failed(name, why)


# --- glance, placement ---------------------------------------------------------------------------


class GlanceDriver(WsgiDriver):
    """glance: a file store shared by the members (a ReadWriteMany volume)."""

    component = "glance"
    wsgi = "glance"
    ready_path = "/versions"

    def config_files(self, ctx: PodContext) -> list[ConfigFile]:
        """``glance-api.conf``."""
        return [config.glance_api_conf(infra(ctx), apis(ctx), secrets(ctx), venv=venv(ctx),
                                       images=ctx.shared("images"), state=ctx.path("data"))]

    def converge(self, ctxs: Sequence[PodContext], runner: PodRunner) -> None:
        """Members serve; the lab's guest image is uploaded (built once per host, cached)."""
        from oaas_lab.adapters import openstack as cloud

        super().converge(ctxs, runner)
        built = guest.build(ctxs[0].lab_dir.parent / "cache" / "guest")
        subnet = resources.lab_subnet(ctxs[0].pod.ip)
        address = f"{resources.network_guest_address(subnet)}/{subnet.prefixlen}"
        with cloud_errors("glance"):
            conn = cloud.connect(clouds_file=ctxs[0].lab_dir / clouds.FILE_NAME)
            guest.upload(conn, built, name=resources.GUEST_IMAGE,
                         cmdline=built.cmdline(ip="none"))
            guest.upload(conn, built, name=resources.NETWORK_GUEST_IMAGE,
                         cmdline=built.cmdline(ip=address))

    def prepare(self, ctxs: Sequence[PodContext], runner: PodRunner) -> None:
        """Database and schema."""
        first = ctxs[0]
        first.shared("images").mkdir(parents=True, exist_ok=True)
        provision_database(first, runner, "glance")
        self.migrate(first, runner, ["glance"], ["glance-manage", "--config-file",
                                                 str(first.path("etc", "glance-api.conf")),
                                                 "db_sync"])


class PlacementDriver(WsgiDriver):
    """placement."""

    component = "placement"
    wsgi = "placement"

    def config_files(self, ctx: PodContext) -> list[ConfigFile]:
        """``placement.conf``."""
        return [config.placement_conf(infra(ctx), apis(ctx), secrets(ctx))]

    def prepare(self, ctxs: Sequence[PodContext], runner: PodRunner) -> None:
        """Database and schema."""
        first = ctxs[0]
        provision_database(first, runner, "placement")
        self.migrate(first, runner, ["placement"], [
            "placement-manage", "--config-file", str(first.path("etc", "placement.conf")),
            "db", "sync"])


# --- nova ----------------------------------------------------------------------------------------


def nova_host(ctx: PodContext, **extra: str) -> config.NovaHost:
    """The pod as nova sees it: its address, its host name, its state directory."""
    return config.NovaHost(my_ip=ctx.pod.ip, host=ctx.pod.name, state=ctx.path("data"),
                           config_path=ctx.path("etc", "nova.conf"), venv=venv(ctx),
                           novncproxy_port=port("nova-novncproxy"), **extra)


def nova_conf(ctx: PodContext, **extra: str) -> ConfigFile:
    """The pod's ``nova.conf``."""
    return config.nova_conf(infra(ctx), apis(ctx), secrets(ctx), nova_host(ctx, **extra))


class NovaApiDriver(WsgiDriver):
    """nova-api: owns nova's databases and cells (``prepare`` is nova's init job)."""

    component = "nova-api"
    wsgi = "nova-api"
    ready_path = "/v2.1"

    def config_files(self, ctx: PodContext) -> list[ConfigFile]:
        """``nova.conf``."""
        return [nova_conf(ctx)]

    def wrapper_files(self, ctx: PodContext) -> list[Path]:
        """nova-api loads its paste pipeline from its first file."""
        return [venv(ctx) / "etc" / "nova" / "api-paste.ini", ctx.path("etc", "nova.conf")]

    def prepare(self, ctxs: Sequence[PodContext], runner: PodRunner) -> None:
        """Databases, API schema, cell0 and cell1, the cell schema."""
        first = ctxs[0]
        provision_database(first, runner, "nova")
        manage = ["nova-manage", "--config-file", str(first.path("etc", "nova.conf"))]
        # The API schema is cached before cell0's mapping (which holds its database URL and
        # password) is written into it.
        self.migrate(first, runner, ["nova_api"], [*manage, "api_db", "sync"])
        self.manage(first, runner, [*manage, "cell_v2", "map_cell0"])
        cells = self.manage(first, runner, [*manage, "cell_v2", "list_cells"])
        if " cell1 " not in cells:
            self.manage(first, runner, [*manage, "cell_v2", "create_cell", "--name", "cell1"])
        self.migrate(first, runner, ["nova_cell0", "nova"], [*manage, "db", "sync"])

    def converge(self, ctxs: Sequence[PodContext], runner: PodRunner) -> None:
        """Members serve; the lab's flavors exist."""
        from oaas_lab.adapters import openstack as cloud

        super().converge(ctxs, runner)
        with cloud_errors("nova-api"):
            conn = cloud.connect(clouds_file=ctxs[0].lab_dir / clouds.FILE_NAME)
            for name, ram, disk in resources.FLAVORS:
                cloud.ensure_flavor(conn, name, ram_mib=ram, vcpus=1, disk_gib=disk)


class NovaServiceDriver(OpenStackDriver):
    """A nova daemon without an API of its own (conductor, scheduler, noVNC proxy)."""

    def __init__(self, component: str) -> None:
        self.component = component

    def files(self, ctx: PodContext) -> list[RenderedFile]:
        """``nova.conf``."""
        return etc(ctx, [nova_conf(ctx)])

    def programs(self, ctx: PodContext) -> list[Program]:
        """The daemon; forked workers go with it."""
        argv = (binary(ctx, self.component), "--config-file", str(ctx.path("etc", "nova.conf")))
        return [Program(name=ctx.pod.name, argv=argv, log=main_log(ctx), env=self.exec_env(ctx),
                        directory=ctx.pod_dir, group=True, stopwaitsecs=20)]


def netns_etc(ctx: PodContext) -> Path:
    """The pod's ``/etc`` overlay: ``ip netns exec`` mounts each entry over ``/etc/<entry>``."""
    return NETNS_ETC / Naming(ctx.lab_name).netns(ctx.pod.name)


# --- neutron -------------------------------------------------------------------------------------


def neutron_files(ctx: PodContext) -> list[ConfigFile]:
    """``neutron.conf`` and ``ml2_conf.ini`` (the server's and the agent's common files)."""
    names = [ctx.path("etc", "neutron.conf"), ctx.path("etc", "ml2_conf.ini")]
    return [
        config.neutron_conf(infra(ctx), apis(ctx), secrets(ctx), venv=venv(ctx),
                            state=ctx.path("data"), config_files=names),
        config.ml2_conf(),
    ]


class NeutronServerDriver(WsgiDriver):
    """neutron: the API under gunicorn and, beside it, the RPC server the agents talk to."""

    component = "neutron-server"
    wsgi = "neutron"

    def config_files(self, ctx: PodContext) -> list[ConfigFile]:
        """``neutron.conf`` and ``ml2_conf.ini``."""
        return neutron_files(ctx)

    def programs(self, ctx: PodContext) -> list[Program]:
        """The API, then ``neutron-rpc-server`` (WSGI servers do not consume RPC)."""
        conf = [arg for f in ("neutron.conf", "ml2_conf.ini")
                for arg in ("--config-file", str(ctx.path("etc", f)))]
        rpc = Program(name=f"{ctx.pod.name}-rpc", argv=(binary(ctx, "neutron-rpc-server"), *conf),
                      log=ctx.path("log", f"{ctx.pod.name}-rpc.log"), env=self.exec_env(ctx),
                      directory=ctx.pod_dir, group=True, stopwaitsecs=20)
        return [*super().programs(ctx), rpc]

    def converge(self, ctxs: Sequence[PodContext], runner: PodRunner) -> None:
        """Members serve; the lab's flat provider network (the lab bridge's segment) exists."""
        from oaas_lab.adapters import openstack as cloud

        super().converge(ctxs, runner)
        subnet = resources.lab_subnet(ctxs[0].pod.ip)
        with cloud_errors("neutron-server"):
            conn = cloud.connect(clouds_file=ctxs[0].lab_dir / clouds.FILE_NAME)
            cloud.ensure_flat_network(conn, resources.NETWORK, physnet=resources.PHYSNET,
                                      cidr=str(subnet), allocation=resources.pool(subnet))

    def prepare(self, ctxs: Sequence[PodContext], runner: PodRunner) -> None:
        """Database and every migration branch."""
        first = ctxs[0]
        provision_database(first, runner, "neutron")
        conf = [arg for f in ("neutron.conf", "ml2_conf.ini")
                for arg in ("--config-file", str(first.path("etc", f)))]
        self.migrate(first, runner, ["neutron"], ["neutron-db-manage", *conf, "upgrade", "heads"])


# --- horizon -------------------------------------------------------------------------------------


class HorizonDriver(OpenStackDriver):
    """horizon: shared ``SECRET_KEY``, sessions in memcached, static files collected once."""

    component = "horizon"

    def _env(self, ctx: PodContext) -> dict[str, str]:
        return {"PYTHONPATH": str(ctx.path("etc")),
                "DJANGO_SETTINGS_MODULE": "openstack_dashboard.settings"}

    def files(self, ctx: PodContext) -> list[RenderedFile]:
        """``local/local_settings.py`` and the WSGI wrapper serving the static files too."""
        # Browsers come through the front's virtual address; HAProxy's own checks and a
        # member asked directly name the member.
        hosts = sorted({front_ip(ctx), *(m.ip for m in ctx.members), "localhost"})
        static = ctx.shared("static")
        return etc(ctx, [
            *config.horizon_settings(apis(ctx), infra(ctx), secrets(ctx), allowed_hosts=hosts,
                                     static_root=static),
            config.horizon_wrapper(static),
        ])

    def programs(self, ctx: PodContext) -> list[Program]:
        """gunicorn serving the dashboard."""
        argv = config.gunicorn_argv(venv(ctx), ctx.path("etc"), "horizon",
                                    f"{ctx.pod.ip}:{port('horizon')}", workers=1)
        return [Program(name=ctx.pod.name, argv=tuple(argv), log=main_log(ctx),
                        env={**self.exec_env(ctx), **self._env(ctx)}, directory=ctx.pod_dir,
                        group=True, stopwaitsecs=20, startsecs=2)]

    def prepare(self, ctxs: Sequence[PodContext], runner: PodRunner) -> None:
        """Collect and compress the static files into the shared directory."""
        first = ctxs[0]
        first.shared("static").mkdir(parents=True, exist_ok=True)
        for command in (["collectstatic", "--noinput"], ["compress", "--force"]):
            runner.run_in(first.pod.name, [binary(first, "django-admin"), *command],
                          timeout=600.0, env=self._env(first))

    def converge(self, ctxs: Sequence[PodContext], runner: PodRunner) -> None:
        """Each member serves its login form."""
        for ctx in ctxs:
            await_ready(ctx.pod.name,
                        partial(http_ready, ctx, "/auth/login/", "csrfmiddlewaretoken"),
                        main_log(ctx), timeout=self.ready_timeout)


# --- nova-compute --------------------------------------------------------------------------------

QEMU_CONF = """# Written by oaas-lab: QEMU runs as root inside the compute pod's namespaces.
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
namespaces = [ ]
"""

LIBVIRTD_CONF = """# Written by oaas-lab: local clients only (nova-compute in the same pod).
listen_tls = 0
listen_tcp = 0
unix_sock_group = "root"
unix_sock_rw_perms = "0770"
auth_unix_rw = "none"
"""


class NovaComputeDriver(OpenStackDriver):
    """nova-compute with its own libvirtd, virtlogd, Open vSwitch and neutron agent.

    QEMU runs in TCG mode (no KVM needed). The pod's ``/etc/libvirt`` is its own (an
    ``/etc/netns`` overlay): no libvirt network is defined, so none is started, and QEMU runs
    as root. libvirt's run and state directories are the host's, so one compute pod runs per
    host. A VM's tap goes on the pod's ``br-int``; the neutron Open vSwitch agent patches it to
    ``br-provider``, whose port ``eth1`` is a veth into the lab bridge (see
    ``daemons/openvswitch.py``).
    """

    component = "nova-compute"

    def _agent_files(self, ctx: PodContext) -> list[ConfigFile]:
        names = [ctx.path("etc", "neutron.conf"), ctx.path("etc", "openvswitch_agent.ini")]
        return [
            config.neutron_conf(infra(ctx), apis(ctx), secrets(ctx), venv=venv(ctx),
                                state=ctx.path("data", "neutron"), config_files=names),
            config.openvswitch_agent_ini(local_ip=ctx.pod.ip,
                                         ovsdb=ovs.ovs_paths(ctx.pod_dir).db_url,
                                         bridge=ovs.PROVIDER_BRIDGE, physnet=resources.PHYSNET),
        ]

    def exec_env(self, ctx: PodContext) -> dict[str, str]:
        """The services' environment, with the Open vSwitch tools pointed at the pod's switch."""
        return {**super().exec_env(ctx), **ovs.ovs_paths(ctx.pod_dir).env()}

    def files(self, ctx: PodContext) -> list[RenderedFile]:
        """``nova.conf``, the agent's files and the pod's libvirt configuration."""
        libvirt = netns_etc(ctx) / "libvirt"
        return [
            *etc(ctx, [nova_conf(ctx, ovsdb=ovs.ovs_paths(ctx.pod_dir).db_url),
                       *self._agent_files(ctx)]),
            RenderedFile(libvirt / "qemu.conf", QEMU_CONF),
            RenderedFile(libvirt / "libvirtd.conf", LIBVIRTD_CONF),
        ]

    def programs(self, ctx: PodContext) -> list[Program]:
        """nova-compute (the pod's main program), libvirtd, virtlogd, the switch, the agent."""
        env = self.exec_env(ctx)
        nova = Program(
            name=ctx.pod.name, log=main_log(ctx), env=env, directory=ctx.pod_dir, group=True,
            argv=(binary(ctx, "nova-compute"), "--config-file", str(ctx.path("etc", "nova.conf"))),
            stopwaitsecs=30)
        daemons = [
            Program(name=f"{ctx.pod.name}-{name}", argv=(name,), env=env,
                    log=ctx.path("log", f"{ctx.pod.name}-{name}.log"), stopwaitsecs=20)
            for name in ("virtlogd", "libvirtd")
        ]
        agent_conf = [arg for f in ("neutron.conf", "openvswitch_agent.ini")
                      for arg in ("--config-file", str(ctx.path("etc", f)))]
        agent = Program(
            name=f"{ctx.pod.name}-ovs-agent", env=env, directory=ctx.pod_dir, group=True,
            argv=(binary(ctx, "neutron-openvswitch-agent"), *agent_conf),
            log=ctx.path("log", f"{ctx.pod.name}-ovs-agent.log"), stopwaitsecs=20)
        switch = ovs.ovs_programs(ovs.ovs_paths(ctx.pod_dir), ctx.pod.name, env)
        return [nova, *daemons, *switch, agent]

    def prepare(self, ctxs: Sequence[PodContext], runner: PodRunner) -> None:
        """State directories, the provider link into the lab bridge, the switch's database."""
        for ctx in ctxs:
            # nova writes its compute id into its state directory before it serves.
            ctx.path("data", "instances").mkdir(parents=True, exist_ok=True)
            ctx.path("data", "neutron").mkdir(parents=True, exist_ok=True)
            create_provider_link(Naming(ctx.lab_name), ctx.pod.name, ctx.pod.ip)
            runner.run_in(ctx.pod.name, ovs.ovs_db_init_argv(ovs.ovs_paths(ctx.pod_dir)))

    def converge(self, ctxs: Sequence[PodContext], runner: PodRunner) -> None:
        """Bridges set up; then the hosts mapped into cell1 until nova reports every
        hypervisor, and neutron reports every pod's agent alive."""
        from oaas_lab.adapters import openstack as cloud

        for ctx in ctxs:
            paths = ovs.ovs_paths(ctx.pod_dir)
            await_ready(f"{ctx.pod.name} switch", partial(_bridges, runner, ctx.pod.name, paths),
                        ctx.path("log", f"{ctx.pod.name}-ovs-vswitchd.log"), timeout=120.0)
        api = ctxs[0].others.get("nova-api", ())
        if not api:
            raise_missing("nova-api")
        conn = cloud.connect(clouds_file=ctxs[0].lab_dir / clouds.FILE_NAME)
        wanted = {ctx.pod.name for ctx in ctxs}
        manage = [binary(ctxs[0], "nova-manage"), "--config-file",
                  str(ctxs[0].pod_dir.parent / api[0].name / "etc" / "nova.conf")]

        def registered() -> CheckResult:
            done = runner.run_in(api[0].name, [*manage, "cell_v2", "discover_hosts"],
                                 timeout=120.0, check=False)
            if not done.ok:
                return failed("nova-compute", f"discover_hosts exited {done.returncode}")
            try:
                found = set(cloud.hypervisors(conn))
                agents = {host for kind, host, alive in cloud.network_agents(conn)
                          if alive and kind == OVS_AGENT}
            except cloud.Error as exc:
                return failed("nova-compute", f"API: {type(exc).__name__}")
            if wanted - found:
                return failed("nova-compute",
                              f"hypervisor not registered: {sorted(wanted - found)}")
            if wanted - agents:
                return failed("nova-compute", f"no live network agent: {sorted(wanted - agents)}")
            return passed("nova-compute", f"hypervisors and agents {sorted(found)}")

        await_ready("nova-compute", registered, main_log(ctxs[0]), timeout=self.ready_timeout)


OVS_AGENT = "Open vSwitch agent"


def _bridges(runner: PodRunner, pod: str, paths: ovs.OvsPaths) -> CheckResult:
    """Create the pod's bridges (idempotent); fails while the switch is not up yet."""
    for argv in ovs.bridge_setup_argvs(paths, PROVIDER_IFNAME):
        done = runner.run_in(pod, argv, timeout=60.0, check=False)
        if not done.ok:
            return failed(pod, f"{argv[0]}: {(done.stderr or done.stdout).strip()[:200]}")
    error = runner.run_in(pod, ovs.vsctl(paths, "get", "interface", PROVIDER_IFNAME, "error"),
                          check=False)
    if error.stdout.strip() not in ("[]", ""):
        return failed(pod, f"{PROVIDER_IFNAME}: {error.stdout.strip()}")
    return passed(pod, "br-int and br-provider up")


def port(component: str) -> int:
    """The component's main port, from its spec."""
    return components.by_name()[component].port


def fronted() -> list[str]:
    """The OpenStack components HAProxy serves (in http mode, on the component's own port)."""
    return [c.name for c in components.catalogue()
            if c.front == FRONT and c.tier is components.Tier.OPENSTACK]
