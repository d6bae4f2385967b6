"""horizon: the dashboard, with a shared SECRET_KEY and session cache. Works when each member
serves the login form."""

from __future__ import annotations

from pathlib import Path

from oaas_lab.components import openstack_api as api
from oaas_lab.components.spec import Component, K8sNeeds, OsWorkload, Role, Spec, Tier
from oaas_lab.openstack import config as osconf

ENTRY = Component(
    memory_mib=256,
    name="horizon", role=Role.CONTROLLER, replicas=2, ports={"http": 8080}, tier=Tier.OPENSTACK,
    depends_on=("keystone", "memcached"),
    description="dashboard; shared SECRET_KEY and session cache", ready_timeout=600.0,
    front="haproxy",
)
LOGIN = "/auth/login/"


def config_files(infra: osconf.Infra, apis: osconf.Apis,
                 secrets: osconf.LabSecrets) -> dict[str, str]:
    """``local_settings`` for the Kubernetes pods."""
    settings = osconf.horizon_settings(apis, infra, secrets, allowed_hosts=["*"],
                                       static_root=Path(api.KOLLA_VENV) / "static")
    files = [f for f in settings if f.name.endswith("local_settings.py")]
    return {"local_settings": files[0].text}


SPEC: Spec[api.Works] = Spec(
    entry=ENTRY,
    observe=api.page_observer(ENTRY.name, LOGIN, "csrfmiddlewaretoken"),
    ready=api.members_work(ENTRY.name),
    local="openstack:HorizonDriver",
    k8s=K8sNeeds(
        template="openstack.yaml.j2",
        workload=OsWorkload("openstack-dashboard", "horizon",
                            api.wsgi("openstack_dashboard.wsgi:application", ENTRY.port),
                            LOGIN, ("local_settings",), config=config_files),
    ),
)
