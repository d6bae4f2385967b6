"""The ``k8s`` lab: the ``Lab`` seam on a Kubernetes cluster (``lab``), the manifests rendered
from the component specs and templates (``render``, ``openstack``), their policy checks, and
the deployer that applies them in waves.

Nothing here imports the Kubernetes client; ``oaas_lab.adapters.kube`` is the one module that
talks to the API server, and ``deploy`` is written against its interface (``api.KubeApi``).
"""
