"""QR codes through the API: what a phone reads off them, and where that scan then leads."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from io import BytesIO
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import zxingcpp
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics.models import Click
from tests.user_agents import IPHONE

ErrorCheck = Callable[..., dict[str, Any]]


def _decode(png: bytes) -> list[str]:
    return [barcode.text for barcode in zxingcpp.read_barcodes(Image.open(BytesIO(png)))]


def test_the_png_code_reads_as_the_short_url_with_the_scan_marker(
    client: FlaskClient, analyst: dict[str, str], link: dict[str, Any]
) -> None:
    response = client.get(f"/api/v1/links/{link['id']}/qr.png", headers=analyst)

    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert Image.open(BytesIO(response.data)).size == (512, 512)
    assert _decode(response.data) == [link["short_url"] + "?qr=1"]


def test_a_scan_redirects_with_utm_tags_and_is_recorded_as_a_scan(
    client: FlaskClient,
    analyst: dict[str, str],
    link: dict[str, Any],
    session: Session,
) -> None:
    png = client.get(f"/api/v1/links/{link['id']}/qr.png", headers=analyst).data
    [scanned] = _decode(png)
    parts = urlsplit(scanned)
    assert (parts.scheme, parts.netloc) == ("http", "go.test")

    response = client.get(f"{parts.path}?{parts.query}", headers={"User-Agent": IPHONE})

    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert (location.scheme, location.netloc, location.path) == (
        "https", "shop.example.com", "/spring"
    )
    assert parse_qsl(location.query) == [
        ("ref", "flyer"),
        ("utm_source", "store-flyer"),
        ("utm_medium", "physical"),
        ("utm_campaign", "spring-launch"),
    ]
    # Stored by the request itself: the app is bound to the test's connection.
    click = session.scalars(select(Click)).one()
    assert (click.link_id, click.via_qr) == (link["id"], True)


def test_a_plain_click_is_not_recorded_as_a_scan(
    client: FlaskClient, link: dict[str, Any], session: Session
) -> None:
    assert client.get("/spring").status_code == 302

    assert session.scalars(select(Click.via_qr)).all() == [False]


def test_the_code_honours_size_colours_and_error_correction(
    client: FlaskClient, analyst: dict[str, str], link: dict[str, Any]
) -> None:
    response = client.get(
        f"/api/v1/links/{link['id']}/qr.png?size=300&margin=2&ecc=h&fg=1a237e&bg=%23fffde7",
        headers=analyst,
    )

    assert response.status_code == 200
    image = Image.open(BytesIO(response.data)).convert("RGB")
    assert image.size == (300, 300)
    assert {colour for _, colour in image.getcolors()} == {(0x1A, 0x23, 0x7E), (0xFF, 0xFD, 0xE7)}
    assert _decode(response.data) == [link["short_url"] + "?qr=1"]


def test_the_svg_code_is_a_standalone_svg_image(
    client: FlaskClient, analyst: dict[str, str], link: dict[str, Any]
) -> None:
    response = client.get(f"/api/v1/links/{link['id']}/qr.svg?size=256", headers=analyst)

    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    root = ET.fromstring(response.data)  # noqa: S314 - our own output, not untrusted input
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert (root.get("width"), root.get("height")) == ("256", "256")


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_a_download_is_offered_under_the_slugs_name(
    client: FlaskClient, analyst: dict[str, str], link: dict[str, Any], fmt: str
) -> None:
    response = client.get(f"/api/v1/links/{link['id']}/qr.{fmt}?download=1", headers=analyst)

    assert response.headers["Content-Disposition"] == f'attachment; filename="spring-qr.{fmt}"'


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("size=big", "size"),
        ("size=1.5", "size"),
        ("margin=wide", "margin"),
        ("ecc=Z", "ecc"),
        ("ecc=MM", "ecc"),
        ("fg=nonsense", "fg"),
        ("fg=%23ff00", "fg"),
        ("bg=red", "bg"),
        ("fg=transparent", "fg"),
        ("fg=fff&bg=fff", "fg"),
        ("fg=eeeeee&bg=ffffff", "fg"),
    ],
)
@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_bad_qr_parameters_are_a_400_naming_the_parameter(
    client: FlaskClient,
    analyst: dict[str, str],
    link: dict[str, Any],
    expect_error: ErrorCheck,
    query: str,
    parameter: str,
    fmt: str,
) -> None:
    response = client.get(f"/api/v1/links/{link['id']}/qr.{fmt}?{query}", headers=analyst)

    expect_error(response, 400, "invalid_parameter", parameter=parameter)


def test_out_of_range_sizes_are_clamped(
    client: FlaskClient, analyst: dict[str, str], link: dict[str, Any]
) -> None:
    response = client.get(f"/api/v1/links/{link['id']}/qr.png?size=10", headers=analyst)

    assert response.status_code == 200
    assert Image.open(BytesIO(response.data)).size == (64, 64)


@pytest.mark.parametrize(
    "path",
    ["/api/v1/links/{unknown}/qr.png", "/api/v1/links/{unknown}/qr.svg",
     "/api/v1/links/{id}/qr.gif", "/api/v1/links/spring/qr.png"],
)
def test_the_code_of_an_unknown_link_is_a_json_404(
    client: FlaskClient,
    analyst: dict[str, str],
    link: dict[str, Any],
    unknown_link_id: int,  # after `link`: no id the test's link took
    expect_error: ErrorCheck,
    path: str,
) -> None:
    response = client.get(path.format(id=link["id"], unknown=unknown_link_id), headers=analyst)

    expect_error(response, 404)


def test_a_code_needs_a_key(
    client: FlaskClient, link: dict[str, Any], expect_error: ErrorCheck
) -> None:
    expect_error(client.get(f"/api/v1/links/{link['id']}/qr.png"), 401, "unauthenticated")
