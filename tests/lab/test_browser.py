"""The dashboard adapter drives a real headless Chromium through a horizon-like login.

A small HTTP server on 127.0.0.1 imitates what the adapter relies on in horizon: the login form
(``id_username``, ``id_password``, a multi-domain ``id_domain``, a hidden ``id_region``, the
``loginBtn`` button, hidden decoy fields), a session cookie, a redirect to the login page
without it, and a panel whose ``#content_body`` holds a ``table#instances.datatable`` with
``data-display`` rows. The real horizon is exercised by the acceptance scenarios.
"""

from __future__ import annotations

import html
import logging
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from oaas_lab.adapters import browser
from oaas_lab.adapters.browser import CHROMEDRIVER, dashboard_screenshot
from oaas_lab.errors import LabError
from oaas_lab.secrets import Secret

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(
        not CHROMEDRIVER.exists(),
        reason=f"{CHROMEDRIVER} is missing: apt-get install -y --no-install-recommends "
        "chromium chromium-driver",
    ),
]

USER = "demo"
DOMAIN = "Default"
SERVERS = ("guest-one", "guest <two>")
OUTSIDE = "http://oaas-lab-outside.test"
"""A name in a reserved TLD: an asset from off the lab, which must never be fetched directly."""


@dataclass
class Horizon:
    """What the imitation saw, and the credentials it accepts."""

    password: str
    url: str = ""
    posts: list[dict[str, list[str]]] = field(default_factory=list)
    sessions: set[str] = field(default_factory=set)


LOGIN = """<!DOCTYPE html><html><head><title>Login - OpenStack Dashboard</title></head><body>
<form id="" method="POST" action="{action}" autocomplete="off">
<input type="hidden" name="csrfmiddlewaretoken" value="x">
<div class="fake_credentials" style="display: none">
<input type="text" name="fake_email" value=""><input type="password" name="fake_password" value="">
</div>
{error}
<fieldset>
<label for="id_username">User Name</label><input type="text" name="username" id="id_username">
<label for="id_password">Password</label><input type="password" name="password" id="id_password">
<label for="id_domain">Domain</label><input type="text" name="domain" id="id_domain">
<input type="hidden" name="region" value="default" id="id_region">
</fieldset>
<button id="loginBtn" type="submit" class="btn btn-primary"><span>Sign In</span></button>
</form></body></html>"""

PANEL = """<!DOCTYPE html><html><head><title>Instances - OpenStack Dashboard</title>
<style>body {{ font-family: sans-serif; }} table {{ border: 1px solid #888; }}
td, th {{ padding: 6px 20px; border: 1px solid #ccc; }}</style></head><body>
<div id="main_content"><div id="content_body">
<div class="page-header"><h1>Instances</h1></div>
<table id="instances" class="table table-striped datatable">
<thead><tr><th>Instance Name</th><th>Status</th></tr></thead>
<tbody>{rows}</tbody></table>
<p>Displaying {count} items</p><img src="{outside}/pixel.png" alt="">
</div></div></body></html>"""


def make_handler(state: Horizon) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def send(self, status: int, body: str = "", headers: dict[str, str] | None = None) -> None:
            data = body.encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def session(self) -> str:
            for part in self.headers.get("Cookie", "").split(";"):
                name, _, value = part.strip().partition("=")
                if name == "sessionid" and value in state.sessions:
                    return value
            return ""

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/auth/login/":
                self.send(200, LOGIN.format(action="/auth/login/", error=""))
            elif not self.session():
                self.send(302, headers={"Location": f"/auth/login/?next={path}"})
            elif path == "/project/":
                self.send(200, PANEL.format(rows="", count=0, outside=OUTSIDE))
            elif path == "/project/instances/":
                rows = "".join(
                    f'<tr data-object-id="{i}" data-display="{html.escape(name)}">'
                    f"<td>{html.escape(name)}</td><td>Active</td></tr>"
                    for i, name in enumerate(SERVERS)
                )
                self.send(200, PANEL.format(rows=rows, count=len(SERVERS), outside=OUTSIDE))
            else:
                self.send(404, "<html><head><title>Not Found</title></head><body>no</body></html>")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = parse_qs(self.rfile.read(length).decode())
            state.posts.append(form)
            good = (form.get("username") == [USER] and form.get("password") == [state.password]
                    and form.get("domain") == [DOMAIN] and form.get("region") == ["default"])
            if good:
                sid = secrets.token_hex(16)
                state.sessions.add(sid)
                self.send(302, headers={"Location": "/project/",
                                        "Set-Cookie": f"sessionid={sid}; Path=/; HttpOnly"})
            else:
                error = ('<div class="alert alert-danger">'
                         "<p>Invalid credentials given.</p></div>")
                self.send(200, LOGIN.format(action="/auth/login/", error=error))

    return Handler


@pytest.fixture(scope="module")
def horizon() -> Iterator[Horizon]:
    state = Horizon(password=secrets.token_urlsafe(18))
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def our_browsers() -> set[int]:
    """PIDs of processes using one of the adapter's temporary profiles."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"oaas-lab-chromium-" in cmdline:
                found.add(int(entry.name))
    return found


def profiles() -> set[str]:
    import tempfile

    return {p.name for p in Path(tempfile.gettempdir()).glob("oaas-lab-chromium-*")}


def test_logs_in_and_screenshots_the_instances_page(
    horizon: Horizon, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    record_property: pytest.RecordProperty,
):
    caplog.set_level(logging.DEBUG)
    before = profiles()
    out = tmp_path / "shots" / "instances.png"
    visit = dashboard_screenshot(horizon.url, USER, Secret(horizon.password),
                                 "/project/instances/", out, timeout=90)
    record_property("dashboard login_s", round(visit.login_seconds, 2))
    record_property("dashboard visit_s", round(visit.seconds, 2))
    assert visit.url == f"{horizon.url}/project/instances/"
    assert visit.title == "Instances - OpenStack Dashboard"
    assert visit.heading == "Instances"
    assert visit.table_id == "instances"
    assert visit.names == SERVERS
    assert "guest-one" in visit.excerpt
    assert "Displaying 2 items" in visit.excerpt
    # The form was filled the way horizon reads it; the decoy fields stayed empty.
    (post,) = horizon.posts
    assert post["password"] == [horizon.password]
    assert post["domain"] == [DOMAIN]
    assert "fake_password" not in post
    png = out.read_bytes()
    assert visit.screenshot == out
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 1024
    assert int.from_bytes(png[16:20], "big") == 1280  # IHDR width: the window size
    assert 0 < visit.login_seconds < visit.seconds < 90
    # Selenium logs its requests at DEBUG; the typed password must not be among them.
    assert any(r.name.startswith("selenium") for r in caplog.records)
    assert horizon.password not in caplog.text
    assert "', '".join(horizon.password[:4]) not in caplog.text  # typed keys as a list
    assert not our_browsers()
    assert profiles() == before


def test_a_refused_login_is_a_one_line_error_without_the_password(
    horizon: Horizon, tmp_path: Path
):
    wrong = secrets.token_urlsafe(18)
    with pytest.raises(LabError) as caught:
        dashboard_screenshot(horizon.url, USER, Secret(wrong), "/project/instances/",
                             tmp_path / "x.png", timeout=60)
    text = caught.value.one_line()
    assert "refused: Invalid credentials given." in text
    assert wrong not in text
    assert "\n" not in text
    assert not (tmp_path / "x.png").exists()
    assert not our_browsers()


def test_a_page_that_is_not_a_dashboard_page_is_reported(horizon: Horizon, tmp_path: Path):
    with pytest.raises(LabError, match=r"page /nowhere/ not shown: no main content"):
        dashboard_screenshot(horizon.url, USER, Secret(horizon.password), "/nowhere/",
                             tmp_path / "x.png", timeout=60)


def test_no_login_form_is_reported(tmp_path: Path):
    # Nothing listens on this port: chromium shows its own error page, with no login form.
    with pytest.raises(LabError, match="no horizon login form at"):
        dashboard_screenshot("http://127.0.0.1:9", USER, Secret("unused-pw"),
                             "/project/", tmp_path / "x.png", timeout=8)


def test_requests_for_other_hosts_go_to_the_dead_proxy_not_out(
    horizon: Horizon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Every panel page embeds an image from OUTSIDE. Point the adapter's dead proxy at a
    # recorder on loopback: the image request must arrive there (so it never left the host),
    # while the dashboard's own pages were fetched directly (the login still works).
    seen: list[str] = []

    class Recorder(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(502)
            self.send_header("Content-Length", "0")
            self.end_headers()

    recorder = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=recorder.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(browser, "DEAD_PROXY", f"http://127.0.0.1:{recorder.server_address[1]}")
    try:
        visit = dashboard_screenshot(horizon.url, USER, Secret(horizon.password), "/project/",
                                     tmp_path / "p.png", timeout=60)
    finally:
        recorder.shutdown()
        recorder.server_close()
        thread.join(timeout=10)
    assert visit.table_id == "instances"
    assert visit.names == ()
    assert f"{OUTSIDE}/pixel.png" in seen
    # Chromium's own background services (time, updates, safe browsing ...) are switched off.
    assert all(path.startswith(OUTSIDE) for path in seen), f"background requests: {seen}"
