"""Shared reports through the real path: an admin shares a dashboard view (API or page), anyone
with the link reads it without an account, its window and filters fixed, until it is revoked or
expires; a link altered in any way opens nothing."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from analytics.models import SharedReport
from shortener.db import utcnow
from shortener.runtime import runtime
from shortener.unit_of_work import transaction

# Human clicks of the awareness stage in the `journey` fixture, by touchpoint.
AWARENESS = {"store-flyer": 3, "insta-bio": 3, "old-poster": 1}


@pytest.fixture
def share(client: FlaskClient, admin: dict[str, str], journey: None) -> Any:
    """`share(**body)`: a share made through the API, as it answered (201 asserted)."""

    def make(**body: Any) -> dict[str, Any]:
        response = client.post("/api/v1/shares", json={"name": "Awareness", **body},
                               headers=admin)
        assert response.status_code == 201, response.json
        made: dict[str, Any] = response.json
        return made

    return make


def path_of(made: dict[str, Any]) -> str:
    return urlsplit(made["url"]).path


def csv_rows(reader: FlaskClient, path: str, table: str) -> dict[str, int]:
    response = reader.get(f"{path}?format=csv&table={table}")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == "text/csv"
    rows = csv.DictReader(io.StringIO(response.get_data(as_text=True)))
    return {row["touchpoint_key"]: int(row["human_clicks"]) for row in rows}


def human_clicks_tile(page: str) -> int:
    found = re.search(r'id="kpi-human">.*?<div class="value[^"]*">([^<]*)</div>', page, re.S)
    assert found is not None
    return int(found.group(1).replace(",", ""))


def test_anyone_with_the_link_reads_the_view_without_an_account(
    app: Flask, share: Any
) -> None:
    made = share(view="range=30d&stage=awareness", days=7)
    reader = app.test_client()  # nobody signed in

    response = reader.get(path_of(made))

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert human_clicks_tile(page) == sum(AWARENESS.values())
    assert "read-only view of awareness" in page
    # Read-only: no way to other pages of the workspace, nor to change what it counts.
    assert "/dashboard/touchpoints/" not in page and 'class="filters card"' not in page
    assert "Share this view" not in page and 'class="mainnav"' not in page
    assert response.headers["X-Robots-Tag"] == "noindex, nofollow"
    assert csv_rows(reader, path_of(made), "most") == AWARENESS


def test_the_reader_cannot_change_the_window_or_the_filters_only_how_it_is_drawn(
    app: Flask, share: Any
) -> None:
    made = share(view={"range": "30d", "stage": "awareness"})
    reader = app.test_client()

    widened = reader.get(f"{path_of(made)}?stage=consideration&range=7d&bots=include")
    drawn = reader.get(f"{path_of(made)}?funnel=open&interval=day")
    bad = reader.get(f"{path_of(made)}?interval=fortnight")

    assert human_clicks_tile(widened.get_data(as_text=True)) == sum(AWARENESS.values())
    assert "bots excluded" in widened.get_data(as_text=True)
    assert drawn.status_code == 200
    assert "funnel=open" in drawn.get_data(as_text=True)  # its toggles keep the reader's choice
    assert bad.status_code == 400  # said on the page, which shows the share as it was made
    assert human_clicks_tile(bad.get_data(as_text=True)) == sum(AWARENESS.values())


def test_a_revoked_link_opens_nothing_and_stays_listed_as_revoked(
    app: Flask, client: FlaskClient, admin: dict[str, str], share: Any
) -> None:
    made, kept = share(), share(name="Kept")
    reader = app.test_client()
    assert reader.get(path_of(made)).status_code == 200

    assert client.delete(f"/api/v1/shares/{made['id']}", headers=admin).status_code == 204
    assert client.delete(f"/api/v1/shares/{made['id']}", headers=admin).status_code == 204

    gone = reader.get(path_of(made))
    assert gone.status_code == 404
    assert "Awareness" not in gone.get_data(as_text=True)
    assert reader.get(path_of(kept)).status_code == 200
    listed = {s["id"]: s for s in client.get("/api/v1/shares", headers=admin).json["items"]}
    assert listed[made["id"]]["live"] is False and listed[made["id"]]["revoked_at"]
    assert listed[kept["id"]]["live"] is True and listed[kept["id"]]["revoked_at"] is None


def test_an_expired_link_opens_nothing(app: Flask, share: Any) -> None:
    made = share(days=1)
    reader = app.test_client()
    assert reader.get(path_of(made)).status_code == 200

    with transaction(runtime(app).sessions) as session:
        found = session.get(SharedReport, made["id"])
        assert found is not None
        found.expires_at = utcnow() - timedelta(seconds=1)

    assert reader.get(path_of(made)).status_code == 404
    assert datetime.fromisoformat(made["expires_at"]) - datetime.now(UTC) <= timedelta(days=1)


@pytest.mark.parametrize("alter", [
    # The signature (not its last character: its low bits are padding, dropped when decoded).
    lambda token: token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:],
    lambda token: "9" + token[1:],  # the payload
    lambda token: token + "x",
    lambda token: "not-a-token",
    lambda token: "W10.x",
])
def test_an_altered_link_opens_nothing(app: Flask, share: Any, alter: Any) -> None:
    token = path_of(share()).removeprefix("/shared/")

    response = app.test_client().get(f"/shared/{alter(token)}")

    assert response.status_code == 404


def test_a_link_signed_by_another_installation_opens_nothing(
    app: Flask, make_app: Any, share: Any
) -> None:
    made = share()
    other = make_app(secret_key="another installation's secret, long enough to be one")

    assert app.test_client().get(path_of(made)).status_code == 200
    assert other.test_client().get(path_of(made)).status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"view": "range=30d"}, "name"),
    ({"name": "x", "view": "funnel=open"}, "view"),  # how it is drawn is the reader's
    ({"name": "x", "view": "stage=nowhere"}, "view"),
    ({"name": "x", "view": "range=12d"}, "view"),
    ({"name": "x", "view": ["range=30d"]}, "view"),
    ({"name": "x", "days": 0}, "days"),
    ({"name": "x", "days": 366}, "days"),
    ({"name": "x", "days": "7"}, "days"),
    ({"name": "x", "secret": "y"}, "secret"),
])
def test_a_share_that_cannot_be_made_is_refused_by_name(
    client: FlaskClient, admin: dict[str, str], body: dict[str, Any], field: str
) -> None:
    response = client.post("/api/v1/shares", json=body, headers=admin)

    assert response.status_code in (400, 422), response.json
    assert response.json["error"]["details"]["field"] == field
    assert client.get("/api/v1/shares", headers=admin).json["items"] == []


def test_only_admins_share_views(
    client: FlaskClient, analyst: dict[str, str], admin: dict[str, str]
) -> None:
    assert client.get("/api/v1/shares").status_code == 401
    assert client.post("/api/v1/shares", json={"name": "x"}, headers=analyst).status_code == 403
    assert client.delete("/api/v1/shares/1", headers=analyst).status_code == 403
    assert client.delete("/api/v1/shares/999", headers=admin).status_code == 404


def test_an_admin_shares_the_dashboard_view_from_the_page(
    app: Flask, auth: Any, pages: Any, journey: None
) -> None:
    admin = auth.client("admin")
    dashboard = admin.get("/dashboard?range=30d&stage=awareness").get_data(as_text=True)
    assert "Share this view" in dashboard

    made = pages.post_form(admin, "/dashboard/shares",
                           {"range": "30d", "stage": "awareness", "name": "For the agency",
                            "days": "14"}, form_page="/dashboard?range=30d&stage=awareness")

    assert made.status_code == 303
    listing = admin.get(made.headers["Location"]).get_data(as_text=True)
    assert "For the agency" in listing
    link = re.search(r"data-secret>https?://[^/]+(/shared/[^<]+)<", listing)
    assert link is not None
    reader = app.test_client()
    assert human_clicks_tile(reader.get(link.group(1)).get_data(as_text=True)) == sum(
        AWARENESS.values()
    )

    revoke = re.search(r"/dashboard/shares/(\d+)/revoke", listing)
    assert revoke is not None
    revoked = pages.post_form(admin, f"/dashboard/shares/{revoke.group(1)}/revoke", {},
                              form_page="/dashboard/shares")
    assert revoked.status_code == 303
    assert reader.get(link.group(1)).status_code == 404


def test_an_analyst_neither_sees_nor_posts_the_share_form(auth: Any, pages: Any) -> None:
    analyst = auth.client("analyst")

    assert "Share this view" not in analyst.get("/dashboard").get_data(as_text=True)
    refused = pages.post_form(analyst, "/dashboard/shares", {"name": "x"}, form_page="/dashboard")
    assert refused.status_code == 403
