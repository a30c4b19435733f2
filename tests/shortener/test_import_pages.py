"""The import page: upload a CSV file, see every row checked before anything is written, import,
download the results; signed in, with the CSRF token, for marketers only."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from shortener.models import Link, Touchpoint

LINKS_CSV = (
    "url,touchpoint,stage,slug\n"
    "https://shop.example.com/lyon,store-flyer,awareness,page-lyon\n"
    "https://shop.example.com/x,store-flyer,nowhen,page-bad\n"
    "https://shop.example.com/paris,store-flyer,decision,page-paris\n"
)


def _count(session: Session, model: Any) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model)) or 0


def _hidden(response: TestResponse, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', response.get_data(as_text=True))
    assert found is not None, f"no hidden {name}"
    return found.group(1)


def _upload(pages: Any, client: FlaskClient, text: str, kind: str = "links") -> TestResponse:
    data = {"file": (io.BytesIO(text.encode()), "stores.csv")}
    response: TestResponse = pages.post_form(
        client, f"/{kind}/import/preview", data, form_page=f"/{kind}/import")
    return response


def test_a_preview_shows_each_rows_error_then_the_import_writes_the_good_rows(
    marketer_client: FlaskClient, pages: Any, session: Session, touchpoint: dict[str, Any],
) -> None:
    page = marketer_client.get("/links/import")
    assert page.status_code == 200
    assert 'href="/links/import" aria-current="page"' in pages.text(page)  # the navigation

    preview = _upload(pages, marketer_client, LINKS_CSV)

    assert preview.status_code == 200
    shown = pages.text(preview)
    assert re.search(r'id="valid-count">2<', shown) and re.search(r'id="failed-count">1<', shown)
    bad_row = shown[shown.index('data-row="2"'):]
    assert "stage: no stage with key &#39;nowhen&#39;" in bad_row[:800]
    assert _count(session, Link) == 0  # a preview writes nothing

    done = pages.post_form(
        marketer_client, "/links/import/run", {"data": _hidden(preview, "data")},
        form_page="/links/import",
    )

    assert done.status_code == 200
    assert re.search(r'id="created-count">2<', pages.text(done))
    session.expire_all()
    assert set(session.scalars(select(Link.slug))) == {"page-lyon", "page-paris"}
    assert marketer_client.get("/page-lyon").status_code == 302

    download = pages.post_form(
        marketer_client, "/links/import/results.csv", {"results": _hidden(done, "results")},
        form_page="/links/import",
    )
    assert download.mimetype == "text/csv"
    assert "attachment" in download.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(download.get_data(as_text=True))))
    assert [(r["row"], r["status"], r["slug"]) for r in rows] == [
        ("1", "created", "page-lyon"), ("2", "error", "page-bad"),
        ("3", "created", "page-paris")]
    assert rows[0]["short_url"] == "http://go.test/page-lyon"
    assert rows[1]["error_code"] == "unknown_reference"


def test_all_or_nothing_on_the_page_writes_nothing_when_a_row_is_bad(
    marketer_client: FlaskClient, pages: Any, session: Session, touchpoint: dict[str, Any],
) -> None:
    preview = _upload(pages, marketer_client, LINKS_CSV)

    done = pages.post_form(
        marketer_client, "/links/import/run",
        {"data": _hidden(preview, "data"), "atomic": "on"}, form_page="/links/import",
    )

    assert done.status_code == 422
    assert "Nothing imported" in pages.text(done)
    assert _count(session, Link) == 0


def test_touchpoints_are_imported_from_the_page(
    marketer_client: FlaskClient, pages: Any, session: Session,
) -> None:
    text = "key,name,channel\nstore-lyon,Store Lyon,physical\nstore-x,Store X,nowhere\n"
    preview = _upload(pages, marketer_client, text, kind="touchpoints")

    done = pages.post_form(
        marketer_client, "/touchpoints/import/run", {"data": _hidden(preview, "data")},
        form_page="/touchpoints/import",
    )

    assert done.status_code == 200
    session.expire_all()
    assert list(session.scalars(select(Touchpoint.key))) == ["store-lyon"]


@pytest.mark.parametrize(
    ("text", "status", "words"),
    [("url,touchpoint\nhttps://a.example/,b\n", 422, "no stage column"),
     ("url,touchpoint,stage\n=1+1,b,c\n", 422, "formulas"),
     ("", 400, "empty")],
    ids=["header", "formula", "empty"],
)
def test_a_refused_file_is_shown_on_the_upload_page(
    marketer_client: FlaskClient, pages: Any, text: str, status: int, words: str,
) -> None:
    response = _upload(pages, marketer_client, text)

    assert response.status_code == status
    assert words in pages.text(response)
    assert 'id="import-error"' in pages.text(response)


def test_the_page_needs_the_csrf_token_and_the_marketer_role(
    marketer_client: FlaskClient, auth: Any, pages: Any,
) -> None:
    data = {"file": (io.BytesIO(LINKS_CSV.encode()), "x.csv")}
    assert marketer_client.post("/links/import/preview", data=data).status_code == 400
    analyst = auth.client("analyst")
    assert analyst.get("/links/import").status_code == 403
    assert FlaskClient(marketer_client.application).get("/links/import").status_code == 302


def test_a_template_file_is_offered_for_each_kind(marketer_client: FlaskClient) -> None:
    for kind, header in (("links", "url,touchpoint,stage"), ("touchpoints", "key,name,channel")):
        response = marketer_client.get(f"/{kind}/import/template.csv")
        assert response.mimetype == "text/csv"
        assert response.get_data(as_text=True).startswith(header)
