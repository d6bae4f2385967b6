"""Cluster DNS: CoreDNS in ``kube-system`` behind the ``kube-dns`` Service, as objects.

It answers for ``cluster.local`` (Services, headless Services' pods, reverse lookups) and for
nothing else: there is no ``forward``, so a name outside the cluster is never sent to any
resolver beyond it.
"""

from __future__ import annotations

from typing import Any

from oaas_lab.cluster.topology import CLUSTER_DOMAIN, CONTROL_PLANE_ROLE, Topology

NAMESPACE = "kube-system"
NAME = "coredns"
SERVICE = "kube-dns"
LABELS = {"k8s-app": "kube-dns"}
REPLICAS = 2

COREFILE = f""".:53 {{
    errors
    health {{
        lameduck 5s
    }}
    ready
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
    cache 30
    reload
    loadbalance
}}
"""


def objects(topology: Topology, image: str) -> list[dict[str, Any]]:
    """Everything cluster DNS is, in apply order."""
    meta = {"namespace": NAMESPACE, "labels": dict(LABELS)}
    rules = [
        {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
         "verbs": ["list", "watch"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
         "verbs": ["list", "watch"]},
    ]
    probe_port = {"ready": 8181, "health": 8080}
    # Two replicas on two nodes where the scheduler can: one node lost keeps DNS answering.
    spread = {"weight": 100, "podAffinityTerm": {
        "labelSelector": {"matchLabels": dict(LABELS)}, "topologyKey": "kubernetes.io/hostname"}}
    container = {
        "name": NAME, "image": image, "imagePullPolicy": "Never",
        "args": ["-conf", "/etc/coredns/Corefile"],
        "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                  {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "20m", "memory": "32Mi"},
                      "limits": {"memory": "128Mi"}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": probe_port["ready"]},
                           "periodSeconds": 2},
        "livenessProbe": {"httpGet": {"path": "/health", "port": probe_port["health"]},
                          "initialDelaySeconds": 10, "periodSeconds": 10},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": NAME, **meta}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": f"system:{NAME}", "labels": dict(LABELS)}, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": f"system:{NAME}", "labels": dict(LABELS)},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": f"system:{NAME}"},
         "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": NAME, **meta},
         "data": {"Corefile": COREFILE}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": SERVICE, **meta},
         "spec": {"selector": dict(LABELS), "clusterIP": topology.dns_ip, "ports": [
             {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
             {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": NAME, **meta},
         "spec": {
             "replicas": REPLICAS, "selector": {"matchLabels": dict(LABELS)},
             "template": {"metadata": {"labels": dict(LABELS)}, "spec": {
                 "serviceAccountName": NAME,
                 "priorityClassName": "system-cluster-critical",
                 "dnsPolicy": "Default",
                 "tolerations": [{"key": CONTROL_PLANE_ROLE, "effect": "NoSchedule"}],
                 "affinity": {"podAntiAffinity": {"preferredDuringScheduling"
                                                  "IgnoredDuringExecution": [spread]}},
                 "containers": [container],
                 "volumes": [{"name": "config", "configMap": {"name": NAME}}],
             }},
         }},
    ]
