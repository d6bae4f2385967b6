"""The interface the deployer and the k8s backend need from a cluster.

``oaas_lab.adapters.kube.Kube`` implements it against a real API server; tests run the same
``Kube`` against a small fake API server over HTTP, so nothing above this seam is mocked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from oaas_lab.kernel.command import CommandResult


class KubeApi(Protocol):
    """Plain-object access to one cluster (see ``oaas_lab.adapters.kube.Kube``)."""

    host: str

    def server_version(self) -> str:
        """The API server's version string."""
        ...

    def get(self, api_version: str, kind: str, name: str,
            namespace: str | None = None) -> dict[str, Any] | None:
        """One object, or None."""
        ...

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             labels: Mapping[str, str] | None = None,
             field_selector: str | None = None) -> list[dict[str, Any]]:
        """Objects of a kind matching labels."""
        ...

    def apply(self, obj: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply."""
        ...

    def patch(self, api_version: str, kind: str, name: str, namespace: str | None,
              patch: Mapping[str, Any]) -> dict[str, Any]:
        """A JSON merge patch."""
        ...

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None,
               *, grace_seconds: int | None = None) -> bool:
        """Delete one object; False when it was already gone."""
        ...

    def logs(self, namespace: str, pod: str, container: str | None = None,
             tail: int = 50, previous: bool = False) -> str:
        """A container's last log lines."""
        ...

    def exec(self, namespace: str, pod: str, argv: Sequence[str],
             container: str | None = None, timeout: float = 30.0) -> CommandResult:
        """Run a command in a pod."""
        ...
