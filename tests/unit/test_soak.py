"""The soak's plan comes from its seed alone; bad input is refused before anything runs."""

from __future__ import annotations

import pytest

from oaas_lab.cli.main import main
from oaas_lab.errors import UserError
from oaas_lab.probes import soak


def test_the_same_seed_gives_the_same_plan_and_another_seed_another():
    first = soak.plan(7, 20, ["galera", "etcd"], 12.0)
    assert first == soak.plan(7, 20, ["galera", "etcd"], 12.0)
    assert first != soak.plan(8, 20, ["galera", "etcd"], 12.0)
    assert [s.cycle for s in first] == list(range(1, 21))
    assert {s.component for s in first} <= {"galera", "etcd"}
    assert {s.kind for s in first} <= set(soak.KINDS)
    assert all(2.0 <= s.seconds <= 12.0 for s in first)


def test_only_quorum_components_the_lab_runs_are_soaked():
    with pytest.raises(UserError, match="'memcached' is not a quorum component"):
        soak.check_components(["memcached"], ["memcached", "galera"])
    with pytest.raises(UserError, match="lab does not run 'etcd'"):
        soak.check_components(["etcd"], ["galera"])
    assert soak.check_components(["galera"], ["galera", "etcd"]) == ["galera"]


def test_soak_refuses_a_bad_cycle_count_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["soak", "--cycles", "0"])
    _, err = capsys.readouterr()
    assert code == 2
    assert "--cycles" in err
    assert err.count("\n") == 1


def test_soak_of_a_lab_that_is_not_up_is_refused(tmp_path, capsys) -> None:
    lab = tmp_path / "lab.yaml"
    lab.write_text(f"name: nosoak\nstate_dir: {tmp_path}\n")
    code = main(["--config", str(lab), "soak", "--cycles", "1", "--seed", "3"])
    _, err = capsys.readouterr()
    assert code == 2
    assert "lab 'nosoak' is not up" in err
