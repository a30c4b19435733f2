"""Clicks over time and breakdowns by dimension, through clicks stored by the real ingest and the
reports API (analyst keys), JSON and CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from shortener.models import Link
from tests.user_agents import DESKTOP, GOOGLEBOT, IPHONE

PERIOD = {"from": "2026-03-01", "to": "2026-03-03"}
GB = "81.130.4.5"  # the bundled country data places these addresses in Great Britain
FR = "90.12.34.56"  # and this one in France


@pytest.fixture
def journey(shop: Any, link: dict[str, Any], ingest: Any) -> None:
    """store-flyer/spring (physical, awareness) and insta-bio/bio (digital, decision), with clicks
    at chosen times: an iPhone in Great Britain unless said otherwise."""
    shop.touchpoint("insta-bio", "digital", name="Instagram bio")
    shop.link("bio", "insta-bio", "decision")

    def store(slug: str, at: str, *, ip: str = GB, agent: str = IPHONE, **extra: Any) -> None:
        ingest.click(slug, at, ip=ip, agent=agent, language="fr-FR", **extra)

    store("spring", "2026-03-01T09:15:00+00:00", qr=True, times=2)
    store("spring", "2026-03-01T09:40:00+00:00", ip=FR, agent=DESKTOP)
    store("spring", "2026-03-02T18:05:00+00:00", agent=GOOGLEBOT, ip="66.249.66.1")
    store("bio", "2026-03-02T18:30:00+00:00", referrer="https://l.instagram.com/x")
    store("bio", "2026-03-03T23:59:00+00:00", referrer="https://l.instagram.com/y", times=3)
    store("bio", "2026-03-04T00:00:00+00:00")  # just past the period


def _get(client: FlaskClient, key: dict[str, str], path: str, **params: str) -> Any:
    response = client.get(f"/api/v1/reports/{path}", query_string=params, headers=key)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


@pytest.mark.usefixtures("journey")
def test_clicks_per_day_by_touchpoint_with_every_day_present(
    client: FlaskClient, analyst: dict[str, str]
) -> None:
    body = _get(client, analyst, "timeseries", **PERIOD)

    assert body["interval"] == "day" and body["group_by"] == "touchpoint"
    assert body["buckets"] == [
        "2026-03-01T00:00:00+00:00", "2026-03-02T00:00:00+00:00", "2026-03-03T00:00:00+00:00"
    ]
    assert [(s["key"], s["total"], s["clicks"], s["scans"]) for s in body["series"]] == [
        ("insta-bio", 4, [0, 1, 3], [0, 0, 0]),
        ("store-flyer", 3, [3, 0, 0], [2, 0, 0]),
    ]
    assert body["bots"] == "exclude"


@pytest.mark.usefixtures("journey")
def test_bots_are_counted_only_when_asked_for_and_never_as_human(
    client: FlaskClient, analyst: dict[str, str]
) -> None:
    for bots, clicks in (("include", [3, 1, 0]), ("exclude", [3, 0, 0])):
        body = _get(client, analyst, "timeseries", bots=bots, **PERIOD)

        flyer = next(s for s in body["series"] if s["key"] == "store-flyer")
        assert flyer["clicks"] == clicks, bots
        assert flyer["human_clicks"] == [3, 0, 0], bots
        assert flyer["bot_clicks"] == [0, 1, 0], bots
        assert flyer["visitors"] == [2, 0, 0]  # bots are no visitors
        assert flyer["total"] == sum(clicks)


@pytest.mark.usefixtures("journey")
def test_clicks_per_day_by_link(client: FlaskClient, analyst: dict[str, str], session: Any) -> None:
    body = _get(client, analyst, "timeseries", group_by="link", **PERIOD)

    ids = dict(session.execute(select(Link.slug, Link.id)).all())
    assert [(s["key"], s["name"], s["clicks"]) for s in body["series"]] == [
        (str(ids["bio"]), "bio", [0, 1, 3]),
        (str(ids["spring"]), "spring", [3, 0, 0]),
    ]
    assert body["group_by"] == "link"


@pytest.mark.usefixtures("journey")
def test_clicks_per_hour_by_stage_and_by_channel(
    client: FlaskClient, analyst: dict[str, str]
) -> None:
    hourly = _get(client, analyst, "timeseries", interval="hour", group_by="stage",
                  **{"from": "2026-03-01T08:00", "to": "2026-03-01T11:00"})
    channels = _get(client, analyst, "timeseries", group_by="channel", **PERIOD)

    assert len(hourly["buckets"]) == 3
    assert hourly["buckets"][1] == "2026-03-01T09:00:00+00:00"
    assert [(s["key"], s["name"], s["clicks"]) for s in hourly["series"]] == [
        ("awareness", "Awareness", [0, 3, 0])
    ]
    assert [(s["key"], s["total"]) for s in channels["series"]] == [
        ("digital", 4), ("physical", 3)
    ]


@pytest.mark.usefixtures("journey")
def test_filters_narrow_the_series(client: FlaskClient, analyst: dict[str, str]) -> None:
    by_stage = _get(client, analyst, "timeseries", stage="decision", **PERIOD)
    by_channel = _get(client, analyst, "timeseries", channel="physical", **PERIOD)
    by_campaign = _get(client, analyst, "timeseries", campaign="spring-launch", **PERIOD)

    assert [s["key"] for s in by_stage["series"]] == ["insta-bio"]
    assert [s["key"] for s in by_channel["series"]] == ["store-flyer"]
    assert [s["key"] for s in by_campaign["series"]] == ["store-flyer"]


@pytest.mark.usefixtures("journey")
def test_the_timeseries_as_csv_has_a_row_per_bucket_and_group(
    client: FlaskClient, analyst: dict[str, str]
) -> None:
    response = client.get(
        "/api/v1/reports/timeseries", query_string={**PERIOD, "format": "csv"}, headers=analyst
    )

    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="timeseries-2026-03-01-2026-03-03.csv"'
    )
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == [
        "bucket", "group_key", "group_name", "clicks", "human_clicks", "bot_clicks", "scans",
        "visitors",
    ]
    assert rows[1] == [
        "2026-03-01T00:00:00+00:00", "insta-bio", "Instagram bio", "0", "0", "0", "0", "0",
    ]
    assert rows[5] == [
        "2026-03-02T00:00:00+00:00", "store-flyer", "Store flyer", "0", "0", "1", "0", "0",
    ]  # the bot is shown apart, not counted in clicks
    assert len(rows) == 1 + 2 * 3


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"interval": "week"}, "interval"),
        ({"group_by": "campaign"}, "group_by"),
        ({"interval": "hour", "from": "2026-01-01T10:30"}, "from"),
        ({"interval": "hour", "from": "2026-01-01", "to": "2026-03-01"}, "interval"),
        ({"format": "xml"}, "format"),
        ({"stage": "nowhere"}, "stage"),
    ],
)
def test_bad_timeseries_parameters_are_400s_naming_them(
    client: FlaskClient, analyst: dict[str, str], params: dict[str, str], parameter: str
) -> None:
    response = client.get("/api/v1/reports/timeseries", query_string=params, headers=analyst)

    assert response.status_code == 400
    assert response.get_json()["error"]["details"]["parameter"] == parameter


@pytest.mark.usefixtures("journey")
@pytest.mark.parametrize(
    ("dimension", "expected"),
    [
        ("device", [("mobile", "Mobile", 6), ("desktop", "Desktop", 1)]),
        ("country", [("GB", "United Kingdom", 6), ("FR", "France", 1)]),
        ("referrer", [("Instagram", "Instagram", 4), ("", "Direct or unknown", 3)]),
        ("referrer_host",
         [("l.instagram.com", "l.instagram.com", 4), ("", "Direct or unknown", 3)]),
        ("source", [("click", "Click", 5), ("scan", "QR code scan", 2)]),
        ("browser", [("Mobile Safari", "Mobile Safari", 6), ("Chrome", "Chrome", 1)]),
        ("os", [("iOS", "iOS", 6), ("Windows", "Windows", 1)]),
    ],
)
def test_breakdowns_count_human_clicks_by_dimension(
    client: FlaskClient, analyst: dict[str, str], dimension: str,
    expected: list[tuple[str, str, int]],
) -> None:
    body = _get(client, analyst, "breakdown", dimension=dimension, **PERIOD)

    assert [(r["value"], r["label"], r["clicks"]) for r in body["rows"]] == expected
    assert body["total"] == 7 and body["other"] == 0
    assert sum(r["share"] for r in body["rows"]) == pytest.approx(1.0, abs=0.001)


@pytest.mark.usefixtures("journey")
def test_a_breakdown_keeps_the_top_values_and_counts_the_rest(
    client: FlaskClient, analyst: dict[str, str]
) -> None:
    top = _get(client, analyst, "breakdown", dimension="device", limit="1", bots="include",
               **PERIOD)

    assert [(r["value"], r["clicks"]) for r in top["rows"]] == [("mobile", 6)]
    assert (top["total"], top["other"]) == (8, 2)  # the desktop click and the bot


@pytest.mark.usefixtures("journey")
def test_a_breakdown_as_csv(client: FlaskClient, analyst: dict[str, str]) -> None:
    response = client.get(
        "/api/v1/reports/breakdown",
        query_string={**PERIOD, "dimension": "source", "format": "csv"},
        headers=analyst,
    )

    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows == [
        ["dimension", "value", "label", "clicks", "visitors", "share"],
        ["source", "click", "Click", "5", "3", "0.7143"],
        ["source", "scan", "QR code scan", "2", "1", "0.2857"],
    ]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [({}, "dimension"), ({"dimension": "colour"}, "dimension"),
     ({"dimension": "os", "limit": "0"}, "limit"), ({"dimension": "os", "limit": "x"}, "limit")],
)
def test_bad_breakdown_parameters_are_400s_naming_them(
    client: FlaskClient, analyst: dict[str, str], params: dict[str, str], parameter: str
) -> None:
    response = client.get("/api/v1/reports/breakdown", query_string=params, headers=analyst)

    assert response.status_code == 400
    assert response.get_json()["error"]["details"]["parameter"] == parameter


def test_the_detailed_reports_need_an_api_key(client: FlaskClient) -> None:
    for path in ("timeseries", "breakdown?dimension=os"):
        response = client.get(f"/api/v1/reports/{path}")
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthenticated"
