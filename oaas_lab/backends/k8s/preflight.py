"""``oaas-lab preflight``: are the Vagrant lab's nodes fit to run the stack?

Per node: the kernel modules Kubernetes and Open vSwitch need are loaded, the sysctls
Kubernetes networking needs are set, and chrony says the clock is synchronised; across nodes:
the clocks agree, and the cluster's nodes carry the role labels the manifests select on.
Every check returns a ``CheckResult``; nothing here asserts or prints.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

from oaas_lab.adapters import vagrant_hosts
from oaas_lab.adapters.vagrant_hosts import Host
from oaas_lab.backends.k8s.render import ROLE_LABEL
from oaas_lab.components.spec import Role
from oaas_lab.config import LabConfig
from oaas_lab.errors import LabError, UserError
from oaas_lab.kernel.results import CheckResult, failed, passed

MODULES_ALL = ("br_netfilter", "overlay")
MODULES_NETWORK = ("openvswitch",)
SYSCTLS = {"net.bridge.bridge-nf-call-iptables": "1", "net.ipv4.ip_forward": "1"}
MAX_OFFSET = 0.5
"""Seconds: etcd warns from 1 s of clock difference; stay well below it."""

MIN_NODES = {Role.CONTROLLER: 3, Role.COMPUTE: 1, Role.NETWORK: 1}


def modules_loaded(host: Host, modules: Sequence[str]) -> CheckResult:
    """Every module is in ``/proc/modules`` (or built in, per ``/sys/module``)."""
    loaded = {line.split()[0] for line in host.read("/proc/modules").splitlines() if line}
    missing = [m for m in modules if m not in loaded
               and host.run(["test", "-d", f"/sys/module/{m}"]).rc != 0]
    name = f"{host.name}: kernel modules"
    if missing:
        return failed(name, f"not loaded: {', '.join(missing)}",
                      f"modprobe {' '.join(missing)} (and list them in /etc/modules-load.d/)")
    return passed(name, f"loaded: {', '.join(modules)}")


def sysctls(host: Host, wanted: dict[str, str] = SYSCTLS) -> CheckResult:
    """Each sysctl has the value Kubernetes networking needs."""
    wrong = []
    for key, value in wanted.items():
        got = host.read("/proc/sys/" + key.replace(".", "/")).strip()
        if got != value:
            wrong.append(f"{key}={got or 'absent'}")
    name = f"{host.name}: sysctls"
    if wrong:
        return failed(name, f"wrong: {', '.join(wrong)}",
                      "set them in /etc/sysctl.d/ and run sysctl --system")
    return passed(name, ", ".join(f"{k}={v}" for k, v in wanted.items()))


def clock_synced(host: Host) -> CheckResult:
    """chrony reports a normal leap status and a small offset."""
    out = host.run(["chronyc", "-n", "tracking"])
    name = f"{host.name}: clock"
    if out.rc != 0:
        return failed(name, f"chronyc tracking failed: {out.stderr.strip() or out.stdout.strip()}",
                      "install and start chrony")
    fields = {k.strip(): v.strip() for k, _, v in
              (line.partition(":") for line in out.stdout.splitlines()) if k}
    leap = fields.get("Leap status", "")
    try:
        offset = abs(float(fields.get("System time", "0").split()[0]))
    except ValueError:
        offset = float("inf")
    if leap != "Normal" or offset > MAX_OFFSET:
        return failed(name, f"leap status {leap or 'unknown'}, offset {offset:.3f}s",
                      "check chrony's sources (chronyc sources)", offset=offset)
    return passed(name, f"synchronised, offset {offset:.4f}s", offset=offset)


def clocks_agree(hosts: Sequence[Host], now: Callable[[Host], float] | None = None) -> CheckResult:
    """The nodes' clocks differ by less than ``MAX_OFFSET`` (plus the time to ask them)."""
    def read(host: Host) -> float:
        return float(host.run(["date", "+%s.%N"]).stdout.strip() or "nan")

    stamps = {h.name: (now or read)(h) for h in hosts}
    spread = max(stamps.values()) - min(stamps.values()) if stamps else 0.0
    # Reading the clocks one after the other over SSH takes time itself; allow one second
    # per host for it on top of the real tolerance.
    allowed = MAX_OFFSET + len(stamps)
    if math.isnan(spread) or spread > allowed:  # NaN: a node gave no time
        return failed("clocks agree", f"spread {spread:.2f}s across {len(stamps)} nodes",
                      "fix time sync (chrony) on the nodes", stamps=stamps)
    return passed("clocks agree", f"spread {spread:.2f}s across {len(stamps)} nodes")


def role_labels(nodes: Sequence[dict[str, object]]) -> CheckResult:
    """Enough nodes carry each role label (controller >= 3 for spread quorum members)."""
    counts = dict.fromkeys(MIN_NODES, 0)
    for node in nodes:
        meta = node.get("metadata")
        labels = meta.get("labels", {}) if isinstance(meta, dict) else {}
        for role in MIN_NODES:
            if labels.get(f"{ROLE_LABEL}/{role}") == "true":
                counts[role] += 1
    short = [f"{role}: {counts[role]} < {need}" for role, need in MIN_NODES.items()
             if counts[role] < need]
    detail = ", ".join(f"{role} {counts[role]}" for role in MIN_NODES)
    if short:
        return failed("node role labels", f"too few labelled nodes ({', '.join(short)})",
                      f"kubectl label node NAME {ROLE_LABEL}/ROLE=true")
    return passed("node role labels", detail)


def run(vagrant_dir: str, config: LabConfig) -> list[CheckResult]:
    """Every preflight check of the Vagrant lab in ``vagrant_dir``."""
    root = Path(vagrant_dir)
    machines = vagrant_hosts.machines(root)
    down = [m.name for m in machines if m.state != "running"]
    results = [
        failed("machines running", f"not running: {', '.join(down)}", "run `vagrant up`")
        if down else passed("machines running", f"{len(machines)} machines running")
    ]
    if down:
        return results
    hosts = vagrant_hosts.hosts(root, [m.name for m in machines])
    for host in hosts:
        modules = (*MODULES_ALL, *(MODULES_NETWORK if not host.name.startswith("k8s-cp")
                                  and not host.name.startswith("controller") else ()))
        results += [modules_loaded(host, modules), sysctls(host), clock_synced(host)]
    results.append(clocks_agree(hosts))
    results.append(_labels(config))
    return results


def _labels(config: LabConfig) -> CheckResult:
    from oaas_lab.adapters.kube import Kube

    try:
        kube = Kube(config.k8s.kubeconfig, config.k8s.context)
        nodes = kube.list("v1", "Node")
    except (LabError, UserError) as exc:
        return failed("node role labels", f"cannot list nodes: {exc.one_line()}",
                      "check the kubeconfig vagrant wrote (.vagrant/kubeconfig)")
    return role_labels(nodes)
