"""The public redirect: status, Location with UTM tags, 404 and 410 pages, clicks handed on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask import Flask, Response
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics.models import Click
from tests.conftest import AuthActions
from tests.user_agents import IPHONE


def test_redirect_answers_302_with_utm_tags_and_no_store(
    client: FlaskClient, link: dict[str, Any]
) -> None:
    response = client.get("/spring")
    assert response.status_code == 302
    assert response.headers["Location"] == (
        "https://shop.example.com/spring?ref=flyer"
        "&utm_source=store-flyer&utm_medium=physical&utm_campaign=spring-launch"
    )
    assert response.headers["Cache-Control"] == "private, no-store"


def test_scan_marker_is_stripped_and_the_click_is_recorded_as_a_scan(
    client: FlaskClient, link: dict[str, Any], session: Session
) -> None:
    response = client.get("/spring?qr=1&color=red", headers={"User-Agent": IPHONE})
    assert response.status_code == 302
    assert "qr=" not in response.headers["Location"]
    assert "color=red" in response.headers["Location"]
    # Stored by the request itself: the app is bound to the test's connection.
    click = session.scalars(select(Click)).one()
    assert click.via_qr is True
    assert click.link_id == link["id"]


@pytest.mark.parametrize("query", ["qr=0", "qr=x", "qr=", "qr=true", "qr=01", "QR=1"])
def test_another_qr_value_is_the_customers_own_forwarded_untouched_and_no_scan(
    client: FlaskClient, link: dict[str, Any], session: Session, query: str
) -> None:
    response = client.get(f"/spring?{query}&color=red", headers={"User-Agent": IPHONE})

    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert parse_qsl(location.query, keep_blank_values=True)[:3] == [
        ("ref", "flyer"), tuple(query.split("=")), ("color", "red"),
    ]
    click = session.scalars(select(Click)).one()
    assert click.via_qr is False  # counted as a click, not a scan


def test_only_qr_1_is_a_scan_in_the_reports(
    client: FlaskClient, link: dict[str, Any], analyst: dict[str, str]
) -> None:
    for query in ("qr=1", "qr=1&utm_content=a", "qr=0", "qr=x", "", "qr=2&qr=1"):
        response = client.get(f"/spring?{query}", headers={"User-Agent": IPHONE})
        assert response.status_code == 302, query
    # the last one: one of its values is 1, so a scan; the other is forwarded
    assert "qr=2" in response.headers["Location"]
    assert "qr=1" not in response.headers["Location"]

    report = client.get("/api/v1/reports/touchpoints", headers=analyst).get_json()
    (row,) = report["rows"]
    assert (row["clicks"], row["scans"]) == (6, 3)
    sources = client.get(
        "/api/v1/reports/breakdown?dimension=source", headers=analyst
    ).get_json()["rows"]
    assert [(r["value"], r["clicks"]) for r in sources] == [("click", 3), ("scan", 3)]


def test_unknown_slug_is_an_html_404(client: FlaskClient) -> None:
    response = client.get("/nothing-here")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert b"Link not found" in response.data


def test_archived_link_is_gone(
    client: FlaskClient, link: dict[str, Any], marketer: dict[str, str]
) -> None:
    assert client.get("/spring").status_code == 302
    assert client.delete(f"/api/v1/links/{link['id']}", headers=marketer).status_code == 200
    assert client.get("/spring").status_code == 410


def test_head_and_opted_out_clicks_are_answered_but_not_counted(
    client: FlaskClient, link: dict[str, Any], session: Session
) -> None:
    assert client.head("/spring").status_code == 302
    assert client.get("/spring?notrack=1").status_code == 302
    assert session.scalar(select(func.count()).select_from(Click)) == 0

    assert client.get("/spring").status_code == 302  # while an ordinary click is
    assert session.scalar(select(func.count()).select_from(Click)) == 1


def test_a_path_that_cannot_be_a_slug_is_a_404_page(client: FlaskClient) -> None:
    for path in ("/" + "a" * 65, "/a.b", "/%00", "/sp%20ring", "/caf%C3%A9"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.mimetype == "text/html"


# --- the plain redirect, answered in front of Flask ---------------------------------------------


@pytest.mark.parametrize("query", ["", "?qr=1&color=red", "?notrack=1"])
def test_the_plain_redirect_answers_as_the_flask_view_does(
    client: FlaskClient, link: dict[str, Any], query: str
) -> None:
    # A session cookie sends the request through Flask (which would refresh a real session).
    through_flask = client.get(f"/spring{query}", headers={"Cookie": "touchlink_session=x"})
    plain = client.get(f"/spring{query}")

    assert plain.status == through_flask.status == "302 FOUND"
    assert list(plain.headers) == list(through_flask.headers)
    assert plain.headers["X-Content-Type-Options"] == "nosniff"
    assert plain.headers["Content-Type"] == "text/html; charset=utf-8"
    assert plain.data == through_flask.data == b""
    head = client.head(f"/spring{query}")
    assert (head.status, list(head.headers)) == (plain.status, list(plain.headers))


def test_a_signed_in_users_session_is_refreshed_on_a_redirect_too(
    app: Flask, link: dict[str, Any], auth: AuthActions
) -> None:
    browser = auth.client("marketer")
    response = browser.get("/spring")
    assert response.status_code == 302
    assert any(c.startswith("touchlink_session=") for c in response.headers.getlist("Set-Cookie"))


def test_another_hook_of_the_app_runs_on_the_redirect(
    make_app: Callable[..., Flask], make_flyer: Callable[[Flask], None]
) -> None:
    app = make_app()

    @app.after_request
    def stamp(response: Response) -> Response:
        response.headers["X-Stamp"] = "1"
        return response

    make_flyer(app)
    client = app.test_client()
    for _ in range(3):
        response = client.get("/flyer")
        assert response.status_code == 302
        assert response.headers["X-Stamp"] == "1"


def test_the_paths_of_pages_are_never_taken_for_slugs(
    client: FlaskClient, link: dict[str, Any]
) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/signin").status_code == 200
    assert client.get("/links").status_code == 302  # sign in first
    assert client.get("/static").status_code == 404
    response = client.get("/signout")  # POST only: the view takes it, and no link has it
    assert response.status_code == 404
    assert b"Link not found" in response.data
    assert response.headers["Content-Security-Policy"]
