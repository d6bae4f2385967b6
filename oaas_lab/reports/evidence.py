"""Evidence taken at the moment a step fails (cluster status, wsrep status, member logs), and
the proof that no secret reached a log.

Every text is scrubbed of the lab's secret values before it is stored, so a password that a
daemon printed into its log never reaches a report.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from oaas_lab.kernel.lab import Lab
from oaas_lab.kernel.results import CheckResult, failed, passed
from oaas_lab import components
from oaas_lab.errors import OaasLabError
from oaas_lab.reports.model import scrub
from oaas_lab.secrets import SecretStore

LOG_LINES = 40


def collect(
    lab: Lab, store: SecretStore, names: Iterable[str], log_lines: int = LOG_LINES
) -> dict[str, str]:
    """Title -> text for each component: its membership check and each member's log tail."""
    secrets = store.values()
    out: dict[str, str] = {}
    for component in names:
        try:
            result = components.membership(lab, store, component)
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


def no_secret_in_logs(lab: Lab, secrets: SecretStore, lines: int = 200_000) -> CheckResult:
    """No value of the lab's secret store appears in the log of any pod of any component."""
    values = [v for v in secrets.values() if len(v) >= 16]
    if not values:
        return failed("secrets", "the lab has no secrets yet", hint="run `oaas-lab up`")
    leaks, read = [], 0
    for component in components.catalogue():
        for pod in lab.members(component.name):
            text = lab.logs(pod.name, lines=lines)
            read += 1
            if any(v in text for v in values):
                leaks.append(pod.name)
    if leaks:
        return failed("secrets", f"a secret is in the log of {', '.join(leaks)}",
                      hint="find what prints it and mask it")
    return passed("secrets", f"{len(values)} secrets, none in the logs of {read} pods")
