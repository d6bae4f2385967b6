"""placement: resource inventories. Works when each member lists resource providers."""

from __future__ import annotations

from oaas_lab.components import openstack_api as api
from oaas_lab.components.spec import Bootstrap, Component, K8sNeeds, OsWorkload, Role, Spec, Tier
from oaas_lab.openstack import config as osconf

ENTRY = Component(
    memory_mib=256,
    name="placement", role=Role.CONTROLLER, replicas=2, ports={"api": 8778},
    tier=Tier.OPENSTACK, depends_on=("keystone",), description="resource inventories",
    ready_timeout=600.0, front="haproxy",
)
PROVIDERS = "/resource_providers"


def config_files(infra: osconf.Infra, apis: osconf.Apis,
                 secrets: osconf.LabSecrets) -> dict[str, str]:
    """``placement.conf`` for the Kubernetes pods."""
    conf = osconf.placement_conf(infra, apis, secrets)
    return {conf.name: conf.text}


SPEC: Spec[api.Works] = Spec(
    entry=ENTRY,
    observe=api.api_observer(ENTRY.name, PROVIDERS),
    ready=api.members_work(ENTRY.name),
    writer=api.api_requests(ENTRY.name, PROVIDERS),
    local="openstack:PlacementDriver",
    k8s=K8sNeeds(
        template="openstack.yaml.j2",
        workload=OsWorkload("placement", "placement-api",
                            api.wsgi("placement.wsgi.api:application", ENTRY.port), "/",
                            ("placement.conf",), config=config_files),
        bootstrap=Bootstrap("placement", "placement-api", ("placement-manage db sync",),
                            "placement"),
    ),
)
