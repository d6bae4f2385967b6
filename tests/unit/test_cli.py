"""The CLI: bad input is one line on stderr, exit code 2, no traceback, nothing applied."""

from __future__ import annotations

from pathlib import Path

import pytest

from oaas_lab.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_unknown_key_in_lab_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab = tmp_path / "lab.yaml"
    lab.write_text("timeouts:\n  upp: 3\n")
    code, out, err = run(capsys, "--config", str(lab), "config", "show")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert f"{lab}: timeouts.upp: unknown key" in err
    assert "Traceback" not in err


def test_lab_file_that_is_not_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab = tmp_path / "lab.yaml"
    lab.write_bytes(b"\xff\xfe\x00n\x00a\x00m\x00e")
    code, out, err = run(capsys, "--config", str(lab), "up")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert f"{lab}: is not UTF-8 text" in err
    assert "Traceback" not in err


def test_even_scale_is_refused_before_any_lab_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "--name", "nolab", "scale", "galera", "4")
    assert code == 2
    assert "galera: 4 replicas is even" in err
    assert "choose 3 or 5" in err
    assert err.count("\n") == 1


def test_unknown_component(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "scale", "mongodb", "3")
    assert code == 2
    assert "unknown component 'mongodb'" in err
    assert err.count("\n") == 1


def test_config_show_masks_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from oaas_lab.secrets import SecretStore

    state = tmp_path / "state"
    value = SecretStore(state / "t1").get("galera_root").reveal()
    lab = tmp_path / "lab.yaml"
    lab.write_text(f"name: t1\nstate_dir: {state}\n")
    code, out, _ = run(capsys, "--config", str(lab), "config", "show")
    assert code == 0
    assert "galera_root: '******'" in out
    assert value not in out


def test_second_command_on_a_busy_lab_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess
    import sys

    state = tmp_path / "state"
    lab = tmp_path / "lab.yaml"
    lab.write_text(f"name: t1\nstate_dir: {state}\n")
    hold = ("import sys, time; from pathlib import Path; from oaas_lab.kernel import lock\n"
            "with lock.changing(Path(sys.argv[1]), 't1', 'up'):\n"
            "    print('held', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", hold, str(state / "t1")],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "held"
        code, _, err = run(capsys, "--config", str(lab), "scale", "galera", "5")
        assert code == 2
        assert err.count("\n") == 1
        assert f"lab 't1' is being changed by `up` (pid {proc.pid}" in err
        assert "Traceback" not in err
    finally:
        proc.kill()
        proc.wait()
