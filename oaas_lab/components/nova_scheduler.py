"""nova-scheduler: compute placement decisions; works when nova reports it up on its host."""

from __future__ import annotations

from oaas_lab.components import openstack_api as api
from oaas_lab.components.spec import Component, Role, Spec, Tier

ENTRY = Component(
    memory_mib=224,
    name="nova-scheduler", role=Role.CONTROLLER, replicas=1, ports={}, tier=Tier.OPENSTACK,
    depends_on=("nova-api", "placement"), description="compute placement decisions",
    ready_timeout=600.0,
)

SPEC: Spec[api.Works] = api.nova_worker(ENTRY)
