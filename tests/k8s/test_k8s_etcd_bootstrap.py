"""etcd's bootstrap init script, run with a stand-in for the peers' HTTP API (``wget``)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from oaas_lab import config as config_mod
from oaas_lab.backends.k8s import render

PEER = "http://etcd-1.etcd-peers.oaas.svc.cluster.local:2380"


def _script(tmp_path: Path) -> Path:
    rendered = render.render(config_mod.load(overrides={"lab": "k8s"}, environ={}))
    scripts = next(o for o in rendered.objects()
                   if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "etcd-scripts")
    text = str(scripts["data"]["bootstrap.sh"])
    text = text.replace("/run/etcd", str(tmp_path / "run")).replace(
        "/var/lib/etcd", str(tmp_path / "data"))
    (tmp_path / "run").mkdir()
    (tmp_path / "data").mkdir()
    path = tmp_path / "bootstrap.sh"
    path.write_text(text, encoding="utf-8")
    return path


def _peers_answer(tmp_path: Path, members: list[dict[str, object]]) -> Path:
    """A ``wget`` that finds the cluster healthy and lists ``members``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    listing = tmp_path / "members.json"
    listing.write_text(json.dumps({"header": {"cluster_id": 1}, "members": members},
                                  separators=(",", ":")), encoding="utf-8")
    wget = bin_dir / "wget"
    wget.write_text(f"""#!/bin/sh
out=""
while [ $# -gt 0 ]; do
  case "$1" in -O) out="$2"; shift ;; esac
  last="$1"; shift
done
case "$last" in
  */health) echo '{{"health":"true"}}' > "$out" ;;
  */member/list) cat {listing} > "$out" ;;
  *) exit 1 ;;
esac
""", encoding="utf-8")
    wget.chmod(wget.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def _run(tmp_path: Path, members: list[dict[str, object]]) -> subprocess.CompletedProcess[str]:
    script = _script(tmp_path)
    bin_dir = _peers_answer(tmp_path, members)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "POD_NAME": "etcd-1",
           "POD_NAMESPACE": "oaas", "INITIAL_MEMBERS": "3"}
    return subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True,
                          timeout=30, check=False)


def _member(name: str, *, ran: bool) -> dict[str, object]:
    peer = f"http://{name}.etcd-peers.oaas.svc.cluster.local:2380"
    out: dict[str, object] = {"ID": hash(name) & 0xFFFF, "name": name, "peerURLs": [peer]}
    if ran:
        out["clientURLs"] = [peer.replace("2380", "2379")]
    return out


def test_a_late_initial_member_joins_the_cluster_its_peers_formed(tmp_path: Path) -> None:
    # Its peers formed a quorum first; etcd lists it by name, but it never ran.
    done = _run(tmp_path, [_member("etcd-0", ran=True), _member("etcd-1", ran=False),
                           _member("etcd-2", ran=True)])
    assert done.returncode == 0, done.stderr
    written = (tmp_path / "run" / "etcd.yaml").read_text(encoding="utf-8")
    assert "initial-cluster-state: existing" in written
    assert f"etcd-1={PEER}" in written


@pytest.mark.parametrize("others_ran", [True, False])
def test_a_member_that_ran_and_lost_its_volume_is_refused(tmp_path: Path,
                                                          others_ran: bool) -> None:
    done = _run(tmp_path, [_member("etcd-0", ran=others_ran), _member("etcd-1", ran=True),
                           _member("etcd-2", ran=True)])
    assert done.returncode == 1
    assert "is a started member but its volume is empty" in done.stderr
    assert not (tmp_path / "run" / "etcd.yaml").exists()
