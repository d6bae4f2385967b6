"""nova-api: the compute API, owner of nova's databases and cells. Works when each member
lists flavors; the probe lists servers."""

from __future__ import annotations

from pathlib import Path

from oaas_lab.components import openstack_api as api
from oaas_lab.components.spec import Bootstrap, Component, K8sNeeds, OsWorkload, Role, Spec, Tier
from oaas_lab.openstack import config as osconf

ENTRY = Component(
    memory_mib=384,
    name="nova-api", role=Role.CONTROLLER, replicas=2, ports={"api": 8774}, tier=Tier.OPENSTACK,
    # Not placement: the API and its schemas do not need it, so both start after keystone;
    # the scheduler and compute, which do, wait for it.
    depends_on=("keystone", "rabbitmq"),
    description="compute API; owns nova's databases and cells", ready_timeout=900.0,
    front="haproxy",
)


def config_files(infra: osconf.Infra, apis: osconf.Apis,
                 secrets: osconf.LabSecrets) -> dict[str, str]:
    """``nova.conf`` shared by every nova pod on Kubernetes; ``my_ip`` and ``host`` are per
    pod, given by the ``OS_DEFAULT__*`` environment that overrides the file."""
    etc = Path("/etc/nova")
    host = osconf.NovaHost(my_ip="127.0.0.1", host="nova", state=Path(api.STATE),
                           config_path=etc / "nova.conf", venv=Path(api.KOLLA_VENV))
    conf = osconf.nova_conf(infra, apis, secrets, host)
    return {conf.name: conf.text}


SPEC: Spec[api.Works] = Spec(
    entry=ENTRY,
    observe=api.api_observer(ENTRY.name, "/v2.1/flavors"),
    ready=api.members_work(ENTRY.name),
    writer=api.api_requests(ENTRY.name, "/v2.1/servers"),
    local="openstack:NovaApiDriver",
    k8s=K8sNeeds(
        template="openstack.yaml.j2",
        workload=OsWorkload("nova", "nova-api",
                            api.wsgi("nova.wsgi.osapi_compute:application", ENTRY.port), "/",
                            ("nova.conf",), config=config_files),
        bootstrap=Bootstrap("nova", "nova-api", (
            "nova-manage api_db sync",
            "nova-manage cell_v2 map_cell0",
            "nova-manage cell_v2 list_cells | grep -q ' cell1 '"
            " || nova-manage cell_v2 create_cell --name cell1",
            "nova-manage db sync",
        ), "nova"),
    ),
)
