"""The lab file: defaults work, precedence holds, every error names source, field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from oaas_lab import config
from oaas_lab.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    return path


def test_defaults_need_no_file() -> None:
    cfg = config.load(environ={})
    assert cfg.lab == "local"
    assert cfg.local.subnet == config.DEFAULT_SUBNET
    assert cfg.replicas("galera") == 3


def test_unknown_key_names_file_and_dotted_path(tmp_path: Path) -> None:
    path = write(tmp_path, "local:\n  sbunet: 10.1.2.0/24\n")
    with pytest.raises(ConfigError) as err:
        config.load(path, environ={})
    line = err.value.one_line()
    assert str(path) in line
    assert "local.sbunet" in line
    assert "unknown key" in line
    assert "\n" not in line


def test_unknown_top_level_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"lab\.yaml: replica_count: unknown key"):
        config.load(write(tmp_path, "replica_count: 3\n"), environ={})


def test_even_quorum_count_in_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "components:\n  rabbitmq:\n    replicas: 4\n")
    with pytest.raises(ConfigError, match=r"components\.rabbitmq\.replicas: .*even.*choose 3 or 5"):
        config.load(path, environ={})


def test_even_count_allowed_for_non_quorum_component(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, "components:\n  memcached:\n    replicas: 2\n"), environ={})
    assert cfg.replicas("memcached") == 2


def test_unknown_component(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"components: unknown component 'mongodb'"):
        config.load(write(tmp_path, "components:\n  mongodb: {replicas: 3}\n"), environ={})


def test_public_subnet_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"local\.subnet: .*private IPv4 /24"):
        config.load(write(tmp_path, "local: {subnet: 8.8.8.0/24}\n"), environ={})


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"line 2: not valid YAML"):
        config.load(write(tmp_path, "name: a\n  bad: [\n"), environ={})


def test_file_that_is_not_utf8_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"lab\.yaml: is not UTF-8 text \(byte 9 .*save"):
        config.load(path, environ={})


def test_repeated_key_is_refused_with_both_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "name: a\ncomponents:\n  galera: {replicas: 3}\n"
                           "  etcd: {replicas: 3}\n  galera: {replicas: 5}\n")
    with pytest.raises(ConfigError) as err:
        config.load(path, environ={})
    line = err.value.one_line()
    assert "components.galera: given twice (lines 3 and 5)" in line
    assert "keep one of them" in line


def test_repeated_key_in_a_list_item_names_its_index(tmp_path: Path) -> None:
    path = write(tmp_path, "a:\n  - {x: 1, x: 2}\n")
    with pytest.raises(ConfigError, match=r"a\.0\.x: given twice"):
        config.load(path, environ={})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        config.load(tmp_path / "nope.yaml", environ={})


def test_precedence_flag_over_env_over_file(tmp_path: Path) -> None:
    path = write(tmp_path, "name: file\nlocal: {subnet: 10.1.1.0/24}\n")
    env = {"OAAS_LAB_NAME": "env", "OAAS_LAB_LOCAL__SUBNET": "10.2.2.0/24"}
    cfg = config.load(path, overrides={"name": "flag"}, environ=env)
    assert cfg.name == "flag"
    assert cfg.local.subnet == "10.2.2.0/24"
    assert config.load(path, environ={}).name == "file"


def test_env_selects_the_lab_file(tmp_path: Path) -> None:
    path = write(tmp_path, "name: chosen\n")
    assert config.load(environ={"OAAS_LAB_CONFIG": str(path)}).name == "chosen"


def test_env_error_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"^OAAS_LAB_LAB: lab: "):
        config.load(environ={"OAAS_LAB_LAB": "openshift"})


def test_unknown_release_lists_catalogue() -> None:
    with pytest.raises(ConfigError, match=r"--release: release: unknown release '1999\.1'"):
        config.load(overrides={"release": "1999.1"}, environ={})


def test_lab_name_must_fit_interface_names() -> None:
    with pytest.raises(ConfigError, match=r"name: "):
        config.load(overrides={"name": "much-too-long-name"}, environ={})
