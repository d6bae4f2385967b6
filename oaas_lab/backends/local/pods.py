"""The pod model of the local lab and the state file that lets a later command find the lab.

The state (``<lab_dir>/state.json``) records which components run, how many members each has,
and every pod's node label and IP. ``up``, ``scale``, ``status``, ``kill`` and ``down`` of any
later process read it; only the lab writes it.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from oaas_lab.components.spec import Component, Role
from oaas_lab.errors import LabError, UserError

STATE_FILE = "state.json"
FIRST_POD_HOST = 10  # .1 is the host on the bridge; pods from .10 on
FRONT_HOST = 9
"""The front's virtual address (.9): held by one HAProxy member at a time (keepalived)."""
LAST_POD_HOST = 254


@dataclass(frozen=True)
class PodRecord:
    """One pod as the state file stores it."""

    name: str
    component: str
    ordinal: int
    node: str
    ip: str


def pod_name(component: str, ordinal: int) -> str:
    """``galera-0``: the component name, a dash and the ordinal (also the pod's hostname)."""
    return f"{component}-{ordinal}"


def node_for(component: Component, ordinal: int, controller_nodes: int, compute_nodes: int) -> str:
    """The node label of a member: members spread round-robin over the nodes of their role.

    Ordinal ``i`` of a controller component lands on ``controller-(i mod N)+1``, so the members
    of a quorum sit on different nodes as long as there are enough nodes (anti-affinity).
    """
    if component.role is Role.CONTROLLER:
        return f"controller-{ordinal % controller_nodes + 1}"
    return f"compute-{ordinal % compute_nodes + 1}"


def allocate_ip(subnet: str, used: set[str]) -> str:
    """The lowest free pod address of ``subnet`` (from .10 on)."""
    net = ipaddress.IPv4Network(subnet)
    for host in range(FIRST_POD_HOST, LAST_POD_HOST + 1):
        ip = str(net.network_address + host)
        if ip not in used:
            return ip
    raise LabError(
        f"no free pod address left in {subnet}",
        hint="scale a component down or use a larger lab subnet",
    )


def front_address(subnet: str) -> str:
    """The address clients reach the front at, whichever HAProxy member holds it."""
    return str(ipaddress.IPv4Network(subnet).network_address + FRONT_HOST)


def host_ip(subnet: str) -> str:
    """The host's own address on the lab bridge (.1)."""
    return str(ipaddress.IPv4Network(subnet).network_address + 1)


@dataclass
class LabState:
    """What the lab runs, persisted between commands."""

    name: str
    subnet: str
    replicas: dict[str, int] = field(default_factory=dict)
    pods: dict[str, PodRecord] = field(default_factory=dict)
    supervisord_pid: int | None = None

    def members(self, component: str) -> list[PodRecord]:
        """The pods of ``component`` ordered by ordinal."""
        found = [p for p in self.pods.values() if p.component == component]
        return sorted(found, key=lambda p: p.ordinal)

    def pod(self, name: str) -> PodRecord:
        """The pod called ``name``; ``UserError`` naming the known pods otherwise."""
        try:
            return self.pods[name]
        except KeyError:
            known = ", ".join(sorted(self.pods)) or "none (is the lab up?)"
            raise UserError(
                f"lab {self.name!r} has no pod {name!r}", hint=f"known pods: {known}"
            ) from None

    def add_pod(
        self, component: Component, ordinal: int, controller_nodes: int, compute_nodes: int
    ) -> PodRecord:
        """Record a new member with the next free address; returns it."""
        name = pod_name(component.name, ordinal)
        used = {p.ip for p in self.pods.values()}
        record = PodRecord(
            name=name,
            component=component.name,
            ordinal=ordinal,
            node=node_for(component, ordinal, controller_nodes, compute_nodes),
            ip=allocate_ip(self.subnet, used),
        )
        self.pods[name] = record
        return record

    def to_json(self) -> dict[str, Any]:
        """Plain data for the state file."""
        return {
            "name": self.name,
            "subnet": self.subnet,
            "replicas": dict(self.replicas),
            "pods": {n: asdict(p) for n, p in sorted(self.pods.items())},
            "supervisord_pid": self.supervisord_pid,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabState:
        """The state read back from plain data."""
        return cls(
            name=str(data["name"]),
            subnet=str(data["subnet"]),
            replicas={str(k): int(v) for k, v in data.get("replicas", {}).items()},
            pods={str(n): PodRecord(**p) for n, p in data.get("pods", {}).items()},
            supervisord_pid=data.get("supervisord_pid"),
        )


def load_state(lab_dir: Path) -> LabState | None:
    """The persisted state, or None when the lab was never brought up (or is down)."""
    path = lab_dir / STATE_FILE
    if not path.exists():
        return None
    try:
        return LabState.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise LabError(
            f"{path}: unreadable lab state ({exc})",
            hint="run `oaas-lab down` to remove the lab, then `oaas-lab up`",
        ) from None


def save_state(lab_dir: Path, state: LabState) -> None:
    """Write the state atomically (a crash mid-write must not lose the lab)."""
    lab_dir.mkdir(parents=True, exist_ok=True)
    path = lab_dir / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
