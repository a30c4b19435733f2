"""Single codes with a caption under them and a logo in their centre, through the API: what a phone
reads off them, and the logos and captions that are refused."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest
import resvg_py
import zxingcpp
from flask.testing import FlaskClient
from PIL import Image
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from shortener.print_logo import LOGO_MAX_BYTES

ErrorCheck = Callable[..., dict[str, Any]]
Headers = dict[str, str]
SVG = "{http://www.w3.org/2000/svg}"
RED = (204, 30, 30)
LOGO_SVG = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 20 10">'
    b'<rect width="20" height="10" rx="2" fill="#3b5bdb"/></svg>'
)


def _png(size: tuple[int, int] = (120, 60), colour: tuple[int, int, int] = RED) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", size, (*colour, 255)).save(buffer, format="PNG")
    return buffer.getvalue()


def _decode(image: Image.Image) -> list[str]:
    return [barcode.text for barcode in zxingcpp.read_barcodes(image)]


def _scan(link: dict[str, Any]) -> str:
    return f"{link['short_url']}?qr=1"


def _post_logo(
    client: FlaskClient, link: dict[str, Any], headers: Headers, logo: bytes, *,
    fmt: str = "png", filename: str = "logo.png", query: str = "", **fields: str,
) -> Any:
    # Encoded here, in memory: the test client would spool a large body to a temporary file
    # that it never closes.
    upload = FileStorage(io.BytesIO(logo), filename=filename, name="logo")
    boundary, body = encode_multipart({"logo": upload, **fields})
    return client.post(
        f"/api/v1/links/{link['id']}/qr.{fmt}{query}",
        data=body,
        headers=headers,
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def test_a_png_logo_sits_in_the_centre_of_a_code_that_still_reads(
    client: FlaskClient, analyst: Headers, link: dict[str, Any]
) -> None:
    response = _post_logo(client, link, analyst, _png(), size="600")

    assert response.status_code == 200, response.get_json()
    assert response.mimetype == "image/png"
    image = Image.open(io.BytesIO(response.data)).convert("RGB")
    assert image.size == (600, 600)
    assert image.getpixel((300, 300)) == RED
    assert _decode(image) == [_scan(link)]


def test_a_code_with_a_logo_uses_error_correction_h(
    client: FlaskClient, analyst: Headers, link: dict[str, Any]
) -> None:
    response = _post_logo(client, link, analyst, _png(), ecc="L")

    [barcode] = zxingcpp.read_barcodes(Image.open(io.BytesIO(response.data)))
    assert barcode.ec_level == "H"


def test_an_svg_logo_is_embedded_in_a_vector_code_that_reads(
    client: FlaskClient, analyst: Headers, link: dict[str, Any]
) -> None:
    response = _post_logo(client, link, analyst, LOGO_SVG, fmt="svg", filename="logo.svg")

    assert response.status_code == 200, response.get_json()
    assert response.mimetype == "image/svg+xml"
    root = ET.fromstring(response.data)  # noqa: S314 - our own output
    [image] = root.iter(f"{SVG}image")
    assert image.get("href", "").startswith("data:image/svg+xml;base64,")
    raster = resvg_py.svg_to_bytes(svg_string=response.data.decode(), width=800)
    drawn = Image.open(io.BytesIO(raster)).convert("RGBA")
    flat = Image.alpha_composite(Image.new("RGBA", drawn.size, "white"), drawn).convert("RGB")
    assert flat.getpixel((400, 400)) == (0x3B, 0x5B, 0xDB)
    assert _decode(flat) == [_scan(link)]


def test_an_svg_logo_on_a_png_code_is_drawn_and_reads(
    client: FlaskClient, analyst: Headers, link: dict[str, Any]
) -> None:
    response = _post_logo(client, link, analyst, LOGO_SVG, filename="logo.svg")

    assert response.status_code == 200, response.get_json()
    image = Image.open(io.BytesIO(response.data)).convert("RGB")
    assert image.getpixel((256, 256)) == (0x3B, 0x5B, 0xDB)
    assert _decode(image) == [_scan(link)]


def test_a_caption_is_written_under_the_code(
    client: FlaskClient, analyst: Headers, link: dict[str, Any]
) -> None:
    png = client.get(
        f"/api/v1/links/{link['id']}/qr.png?size=400&caption=Scan%20for%2010%25%20off",
        headers=analyst,
    )
    svg = client.get(
        f"/api/v1/links/{link['id']}/qr.svg?caption=Scan%20%3Cnow%3E", headers=analyst
    )

    image = Image.open(io.BytesIO(png.data)).convert("L")
    width, height = image.size
    assert width == 400 and height > 400
    band = image.crop((0, 400, width, height))
    assert band.getextrema()[0] < 64  # dark letters in the band under the code
    assert _decode(image.convert("RGB")) == [_scan(link)]
    [text] = ET.fromstring(svg.data).iter(f"{SVG}text")  # noqa: S314 - our own output
    assert text.text == "Scan <now>"


def test_a_logo_and_a_caption_go_together(
    client: FlaskClient, analyst: Headers, link: dict[str, Any]
) -> None:
    response = _post_logo(client, link, analyst, _png(), query="?caption=Spring", size="512")

    image = Image.open(io.BytesIO(response.data)).convert("RGB")
    assert image.width == 512 and image.height > 512
    assert _decode(image) == [_scan(link)]


def test_a_logo_too_large_to_leave_the_code_readable_is_refused(
    client: FlaskClient, analyst: Headers, link: dict[str, Any], expect_error: ErrorCheck
) -> None:
    response = _post_logo(client, link, analyst, _png(), logo_size="50")

    error = expect_error(response, 422, "unreadable_code", field="logo")
    assert _scan(link) in error["message"]
    # The same logo at the default size reads.
    assert _post_logo(client, link, analyst, _png()).status_code == 200


def _svg(body: str) -> bytes:
    return f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">{body}</svg>'.encode()


@pytest.mark.parametrize(
    ("logo", "words"),
    [
        (b"", "empty"),
        (b"just some text, not an image", "not a PNG or SVG"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 64, "not a PNG or SVG"),  # a JPEG's start
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "damaged"),
        (b"<?xml version='1.0'?><note><svg/></note>", "not an SVG"),
        (_svg('<image href="file:///etc/hostname" width="10" height="10"/>'), "another file"),
        (_svg('<image href="/tmp/logo.png" width="10" height="10"/>'), "another file"),
        (_svg('<image href="http://example.com/a.png" width="9" height="9"/>'), "another file"),
        (_svg("<script>alert(1)</script>"), "<script>"),
        (_svg('<rect width="1" height="1" onclick="alert(1)"/>'), "onclick"),
        (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa">]>' + _svg("&a;"), "DTD"),
        (_svg("<rect"), "not well-formed"),
    ],
)
def test_a_logo_that_is_not_a_safe_image_is_refused(
    client: FlaskClient, analyst: Headers, link: dict[str, Any], expect_error: ErrorCheck,
    logo: bytes, words: str,
) -> None:
    response = _post_logo(client, link, analyst, logo, filename="logo")

    error = expect_error(response, 422, "invalid_logo", field="logo")
    assert words in error["message"]


def test_a_logo_over_1_mib_is_refused(
    client: FlaskClient, analyst: Headers, link: dict[str, Any], expect_error: ErrorCheck
) -> None:
    logo = _png() + b"\0" * (LOGO_MAX_BYTES + 1 - len(_png()))

    response = _post_logo(client, link, analyst, logo)

    error = expect_error(response, 413, "logo_too_large", field="logo")
    assert error["details"]["size"] == LOGO_MAX_BYTES + 1
    assert "1 MiB" in error["message"]


def test_a_logo_of_huge_dimensions_is_refused(
    client: FlaskClient, analyst: Headers, link: dict[str, Any], expect_error: ErrorCheck
) -> None:
    buffer = io.BytesIO()
    Image.new("1", (5000, 10)).save(buffer, format="PNG")

    response = _post_logo(client, link, analyst, buffer.getvalue())

    error = expect_error(response, 422, "invalid_logo", field="logo")
    assert "5000x10" in error["message"]


def test_a_post_without_a_logo_is_refused(
    client: FlaskClient, analyst: Headers, link: dict[str, Any], expect_error: ErrorCheck
) -> None:
    response = client.post(f"/api/v1/links/{link['id']}/qr.png", headers=analyst, data={})

    expect_error(response, 422, "invalid_logo", field="logo")


@pytest.mark.parametrize("caption", ["x" * 81, "two%0Alines"])
def test_a_bad_caption_is_a_400_naming_it(
    client: FlaskClient, analyst: Headers, link: dict[str, Any], expect_error: ErrorCheck,
    caption: str,
) -> None:
    response = client.get(f"/api/v1/links/{link['id']}/qr.png?caption={caption}", headers=analyst)

    expect_error(response, 400, "invalid_parameter", parameter="caption")


def test_a_logo_code_needs_a_key_and_a_known_link(
    client: FlaskClient, analyst: Headers, link: dict[str, Any], unknown_link_id: int,
    expect_error: ErrorCheck,
) -> None:
    expect_error(_post_logo(client, link, {}, _png()), 401, "unauthenticated")
    unknown = {"id": unknown_link_id}
    expect_error(_post_logo(client, unknown, analyst, _png()), 404, "not_found")
