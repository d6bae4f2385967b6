"""Secrets are generated once, stored 0600, reused, and never print themselves."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from oaas_lab.errors import ConfigError
from oaas_lab.secrets import MASK, SecretStore


def test_generated_once_and_reused(tmp_path: Path) -> None:
    first = SecretStore(tmp_path).get("galera_root")
    again = SecretStore(tmp_path).get("galera_root")
    assert first.reveal() == again.reveal()
    assert len(first.reveal()) >= 24


def test_each_secret_is_different(tmp_path: Path) -> None:
    store = SecretStore(tmp_path)
    assert store.get("a").reveal() != store.get("b").reveal()


def test_file_mode_is_0600(tmp_path: Path) -> None:
    store = SecretStore(tmp_path)
    store.get("x")
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_value_never_prints(tmp_path: Path) -> None:
    secret = SecretStore(tmp_path).get("x")
    assert str(secret) == MASK
    assert secret.reveal() not in repr(secret)
    assert secret.reveal() not in f"{secret} {secret!r} {[secret]}"


def test_kinds(tmp_path: Path) -> None:
    store = SecretStore(tmp_path)
    cookie = store.get("cookie", kind="erlang_cookie").reveal()
    assert cookie.isalpha()
    assert cookie.isupper()
    assert len(store.get("fernet", kind="fernet_key").reveal()) == 44


def test_world_readable_store_is_refused(tmp_path: Path) -> None:
    store = SecretStore(tmp_path)
    store.get("x")
    store.path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        SecretStore(tmp_path).get("x")


def test_parallel_first_use_creates_one_value(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def fetch(i: int) -> str:
        store = SecretStore(tmp_path)
        return store.get(f"s{i % 4}").reveal() + "|" + store.get("shared").reveal()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(fetch, range(32)))
    assert len({r.split("|")[1] for r in results}) == 1
    assert len(SecretStore(tmp_path).names()) == 5
