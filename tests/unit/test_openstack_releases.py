"""The local lab's pins (releases.yaml) agree with the full constraints file."""

from __future__ import annotations

from importlib import resources

from oaas_lab import releases


def constraints(release: str) -> dict[str, str]:
    name = f"data/openstack-constraints-{release}.txt"
    text = resources.files("oaas_lab").joinpath(name).read_text(encoding="utf-8")
    pins = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            dist, sep, version = line.partition("==")
            assert sep, f"{name}: {line!r} is not an exact pin"
            pins[dist.lower().replace("_", "-")] = version
    return pins


def test_local_pins_match_the_constraints() -> None:
    release = releases.get("2026.2")
    pinned = constraints("2026.2")
    assert release.local, "2026.2 has no local pins"
    for dist, version in release.local.items():
        assert pinned.get(dist.lower()) == version, dist
    for service in ("keystone", "glance", "openstack-placement", "nova", "neutron", "horizon"):
        assert service in release.local
