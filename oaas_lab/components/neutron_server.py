"""neutron-server: the networking API. Works when each member lists networks."""

from __future__ import annotations

from pathlib import Path

from oaas_lab.components import openstack_api as api
from oaas_lab.components.spec import Bootstrap, Component, K8sNeeds, OsWorkload, Role, Spec, Tier
from oaas_lab.openstack import config as osconf

ENTRY = Component(
    memory_mib=448,
    name="neutron-server", role=Role.NETWORK, replicas=1, ports={"api": 9696},
    tier=Tier.OPENSTACK, depends_on=("keystone", "rabbitmq"),
    description="networking API (the seed kept network nodes dedicated)", ready_timeout=900.0,
    front="haproxy",
)
NETWORKS = "/v2.0/networks"


def config_files(infra: osconf.Infra, apis: osconf.Apis,
                 secrets: osconf.LabSecrets) -> dict[str, str]:
    """``neutron.conf`` and ``ml2_conf.ini`` for the Kubernetes pods."""
    etc = Path("/etc/neutron")
    files = [
        osconf.neutron_conf(infra, apis, secrets, venv=Path(api.KOLLA_VENV),
                            state=Path(api.STATE),
                            config_files=[etc / "neutron.conf", etc / "ml2_conf.ini"]),
        osconf.ml2_conf(),
    ]
    return {f.name: f.text for f in files}


SPEC: Spec[api.Works] = Spec(
    entry=ENTRY,
    observe=api.api_observer(ENTRY.name, NETWORKS),
    ready=api.members_work(ENTRY.name),
    writer=api.api_requests(ENTRY.name, NETWORKS),
    local="openstack:NeutronServerDriver",
    k8s=K8sNeeds(
        template="openstack.yaml.j2",
        workload=OsWorkload("neutron", "neutron-server",
                            api.wsgi("neutron.wsgi.api:application", ENTRY.port), "/",
                            ("neutron.conf", "ml2_conf.ini"), config=config_files),
        bootstrap=Bootstrap("neutron", "neutron-server", (
            "neutron-db-manage --config-file /etc/neutron/neutron.conf"
            " --config-file /etc/neutron/ml2_conf.ini upgrade heads",
        ), "neutron"),
    ),
)
