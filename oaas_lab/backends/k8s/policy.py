"""Policy checks on rendered objects: the rules the seed broke, as code.

Each check looks at plain objects (what ``render`` returns, or any parsed YAML) and returns one
``CheckResult``; ``check_all`` runs them all. ``render`` and ``deploy`` refuse objects that fail,
and the tests prove that each check fails on a manifest that breaks its rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from oaas_lab.errors import UserError
from oaas_lab.kernel.results import CheckResult, failed, passed

Obj = Mapping[str, Any]

QUORUM_LABEL = "oaas-lab.io/quorum"
WORKLOADS = ("StatefulSet", "Deployment", "DaemonSet")

# A pattern of secret-looking names (S105 takes it for a password; it is not one).
_SECRET_WORD = (
    r"(?:password|passwd|pwd|_pass\b|pass_|secret|token|cookie|credential|private[-_]?key)"  # noqa: S105
)
_SECRET_NAME = re.compile(_SECRET_WORD, re.IGNORECASE)
# `name = value` / `name: value` where the name looks secret and the value is a literal
# (a `${VAR}`/`$(VAR)` reference or an empty value is how a file *points at* a secret).
_SECRET_ASSIGNMENT = re.compile(
    r"^\s*[\w.\-]*" + _SECRET_WORD + r"[\w.\-]*\s*[=:]\s*(?P<value>\S.*)$",
    re.IGNORECASE | re.MULTILINE,
)
_URL_CREDENTIALS = re.compile(r"://[^/\s:@$]+:(?P<value>[^@\s/$]+)@")
_REFERENCE = re.compile(r"""^["']?(\$\{|\$\(|\$[A-Z_]|%s|<|\{\{)""")
# Names that contain a secret-looking word but are identifiers, not secrets.
_NOT_SECRET = frozenset({"initial-cluster-token"})
_FILE_KEY = re.compile(r"\.(sh|conf|cfg|cnf|ini|py|json|ya?ml|j2|txt|toml)$|^enabled_plugins$")


def _workloads(objects: Iterable[Obj]) -> list[Obj]:
    return [o for o in objects if o.get("kind") in WORKLOADS]


def _ref(obj: Obj) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def _pod_spec(obj: Obj) -> Mapping[str, Any]:
    spec: Mapping[str, Any] = obj.get("spec", {}).get("template", {}).get("spec", {})
    return spec


def _pod_labels(obj: Obj) -> Mapping[str, str]:
    labels: Mapping[str, str] = (
        obj.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
    )
    return labels


def _is_quorum(obj: Obj) -> bool:
    return str(obj.get("metadata", {}).get("labels", {}).get(QUORUM_LABEL, "")) == "true"


def _replicas(obj: Obj) -> int:
    return int(obj.get("spec", {}).get("replicas", 1))


def _result(name: str, problems: Sequence[str], ok_detail: str, hint: str) -> CheckResult:
    if problems:
        return failed(name, "; ".join(problems), hint, problems=list(problems))
    return passed(name, ok_detail)


def quorum_replicas(objects: Iterable[Obj]) -> CheckResult:
    """Quorum members (label ``oaas-lab.io/quorum``) run an odd count."""
    problems = [
        f"{_ref(o)} has {_replicas(o)} replicas"
        for o in _workloads(objects) if _is_quorum(o) and _replicas(o) % 2 == 0
    ]
    return _result("policy: odd quorum", problems, "every quorum set has an odd count",
                   "use an odd replica count (3, 5) for quorum components")


def _selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    match = selector.get("matchLabels", {})
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def _allowed_down(pdb: Obj, replicas: int) -> int:
    spec = pdb.get("spec", {})
    if "maxUnavailable" in spec:
        return _count(spec["maxUnavailable"], replicas)
    if "minAvailable" in spec:
        return replicas - _count(spec["minAvailable"], replicas)
    return 0


def _count(value: object, replicas: int) -> int:
    text = str(value)
    if text.endswith("%"):
        return int(replicas * int(text[:-1]) / 100)
    return int(text)


def disruption_budgets(objects: Iterable[Obj]) -> CheckResult:
    """Every workload has a PodDisruptionBudget that allows a drain and, for quorum sets,
    never lets a majority go."""
    objs = list(objects)
    pdbs = [o for o in objs if o.get("kind") == "PodDisruptionBudget"]
    problems: list[str] = []
    for w in _workloads(objs):
        labels = _pod_labels(w)
        mine = [p for p in pdbs if _selects(p.get("spec", {}).get("selector", {}), labels)]
        if not mine:
            problems.append(f"{_ref(w)} has no PodDisruptionBudget")
            continue
        n = _replicas(w)
        down = _allowed_down(mine[0], n)
        if down < 1:
            problems.append(f"{_ref(w)}: its budget allows no disruption with {n} replicas "
                            "(a node drain would hang)")
        if _is_quorum(w) and n - down <= n // 2:
            problems.append(f"{_ref(w)}: its budget lets {down} of {n} members go, "
                            "which loses the majority")
    return _result("policy: disruption budgets", problems,
                   "every workload has a budget consistent with its replicas",
                   "quorum sets: maxUnavailable 1; others: maxUnavailable 1")


def quorum_spread(objects: Iterable[Obj]) -> CheckResult:
    """Quorum members spread evenly over the nodes: a hard topology spread on the hostname
    (maxSkew 1, DoNotSchedule), so no node holds two members while another holds none."""
    problems: list[str] = []
    for w in _workloads(objects):
        if not _is_quorum(w):
            continue
        labels = _pod_labels(w)
        if not any(
            t.get("topologyKey") == "kubernetes.io/hostname"
            and t.get("maxSkew") == 1
            and t.get("whenUnsatisfiable") == "DoNotSchedule"
            and _selects(t.get("labelSelector", {}), labels)
            for t in _pod_spec(w).get("topologySpreadConstraints", [])
        ):
            problems.append(f"{_ref(w)} has no hard topology spread on kubernetes.io/hostname")
    return _result("policy: quorum spread", problems,
                   "quorum members are spread evenly over the nodes",
                   "add a topologySpreadConstraint: kubernetes.io/hostname, maxSkew 1, "
                   "DoNotSchedule")


def probes(objects: Iterable[Obj]) -> CheckResult:
    """Every long-running container has a readiness and a liveness probe."""
    problems: list[str] = []
    for w in _workloads(objects):
        for ctr in _pod_spec(w).get("containers", []):
            missing = [p for p in ("readinessProbe", "livenessProbe") if p not in ctr]
            if missing:
                problems.append(f"{_ref(w)} container {ctr.get('name')} lacks {', '.join(missing)}")
    return _result("policy: probes", problems,
                   "every long-running container has readiness and liveness probes",
                   "add probes that check the service works, not only that a port is open")


def _containers(obj: Obj) -> list[Mapping[str, Any]]:
    spec = _pod_spec(obj)
    if obj.get("kind") == "Job":
        spec = obj.get("spec", {}).get("template", {}).get("spec", {})
    if obj.get("kind") == "Pod":
        spec = obj.get("spec", {})
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def resource_requests(objects: Iterable[Obj]) -> CheckResult:
    """Every container asks for CPU and memory, so the scheduler can place it honestly."""
    problems = [
        f"{_ref(o)} container {c.get('name')} has no cpu/memory requests"
        for o in objects for c in _containers(o)
        if not {"cpu", "memory"} <= set(c.get("resources", {}).get("requests", {}))
    ]
    return _result("policy: resource requests", problems, "every container has requests",
                   "set resources.requests.cpu and .memory")


def _looks_literal(value: str) -> bool:
    value = value.strip()
    return bool(value) and not _REFERENCE.match(value)


def no_secrets_in_configmaps(objects: Iterable[Obj]) -> CheckResult:
    """ConfigMaps hold no secret-looking keys or values; container env takes them from Secrets."""
    problems: list[str] = []
    for o in objects:
        if o.get("kind") == "ConfigMap":
            for key, text in (o.get("data") or {}).items():
                if _SECRET_NAME.search(key) and not _FILE_KEY.search(key):
                    problems.append(f"{_ref(o)} key {key!r} looks like a secret")
                    continue
                for m in _SECRET_ASSIGNMENT.finditer(str(text)):
                    line = m.group(0).strip().split("=")[0].split(":")[0].strip()
                    if _looks_literal(m.group("value")) and line not in _NOT_SECRET:
                        problems.append(f"{_ref(o)} key {key!r} sets {line!r} in clear")
                if _URL_CREDENTIALS.search(str(text)):
                    problems.append(f"{_ref(o)} key {key!r} has a password inside a URL")
        for c in _containers(o):
            for env in c.get("env", []):
                if _SECRET_NAME.search(str(env.get("name", ""))) and "value" in env:
                    problems.append(f"{_ref(o)} container {c.get('name')} env "
                                    f"{env.get('name')} is a literal, not a secretKeyRef")
    return _result("policy: no secrets in ConfigMaps", problems,
                   "secrets only come from Secrets",
                   "move the value into a Secret the deployer generates "
                   "(oaas_lab.backends.k8s.render)")


def _image_problem(image: str) -> str:
    if "@sha256:" in image:
        return ""
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "has no tag"
    if last.rsplit(":", 1)[1] in ("latest", ""):
        return "uses the latest tag"
    return ""


def pinned_images(objects: Iterable[Obj]) -> CheckResult:
    """Every image is pinned: a tag that is not ``latest``, or a digest."""
    problems: list[str] = []
    for o in objects:
        for c in _containers(o):
            why = _image_problem(str(c.get("image", "")))
            if why:
                problems.append(
                    f"{_ref(o)} container {c.get('name')} image {c.get('image')!r} {why}"
                )
    return _result("policy: pinned images", problems, "every image is pinned",
                   "pin a release tag (or digest) in oaas_lab/data/releases.yaml")


CHECKS: tuple[Callable[[Iterable[Obj]], CheckResult], ...] = (
    quorum_replicas,
    disruption_budgets,
    quorum_spread,
    probes,
    resource_requests,
    no_secrets_in_configmaps,
    pinned_images,
)


def check_all(objects: Iterable[Obj]) -> list[CheckResult]:
    """Every policy check over the same objects."""
    objs = list(objects)
    return [check(objs) for check in CHECKS]


def enforce(objects: Iterable[Obj]) -> None:
    """Raise ``UserError`` naming every broken rule; nothing is applied after that."""
    bad = [r for r in check_all(objects) if not r.ok]
    if bad:
        raise UserError(
            "manifests break policy: " + " | ".join(f"{r.name}: {r.detail}" for r in bad),
            hint=bad[0].hint,
        )
