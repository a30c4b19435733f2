"""The marketer's import, print and hub pages in a real browser, against a real server.

`touchlink run` serves a fresh embedded instance with the demo workspace; headless Chromium
(Debian's `chromium` package) signs in as the demo admin. A CSV of links is checked row by row
on the import page before anything is written, then its good rows are imported and the results
downloaded; a few demo links are ticked on the print page of a phone and come back as a PDF
sheet of their codes; a hub with two buttons is made on the hub pages, a phone without script
opens it and taps a button, and the reports count the view and the tap. What was written is read
back through the JSON API, with a key made by `touchlink keys create`.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Route,
    ViewportSize,
    expect,
)

from shortener.demo import DEMO_EMAIL, DEMO_PASSWORD
from tests.browser.serving import Server
from tests.shortener.sheets import read_sheet
from tests.user_agents import IPHONE

DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
# The embedded sink writes clicks every 0.5 s, and the rollups with them.
CLICK_STORED_SECONDS = 20
SHOP = "https://shop.example.com"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Api:
    """The server's JSON API under an admin key."""

    base: str
    key: str

    def get(self, path: str) -> Any:
        request = urllib.request.Request(  # noqa: S310 (the test's own server)
            f"{self.base}/api/v1{path}", headers={"Authorization": f"Bearer {self.key}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.load(response)

    def links(self) -> dict[str, dict[str, Any]]:
        """Every live link, by slug (every page of the list)."""
        found: dict[str, dict[str, Any]] = {}
        cursor = ""
        while True:
            page = self.get(f"/links?limit=200{cursor}")
            found.update((link["slug"], link) for link in page["items"])
            if not page["next_cursor"]:
                return found
            cursor = f"&cursor={page['next_cursor']}"

    def human_clicks(self, link_id: int) -> int:
        clicks: int = self.get(f"/reports/links/{link_id}")["figures"]["human_clicks"]
        return clicks


@pytest.fixture(scope="module")
def api(server: Server) -> Api:
    key = server.touchlink("keys", "create", "--name", "marketer-pages", "--role", "admin")
    return Api(server.base, key.splitlines()[0].strip())


def _signed_in(browser: Browser, base: str, viewport: ViewportSize) -> BrowserContext:
    context = browser.new_context(viewport=viewport, accept_downloads=True)
    page = context.new_page()
    page.goto(f"{base}/signin")
    page.fill("#email", DEMO_EMAIL)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{base}/dashboard")
    page.close()
    return context


def _watched(context: BrowserContext) -> tuple[Page, list[str]]:
    """A new page, and the script errors and policy refusals it logs."""
    page = context.new_page()
    problems: list[str] = []

    def note(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    page.on("console", note)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return page, problems


def _eventually(read: Callable[[], T], expected: T, what: str) -> None:
    """Wait for `read()` to give `expected`: clicks reach the reports shortly after the click."""
    deadline = time.monotonic() + CLICK_STORED_SECONDS
    while (found := read()) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: {found!r}, not {expected!r}")
        time.sleep(0.5)  # the embedded sink stores every half second


def _shot(page: Page, name: str) -> None:
    """A screenshot for people to look at (test-artifacts/, kept out of git)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def _fits(page: Page) -> bool:
    width: int = page.evaluate("document.documentElement.scrollWidth")
    return width <= PHONE["width"]


# --- the import page ------------------------------------------------------------------------------

LINKS_CSV = (
    "url,touchpoint,stage,slug,campaign\r\n"
    f"{SHOP}/lyon,store-flyer-paris,awareness,import-lyon,rollout\r\n"  # 1: good
    "ftp://shop.example.com/nantes,store-flyer-paris,awareness,import-nantes,rollout\r\n"  # 2
    f"{SHOP}/lille,no-such-place,awareness,import-lille,rollout\r\n"  # 3: unknown touchpoint
    f"{SHOP}/nice,instagram-bio,consideration,import-nice,rollout\r\n"  # 4: good
    f"{SHOP}/lyon-again,store-flyer-paris,decision,import-lyon,rollout\r\n"  # 5: slug of row 1
    f"{SHOP}/insta,instagram-bio,awareness,insta,rollout\r\n"  # 6: a demo link's slug
)
IMPORTED = {"import-lyon": f"{SHOP}/lyon", "import-nice": f"{SHOP}/nice"}
REFUSED = {
    2: ("invalid_url", "import-nantes"),
    3: ("unknown_reference", "import-lille"),
    5: ("slug_taken", "import-lyon"),
    6: ("slug_taken", "insta"),
}


def test_an_import_shows_each_bad_row_before_writing_then_imports_the_good_ones(
    server: Server, browser: Browser, api: Api, tmp_path: Path
) -> None:
    base = server.base
    upload = tmp_path / "stores.csv"
    upload.write_text(LINKS_CSV, encoding="utf-8")
    context = _signed_in(browser, base, DESKTOP)
    page, problems = _watched(context)

    # The preview: every row checked, each refusal by its row number, nothing written yet.
    page.goto(f"{base}/links/import")
    page.set_input_files("#f-file", str(upload))
    page.click("button:has-text('Check the file')")
    page.wait_for_url(f"{base}/links/import/preview")
    assert page.locator("h1").inner_text() == "Check the links"
    assert page.locator("#valid-count").inner_text() == "2"
    assert page.locator("#failed-count").inner_text() == str(len(REFUSED))
    for number, (code, slug) in REFUSED.items():
        row = page.locator(f"tr[data-row='{number}']")
        assert row.locator(f"[data-error='{code}']").count() == 1, (number, row.inner_text())
        assert f"/{slug}" in row.inner_text()
    assert "also in row 1" in page.locator("tr[data-row='5'] .field-error").inner_text()
    assert "no-such-place" in page.locator("tr[data-row='3'] .field-error").inner_text()
    assert page.locator("tr[data-row] .badge:text-is('ready')").count() == 2
    _shot(page, "import-preview.png")
    existing = api.links()
    assert not set(IMPORTED) & set(existing)  # a preview writes nothing
    assert existing["insta"]["url"] == f"{SHOP}/"  # and the demo's link is left alone

    # The import: the good rows, under the slugs the file gave.
    page.click("button:has-text('Import 2 of 6 rows')")
    page.wait_for_url(f"{base}/links/import/run")
    assert page.locator("h1").inner_text() == "Imported 2 links"
    assert page.locator("#created-count").inner_text() == "2"
    assert page.locator("tr[data-row] .badge:text-is('created')").count() == 2
    links = api.links()
    for slug, url in IMPORTED.items():
        assert links[slug]["url"] == url
        assert links[slug]["short_url"] == f"{base}/{slug}"
        assert links[slug]["campaign"] == "rollout"
    assert (links["import-lyon"]["touchpoint"], links["import-lyon"]["stage"]) == (
        "store-flyer-paris", "awareness"
    )
    assert (links["import-nice"]["touchpoint"], links["import-nice"]["stage"]) == (
        "instagram-bio", "consideration"
    )
    assert not {"import-nantes", "import-lille"} & set(links)
    assert links["insta"]["url"] == f"{SHOP}/"

    # The results: one line per row of the file, each with its status or its error.
    with page.expect_download() as download_info:
        page.click("button:has-text('Download the results (CSV)')")
    download = download_info.value
    assert download.suggested_filename == "touchlink-links-import-results.csv"
    text = Path(download.path()).read_text(encoding="utf-8")
    results = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["row"]) for r in results] == [1, 2, 3, 4, 5, 6]
    statuses = {int(r["row"]): (r["status"], r["error_code"]) for r in results}
    assert statuses == {
        1: ("created", ""), 4: ("created", ""),
        **{number: ("error", code) for number, (code, _) in REFUSED.items()},
    }
    by_row = {int(r["row"]): r for r in results}
    assert by_row[1]["short_url"] == f"{base}/import-lyon"
    assert by_row[4]["short_url"] == f"{base}/import-nice"
    assert all(by_row[number]["slug"] == slug for number, (_, slug) in REFUSED.items())
    assert all(by_row[number]["error"] for number in REFUSED)
    context.close()

    assert problems == []


# --- the print page -------------------------------------------------------------------------------

PRINTED = ("flyer-paris", "box", "window")  # physical demo links: on the page by default


def test_links_ticked_on_a_phone_come_back_as_a_pdf_sheet_of_their_codes(
    server: Server, browser: Browser, api: Api
) -> None:
    base = server.base
    context = _signed_in(browser, base, PHONE)
    page, problems = _watched(context)
    page.goto(f"{base}/links/print")
    assert page.locator("h1").inner_text() == "Print QR codes"
    assert _fits(page)

    # Every live link of the channel comes ticked: untick all but three.
    boxes = page.locator("input[name='links']")
    assert boxes.count() > len(PRINTED)
    for box in boxes.all():
        box.uncheck()
    for slug in PRINTED:
        page.locator(f"label.check:has(span.mono:text-is('/{slug}')) input").check()
    assert page.locator("input[name='links']:checked").count() == len(PRINTED)
    _shot(page, "print-phone.png")
    page.select_option("#f-columns", "2")
    with page.expect_download() as download_info:
        page.click("button:has-text('Download PDF')")
    download = download_info.value
    assert download.suggested_filename == "qr-sheet.pdf"
    pdf = Path(download.path()).read_bytes()
    assert pdf.startswith(b"%PDF")

    # The sheet: the three codes, each a scan of its link, with its short URL written under it.
    links = api.links()
    short_urls = {links[slug]["short_url"] for slug in PRINTED}
    assert short_urls == {f"{base}/{slug}" for slug in PRINTED}
    [sheet] = read_sheet(pdf)
    assert short_urls <= set(sheet.text.splitlines())
    assert sorted(sheet.urls) == sorted(f"{url}?qr=1" for url in short_urls)
    others = {link["short_url"] for slug, link in links.items() if slug not in PRINTED}
    assert not others & set(sheet.text.splitlines())
    context.close()

    assert problems == []


# --- the hub --------------------------------------------------------------------------------------

BUTTONS = {"Lookbook": f"{SHOP}/lookbook", "Newsletter": f"{SHOP}/newsletter"}


def _shop(route: Route) -> None:
    """The shop the buttons lead to, answered in the browser: no network is needed."""
    route.fulfill(
        status=200, content_type="text/html; charset=utf-8",
        body="<!doctype html><title>Shop</title><h1>Welcome to the shop</h1>",
    )


def test_a_hub_made_on_the_pages_is_seen_and_tapped_on_a_phone_without_script(
    server: Server, browser: Browser, api: Api
) -> None:
    base = server.base
    context = _signed_in(browser, base, DESKTOP)
    page, problems = _watched(context)

    # The hub, then its two buttons, through the forms.
    page.goto(f"{base}/links/hubs")
    page.click("a:has-text('New hub')")
    page.wait_for_url(f"{base}/links/hubs/new")
    page.select_option("#f-touchpoint", "instagram-bio")
    page.fill("#f-title", "Maison Lune")
    page.fill("#f-description", "Spring in the shop")
    page.select_option("#f-stage", "awareness")
    page.fill("#f-slug", "lune")
    page.click("button:has-text('Create hub')")
    page.wait_for_url(re.compile(rf"{re.escape(base)}/links/hubs/\d+$"))
    hub_id = int(page.url.rsplit("/", 1)[1])
    added = page.locator("ol.hub-buttons h3")
    stages = ("consideration", "decision")
    for count, ((label, url), stage) in enumerate(zip(BUTTONS.items(), stages, strict=True), 1):
        page.fill("#f-add-label", label)
        page.select_option("#f-add-stage", stage)
        page.fill("#f-add-url", url)
        page.click("button:has-text('Add button')")
        expect(added).to_have_count(count)  # the same address, #buttons, comes back each time
    assert added.all_inner_texts() == list(BUTTONS)
    context.close()
    assert problems == []

    hub = api.get(f"/hubs/{hub_id}")
    assert (hub["short_url"], hub["touchpoint"], hub["stage"]) == (
        f"{base}/lune", "instagram-bio", "awareness"
    )
    buttons = {button["label"]: button for button in hub["buttons"]}
    assert {label: (b["url"], b["stage"]) for label, b in buttons.items()} == {
        label: (url, stage) for (label, url), stage in zip(BUTTONS.items(), stages, strict=True)
    }

    # A phone without script opens the bio's link: the page, its title and its two buttons.
    phone = browser.new_context(
        viewport=PHONE, is_mobile=True, user_agent=IPHONE, java_script_enabled=False
    )
    phone.route(f"{SHOP}/**", _shop)
    view = phone.new_page()
    response = view.goto(hub["short_url"])
    assert response is not None and response.status == 200
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert view.title() == "Maison Lune"
    assert view.locator("h1").inner_text() == "Maison Lune"
    assert view.locator(".about").inner_text() == "Spring in the shop"
    assert view.locator("script").count() == 0
    shown = view.locator("a.button")
    assert shown.all_inner_texts() == list(BUTTONS)
    assert [shown.nth(i).get_attribute("href") for i in range(2)] == [
        buttons[label]["short_url"] for label in BUTTONS
    ]
    assert _fits(view)
    _shot(view, "hub-phone.png")

    # A tap on the lookbook goes through its link to the shop, tagged with the touchpoint.
    with view.expect_response(buttons["Lookbook"]["short_url"]) as tap:
        shown.first.click()
    assert tap.value.status == 302
    view.wait_for_url(re.compile(rf"^{re.escape(BUTTONS['Lookbook'])}\?"))
    assert view.url == tap.value.headers["location"]
    landed = urlsplit(view.url)
    assert f"{landed.scheme}://{landed.netloc}{landed.path}" == BUTTONS["Lookbook"]
    assert parse_qs(landed.query)["utm_source"] == ["instagram-bio"]
    assert view.locator("h1").inner_text() == "Welcome to the shop"
    phone.close()

    # The reports: one view of the hub's link, one tap of the lookbook's, none of the other.
    counted = {
        "hub": hub["link"]["id"],
        **{label: button["link_id"] for label, button in buttons.items()},
    }
    _eventually(
        lambda: {name: api.human_clicks(link_id) for name, link_id in counted.items()},
        {"hub": 1, "Lookbook": 1, "Newsletter": 0},
        "clicks counted of the hub and its buttons",
    )


# --- domains, and a printed code renamed ----------------------------------------------------------


def test_an_admin_adds_a_domain_and_a_renamed_links_old_slug_is_shown_and_still_followed(
    server: Server, browser: Browser, api: Api
) -> None:
    base = server.base
    context = _signed_in(browser, base, PHONE)
    page, problems = _watched(context)
    page.goto(f"{base}/links/domains")
    assert _fits(page)
    page.fill("#add input[name='host']", "go.lune.test")
    page.fill("#add input[name='fallback_url']", f"{SHOP}/")
    page.click("#add button:has-text('Add domain')")
    page.wait_for_load_state()
    assert "go.lune.test" in [d["host"] for d in api.get("/domains")["items"]]
    assert "go.lune.test" in page.locator("table").inner_text()
    assert _fits(page)
    _shot(page, "domains-phone.png")

    # The banner's slug is renamed on its edit page, which warns of the codes printed with it.
    link = api.links()["banner"]
    page.goto(f"{base}/links/{link['id']}/edit")
    assert "Codes already printed carry /banner" in page.locator("form.stack").inner_text()
    page.fill("#f-slug", "banner-26")
    page.click("button:has-text('Save')")
    page.wait_for_url(f"{base}/links/{link['id']}")
    assert "/banner" in page.locator("[data-old-slugs]").inner_text()
    assert _fits(page)
    _shot(page, "link-old-slug-phone.png")
    assert problems == []

    # The code printed with the old slug, typed in capitals, leads where the link does.
    request = urllib.request.Request(  # noqa: S310 (the test's own server)
        f"{base}/BANNER", headers={"User-Agent": IPHONE}
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        opener.open(request, timeout=10)
        raise AssertionError("the old slug did not redirect")
    except urllib.error.HTTPError as answer:
        assert answer.code == 302
        assert answer.headers["Location"].startswith(link["url"].split("?")[0])


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None
