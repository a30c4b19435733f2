"""A marketer's and an analyst's day in a real browser, against a real server.

`touchlink run` serves a fresh embedded instance (SQLite, no Redis) with the demo workspace;
headless Chromium (Debian's `chromium` package, never a downloaded build) signs in as the demo user,
creates a touchpoint and a link on the pages, downloads the link's QR code, follows the code the
way a phone would, finds the scan on the dashboard and opens the touchpoint's own analytics page,
on a desktop and on a phone. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from shortener.demo import DEMO_EMAIL, DEMO_PASSWORD

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 390, "height": 844}
STARTUP_SECONDS = 90
# The embedded sink writes clicks every 0.5 s; the dashboard reads them from the rollups.
CLICK_STORED_SECONDS = 20


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class Server:
    base: str
    output: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`touchlink run` on a free port, with a fresh instance folder: the demo is seeded."""
    # The console script next to this interpreter first: the one `pip install -e .` made.
    touchlink = shutil.which("touchlink", path=str(Path(sys.executable).parent))
    touchlink = touchlink or shutil.which("touchlink")
    if touchlink is None:
        raise RuntimeError("the `touchlink` command is not installed: pip install -e '.[test]'")
    instance = tmp_path_factory.mktemp("instance")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith("TOUCHLINK_")
    }
    # The server runs this checkout's code, whatever `pip install -e` pointed at.
    env.update(
        TOUCHLINK_INSTANCE_PATH=str(instance),
        TOUCHLINK_BASE_URL=base,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    output = instance / "server.log"
    with output.open("w") as log:
        process = subprocess.Popen(
            [touchlink, "run", "--host", "127.0.0.1", "--port", str(port)],
            env=env, cwd=instance, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(base, process, output)
        yield Server(base, output)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(base: str, process: subprocess.Popen[bytes], output: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"touchlink run exited with {process.returncode}:\n{output.read_text()}"
            )
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(
        f"touchlink run did not answer within {STARTUP_SECONDS} s:\n{output.read_text()}"
    )


class _Shop(BaseHTTPRequestHandler):
    """The destination of the test's link: a page that says where the visitor landed."""

    def do_GET(self) -> None:
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        body = b"<!doctype html><title>Shop</title><h1>Welcome to the shop</h1>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def shop() -> Iterator[tuple[str, list[str]]]:
    """A second local server as the link's destination, on another loopback address (links may
    not point at the shortener's own host) and port; yields its base URL and the paths it got."""
    host = "127.0.0.2"
    httpd = ThreadingHTTPServer((host, _free_port(host)), _Shop)
    httpd.paths = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{httpd.server_address[1]}", httpd.paths  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        raise RuntimeError(
            f"{CHROMIUM} is missing: the browser tests need Debian's chromium package "
            "(apt-get install -y chromium)"
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _shot(page: Page, name: str, *, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=full_page)


def test_a_marketer_makes_a_qr_link_and_the_analyst_sees_its_scan(
    server: Server, shop: tuple[str, list[str]], browser: Browser
) -> None:
    base = server.base
    shop_url, shop_paths = shop
    banner = server.output.read_text()
    assert f"Sign in at {base}/signin as {DEMO_EMAIL}, password {DEMO_PASSWORD}" in banner

    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: _note_problem(message, problems))
    page.on("pageerror", lambda error: problems.append(str(error)))

    # Signing in: a page asks for it first, and comes back after.
    page.goto(f"{base}/dashboard")
    assert page.url.startswith(f"{base}/signin?next=")
    _shot(page, "signin.png", full_page=False)
    page.fill("#email", DEMO_EMAIL)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{base}/dashboard")
    assert page.locator("h1").inner_text() == "Dashboard"

    # A touchpoint, then its link, through the forms.
    page.click("nav.mainnav >> text=Touchpoints")
    page.click("text=New touchpoint")
    page.fill("#f-name", "Browser test flyer")
    page.fill("#f-key", "browser-flyer")
    page.select_option("#f-channel", "physical")
    page.fill("#f-exposure", "250")
    page.click("button:has-text('Create touchpoint')")
    page.wait_for_url(f"{base}/links/new?touchpoint=browser-flyer")
    assert page.locator("#f-touchpoint").input_value() == "browser-flyer"
    page.fill("#f-url", f"{shop_url}/landing")
    page.select_option("#f-stage", "awareness")
    page.fill("#f-slug", "browser-qr")
    page.fill("#f-campaign", "e2e")
    page.click("button:has-text('Create link')")
    page.wait_for_url(re.compile(rf"{re.escape(base)}/links/\d+$"))
    assert page.locator("h1").inner_text() == f"{base}/browser-qr"
    assert page.locator(".qr-preview img").evaluate("img => img.naturalWidth") > 0
    _shot(page, "link-created.png")

    # The QR code, in chosen colours, as a PNG download.
    page.fill("#f-size", "480")
    page.fill("#f-fg", "#1a237e")
    with page.expect_download() as download_info:
        page.click("button:has-text('Download PNG')")
    download = download_info.value
    assert download.suggested_filename == "browser-qr-qr.png"
    ARTIFACTS.mkdir(exist_ok=True)
    qr_path = ARTIFACTS / "qr.png"
    download.save_as(qr_path)
    image = Image.open(qr_path)
    assert image.size == (480, 480)
    [code] = zxingcpp.read_barcodes(image)
    assert code.text == f"{base}/browser-qr?qr=1"

    # A phone follows the code: it lands on the shop, tagged with the touchpoint.
    phone = browser.new_context(viewport=PHONE, is_mobile=True, user_agent=(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
    ))
    scan = phone.new_page()
    scan.goto(code.text)
    assert scan.url == (
        f"{shop_url}/landing?utm_source=browser-flyer&utm_medium=physical&utm_campaign=e2e"
    )
    assert scan.locator("h1").inner_text() == "Welcome to the shop"
    assert shop_paths[0] == "/landing?utm_source=browser-flyer&utm_medium=physical&utm_campaign=e2e"
    phone.close()

    # The analyst finds the scan on the dashboard once the click is stored.
    cell = page.locator(".journey-map td[title^='Browser test flyer at Awareness']")
    deadline = time.monotonic() + CLICK_STORED_SECONDS
    while True:
        page.goto(f"{base}/dashboard?range=7d")
        if "1 click," in (cell.get_attribute("title") or ""):
            break
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the scan never reached the dashboard: {cell.get_attribute('title')}"
            )
        time.sleep(0.5)  # the embedded sink stores every half second
    assert cell.inner_text() == "1"
    assert page.locator("svg.chart").is_visible()
    assert page.locator("svg.stage-bar").count() == 5
    assert page.locator("#stages-title").inner_text() == "Visitors by stage"
    _shot(page, "dashboard.png")

    # The touchpoint's name opens its own page, with the same window.
    page.click(".journey-map a:has-text('Browser test flyer')")
    page.wait_for_url(f"{base}/dashboard/touchpoints/browser-flyer?range=7d")
    assert page.locator("h1").inner_text().startswith("Browser test flyer")
    figures = page.locator("table.figures")
    assert figures.locator("tr[data-figure='human_clicks'] td.current").inner_text() == "1"
    assert figures.locator("tr[data-figure='scans'] td.current").inner_text() == "1"
    assert figures.locator("tr[data-figure='reached'] td.current").inner_text() == "250"
    assert page.locator(".links-table a:has-text('/browser-qr')").count() == 1
    assert page.locator("svg.chart").is_visible()
    _shot(page, "touchpoint-analytics.png")

    phone_view = browser.new_context(viewport=PHONE, storage_state=context.storage_state())
    small = phone_view.new_page()
    small.goto(f"{base}/dashboard?range=7d")
    assert small.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    _shot(small, "dashboard-phone.png", full_page=False)
    small.goto(f"{base}/dashboard/touchpoints/browser-flyer?range=7d")
    assert small.locator("h1").inner_text().startswith("Browser test flyer")
    assert small.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    _shot(small, "touchpoint-analytics-phone.png")
    small.goto(f"{base}/links")
    assert small.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    phone_view.close()
    context.close()

    assert problems == []  # no script errors, and nothing the Content-Security-Policy blocked


def _note_problem(message: ConsoleMessage, problems: list[str]) -> None:
    if message.type == "error":
        problems.append(message.text)
