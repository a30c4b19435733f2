"""The print page: a marketer picks links, downloads their sheet, and makes one code with a caption
and a logo; through the real forms, with the CSRF token a browser sends."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

import pytest
import zxingcpp
from flask.testing import FlaskClient
from PIL import Image
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from shortener.print_logo import LOGO_MAX_BYTES
from tests.shortener.sheets import read_sheet

Headers = dict[str, str]
PAGE = "/links/print"
SHEET_FORM = f"{PAGE}/sheet.pdf"
CODE_FORM = f"{PAGE}/code"


@pytest.fixture
def make(client: FlaskClient, marketer: Headers) -> Callable[..., dict[str, Any]]:
    def post(kind: str, **fields: Any) -> dict[str, Any]:
        response = client.post(f"/api/v1/{kind}", json=fields, headers=marketer)
        assert response.status_code == 201, response.get_json()
        created: dict[str, Any] = response.get_json()
        return created

    return post


@pytest.fixture
def shop(make: Callable[..., dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Three links of the physical touchpoint `window` and one of the digital `newsletter`."""
    make("touchpoints", key="window", name="Shop window", channel="physical")
    make("touchpoints", key="newsletter", name="Newsletter", channel="digital")
    window = [
        make("links", url=f"https://shop.example.com/{stage}", touchpoint="window", stage=stage,
             slug=f"window-{stage}")
        for stage in ("awareness", "consideration", "decision")
    ]
    mail = make("links", url="https://shop.example.com/mail", touchpoint="newsletter",
                stage="awareness", slug="mail")
    return {"window": window, "newsletter": [mail]}


def _checkboxes(page: str) -> list[str]:
    return re.findall(r'<input type="checkbox" name="links" value="(\d+)" checked>', page)


def _scan(link: dict[str, Any]) -> str:
    return f"{link['short_url']}?qr=1"


def test_the_page_lists_the_physical_links_ticked_and_sits_in_the_navigation(
    marketer_client: FlaskClient, pages: Any, shop: dict[str, list[dict[str, Any]]]
) -> None:
    response = marketer_client.get("/links/print")

    assert response.status_code == 200
    page = pages.text(response)
    assert _checkboxes(page) == [str(link["id"]) for link in shop["window"]]
    assert '<a href="/links/print" aria-current="page">Print</a>' in page
    digital = pages.text(marketer_client.get("/links/print?channel=digital"))
    assert _checkboxes(digital) == [str(shop["newsletter"][0]["id"])]
    by_touchpoint = pages.text(
        marketer_client.get("/links/print?touchpoint=newsletter&channel=physical")
    )
    assert _checkboxes(by_touchpoint) == [str(shop["newsletter"][0]["id"])]


def test_the_form_downloads_a_sheet_of_the_links_ticked(
    marketer_client: FlaskClient, pages: Any, shop: dict[str, list[dict[str, Any]]]
) -> None:
    awareness, _, decision = shop["window"]
    form = {"links": [str(decision["id"]), str(awareness["id"])], "paper": "letter",
            "columns": "2"}

    response = pages.post_form(marketer_client, SHEET_FORM, form, form_page=PAGE)

    assert response.status_code == 200, pages.text(response)[:500]
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == 'attachment; filename="qr-sheet.pdf"'
    [sheet] = read_sheet(response.data)
    assert (sheet.width, sheet.height) == (612.0, 792.0)
    # In the order the form sent them: two across, on one row.
    assert sheet.urls == [_scan(decision), _scan(awareness)]
    lines = sheet.text.splitlines()
    assert {"Shop window", "Awareness", "Decision", awareness["short_url"],
            decision["short_url"]} <= set(lines)


def test_a_form_with_no_link_ticked_is_shown_again_with_a_message(
    marketer_client: FlaskClient, pages: Any, shop: dict[str, list[dict[str, Any]]]
) -> None:
    response = pages.post_form(
        marketer_client, SHEET_FORM, {"paper": "a4"}, form_page=PAGE
    )

    assert response.status_code == 422
    assert pages.field_error(response, "links") == "Tick at least one link to print."
    assert _checkboxes(pages.text(response)) == []  # what was sent: nothing ticked


def test_a_bad_paper_is_shown_next_to_its_field(
    marketer_client: FlaskClient, pages: Any, shop: dict[str, list[dict[str, Any]]]
) -> None:
    form = {"links": [str(shop["window"][0]["id"])], "paper": "a3"}

    response = pages.post_form(marketer_client, SHEET_FORM, form, form_page=PAGE)

    assert response.status_code == 400
    assert "paper: must be a4 or letter" in pages.text(response)


def test_the_sheet_form_needs_the_csrf_token(
    marketer_client: FlaskClient, shop: dict[str, list[dict[str, Any]]]
) -> None:
    response = marketer_client.post(SHEET_FORM, data={"links": "1"})

    assert response.status_code == 400
    assert response.mimetype == "text/html"


def test_a_link_with_the_slug_print_still_redirects(
    client: FlaskClient, make: Callable[..., dict[str, Any]],
    shop: dict[str, list[dict[str, Any]]],
) -> None:
    make("links", url="https://shop.example.com/print", touchpoint="window", stage="decision",
         slug="print")

    assert client.get("/print").status_code == 302


def test_the_page_is_for_marketers(
    auth: Any, client: FlaskClient, shop: dict[str, list[dict[str, Any]]]
) -> None:
    assert client.get("/links/print").status_code == 302  # to sign in
    assert auth.client("analyst").get("/links/print").status_code == 403


def test_the_code_form_downloads_a_captioned_code_with_a_logo(
    marketer_client: FlaskClient, pages: Any, shop: dict[str, list[dict[str, Any]]]
) -> None:
    link = shop["window"][1]
    logo = io.BytesIO()
    Image.new("RGB", (80, 80), (43, 138, 62)).save(logo, format="PNG")
    logo.seek(0)
    form = {"link": str(link["id"]), "caption": "Scan me", "format": "png", "size": "600",
            "logo": (logo, "logo.png")}

    response = pages.post_form(marketer_client, CODE_FORM, form, form_page=PAGE)

    assert response.status_code == 200, pages.text(response)[:800]
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="{link["slug"]}-qr.png"'
    )
    image = Image.open(io.BytesIO(response.data)).convert("RGB")
    assert image.width == 600 and image.height > 600
    assert image.getpixel((300, 300)) == (43, 138, 62)
    assert [b.text for b in zxingcpp.read_barcodes(image)] == [_scan(link)]


def test_a_bad_logo_on_the_code_form_is_shown_next_to_its_field(
    marketer_client: FlaskClient, pages: Any, shop: dict[str, list[dict[str, Any]]]
) -> None:
    form = {"link": str(shop["window"][0]["id"]), "format": "svg",
            "logo": (io.BytesIO(b"%PDF-1.4 not a logo"), "logo.pdf")}

    response = pages.post_form(marketer_client, CODE_FORM, form, form_page=PAGE)

    assert response.status_code == 422
    assert pages.field_error(response, "logo") == "The file is not a PNG or SVG image"


def test_the_link_pages_code_takes_a_caption(
    marketer_client: FlaskClient, shop: dict[str, list[dict[str, Any]]]
) -> None:
    link = shop["window"][0]

    response = marketer_client.get(f"/links/{link['id']}/qr.svg?caption=Window")

    assert response.status_code == 200
    assert b">Window</text>" in response.data


def test_a_logo_of_almost_1_mib_is_taken_by_the_code_form(
    marketer_client: FlaskClient, pages: Any, shop: dict[str, list[dict[str, Any]]]
) -> None:
    # More than the app's usual 1 MiB body with the form around it: the upload's own limit holds.
    buffer = io.BytesIO()
    Image.new("RGB", (80, 80), (43, 138, 62)).save(buffer, format="PNG")
    logo = buffer.getvalue() + b"\0" * (LOGO_MAX_BYTES - len(buffer.getvalue()))
    fields = {"csrf_token": pages.csrf_token(marketer_client, PAGE),
              "link": str(shop["window"][0]["id"]), "format": "png",
              "logo": FileStorage(io.BytesIO(logo), filename="logo.png", name="logo")}
    # Encoded in memory: the test client would spool this body to a file it never closes.
    boundary, body = encode_multipart(fields)

    response = marketer_client.post(
        CODE_FORM, data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )

    assert response.status_code == 200, pages.text(response)[:500]
    assert response.mimetype == "image/png"
