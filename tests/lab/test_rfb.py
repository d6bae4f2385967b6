"""The RFB handshake through a real websocket proxy to QEMU's own VNC server.

QEMU runs with no guest (``-S``: the CPU never starts) and ``-vnc`` on a free loopback port;
websockify, the proxy nova-novncproxy is built on, sits in front of it with a token file, as
nova's proxy sits in front of a compute node's VNC server. Every process is stopped by its own
handle at the end.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from oaas_lab.adapters.rfb import rfb_handshake
from oaas_lab.errors import LabError
from oaas_lab.kernel.results import CheckResult, failed, passed
from oaas_lab.kernel.wait import wait_for

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(
        shutil.which("qemu-system-x86_64") is None,
        reason="needs QEMU: apt-get install qemu-system-x86",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("websockify") is None,
        reason="websockify is not installed in this interpreter; it comes with the OpenStack "
        "set: pip install -c oaas_lab/data/openstack-constraints-2026.2.txt websockify",
    ),
]

TOKEN = "rfb-test-token-0123456789"
LOCKED = "rfb-test-locked-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> CheckResult:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        if sock.connect_ex(("127.0.0.1", port)) == 0:
            return passed(f"port {port}", "listening")
    return failed(f"port {port}", "nothing listening yet")


@dataclass
class Proxy:
    """A websockify on ``port`` with tokens for an open and a password-protected console."""

    port: int
    procs: list[subprocess.Popen[bytes]]
    logs: Path

    def url(self, token: str) -> str:
        # The form nova returns today: the token sits in noVNC's url-encoded ``path``.
        return f"http://127.0.0.1:{self.port}/vnc_lite.html?path=%3Ftoken%3D{token}"

    def log_tails(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in self.logs.glob("*.log"))


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    root = tmp_path_factory.mktemp("rfb")
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, argv: list[str]) -> None:
        with open(root / f"{name}.log", "ab") as out:
            procs.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True))

    # Free ports are ephemeral (>= 32768), so each is a valid VNC display number + 5900.
    open_vnc, locked_vnc, ws_port = free_port(), free_port(), free_port()
    qemu = ["qemu-system-x86_64", "-machine", "accel=tcg", "-display", "none", "-S",
            "-nodefaults", "-m", "16"]
    try:
        start("qemu-open", [*qemu, "-name", "rfb-open", "-vnc", f"127.0.0.1:{open_vnc - 5900}"])
        start("qemu-locked", [*qemu, "-name", "rfb-locked",
                              "-vnc", f"127.0.0.1:{locked_vnc - 5900},password=on"])
        tokens = root / "tokens"
        tokens.write_text(f"{TOKEN}: 127.0.0.1:{open_vnc}\n{LOCKED}: 127.0.0.1:{locked_vnc}\n")
        start("websockify", [sys.executable, "-m", "websockify", "--token-plugin", "TokenFile",
                             "--token-source", str(tokens), f"127.0.0.1:{ws_port}"])
        for port in (open_vnc, locked_vnc, ws_port):
            wait_for(lambda port=port: listening(port), timeout=30, interval=0.2,
                     fatal=lambda _: any(p.poll() is not None for p in procs))
        yield Proxy(ws_port, procs, root)
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_handshake_reads_server_init(proxy: Proxy, record_property: pytest.RecordProperty):
    session = rfb_handshake(proxy.url(TOKEN), timeout=20)
    record_property("rfb handshake_s", round(session.seconds, 3))
    assert session.server_version == "RFB 003.008", proxy.log_tails()
    assert session.client_version == "RFB 003.008"
    assert session.security_type == 1
    assert session.width > 0
    assert session.height > 0
    assert session.pixel_format.bits_per_pixel in (8, 16, 32)
    assert session.name == "QEMU (rfb-open)"
    assert 0 < session.seconds < 20


def test_the_older_url_form_reaches_the_same_console(proxy: Proxy):
    session = rfb_handshake(f"http://127.0.0.1:{proxy.port}/vnc_auto.html?token={TOKEN}")
    assert session.name == "QEMU (rfb-open)"
    # A session is shared (ClientInit shared=1), and the first one was closed: a new one works.
    assert rfb_handshake(proxy.url(TOKEN)).width == session.width


def test_an_unknown_token_is_a_one_line_error_without_the_token(proxy: Proxy):
    wrong = "not-a-valid-token-987654321"
    with pytest.raises(LabError) as caught:
        rfb_handshake(proxy.url(wrong), timeout=10)
    text = caught.value.one_line()
    assert "\n" not in text
    assert "token may be invalid" in text
    assert wrong not in text


def test_a_console_without_none_security_is_refused_clearly(proxy: Proxy):
    with pytest.raises(LabError) as caught:
        rfb_handshake(proxy.url(LOCKED), timeout=10)
    text = caught.value.one_line()
    assert "offers VNC(2), not None(1)" in text
    assert LOCKED not in text


def test_nothing_listening_is_a_one_line_error():
    with pytest.raises(LabError, match="cannot reach console proxy"):
        rfb_handshake(f"http://127.0.0.1:{free_port()}/vnc_lite.html?path=%3Ftoken%3D{TOKEN}",
                      timeout=5)
