"""keystone: identity. Works when each member issues an admin token; the fernet keys are
shared by every member."""

from __future__ import annotations

from pathlib import Path

from oaas_lab.components import openstack_api as api
from oaas_lab.components.spec import Bootstrap, Component, K8sNeeds, OsWorkload, Role, Spec, Tier
from oaas_lab.openstack import config as osconf

ENTRY = Component(
    memory_mib=320,
    name="keystone", role=Role.CONTROLLER, replicas=2, ports={"api": 5000}, tier=Tier.OPENSTACK,
    depends_on=("haproxy", "memcached"), description="identity; fernet keys shared by every member",
    ready_timeout=600.0, front="haproxy",
)


def config_files(infra: osconf.Infra, apis: osconf.Apis,
                 secrets: osconf.LabSecrets) -> dict[str, str]:
    """``keystone.conf`` for the Kubernetes pods (keys mounted from Secrets)."""
    etc = Path("/etc/keystone")
    conf = osconf.keystone_conf(infra, secrets, fernet_keys=etc / "fernet-keys",
                                credential_keys=etc / "credential-keys")
    return {conf.name: conf.text}


SPEC: Spec[api.Works] = Spec(
    entry=ENTRY,
    observe=api.token_observer(ENTRY.name),
    ready=api.members_work(ENTRY.name),
    writer=api.api_requests(ENTRY.name),
    local="openstack:KeystoneDriver",
    k8s=K8sNeeds(
        template="openstack.yaml.j2", identity=True,
        workload=OsWorkload("keystone", "keystone",
                            api.wsgi("keystone.wsgi.api:application", ENTRY.port), "/v3",
                            ("keystone.conf",), config=config_files),
        bootstrap=Bootstrap("keystone", "keystone", (
            "keystone-manage db_sync",
            "keystone-manage bootstrap --bootstrap-username admin --bootstrap-project-name admin"
            " --bootstrap-role-name admin --bootstrap-admin-url \"${KEYSTONE_URL}\""
            " --bootstrap-internal-url \"${KEYSTONE_URL}\""
            " --bootstrap-public-url \"${KEYSTONE_URL}\" --bootstrap-region-id RegionOne",
        )),
    ),
)
