"""Privacy: Do Not Track and Global Privacy Control are honoured (the click counted, without a
visitor id or a journey) unless the operator says otherwise, and raw click rows go after
TOUCHLINK_RAW_RETENTION_DAYS while the figures built on them stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from analytics.models import Click, LinkHourlyStats
from analytics.retention import forget_old
from shortener.runtime import runtime
from shortener.unit_of_work import transaction
from tests.conftest import AppMaker
from tests.user_agents import IPHONE


@pytest.mark.parametrize("signal", [{"DNT": "1"}, {"Sec-GPC": "1"}])
def test_a_private_click_is_counted_without_a_visitor_id(
    client: FlaskClient, link: dict[str, Any], analyst: dict[str, str],
    signal: dict[str, str], app: Flask,
) -> None:
    response = client.get("/spring", headers={"User-Agent": IPHONE, **signal})
    client.get("/spring", headers={"User-Agent": IPHONE},
               environ_base={"REMOTE_ADDR": "198.51.100.9"})

    assert response.status_code == 302
    assert "tl_j" not in response.headers.get("Set-Cookie", "")
    figures = client.get(f"/api/v1/reports/links/{link['id']}", headers=analyst).get_json()
    assert (figures["figures"]["human_clicks"], figures["figures"]["visitors"]) == (2, 1)
    with runtime(app).sessions() as session:
        ids = sorted(session.scalars(select(Click.visitor_id)))
    assert ids[0] == "" and len(ids[1]) == 32


def test_the_operator_may_ignore_the_signals(
    make_app: AppMaker, marketer: dict[str, str], analyst: dict[str, str],
) -> None:
    app = make_app(privacy_signals="ignore")
    client = app.test_client()
    assert client.post("/api/v1/touchpoints", json={
        "key": "flyer", "name": "Flyer", "channel": "physical"}, headers=marketer
    ).status_code == 201
    made = client.post("/api/v1/links", json={
        "url": "https://shop.example.com/", "touchpoint": "flyer", "stage": "awareness",
        "slug": "flyer"}, headers=marketer).get_json()

    client.get("/flyer", headers={"User-Agent": IPHONE, "DNT": "1"})

    figures = client.get(f"/api/v1/reports/links/{made['id']}", headers=analyst).get_json()
    assert figures["figures"]["visitors"] == 1


def test_raw_clicks_past_their_retention_go_and_the_rollups_stay(
    app: Flask, ingest: Any, people: Any, link: dict[str, Any],
) -> None:
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=40), now - timedelta(days=2)
    ingest.visits("spring", (old, people.anna), (old, people.ben), (recent, people.clara))

    def rolled() -> tuple[int, int]:
        with runtime(app).sessions() as session:
            rows = session.scalar(select(func.count()).select_from(Click)) or 0
            clicks = session.scalar(select(func.sum(LinkHourlyStats.clicks))) or 0
            return rows, int(clicks)

    assert rolled() == (3, 3)
    with transaction(runtime(app).sessions) as session:
        kept = forget_old(session, now=now, journey_days=90, raw_days=None,
                          zone=runtime(app).settings.zone)
    assert (kept.clicks, rolled()) == (0, (3, 3))  # no retention set: everything stays
    with transaction(runtime(app).sessions) as session:
        gone = forget_old(session, now=now, journey_days=90, raw_days=30,
                          zone=runtime(app).settings.zone)

    assert gone.clicks == 2
    assert rolled() == (1, 3)  # the figures do not change
