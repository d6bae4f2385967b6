"""``cluster up``, ``status`` and ``down``: the embedded Kubernetes cluster's lifecycle.

``up`` goes in this order, and a second ``up`` on a healthy cluster starts nothing:

1. refuse what cannot work (missing packages, too little memory, a range already in use);
2. the binaries (built from the Go module proxy once per version) and the node images;
3. host settings the kubelet needs, recorded for ``down``; certificates (once);
4. the nodes' bridge, namespaces, routes and cgroups;
5. etcd, the API server, the controller manager and the scheduler on ``k8s-cp``;
6. per node: containerd (the node's mount namespace), its images, the kubelet, kube-proxy;
7. every node Ready, the control-plane role label, cluster DNS Ready.

What it starts is written to ``<lab_dir>/cluster/state.json`` the moment it starts (PIDs with
their start times, so a reused PID is never signalled), and ``down`` stops exactly that,
then removes every namespace, link, route, cgroup and mount the cluster made and puts the host
settings back. ``down --purge`` also removes the certificates and etcd's data.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oaas_lab import images
from oaas_lab.adapters import iproute, shell
from oaas_lab.adapters.kube import Kube
from oaas_lab.cluster import build, controlplane, dns, host, storage
from oaas_lab.cluster import node as nodes
from oaas_lab.cluster.pki import Pki
from oaas_lab.cluster.topology import CONTROL_PLANE_ROLE, Node, Topology, plan, split_nodes
from oaas_lab.config import LabConfig
from oaas_lab.errors import LabError, NotReadyError, UserError
from oaas_lab.kernel.results import CheckResult, failed, passed
from oaas_lab.kernel.wait import until

STATE_FILE = "state.json"
CONTROL_PLANE_GIB = 1.0
NODE_GIB = 0.35
"""Memory the cluster is refused without: the control plane and each node, with room to spare
(six nodes, cluster DNS and the control plane were seen at 1.7 GiB RSS)."""
READY_TIMEOUT = 240.0
STOP_GRACE = 10.0

TOOLS = {
    "containerd": "containerd", "containerd-shim-runc-v2": "containerd", "ctr": "containerd",
    "runc": "runc", "etcd": "etcd-server", "etcdctl": "etcd-client", "iptables": "iptables",
    "conntrack": "conntrack", "nsenter": "util-linux", "unshare": "util-linux",
    "ip": "iproute2",
}
"""Command -> the Debian package that brings it (all installed by scripts/install-deps)."""

Progress = Callable[[str], None]


ImageSource = Callable[[LabConfig, Path, Progress], dict[str, images.Built]]
"""(configuration, CoreDNS binary, progress) -> ``pause`` and ``coredns`` images."""


def built_images(config: LabConfig, coredns_binary: Path,
                 progress: Progress) -> dict[str, images.Built]:
    """The pause and CoreDNS images, built by ``oaas_lab.images`` (cached by content)."""
    def report(image: str, message: str, _elapsed: float) -> None:
        progress(f"image {image}: {message}")

    built = images.build(["pause", "coredns"], release=config.release,
                         cache_dir=Path(config.cache_dir), progress=report,
                         coredns_binary=coredns_binary)
    return {b.name: b for b in built}


@dataclass
class Daemon:
    """A process the cluster started: where, what, its PID and when it started."""

    node: str
    name: str
    pid: int
    starttime: int
    log: str

    def alive(self) -> bool:
        """True while the very process that was started still runs."""
        return _starttime(self.pid) == self.starttime


def cluster_config(config: LabConfig) -> LabConfig:
    """The configuration of the embedded cluster that ``config`` means: a ``k8s`` lab naming
    ``k8s.cluster`` runs on the cluster of that name; any other lab's cluster has its own."""
    name = config.k8s.cluster if config.lab == "k8s" else None
    return config if name is None else config.model_copy(update={"name": name})


def _starttime(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return None
    # Field 22 (start time), counted after the command name, which may hold spaces.
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


@dataclass
class State:
    """What ``up`` did, for ``status`` and ``down``."""

    daemons: list[Daemon] = field(default_factory=list)
    settings: dict[str, int] = field(default_factory=dict)
    created_paths: list[str] = field(default_factory=list)
    nodes: dict[str, int] = field(default_factory=dict)
    """``controller_nodes`` and ``compute_nodes`` the cluster was made with."""

    @classmethod
    def load(cls, path: Path) -> State:
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(daemons=[Daemon(**d) for d in data.get("daemons", [])],
                   settings=dict(data.get("settings", {})),
                   created_paths=list(data.get("created_paths", [])),
                   nodes=dict(data.get("nodes", {})))

    def save(self, path: Path) -> None:
        data = {"daemons": [vars(d) for d in self.daemons], "settings": self.settings,
                "created_paths": self.created_paths, "nodes": self.nodes}
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)

    def daemon(self, node: str, name: str) -> Daemon | None:
        for daemon in self.daemons:
            if daemon.node == node and daemon.name == name:
                return daemon
        return None


@dataclass(frozen=True)
class DownReport:
    """What ``down`` stopped and what (if anything) it could not remove."""

    stopped: int
    left: list[str]
    restored: dict[str, int]


class EmbeddedCluster:
    """The single-host Kubernetes cluster of one lab (named after it)."""

    def __init__(self, config: LabConfig, progress: Progress | None = None,
                 image_source: ImageSource = built_images, nodes: int | None = None) -> None:
        self.config = config
        self.image_source = image_source
        self.dir = config.lab_dir / "cluster"
        settings = config.cluster
        made = self.state().nodes
        if nodes is not None:
            controllers, computes = split_nodes(nodes)
            asked = {"controller_nodes": controllers, "compute_nodes": computes}
            if made and made != asked and self._running():
                have = 1 + sum(made.values())
                raise UserError(f"cluster {config.name!r} runs with {have} nodes, not {nodes}",
                                hint="oaas-lab cluster down first, or leave out --nodes")
            settings = settings.model_copy(update=asked)
        elif made:
            # The cluster that exists keeps the shape it was made with, whatever the lab file
            # says now: down must find every node it started.
            settings = settings.model_copy(update=made)
        self.topology: Topology = plan(config.name, settings)
        self.pki = Pki(self.dir / "pki")
        self.cache_dir = Path(config.cache_dir)
        self.progress: Progress = progress or (lambda _message: None)
        self.network = host.Network(self.topology)

    # -- paths and state -----------------------------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (mode 0600) for ``oaas-lab deploy`` and the k8s lab."""
        return self.pki.kubeconfig("admin")

    @property
    def state_path(self) -> Path:
        return self.dir / STATE_FILE

    def files(self, node: Node) -> nodes.NodeFiles:
        """Where ``node`` keeps its state."""
        return nodes.NodeFiles(self.dir / "nodes" / node.name)

    def state(self) -> State:
        """What the last ``up`` recorded."""
        return State.load(self.state_path)

    def kube(self) -> Kube:
        """A client with the admin's identity."""
        return Kube(str(self.kubeconfig), timeout=15.0)

    # -- up ------------------------------------------------------------------------------

    def preflight(self) -> None:
        """Refuse up front what this host cannot run; nothing has been changed yet."""
        if os.geteuid() != 0:
            raise UserError("the embedded cluster needs root (namespaces, cgroups, mounts)",
                            hint="run as root")
        host.require_tools(TOOLS)
        available = _mem_available_gib()
        needed = CONTROL_PLANE_GIB + NODE_GIB * len(self.topology.nodes)
        if available < needed and not self._running():
            fits = max(0, int((available - CONTROL_PLANE_GIB) / NODE_GIB))
            raise UserError(
                f"only {available:.1f} GiB of memory available; {len(self.topology.nodes)} "
                f"nodes need {needed:.1f} GiB",
                hint=f"stop other labs (oaas-lab down) or use --nodes {fits} or fewer")
        conflicts = host.subnet_conflicts(self.topology)
        if conflicts:
            raise UserError(
                f"the cluster's ranges are in use on this host: {'; '.join(conflicts)}",
                hint="choose other ranges with cluster.subnet / cluster.pod_cidr / "
                     "cluster.service_cidr in the lab file")

    def _running(self) -> bool:
        return any(d.alive() for d in self.state().daemons)

    def up(self) -> list[CheckResult]:
        """Bring the cluster up (or make sure it is); returns the final status."""
        self.preflight()
        kube_bin = build.kubernetes(self.cache_dir, self.progress)
        coredns_bin = build.coredns(self.cache_dir, self.progress)
        built = self.image_source(self.config, coredns_bin.path("coredns"), self.progress)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        state = self.state()
        if state.daemons and all(d.alive() for d in state.daemons):
            results = self.status()
            if all(r.ok for r in results):
                self.progress("cluster: every node Ready, nothing to change")
                return results
        # Settings first recorded keep their original values across repeated ups.
        for key, value in host.apply_settings().items():
            state.settings.setdefault(key, value)
        roles = [node.roles for node in self.topology.nodes]
        state.nodes = {"controller_nodes": sum("controller" in r for r in roles),
                       "compute_nodes": sum("compute" in r for r in roles)}
        for point in nodes.MOUNT_POINTS:
            if not point.exists():
                point.mkdir(parents=True)
                state.created_paths.append(str(point))
        state.save(self.state_path)
        created = self.pki.ensure(self.topology)
        if created:
            self.progress(f"certificates: created {len(created)} ({self.pki.root}, 0600)")
        self.network.create()
        for node in self.topology.nodes:
            host.create_cgroup(self.topology.cgroup(node))
        self._control_plane(state, kube_bin.bin_dir)
        for node in self.topology.nodes:
            self._node(state, node, kube_bin.bin_dir, built)
        self._wait("nodes Ready", self._nodes_ready)
        self._label_control_plane()
        kube = self.kube()
        for obj in [*storage.objects(), *dns.objects(self.topology, built["coredns"].ref)]:
            kube.apply(obj)
        self._wait("cluster DNS Ready", self._dns_ready)
        return self.status()

    def _start(self, state: State, node: Node, name: str, argv: list[str], log: Path) -> Daemon:
        running = state.daemon(node.name, name)
        if running is not None and running.alive():
            return running
        if running is not None:
            state.daemons.remove(running)
        pid = shell.spawn(argv, log=log)
        daemon = Daemon(node.name, name, pid, _starttime(pid) or 0, str(log))
        state.daemons.append(daemon)
        state.save(self.state_path)
        self.progress(f"{node.name}: {name} started (pid {pid})")
        return daemon

    def _control_plane(self, state: State, bin_dir: Path) -> None:
        cp = self.topology.control_plane
        cp_dir = self.dir / "control-plane"
        cp_dir.mkdir(exist_ok=True)
        enter = ["nsenter", f"--net={host.netns_path(self.topology, cp)}", "--"]
        etcd = self._start(state, cp, "etcd", [*enter, *controlplane.etcd_argv(
            self.dir / "etcd")], cp_dir / "etcd.log")
        self._wait("etcd", lambda: self._etcd_healthy(etcd))
        api = self._start(state, cp, "kube-apiserver", [*enter, *controlplane.apiserver_argv(
            self.topology, self.pki, bin_dir)], cp_dir / "kube-apiserver.log")
        self._wait("kube-apiserver", lambda: self._api_ready(api))
        self._start(state, cp, "kube-controller-manager", [
            *enter, *controlplane.controller_manager_argv(
                self.topology, self.pki, bin_dir, cp_dir / "volume-plugins")],
            cp_dir / "kube-controller-manager.log")
        self._start(state, cp, "kube-scheduler", [
            *enter, *controlplane.scheduler_argv(self.pki, bin_dir)],
            cp_dir / "kube-scheduler.log")

    def _node(self, state: State, node: Node, bin_dir: Path,
              built: dict[str, images.Built]) -> None:
        files = self.files(node)
        for path in files.dirs():
            path.mkdir(parents=True, exist_ok=True)
        files.containerd_config.write_text(
            nodes.containerd_toml(files, built["pause"].ref), encoding="utf-8")
        (files.cni_conf_dir / "10-oaas-lab.conflist").write_text(
            nodes.cni_conflist(node, files), encoding="utf-8")
        files.kubelet_config.write_text(
            nodes.kubelet_yaml(node, self.topology, files, self.pki), encoding="utf-8")
        files.proxy_config.write_text(
            nodes.proxy_yaml(node, self.topology, self.pki), encoding="utf-8")
        previous = state.daemon(node.name, "containerd")
        if previous is not None and not previous.alive():
            # Its kubelet and kube-proxy live in the mount namespace that went with it.
            _stop_all([d for d in state.daemons if d.node == node.name])
        containerd = self._start(
            state, node, "containerd",
            nodes.containerd_argv(host.netns_path(self.topology, node), files),
            files.daemon_log("containerd"))
        # containerd answers within a second: poll it closely, six nodes wait on it in turn
        self._wait(f"{node.name} containerd", lambda: self._containerd_ready(
            containerd, files), interval=0.2)
        self._load_images(containerd, files, built.values())
        self._start(state, node, "kubelet", nodes.join(
            containerd.pid, nodes.kubelet_argv(node, files, self.pki, bin_dir)),
            files.daemon_log("kubelet"))
        self._start(state, node, "kube-proxy", nodes.join(
            containerd.pid, nodes.proxy_argv(files, bin_dir)), files.daemon_log("kube-proxy"))

    def _ctr(self, containerd: Daemon, files: nodes.NodeFiles, *args: str) -> list[str]:
        # ctr runs inside the node, where its /run is: it must not write to the host's.
        return nodes.join(containerd.pid, ["ctr", "-a", str(files.containerd_socket),
                                           "-n", "k8s.io", *args])

    @staticmethod
    def _load_images(containerd: Daemon, files: nodes.NodeFiles,
                     built: Iterable[images.Built]) -> None:
        images.load(built, files.containerd_socket, enter=nodes.join(containerd.pid, []))

    def load_images(self, built: Iterable[images.Built],
                    placement: Mapping[str, Sequence[Mapping[str, str]]] | None = None,
                    ) -> list[str]:
        """Import ``built`` into the nodes' containerd (what each lacks); the nodes done.

        ``placement`` maps an image reference to the node selectors of the pods running it: such
        an image goes only to schedulable nodes one of them matches (an image it does not name
        goes everywhere). Two nodes import at a time: an import is mostly decompression, and
        this host has two cores."""
        state = self.state()
        wanted = list(built)
        where = placement or {}

        def needed(node: Node) -> list[images.Built]:
            def runs_here(image: images.Built) -> bool:
                if image.ref not in where:
                    return True
                return not node.control_plane and any(
                    all(node.labels.get(k) == v for k, v in sel.items())
                    for sel in where[image.ref])
            return [image for image in wanted if runs_here(image)]

        work = [(node, needed(node)) for node in self.topology.nodes]
        daemons = {}
        for node, _ in work:
            containerd = state.daemon(node.name, "containerd")
            if containerd is None or not containerd.alive():
                raise LabError(f"{node.name}: containerd is not running",
                               hint="oaas-lab cluster up")
            daemons[node.name] = containerd
        with ThreadPoolExecutor(max_workers=2) as pool:
            loads = [pool.submit(self._load_images, daemons[node.name], self.files(node), todo)
                     for node, todo in work if todo]
            for load in loads:
                load.result()
        return [node.name for node, todo in work if todo]

    def _task(self, node_name: str, container_id: str, verb: str, *args: str) -> str:
        """``ctr task VERB ... CONTAINER`` on the node's containerd; its output."""
        node = next((n for n in self.topology.nodes if n.name == node_name), None)
        if node is None:
            raise UserError(f"cluster {self.config.name!r} has no node {node_name!r}",
                            hint=f"nodes: {', '.join(n.name for n in self.topology.nodes)}")
        containerd = self.state().daemon(node.name, "containerd")
        if containerd is None or not containerd.alive():
            raise LabError(f"{node.name}: containerd is not running", hint="oaas-lab cluster up")
        argv = ["task", verb, *args] + ([container_id] if verb != "ls" else [])
        done = shell.run(self._ctr(containerd, self.files(node), *argv), timeout=30,
                         check=False)
        if done.returncode != 0:
            raise LabError(f"{node.name}: cannot {verb} container {container_id[:12]}: "
                           f"{(done.stderr or done.stdout).strip()}",
                           hint="it may have ended already; see `oaas-lab status`")
        return done.stdout

    def kill_container(self, node_name: str, container_id: str) -> None:
        """SIGKILL every process of one container on ``node_name``, as a crash would end it:
        the kubelet restarts it in the same pod, its volumes and address unchanged."""
        self._task(node_name, container_id, "kill", "--signal", "SIGKILL", "--all")

    def pause_container(self, node_name: str, container_id: str) -> None:
        """Freeze one container's processes (the cgroup freezer), as a stalled machine would."""
        self._task(node_name, container_id, "pause")

    def resume_container(self, node_name: str, container_id: str) -> None:
        """Thaw a container ``pause_container`` froze."""
        self._task(node_name, container_id, "resume")

    def container_pid(self, node_name: str, container_id: str) -> int:
        """The host PID of the container's first process (its namespaces are the pod's)."""
        for line in self._task(node_name, container_id, "ls").splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[0] == container_id and fields[1].isdigit():
                return int(fields[1])
        raise LabError(f"{node_name}: container {container_id[:12]} has no running task",
                       hint="it may be restarting; see `oaas-lab status`")

    def _label_control_plane(self) -> None:
        cp = self.topology.control_plane
        self.kube().patch("v1", "Node", cp.name, None,
                          {"metadata": {"labels": {CONTROL_PLANE_ROLE: ""}}})

    # -- waiting and judging -------------------------------------------------------------

    def _wait(self, what: str, check: Callable[[], CheckResult], interval: float = 1.0) -> None:
        def report(result: CheckResult, elapsed: float) -> None:
            if not result.ok and int(elapsed) % 15 == 0 and elapsed >= 1:
                self.progress(f"{what}: waiting ({elapsed:.0f}s): {result.detail}")

        result, _ = until(check, timeout=READY_TIMEOUT, interval=interval,
                          fatal=lambda r: bool(r.evidence.get("dead")), progress=report)
        if not result.ok:
            raise NotReadyError(what, result.detail, str(result.hint))
        self.progress(f"{what}: ready")

    @staticmethod
    def _dead(daemon: Daemon) -> CheckResult:
        return failed(daemon.name, f"{daemon.name} exited", hint=daemon.log, dead=True)

    def _etcd_healthy(self, etcd: Daemon) -> CheckResult:
        if not etcd.alive():
            return self._dead(etcd)
        cp = self.topology.control_plane
        done = shell.run(["nsenter", f"--net={host.netns_path(self.topology, cp)}", "--",
                          "etcdctl", f"--endpoints={controlplane.ETCD_CLIENT}",
                          "--command-timeout=2s", "endpoint", "health"],
                         env={"ETCDCTL_API": "3"}, check=False, timeout=10)
        if done.ok:
            return passed("etcd", "healthy")
        return failed("etcd", (done.stderr or done.stdout).strip()[-200:], hint=etcd.log)

    def _api_ready(self, api: Daemon) -> CheckResult:
        if not api.alive():
            return self._dead(api)
        try:
            text = self.kube().raw_get("/readyz")
        except LabError as exc:
            return failed("kube-apiserver", exc.message[:200], hint=api.log)
        return passed("kube-apiserver", text.strip())

    def _containerd_ready(self, containerd: Daemon, files: nodes.NodeFiles) -> CheckResult:
        if not containerd.alive():
            return self._dead(containerd)
        if not files.containerd_socket.exists():
            return failed("containerd", "no socket yet", hint=containerd.log)
        done = shell.run(self._ctr(containerd, files, "version"), check=False, timeout=10)
        return (passed("containerd", "answers") if done.ok
                else failed("containerd", done.stderr.strip()[-200:], hint=containerd.log))

    def _nodes_ready(self) -> CheckResult:
        results = self._node_results()
        bad = [r for r in results if not r.ok]
        dead = [r for r in bad if r.evidence.get("dead")]
        if dead:
            return failed("nodes", "; ".join(r.detail for r in dead), hint=dead[0].hint,
                          dead=True)
        if bad:
            return failed("nodes", f"{len(results) - len(bad)}/{len(results)} Ready; "
                          + "; ".join(r.detail for r in bad[:3]), hint=bad[0].hint)
        return passed("nodes", f"{len(results)}/{len(results)} Ready")

    def _dns_ready(self) -> CheckResult:
        return dns_result(self.kube().get("apps/v1", "Deployment", dns.NAME, dns.NAMESPACE))

    def _node_results(self) -> list[CheckResult]:
        state = self.state()
        try:
            listed = {n["metadata"]["name"]: n for n in self.kube().list("v1", "Node")}
        except LabError as exc:
            listed, api_error = {}, exc.message
        else:
            api_error = ""
        results = []
        for node in self.topology.nodes:
            files = self.files(node)
            missing = [name for name in ("containerd", "kubelet", "kube-proxy")
                       if (d := state.daemon(node.name, name)) is None or not d.alive()]
            if missing:
                results.append(failed(node.name, f"{node.name}: {', '.join(missing)} not "
                                      "running", hint=str(files.daemon_log(missing[0])),
                                      dead=True))
                continue
            results.append(node_result(node, listed.get(node.name), api_error,
                                       str(files.daemon_log("kubelet"))))
        return results

    # -- status ----------------------------------------------------------------------------

    def status(self) -> list[CheckResult]:
        """The control plane, every node and cluster DNS: working or not, and why."""
        state = self.state()
        cp = self.topology.control_plane
        results = []
        for name in controlplane.DAEMONS:
            daemon = state.daemon(cp.name, name)
            if daemon is None or not daemon.alive():
                log = daemon.log if daemon else str(self.dir / "control-plane")
                results.append(failed(name, "not running", hint=f"oaas-lab cluster up; {log}"))
                continue
            results.append(passed(name, f"running (pid {daemon.pid})"))
        if not all(r.ok for r in results):
            return results
        try:
            readyz = self.kube().raw_get("/readyz", [("verbose", "true")])
        except LabError as exc:
            results.append(failed("readyz", exc.message))
            return results
        ok = readyz.strip().endswith("readyz check passed")
        results.append(CheckResult("readyz", ok, readyz.strip().splitlines()[-1],
                                   evidence={"readyz": readyz}))
        results += self._node_results()
        try:
            results.append(self._dns_ready())
        except LabError as exc:
            results.append(failed("cluster DNS", exc.message))
        return results

    # -- down ------------------------------------------------------------------------------

    def down(self, purge: bool = False) -> DownReport:
        """Stop what ``up`` started and remove what it made; the host as it was."""
        state = self.state()
        # etcd last: an API server whose etcd is gone hangs in its graceful shutdown.
        stopped = _stop_all([d for d in state.daemons if d.name != "etcd"])
        stopped += _stop_all([d for d in state.daemons if d.name == "etcd"])
        # What the daemons leave running: shims and pods (in the nodes' namespaces and cgroups).
        for node in self.topology.nodes:
            stopped += _kill_until_gone(self.topology.netns(node), self.topology.cgroup(node))
        left: list[str] = []
        for node in self.topology.nodes:
            left += host.remove_cgroup(self.topology.cgroup(node))
        self.network.delete()
        left += self.network.leftovers()
        host.restore_settings(state.settings)
        for created in state.created_paths:
            with contextlib.suppress(OSError):
                Path(created).rmdir()
            if Path(created).exists():
                left.append(f"{created} (not empty)")
        for node in self.topology.nodes:
            shutil.rmtree(self.files(node).root, ignore_errors=True)
        if purge:
            shutil.rmtree(self.dir, ignore_errors=True)
            # The volumes' directories go with the cluster data that knew them.
            shutil.rmtree(storage.PV_ROOT, ignore_errors=True)
        elif self.state_path.exists():
            self.state_path.unlink()
        return DownReport(stopped=stopped, left=left, restored=state.settings)


# -- pure judges ----------------------------------------------------------------------------

def node_result(node: Node, obj: dict[str, Any] | None, api_error: str,
                log: str) -> CheckResult:
    """A node's health from its Node object: Ready, or why not."""
    if obj is None:
        why = api_error or "not registered yet"
        return failed(node.name, f"{node.name}: {why}", hint=log)
    conditions = {c["type"]: c for c in obj.get("status", {}).get("conditions", [])}
    ready = conditions.get("Ready", {})
    labels = obj.get("metadata", {}).get("labels", {})
    roles = ",".join(sorted(k.rsplit("/", 1)[1] for k in labels
                            if k.startswith(("node-role.oaas-lab.io/", "node-role.kubernetes"))))
    if ready.get("status") == "True":
        return passed(node.name, f"{node.name}: Ready ({roles or 'no role'})", labels=labels)
    pressure = [t for t, c in conditions.items() if t != "Ready" and c.get("status") == "True"]
    why = ready.get("message") or ready.get("reason") or "no Ready condition yet"
    if pressure:
        why += f" ({', '.join(pressure)})"
    return failed(node.name, f"{node.name}: not Ready: {why}", hint=log)


def dns_result(deployment: dict[str, Any] | None) -> CheckResult:
    """Cluster DNS is up when every CoreDNS replica is available."""
    if deployment is None:
        return failed("cluster DNS", "no CoreDNS deployment", hint="oaas-lab cluster up")
    want = int(deployment.get("spec", {}).get("replicas", 0))
    have = int(deployment.get("status", {}).get("availableReplicas", 0) or 0)
    if want and have >= want:
        return passed("cluster DNS", f"CoreDNS {have}/{want} available")
    return failed("cluster DNS", f"CoreDNS {have}/{want} available",
                  hint="oaas-lab cluster status; the pods' events say why")


# -- processes ------------------------------------------------------------------------------

def _gone(pids: Callable[[], list[int]], timeout: float) -> bool:
    """Wait until ``pids()`` is empty; False when ``timeout`` passed first."""
    def check() -> CheckResult:
        left = pids()
        return passed("stopped", "all gone") if not left else failed("stopped", f"{left}")

    return until(check, timeout=timeout, interval=0.2)[0].ok


def _stop_all(daemons: list[Daemon]) -> int:
    """SIGTERM every daemon still running (only the very processes started), SIGKILL those
    still there after the grace period; returns how many were running."""
    running = [d for d in daemons if d.alive()]
    for signum in (signal.SIGTERM, signal.SIGKILL):
        for daemon in running:
            if daemon.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(daemon.pid, signum)
        if _gone(lambda: [d.pid for d in running if d.alive()], STOP_GRACE):
            break
    return len(running)


def _kill_until_gone(netns: str, cgroup: str) -> int:
    """SIGKILL what runs in a node's network namespace and cgroups until nothing does."""
    killed: set[int] = set()

    def kill() -> list[int]:
        pids = iproute.kill_netns_processes(netns) + host.kill_cgroup(cgroup)
        killed.update(pids)
        return pids

    if not _gone(kill, STOP_GRACE):
        raise LabError(f"processes of {netns} survive SIGKILL: {kill()}",
                       hint="they may be in uninterruptible sleep; run cluster down again")
    return len(killed)


def _mem_available_gib() -> float:
    for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / (1 << 20)
    return 0.0

