"""The touchpoint pages: list with stage coverage and last click, create, edit, archive."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from shortener.models import Touchpoint

NEW = {"key": "store-flyer-lyon", "name": "Store flyer, Lyon", "channel": "physical",
       "kind": "advertising", "exposure": "2,000"}


@pytest.fixture
def marketer_client(auth: Any) -> FlaskClient:
    client: FlaskClient = auth.client("marketer")
    return client


@pytest.fixture
def stored_touchpoint(session: Session) -> Callable[[str], Touchpoint | None]:
    """The touchpoint of `key` as the database has it now."""

    def find(key: str) -> Touchpoint | None:
        session.expire_all()  # forget what was loaded before the pages changed it
        return session.scalars(select(Touchpoint).where(Touchpoint.key == key)).one_or_none()

    return find


def test_a_touchpoint_made_on_the_page_is_stored_and_leads_on_to_its_first_link(
    marketer_client: FlaskClient, stored_touchpoint: Any, pages: Any
) -> None:
    response = pages.post_form(marketer_client, "/touchpoints/new", NEW)

    assert response.status_code == 302
    assert response.headers["Location"] == "/links/new?touchpoint=store-flyer-lyon"
    stored = stored_touchpoint("store-flyer-lyon")
    assert stored is not None
    assert (stored.name, stored.channel, stored.kind, stored.exposure) == (
        "Store flyer, Lyon", "physical", "advertising", 2000
    )
    follow = marketer_client.get(response.headers["Location"])
    assert 'value="store-flyer-lyon" selected' in pages.text(follow)


def test_the_list_shows_channel_stage_coverage_links_and_last_click(
    marketer_client: FlaskClient, link: dict[str, Any], client: FlaskClient, clicks: Any,
    pages: Any,
) -> None:
    clicks.send(client, "spring", 1)

    page = pages.text(marketer_client.get("/touchpoints"))

    assert "Store flyer" in page
    assert "physical" in page
    assert 'class="on" title="Awareness: 1 link"' in page
    assert 'class="off" title="Decision: 0 links"' in page
    assert "none in 90 days" not in page  # the click is its last click
    assert " UTC" in page


def test_a_touchpoint_without_clicks_says_so(
    marketer_client: FlaskClient, touchpoint: dict[str, Any], pages: Any
) -> None:
    assert "none in 90 days" in pages.text(marketer_client.get("/touchpoints"))


def test_refused_input_is_shown_next_to_its_field_and_kept_in_the_form(
    marketer_client: FlaskClient, stored_touchpoint: Any, pages: Any
) -> None:
    bad_key = pages.post_form(marketer_client, "/touchpoints/new", {**NEW, "key": "Not A Key"})
    bad_exposure = pages.post_form(marketer_client, "/touchpoints/new", {**NEW, "exposure": "lots"})
    no_name = pages.post_form(marketer_client, "/touchpoints/new", {**NEW, "name": "  "})

    assert bad_key.status_code == 422
    assert pages.field_error(bad_key, "key").startswith("Must be lowercase letters")
    assert 'value="Store flyer, Lyon"' in pages.text(bad_key)
    assert bad_exposure.status_code == 422
    assert pages.field_error(bad_exposure, "exposure") == "Must be a whole number, like 5000"
    assert pages.field_error(no_name, "name") == "Must not be blank"
    assert stored_touchpoint("store-flyer-lyon") is None


def test_a_key_in_use_is_a_conflict_shown_on_the_form(
    marketer_client: FlaskClient, touchpoint: dict[str, Any], pages: Any
) -> None:
    response = pages.post_form(marketer_client, "/touchpoints/new", {**NEW, "key": "store-flyer"})

    assert response.status_code == 409
    assert pages.field_error(response, "key") == (
        "A touchpoint with key 'store-flyer' exists already."
    )


def test_editing_the_key_reaches_the_redirects_at_once(
    marketer_client: FlaskClient, client: FlaskClient, link: dict[str, Any],
    stored_touchpoint: Any, pages: Any,
) -> None:
    before = client.get("/spring")
    assert "utm_source=store-flyer&" in before.headers["Location"]  # now cached

    response = pages.post_form(
        marketer_client,
        "/touchpoints/store-flyer/edit",
        {"key": "flyer-2027", "name": "Store flyer 2027", "channel": "physical", "kind": "",
         "exposure": ""},
    )

    assert response.status_code == 302
    stored = stored_touchpoint("flyer-2027")
    assert stored is not None and stored.exposure is None and stored.kind is None
    assert "utm_source=flyer-2027&" in client.get("/spring").headers["Location"]


def test_editing_shows_the_current_values(
    marketer_client: FlaskClient, touchpoint: dict[str, Any], pages: Any
) -> None:
    page = pages.text(marketer_client.get("/touchpoints/store-flyer/edit"))

    assert 'value="Store flyer"' in page
    assert 'value="500"' in page
    assert '<option value="physical" selected>' in page
    assert "Archive touchpoint" in page


def test_archiving_hides_a_touchpoint_until_restored(
    marketer_client: FlaskClient, touchpoint: dict[str, Any], stored_touchpoint: Any,
    pages: Any,
) -> None:
    archived = pages.post_form(
        marketer_client, "/touchpoints/store-flyer/archive", {},
        form_page="/touchpoints/store-flyer/edit",
    )

    assert archived.status_code == 302
    stored = stored_touchpoint("store-flyer")
    assert stored is not None and stored.archived
    row = 'href="/links?touchpoint=store-flyer"'
    assert row not in pages.text(marketer_client.get("/touchpoints"))
    shown = pages.text(marketer_client.get("/touchpoints?archived=include"))
    assert row in shown and "Restore" in shown

    pages.post_form(marketer_client, "/touchpoints/store-flyer/restore", {},
              form_page="/touchpoints?archived=include")

    stored = stored_touchpoint("store-flyer")
    assert stored is not None and not stored.archived


def test_an_unknown_touchpoint_is_a_404_page(marketer_client: FlaskClient) -> None:
    response = marketer_client.get("/touchpoints/nope/edit")

    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_names_people_typed_are_escaped(
    marketer_client: FlaskClient, client: FlaskClient, marketer: dict[str, str], pages: Any
) -> None:
    name = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    created = client.post(
        "/api/v1/touchpoints",
        json={"key": "evil", "name": name, "channel": "digital", "kind": "<b>kind</b>"},
        headers=marketer,
    )
    assert created.status_code == 201

    for path in ("/touchpoints", "/touchpoints/evil/edit", "/links/new"):
        page = pages.text(marketer_client.get(path))
        assert "<script>alert" not in page, path
        assert "<img src=x" not in page, path
        assert "&lt;script&gt;" in page, path


def test_the_pages_send_the_security_headers_and_no_inline_code(
    auth: Any, touchpoint: dict[str, Any], pages: Any
) -> None:
    client = auth.client("admin")
    for path in ("/touchpoints", "/touchpoints/new", "/links", "/links/new", "/dashboard"):
        response = client.get(path)
        assert response.status_code == 200, path
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp
        assert "img-src 'self' data:" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "private, no-store"
        page = pages.text(response)
        assert "<style" not in page and " style=" not in page, path
        assert "<script>" not in page and " onclick=" not in page, path
        assert '<meta name="viewport"' in page
