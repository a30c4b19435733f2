"""Every page, for every role, on a 390 px wide phone; and the pages' bits of script (a key made of
the name, copy buttons) with script and without.

`touchlink run` serves a fresh embedded instance with the demo; a marketer and an analyst are made
with `touchlink users create`, the demo admin is the third role. Each signs in and opens every page
its navigation reaches (and the forms, lists and analytics pages behind them); no page may be wider
than the screen, nor a list of touchpoints or links (they become cards, which are read downwards),
and every control must be at least 24 px on each side.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, ViewportSize

from shortener.demo import DEMO_EMAIL, DEMO_PASSWORD
from tests.browser.serving import Server

PHONE: ViewportSize = {"width": 390, "height": 844}
PASSWORD = "phone-pages-password"
MIN_TARGET = 24
# Visible controls smaller than a fingertip's target (inline links in text are exempt, as in
# WCAG 2.5.8).
SMALL_TARGETS = """
(min) => {
  const small = [];
  const controls = document.querySelectorAll(
    "main button, main select, main input:not([type=hidden]), main .button, header button, header a"
  );
  for (const el of controls) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    if (getComputedStyle(el).visibility === "hidden") continue;
    if (el.closest(".visually-hidden") || el.classList.contains("scale-input")) continue;
    if (box.width < min || box.height < min) {
      const name = el.id || el.name || el.textContent.trim().slice(0, 30) || el.tagName;
      const size = `${Math.round(box.width)}x${Math.round(box.height)}`;
      small.push(`${el.tagName.toLowerCase()} ${name} ${size}`);
    }
  }
  return small;
}
"""


@dataclass(frozen=True, slots=True)
class Demo:
    """What the pages are opened on: a touchpoint, a link and a campaign of the demo."""

    touchpoint: str
    link_id: str
    campaign: str
    gone_slug: str


def _sign_in(browser: Browser, base: str, email: str, password: str) -> BrowserContext:
    context = browser.new_context(viewport=PHONE, is_mobile=True)
    page = context.new_page()
    page.goto(f"{base}/signin")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button:has-text('Sign in')")
    page.wait_for_load_state()
    assert "/signin" not in page.url, page.url
    page.close()
    return context


def _demo(server: Server, admin: BrowserContext) -> Demo:
    page = admin.new_page()
    page.goto(f"{server.base}/links")
    href = page.locator("table.links-list a[href^='/links/']").first.get_attribute("href")
    assert href is not None
    link_id = href.rsplit("/", 1)[1]
    page.goto(f"{server.base}/touchpoints")
    edit = page.locator("a[href$='/edit']").first.get_attribute("href")
    assert edit is not None
    touchpoint = edit.split("/")[2]
    page.goto(f"{server.base}/dashboard")
    campaign = page.locator("a[href^='/dashboard/campaigns/']").first.get_attribute("href")
    assert campaign is not None
    page.close()
    # An archived link, for the 410 page.
    server.touchlink(
        "links", "create", "https://shop.example.com/gone", "--touchpoint", touchpoint,
        "--stage", "awareness", "--slug", "phone-gone",
    )
    server.touchlink("links", "archive", "phone-gone")
    return Demo(touchpoint, link_id, campaign.rsplit("/", 1)[1].split("?")[0], "phone-gone")


def _pages(nav: list[str], demo: Demo) -> list[str]:
    """The navigation's pages and the pages behind them."""
    pages = [*nav, "/account"]
    if "/links/webhooks" in nav:  # an admin's
        pages.append("/dashboard/shares")
    if "/touchpoints" in nav:
        pages += [
            "/touchpoints?q=a", "/touchpoints?archived=include", "/touchpoints/new",
            f"/touchpoints/{demo.touchpoint}/edit",
        ]
    if "/links" in nav:
        pages += [
            "/links?q=a&archived=include", "/links/new", f"/links/{demo.link_id}",
            f"/links/{demo.link_id}/edit", "/links/999999999",
        ]
    if "/links/import" in nav:
        pages.append("/touchpoints/import")
    if "/dashboard" in nav:
        pages += [
            "/dashboard?range=7d&funnel=open&map=nps",
            f"/dashboard/touchpoints/{demo.touchpoint}",
            f"/dashboard/links/{demo.link_id}",
            f"/dashboard/campaigns/{demo.campaign}",
            "/dashboard?range=bogus",
        ]
    return pages


def _check(page: Page, name: str, too_wide: list[str], too_small: list[str]) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    if width > PHONE["width"]:
        too_wide.append(f"{name}: {width} px")
    # The lists are cards on a phone: read down, never scrolled sideways in their box.
    lists = page.locator("table.cards").evaluate_all("tables => tables.map(t => t.scrollWidth)")
    too_wide += [f"{name}: its list {w} px" for w in lists if w > PHONE["width"]]
    too_small += [f"{name}: {target}" for target in page.evaluate(SMALL_TARGETS, MIN_TARGET)]


def _note_problem(message: ConsoleMessage, problems: list[str]) -> None:
    if message.type == "error" and "status of 4" not in message.text:  # the 404 and 410 pages
        problems.append(message.text)


def test_every_page_of_every_role_fits_a_phone(server: Server, browser: Browser) -> None:
    base = server.base
    for role in ("marketer", "analyst"):
        server.touchlink(
            "users", "create", "--email", f"{role}@phone.test", "--role", role,
            "--password-stdin", stdin=f"{PASSWORD}\n",
        )
    people = {
        "admin": _sign_in(browser, base, DEMO_EMAIL, DEMO_PASSWORD),
        "marketer": _sign_in(browser, base, "marketer@phone.test", PASSWORD),
        "analyst": _sign_in(browser, base, "analyst@phone.test", PASSWORD),
    }
    demo = _demo(server, people["admin"])
    too_wide: list[str] = []
    too_small: list[str] = []
    problems: list[str] = []
    visited: dict[str, list[str]] = {}

    for role, context in people.items():
        page = context.new_page()
        page.on("console", lambda message: _note_problem(message, problems))
        page.goto(f"{base}/")
        nav = [
            href for href in page.locator("nav.mainnav a").evaluate_all(
                "links => links.map(a => a.getAttribute('href'))"
            )
        ]
        visited[role] = _pages(nav, demo)
        for path in visited[role]:
            page.goto(f"{base}{path}")
            _check(page, f"{role} {path}", too_wide, too_small)
        if "/touchpoints" in nav:  # the forms with every refusal shown
            page.goto(f"{base}/touchpoints/new")
            page.fill("#f-name", "!!!")
            page.fill("#f-exposure", "lots")
            page.click("button:has-text('Create touchpoint')")
            assert page.locator(".error-summary li").count() == 2
            _check(page, f"{role} /touchpoints/new refused", too_wide, too_small)
            page.goto(f"{base}/links/new")
            page.fill("#f-url", "ftp://nope")
            page.fill("#f-slug", "no spaces")
            page.click("button:has-text('Create link')")
            assert page.locator(".error-summary li").count() == 4  # url, touchpoint, stage, slug
            _check(page, f"{role} /links/new refused", too_wide, too_small)
        page.close()

    assert set(visited["admin"]) >= {
        "/dashboard", "/touchpoints", "/links", "/links/print", "/links/import",
    }
    assert set(visited["marketer"]) >= {"/touchpoints/import", "/links/print"}
    assert not {"/touchpoints", "/links"} & set(visited["analyst"])

    anonymous = browser.new_context(viewport=PHONE, is_mobile=True)
    page = anonymous.new_page()
    page.on("console", lambda message: _note_problem(message, problems))
    for path in ("/signin", "/no-such-link", f"/{demo.gone_slug}"):
        response = page.goto(f"{base}{path}")
        assert response is not None
        _check(page, f"anonymous {path} ({response.status})", too_wide, too_small)
    assert page.locator(".status").inner_text() == "410"
    for context in people.values():
        context.close()
    anonymous.close()

    assert too_wide == [], "wider than a 390 px phone"
    assert too_small == [], f"controls under {MIN_TARGET} px"
    assert problems == []


def test_the_key_follows_the_name_until_it_is_typed_and_the_server_makes_it_without_script(
    server: Server, browser: Browser
) -> None:
    base = server.base
    context = _sign_in(browser, base, DEMO_EMAIL, DEMO_PASSWORD)
    page = context.new_page()
    page.goto(f"{base}/touchpoints/new")
    page.locator("#f-name").press_sequentially("Store flyer, Lyon")
    assert page.locator("#f-key").input_value() == "store-flyer-lyon"
    page.locator("#f-name").fill("Café de l'Opéra — Nantes")
    assert page.locator("#f-key").input_value() == "cafe-de-l-opera-nantes"
    page.locator("#f-key").fill("opera")
    page.locator("#f-name").press_sequentially(" 2")
    assert page.locator("#f-key").input_value() == "opera"  # typed by hand: left alone
    page.locator("#f-key").fill("")
    page.locator("#f-name").fill("Window poster")
    assert page.locator("#f-key").input_value() == "window-poster"  # cleared: follows again
    context.close()

    scriptless = browser.new_context(
        viewport=PHONE, java_script_enabled=False,
        storage_state=_sign_in(browser, base, DEMO_EMAIL, DEMO_PASSWORD).storage_state(),
    )
    page = scriptless.new_page()
    page.goto(f"{base}/touchpoints/new")
    page.fill("#f-name", "Café de l'Opéra — Nantes")
    page.select_option("#f-channel", "physical")
    page.click("button:has-text('Create touchpoint')")
    page.wait_for_url(f"{base}/links/new?touchpoint=cafe-de-l-opera-nantes")
    page.goto(f"{base}/links?touchpoint=cafe-de-l-opera-nantes")
    assert page.locator("[data-copy]").count() == 0  # no link of it yet
    page.goto(f"{base}/links")
    copy = page.locator("table.links-list [data-copy]").first
    assert copy.is_hidden()  # without script: the short URL is text to select
    short = page.locator("table.links-list td.short-cell a").first.inner_text()
    assert re.fullmatch(rf"{re.escape(base)}/[\w-]+", short)
    scriptless.close()


def test_a_short_url_is_copied_from_the_list_and_the_link_page(
    server: Server, browser: Browser
) -> None:
    base = server.base
    context = _sign_in(browser, base, DEMO_EMAIL, DEMO_PASSWORD)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: _note_problem(message, problems))
    page.goto(f"{base}/links")
    row = page.locator("table.links-list tbody tr").first
    short = row.locator("td.short-cell a").inner_text()
    button = row.locator("button[data-copy]")
    assert button.inner_text() == "Copy"
    button.click()
    # The label changes once the clipboard has taken the text (a promise), not at the click.
    page.wait_for_function(
        "button => button.textContent === 'Copied' && button.classList.contains('copied')",
        arg=button.element_handle(), timeout=5000,
    )
    assert page.evaluate("navigator.clipboard.readText()") == short
    page.wait_for_function(
        "button => button.textContent === 'Copy'", arg=button.element_handle(), timeout=5000
    )

    row.locator("td.short-cell a").click()
    page.wait_for_url(re.compile(rf"{re.escape(base)}/links/\d+$"))
    page.click("button:has-text('Copy link')")
    page.wait_for_function(
        "button => button.textContent === 'Copied'",
        arg=page.locator("button[data-copy]").element_handle(), timeout=5000,
    )
    assert page.evaluate("navigator.clipboard.readText()") == short
    context.close()
    assert problems == []
