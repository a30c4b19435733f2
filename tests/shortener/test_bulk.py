"""Bulk creation of links and touchpoints over the API: JSON rows and CSV files, a result per row
by its number, all-or-nothing imports, and every malformed input refused with a clear error."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from shortener.models import Coupon, Link, Touchpoint

ErrorCheck = Callable[..., dict[str, Any]]

LINKS = "/api/v1/links/bulk"
TOUCHPOINTS = "/api/v1/touchpoints/bulk"
SHOP = "https://shop.example.com"


def _row(slug: str | None = None, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"url": f"{SHOP}/{slug or 'x'}", "touchpoint": "store-flyer",
                           "stage": "awareness"}
    if slug is not None:
        row["slug"] = slug
    return {**row, **fields}


def _links(session: Session) -> dict[str, Link]:
    session.expire_all()
    return {link.slug: link for link in session.scalars(select(Link))}


def _count(session: Session, model: Any) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model)) or 0


def _csv(client: FlaskClient, headers: dict[str, str], text: str | bytes, *,
         path: str = LINKS, query: str = "", upload: bool = True) -> TestResponse:
    data = text.encode() if isinstance(text, str) else text
    if upload:
        return client.post(f"{path}{query}", headers=headers,
                           data={"file": (io.BytesIO(data), "rows.csv")})
    return client.post(f"{path}{query}", headers=headers, data=data, content_type="text/csv")


# --- JSON ---------------------------------------------------------------------------------------


def test_json_rows_create_the_good_links_and_report_each_bad_one_by_its_row(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any], session: Session,
    new_link: Callable[..., dict[str, Any]],
) -> None:
    new_link(slug="taken")
    rows = [
        _row("lyon-1", campaign="rollout"),
        _row("bad-url", url="ftp://shop.example.com/"),
        _row(),  # a random slug
        _row("taken"),
        _row("lyon-2", touchpoint="nowhere"),
        _row("lyon-3", stage="nowhen"),
        _row("lyon-1"),  # the slug of row 1 again
        "not an object",
        _row("lyon-4", redirect_status=301),
    ]

    response = client.post(LINKS, json={"rows": rows}, headers=marketer)

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["totals"] == {"rows": 9, "valid": 3, "created": 3, "failed": 6}
    results = {result["row"]: result for result in body["results"]}
    assert [results[n]["status"] for n in range(1, 10)] == [
        "created", "error", "created", "error", "error", "error", "error", "error", "created"]
    codes = {n: results[n]["error"]["code"] for n in (2, 4, 5, 6, 7, 8)}
    assert codes == {2: "invalid_url", 4: "slug_taken", 5: "unknown_reference",
                     6: "unknown_reference", 7: "slug_taken", 8: "invalid_row"}
    assert results[5]["error"]["details"] == {"field": "touchpoint"}
    assert "no touchpoint with key 'nowhere'" in results[5]["error"]["message"]
    assert results[7]["error"]["details"]["row"] == 1
    assert results[4]["error"]["message"] == "The slug 'taken' is already used on go.test."
    assert results[1]["link"]["short_url"] == "http://go.test/lyon-1"
    assert results[1]["link"]["campaign"] == "rollout"
    assert results[9]["link"]["redirect_status"] == 301

    stored = _links(session)
    random_slug = results[3]["link"]["slug"]
    assert set(stored) == {"taken", "lyon-1", "lyon-4", random_slug}
    assert stored["lyon-1"].destination == f"{SHOP}/lyon-1"
    assert stored["lyon-1"].touchpoint.key == "store-flyer"
    first = client.get("/lyon-1")
    assert first.status_code == 302
    assert first.headers["Location"].startswith(f"{SHOP}/lyon-1?utm_source=store-flyer")
    assert client.get("/lyon-4").status_code == 301
    assert client.get(f"/{random_slug}").status_code == 302


def test_each_row_gets_the_same_error_as_the_single_create_endpoint(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any],
) -> None:
    bad = [_row("a", url="javascript:alert(1)"), _row("api"), _row("b", survey={"kind": "x"}),
           _row("c", extra=1), _row("d", url=None)]
    single = [client.post("/api/v1/links", json=row, headers=marketer).get_json()["error"]
              for row in bad]

    bulk = client.post(LINKS, json={"rows": bad}, headers=marketer).get_json()

    assert [result["error"] for result in bulk["results"]] == single


def test_an_atomic_import_with_a_bad_row_writes_nothing_and_lists_every_bad_row(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any], session: Session,
    expect_error: ErrorCheck,
) -> None:
    rows = [_row("ok-1"), _row("bad", url="nope"), _row("ok-2"), _row("ok-1")]

    by_field = client.post(LINKS, json={"rows": rows, "atomic": True}, headers=marketer)
    by_query = client.post(f"{LINKS}?atomic=true", json={"rows": rows}, headers=marketer)

    for response in (by_field, by_query):
        error = expect_error(response, 422, "rows_invalid")
        assert error["details"]["rows"] == 4
        assert [e["row"] for e in error["details"]["errors"]] == [2, 4]
        assert [e["error"]["code"] for e in error["details"]["errors"]] == [
            "invalid_url", "slug_taken"]
        assert "nothing was written" in error["message"]
    assert _count(session, Link) == 0
    assert client.get("/ok-1").status_code == 404


def test_an_atomic_import_of_good_rows_writes_them_all(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any], session: Session,
) -> None:
    rows = [_row(f"store-{i}") for i in range(50)]

    response = client.post(LINKS, json={"rows": rows, "atomic": True}, headers=marketer)

    assert response.status_code == 200
    assert response.get_json()["totals"]["created"] == 50
    assert set(_links(session)) == {f"store-{i}" for i in range(50)}


def test_a_dry_run_checks_every_row_and_writes_nothing(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any], session: Session,
) -> None:
    rows = [_row("dry-1"), _row("dry-bad", url="nope")]

    body = client.post(f"{LINKS}?dry_run=true", json={"rows": rows}, headers=marketer).get_json()

    assert [r["status"] for r in body["results"]] == ["valid", "error"]
    assert body["totals"] == {"rows": 2, "valid": 1, "created": 0, "failed": 1}
    assert _count(session, Link) == 0


def test_bulk_creation_takes_the_roles_of_the_single_create(
    client: FlaskClient, analyst: dict[str, str], expect_error: ErrorCheck,
) -> None:
    expect_error(client.post(LINKS, json={"rows": [_row()]}, headers=analyst), 403, "forbidden")
    expect_error(client.post(TOUCHPOINTS, json={"rows": []}), 401, "unauthenticated")


# --- CSV ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("upload", [True, False], ids=["multipart", "text-csv"])
def test_a_csv_file_creates_its_good_rows_with_errors_by_row_number(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any], session: Session,
    upload: bool,
) -> None:
    text = (
        "\ufeffURL,Touchpoint,Stage,Slug,Campaign,Redirect Status,UTM\r\n"
        f"{SHOP}/paris,store-flyer,awareness,paris,rollout,301,no\r\n"
        f"{SHOP}/lyon,store-flyer,decision,lyon,,,\r\n"
        ",,,,,,\r\n"  # a blank record: skipped, but keeps its number
        f"{SHOP}/nice,store-flyer,awareness,nice,,3O1,\r\n"
        f"not a url,store-flyer,awareness,bad,,,\r\n"
        f"{SHOP}/brest,store-flyer,awareness,paris,,,\r\n"
    )

    response = _csv(client, marketer, text, upload=upload)

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["totals"] == {"rows": 5, "valid": 2, "created": 2, "failed": 3}
    results = {r["row"]: r for r in body["results"]}
    assert sorted(results) == [1, 2, 4, 5, 6]
    assert results[4]["error"]["code"] == "invalid_field"
    assert results[4]["error"]["details"] == {"field": "redirect_status"}
    assert results[5]["error"]["code"] == "invalid_url"
    assert results[6]["error"]["code"] == "slug_taken"
    stored = _links(session)
    assert set(stored) == {"paris", "lyon"}
    assert (stored["paris"].redirect_status, stored["paris"].utm) == (301, False)
    assert stored["paris"].campaign == "rollout"
    assert stored["lyon"].stage.key == "decision"
    assert client.get("/paris").headers["Location"] == f"{SHOP}/paris"


def test_a_semicolon_separated_file_from_a_spreadsheet_is_read(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any], session: Session,
) -> None:
    text = f"url;touchpoint;stage;slug;title\n{SHOP}/a;store-flyer;awareness;semi;\"A; B\"\n"

    response = _csv(client, marketer, text)

    assert response.get_json()["totals"]["created"] == 1
    assert _links(session)["semi"].title == "A; B"


@pytest.mark.parametrize(
    ("text", "status", "code", "words"),
    [
        ("url,touchpoint,slug\nhttps://a.example/,store-flyer,a\n", 422, "bad_header",
         ["no stage column"]),
        ("url,touchpoint,stage,colour\nhttps://a.example/,store-flyer,awareness,red\n", 422,
         "bad_header", ["unknown column colour"]),
        ("url,touchpoint,stage,url\nhttps://a.example/,store-flyer,awareness,x\n", 422,
         "bad_header", ["url named twice"]),
        ("url,touchpoint,stage\n", 422, "no_rows", ["no rows"]),
        ("", 400, "empty_file", ["empty"]),
        ("\ufeff \r\n", 400, "empty_file", ["empty"]),
        ('url,touchpoint,stage\n"https://a.example/,store-flyer,awareness\n', 400, "bad_csv",
         ["not valid CSV"]),
    ],
    ids=["missing-column", "unknown-column", "duplicate-column", "header-only", "empty",
         "only-a-bom", "unclosed-quote"],
)
def test_a_malformed_file_is_refused_as_a_whole_naming_the_problem(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any], session: Session,
    expect_error: ErrorCheck, text: str, status: int, code: str, words: list[str],
) -> None:
    error = expect_error(_csv(client, marketer, text), status, code)

    for word in words:
        assert word in error["message"]
    assert _count(session, Link) == 0


def test_a_file_that_is_not_utf8_is_refused(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any],
    expect_error: ErrorCheck,
) -> None:
    latin1 = f"url,touchpoint,stage,title\n{SHOP}/,store-flyer,awareness,Café\n".encode("latin-1")

    error = expect_error(_csv(client, marketer, latin1), 400, "bad_encoding")

    assert "not UTF-8" in error["message"]
    assert "0xe9" in error["message"]


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://evil.example\")", "+1", "-2+3",
                                  "@SUM(A1)", "  =1+1"])
def test_a_formula_cell_is_refused_naming_its_row_and_column(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any], session: Session,
    expect_error: ErrorCheck, cell: str,
) -> None:
    text = (f"url,touchpoint,stage,title\n{SHOP}/a,store-flyer,awareness,Fine\n"
            f"{SHOP}/b,store-flyer,awareness,\"{cell.replace(chr(34), chr(34) * 2)}\"\n")

    error = expect_error(_csv(client, marketer, text), 422, "formula_cell")

    assert error["details"]["cells"] == [{"row": 2, "column": "title"}]
    assert "row 2 column title" in error["message"]
    assert _count(session, Link) == 0


def test_more_than_ten_thousand_rows_are_refused_with_413(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any], session: Session,
    expect_error: ErrorCheck,
) -> None:
    line = f"{SHOP}/,store-flyer,awareness\n"
    text = "url,touchpoint,stage\n" + line * 10_001
    rows = [_row()] * 10_001

    for response in (_csv(client, marketer, text),
                     client.post(LINKS, json={"rows": rows}, headers=marketer)):
        error = expect_error(response, 413, "too_many_rows")
        assert "10,000" in error["message"]
    assert _count(session, Link) == 0


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"data": "url=x", "content_type": "application/x-www-form-urlencoded"}, 415,
         "unsupported_media_type"),
        ({"data": b"\x89PNG", "content_type": "image/png"}, 415, "unsupported_media_type"),
        ({"data": "{not json", "content_type": "application/json"}, 400, "bad_request"),
        ({"json": [1, 2]}, 400, "bad_request"),
        ({"json": {"rows": "all of them"}}, 422, "invalid_field"),
        ({"json": {"rows": []}}, 422, "no_rows"),
        ({"json": {"rows": [], "colour": 1}}, 422, "invalid_field"),
        ({"json": {"rows": [{}], "atomic": "yes"}}, 422, "invalid_field"),
        ({"data": {"other": "x"}, "content_type": "multipart/form-data"}, 400, "bad_request"),
    ],
    ids=["form", "image", "bad-json", "json-list", "rows-not-a-list", "no-rows",
         "unknown-field", "atomic-not-boolean", "upload-without-file"],
)
def test_a_body_that_is_neither_rows_of_json_nor_csv_is_refused(
    client: FlaskClient, marketer: dict[str, str], expect_error: ErrorCheck,
    kwargs: dict[str, Any], status: int, code: str,
) -> None:
    expect_error(client.post(LINKS, headers=marketer, **kwargs), status, code)


def test_a_malformed_option_is_a_400_naming_it(
    client: FlaskClient, marketer: dict[str, str], expect_error: ErrorCheck,
) -> None:
    response = client.post(f"{LINKS}?atomic=maybe", json={"rows": [_row()]}, headers=marketer)

    expect_error(response, 400, "invalid_parameter", parameter="atomic")


# --- touchpoints ------------------------------------------------------------------------------


def test_touchpoints_in_bulk_with_exposure_coupons_and_errors_by_row(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any], session: Session,
) -> None:
    text = (
        "key,name,channel,kind,exposure,coupons\n"
        "store-paris,\"Store flyer, Paris\",physical,advertising,\"2,000\",PARIS10 paris20\n"
        "store-lyon,Store flyer Lyon,physical,,,\n"
        "store-flyer,Taken key,physical,,,\n"
        "store-nice,Nice,telepathy,,,\n"
        "store-lyon,Lyon again,physical,,,\n"
        "store-brest,Brest,physical,,,paris10\n"
        "store-metz,Metz,physical,,0,\n"
    )

    body = _csv(client, marketer, text, path=TOUCHPOINTS).get_json()

    assert body["totals"] == {"rows": 7, "valid": 2, "created": 2, "failed": 5}
    results = {r["row"]: r for r in body["results"]}
    paris = results[1]["touchpoint"]
    assert (paris["key"], paris["name"], paris["exposure"]) == (
        "store-paris", "Store flyer, Paris", 2000)
    assert paris["coupons"] == ["PARIS10", "PARIS20"]
    assert results[3]["error"]["code"] == "conflict"
    assert results[4]["error"]["details"] == {"field": "channel"}
    assert results[5]["error"]["details"] == {"field": "key", "row": 2}
    assert results[6]["error"]["details"]["coupon"] == "PARIS10"
    assert results[7]["error"]["details"] == {"field": "exposure"}
    session.expire_all()
    keys = set(session.scalars(select(Touchpoint.key)))
    assert keys == {"store-flyer", "store-paris", "store-lyon"}
    assert set(session.scalars(select(Coupon.code))) == {"PARIS10", "PARIS20"}
    # The new touchpoints take links at once.
    link = client.post("/api/v1/links", json=_row("paris", touchpoint="store-paris"),
                       headers=marketer)
    assert link.status_code == 201


def test_touchpoints_as_json_atomic(
    client: FlaskClient, marketer: dict[str, str], session: Session, expect_error: ErrorCheck,
) -> None:
    rows = [{"key": "a", "name": "A", "channel": "digital"},
            {"key": "b", "name": "B", "channel": "digital", "coupons": "B10"}]

    error = expect_error(
        client.post(TOUCHPOINTS, json={"rows": rows, "atomic": True}, headers=marketer),
        422, "rows_invalid")
    good = client.post(TOUCHPOINTS, json={"rows": rows[:1]}, headers=marketer)

    assert [e["row"] for e in error["details"]["errors"]] == [2]
    assert good.status_code == 200
    assert good.get_json()["results"][0]["touchpoint"]["key"] == "a"
    assert _count(session, Touchpoint) == 1
