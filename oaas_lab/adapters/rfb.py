"""RFB (VNC) through nova's noVNC websocket proxy: the only module importing ``websockets``.

``rfb_handshake`` does what a browser's noVNC does with the URL nova hands out for a remote
console, up to the point where the first picture could be asked for: it opens the proxy's
websocket (``binary`` subprotocol, an ``Origin`` of the host the page is served from, as nova
checks), agrees a protocol version, chooses the *None* security type, sends ClientInit and reads
ServerInit (framebuffer size, pixel format, desktop name).

The console token is a credential for as long as it is valid: it is kept in a ``Secret`` and
never appears in an error message.
"""

from __future__ import annotations

import re
import struct
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

from websockets.exceptions import (
    ConnectionClosed,
    InvalidMessage,
    InvalidStatus,
    WebSocketException,
)
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin, Subprotocol

from oaas_lab.errors import LabError
from oaas_lab.secrets import MASK, Secret

__all__ = ["ConsoleTarget", "PixelFormat", "RfbSession", "console_target", "rfb_handshake"]

SECURITY_NONE = 1

SECURITY_NAMES = {
    1: "None", 2: "VNC", 5: "RA2", 6: "RA2ne", 16: "Tight", 17: "Ultra", 18: "TLS",
    19: "VeNCrypt", 20: "SASL", 30: "Apple",
}
"""Names of the RFB security types a server may offer, for error messages."""

MAX_NAME = 64 * 1024
"""A desktop name longer than this is not a VNC server talking."""

REFUSED_HINT = (
    "the console token may be invalid, used or expired (ask nova for a new console URL), the "
    "Origin refused ([console] allowed_origins), or the VNC server unreachable from the proxy; "
    "read the console proxy's log"
)

URL_HINT = "pass the URL nova returned for the server (openstack console url show --novnc SERVER)"


@dataclass(frozen=True)
class ConsoleTarget:
    """Where the websocket of a console URL is, and the ``Origin`` to present to it."""

    websocket: str
    """``ws://HOST:PORT/PATH`` without the query (safe to print)."""
    origin: str
    """``http://HOST:PORT``: the page's own origin, which nova compares with its ``Host``."""
    token: Secret

    def url(self) -> str:
        """The websocket URL with the token, for the one place that connects."""
        return f"{self.websocket}?token={quote(self.token.reveal(), safe='')}"


@dataclass(frozen=True)
class PixelFormat:
    """The framebuffer's pixel format from ServerInit."""

    bits_per_pixel: int
    depth: int
    big_endian: bool
    true_colour: bool
    red_max: int
    green_max: int
    blue_max: int
    red_shift: int
    green_shift: int
    blue_shift: int


@dataclass(frozen=True)
class RfbSession:
    """What one RFB handshake through the proxy established."""

    server_version: str
    """As the server sent it, e.g. ``RFB 003.008``."""
    client_version: str
    """The version this client answered with."""
    security_offered: tuple[int, ...]
    security_type: int
    """The one chosen: always 1 (None)."""
    width: int
    height: int
    pixel_format: PixelFormat
    name: str
    """The desktop name (QEMU: the VM's ``-name``, nova: the instance's name)."""
    seconds: float
    """From opening the websocket to ServerInit read."""


def _clean_url(console_url: str) -> str:
    parts = urlsplit(console_url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def console_target(console_url: str) -> ConsoleTarget:
    """The websocket behind a noVNC console URL, found as noVNC's page finds it.

    ``http://H:P/vnc_lite.html?path=%3Ftoken%3DT`` (nova today) connects to ``ws://H:P/?token=T``
    (noVNC appends ``path`` to the server root); the older ``.../vnc_auto.html?token=T`` connects
    to ``ws://H:P/websockify?token=T``. ``https`` pages use ``wss``.
    """
    try:
        parts = urlsplit(console_url.strip())
        hostname = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise LabError(f"console URL is not a URL: {exc}", hint=URL_HINT) from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise LabError(
            f"console URL {_clean_url(console_url)!r} is not an http(s) URL with a host",
            hint=URL_HINT,
        )
    query = parse_qs(parts.query)
    path = "websockify"
    token = query.get("token", [""])[-1]
    if query.get("path"):
        inner = urlsplit(query["path"][-1])
        path = inner.path.lstrip("/")
        token = parse_qs(inner.query).get("token", [""])[-1] or token
    if not token:
        raise LabError(
            f"console URL {_clean_url(console_url)!r} carries no console token", hint=URL_HINT
        )
    host = f"[{hostname}]" if ":" in hostname else hostname
    netloc = f"{host}:{port}" if port is not None else host
    ws_scheme = "wss" if parts.scheme == "https" else "ws"
    return ConsoleTarget(
        websocket=f"{ws_scheme}://{netloc}/{path}",
        origin=f"{parts.scheme}://{netloc}",
        token=Secret(token),
    )


class _Reader:
    """Exact-length reads over websocket messages, whose boundaries RFB does not follow."""

    def __init__(self, ws: ClientConnection, deadline: float, where: str) -> None:
        self._ws = ws
        self._deadline = deadline
        self._where = where
        self._buffer = bytearray()

    def read(self, size: int, what: str) -> bytes:
        while len(self._buffer) < size:
            left = self._deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                message = self._ws.recv(timeout=left)
            except TimeoutError:
                raise LabError(
                    f"no RFB {what} from {self._where} in time",
                    hint="the VNC server behind the proxy is not answering: is the VM running?",
                ) from None
            except ConnectionClosed as exc:
                reason = f" ({exc.rcvd.reason})" if exc.rcvd and exc.rcvd.reason else ""
                raise LabError(
                    f"{self._where} closed the websocket before the RFB {what}{reason}",
                    hint=REFUSED_HINT,
                ) from None
            if isinstance(message, str):
                raise LabError(
                    f"{self._where} sent text frames, not binary RFB",
                    hint="the proxy did not accept the 'binary' websocket subprotocol",
                )
            self._buffer += message
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def reason(self, what: str) -> str:
        (length,) = struct.unpack(">I", self.read(4, what))
        return self.read(min(length, MAX_NAME), what).decode(errors="replace")


def _names(types: tuple[int, ...]) -> str:
    return ", ".join(f"{SECURITY_NAMES.get(t, 'unknown')}({t})" for t in types) or "nothing"


def _negotiate(
    ws: ClientConnection, reader: _Reader, where: str
) -> tuple[str, str, tuple[int, ...]]:
    """ProtocolVersion and security; returns (server version, client version, types offered)."""
    raw = reader.read(12, "ProtocolVersion")
    match = re.fullmatch(rb"RFB (\d{3})\.(\d{3})\n", raw)
    if match is None:
        raise LabError(
            f"{where} does not speak RFB (first bytes {raw!r})",
            hint="the token must lead to a VNC server; check the console type (novnc)",
        )
    server = (int(match[1]), int(match[2]))
    # A client answers with the highest version it knows that the server offers.
    client = (3, 8) if server >= (3, 8) else (3, 7) if server >= (3, 7) else (3, 3)
    if server < (3, 3):
        raise LabError(f"{where}: unsupported RFB version {server[0]}.{server[1]}")
    client_version = f"RFB {client[0]:03d}.{client[1]:03d}"
    ws.send(f"{client_version}\n".encode())

    if client == (3, 3):
        # 3.3: the server decides alone and sends one 32-bit type.
        (chosen,) = struct.unpack(">I", reader.read(4, "security type"))
        if chosen == 0:
            raise LabError(f"{where} refused the session: {reader.reason('failure reason')}")
        offered: tuple[int, ...] = (chosen,)
    else:
        (count,) = reader.read(1, "security types")
        if count == 0:
            raise LabError(f"{where} refused the session: {reader.reason('failure reason')}")
        offered = tuple(reader.read(count, "security types"))
    if SECURITY_NONE not in offered:
        raise LabError(
            f"{where}: the VNC server offers {_names(offered)}, not None(1)",
            hint="the console must not need a password on the client side: QEMU without "
            "'password=on'; nova's proxy offers None to clients when [vnc] auth_schemes "
            "lets it reach the compute node",
        )
    if client == (3, 3):
        return raw.decode().strip(), client_version, offered
    ws.send(bytes([SECURITY_NONE]))
    if client == (3, 8):
        # 3.7 sends no SecurityResult for None; 3.8 always does, with a reason on failure.
        (result,) = struct.unpack(">I", reader.read(4, "SecurityResult"))
        if result != 0:
            raise LabError(
                f"{where}: security handshake failed: {reader.reason('failure reason')}"
            )
    return raw.decode().strip(), client_version, offered


def rfb_handshake(console_url: str, *, timeout: float = 20.0) -> RfbSession:
    """Open the console behind ``console_url`` and read its ServerInit.

    ``timeout`` bounds the whole handshake, connecting included. Every failure (unreachable
    proxy, refused token or Origin, no None security, a silent VNC server) raises ``LabError``
    with a one-line message and a hint; the token never appears in it.
    """
    target = console_target(console_url)
    where = f"console proxy {target.websocket}"
    start = time.monotonic()
    try:
        with connect(
            target.url(),
            origin=Origin(target.origin),
            subprotocols=[Subprotocol("binary")],
            compression=None,  # websockify does not negotiate it; keep frames plain
            proxy=None,  # never route the console through an environment proxy
            open_timeout=timeout,
            close_timeout=2,
            ping_interval=None,
        ) as ws:
            reader = _Reader(ws, start + timeout, where)
            server_version, client_version, offered = _negotiate(ws, reader, where)
            ws.send(b"\x01")  # ClientInit: shared, do not disconnect other viewers
            width, height, fmt, name_length = struct.unpack(
                ">HH16sI", reader.read(24, "ServerInit")
            )
            if name_length > MAX_NAME:
                raise LabError(f"{where}: ServerInit names a {name_length}-byte desktop name")
            name = reader.read(name_length, "desktop name").decode(errors="replace")
            seconds = time.monotonic() - start
    except InvalidStatus as exc:
        status = exc.response.status_code
        raise LabError(
            f"{where} answered HTTP {status} instead of a websocket",
            hint="403: the Origin or token was refused; 404: wrong path; is this the noVNC proxy?",
        ) from None
    except InvalidMessage:
        # websockify checks the token before it answers the upgrade and hangs up on a bad one.
        raise LabError(
            f"{where} hung up during the websocket handshake",
            hint=REFUSED_HINT,
        ) from None
    except TimeoutError:
        raise LabError(
            f"{where} did not accept a websocket within {timeout:.0f}s",
            hint="is the console proxy running and reachable from here?",
        ) from None
    except OSError as exc:
        raise LabError(
            f"cannot reach {where}: {exc.strerror or exc}",
            hint="is the console proxy (nova-novncproxy) running and listening there?",
        ) from None
    except WebSocketException as exc:
        text = str(exc).replace(target.token.reveal(), MASK)
        raise LabError(
            f"{where}: websocket failed: {type(exc).__name__}: {text}",
            hint="is this URL served by a websocket proxy (nova-novncproxy)?",
        ) from None
    bpp, depth, big, true_colour, r_max, g_max, b_max, r_sh, g_sh, b_sh = struct.unpack(
        ">BBBBHHHBBB3x", fmt
    )
    return RfbSession(
        server_version=server_version,
        client_version=client_version,
        security_offered=offered,
        security_type=SECURITY_NONE,
        width=width,
        height=height,
        pixel_format=PixelFormat(
            bits_per_pixel=bpp, depth=depth, big_endian=bool(big), true_colour=bool(true_colour),
            red_max=r_max, green_max=g_max, blue_max=b_max,
            red_shift=r_sh, green_shift=g_sh, blue_shift=b_sh,
        ),
        name=name,
        seconds=seconds,
    )
