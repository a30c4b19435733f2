"""Touchpoint and stage reports through the real path: redirects → clicks → rollups → API.

The `journey` (tests/analytics/conftest.py) is made now, so the default window (the 30 days up to
the end of this hour) holds all of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from analytics.reports.api import TouchpointReportArgs
from analytics.reports.breakdowns import ALL_DIMENSIONS
from analytics.reports.conversions import OUTCOME_COLUMNS
from analytics.reports.drilldown import (
    CampaignRow,
    CampaignRowOut,
    LinkRef,
    LinkRefOut,
    LinkRow,
    LinkRowOut,
)
from analytics.reports.engagement import (
    TouchpointRow,
    TouchpointRowOut,
    most_and_least,
    touchpoint_report,
)
from analytics.reports.feedback import Comment, CommentOut, FeedbackFigures, FeedbackFiguresOut
from analytics.reports.journeys import FunnelRow, FunnelRowOut, NextRow, NextRowOut
from analytics.reports.query import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    ReportArgs,
    ReportQuery,
)
from analytics.reports.rates import rate
from analytics.reports.refs import StageRef, TouchpointRef
from analytics.reports.render import StageRefOut, TouchpointRefOut
from analytics.reports.stages import StageRow, StageRowOut
from analytics.reports.timeseries import GROUPS
from shortener.db import utcnow
from shortener.errors import InvalidParameterError
from shortener.runtime import runtime
from shortener.schemas import validate_query
from tests.documented import Documented


def summary(body: Any) -> list[tuple[str, int, float]]:
    return [(r["touchpoint"]["key"], r["clicks"], r["share"]) for r in body["rows"]]


def by_key(body: Any) -> dict[str, Any]:
    return {r["touchpoint"]["key"]: r for r in body["rows"]}


# --- the touchpoint report ---------------------------------------------------------------------


@pytest.mark.usefixtures("journey")
def test_touchpoint_rows_carry_human_and_bot_clicks_scans_visitors_and_reach(
    reports: Any,
) -> None:
    body = reports.get("touchpoints")
    rows = by_key(body)
    flyer = rows["store-flyer"]
    assert flyer == {
        "touchpoint": {"key": "store-flyer", "name": "Store flyer", "channel": "physical"},
        "archived": False,
        "clicks": 3,  # human clicks, scans included
        "human_clicks": 3,
        "bot_clicks": 2,  # the two Googlebot visits
        "scanner_clicks": 0,
        "scans": 2,
        "scan_share": 0.6667,
        "scan_share_low": flyer["scan_share_low"],  # intervals: see test_intervals.py
        "scan_share_high": flyer["scan_share_high"],
        "visitors": 2,
        "links": 1,
        "share": 0.3333,  # 3 of the 9 human clicks of every touchpoint listed
        "previous_clicks": 0,
        "previous_human_clicks": 0,
        "change": None,
        "comparable": False,
        "last_click_at": flyer["last_click_at"],
        "reached": 500,  # the exposure given when the touchpoint was made
        "per_1k_reached": 4.0,  # 2 visitors of 500 people reached
        "per_1k_reached_low": flyer["per_1k_reached_low"],
        "per_1k_reached_high": flyer["per_1k_reached_high"],
        # Journeys are off: no journey touched anything, none moved on.
        "journeys": 0,
        "moved_on": 0,
        "moved_on_rate": None,
        "moved_on_low": None,
        "moved_on_high": None,
        # No shop posted a conversion: none of its 2 visitors converted.
        "conversions": {},
        "revenue": {},
        "conversion_rate": 0.0,
        "conversion_rate_low": 0.0,
        "conversion_rate_high": flyer["conversion_rate_high"],
    }
    last = datetime.fromisoformat(flyer["last_click_at"])
    assert abs(last - utcnow()) < timedelta(minutes=1)
    bio = rows["insta-bio"]
    assert (bio["clicks"], bio["human_clicks"], bio["bot_clicks"], bio["visitors"]) == (4, 4, 1, 4)
    assert bio["links"] == 2
    assert (bio["reached"], bio["per_1k_reached"], bio["per_1k_reached_low"]) == (None,) * 3
    assert (bio["scans"], bio["scan_share"]) == (0, 0.0)
    packaging = rows["packaging"]
    assert (packaging["clicks"], packaging["last_click_at"], packaging["scan_share"]) == (
        0, None, None  # no human click: no share of scans to give
    )
    assert (packaging["reached"], packaging["per_1k_reached"]) == (10_000, 0.0)
    assert (body["order"], body["by"], body["bots"], body["empty"]) == (
        "most", "clicks", "exclude", False
    )


@pytest.mark.usefixtures("journey")
def test_an_archived_touchpoint_keeps_its_clicks_and_says_archived(reports: Any) -> None:
    poster = by_key(reports.get("touchpoints"))["old-poster"]

    assert (poster["archived"], poster["clicks"], poster["visitors"], poster["links"]) == (
        True, 1, 1, 1
    )


@pytest.mark.usefixtures("journey")
def test_most_engaged_first_with_shares_of_all_touchpoints(reports: Any) -> None:
    assert summary(reports.get("touchpoints")) == [
        ("insta-bio", 4, 0.4444),
        ("store-flyer", 3, 0.3333),
        ("help-desk", 1, 0.1111),  # ties with old-poster: same visitors, then the key
        ("old-poster", 1, 0.1111),
        ("packaging", 0, 0.0),
    ]


@pytest.mark.usefixtures("journey")
def test_least_engaged_includes_touchpoints_without_clicks(reports: Any) -> None:
    body = reports.get("touchpoints", order="least")
    assert [key for key, _, _ in summary(body)] == [
        "packaging", "help-desk", "old-poster", "store-flyer", "insta-bio",
    ]
    assert body["rows"][0]["links"] == 1
    assert (body["order"], body["empty"]) == ("least", False)


@pytest.mark.usefixtures("journey")
@pytest.mark.parametrize(
    "args", [{}, {"bots": "include"}, {"stage": "awareness"}, {"channel": "physical"}]
)
def test_most_and_least_in_one_reading_are_the_two_rankings(
    app: Flask, args: dict[str, str]
) -> None:
    """The dashboard's tables: the touchpoint report ranked both ways by one statement."""
    query = ReportQuery.from_args(args, now=utcnow())
    with runtime(app).sessions() as session:
        for limit in (1, 2, 3, 5, DEFAULT_LIMIT):
            most, least = most_and_least(session, query, limit=limit)
            for found, order in ((most, "most"), (least, "least")):
                alone = touchpoint_report(session, query, order=order, limit=limit)
                assert found.rows == alone.rows, (order, limit)
                assert (found.order, found.listed, found.empty) == (
                    order, alone.listed, alone.empty
                )
        if not args:  # the journey's human clicks: insta-bio 4, store-flyer 3, packaging none
            most, least = most_and_least(session, query, limit=2)
            assert [(r.touchpoint.key, r.clicks) for r in most.rows] == [
                ("insta-bio", 4), ("store-flyer", 3)
            ]
            assert (least.rows[0].touchpoint.key, least.rows[0].clicks) == ("packaging", 0)


@pytest.mark.usefixtures("journey")
def test_bots_count_in_clicks_only_when_included_and_never_as_human(reports: Any) -> None:
    body = reports.get("touchpoints", bots="include")
    assert summary(body) == [
        ("insta-bio", 5, 0.4167),  # ties with store-flyer: more visitors
        ("store-flyer", 5, 0.4167),
        ("help-desk", 1, 0.0833),
        ("old-poster", 1, 0.0833),
        ("packaging", 0, 0.0),
    ]
    flyer = by_key(body)["store-flyer"]
    assert (flyer["human_clicks"], flyer["bot_clicks"]) == (3, 2)
    assert (flyer["scans"], flyer["visitors"]) == (2, 2)  # bots are no scans and no visitors
    assert flyer["scan_share"] == 0.6667  # of the human clicks, whatever bots= says
    assert body["bots"] == "include"
    without = by_key(reports.get("touchpoints", bots="exclude"))["store-flyer"]
    assert (without["clicks"], without["human_clicks"], without["bot_clicks"]) == (3, 3, 2)


@pytest.mark.usefixtures("journey")
def test_limit_cuts_the_rows_but_not_the_shares(reports: Any) -> None:
    assert summary(reports.get("touchpoints", limit=2)) == [
        ("insta-bio", 4, 0.4444),
        ("store-flyer", 3, 0.3333),
    ]
    least = reports.get("touchpoints", order="least", limit=2)
    assert [key for key, _, _ in summary(least)] == ["packaging", "help-desk"]
    assert least["empty"] is False  # the window has clicks, if not on this page


@pytest.mark.usefixtures("journey")
def test_stage_filter_counts_clicks_at_that_stage_of_touchpoints_with_links_there(
    reports: Any,
) -> None:
    awareness = reports.get("touchpoints", stage="awareness")
    assert summary(awareness) == [
        ("insta-bio", 3, 0.4286), ("store-flyer", 3, 0.4286), ("old-poster", 1, 0.1429),
    ]
    assert [r["links"] for r in awareness["rows"]] == [1, 1, 1]
    assert awareness["filters"]["stage"] == "awareness"
    after = reports.get("touchpoints", stage="post-purchase", order="least")
    assert summary(after) == [("packaging", 0, 0.0)]


@pytest.mark.usefixtures("journey")
def test_channel_filter_keeps_touchpoints_of_that_channel(reports: Any) -> None:
    body = reports.get("touchpoints", channel="physical")
    assert summary(body) == [
        ("store-flyer", 3, 0.75), ("old-poster", 1, 0.25), ("packaging", 0, 0.0),
    ]


@pytest.mark.usefixtures("journey")
def test_campaign_filter_counts_only_the_campaigns_links(reports: Any) -> None:
    body = reports.get("touchpoints", campaign="spring-launch")
    assert summary(body) == [("store-flyer", 3, 0.75), ("insta-bio", 1, 0.25)]
    assert [r["links"] for r in body["rows"]] == [1, 1]
    nothing = reports.get("touchpoints", campaign="no-such-campaign")
    assert (nothing["rows"], nothing["empty"]) == ([], True)


def test_the_previous_window_over_chosen_dates(
    reports: Any, shop: Any, ingest: Any, people: Any
) -> None:
    made = "2025-11-01T00:00:00+00:00"
    shop.touchpoint("store-flyer", "physical", exposure=500, created_at=made)
    shop.touchpoint("insta-bio", "digital", created_at=made)
    shop.link("spring", "store-flyer", "awareness", created_at=made)
    ingest.visits(
        "spring",
        ("2025-12-01T23:59:59+00:00", people.anna),  # before the previous window
        ("2025-12-02T00:00:00+00:00", people.anna),  # its first hour
        ("2025-12-15T12:00:00+00:00", people.ben),
        ("2025-12-20T12:00:00+00:00", people.crawler),
        ("2026-01-10T09:15:00+00:00", people.anna),
        ("2026-01-20T14:42:30+00:00", people.ben, True),
        ("2026-01-25T08:00:00+00:00", people.crawler),
        ("2026-01-30T23:59:59+00:00", people.anna),  # `to` is a date: its whole day is in
        ("2026-01-31T00:00:00+00:00", people.clara),  # the day after is out
    )
    window = {"from": "2026-01-01", "to": "2026-01-30"}
    body = reports.get("touchpoints", **window)
    assert {k: body[k] for k in ("from", "to", "previous_from", "previous_to", "timezone")} == {
        "from": "2026-01-01T00:00:00+00:00",
        "to": "2026-01-31T00:00:00+00:00",
        "previous_from": "2025-12-02T00:00:00+00:00",  # as long as the window, just before it
        "previous_to": "2026-01-01T00:00:00+00:00",
        "timezone": "UTC",
    }
    flyer, bio = body["rows"]
    assert (flyer["clicks"], flyer["human_clicks"], flyer["bot_clicks"], flyer["scans"]) == (
        3, 3, 1, 1
    )
    assert flyer["visitors"] == 3  # Anna came back on another day: a visitor per link per day
    assert (flyer["previous_clicks"], flyer["previous_human_clicks"]) == (2, 2)
    assert (flyer["change"], flyer["comparable"]) == (None, False)  # too few clicks to compare
    assert flyer["last_click_at"] == "2026-01-30T23:59:59+00:00"
    assert flyer["per_1k_reached"] == 6.0  # 3 visitors of 500
    assert (bio["touchpoint"]["key"], bio["clicks"], bio["previous_clicks"]) == (
        "insta-bio", 0, 0
    )

    with_bots = reports.get("touchpoints", bots="include", **window)["rows"][0]
    assert (with_bots["clicks"], with_bots["previous_clicks"]) == (4, 3)
    assert (with_bots["human_clicks"], with_bots["previous_human_clicks"]) == (3, 2)
    assert with_bots["last_click_at"] == "2026-01-30T23:59:59+00:00"  # humans only


# --- journeys: which touchpoints move people on --------------------------------------------------


MOVED_ON = {  # journeys, moved on, rate
    "help-desk": (2, 2, 1.0), "store-flyer": (2, 1, 0.5), "insta-bio": (3, 1, 0.3333),
    "packaging": (1, 0, 0.0), "old-poster": (0, 0, None),
}


@pytest.mark.usefixtures("followed")
def test_touchpoint_rows_say_how_many_journeys_moved_on_with_an_interval(reports: Any) -> None:
    rows = by_key(reports.get("touchpoints"))

    for key, (journeys, moved, value) in MOVED_ON.items():
        row = rows[key]
        assert (row["journeys"], row["moved_on"], row["moved_on_rate"]) == (journeys, moved, value)
        assert (row["moved_on_low"], row["moved_on_high"]) == rate(moved, journeys)[1:], key
    assert rows["insta-bio"]["moved_on_low"] < 0.3333 < rows["insta-bio"]["moved_on_high"]
    assert rows["help-desk"]["moved_on_high"] == 1.0 and rows["help-desk"]["moved_on_low"] < 1
    # Clicks are what they were, the followed ones added.
    assert rows["store-flyer"]["human_clicks"] == 3 + 3


@pytest.mark.usefixtures("followed")
def test_ranked_by_moved_on_most_and_least_with_touchpoints_without_journeys_last(
    reports: Any,
) -> None:
    most = reports.get("touchpoints", by="moved_on")
    assert (most["by"], most["order"]) == ("moved_on", "most")
    assert [r["touchpoint"]["key"] for r in most["rows"]] == [
        "help-desk", "store-flyer", "insta-bio", "packaging", "old-poster",
    ]
    least = reports.get("touchpoints", order="least", by="moved_on")
    assert [r["touchpoint"]["key"] for r in least["rows"]] == [
        "packaging", "insta-bio", "store-flyer", "help-desk", "old-poster",  # where they stall
    ]
    two = reports.get("touchpoints", order="least", by="moved_on", limit=2)
    assert [r["touchpoint"]["key"] for r in two["rows"]] == ["packaging", "insta-bio"]
    assert reports.csv("touchpoints", by="moved_on")[0]["touchpoint_key"] == "help-desk"


@pytest.mark.usefixtures("journey")
def test_ranked_by_moved_on_without_journeys_the_rows_are_by_clicks_and_the_limit_holds(
    reports: Any,
) -> None:
    body = reports.get("touchpoints", by="moved_on", limit=2)

    assert summary(body) == [("insta-bio", 4, 0.4444), ("store-flyer", 3, 0.3333)]
    assert all(r["moved_on_rate"] is None for r in body["rows"])
    assert len(reports.get("touchpoints", by="moved_on", order="least", limit=3)["rows"]) == 3


# --- visitors by stage ---------------------------------------------------------------------------


@pytest.mark.usefixtures("journey")
def test_visitors_by_stage_follow_the_journey_with_the_next_stage_ratio(reports: Any) -> None:
    body = reports.get("stages")
    # What came of the clicks is tested with a shop of its own (test_conversions.py): none here.
    assert all(row["conversions"] == {} and row["revenue"] == {} for row in body["rows"])
    assert [without_outcomes(row) for row in body["rows"]] == [
        {"stage": {"key": "awareness", "name": "Awareness", "position": 1},
         "clicks": 7, "human_clicks": 7, "bot_clicks": 3, "scans": 2, "visitors": 6,
         "touchpoints": 3, "next_stage_ratio": 0.1667},  # 1 visitor at consideration over 6
        {"stage": {"key": "consideration", "name": "Consideration", "position": 2},
         "clicks": 1, "human_clicks": 1, "bot_clicks": 0, "scans": 0, "visitors": 1,
         "touchpoints": 1, "next_stage_ratio": 1.0},
        {"stage": {"key": "decision", "name": "Decision", "position": 3},
         "clicks": 1, "human_clicks": 1, "bot_clicks": 0, "scans": 0, "visitors": 1,
         "touchpoints": 1, "next_stage_ratio": 0.0},
        {"stage": {"key": "post-purchase", "name": "Post purchase", "position": 4},
         "clicks": 0, "human_clicks": 0, "bot_clicks": 0, "scans": 0, "visitors": 0,
         "touchpoints": 0, "next_stage_ratio": None},
        {"stage": {"key": "support", "name": "Support", "position": 5},
         "clicks": 0, "human_clicks": 0, "bot_clicks": 0, "scans": 0, "visitors": 0,
         "touchpoints": 0, "next_stage_ratio": None},
    ]
    assert all("drop_to_next" not in row for row in body["rows"])
    with_bots = reports.get("stages", bots="include")
    assert [r["clicks"] for r in with_bots["rows"]] == [10, 1, 1, 0, 0]
    assert [r["human_clicks"] for r in with_bots["rows"]] == [7, 1, 1, 0, 0]
    physical = reports.get("stages", channel="physical")
    assert [r["clicks"] for r in physical["rows"]] == [4, 0, 0, 0, 0]


def test_the_next_stage_ratio_is_a_ratio_of_totals_above_one_when_the_next_stage_has_more(
    reports: Any, shop: Any, link: dict[str, Any], people: Any
) -> None:
    shop.link("compare", "store-flyer", "consideration")
    shop.visit("spring", people.anna)
    shop.visit("compare", people.anna)
    shop.visit("compare", people.ben)
    rows = reports.get("stages")["rows"]
    assert [(r["visitors"], r["next_stage_ratio"]) for r in rows[:3]] == [
        (1, 2.0),  # two visitors at consideration for one at awareness: not people moving on
        (2, 0.0),
        (0, None),
    ]


# --- CSV -------------------------------------------------------------------------------------


def as_csv(row: dict[str, Any], nested: str, header: list[str]) -> dict[str, str]:
    """A JSON row as the CSV writes it: the nested reference spread out (`touchpoint_key`, or
    its own name where that is the column's), None as ""."""
    values = {k: v for k, v in row.items() if k != nested}
    for name, value in row[nested].items():
        values[f"{nested}_{name}" if f"{nested}_{name}" in header else name] = value
    assert sorted(values) == sorted(header)
    return {name: _cell(values[name]) for name in header}


def _cell(value: Any) -> str:
    if isinstance(value, dict):  # conversions by event, revenue by currency
        return "; ".join(f"{key} {n}" for key, n in value.items())
    return "" if value is None else str(value)


def without_outcomes(row: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name not in OUTCOME_COLUMNS}


@pytest.mark.usefixtures("journey")
def test_touchpoint_csv_matches_the_json_column_for_column(reports: Any) -> None:
    today = datetime.now(UTC).date()
    window = {"from": str(today - timedelta(days=29)), "to": str(today)}
    text = reports.csv_text("touchpoints", **window)
    header, *lines = [line.split(",") for line in text.splitlines()]
    assert header == [
        "touchpoint_key", "touchpoint_name", "channel", "archived", "clicks", "human_clicks",
        "bot_clicks", "scanner_clicks", "scans", "scan_share", "scan_share_low", "scan_share_high",
        "visitors", "links", "share", "previous_clicks", "previous_human_clicks", "change",
        "comparable", "last_click_at", "reached", "per_1k_reached", "per_1k_reached_low",
        "per_1k_reached_high", "journeys", "moved_on", "moved_on_rate", "moved_on_low",
        "moved_on_high", "conversions", "revenue", "conversion_rate", "conversion_rate_low",
        "conversion_rate_high",
    ]
    rows = reports.get("touchpoints", **window)["rows"]
    assert len(lines) == len(rows) == 5
    parsed = reports.csv("touchpoints", **window)
    for line, row in zip(parsed, rows, strict=True):
        assert line == as_csv(row, "touchpoint", header)


@pytest.mark.usefixtures("journey")
def test_stage_csv_matches_the_json(reports: Any) -> None:
    parsed = reports.csv("stages")
    assert list(parsed[0]) == [
        "stage_key", "stage_name", "position", "clicks", "human_clicks", "bot_clicks", "scans",
        "visitors", "touchpoints", "next_stage_ratio", "conversions", "revenue",
        "conversion_rate", "conversion_rate_low", "conversion_rate_high",
    ]
    rows = reports.get("stages")["rows"]
    assert parsed == [as_csv(r, "stage", list(parsed[0])) for r in rows]


def test_csv_defuses_names_a_spreadsheet_would_run(reports: Any, shop: Any) -> None:
    names = ['=HYPERLINK("http://evil.example")', "+1", "-1", "@SUM(A1)", "Plain name"]
    for i, name in enumerate(names):
        shop.touchpoint(f"tp-{i}", "digital", name=name)
    parsed = {
        line["touchpoint_key"]: line["touchpoint_name"]
        for line in reports.csv("touchpoints", order="least")
    }
    assert parsed == {
        "tp-0": '\'=HYPERLINK("http://evil.example")',
        "tp-1": "'+1",
        "tp-2": "'-1",
        "tp-3": "'@SUM(A1)",
        "tp-4": "Plain name",
    }


# --- access and input ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["touchpoints", "stages", "campaigns", "funnel", "paths"])
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
    ("from=2026-01-01T10:00&to=2026-01-01T10:00", "from"),
    ("from=2024-01-01&to=2026-01-01", "to"),
    ("to=2026-02-30", "to"),
    ("order=sideways", "order"),
    ("by=visitors", "by"),
    ("limit=0", "limit"),
    ("limit=1001", "limit"),
    ("limit=ten", "limit"),
    ("bots=maybe", "bots"),
    ("channel=space", "channel"),
    ("stage=nowhere", "stage"),
    ("format=xml", "format"),
]


def test_bad_parameters_are_400_naming_the_parameter(reports: Any) -> None:
    cases = [("touchpoints", q, name) for q, name in BAD_TOUCHPOINT_QUERIES] + [
        ("stages", "format=xml", "format"),
        ("stages", "from=garbage", "from"),
        ("stages", "stage=awareness", "stage"),
    ]
    for path, query, name in cases:
        error = reports.error(f"{path}?{query}")
        assert error["code"] == "invalid_parameter", (path, query)
        assert error["details"] == {"parameter": name}, (path, query)
        assert error["message"].startswith(f"{name}: "), (path, query)
        if name == "limit":
            assert error["message"] == "limit: must be a whole number from 1 to 1000", query
        if name == "by":
            assert error["message"] == (
                "by: must be one of 'clicks', 'per_1k_reached' or 'moved_on'"
            )


@pytest.fixture
def report_paths(link: dict[str, Any], people: Any, shop: Any) -> dict[str, str]:
    """Every report endpoint, with a click behind it so that each has something to answer."""
    shop.visit("spring", people.anna)
    return {
        "touchpoints": "touchpoints",
        "stages": "stages",
        "timeseries": "timeseries",
        "breakdown": "breakdown?dimension=device",
        "campaigns": "campaigns",
        "touchpoint": "touchpoints/store-flyer",
        "link": f"links/{link['id']}",
        "campaign": "campaigns/spring-launch",
        "funnel": "funnel?mode=open",
        "paths": "paths",
        "next": "next?touchpoint=store-flyer",
    }


UNKNOWN_PARAMETERS = [
    # (report, the parameter it does not take): misspelt filters and other reports' parameters
    ("touchpoints", "touchpoint=x"),
    ("touchpoints", "chanel=digital"),
    ("touchpoints", "interval=day"),
    ("stages", "limit=5"),
    ("stages", "order=least"),
    ("timeseries", "groupby=stage"),
    ("timeseries", "dimension=os"),
    ("breakdown", "link=17"),
    ("breakdown", "bot=include"),
    ("campaigns", "campaigns=spring"),
    ("campaigns", "by=clicks"),
    ("touchpoint", "form=2026-01-01"),
    ("touchpoint", "group_by=stage"),
    ("link", "limit=3"),
    ("link", "touchpoint=store-flyer"),
    ("campaign", "order=most"),
    ("campaign", "dimension=os"),
    ("funnel", "limit=5"),
    ("funnel", "by=moved_on"),
    ("funnel", "touchpoint=store-flyer"),
    ("paths", "mode=open"),
    ("paths", "order=least"),
    ("next", "limit=3"),
    ("next", "mode=closed"),
    ("next", "touchpoints=store-flyer"),
]


@pytest.mark.parametrize(("report", "extra"), UNKNOWN_PARAMETERS)
def test_an_unknown_parameter_is_a_400_naming_it_never_an_answer_for_everything(
    reports: Any, report_paths: dict[str, str], report: str, extra: str
) -> None:
    path = report_paths[report]
    reports.get(path)  # the report answers without it
    error = reports.error(f"{path}{'&' if '?' in path else '?'}{extra}")
    name = extra.split("=")[0]
    assert error["code"] == "invalid_parameter"
    assert error["details"] == {"parameter": name}
    assert error["message"].startswith(f"{name}: is not a known field (known: ")


def test_an_unknown_parameter_is_refused_in_csv_too(
    reports: Any, report_paths: dict[str, str]
) -> None:
    for path in report_paths.values():
        query = f"{path}{'&' if '?' in path else '?'}format=csv&touchpont=x"
        assert reports.error(query)["details"] == {"parameter": "touchpont"}, path


# --- what the OpenAPI document says --------------------------------------------------------------


@pytest.mark.usefixtures("followed")
def test_every_report_answers_as_the_document_says(
    app: Flask, client: FlaskClient, analyst: dict[str, str], link: dict[str, Any]
) -> None:
    reports = Documented(app, client, analyst)
    for by in ("clicks", "per_1k_reached", "moved_on"):
        assert reports.get("touchpoints", by=by)["rows"], by
    assert reports.get("touchpoints", order="least", bots="include")["rows"]
    assert reports.get("stages")["rows"]
    for group in GROUPS:
        assert reports.get("timeseries", group_by=group, interval="hour")["series"], group
    for dimension in ALL_DIMENSIONS:
        assert reports.get("breakdown", dimension=dimension)["rows"], dimension
    assert reports.get("campaigns")["rows"]
    for mode in ("closed", "open"):
        assert reports.get("funnel", mode=mode)["journeys"] == 4
    assert reports.get("paths")["rows"]
    assert reports.get("next", touchpoint="store-flyer")["rows"]
    assert reports.get("touchpoints/{key}", "touchpoints/store-flyer")["figures"]
    assert reports.get("touchpoints/{key}", "touchpoints/packaging", channel="digital")[
        "figures"] is None  # not listed in that window
    assert reports.get("links/{link_id}", f"links/{link['id']}")["figures"]["clicks"]
    assert reports.get("campaigns/{name}", "campaigns/spring-launch")["figures"]
    assert reports.get("touchpoints", format="csv").startswith("touchpoint_key,")
    assert reports.get("links/{link_id}", f"links/{link['id']}", format="csv", table="os")
    refused = [
        reports.get("touchpoints", limit="0"),
        reports.get("next", touchpoint="nowhere"),
        reports.get("touchpoints/{key}", "touchpoints/nowhere"),
        reports.get("campaigns/{name}", "campaigns/nothing/at/all", format="csv"),
    ]
    assert [error["error"]["code"] for error in refused] == [
        "invalid_parameter", "not_found", "not_found", "not_found",
    ]


def test_the_document_gives_each_report_the_parameters_it_takes(
    app: Flask, client: FlaskClient, analyst: dict[str, str]
) -> None:
    reports = Documented(app, client, analyst)
    window = {field.alias or name for name, field in ReportArgs.model_fields.items()}
    detail = {"interval", "table"}
    for path, own in {
        "touchpoints": {"order", "by", "limit"}, "stages": set(), "campaigns": set(),
        "timeseries": {"interval", "group_by"}, "breakdown": {"dimension", "limit"},
        "funnel": {"mode"}, "paths": {"limit"}, "next": {"touchpoint"}, "feedback": {"by"},
        "feedback/comments": {"touchpoint", "limit"}, "touchpoints/{key}": detail,
        "links/{link_id}": detail, "campaigns/{name}": detail,
    }.items():
        assert reports.parameters(path) == window | own, path


@pytest.mark.parametrize(("row", "shape"), [
    (TouchpointRow, TouchpointRowOut), (StageRow, StageRowOut), (LinkRow, LinkRowOut),
    (CampaignRow, CampaignRowOut), (LinkRef, LinkRefOut), (TouchpointRef, TouchpointRefOut),
    (StageRef, StageRefOut), (FeedbackFigures, FeedbackFiguresOut), (Comment, CommentOut),
    (FunnelRow, FunnelRowOut), (NextRow, NextRowOut),
])
def test_each_row_shape_names_the_fields_of_its_row(row: type, shape: type) -> None:
    """Rows become JSON field by field (`render.as_json`): their shapes must keep up."""
    assert list(shape.__annotations__) == [f.name for f in fields(row)]


# --- parsing, without a database -----------------------------------------------------------------

NOW = datetime(2026, 11, 23, 10, 15, 42, tzinfo=UTC)


def test_default_window_is_the_last_30_days_to_the_end_of_this_hour() -> None:
    query = ReportQuery.from_args({}, now=NOW)
    assert query == ReportQuery(
        start=datetime(2026, 10, 24, 11, tzinfo=UTC), end=datetime(2026, 11, 23, 11, tzinfo=UTC)
    )
    assert query.previous_start == datetime(2026, 9, 24, 11, tzinfo=UTC)
    assert query.previous_end == query.start


@pytest.mark.parametrize(
    ("args", "start", "end"),
    [
        ({"from": "2026-11-01", "to": "2026-11-01"}, datetime(2026, 11, 1), datetime(2026, 11, 2)),
        ({"from": "2026-11-01T08:00"}, datetime(2026, 11, 1, 8), datetime(2026, 11, 23, 11)),
        ({"to": "2026-11-10"}, datetime(2026, 10, 12), datetime(2026, 11, 11)),
        ({"from": "2026-11-01T10:00:00+02:00", "to": "2026-11-02T00:00Z"},
         datetime(2026, 11, 1, 8), datetime(2026, 11, 2)),
        ({"from": " ", "to": ""}, datetime(2026, 10, 24, 11), datetime(2026, 11, 23, 11)),
    ],
)
def test_from_and_to_accept_dates_and_whole_hours(
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
    assert validate_query(TouchpointReportArgs, {}).order == "most"
    assert validate_query(TouchpointReportArgs, {"order": "least"}).order == "least"
    assert validate_query(TouchpointReportArgs, {}).limit == DEFAULT_LIMIT == 50
    assert validate_query(TouchpointReportArgs, {"limit": " 1000 "}).limit == MAX_LIMIT


# Python's int() takes the first two (full-width digits, here written as escapes).
@pytest.mark.parametrize("raw", ["1_000", "\uff11\uff10", "1e3", "-5", "5.0", "0001000000000"])
def test_a_limit_is_plain_digits(raw: str) -> None:
    with pytest.raises(InvalidParameterError) as raised:
        validate_query(TouchpointReportArgs, {"limit": raw})
    assert raised.value.message == "limit: must be a whole number from 1 to 1000"


def test_the_window_of_a_query_string_leaves_the_other_parameters_to_the_caller() -> None:
    asked = {"from": "2026-11-01", "range": "custom", "interval": "hour", "format": "xml"}
    assert ReportQuery.from_args(asked, now=NOW) == ReportQuery.from_args(
        {"from": "2026-11-01"}, now=NOW
    )


def test_a_window_of_400_days_is_the_longest() -> None:
    start = date(2025, 1, 1)
    ReportQuery.from_args({"from": str(start), "to": str(start + timedelta(days=399))}, now=NOW)
    with pytest.raises(InvalidParameterError) as raised:
        ReportQuery.from_args({"from": str(start), "to": str(start + timedelta(days=400))}, now=NOW)
    assert raised.value.name == "to"
