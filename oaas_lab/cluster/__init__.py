"""The embedded Kubernetes cluster: a real single-host cluster that oaas-lab builds and starts.

Not a lab backend: it *starts* a cluster (``oaas-lab cluster up``) that the ``k8s`` backend then
targets by its admin kubeconfig, like any other cluster. Kubernetes and CoreDNS are built from
their Go modules (``build``), the nodes follow the Vagrant lab's topology (``topology``), each
node runs containerd, kubelet and kube-proxy in namespaces of its own (``node``), the control
plane runs on ``k8s-cp`` (``controlplane``), and ``lifecycle`` brings it all up and down.
"""
