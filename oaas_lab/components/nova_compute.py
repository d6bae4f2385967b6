"""nova-compute: the libvirt/QEMU hypervisor, one per compute node. Works when nova reports
the service up, the host is a registered hypervisor and its network agent is alive."""

from __future__ import annotations

from oaas_lab.components import openstack_api as api
from oaas_lab.components.spec import Component, K8sNeeds, OsWorkload, Role, Spec, Tier

ENTRY = Component(
    memory_mib=640,
    name="nova-compute", role=Role.COMPUTE, replicas=1, ports={"vnc": 5900},
    tier=Tier.OPENSTACK, depends_on=("nova-conductor", "placement"),
    description="libvirt/QEMU hypervisor, one per compute node", ready_timeout=900.0,
)

SPEC: Spec[api.Works] = Spec(
    entry=ENTRY,
    observe=api.service_observer(ENTRY.name, hypervisor=True),
    ready=api.members_work(ENTRY.name),
    local="openstack:NovaComputeDriver",
    k8s=K8sNeeds(template="nova-compute.yaml.j2",
                 workload=OsWorkload("nova", "nova-compute", ("nova-compute",),
                                     files=("nova.conf",), per_node=True)),
)
