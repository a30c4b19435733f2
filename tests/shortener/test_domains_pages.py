"""The admin page of the short domains: an admin adds a domain on the form (the API lists it and
it serves its links), sees every refusal at once, makes a domain the default, sets and clears
its fallback, moves its links and removes it as `shortener.domains` allows; others are kept out."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

Headers = dict[str, str]
PAGE = "/links/domains"
BRAND = "go.brand.test"
_COUNT = re.compile(r'data-links="([^"]+)">([\d,]+)<')


@pytest.fixture
def admin_client(auth: Any) -> FlaskClient:
    client: FlaskClient = auth.client("admin")
    return client


def add_on_page(pages: Any, client: FlaskClient, **fields: str) -> TestResponse:
    response: TestResponse = pages.post_form(client, PAGE, fields)
    return response


def act(pages: Any, client: FlaskClient, host: str, action: str, **fields: str) -> TestResponse:
    """Send one of a domain's forms, as its button on the page does."""
    response: TestResponse = pages.post_form(
        client, f"{PAGE}/{host}/{action}", fields, form_page=PAGE
    )
    return response


def listed(client: FlaskClient, admin: Headers) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.get("/api/v1/domains", headers=admin).json["items"]
    return items


def link_counts(pages: Any, client: FlaskClient) -> dict[str, int]:
    """The links column of the page's table, by host."""
    page = pages.text(client.get(PAGE))
    return {html.unescape(host): int(n.replace(",", "")) for host, n in _COUNT.findall(page)}


def make_link(client: FlaskClient, marketer: Headers, slug: str, **fields: Any) -> dict[str, Any]:
    response = client.post("/api/v1/links", headers=marketer, json={
        "url": f"https://shop.example.com/{slug}", "touchpoint": "store-flyer",
        "stage": "awareness", "slug": slug, **fields,
    })
    assert response.status_code == 201, response.json
    made: dict[str, Any] = response.json
    return made


def follow(client: FlaskClient, slug: str, host: str) -> TestResponse:
    response: TestResponse = client.get(f"/{slug}", headers={"Host": host})
    return response


def assert_back_on_page(response: TestResponse, pages: Any) -> None:
    assert response.status_code == 302, pages.text(response)[:2000]
    assert urlsplit(response.headers["Location"]).path == PAGE


def test_an_admin_adds_a_domain_on_the_page_and_it_serves_its_links(
    admin_client: FlaskClient, pages: Any, client: FlaskClient, admin: Headers,
    marketer: Headers, touchpoint: Any,
) -> None:
    added = add_on_page(pages, admin_client, host="GO.Brand.test",
                        fallback_url="https://brand.example.com/")

    assert_back_on_page(added, pages)
    assert "Short domain go.brand.test added." in pages.text(admin_client.get(PAGE))
    assert [(d["host"], d["default"], d["fallback_url"]) for d in listed(client, admin)] == [
        ("go.test", True, None), (BRAND, False, "https://brand.example.com/"),
    ]
    made = make_link(client, marketer, "spring", domain=BRAND)
    assert made["short_url"] == f"http://{BRAND}/spring"
    assert follow(client, "spring", BRAND).location.startswith("https://shop.example.com/spring?")
    assert follow(client, "spring", "go.test").status_code == 404
    assert follow(client, "no-such-code", BRAND).location == "https://brand.example.com/"
    page = pages.text(admin_client.get(PAGE))
    assert f"http://{BRAND}/…" in page and "https://brand.example.com/" in page
    assert link_counts(pages, admin_client) == {"go.test": 0, BRAND: 1}


def test_every_refusal_of_the_add_form_is_shown_at_once(
    admin_client: FlaskClient, pages: Any, client: FlaskClient, admin: Headers
) -> None:
    both = add_on_page(pages, admin_client, host="https://go.brand.test/", fallback_url="ftp://x")
    taken = add_on_page(pages, admin_client, host="GO.TEST.", fallback_url="http://go.test/loop")
    only_taken = add_on_page(pages, admin_client, host="go.test")

    assert both.status_code == 422
    assert "no scheme, no path" in pages.field_error(both, "host")
    assert pages.field_error(both, "fallback_url")
    assert "for 2 reasons" in pages.text(both)
    assert 'value="https://go.brand.test/"' in pages.text(both)  # what was sent, to correct
    assert taken.status_code == 422
    exists = "A short domain with the host go.test exists already."
    assert pages.field_error(taken, "host") == exists
    assert pages.field_error(taken, "fallback_url")
    assert only_taken.status_code == 409
    assert pages.field_error(only_taken, "host") == exists
    assert [d["host"] for d in listed(client, admin)] == ["go.test"]


def test_a_domain_keeps_its_links_until_they_are_moved_and_the_counts_follow(
    admin_client: FlaskClient, pages: Any, client: FlaskClient, admin: Headers,
    marketer: Headers, touchpoint: Any,
) -> None:
    assert_back_on_page(add_on_page(pages, admin_client, host=BRAND), pages)
    for slug in ("a1", "a2"):
        make_link(client, marketer, slug)
    make_link(client, marketer, "b1", domain=BRAND)
    assert link_counts(pages, admin_client) == {"go.test": 2, BRAND: 1}

    refused = act(pages, admin_client, BRAND, "remove")
    default = act(pages, admin_client, "go.test", "remove")

    assert refused.status_code == 409
    assert f"1 links use {BRAND}: printed codes carry it." in html.unescape(pages.text(refused))
    assert default.status_code == 409
    assert "go.test is the default short domain" in pages.text(default)
    assert [d["host"] for d in listed(client, admin)] == ["go.test", BRAND]

    moved = act(pages, admin_client, BRAND, "move", to="go.test")

    assert_back_on_page(moved, pages)
    assert f"1 links moved from {BRAND} to go.test." in pages.text(admin_client.get(PAGE))
    assert link_counts(pages, admin_client) == {"go.test": 3, BRAND: 0}
    assert follow(client, "b1", "go.test").location.startswith("https://shop.example.com/b1?")
    assert follow(client, "b1", BRAND).status_code == 404
    assert_back_on_page(act(pages, admin_client, BRAND, "remove"), pages)
    assert [d["host"] for d in listed(client, admin)] == ["go.test"]
    assert follow(client, "b1", BRAND).status_code == 404  # no longer one of ours


def test_a_move_that_would_clash_moves_nothing_and_says_why(
    admin_client: FlaskClient, pages: Any, client: FlaskClient, marketer: Headers,
    touchpoint: Any,
) -> None:
    add_on_page(pages, admin_client, host=BRAND)
    make_link(client, marketer, "spring")
    make_link(client, marketer, "spring", domain=BRAND)

    clash = act(pages, admin_client, BRAND, "move", to="go.test")

    assert clash.status_code == 409
    assert "These slugs exist on both domains: spring." in pages.text(clash)
    assert link_counts(pages, admin_client) == {"go.test": 1, BRAND: 1}


def test_making_a_domain_the_default_puts_new_links_on_it(
    admin_client: FlaskClient, pages: Any, client: FlaskClient, admin: Headers,
    marketer: Headers, touchpoint: Any,
) -> None:
    add_on_page(pages, admin_client, host=BRAND)
    assert make_link(client, marketer, "before")["short_url"] == "http://go.test/before"

    made = act(pages, admin_client, BRAND, "default")

    assert_back_on_page(made, pages)
    assert [(d["host"], d["default"]) for d in listed(client, admin)] == [
        (BRAND, True), ("go.test", False),
    ]
    assert make_link(client, marketer, "after")["short_url"] == f"http://{BRAND}/after"
    assert follow(client, "after", BRAND).status_code == 302
    assert follow(client, "before", "go.test").status_code == 302  # old links stay put


def test_a_new_domain_can_be_the_default_from_the_start(
    admin_client: FlaskClient, pages: Any, client: FlaskClient, admin: Headers,
    marketer: Headers, touchpoint: Any,
) -> None:
    assert_back_on_page(add_on_page(pages, admin_client, host=BRAND, default="on"), pages)

    assert [(d["host"], d["default"]) for d in listed(client, admin)] == [
        (BRAND, True), ("go.test", False),
    ]
    assert make_link(client, marketer, "fresh")["short_url"] == f"http://{BRAND}/fresh"


def test_a_fallback_url_is_set_refused_and_cleared_on_the_page(
    admin_client: FlaskClient, pages: Any, client: FlaskClient
) -> None:
    add_on_page(pages, admin_client, host=BRAND)

    bad = act(pages, admin_client, BRAND, "fallback", fallback_url="not a url")
    assert bad.status_code == 422
    assert pages.field_error(bad, "fallback_url")
    assert follow(client, "unknown", BRAND).status_code == 404

    assert_back_on_page(
        act(pages, admin_client, BRAND, "fallback", fallback_url="https://brand.example.com/"),
        pages,
    )
    assert follow(client, "unknown", BRAND).location == "https://brand.example.com/"

    assert_back_on_page(act(pages, admin_client, BRAND, "fallback", fallback_url=""), pages)
    assert follow(client, "unknown", BRAND).status_code == 404
    assert "now get the not-found page" in pages.text(admin_client.get(PAGE))


def test_an_unknown_domain_is_said_not_a_500(admin_client: FlaskClient, pages: Any) -> None:
    response = act(pages, admin_client, "nowhere.test", "remove")

    assert response.status_code == 404
    assert "No short domain &#39;nowhere.test&#39;." in pages.text(response)


def test_the_page_is_for_admins_in_their_navigation_and_fits_a_phone(
    auth: Any, admin_client: FlaskClient, pages: Any, client: FlaskClient
) -> None:
    page = pages.text(admin_client.get(PAGE))
    assert f'<a href="{PAGE}" aria-current="page">Domains</a>' in page
    assert 'name="viewport" content="width=device-width' in page
    assert '<table class="data cards">' in page  # rows stack as cards on a narrow screen
    cells = re.findall(r"<td([^>]*)>", page)
    assert cells and all("data-label=" in cell for cell in cells)

    assert client.get(PAGE).status_code == 302  # to sign in
    for role in ("analyst", "marketer"):
        other = auth.client(role)
        assert other.get(PAGE).status_code == 403, role
        refused = pages.post_form(other, PAGE, {"host": BRAND}, form_page="/dashboard")
        assert refused.status_code == 403, role
        assert f'href="{PAGE}"' not in pages.text(other.get("/dashboard")), role
