"""The link pages: list and filters, create and edit through the services, archive, QR codes."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable
from typing import Any

import pytest
import zxingcpp
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from shortener.models import Link
from shortener.slugs import RANDOM_SLUG_LENGTH

FORM = {
    "url": "https://shop.example.com/lyon",
    "touchpoint": "store-flyer",
    "stage": "awareness",
    "slug": "lyon",
    "campaign": "spring-launch",
    "title": "",
    "utm": "on",
    "redirect_status": "302",
    "expires_at": "",
}

# No link has this id: ids are not reset between tests, so no small number is safe.
UNKNOWN_ID = 2_147_483_647


@pytest.fixture
def stored_link(session: Session) -> Callable[[str], Link | None]:
    """The link of `slug` as the database has it now."""

    def find(slug: str) -> Link | None:
        session.expire_all()  # forget what was loaded before the pages changed it
        return session.scalars(select(Link).where(Link.slug == slug)).one_or_none()

    return find


@pytest.fixture
def create(pages: Any) -> Callable[..., TestResponse]:
    """Submit the new-link form: FORM with `changes`."""
    return lambda client, **changes: pages.post_form(client, "/links/new", {**FORM, **changes})


def test_a_link_made_on_the_page_redirects_and_is_shown_with_its_qr_code(
    marketer_client: FlaskClient, client: FlaskClient, touchpoint: dict[str, Any],
    create: Any, stored_link: Any, pages: Any,
) -> None:
    response = create(marketer_client)

    assert response.status_code == 302
    link = stored_link("lyon")
    assert link is not None
    assert response.headers["Location"] == f"/links/{link.id}"
    assert (link.touchpoint.key, link.stage.key, link.campaign, link.utm) == (
        "store-flyer", "awareness", "spring-launch", True
    )
    page = pages.text(marketer_client.get(response.headers["Location"]))
    assert "http://go.test/lyon" in page
    assert "Link http://go.test/lyon created." in page
    assert f'<img src="/links/{link.id}/qr.svg"' in page
    redirect = client.get("/lyon")
    assert redirect.status_code == 302
    assert redirect.headers["Location"] == (
        "https://shop.example.com/lyon?utm_source=store-flyer&utm_medium=physical"
        "&utm_campaign=spring-launch"
    )


def test_a_link_can_have_a_random_slug_no_utm_another_status_and_an_expiry(
    marketer_client: FlaskClient, client: FlaskClient, touchpoint: dict[str, Any],
    session: Session, pages: Any,
) -> None:
    form = {**FORM, "slug": "", "campaign": "", "redirect_status": "301",
            "expires_at": "2030-01-02T03:04"}
    del form["utm"]  # an unticked box is not sent

    response = pages.post_form(marketer_client, "/links/new", form)

    assert response.status_code == 302
    [link] = session.scalars(select(Link)).all()
    assert len(link.slug) == RANDOM_SLUG_LENGTH
    assert (link.utm, link.redirect_status, link.campaign) == (False, 301, None)
    assert link.expires_at is not None
    assert link.expires_at.isoformat() == "2030-01-02T03:04:00+00:00"
    redirect = client.get(f"/{link.slug}")
    assert (redirect.status_code, redirect.headers["Location"]) == (
        301, "https://shop.example.com/lyon"
    )


@pytest.mark.parametrize(
    ("changes", "field", "status", "message"),
    [
        ({"url": "ftp://example.com/file"}, "url", 422, "Must be an absolute http://"),
        ({"url": "https://go.test/loop"}, "url", 422, "Must not point at this link shortener"),
        ({"url": ""}, "url", 422, "Must not be blank"),
        ({"slug": "admin"}, "slug", 422, "'admin' is reserved"),
        ({"slug": "no spaces"}, "slug", 422, "May contain only letters"),
        ({"touchpoint": ""}, "touchpoint", 422, "Must not be blank"),
        ({"touchpoint": "ghost"}, "touchpoint", 422, "No touchpoint with key 'ghost'"),
        ({"stage": "nowhere"}, "stage", 422, "No stage with key 'nowhere'"),
        ({"expires_at": "soon"}, "expires_at", 422, "Must be an ISO 8601 time"),
        ({"redirect_status": "303"}, "redirect_status", 422, "Must be one of 301, 302"),
    ],
)
def test_refused_input_is_shown_next_to_its_field_never_a_500(
    marketer_client: FlaskClient, touchpoint: dict[str, Any], session: Session,
    create: Any, pages: Any, changes: dict[str, str], field: str, status: int, message: str,
) -> None:
    response = create(marketer_client, **changes)

    assert response.status_code == status
    shown = pages.field_error(response, field)
    assert shown.startswith(message), shown
    assert 'value="https://' in pages.text(response) or field == "url"
    assert session.scalars(select(Link)).all() == []


def test_a_slug_in_use_is_a_conflict_shown_on_the_form(
    marketer_client: FlaskClient, link: dict[str, Any], create: Any, pages: Any
) -> None:
    response = create(marketer_client, slug="spring")

    assert response.status_code == 409
    assert pages.field_error(response, "slug") == "The slug 'spring' is already used on go.test."


def test_the_list_filters_by_touchpoint_stage_campaign_and_text_with_click_counts(
    marketer_client: FlaskClient, client: FlaskClient, link: dict[str, Any], new_link: Any,
    clicks: Any, pages: Any,
) -> None:
    new_link(slug="later", stage="decision", url="https://shop.example.com/checkout")
    clicks.send(client, "spring", 3)

    def slugs(query: str) -> list[str]:
        page = pages.text(marketer_client.get(f"/links?{query}"))
        short = r'class="strong mono break" href="/links/\d+">http://go\.test/([\w-]+)<'
        return re.findall(short, page)

    assert slugs("") == ["later", "spring"]
    assert slugs("stage=decision") == ["later"]
    assert slugs("campaign=spring-launch") == ["spring"]
    assert slugs("q=checkout") == ["later"]
    assert slugs("touchpoint=store-flyer&stage=awareness") == ["spring"]
    assert slugs("touchpoint=nobody") == []
    row = pages.text(marketer_client.get("/links?campaign=spring-launch"))
    assert '<td class="num" data-label="Clicks">3</td>' in row


def test_a_malformed_filter_is_a_400_page(marketer_client: FlaskClient, pages: Any) -> None:
    response = marketer_client.get("/links?cursor=nonsense")

    assert response.status_code == 400
    assert "cursor" in pages.text(response)


def test_editing_a_slug_moves_the_redirect_at_once(
    marketer_client: FlaskClient, client: FlaskClient, link: dict[str, Any], pages: Any
) -> None:
    assert client.get("/spring").status_code == 302  # cached now
    edit = f"/links/{link['id']}/edit"
    form = pages.text(marketer_client.get(edit))
    assert 'value="spring"' in form and 'value="https://shop.example.com/spring?ref=flyer"' in form

    response = pages.post_form(marketer_client, edit, {**FORM, "slug": "summer", "campaign": ""})

    assert response.status_code == 302
    moved = client.get("/summer")
    assert moved.headers["Location"] == (
        "https://shop.example.com/lyon?utm_source=store-flyer&utm_medium=physical"
    )
    assert client.get("/spring").headers["Location"] == moved.headers["Location"]  # printed
    page = pages.text(marketer_client.get(f"/links/{link['id']}"))
    assert "/spring" in page and "Codes printed with them still lead here." in page


def test_a_refused_edit_changes_nothing(
    marketer_client: FlaskClient, link: dict[str, Any], stored_link: Any, pages: Any
) -> None:
    response = pages.post_form(
        marketer_client, f"/links/{link['id']}/edit", {**FORM, "slug": "spring", "url": "nope"}
    )

    assert response.status_code == 422
    assert pages.field_error(response, "url")
    stored = stored_link("spring")
    assert stored is not None and stored.destination == "https://shop.example.com/spring?ref=flyer"


def test_archiving_a_link_makes_it_gone_at_once_and_restoring_brings_it_back(
    marketer_client: FlaskClient, client: FlaskClient, link: dict[str, Any], pages: Any
) -> None:
    page = f"/links/{link['id']}"
    assert client.get("/spring").status_code == 302  # cached now

    pages.post_form(marketer_client, f"{page}/archive", {}, form_page=page)

    assert client.get("/spring").status_code == 410
    assert "answers 410 Gone" in pages.text(marketer_client.get(page))
    pages.post_form(marketer_client, f"{page}/restore", {}, form_page=page)
    assert client.get("/spring").status_code == 302


def test_the_qr_code_downloads_as_png_and_svg_with_the_chosen_size_and_colours(
    marketer_client: FlaskClient, link: dict[str, Any]
) -> None:
    base = f"/links/{link['id']}"

    png = marketer_client.get(f"{base}/qr.png?size=300&fg=%231a237e&bg=%23ffffff&download=1")
    svg = marketer_client.get(f"{base}/qr.svg?fg=1a237e&download=1")

    assert png.status_code == 200 and png.mimetype == "image/png"
    assert png.headers["Content-Disposition"] == 'attachment; filename="spring-qr.png"'
    image = Image.open(io.BytesIO(png.data))
    assert image.size == (300, 300)
    assert image.convert("RGB").getpixel((150, 150)) in {(26, 35, 126), (255, 255, 255)}
    [decoded] = zxingcpp.read_barcodes(image)
    assert decoded.text == "http://go.test/spring?qr=1"
    assert svg.mimetype == "image/svg+xml"
    assert 'fill="#1a237e"' in svg.get_data(as_text=True)
    assert svg.headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_the_link_page_keeps_the_chosen_qr_options_and_explains_bad_ones(
    marketer_client: FlaskClient, link: dict[str, Any], pages: Any
) -> None:
    base = f"/links/{link['id']}"

    chosen = pages.text(marketer_client.get(f"{base}?size=800&fg=%23123456&ecc=H"))
    bad = marketer_client.get(f"{base}?fg=%23eeeeee&bg=%23ffffff")

    assert f'src="{base}/qr.svg?size=800&amp;ecc=H&amp;fg=%23123456"' in chosen
    assert 'value="800"' in chosen and 'value="#123456"' in chosen
    assert bad.status_code == 400
    assert "too low to scan" in pages.field_error(bad, "fg")
    assert f'src="{base}/qr.svg"' in pages.text(bad)


def test_qr_images_need_a_signed_in_marketer(
    client: FlaskClient, auth: Any, link: dict[str, Any]
) -> None:
    path = f"/links/{link['id']}/qr.png"

    anonymous = client.get(path)
    analyst = auth.client("analyst").get(path)

    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/signin")
    assert analyst.status_code == 403


def test_an_unknown_link_is_a_404_page(marketer_client: FlaskClient) -> None:
    unknown = f"/links/{UNKNOWN_ID}"
    for path in (unknown, f"{unknown}/edit", f"{unknown}/qr.png"):
        response = marketer_client.get(path)
        assert response.status_code == 404, path
        assert response.mimetype == "text/html"


def test_a_link_of_an_archived_touchpoint_can_still_be_edited(
    marketer_client: FlaskClient, client: FlaskClient, link: dict[str, Any],
    marketer: dict[str, str], stored_link: Any, pages: Any,
) -> None:
    assert client.delete("/api/v1/touchpoints/store-flyer", headers=marketer).status_code == 200
    edit = f"/links/{link['id']}/edit"
    assert "Store flyer (archived)" in pages.text(marketer_client.get(edit))

    form = {**FORM, "slug": "spring", "title": "Old flyer"}
    response = pages.post_form(marketer_client, edit, form)

    assert response.status_code == 302
    stored = stored_link("spring")
    assert stored is not None and stored.title == "Old flyer"


def test_user_text_is_escaped_on_the_link_pages(
    marketer_client: FlaskClient, new_link: Any, pages: Any
) -> None:
    created = new_link(
        slug="xss", url="https://shop.example.com/?q=<script>", campaign="<b>camp</b>",
        title='"><script>alert(1)</script>',
    )

    for path in (f"/links/{created['id']}", "/links", f"/links/{created['id']}/edit"):
        page = pages.text(marketer_client.get(path))
        assert "<script>" not in page and "<b>camp" not in page, path


def test_the_link_page_opens_the_links_analytics_page(
    marketer_client: FlaskClient, client: FlaskClient, link: dict[str, Any], clicks: Any,
    pages: Any,
) -> None:
    clicks.send(client, "spring", 2)

    page = pages.text(marketer_client.get(f"/links/{link['id']}"))

    analytics = f'href="/dashboard/links/{link["id"]}"'
    assert f"{analytics}>Analytics</a>" in page
    opened = marketer_client.get(f"/dashboard/links/{link['id']}")
    assert opened.status_code == 200  # marketers are analysts too
    figures = re.search(r'<tr data-figure="human_clicks">.*?<td class="num current">(\d+)<',
                        pages.text(opened), re.S)
    assert figures is not None and figures.group(1) == "2"


def _summary(pages: Any, response: TestResponse) -> list[str]:
    """The refusals listed at the top of a form, as text."""
    page = pages.text(response)
    found = re.search(r'<div class="flash flash-error error-summary".*?</div>', page, re.S)
    assert found is not None, pages.text(response)[:2000]
    items = re.findall(r"<li>(.*?)</li>", found.group(0), re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", item)).strip() for item in items]


def test_every_refused_field_is_shown_at_once_with_a_summary_and_what_was_typed(
    marketer_client: FlaskClient, touchpoint: dict[str, Any], session: Session, create: Any,
    pages: Any,
) -> None:
    response = create(
        marketer_client, url="ftp://shop.example.com/x", touchpoint="ghost", stage="nowhere",
        slug="no spaces", redirect_status="soon", expires_at="tomorrow", campaign="spring-2027",
        survey_kind="nps", survey_then="elsewhere",
    )

    assert response.status_code == 422
    for field in ("url", "touchpoint", "stage", "slug", "redirect_status", "expires_at",
                  "survey_then"):
        assert pages.field_error(response, field)
    assert pages.field_error(response, "touchpoint") == "No touchpoint with key 'ghost'"
    assert pages.field_error(response, "redirect_status") == "Must be a whole number, like 5000"
    summary = _summary(pages, response)
    assert len(summary) == 7
    assert summary[0].startswith("Destination URL: ")
    assert any(line.startswith("Slug: May contain only letters") for line in summary)
    assert 'href="#f-expires_at"' in pages.text(response)
    page = pages.text(response)
    assert 'value="ftp://shop.example.com/x"' in page and 'value="spring-2027"' in page
    assert session.scalars(select(Link)).all() == []


def test_a_slug_in_use_is_shown_with_the_other_refusals(
    marketer_client: FlaskClient, link: dict[str, Any], create: Any, pages: Any
) -> None:
    alone = create(marketer_client, slug="spring")
    with_others = create(marketer_client, slug="spring", url="not a url")

    assert alone.status_code == 409  # a slug in use and nothing else: a conflict
    assert with_others.status_code == 422
    assert pages.field_error(with_others, "slug") == (
        "The slug 'spring' is already used on go.test."
    )
    assert pages.field_error(with_others, "url")


def test_an_edit_shows_every_refusal_and_changes_nothing(
    marketer_client: FlaskClient, link: dict[str, Any], new_link: Any, pages: Any,
    stored_link: Any,
) -> None:
    new_link(slug="later")
    form = {**FORM, "slug": "later", "url": "", "stage": "nowhere"}

    response = pages.post_form(marketer_client, f"/links/{link['id']}/edit", form)

    assert response.status_code == 422
    assert pages.field_error(response, "url") == "Must not be blank"
    assert pages.field_error(response, "stage") == "No stage with key 'nowhere'"
    assert pages.field_error(response, "slug") == "The slug 'later' is already used on go.test."
    kept = stored_link("spring")
    assert kept is not None and kept.stage.key == "awareness"


def test_the_list_and_the_link_page_offer_to_copy_each_short_url(
    marketer_client: FlaskClient, link: dict[str, Any], pages: Any
) -> None:
    listed = pages.text(marketer_client.get("/links"))
    shown = pages.text(marketer_client.get(f"/links/{link['id']}"))

    # The button shows once the script finds a clipboard; the URL is text to select without it.
    assert 'data-copy="http://go.test/spring" aria-label="Copy http://go.test/spring" hidden' in (
        listed
    )
    assert '">http://go.test/spring</a>' in listed
    assert 'data-copy="http://go.test/spring" hidden>Copy link</button>' in shown


def test_the_link_list_searches_slugs_destinations_and_titles(
    marketer_client: FlaskClient, link: dict[str, Any], new_link: Any, pages: Any
) -> None:
    new_link(slug="later", url="https://shop.example.com/checkout", title="Checkout QR")

    def found(q: str) -> list[str]:
        page = pages.text(marketer_client.get("/links", query_string={"q": q}))
        return re.findall(r'data-copy="http://go\.test/([\w-]+)"', page)

    assert found("LATER") == ["later"]
    assert found("checkout qr") == ["later"]
    assert found("shop.example.com") == ["later", "spring"]
    assert found("100%") == []
