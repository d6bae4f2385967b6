"""Kubernetes OpenAPI schema validation, with the schemas that ``kubernetes-validate`` ships.

``kubernetes_validate.validate`` re-reads the 2 MB definitions file on every call; this helper
builds one validator per (Kubernetes version, kind) and reuses it, so the whole matrix of
objects x releases x versions stays fast. The *strict* schemas are used: an unknown field (a
typo such as ``readinesProbe``) fails instead of being ignored.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import importlib_resources
import jsonschema
import referencing
from kubernetes_validate import utils
from packaging.version import Version

MIN_VERSION = "1.29"


def versions() -> list[str]:
    """Every Kubernetes minor version from 1.29 to the newest the package ships."""
    out = sorted({utils.major_minor(v) for v in utils.all_versions()}, key=Version)
    return [v for v in out if Version(v) >= Version(MIN_VERSION)]


def _schema_dir(version: str) -> str:
    full = next(v for v in utils.all_versions() if utils.major_minor(v) == version)
    return f"kubernetes-json-schema/v{full}-local-strict"


@cache
def _load(path: str) -> Any:
    ref = importlib_resources.files("kubernetes_validate").joinpath(path)
    return json.loads(ref.read_text(encoding="utf-8"))


@cache
def _validator(version: str, kind: str, api_version: str) -> jsonschema.Draft202012Validator:
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    folder = _schema_dir(version)
    schema = _load(f"{folder}/{kind.lower()}-{group}.json")
    definitions = _load(f"{folder}/_definitions.json")
    registry: referencing.Registry[Any] = referencing.Resource.from_contents(
        definitions, default_specification=referencing.jsonschema.DRAFT202012
    ) @ (referencing.Resource.from_contents(
        schema, default_specification=referencing.jsonschema.DRAFT202012
    ) @ referencing.Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def errors(obj: dict[str, Any], version: str) -> list[str]:
    """Every schema violation of ``obj`` against Kubernetes ``version``, as readable lines."""
    try:
        validator = _validator(version, str(obj["kind"]), str(obj["apiVersion"]))
    except FileNotFoundError:
        return [f"{obj['kind']}/{obj['metadata']['name']}: no schema for "
                f"{obj['apiVersion']} {obj['kind']} in Kubernetes {version} (removed API?)"]
    return [
        f"{obj['kind']}/{obj['metadata']['name']}: "
        f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in validator.iter_errors(obj)
    ]
