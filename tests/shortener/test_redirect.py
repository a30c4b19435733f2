"""The public redirect: status, Location with UTM tags, 404 and 410 pages, clicks handed on."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics.models import Click
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
