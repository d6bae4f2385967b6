"""Evidence taken at the moment a step fails: cluster status, wsrep status, member logs.

Every text is scrubbed of the lab's secret values before it is stored, so a password that a
daemon printed into its log never reaches a report.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from oaas_lab.backends.base import Lab
from oaas_lab.checks.openstack import CHECKS as OPENSTACK_CHECKS
from oaas_lab.checks.quorum import membership
from oaas_lab.errors import OaasLabError
from oaas_lab.reports.model import scrub
from oaas_lab.secrets import SecretStore

LOG_LINES = 40


def collect(
    lab: Lab, store: SecretStore, components: Iterable[str], log_lines: int = LOG_LINES
) -> dict[str, str]:
    """Title -> text for each component: its membership check and each member's log tail."""
    secrets = store.values()
    out: dict[str, str] = {}
    for component in components:
        try:
            judge = OPENSTACK_CHECKS.get(component)
            result = judge(lab, store) if judge else membership(lab, store, component)
            out[f"{component} status"] = (
                f"{result}\n\n{json.dumps(result.evidence, indent=2, default=str)}"
            )
        except (OaasLabError, OSError, ValueError) as exc:
            out[f"{component} status"] = f"could not be read: {type(exc).__name__}: {exc}"
        try:
            pods = lab.members(component)
        except OaasLabError as exc:
            out[f"{component} members"] = f"could not be listed: {exc.one_line()}"
            continue
        for pod in pods:
            title = f"{pod.name} log ({pod.state}, {lab.log_path(pod.name)})"
            try:
                out[title] = lab.logs(pod.name, lines=log_lines)
            except (OaasLabError, OSError) as exc:
                out[title] = f"could not be read: {type(exc).__name__}: {exc}"
    return {title: scrub(text, secrets) for title, text in out.items()}
