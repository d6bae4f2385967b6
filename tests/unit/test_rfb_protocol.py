"""Console URLs become the websocket noVNC would open; RFB variants a real QEMU does not show.

The protocol tests run a scripted RFB server behind a real websocket server on loopback: the
seam is the network, the client code under test is the real one.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Iterator

import pytest
from websockets.sync.server import ServerConnection, serve

from oaas_lab.adapters.rfb import console_target, rfb_handshake
from oaas_lab.errors import LabError

TOKEN = "5f0c1e0a-2b3c-4d5e-8f90-a1b2c3d4e5f6"


def test_nova_url_puts_the_token_in_the_encoded_path():
    target = console_target(f"http://10.0.0.5:6080/vnc_lite.html?path=%3Ftoken%3D{TOKEN}")
    assert target.websocket == "ws://10.0.0.5:6080/"
    assert target.origin == "http://10.0.0.5:6080"
    assert target.token.reveal() == TOKEN
    assert target.url() == f"ws://10.0.0.5:6080/?token={TOKEN}"
    assert TOKEN not in repr(target)


def test_older_url_has_the_token_in_the_query():
    target = console_target(f"http://ctl.example:6080/vnc_auto.html?token={TOKEN}")
    assert target.url() == f"ws://ctl.example:6080/websockify?token={TOKEN}"
    assert target.origin == "http://ctl.example:6080"


def test_https_pages_use_wss_and_a_path_with_a_prefix_is_kept():
    target = console_target(
        f"https://[fd00::5]/vnc_lite.html?path=console%2Fwebsockify%3Ftoken%3D{TOKEN}"
    )
    assert target.websocket == "wss://[fd00::5]/console/websockify"
    assert target.origin == "https://[fd00::5]"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://10.0.0.5:6080/vnc_lite.html", "carries no console token"),
        ("http://10.0.0.5:6080/vnc_lite.html?path=%3Ftoken%3D", "carries no console token"),
        ("ftp://10.0.0.5/vnc_lite.html?token=abc", "is not an http(s) URL"),
        ("vnc_lite.html?token=abc", "is not an http(s) URL"),
        ("http://10.0.0.5:99999/vnc_lite.html?token=abc", "is not a URL"),
    ],
)
def test_bad_urls_are_one_line_errors(url: str, problem: str):
    with pytest.raises(LabError) as caught:
        console_target(url)
    assert problem in caught.value.one_line()
    assert "console url show" in caught.value.hint
    assert "abc" not in caught.value.one_line()


# --- scripted servers --------------------------------------------------------------------------

Script = Callable[[ServerConnection], None]


def server_init(ws: ServerConnection, name: bytes = b"vm") -> None:
    assert ws.recv(timeout=5) == b"\x01"  # ClientInit, shared
    pixel = struct.pack(">BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)
    # Split across frames on purpose: RFB does not follow websocket message boundaries.
    whole = struct.pack(">HH", 800, 600) + pixel + struct.pack(">I", len(name)) + name
    ws.send(whole[:7])
    ws.send(whole[7:])


def rfb_37_with_none(ws: ServerConnection) -> None:
    ws.send(b"RFB 003.007\n")
    assert ws.recv(timeout=5) == b"RFB 003.007\n"
    ws.send(b"\x02\x13\x01")  # VeNCrypt and None
    assert ws.recv(timeout=5) == b"\x01"
    server_init(ws)  # 3.7 sends no SecurityResult for None


def rfb_33(ws: ServerConnection) -> None:
    ws.send(b"RFB 003.003\n")
    assert ws.recv(timeout=5) == b"RFB 003.003\n"
    ws.send(struct.pack(">I", 1))
    server_init(ws, b"old")


def vencrypt_only(ws: ServerConnection) -> None:
    ws.send(b"RFB 003.008\n")
    ws.recv(timeout=5)
    ws.send(b"\x01\x13")


def refused_with_reason(ws: ServerConnection) -> None:
    ws.send(b"RFB 003.008\n")
    ws.recv(timeout=5)
    reason = b"too many security failures"
    ws.send(b"\x00" + struct.pack(">I", len(reason)) + reason)


def silent(ws: ServerConnection) -> None:
    ws.recv(timeout=10)


@pytest.fixture
def scripted() -> Iterator[Callable[[Script], str]]:
    servers = []

    def start(script: Script) -> str:
        def handler(ws: ServerConnection) -> None:
            assert ws.request is not None
            assert ws.request.headers["Origin"] == f"http://127.0.0.1:{port}"
            assert ws.subprotocol == "binary"
            script(ws)

        server = serve(handler, "127.0.0.1", 0, subprotocols=["binary"], compression=None)
        port = server.socket.getsockname()[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{port}/vnc_lite.html?path=%3Ftoken%3D{TOKEN}"

    yield start
    for server in servers:
        server.shutdown()


def test_rfb_37_and_split_frames(scripted: Callable[[Script], str]):
    session = rfb_handshake(scripted(rfb_37_with_none), timeout=5)
    assert (session.server_version, session.client_version) == ("RFB 003.007", "RFB 003.007")
    assert session.security_offered == (19, 1)
    assert (session.width, session.height, session.name) == (800, 600, "vm")
    assert session.pixel_format.depth == 24
    assert session.pixel_format.true_colour


def test_rfb_33_server_chooses_none(scripted: Callable[[Script], str]):
    session = rfb_handshake(scripted(rfb_33), timeout=5)
    assert session.client_version == "RFB 003.003"
    assert session.name == "old"


@pytest.mark.parametrize(
    ("script", "problem"),
    [
        (vencrypt_only, "offers VeNCrypt(19), not None(1)"),
        (refused_with_reason, "refused the session: too many security failures"),
    ],
)
def test_refusals_are_one_line_errors(
    scripted: Callable[[Script], str], script: Script, problem: str
):
    with pytest.raises(LabError) as caught:
        rfb_handshake(scripted(script), timeout=5)
    assert problem in caught.value.one_line()
    assert TOKEN not in caught.value.one_line()


def test_a_silent_server_times_out_within_the_bound(scripted: Callable[[Script], str]):
    with pytest.raises(LabError, match="no RFB ProtocolVersion from console proxy"):
        rfb_handshake(scripted(silent), timeout=1)
