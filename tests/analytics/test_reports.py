"""Touchpoint and stage reports through the real path: redirects → clicks → rollups → API."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from analytics.reports.query import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    ReportQuery,
    ReportRequest,
    parse_order,
)
from shortener.db import utcnow
from shortener.errors import InvalidParameterError
from tests.user_agents import ANDROID, DESKTOP, GOOGLEBOT, IPHONE

# People whose clicks are stored at chosen times: an IP address and a user agent.
ANNA = ("203.0.113.7", IPHONE)
BEN = ("203.0.113.8", ANDROID)
CLARA = ("198.51.100.4", DESKTOP)
DAVID = ("198.51.100.5", IPHONE)
CRAWLER = ("66.249.66.1", GOOGLEBOT)

Visitor = tuple[str, str]


def store(
    ingest: Any, slug: str, *clicks: tuple[str, Visitor] | tuple[str, Visitor, bool]
) -> None:
    """Clicks on `slug` at chosen times (ISO 8601) by visitors, the third item saying a scan."""
    for at, (ip, agent), *scan in clicks:
        ingest.click(slug, at, ip=ip, agent=agent, qr=bool(scan and scan[0]))


def report(client: FlaskClient, headers: dict[str, str], path: str, **params: Any) -> Any:
    response = client.get(f"/api/v1/reports/{path}", query_string=params, headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def summary(body: Any) -> list[tuple[str, int, float]]:
    return [(r["touchpoint"]["key"], r["clicks"], r["share"]) for r in body["rows"]]


# --- the touchpoint report ---------------------------------------------------------------------


@pytest.mark.usefixtures("journey")
def test_touchpoint_report_counts_human_clicks_scans_and_visitors(
    client: FlaskClient, analyst: dict[str, str]
) -> None:
    body = report(client, analyst, "touchpoints")
    rows = {r["touchpoint"]["key"]: r for r in body["rows"]}
    assert rows["store-flyer"] == {
        "touchpoint": {"key": "store-flyer", "name": "Store flyer", "channel": "physical"},
        "clicks": 3,
        "scans": 2,
        "visitors": 2,
        "links": 1,
        "share": 0.375,
        "previous_clicks": 0,
        "change": None,
        "last_click_at": rows["store-flyer"]["last_click_at"],
        "engagement_rate": 0.004,  # 2 visitors of 500 flyers
    }
    assert (rows["insta-bio"]["clicks"], rows["insta-bio"]["visitors"]) == (4, 4)
    assert rows["insta-bio"]["links"] == 2
    assert rows["insta-bio"]["engagement_rate"] is None
    last = datetime.fromisoformat(rows["store-flyer"]["last_click_at"])
    assert abs(last - utcnow()) < timedelta(minutes=1)
    assert rows["packaging"]["last_click_at"] is None
    assert rows["packaging"]["engagement_rate"] == 0.0


@pytest.mark.usefixtures("journey")
def test_most_engaged_first_with_shares_of_all_touchpoints(
    client: FlaskClient, analyst: dict[str, str]
) -> None:
    body = report(client, analyst, "touchpoints")
    assert summary(body) == [
        ("insta-bio", 4, 0.5),
        ("store-flyer", 3, 0.375),
        ("help-desk", 1, 0.125),
        ("packaging", 0, 0.0),
    ]
    assert body["order"] == "most"
    assert body["bots"] == "exclude"


@pytest.mark.usefixtures("journey")
def test_least_engaged_includes_touchpoints_without_clicks(
    client: FlaskClient, analyst: dict[str, str]
) -> None:
    body = report(client, analyst, "touchpoints", order="least")
    assert [key for key, _, _ in summary(body)] == [
        "packaging", "help-desk", "store-flyer", "insta-bio",
    ]
    assert body["rows"][0]["links"] == 1
    assert body["order"] == "least"


@pytest.mark.usefixtures("journey")
def test_bots_are_left_out_unless_included(client: FlaskClient, analyst: dict[str, str]) -> None:
    body = report(client, analyst, "touchpoints", bots="include")
    assert summary(body) == [
        ("insta-bio", 5, 0.4545),  # ties with store-flyer: more visitors
        ("store-flyer", 5, 0.4545),
        ("help-desk", 1, 0.0909),
        ("packaging", 0, 0.0),
    ]
    flyer = body["rows"][1]
    assert (flyer["scans"], flyer["visitors"]) == (2, 2)  # bots are no scans and no visitors
    assert body["bots"] == "include"


@pytest.mark.usefixtures("journey")
def test_limit_cuts_the_rows_but_not_the_shares(
    client: FlaskClient, analyst: dict[str, str]
) -> None:
    assert summary(report(client, analyst, "touchpoints", limit=2)) == [
        ("insta-bio", 4, 0.5),
        ("store-flyer", 3, 0.375),
    ]
    least = report(client, analyst, "touchpoints", order="least", limit=2)
    assert [key for key, _, _ in summary(least)] == ["packaging", "help-desk"]


@pytest.mark.usefixtures("journey")
def test_stage_filter_counts_clicks_at_that_stage_of_touchpoints_with_links_there(
    client: FlaskClient, analyst: dict[str, str]
) -> None:
    awareness = report(client, analyst, "touchpoints", stage="awareness")
    assert summary(awareness) == [("insta-bio", 3, 0.5), ("store-flyer", 3, 0.5)]
    assert [r["links"] for r in awareness["rows"]] == [1, 1]
    assert awareness["filters"]["stage"] == "awareness"
    after = report(client, analyst, "touchpoints", stage="post-purchase", order="least")
    assert summary(after) == [("packaging", 0, 0.0)]


@pytest.mark.usefixtures("journey")
def test_channel_filter_keeps_touchpoints_of_that_channel(
    client: FlaskClient, analyst: dict[str, str]
) -> None:
    body = report(client, analyst, "touchpoints", channel="physical")
    assert summary(body) == [("store-flyer", 3, 1.0), ("packaging", 0, 0.0)]


@pytest.mark.usefixtures("journey")
def test_campaign_filter_counts_only_the_campaigns_links(
    client: FlaskClient, analyst: dict[str, str]
) -> None:
    body = report(client, analyst, "touchpoints", campaign="spring-launch")
    assert summary(body) == [("store-flyer", 3, 0.75), ("insta-bio", 1, 0.25)]
    assert [r["links"] for r in body["rows"]] == [1, 1]
    assert report(client, analyst, "touchpoints", campaign="no-such-campaign")["rows"] == []


def test_previous_period_and_change_over_chosen_dates(
    client: FlaskClient,
    analyst: dict[str, str],
    link: dict[str, Any],
    shop: Any,
    ingest: Any,
) -> None:
    shop.touchpoint("insta-bio", "digital")
    store(
        ingest,
        "spring",
        ("2025-12-01T23:59:59+00:00", ANNA),  # before the previous period
        ("2025-12-02T00:00:00+00:00", ANNA),  # first hour of the previous period
        ("2025-12-15T12:00:00+00:00", BEN),
        ("2025-12-20T12:00:00+00:00", CRAWLER),
        ("2026-01-10T09:15:00+00:00", ANNA),
        ("2026-01-20T14:42:30+00:00", BEN, True),
        ("2026-01-25T08:00:00+00:00", CRAWLER),
        ("2026-01-30T23:59:59+00:00", ANNA),  # `to` is a date: its whole day is in
        ("2026-01-31T00:00:00+00:00", CLARA),  # the day after is out
    )
    body = report(client, analyst, "touchpoints", **{"from": "2026-01-01", "to": "2026-01-30"})
    assert (body["from"], body["to"]) == ("2026-01-01T00:00:00+00:00", "2026-01-31T00:00:00+00:00")
    flyer, bio = body["rows"]
    assert flyer["clicks"] == 3
    assert flyer["scans"] == 1
    assert flyer["visitors"] == 3  # Anna came back on another day: a visitor per link per day
    assert flyer["previous_clicks"] == 2
    assert flyer["change"] == 0.5
    assert flyer["last_click_at"] == "2026-01-30T23:59:59+00:00"
    assert flyer["engagement_rate"] == 0.006
    assert (bio["clicks"], bio["previous_clicks"], bio["change"]) == (0, 0, None)

    with_bots = report(
        client, analyst, "touchpoints", bots="include", **{"from": "2026-01-01", "to": "2026-01-30"}
    )
    flyer = with_bots["rows"][0]
    assert (flyer["clicks"], flyer["previous_clicks"], flyer["change"]) == (4, 3, 0.3333)
    assert flyer["last_click_at"] == "2026-01-30T23:59:59+00:00"  # humans only


def test_datetime_bounds_are_whole_hours(
    client: FlaskClient, analyst: dict[str, str], link: dict[str, Any], ingest: Any
) -> None:
    store(
        ingest,
        "spring",
        ("2026-03-01T09:59:00+00:00", ANNA),
        ("2026-03-01T10:05:00+00:00", BEN),
        ("2026-03-01T11:59:00+00:00", CLARA),
        ("2026-03-01T12:00:00+00:00", DAVID),
    )
    period = {"from": "2026-03-01T10:30", "to": "2026-03-01T12:30"}
    body = report(client, analyst, "touchpoints", **period)
    assert (body["from"], body["to"]) == ("2026-03-01T10:00:00+00:00", "2026-03-01T12:00:00+00:00")
    assert body["rows"][0]["clicks"] == 2
    assert body["rows"][0]["previous_clicks"] == 1  # 08:00 to 10:00


# --- the stage report --------------------------------------------------------------------------


@pytest.mark.usefixtures("journey")
def test_stage_report_follows_the_journey_with_the_drop_to_the_next_stage(
    client: FlaskClient, analyst: dict[str, str]
) -> None:
    body = report(client, analyst, "stages")
    assert body["rows"] == [
        {"stage": {"key": "awareness", "name": "Awareness", "position": 1},
         "clicks": 6, "scans": 2, "visitors": 5, "touchpoints": 2, "drop_to_next": 0.8},
        {"stage": {"key": "consideration", "name": "Consideration", "position": 2},
         "clicks": 1, "scans": 0, "visitors": 1, "touchpoints": 1, "drop_to_next": 0.0},
        {"stage": {"key": "decision", "name": "Decision", "position": 3},
         "clicks": 1, "scans": 0, "visitors": 1, "touchpoints": 1, "drop_to_next": 1.0},
        {"stage": {"key": "post-purchase", "name": "Post purchase", "position": 4},
         "clicks": 0, "scans": 0, "visitors": 0, "touchpoints": 0, "drop_to_next": None},
        {"stage": {"key": "support", "name": "Support", "position": 5},
         "clicks": 0, "scans": 0, "visitors": 0, "touchpoints": 0, "drop_to_next": None},
    ]
    with_bots = report(client, analyst, "stages", bots="include")
    assert [r["clicks"] for r in with_bots["rows"]] == [9, 1, 1, 0, 0]
    physical = report(client, analyst, "stages", channel="physical")
    assert [r["clicks"] for r in physical["rows"]] == [3, 0, 0, 0, 0]


def test_drop_to_next_is_negative_when_the_next_stage_has_more_visitors(
    client: FlaskClient, analyst: dict[str, str], link: dict[str, Any], shop: Any
) -> None:
    shop.link("compare", "store-flyer", "consideration")
    shop.visit("spring", ANNA)
    shop.visit("compare", ANNA)
    shop.visit("compare", BEN)
    rows = report(client, analyst, "stages")["rows"]
    assert [(r["visitors"], r["drop_to_next"]) for r in rows[:3]] == [
        (1, -1.0),
        (2, 1.0),
        (0, None),
    ]


# --- CSV -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("journey")
def test_touchpoint_csv_matches_the_json(client: FlaskClient, analyst: dict[str, str]) -> None:
    today = datetime.now(UTC).date()
    period = {"from": str(today - timedelta(days=29)), "to": str(today)}
    response = client.get(
        "/api/v1/reports/touchpoints", query_string={**period, "format": "csv"}, headers=analyst
    )
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="touchpoints-{period["from"]}-{period["to"]}.csv"'
    )
    parsed = list(csv.DictReader(io.StringIO(response.text)))
    rows = report(client, analyst, "touchpoints", **period)["rows"]
    assert len(parsed) == len(rows) == 4
    for line, row in zip(parsed, rows, strict=True):
        assert line["touchpoint_key"] == row["touchpoint"]["key"]
        assert line["touchpoint_name"] == row["touchpoint"]["name"]
        assert line["channel"] == row["touchpoint"]["channel"]
        for name in ("clicks", "scans", "visitors", "links", "previous_clicks"):
            assert int(line[name]) == row[name]
        for name in ("share", "change", "engagement_rate"):
            assert (float(line[name]) if line[name] else None) == row[name]
        assert (line["last_click_at"] or None) == row["last_click_at"]


@pytest.mark.usefixtures("journey")
def test_stage_csv_matches_the_json(client: FlaskClient, analyst: dict[str, str]) -> None:
    response = client.get("/api/v1/reports/stages?format=csv", headers=analyst)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith('attachment; filename="stages-')
    parsed = list(csv.DictReader(io.StringIO(response.text)))
    rows = report(client, analyst, "stages")["rows"]
    assert [
        (p["stage_key"], p["stage_name"], int(p["position"]), int(p["clicks"]), int(p["scans"]),
         int(p["visitors"]), int(p["touchpoints"]),
         float(p["drop_to_next"]) if p["drop_to_next"] else None)
        for p in parsed
    ] == [
        (r["stage"]["key"], r["stage"]["name"], r["stage"]["position"], r["clicks"], r["scans"],
         r["visitors"], r["touchpoints"], r["drop_to_next"])
        for r in rows
    ]


def test_csv_defuses_names_a_spreadsheet_would_run(
    client: FlaskClient, analyst: dict[str, str], shop: Any
) -> None:
    names = ['=HYPERLINK("http://evil.example")', "+1", "-1", "@SUM(A1)", "Plain name"]
    for i, name in enumerate(names):
        shop.touchpoint(f"tp-{i}", "digital", name=name)
    response = client.get(
        "/api/v1/reports/touchpoints?format=csv&order=least", headers=analyst
    )
    lines = csv.DictReader(io.StringIO(response.text))
    parsed = {line["touchpoint_key"]: line["touchpoint_name"] for line in lines}
    assert parsed == {
        "tp-0": '\'=HYPERLINK("http://evil.example")',
        "tp-1": "'+1",
        "tp-2": "'-1",
        "tp-3": "'@SUM(A1)",
        "tp-4": "Plain name",
    }


# --- access and input ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["touchpoints", "stages"])
def test_reports_need_an_analyst_key_or_better(
    client: FlaskClient, headers: Callable[[str], dict[str, str]], path: str
) -> None:
    assert client.get(f"/api/v1/reports/{path}").status_code == 401
    for role in ("analyst", "marketer", "admin"):
        response = client.get(f"/api/v1/reports/{path}", headers=headers(role))
        assert response.status_code == 200, role


BAD_TOUCHPOINT_QUERIES = [
    ("from=garbage", "from"),
    ("from=2026-02-01&to=2026-01-01", "from"),
    ("from=2026-01-01T10:00&to=2026-01-01T10:59", "from"),
    ("from=2024-01-01&to=2026-01-01", "to"),
    ("to=2026-02-30", "to"),
    ("order=sideways", "order"),
    ("limit=0", "limit"),
    ("limit=1001", "limit"),
    ("limit=ten", "limit"),
    ("bots=maybe", "bots"),
    ("channel=space", "channel"),
    ("stage=nowhere", "stage"),
    ("format=xml", "format"),
]


def test_bad_parameters_are_400_naming_the_parameter(
    client: FlaskClient, analyst: dict[str, str]
) -> None:
    cases = [("touchpoints", q, name) for q, name in BAD_TOUCHPOINT_QUERIES] + [
        ("stages", "format=xml", "format"),
        ("stages", "from=garbage", "from"),
        ("stages", "stage=awareness", "stage"),
    ]
    for path, query, name in cases:
        response = client.get(f"/api/v1/reports/{path}?{query}", headers=analyst)
        assert response.status_code == 400, (path, query)
        error = response.json["error"]  # type: ignore[index]
        assert error["code"] == "invalid_parameter", (path, query)
        assert error["details"] == {"parameter": name}, (path, query)
        assert error["message"].startswith(f"{name}: "), (path, query)
        if name == "limit":
            assert error["message"] == "limit: must be a whole number from 1 to 1000", query


# --- parsing, without a database -----------------------------------------------------------------

NOW = datetime(2026, 11, 23, 10, 15, 42, tzinfo=UTC)


def test_default_period_is_the_last_30_days_to_the_end_of_this_hour() -> None:
    query = ReportQuery.from_args({}, now=NOW)
    assert query == ReportQuery(
        start=datetime(2026, 10, 24, 11, tzinfo=UTC), end=datetime(2026, 11, 23, 11, tzinfo=UTC)
    )
    assert query.previous_start == datetime(2026, 9, 24, 11, tzinfo=UTC)


@pytest.mark.parametrize(
    ("args", "start", "end"),
    [
        ({"from": "2026-11-01", "to": "2026-11-01"}, datetime(2026, 11, 1), datetime(2026, 11, 2)),
        ({"from": "2026-11-01T08:45"}, datetime(2026, 11, 1, 8), datetime(2026, 11, 23, 11)),
        ({"to": "2026-11-10"}, datetime(2026, 10, 12), datetime(2026, 11, 11)),
        ({"from": "2026-11-01T10:30:00+02:00", "to": "2026-11-02T00:00Z"},
         datetime(2026, 11, 1, 8), datetime(2026, 11, 2)),
        ({"from": " ", "to": ""}, datetime(2026, 10, 24, 11), datetime(2026, 11, 23, 11)),
    ],
)
def test_from_and_to_accept_dates_and_times(
    args: dict[str, str], start: datetime, end: datetime
) -> None:
    query = ReportQuery.from_args(args, now=NOW)
    assert (query.start, query.end) == (start.replace(tzinfo=UTC), end.replace(tzinfo=UTC))


def test_filters_are_parsed_with_their_defaults() -> None:
    query = ReportQuery.from_args(
        {"stage": "awareness", "channel": "physical", "campaign": "spring", "bots": "include"},
        now=NOW,
    )
    assert (query.stage, query.channel, query.campaign, query.bots) == (
        "awareness", "physical", "spring", True,
    )
    assert ReportQuery.from_args({}, now=NOW).bots is False
    assert parse_order({}) == "most"
    assert parse_order({"order": "least"}) == "least"
    assert ReportRequest.from_args({}, now=NOW).limit == DEFAULT_LIMIT == 50
    assert ReportRequest.from_args({"limit": "1000"}, now=NOW).limit == MAX_LIMIT == 1000


def test_a_period_of_400_days_is_the_longest() -> None:
    start = date(2025, 1, 1)
    ReportQuery.from_args({"from": str(start), "to": str(start + timedelta(days=399))}, now=NOW)
    with pytest.raises(InvalidParameterError) as raised:
        ReportQuery.from_args({"from": str(start), "to": str(start + timedelta(days=400))}, now=NOW)
    assert raised.value.name == "to"
