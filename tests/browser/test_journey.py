"""A marketer's and an analyst's day in a real browser, against a real server.

`touchlink run` serves a fresh embedded instance (SQLite, no Redis) with the demo workspace and
its journeys, journeys on (`TOUCHLINK_JOURNEYS=cookie`); headless Chromium (Debian's `chromium`
package, never a downloaded build) signs in as the demo user, creates a touchpoint and a link on
the pages, downloads the link's QR code, follows the code the way a phone would, finds the scan on
the dashboard and opens the touchpoint's own analytics page, on a desktop and on a phone; then
reads the funnel of journeys, closed and open, and the paths they take, and a phone's own journey
joins them; last, a phone answers a link's NPS survey through its form, and the dashboard's
feedback panel shows the answer. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import Browser, ConsoleMessage, Page

from shortener.demo import DEMO_EMAIL, DEMO_PASSWORD
from tests.browser.serving import ROOT, Server, free_port

ARTIFACTS = ROOT / "test-artifacts"
PHONE = {"width": 390, "height": 844}
# The embedded sink writes clicks every 0.5 s; the dashboard reads them from the rollups.
CLICK_STORED_SECONDS = 20
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
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
    httpd = ThreadingHTTPServer((host, free_port(host)), _Shop)
    httpd.paths = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{httpd.server_address[1]}", httpd.paths  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()


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
    phone = browser.new_context(viewport=PHONE, is_mobile=True, user_agent=IPHONE)
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
    # The demo's journeys make the stage panel a funnel of people.
    assert page.locator("svg.funnel-bar").count() == 5
    assert page.locator("#funnel-title").inner_text() == "Funnel of journeys"
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


def test_an_analyst_reads_the_funnel_and_the_paths_and_a_phones_journey_joins_them(
    server: Server, browser: Browser
) -> None:
    base = server.base
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: _note_problem(message, problems))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{base}/signin")
    page.fill("#email", DEMO_EMAIL)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{base}/dashboard")

    # The funnel, closed by default: each stage's journeys went through every stage before it.
    funnel = page.locator("section:has(#funnel-title)")
    assert funnel.locator(".toggle a[aria-current='true']").inner_text() == "Closed"
    assert "through every stage before it in order" in funnel.locator(".current").inner_text()
    closed = _funnel_journeys(page)
    assert len(closed) == 5 and closed == sorted(closed, reverse=True) and closed[-1] > 0
    assert page.locator("section:has(#most-title) th:has-text('Moved on')").count() == 1
    ARTIFACTS.mkdir(exist_ok=True)
    _section_shot(page, "#funnel-title", "journeys-funnel.png")

    # Open: every stage a journey touched counts, so no stage has fewer.
    funnel.locator(".toggle a:has-text('Open')").click()
    page.wait_for_url(re.compile(r"funnel=open"))
    assert funnel.locator(".toggle a[aria-current='true']").inner_text() == "Open"
    opened = _funnel_journeys(page)
    assert all(o >= c for o, c in zip(opened, closed, strict=True)) and opened != closed
    _section_shot(page, "#funnel-title", "journeys-funnel-open.png")

    # The paths: a flow drawn on the server, and the ten most common, most first.
    paths = page.locator("section:has(#paths-title)")
    assert paths.locator("svg.flow-chart").is_visible()
    assert paths.locator("svg.flow-chart rect").count() >= 4
    counts = [int(n.replace(",", "")) for n in
              paths.locator("tr[data-path] td[data-figure='journeys']").all_inner_texts()]
    assert len(counts) == 10 and counts == sorted(counts, reverse=True)
    _section_shot(page, "#paths-title", "journeys-paths.png")
    with page.expect_download() as download_info:
        paths.locator("a.csv").click()
    listed = Path(download_info.value.path()).read_text().splitlines()
    assert listed[0] == "path,journeys" and len(listed) > 11

    # A phone with a cookie jar of its own follows two demo links: one journey more.
    before = _head_journeys(page), _path_journeys(page, "facebook-ads > newsletter")
    phone = browser.new_context(viewport=PHONE, is_mobile=True, user_agent=IPHONE)
    for slug in ("fb-spring", "news-nov"):
        assert phone.request.get(f"{base}/{slug}", max_redirects=0).status == 302
    [cookie] = [c for c in phone.cookies() if c["name"] == "tl_j"]
    assert re.fullmatch(r"[0-9a-f]{32}", cookie["value"])
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
    phone.close()
    deadline = time.monotonic() + CLICK_STORED_SECONDS
    while (_head_journeys(page), _path_journeys(page, "facebook-ads > newsletter")) != (
        before[0] + 1, before[1] + 1
    ):
        if time.monotonic() > deadline:
            raise AssertionError(f"the phone's journey never reached the funnel: {before}")
        time.sleep(0.5)  # the embedded sink stores every half second
        page.goto(f"{base}/dashboard?funnel=open")

    # A touchpoint of the paths opens its page: its journeys and where they went next.
    paths.locator("tr[data-path] a").first.click()
    page.wait_for_url(re.compile(rf"{re.escape(base)}/dashboard/touchpoints/"))
    after = page.locator("section:has(#next-title)")
    assert after.locator("tr[data-next]").count() >= 2
    assert page.locator("table.figures tr[data-figure='moved_on'] .rate").count() == 1
    page.locator("table.figures").scroll_into_view_if_needed()
    _shot(page, "journeys-touchpoint.png")

    small = browser.new_context(viewport=PHONE, storage_state=context.storage_state()).new_page()
    small.goto(f"{base}/dashboard?funnel=open")
    assert small.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    _section_shot(small, "#funnel-title", "journeys-funnel-phone.png")
    _section_shot(small, "#paths-title", "journeys-paths-phone.png")
    small.goto(page.url)
    assert small.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    small.context.close()
    context.close()

    assert problems == []  # no script errors, and nothing the Content-Security-Policy blocked


def test_a_phone_answers_an_nps_survey_and_the_feedback_panel_shows_it(
    server: Server, browser: Browser
) -> None:
    base = server.base
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: _note_problem(message, problems))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{base}/signin")
    page.fill("#email", DEMO_EMAIL)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{base}/dashboard")

    # A survey link on the form: NPS at the help desk (the demo's survey is the click & collect
    # counter's), then a thank-you.
    page.goto(f"{base}/links/new?touchpoint=help-desk-faq&stage=support")
    page.fill("#f-url", "https://shop.example.com/collected")
    page.fill("#f-slug", "collect-nps")
    page.select_option("#f-survey_kind", "nps")
    page.select_option("#f-survey_then", "thanks")
    page.click("button:has-text('Create link')")
    page.wait_for_url(re.compile(rf"{re.escape(base)}/links/\d+$"))
    asked = page.locator("dd[data-survey='nps']").inner_text()
    assert "How likely are you to recommend us" in asked

    # A phone opens it: the question and its scale fit the screen; it taps 9 and says why.
    phone = browser.new_context(viewport=PHONE, is_mobile=True, user_agent=IPHONE)
    survey = phone.new_page()
    survey.on("console", lambda message: _note_problem(message, problems))
    survey.goto(f"{base}/collect-nps")
    assert survey.locator("h1").inner_text() == (
        "How likely are you to recommend us to a friend or colleague?"
    )
    assert survey.locator("label.scale-button").count() == 11
    assert survey.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    nine = survey.locator("label[for='score-9']")
    box = nine.bounding_box()
    assert box is not None and box["height"] >= 44 and box["width"] >= 44  # a finger's size
    nine.click()
    assert survey.locator("#score-9").is_checked()
    survey.fill("#comment", "Quick pick-up, <friendly> staff")
    _shot(survey, "survey-phone.png")
    survey.click("button:has-text('Send my answer')")
    assert survey.locator("h1").inner_text() == "Thank you!"
    phone.close()

    # The answer is in SQL when the page thanks: the panel shows it at once.
    page.goto(f"{base}/dashboard?range=7d")
    row = page.locator("section:has(#feedback-title) tr[data-touchpoint='help-desk-faq']")
    assert row.locator("[data-figure='answers']").inner_text() == "1"
    assert row.locator("[data-figure='nps'] .rate").inner_text() == "100.0"
    assert row.locator("svg.range-bar").count() == 1
    _section_shot(page, "#feedback-title", "feedback-panel.png")
    page.goto(f"{base}/dashboard/touchpoints/help-desk-faq?range=7d")
    assert page.locator(".comments blockquote").first.inner_text() == (
        "Quick pick-up, <friendly> staff"
    )
    context.close()

    assert problems == []  # no script errors, and nothing the Content-Security-Policy blocked


def _section_shot(page: Page, heading: str, name: str) -> None:
    """The section under `heading`, cut from the whole page (the sticky top bar stays at the
    top, not over the section as in a shot of the element scrolled into view)."""
    page.evaluate("window.scrollTo(0, 0)")
    box = page.locator(f"section:has({heading})").bounding_box()
    assert box is not None
    page.screenshot(path=str(ARTIFACTS / name), full_page=True, clip=box)


def _funnel_journeys(page: Page) -> list[int]:
    figures = page.locator("li.funnel-step [data-figure='journeys']").all_inner_texts()
    return [int(n.replace(",", "")) for n in figures]


def _head_journeys(page: Page) -> int:
    head = page.locator("section:has(#funnel-title) .card-head [data-figure='journeys']")
    return int(head.inner_text().replace(",", ""))


def _path_journeys(page: Page, path: str) -> int:
    row = page.locator(f"tr[data-path='{path}'] td[data-figure='journeys']")
    return int(row.inner_text().replace(",", "")) if row.count() else 0


def _note_problem(message: ConsoleMessage, problems: list[str]) -> None:
    if message.type == "error":
        problems.append(message.text)
