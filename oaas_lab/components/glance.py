"""glance: images. Works when each member lists images with an admin token."""

from __future__ import annotations

from pathlib import Path

from oaas_lab.components import openstack_api as api
from oaas_lab.components.spec import Bootstrap, Component, K8sNeeds, OsWorkload, Role, Spec, Tier
from oaas_lab.openstack import config as osconf

ENTRY = Component(
    memory_mib=256,
    name="glance", role=Role.CONTROLLER, replicas=2, ports={"api": 9292}, tier=Tier.OPENSTACK,
    depends_on=("keystone",), description="images", ready_timeout=600.0, front="haproxy",
)
IMAGES = "/v2/images"


def config_files(infra: osconf.Infra, apis: osconf.Apis,
                 secrets: osconf.LabSecrets) -> dict[str, str]:
    """``glance-api.conf`` for the Kubernetes pods."""
    conf = osconf.glance_api_conf(infra, apis, secrets, venv=Path(api.KOLLA_VENV),
                                  images=Path("/var/lib/glance/images"), state=Path(api.STATE))
    return {conf.name: conf.text}


SPEC: Spec[api.Works] = Spec(
    entry=ENTRY,
    observe=api.api_observer(ENTRY.name, IMAGES),
    ready=api.members_work(ENTRY.name),
    writer=api.api_requests(ENTRY.name, IMAGES),
    local="openstack:GlanceDriver",
    k8s=K8sNeeds(
        template="openstack.yaml.j2",
        workload=OsWorkload("glance", "glance-api",
                            api.wsgi("glance.wsgi.api:application", ENTRY.port), "/healthcheck",
                            ("glance-api.conf",), config=config_files),
        bootstrap=Bootstrap("glance", "glance-api", ("glance-manage db_sync",), "glance"),
    ),
)
