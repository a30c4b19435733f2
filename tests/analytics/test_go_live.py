"""A link's go-live window: clicks before `starts_at` are proofing scans (at the printer, at the
office), stored flagged `test` and left out of every figure unless a report asks
(`tests=include`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics.models import Click
from tests.user_agents import GOOGLEBOT, IPHONE

LINKS = "/api/v1/links"


def _iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def _click(client: FlaskClient, slug: str, agent: str, n: int) -> None:
    response = client.get(f"/{slug}?qr=1", headers={"User-Agent": agent},
                          environ_base={"REMOTE_ADDR": f"198.51.100.{n}"})
    assert response.status_code == 302


def _figures(client: FlaskClient, analyst: dict[str, str], link_id: int, tests: str) -> Any:
    report = client.get(f"/api/v1/reports/links/{link_id}?tests={tests}", headers=analyst)
    assert report.status_code == 200, report.get_json()
    return report.get_json()["figures"]


def _touchpoint_clicks(client: FlaskClient, analyst: dict[str, str], key: str, tests: str) -> int:
    # Least engaged first: a touchpoint of no click is listed too.
    report = client.get(f"/api/v1/reports/touchpoints?order=least&tests={tests}", headers=analyst)
    assert report.status_code == 200, report.get_json()
    assert report.get_json()["tests"] == tests
    [row] = [r for r in report.get_json()["rows"] if r["touchpoint"]["key"] == key]
    clicks: int = row["clicks"]
    return clicks


def test_proofing_scans_before_go_live_are_kept_apart_from_every_figure(
    client: FlaskClient, marketer: dict[str, str], analyst: dict[str, str],
    touchpoint: dict[str, Any], session: Session,
) -> None:
    created = client.post(LINKS, json={
        "url": "https://shop.example.com/", "touchpoint": touchpoint["key"], "stage": "awareness",
        "slug": "poster", "starts_at": _iso(timedelta(days=7)),
    }, headers=marketer)
    assert created.status_code == 201, created.get_json()
    link = created.get_json()
    for n in range(3):  # the printer's proofs
        _click(client, "poster", IPHONE, n)
    _click(client, "poster", GOOGLEBOT, 9)

    session.expire_all()
    flags = session.execute(select(Click.is_test, Click.is_bot).order_by(Click.click_id)).all()
    assert [tuple(flag) for flag in flags] == [(True, False)] * 3 + [(True, True)]
    excluded = _figures(client, analyst, link["id"], "exclude")
    included = _figures(client, analyst, link["id"], "include")
    assert (excluded["human_clicks"], excluded["scans"], excluded["visitors"]) == (0, 0, 0)
    assert included["human_clicks"] == 3
    assert _touchpoint_clicks(client, analyst, touchpoint["key"], "exclude") == 0
    assert _touchpoint_clicks(client, analyst, touchpoint["key"], "include") == 3

    # The campaign goes live: what customers scan from now on counts.
    live = client.patch(f"{LINKS}/{link['id']}", json={"starts_at": _iso(-timedelta(minutes=1))},
                        headers=marketer)
    assert live.status_code == 200, live.get_json()
    _click(client, "poster", IPHONE, 50)
    _click(client, "poster", IPHONE, 51)

    assert _figures(client, analyst, link["id"], "exclude")["human_clicks"] == 2
    assert _figures(client, analyst, link["id"], "include")["human_clicks"] == 5
    assert _touchpoint_clicks(client, analyst, touchpoint["key"], "exclude") == 2


def test_a_window_that_never_opens_or_a_bad_tests_value_is_refused(
    client: FlaskClient, marketer: dict[str, str], analyst: dict[str, str],
    touchpoint: dict[str, Any],
) -> None:
    body = {"url": "https://shop.example.com/", "touchpoint": touchpoint["key"],
            "stage": "awareness", "starts_at": _iso(timedelta(days=10)),
            "expires_at": _iso(timedelta(days=9))}
    refused = client.post(LINKS, json=body, headers=marketer)
    ok = client.post(LINKS, json={**body, "expires_at": _iso(timedelta(days=11))},
                     headers=marketer)
    moved = client.patch(f"{LINKS}/{ok.get_json()['id']}",
                         json={"starts_at": _iso(timedelta(days=12))}, headers=marketer)
    bad = client.get("/api/v1/reports/touchpoints?tests=maybe", headers=analyst)

    for response in (refused, moved):
        assert response.status_code == 422
        assert response.get_json()["error"]["details"] == {"field": "expires_at"}
        assert "must be after starts_at" in response.get_json()["error"]["message"]
    assert ok.status_code == 201 and ok.get_json()["starts_at"] is not None
    assert bad.status_code == 400
    assert bad.get_json()["error"]["details"]["parameter"] == "tests"


def test_the_dashboard_takes_tests_include(auth: Any) -> None:
    analyst = auth.client("analyst")

    assert analyst.get("/dashboard?tests=include").status_code == 200
    assert analyst.get("/dashboard?tests=maybe").status_code == 400
