"""The dashboard in a headless Chromium: the only module importing ``selenium``.

``dashboard_screenshot`` logs in to horizon the way a person does (its login form, not an API
token), opens one page, records what the page shows and saves a PNG of it.

The browser stays on the lab: chromedriver is Debian's (``/usr/bin/chromedriver``), so
Selenium Manager never runs and never downloads anything; Chromium's background services are
switched off and every request that is neither for the dashboard's host nor for loopback is
sent to a proxy address on loopback where nothing listens, so it fails on this host instead of
leaving it. The password is typed while Selenium's request log is muted (that log carries
typed keys), and never appears in an error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select

from oaas_lab.errors import LabError
from oaas_lab.kernel.results import CheckResult, failed, passed
from oaas_lab.kernel.wait import until
from oaas_lab.secrets import MASK, Secret

__all__ = ["CHROMEDRIVER", "CHROMIUM", "DashboardVisit", "dashboard_screenshot"]

CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = "apt-get install -y --no-install-recommends chromium chromium-driver"

WINDOW = (1280, 900)
EXCERPT = 300

# Nothing listens on the discard port of loopback: a request sent there fails on this host.
DEAD_PROXY = "http://127.0.0.1:9"

_REQUEST_LOG = "selenium.webdriver.remote.remote_connection"
"""Selenium logs each WebDriver request at DEBUG, typed keys included."""

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class DashboardVisit:
    """What the browser saw on the page after logging in."""

    url: str
    """The page's final URL (after any redirect)."""
    title: str
    heading: str
    """The page's first ``h1`` (horizon: the panel name, e.g. ``Instances``)."""
    table_id: str
    """The ``id`` of the page's first data table (horizon: ``instances``), or ``""``."""
    names: tuple[str, ...]
    """The objects listed in that table (horizon rows' ``data-display``: server names)."""
    excerpt: str
    """The start of the main content's text, whitespace collapsed."""
    screenshot: Path
    login_seconds: float
    """From opening the login page to leaving it signed in."""
    seconds: float
    """The whole visit: browser start, login, page, screenshot."""


class _Mute(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


@contextlib.contextmanager
def _request_log_muted() -> Iterator[None]:
    logger = logging.getLogger(_REQUEST_LOG)
    mute = _Mute()
    logger.addFilter(mute)
    try:
        yield
    finally:
        logger.removeFilter(mute)


def _options(host: str, profile: Path) -> webdriver.ChromeOptions:
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal, as Chromium's bypass list writes it
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--user-data-dir={profile}",
        "--no-first-run", "--no-default-browser-check", "--disable-extensions",
        "--disable-default-apps", "--disable-sync", "--disable-background-networking",
        "--disable-component-update", "--disable-domain-reliability", "--no-pings",
        "--disable-client-side-phishing-detection", "--metrics-recording-only",
        "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,"
        "AutofillServerCommunication,CertificateTransparencyComponentUpdater,"
        "NetworkTimeServiceQuerying",
        # Loopback is always reached directly; the dashboard's host too; anything else would
        # have to go through a proxy that is not there. No other name is even looked up.
        f"--proxy-server={DEAD_PROXY}", f"--proxy-bypass-list={host}",
        f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {host}, EXCLUDE localhost",
    ):
        options.add_argument(argument)
    with contextlib.suppress(AttributeError), warnings.catch_warnings():
        # Selenium's own requests to chromedriver (on loopback) must not take an HTTP_PROXY;
        # the call is deprecated in favour of a client config that Chrome() does not accept.
        warnings.simplefilter("ignore", DeprecationWarning)
        options.ignore_local_proxy_environment_variables()
    return options


def _first_line(exc: WebDriverException) -> str:
    text = (exc.msg or type(exc).__name__).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _open(driver: webdriver.Chrome, url: str, deadline: float) -> None:
    # A page load may not outlast the visit's deadline either.
    driver.set_page_load_timeout(max(1.0, deadline - time.monotonic()))
    driver.get(url)


def _on_login_page(url: str) -> bool:
    return urlsplit(url).path.rstrip("/").endswith("/auth/login")


def _visible(driver: webdriver.Chrome, element_id: str) -> WebElement | None:
    found = driver.find_elements(By.ID, element_id)
    return found[0] if found and found[0].is_displayed() else None


def _choose(element: WebElement, text: str) -> None:
    """Select ``text`` in a select (by label, else by value) or type it into an input."""
    if element.tag_name.lower() == "select":
        choice = Select(element)
        try:
            choice.select_by_visible_text(text)
        except NoSuchElementException:
            choice.select_by_value(text)
    else:
        element.clear()
        element.send_keys(text)


def _waited(
    check: Callable[[], CheckResult], deadline: float, fatal: Callable[[CheckResult], bool]
) -> CheckResult:
    """``wait_for`` until ``deadline``; the last result (ok or not) either way."""
    return until(check, timeout=max(0.0, deadline - time.monotonic()), interval=0.25,
                 fatal=fatal)[0]


def _log_in(
    driver: webdriver.Chrome, base_url: str, username: str, password: Secret,
    *, domain: str, region: str | None, deadline: float,
) -> None:
    login_url = f"{base_url}/auth/login/"
    _open(driver, login_url, deadline)

    def form_shown() -> CheckResult:
        if driver.find_elements(By.ID, "id_username") and driver.find_elements(
            By.ID, "id_password"
        ):
            return passed("login form", "shown")
        # horizon renders the form on the server: a fully loaded page without it has none.
        loaded = driver.execute_script("return document.readyState") == "complete"
        return failed("login form", f"not on {driver.current_url} (title {driver.title!r})",
                      final=loaded)

    shown = _waited(form_shown, deadline, fatal=lambda r: bool(r.evidence.get("final")))
    if not shown.ok:
        raise LabError(
            f"no horizon login form at {login_url}: {shown.detail}",
            hint="is horizon served at that URL (WEBROOT included, e.g. http://HOST/dashboard)?",
        )
    user_field = driver.find_element(By.ID, "id_username")
    user_field.clear()
    user_field.send_keys(username)
    password_field = driver.find_element(By.ID, "id_password")
    with _request_log_muted():
        password_field.clear()
        password_field.send_keys(password.reveal())
    # Multi-domain horizon asks for a domain (text or select); a region select appears only
    # when several regions exist (one region is a hidden input, already filled).
    domain_field = _visible(driver, "id_domain")
    if domain_field is not None:
        _choose(domain_field, domain)
    region_field = _visible(driver, "id_region")
    if region is not None and region_field is not None:
        _choose(region_field, region)
    buttons = driver.find_elements(By.ID, "loginBtn")
    if buttons:
        buttons[0].click()
    else:
        password_field.submit()

    def signed_in() -> CheckResult:
        try:
            url = driver.current_url
            if not _on_login_page(url):
                return passed("login", f"signed in, at {urlsplit(url).path}")
            try:
                user_field.is_enabled()
                return failed("login", "the form is still being submitted")
            except StaleElementReferenceException:
                pass  # a new login page: horizon answered, look for its complaint
            complaints = [
                " ".join(e.text.split())
                for e in driver.find_elements(
                    By.CSS_SELECTOR, ".alert-danger, .alert-error, .errorlist, .help-block"
                )
                if e.text.strip()
            ]
            if complaints:
                return failed("login", f"refused: {complaints[0]}", refused=True)
            return failed("login", "still on the login page")
        except WebDriverException:
            return failed("login", "the next page is loading")

    result = _waited(signed_in, deadline, fatal=lambda r: bool(r.evidence.get("refused")))
    if not result.ok:
        raise LabError(
            f"horizon login as {username!r} failed: {result.detail}",
            hint="check the user name, its password and domain, and horizon's log; keystone "
            "must be reachable from horizon",
        )


def _read_page(driver: webdriver.Chrome, url: str, deadline: float) -> CheckResult:
    _open(driver, url, deadline)

    def content() -> CheckResult:
        try:
            if _on_login_page(driver.current_url):
                return failed("page", "sent back to the login page", final=True)
            state = driver.execute_script("return document.readyState")
            main = driver.find_elements(By.ID, "content_body")
            if main:
                return passed("page", "main content shown")
            if state == "complete":
                return failed("page", f"no main content (#content_body), title {driver.title!r}",
                              final=True)
            return failed("page", f"loading ({state})")
        except WebDriverException:
            return failed("page", "loading")

    return _waited(content, deadline, fatal=lambda r: bool(r.evidence.get("final")))


def _table(driver: webdriver.Chrome) -> tuple[str, tuple[str, ...]]:
    tables = driver.find_elements(By.CSS_SELECTOR, "#content_body table.datatable")
    if not tables:
        tables = driver.find_elements(By.CSS_SELECTOR, "#content_body table")
    if not tables:
        return "", ()
    table = tables[0]
    names = tuple(
        row.get_attribute("data-display") or ""
        for row in table.find_elements(By.CSS_SELECTOR, "tbody tr[data-display]")
    )
    return table.get_attribute("id") or "", names


def dashboard_screenshot(
    base_url: str,
    username: str,
    password: Secret,
    page: str,
    out: Path,
    *,
    domain: str = "Default",
    region: str | None = None,
    timeout: float = 120.0,
) -> DashboardVisit:
    """Log in to the dashboard at ``base_url``, open ``page`` and save a PNG of it to ``out``.

    ``base_url`` is horizon's root (``http://HOST`` or ``http://HOST/dashboard``), ``page`` a
    path below it (``/project/instances/``). ``domain`` is typed only where horizon asks for one
    (multi-domain setups), ``region`` chosen only where it offers a choice. ``timeout`` bounds
    everything but starting and stopping the browser. Failures raise ``LabError``; the browser
    and its temporary profile are gone when this returns, whatever happened.
    """
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LabError(f"dashboard URL {base_url!r} is not an http(s) URL with a host",
                       hint="pass horizon's root, e.g. http://HOST/dashboard")
    if not page.startswith("/"):
        raise LabError(f"dashboard page {page!r} must be a path starting with '/'",
                       hint="e.g. /project/instances/")
    for binary in (CHROMEDRIVER, CHROMIUM):
        if not binary.exists():
            raise LabError(f"{binary} is missing: no headless browser", hint=INSTALL_HINT)
    base_url = base_url.rstrip("/")
    # Belt and braces: Selenium Manager is skipped for an explicit driver path, and offline.
    os.environ.setdefault("SE_OFFLINE", "true")
    start = time.monotonic()
    deadline = start + timeout
    profile = Path(tempfile.mkdtemp(prefix="oaas-lab-chromium-"))
    driver: webdriver.Chrome | None = None
    try:
        try:
            driver = webdriver.Chrome(
                options=_options(parts.hostname, profile),
                service=Service(executable_path=str(CHROMEDRIVER)),
            )
        except WebDriverException as exc:
            raise LabError(f"chromium did not start: {_first_line(exc)}",
                           hint=f"reinstall the browser: {INSTALL_HINT}") from None
        login_started = time.monotonic()
        _log_in(driver, base_url, username, password, domain=domain, region=region,
                deadline=deadline)
        login_seconds = time.monotonic() - login_started
        shown = _read_page(driver, f"{base_url}{page}", deadline)
        if not shown.ok:
            raise LabError(f"dashboard page {page} not shown: {shown.detail}",
                           hint="is the panel enabled for this user's role and project?")
        table_id, names = _table(driver)
        headings = driver.find_elements(By.CSS_SELECTOR, "#content_body h1, h1")
        text = driver.find_element(By.ID, "content_body").text
        out.parent.mkdir(parents=True, exist_ok=True)
        png = driver.get_screenshot_as_png()
        if not png.startswith(PNG_SIGNATURE):
            raise LabError("chromium returned a screenshot that is not a PNG",
                           hint=f"reinstall the browser: {INSTALL_HINT}")
        out.write_bytes(png)
        visit = DashboardVisit(
            url=driver.current_url,
            title=driver.title,
            heading=" ".join(headings[0].text.split()) if headings else "",
            table_id=table_id,
            names=names,
            excerpt=" ".join(text.split())[:EXCERPT],
            screenshot=out,
            login_seconds=login_seconds,
            seconds=0.0,
        )
    except WebDriverException as exc:
        message = _first_line(exc).replace(password.reveal(), MASK)
        raise LabError(f"browser failed on the dashboard at {base_url}: {message}",
                       hint="is horizon reachable from this host?") from None
    finally:
        if driver is not None:
            with contextlib.suppress(WebDriverException, OSError):
                driver.quit()  # closes chromium, then stops chromedriver
        shutil.rmtree(profile, ignore_errors=True)
    return replace(visit, seconds=time.monotonic() - start)
