"""What one node runs and how: containerd, kubelet and kube-proxy in the node's namespaces.

A node is a network namespace (its ``eth0`` on the nodes' bridge, its own routes, forwarding
and iptables) plus a mount namespace that containerd creates when it starts and the kubelet
and kube-proxy then join. In it, ``/run`` is a fresh tmpfs (containerd's shims keep their
sockets under ``/run/containerd`` whatever the configuration says), ``/var/log`` and
``/var/lib/cni`` are the node's own directories, and every mount containerd and the kubelet
make (image layers, pod volumes, pod network namespaces) stays inside: when the node's last
process ends, its mounts are gone with the namespace. ``/sys`` stays the host's, so the
kubelet sees the cgroup hierarchies; each node's cgroups sit under a parent of its own.

Everything here is pure: file contents and argument vectors. ``oaas_lab.cluster.lab`` runs them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from oaas_lab.cluster.pki import CA, Pki
from oaas_lab.cluster.topology import CLUSTER_DOMAIN, Node, Topology

CNI_BIN = "/usr/lib/cni"
RUNC = "/usr/sbin/runc"
HOST_CNI_STATE = Path("/var/lib/cni")
HOST_KUBELET_DIR = Path("/var/lib/kubelet")
MOUNT_POINTS = (HOST_CNI_STATE, HOST_KUBELET_DIR)
"""Paths hard-coded in libcni (its result cache) and the kubelet (the device-plugin socket)
whatever they are told: each node mounts its own directory over them, so the host keeps
at most the empty mount point (created if missing, removed by ``cluster down``)."""
POD_BRIDGE = "cni0"

# Run as the first process of the node's mount namespace: make its mounts private to it, give
# it its own /run, /var/log, /var/lib/cni and /var/lib/kubelet, then become containerd.
MOUNT_SCRIPT = (
    'set -e; mount --make-rshared /; mount -t tmpfs -o mode=0755 tmpfs /run; '
    'mount --bind "$1" /var/log; mount --bind "$2" /var/lib/cni; '
    'mount --bind "$3" /var/lib/kubelet; shift 3; exec "$@"'
)


@dataclass(frozen=True)
class NodeFiles:
    """Where one node keeps its state (``<cluster_dir>/nodes/<name>``)."""

    root: Path

    @property
    def containerd_config(self) -> Path:
        return self.root / "containerd.toml"

    @property
    def containerd_socket(self) -> Path:
        return self.root / "containerd" / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def cni_state(self) -> Path:
        return self.root / "cni" / "state"

    @property
    def kubelet_dir(self) -> Path:
        return self.root / "kubelet"

    @property
    def kubelet_config(self) -> Path:
        return self.root / "kubelet.yaml"

    @property
    def proxy_config(self) -> Path:
        return self.root / "kube-proxy.yaml"

    @property
    def log_dir(self) -> Path:
        """Mounted over ``/var/log`` inside the node: pod and container logs land here."""
        return self.root / "log"

    def daemon_log(self, daemon: str) -> Path:
        return self.root / f"{daemon}.log"

    def dirs(self) -> list[Path]:
        """Every directory that must exist before the node starts."""
        return [self.root, self.containerd_socket.parent, self.cni_conf_dir, self.cni_state,
                self.kubelet_dir, self.log_dir, self.root / "volume-plugins",
                self.root / "containerd" / "root", self.root / "containerd" / "state",
                self.root / "runc"]


def containerd_toml(files: NodeFiles, pause_image: str) -> str:
    """containerd 1.6's configuration for one node.

    ``restrict_oom_score_adj``: root lacks ``CAP_SYS_RESOURCE`` here, so no process may lower
    its OOM score; without it runc fails with "can't get final child's PID from pipe".
    ``sandbox_image`` is the locally built pause image: no registry can be reached.
    """
    root = files.root / "containerd"
    return f"""version = 2
root = "{root / 'root'}"
state = "{root / 'state'}"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{files.containerd_socket}"
[ttrpc]
  address = "{files.containerd_socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{root / 'opt'}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_image}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "{RUNC}"
        Root = "{files.root / 'runc'}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{files.cni_conf_dir}"
    max_conf_num = 1
"""


def cni_conflist(node: Node, files: NodeFiles) -> str:
    """The bridge network of the node's pods: ``cni0`` holds the gateway, pods get addresses
    from the node's /24 and a default route to it (where nothing lies beyond the cluster: the
    node itself has no default route)."""
    doc = {
        "cniVersion": "1.0.0",
        "name": "oaas-lab",
        "plugins": [{
            "type": "bridge", "bridge": POD_BRIDGE, "isGateway": True,
            "isDefaultGateway": True, "ipMasq": False, "hairpinMode": True,
            "ipam": {
                "type": "host-local", "dataDir": str(files.cni_state / "ipam"),
                "ranges": [[{"subnet": node.pod_cidr, "gateway": node.pod_gateway}]],
            },
        }],
    }
    return json.dumps(doc, indent=2) + "\n"


def kubelet_yaml(node: Node, topology: Topology, files: NodeFiles, pki: Pki) -> str:
    """The kubelet's configuration file."""
    doc = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": node.ip,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(pki.cert(CA))}},
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{files.containerd_socket}",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{topology.cgroup(node)}",
        # cgroup v1 hosts: 1.34 still runs on them when asked (later releases refuse).
        "failCgroupV1": False,
        "failSwapOn": False,
        # The kubelet would lower its own OOM score; root here may not (no CAP_SYS_RESOURCE).
        "oomScoreAdj": 0,
        "clusterDomain": CLUSTER_DOMAIN,
        "clusterDNS": [topology.dns_ip],
        # No host resolver reaches pods: cluster DNS answers for the cluster and nothing else.
        "resolvConf": "",
        "registerNode": True,
        "registerWithTaints": [
            {"key": taint.split(":")[0], "effect": taint.split(":")[1]}
            for taint in node.taints
        ],
        "serializeImagePulls": False,
        "evictionHard": {"memory.available": "200Mi", "nodefs.available": "5%",
                         "imagefs.available": "5%"},
        # Six kubelets share one disk; the others' images must not push this one into GC.
        "imageGCHighThresholdPercent": 95,
        "imageGCLowThresholdPercent": 90,
        "volumePluginDir": str(files.root / "volume-plugins"),
        "podPidsLimit": -1,
        "maxPods": 110,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "nodeStatusReportFrequency": "1m",
        "syncFrequency": "1m",
        "shutdownGracePeriod": "0s",
    }
    return yaml.safe_dump(doc, sort_keys=False)


def proxy_yaml(node: Node, topology: Topology, pki: Pki) -> str:
    """kube-proxy's configuration: iptables mode in the node's own network namespace.

    Conntrack limits are left as the kernel has them (the conntrack table is the host's).
    """
    doc = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(pki.kubeconfig("kube-proxy"))},
        "mode": "iptables",
        "clusterCIDR": topology.pod_cidr,
        "hostnameOverride": node.name,
        "bindAddress": node.ip,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "nodePortAddresses": [f"{node.ip}/32"],
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                      "tcpCloseWaitTimeout": "0s"},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def containerd_argv(netns_path: str, files: NodeFiles) -> list[str]:
    """containerd as the first process of the node's mount namespace."""
    return [
        "nsenter", f"--net={netns_path}", "--",
        "unshare", "--mount", "--propagation", "slave", "--",
        "sh", "-c", MOUNT_SCRIPT, "node-mounts", str(files.log_dir), str(files.cni_state),
        str(files.kubelet_dir), "containerd", "--config", str(files.containerd_config),
    ]


def join(anchor_pid: int, argv: list[str]) -> list[str]:
    """``argv`` run in the network and mount namespaces of the node's containerd."""
    return ["nsenter", "-t", str(anchor_pid), "--net", "--mount", "--", *argv]


def kubelet_argv(node: Node, files: NodeFiles, pki: Pki, bin_dir: Path) -> list[str]:
    """The kubelet: what its configuration file cannot say."""
    argv = [
        str(bin_dir / "kubelet"), f"--config={files.kubelet_config}",
        f"--kubeconfig={pki.kubeconfig(f'kubelet-{node.name}')}",
        f"--root-dir={files.kubelet_dir}", f"--cert-dir={files.kubelet_dir / 'pki'}",
        f"--hostname-override={node.name}", f"--node-ip={node.ip}", "--v=1",
    ]
    if node.labels:
        argv.append("--node-labels=" + ",".join(f"{k}={v}" for k, v in node.labels.items()))
    return argv


def proxy_argv(files: NodeFiles, bin_dir: Path) -> list[str]:
    """kube-proxy with its configuration file."""
    return [str(bin_dir / "kube-proxy"), f"--config={files.proxy_config}", "--v=1"]
