"""The container images of oaas-lab: recipes as data, content-hash tags, a cache, builds.

No image comes from a registry: every one is built on this host from Debian bookworm packages
(the infrastructure daemons, libvirt/QEMU/Open vSwitch), PyPI at the release's exact pins (the
OpenStack services, in one virtualenv) or a static binary (pause from ``pause.c``, CoreDNS
given by path). A reference is ``localhost/oaas-lab/<name>:<tag>``, the tag a hash of the
recipe, so the Kubernetes manifests (``oaas_lab.backends.k8s.render``) name exactly what was built.

    recipes() / recipe(name)           the recipes (``catalogue.py``)
    tag(recipe, release)               the content hash of a recipe
    reference(name, release)           ``localhost/oaas-lab/<name>:<tag>``
    build(names, release, cache_dir)   build what is not in ``<cache_dir>/images/`` yet
    records(cache_dir)                 what the cache holds
    load(built, containerd_socket)     ``ctr images import`` (skipped when already there)
    push(built, registry_url)          ``skopeo copy`` to a registry

Every command runs through ``oaas_lab.adapters.shell``.
"""

from __future__ import annotations

from oaas_lab.images.build import Progress, build, default_names, require_tool
from oaas_lab.images.cache import Built, Record, records
from oaas_lab.images.catalogue import (
    OPENSTACK_DISTRIBUTIONS,
    OPENSTACK_VENV,
    REGISTRY,
    REPOSITORY,
    File,
    Program,
    Recipe,
    Venv,
    recipe,
    recipes,
    reference,
    spec,
    tag,
)
from oaas_lab.images.transfer import Loaded, archive_ref, load, push

__all__ = [
    "OPENSTACK_DISTRIBUTIONS",
    "OPENSTACK_VENV",
    "REGISTRY",
    "REPOSITORY",
    "Built",
    "File",
    "Loaded",
    "Program",
    "Progress",
    "Recipe",
    "Record",
    "Venv",
    "archive_ref",
    "build",
    "default_names",
    "load",
    "push",
    "recipe",
    "recipes",
    "records",
    "reference",
    "require_tool",
    "spec",
    "tag",
]
