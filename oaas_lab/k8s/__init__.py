"""The Kubernetes lab: manifests rendered from templates, policy checks, and the deployer.

Nothing here imports the Kubernetes client; ``oaas_lab.adapters.kube`` is the one module that
talks to the API server, and ``deploy`` is written against its interface (``api.KubeApi``).
"""
