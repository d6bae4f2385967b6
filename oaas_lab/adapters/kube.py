"""The Kubernetes API: the only module of oaas-lab that imports the ``kubernetes`` client.

It speaks plain objects (dicts as the API serves them), addressed by ``apiVersion``/``kind``,
through the client's REST layer, so one code path serves every kind: server-side apply
(``PATCH`` with ``application/apply-patch+yaml``), get, list by labels, delete, merge patch,
logs, and exec over the pod's websocket. Failures become ``KubeError``/``LabError`` with the
API server's own message; a missing kubeconfig is a ``ConfigError``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from oaas_lab.errors import ConfigError, LabError
from oaas_lab.kernel.command import CommandResult

FIELD_MANAGER = "oaas-lab"

RESOURCES: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "Node"): ("nodes", False),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Service"): ("services", True),
    ("v1", "Pod"): ("pods", True),
    ("v1", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("v1", "PersistentVolume"): ("persistentvolumes", False),
    ("storage.k8s.io/v1", "StorageClass"): ("storageclasses", False),
    ("v1", "Event"): ("events", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("networkpolicies", True),
    ("apps/v1", "StatefulSet"): ("statefulsets", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "DaemonSet"): ("daemonsets", True),
    ("batch/v1", "Job"): ("jobs", True),
}
"""(apiVersion, kind) -> (resource plural, namespaced): every kind oaas-lab handles."""


class KubeError(LabError):
    """The API server refused a request; ``status`` is its HTTP status code."""

    def __init__(self, what: str, status: int, message: str) -> None:
        super().__init__(f"{what}: {status} {message}")
        self.status = status


def resource_path(api_version: str, kind: str, namespace: str | None,
                  name: str | None = None) -> str:
    """The REST path of a kind (a collection) or of one object."""
    try:
        plural, namespaced = RESOURCES[(api_version, kind)]
    except KeyError:
        raise LabError(f"oaas-lab does not handle {api_version} {kind}") from None
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    if namespaced:
        if not namespace:
            raise LabError(f"{kind} {name or ''} needs a namespace")
        base += f"/namespaces/{quote(namespace)}"
    path = f"{base}/{plural}"
    return f"{path}/{quote(name)}" if name else path


def label_selector(labels: Mapping[str, str]) -> str:
    """``k=v,k2=v2``: an equality selector."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def default_kubeconfig(explicit: str | None) -> str | None:
    """The kubeconfig to use: the configured one, else the Vagrant lab's, else the client's.

    ``vagrant up`` writes ``.vagrant/kubeconfig`` in the repository; when it exists in the
    current directory and nothing else was given, oaas-lab uses it.
    """
    if explicit:
        return explicit
    vagrant = Path(".vagrant") / "kubeconfig"
    if vagrant.is_file() and "KUBECONFIG" not in os.environ:
        return str(vagrant)
    return None


class Kube:
    """A connection to one cluster, as the kubeconfig (and context) describe it."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None,
                 timeout: float = 30.0) -> None:
        from kubernetes import client, config

        self.timeout = timeout
        cfg = client.Configuration()
        path = default_kubeconfig(kubeconfig)
        if path is not None and not Path(path).is_file():
            raise ConfigError("k8s.kubeconfig", "", f"{path} does not exist",
                              "give --kubeconfig PATH (vagrant up writes .vagrant/kubeconfig)")
        try:
            # the client's config loader carries no annotations
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=path, context=context, client_configuration=cfg,
            )
        except config.ConfigException as exc:
            raise ConfigError(
                path or os.environ.get("KUBECONFIG", "~/.kube/config"), "",
                f"unusable kubeconfig ({exc})", "give --kubeconfig PATH or set k8s.context",
            ) from None
        self.host = str(cfg.host)
        self._cfg = cfg
        self._api = client.ApiClient(cfg)

    def _call(self, method: str, path: str, *, query: Sequence[tuple[str, str]] = (),
              body: object = None, content_type: str = "application/json",
              allow_missing: bool = False) -> str | None:
        """Send one request; the response text, or None for a 404 the caller allows."""
        from urllib3.exceptions import HTTPError

        headers = {"Accept": "application/json", "Content-Type": content_type}
        method_, url, hdrs, data, post = self._api.param_serialize(
            method=method, resource_path=path, query_params=list(query),
            header_params=headers, body=body, auth_settings=["BearerToken"],
        )
        try:
            resp = self._api.call_api(method_, url, hdrs, data, post,
                                      _request_timeout=(5, self.timeout))
            payload = resp.read()  # type: ignore[no-untyped-call]
        except HTTPError as exc:
            raise LabError(
                f"cannot reach the Kubernetes API at {self.host}: {exc}",
                hint="check that the cluster is up and --kubeconfig points at it",
            ) from None
        if resp.status == 404 and allow_missing:
            return None
        text = payload.decode("utf-8", errors="replace") if payload else ""
        if resp.status >= 400:
            try:
                message = str(json.loads(text).get("message", text))
            except ValueError:
                message = text.strip() or str(resp.reason)
            raise KubeError(f"{method} {path}", int(resp.status), message)
        return text

    def _json(self, method: str, path: str, *, query: Sequence[tuple[str, str]] = (),
              body: object = None, content_type: str = "application/json",
              allow_missing: bool = False) -> dict[str, Any] | None:
        text = self._call(method, path, query=query, body=body, content_type=content_type,
                          allow_missing=allow_missing)
        if text is None:
            return None
        data: dict[str, Any] = json.loads(text) if text else {}
        return data

    def server_version(self) -> str:
        """``v1.31.2`` or similar: proves the API server answers."""
        data = self._json("GET", "/version") or {}
        return str(data.get("gitVersion", "unknown"))

    def raw_get(self, path: str, query: Sequence[tuple[str, str]] = ()) -> str:
        """The text the API server serves at ``path`` (``/readyz``, ``/livez``, ...)."""
        return self._call("GET", path, query=query) or ""

    def get(self, api_version: str, kind: str, name: str,
            namespace: str | None = None) -> dict[str, Any] | None:
        """One object, or None when it does not exist."""
        path = resource_path(api_version, kind, namespace, name)
        return self._json("GET", path, allow_missing=True)

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             labels: Mapping[str, str] | None = None,
             field_selector: str | None = None) -> list[dict[str, Any]]:
        """Every object of a kind (in a namespace) matching ``labels``."""
        query: list[tuple[str, str]] = []
        if labels:
            query.append(("labelSelector", label_selector(labels)))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        path = resource_path(api_version, kind, namespace)
        data = self._json("GET", path, query=query, allow_missing=True)
        if data is None:  # the namespace itself does not exist
            return []
        items: list[dict[str, Any]] = data.get("items", [])
        for item in items:  # list items come without these; callers want whole objects
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items

    def apply(self, obj: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply ``obj`` as field manager ``oaas-lab`` (``force`` takes over fields
        another manager set, e.g. a hand ``kubectl scale``); ``dry_run`` changes nothing."""
        meta = obj["metadata"]
        path = resource_path(str(obj["apiVersion"]), str(obj["kind"]),
                             meta.get("namespace"), str(meta["name"]))
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        if dry_run:
            query.append(("dryRun", "All"))
        return self._json(
            "PATCH", path, query=query, body=dict(obj),
            content_type="application/apply-patch+yaml",
        ) or {}

    def patch(self, api_version: str, kind: str, name: str, namespace: str | None,
              patch: Mapping[str, Any]) -> dict[str, Any]:
        """A JSON merge patch, e.g. ``{"spec": {"replicas": 5}}``."""
        path = resource_path(api_version, kind, namespace, name)
        return self._json(
            "PATCH", path, body=dict(patch), content_type="application/merge-patch+json",
        ) or {}

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None,
               *, grace_seconds: int | None = None) -> bool:
        """Delete one object (its dependents in the background); False if it was gone."""
        path = resource_path(api_version, kind, namespace, name)
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1",
                                "propagationPolicy": "Background"}
        if grace_seconds is not None:
            body["gracePeriodSeconds"] = grace_seconds
        return self._call("DELETE", path, body=body, allow_missing=True) is not None

    def logs(self, namespace: str, pod: str, container: str | None = None,
             tail: int = 50, previous: bool = False) -> str:
        """The last ``tail`` lines a container wrote (of its previous run if ``previous``)."""
        query = [("tailLines", str(tail))]
        if container:
            query.append(("container", container))
        if previous:
            query.append(("previous", "true"))
        path = resource_path("v1", "Pod", namespace, pod) + "/log"
        return self._call("GET", path, query=query) or ""

    def exec(self, namespace: str, pod: str, argv: Sequence[str],
             container: str | None = None, timeout: float = 30.0) -> CommandResult:
        """Run ``argv`` in a pod's container over the exec websocket, bounded by ``timeout``."""
        from kubernetes import client
        from kubernetes.stream import stream

        # stream() swaps the client's call_api for a websocket one while it runs: on a client
        # of its own, so that requests from other threads never take that path.
        ws_client = client.ApiClient(self._cfg)
        core = client.CoreV1Api(ws_client)
        kwargs: dict[str, Any] = {"command": list(argv), "stdout": True, "stderr": True,
                                  "stdin": False, "tty": False, "_preload_content": False}
        if container:
            kwargs["container"] = container
        try:
            ws = stream(core.connect_get_namespaced_pod_exec, pod, namespace, **kwargs)
            ws.run_forever(timeout=timeout)
            out, err = ws.read_stdout() or "", ws.read_stderr() or ""
            code = ws.returncode
            ws.close()
        except Exception as exc:  # websocket and API errors alike: the lab failed, say how
            raise LabError(f"exec in {namespace}/{pod} failed: {exc}") from None
        finally:
            ws_client.close()  # type: ignore[no-untyped-call]
        if code is None:
            return CommandResult(tuple(argv), 124, out, err + f"\ntimed out after {timeout:.0f}s")
        return CommandResult(tuple(argv), int(code), out, err)
