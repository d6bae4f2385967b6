"""nova-novncproxy: the remote console proxy. Works when each member serves the console page
(its websocket shares the port)."""

from __future__ import annotations

from oaas_lab.components import openstack_api as api
from oaas_lab.components.spec import Component, K8sNeeds, OsWorkload, Role, Spec, Tier

ENTRY = Component(
    memory_mib=160,
    name="nova-novncproxy", role=Role.CONTROLLER, replicas=1, ports={"novnc": 6080},
    tier=Tier.OPENSTACK, depends_on=("nova-api",), description="remote console proxy",
    ready_timeout=600.0, front="haproxy",
)
PAGE = "/vnc_lite.html"

SPEC: Spec[api.Works] = Spec(
    entry=ENTRY,
    observe=api.page_observer(ENTRY.name, PAGE, "noVNC"),
    ready=api.members_work(ENTRY.name),
    local="openstack:NovaServiceDriver",
    k8s=K8sNeeds(template="openstack.yaml.j2",
                 workload=OsWorkload("nova", "nova-novncproxy", ("nova-novncproxy",), PAGE,
                                     ("nova.conf",))),
)
