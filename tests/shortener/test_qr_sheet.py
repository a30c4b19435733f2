"""The QR sheet through the API and the CLI: links made over the API, the PDF rasterised and every
code on it decoded, the text under each code read back, and each bad request refused clearly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.orm import Session

from shortener.db import utcnow
from shortener.print_cli import qr_sheet_command
from shortener.print_selection import Selection, TooManyCodesError, select_links
from tests.shortener.sheets import SheetPage, read_sheet

ErrorCheck = Callable[..., dict[str, Any]]
Headers = dict[str, str]
SHEET = "/api/v1/qr-sheet.pdf"
A4 = (595.28, 841.89)
LETTER = (612.0, 792.0)
# The classic stages' names, as the sheet writes them.
STAGE_NAMES = {"awareness": "Awareness", "consideration": "Consideration", "decision": "Decision"}


@pytest.fixture
def make(client: FlaskClient, marketer: Headers) -> Callable[..., dict[str, Any]]:
    """POST a touchpoint or a link (by the fields given) and return its JSON."""

    def post(kind: str, **fields: Any) -> dict[str, Any]:
        response = client.post(f"/api/v1/{kind}", json=fields, headers=marketer)
        assert response.status_code == 201, response.get_json()
        created: dict[str, Any] = response.get_json()
        return created

    return post


@pytest.fixture
def archive(client: FlaskClient, marketer: Headers) -> Callable[[dict[str, Any]], None]:
    def archive_link(link: dict[str, Any]) -> None:
        assert client.delete(f"/api/v1/links/{link['id']}", headers=marketer).status_code == 200

    return archive_link


@pytest.fixture
def flyers(
    make: Callable[..., dict[str, Any]], archive: Callable[[dict[str, Any]], None],
    expire_link: Callable[[int], None],
) -> list[dict[str, Any]]:
    """Eleven live links of the physical touchpoint `lyon-flyer` over three stages (two pages of
    nine), besides its archived link /lyon-old and its expired link /lyon-gone."""
    make("touchpoints", key="lyon-flyer", name="Lyon flyer", channel="physical")
    stages = ["awareness", "consideration", "decision"]
    made = [
        make("links", url=f"https://shop.example.com/lyon/{i}", touchpoint="lyon-flyer",
             stage=stages[i % 3], slug=f"lyon-{i}")
        for i in range(11)
    ]
    archive(make("links", url="https://shop.example.com/old", touchpoint="lyon-flyer",
                 stage="awareness", slug="lyon-old"))
    expire_link(make("links", url="https://shop.example.com/gone", touchpoint="lyon-flyer",
                     stage="awareness", slug="lyon-gone", expires_at="2099-01-01T00:00:00Z")["id"])
    return made


def _scan(link: dict[str, Any]) -> str:
    """What the link's single code encodes (see test_api_qr): its short URL marked as a scan."""
    return f"{link['short_url']}?qr=1"


def _sheet(client: FlaskClient, headers: Headers, query: str) -> list[SheetPage]:
    response = client.get(f"{SHEET}?{query}", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/pdf"
    return read_sheet(response.data)


def _assert_text_under_codes(page: SheetPage, links: list[dict[str, Any]], name: str) -> None:
    lines = page.text.splitlines()
    for link in links:
        assert link["short_url"] in lines, (link["short_url"], lines)
        assert STAGE_NAMES[link["stage"]] in lines
    assert lines.count(name) == len(links)


def test_a_touchpoints_sheet_holds_each_live_link_as_a_code_with_its_text(
    client: FlaskClient, analyst: Headers, flyers: list[dict[str, Any]]
) -> None:
    pages = _sheet(client, analyst, "touchpoint=lyon-flyer")

    # By stage, then by id: awareness first, across two A4 pages of three by three.
    by_stage = sorted(flyers, key=lambda link: (link["stage"] != "awareness",
                                                link["stage"] != "consideration", link["id"]))
    assert [page.urls for page in pages] == [
        [_scan(link) for link in by_stage[:9]], [_scan(link) for link in by_stage[9:]]
    ]
    assert all((round(p.width, 2), round(p.height, 2)) == A4 for p in pages)
    _assert_text_under_codes(pages[0], by_stage[:9], "Lyon flyer")
    _assert_text_under_codes(pages[1], by_stage[9:], "Lyon flyer")
    assert "Page 2 of 2" in pages[1].text
    # Vector shapes only: no page holds an image.
    assert [page.images for page in pages] == [0, 0]


def test_links_named_by_id_or_slug_are_printed_once_each_in_the_order_given(
    client: FlaskClient, analyst: Headers, flyers: list[dict[str, Any]]
) -> None:
    first, second, third = flyers[4], flyers[0], flyers[7]
    query = f"links={first['id']},{second['slug']}&links={third['id']},{first['slug']}"

    [page] = _sheet(client, analyst, query)

    assert page.urls == [_scan(first), _scan(second), _scan(third)]
    _assert_text_under_codes(page, [first, second, third], "Lyon flyer")


def test_a_channel_sheet_leaves_out_other_channels_and_archived_touchpoints(
    client: FlaskClient, analyst: Headers, marketer: Headers, make: Any
) -> None:
    make("touchpoints", key="shelf", name="Shelf talker", channel="physical")
    make("touchpoints", key="retired", name="Retired sign", channel="physical")
    make("touchpoints", key="bio", name="Instagram bio", channel="digital")
    shelf = make("links", url="https://shop.example.com/a", touchpoint="shelf", stage="decision")
    make("links", url="https://shop.example.com/b", touchpoint="retired", stage="awareness")
    make("links", url="https://shop.example.com/c", touchpoint="bio", stage="awareness")
    assert client.delete("/api/v1/touchpoints/retired", headers=marketer).status_code == 200

    [page] = _sheet(client, analyst, "channel=physical&paper=letter&columns=2")

    assert page.urls == [_scan(shelf)]
    assert (page.width, page.height) == LETTER
    assert {"Shelf talker", "Decision", shelf["short_url"]} <= set(page.text.splitlines())


def test_more_columns_put_more_codes_on_a_row(
    client: FlaskClient, analyst: Headers, flyers: list[dict[str, Any]]
) -> None:
    [first, *_] = _sheet(client, analyst, "touchpoint=lyon-flyer&columns=5")

    rows = {code.y // 50 for code in first.codes}
    assert len(first.codes) == 11
    assert len(rows) == 3  # five, five and one


def test_a_name_the_typeface_lacks_is_still_written(
    client: FlaskClient, analyst: Headers, make: Any
) -> None:
    make("touchpoints", key="cafe", name="Café Łódź 東京", channel="physical")
    link = make("links", url="https://shop.example.com/", touchpoint="cafe", stage="awareness")

    [page] = _sheet(client, analyst, "touchpoint=cafe")

    assert page.urls == [_scan(link)]
    # ź is not in the typeface: it loses its accent; the CJK characters become '?'.
    assert "Café Łódz ??" in page.text.splitlines()


@pytest.mark.parametrize(
    ("query", "status", "code", "parameter"),
    [
        ("", 400, "invalid_selection", None),
        ("paper=a4", 400, "invalid_selection", None),
        ("links=lyon-1&touchpoint=lyon-flyer", 400, "invalid_selection", None),
        ("touchpoint=lyon-flyer&channel=physical", 400, "invalid_selection", None),
        ("links=,,", 400, "invalid_parameter", "links"),
        ("links=lyon%201", 400, "invalid_parameter", "links"),
        ("touchpoint=lyon-flyer&paper=a3", 400, "invalid_parameter", "paper"),
        ("touchpoint=lyon-flyer&columns=0", 400, "invalid_parameter", "columns"),
        ("touchpoint=lyon-flyer&columns=7", 400, "invalid_parameter", "columns"),
        ("touchpoint=lyon-flyer&columns=two", 400, "invalid_parameter", "columns"),
        ("channel=billboard", 400, "invalid_parameter", "channel"),
        ("touchpoint=no-such-touchpoint", 404, "not_found", "touchpoint"),
        ("links=lyon-1,no-such-slug", 404, "not_found", "links"),
        ("links=lyon-old", 422, "link_not_printable", "links"),
        ("links=lyon-gone", 422, "link_not_printable", "links"),
        ("channel=human", 422, "nothing_to_print", "channel"),
    ],
)
def test_a_bad_sheet_request_is_refused_naming_the_problem(
    client: FlaskClient,
    analyst: Headers,
    flyers: list[dict[str, Any]],
    expect_error: ErrorCheck,
    query: str,
    status: int,
    code: str,
    parameter: str | None,
) -> None:
    response = client.get(f"{SHEET}?{query}", headers=analyst)

    error = expect_error(response, status, code)
    if parameter is not None:
        assert error["details"]["parameter"] == parameter
        assert parameter in error["message"]


def test_unknown_links_are_all_named_at_once(
    client: FlaskClient, analyst: Headers, flyers: list[dict[str, Any]], unknown_link_id: int,
    expect_error: ErrorCheck,
) -> None:
    response = client.get(f"{SHEET}?links=lyon-1,{unknown_link_id},nope", headers=analyst)

    error = expect_error(response, 404, "not_found")
    assert error["details"]["missing"] == [str(unknown_link_id), "nope"]


def test_a_touchpoint_whose_links_are_all_archived_has_nothing_to_print(
    client: FlaskClient, analyst: Headers, make: Any, archive: Callable[[dict[str, Any]], None],
    expect_error: ErrorCheck,
) -> None:
    make("touchpoints", key="sign", name="Sign", channel="physical")
    archive(make("links", url="https://shop.example.com/", touchpoint="sign", stage="awareness"))

    response = client.get(f"{SHEET}?touchpoint=sign", headers=analyst)

    error = expect_error(response, 422, "nothing_to_print")
    assert "sign" in error["message"]


@pytest.mark.parametrize("count", [1001, 5000])
def test_more_codes_than_a_sheet_holds_are_refused(
    client: FlaskClient, analyst: Headers, expect_error: ErrorCheck, count: int
) -> None:
    named = ",".join(f"slug{i}" for i in range(count))

    response = client.get(f"{SHEET}?links={named}", headers=analyst)

    error = expect_error(response, 400, "too_many_codes")
    assert error["details"] == {"selected": count, "limit": 1000}


def test_a_touchpoint_with_more_live_links_than_the_limit_is_refused(
    app: Flask, session: Session, flyers: list[dict[str, Any]]
) -> None:
    selection = Selection(touchpoint="lyon-flyer")
    domain = "go.test"

    with pytest.raises(TooManyCodesError) as refused:
        select_links(session, selection, domain=domain, now=utcnow(), limit=10)

    assert refused.value.details == {"selected": 11, "limit": 10}
    assert len(select_links(session, selection, domain=domain, now=utcnow(), limit=11)) == 11


def test_the_sheet_needs_a_key_of_a_role_that_reads_links(
    client: FlaskClient, headers: Callable[[str], Headers], flyers: list[dict[str, Any]],
    expect_error: ErrorCheck,
) -> None:
    expect_error(client.get(f"{SHEET}?touchpoint=lyon-flyer"), 401, "unauthenticated")
    response = client.get(f"{SHEET}?touchpoint=lyon-flyer", headers=headers("tracker"))
    expect_error(response, 403, "forbidden")
    assert client.get(f"{SHEET}?touchpoint=lyon-flyer", headers=headers("marketer")).status == (
        "200 OK"
    )


# --- the command ------------------------------------------------------------------------------


def test_the_command_writes_the_sheet_to_a_file(
    cli: FlaskCliRunner, flyers: list[dict[str, Any]], tmp_path: Path
) -> None:
    output = tmp_path / "flyers.pdf"

    result = cli.invoke(
        qr_sheet_command, ["--touchpoint", "lyon-flyer", "--paper", "letter", "-o", str(output)]
    )

    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        f"Wrote {output}: 11 codes on 2 pages (letter, 3 across)."
    )
    pages = read_sheet(output.read_bytes())
    assert sorted(url for page in pages for url in page.urls) == sorted(map(_scan, flyers))
    assert {(page.width, page.height) for page in pages} == {LETTER}


def test_the_command_takes_links_by_id_and_slug(
    cli: FlaskCliRunner, flyers: list[dict[str, Any]], tmp_path: Path
) -> None:
    output = tmp_path / "two.pdf"
    chosen = f"{flyers[3]['id']},{flyers[1]['slug']}"

    result = cli.invoke(qr_sheet_command, ["--links", chosen, "-o", str(output)])

    assert result.exit_code == 0, result.output
    [page] = read_sheet(output.read_bytes())
    assert page.urls == [_scan(flyers[3]), _scan(flyers[1])]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--touchpoint", "nope"], "no touchpoint with key 'nope'"),
        (["--links", "lyon-1", "--touchpoint", "lyon-flyer"], "only one of"),
        (["--touchpoint", "lyon-flyer", "--paper", "a5"], "--paper: must be a4 or letter"),
        (["--links", "lyon-old"], "archived or expired"),
        ([], "Choose the codes to print"),
    ],
)
def test_the_command_fails_clearly_and_writes_nothing(
    cli: FlaskCliRunner, flyers: list[dict[str, Any]], tmp_path: Path, args: list[str],
    words: str,
) -> None:
    output = tmp_path / "sheet.pdf"

    result = cli.invoke(qr_sheet_command, [*args, "-o", str(output)])

    assert result.exit_code != 0
    assert words in result.output
    assert "Traceback" not in result.output
    assert not output.exists()
