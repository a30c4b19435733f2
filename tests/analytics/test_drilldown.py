"""Drill-down through the reports API: one touchpoint, one link or one campaign with the figures
of the window and the one before, its links, its clicks over time and where they came from; and
the campaign report. Every figure is checked against the clicks the test stored, JSON and CSV."""

from __future__ import annotations

from typing import Any

import pytest

from analytics.reports.conversions import OUTCOME_COLUMNS
from tests.user_agents import DESKTOP, GOOGLEBOT, IPHONE

MADE = "2026-01-05T00:00:00+00:00"
WEEK = {"from": "2026-03-02", "to": "2026-03-08"}  # compared with 23 February to 1 March
GB = "81.130.4.5"  # the bundled country data places it in Great Britain
FR = "90.12.34.56"  # and this one in France


@pytest.fixture
def week(shop: Any, ingest: Any) -> dict[str, int]:
    """The ids of the links below; clicks in the week of 2 March and one before it.

    flyer (physical)  spring   awareness      spring-launch  Mar 3 10:15 FR via m.facebook.com,
                                                             Mar 3 10:40 GB scan via l.facebook.com,
                                                             Mar 5 Googlebot, Mar 6 14:20 GB via
                                                             google.com; Feb 26 FR (previous)
                      compare  consideration  spring-launch  Mar 4 desktop in FR
                      plain    decision                      Mar 7 GB
    bio (digital)     offer    decision       spring-launch  Mar 4 FR via lm.facebook.com
                      summer   awareness      summer-sale    Mar 8 GB
    """
    shop.touchpoint("flyer", "physical", name="Store flyer", kind="print", created_at=MADE)
    shop.touchpoint("bio", "digital", name="Instagram bio", created_at=MADE)
    links = {
        slug: shop.link(slug, touchpoint, stage, campaign, created_at=MADE)["id"]
        for slug, touchpoint, stage, campaign in [
            ("spring", "flyer", "awareness", "spring-launch"),
            ("compare", "flyer", "consideration", "spring-launch"),
            ("plain", "flyer", "decision", None),
            ("offer", "bio", "decision", "spring-launch"),
            ("summer", "bio", "awareness", "summer-sale"),
        ]
    }
    click = ingest.click
    click("spring", "2026-03-03T10:15:00+00:00", ip=FR, agent=IPHONE,
          referrer="https://m.facebook.com/story.php?id=1")
    click("spring", "2026-03-03T10:40:00+00:00", ip=GB, agent=IPHONE, qr=True,
          referrer="https://l.facebook.com/l.php?u=x")
    click("spring", "2026-03-05T08:00:00+00:00", ip="66.249.66.1", agent=GOOGLEBOT)
    click("spring", "2026-03-06T14:20:00+00:00", ip=GB, agent=DESKTOP,
          referrer="https://www.google.com/search?q=flyer")
    click("spring", "2026-02-26T12:00:00+00:00", ip=FR, agent=IPHONE)
    click("compare", "2026-03-04T09:00:00+00:00", ip=FR, agent=DESKTOP)
    click("plain", "2026-03-07T18:00:00+00:00", ip=GB, agent=IPHONE)
    click("offer", "2026-03-04T20:00:00+00:00", ip=FR, agent=IPHONE,
          referrer="https://lm.facebook.com/l.php")
    click("summer", "2026-03-08T23:00:00+00:00", ip=GB, agent=IPHONE)
    return links


def counts(rows: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(r["value"], r["label"], r["clicks"]) for r in rows]


# --- a touchpoint ---------------------------------------------------------------------------------


def test_a_touchpoints_drill_down_has_its_figures_links_series_and_sources(
    reports: Any, week: dict[str, int]
) -> None:
    body = reports.get("touchpoints/flyer", **WEEK)

    assert (body["from"], body["to"], body["previous_from"], body["previous_to"]) == (
        "2026-03-02T00:00:00+00:00", "2026-03-09T00:00:00+00:00",
        "2026-02-23T00:00:00+00:00", "2026-03-02T00:00:00+00:00",
    )
    assert body["touchpoint"] == {
        "key": "flyer", "name": "Store flyer", "channel": "physical", "kind": "print",
        "exposure": None, "archived": False,
    }
    figures = body["figures"]
    assert {k: figures[k] for k in (
        "clicks", "human_clicks", "bot_clicks", "scans", "visitors", "links", "previous_clicks",
        "change", "comparable", "last_click_at",
    )} == {
        "clicks": 5, "human_clicks": 5, "bot_clicks": 1, "scans": 1, "visitors": 5, "links": 3,
        "previous_clicks": 1, "change": None, "comparable": False,
        "last_click_at": "2026-03-07T18:00:00+00:00",
    }
    assert figures == next(
        r for r in reports.get("touchpoints", **WEEK)["rows"] if r["touchpoint"]["key"] == "flyer"
    )  # the touchpoint report's own row

    spring, compare, plain = body["links"]
    assert spring["conversions"] == {} and spring["revenue"] == {}  # see test_conversions.py
    assert without_outcomes(spring) == {
        "link": {"id": week["spring"], "slug": "spring", "domain": "go.test",
                 "touchpoint": "flyer", "stage": "awareness", "campaign": "spring-launch",
                 "archived": False},
        "clicks": 3, "human_clicks": 3, "bot_clicks": 1, "scanner_clicks": 0, "scans": 1,
        "visitors": 3, "previous_clicks": 1, "change": None, "comparable": False,
        "first_click_at": "2026-03-03T10:15:00+00:00",
        "last_click_at": "2026-03-06T14:20:00+00:00",
    }
    assert [(r["link"]["slug"], r["clicks"], r["visitors"]) for r in (compare, plain)] == [
        ("compare", 1, 1), ("plain", 1, 1),
    ]

    series = body["timeseries"]
    assert (series["interval"], series["group_by"]) == ("day", "link")
    assert series["buckets"][0] == "2026-03-02T00:00:00+00:00" and len(series["buckets"]) == 7
    assert [(s["key"], s["name"], s["clicks"]) for s in series["series"]] == [
        (str(week["spring"]), "spring", [0, 2, 0, 0, 1, 0, 0]),
        (str(week["compare"]), "compare", [0, 0, 1, 0, 0, 0, 0]),
        (str(week["plain"]), "plain", [0, 0, 0, 0, 0, 1, 0]),
    ]
    assert series["series"][0]["bot_clicks"] == [0, 0, 0, 1, 0, 0, 0]

    sources = body["breakdowns"]
    assert set(sources) == {
        "device", "os", "browser", "country", "referrer", "referrer_host", "source",
    }
    assert counts(sources["referrer"]) == [
        ("", "Direct or unknown", 2), ("Facebook", "Facebook", 2), ("Google", "Google", 1),
    ]
    assert counts(sources["referrer_host"]) == [
        ("", "Direct or unknown", 2), ("google.com", "google.com", 1),
        ("l.facebook.com", "l.facebook.com", 1), ("m.facebook.com", "m.facebook.com", 1),
    ]
    assert counts(sources["country"]) == [("GB", "United Kingdom", 3), ("FR", "France", 2)]
    assert counts(sources["source"]) == [("click", "Click", 4), ("scan", "QR code scan", 1)]


def test_a_touchpoints_drill_down_downloads_each_part_as_csv(
    reports: Any, week: dict[str, int]
) -> None:
    body = reports.get("touchpoints/flyer", **WEEK)

    links = reports.csv("touchpoints/flyer", **WEEK)  # the links table unless told otherwise
    series = reports.csv("touchpoints/flyer", table="timeseries", **WEEK)
    sites = reports.csv("touchpoints/flyer", table="referrer", **WEEK)
    hosts = reports.csv("touchpoints/flyer", table="referrer_host", **WEEK)

    assert [(r["slug"], r["clicks"], r["human_clicks"], r["bot_clicks"], r["first_click_at"])
            for r in links] == [
        (r["link"]["slug"], str(r["clicks"]), str(r["human_clicks"]), str(r["bot_clicks"]),
         r["first_click_at"] or "")
        for r in body["links"]
    ]
    assert links[0]["link_id"] == str(week["spring"])
    assert len(series) == 3 * 7
    assert [(r["bucket"], r["group_name"], r["clicks"]) for r in series[:2]] == [
        ("2026-03-02T00:00:00+00:00", "spring", "0"), ("2026-03-03T00:00:00+00:00", "spring", "2"),
    ]
    assert [(r["value"], r["label"], r["clicks"]) for r in sites] == [
        ("", "Direct or unknown", "2"), ("Facebook", "Facebook", "2"), ("Google", "Google", "1"),
    ]
    assert [r["value"] for r in hosts][1:] == ["google.com", "l.facebook.com", "m.facebook.com"]
    error = reports.error("touchpoints/flyer", format="csv", table="colour", **WEEK)
    assert error["details"] == {"parameter": "table"}
    assert "links, timeseries" in error["message"]


def test_a_drill_down_takes_the_filters_in_every_part(
    reports: Any, week: dict[str, int]
) -> None:
    body = reports.get("touchpoints/flyer", stage="awareness", **WEEK)

    assert body["figures"]["clicks"] == 3
    assert [(r["link"]["slug"], r["clicks"]) for r in body["links"]] == [("spring", 3)]
    assert [s["name"] for s in body["timeseries"]["series"]] == ["spring"]
    assert sum(r["clicks"] for r in body["breakdowns"]["source"]) == 3

    with_bots = reports.get("touchpoints/flyer", bots="include", **WEEK)
    assert (with_bots["figures"]["clicks"], with_bots["links"][0]["clicks"]) == (6, 4)
    assert with_bots["bots"] == "include"


def test_an_unknown_touchpoint_or_link_is_a_404(reports: Any, week: dict[str, int]) -> None:
    assert reports.error("touchpoints/nobody", 404, **WEEK)["code"] == "not_found"
    assert reports.error(f"links/{max(week.values()) + 1000}", 404)["code"] == "not_found"
    assert reports.error("campaigns/no-such-campaign", 404, **WEEK)["code"] == "not_found"


# --- a link ---------------------------------------------------------------------------------------


def test_a_links_drill_down_has_its_figures_series_and_sources(
    reports: Any, week: dict[str, int]
) -> None:
    body = reports.get(f"links/{week['spring']}", **WEEK)

    assert body["link"] == {
        "id": week["spring"], "slug": "spring", "domain": "go.test", "touchpoint": "flyer",
        "stage": "awareness", "campaign": "spring-launch", "archived": False,
    }
    figures = body["figures"]
    assert (figures["clicks"], figures["human_clicks"], figures["bot_clicks"], figures["scans"],
            figures["visitors"], figures["previous_clicks"]) == (3, 3, 1, 1, 3, 1)
    assert (figures["first_click_at"], figures["last_click_at"]) == (
        "2026-03-03T10:15:00+00:00", "2026-03-06T14:20:00+00:00"
    )
    assert body["links"] == [figures]
    series = body["timeseries"]
    assert series["group_by"] == "stage"
    assert [(s["key"], s["clicks"], s["scans"]) for s in series["series"]] == [
        ("awareness", [0, 2, 0, 0, 1, 0, 0], [0, 1, 0, 0, 0, 0, 0]),
    ]
    assert counts(body["breakdowns"]["referrer"]) == [
        ("Facebook", "Facebook", 2), ("Google", "Google", 1),
    ]
    assert counts(body["breakdowns"]["device"]) == [
        ("mobile", "Mobile", 2), ("desktop", "Desktop", 1),
    ]

    hourly = reports.get(f"links/{week['spring']}", interval="hour",
                         **{"from": "2026-03-03T10:00", "to": "2026-03-03T12:00"})
    assert hourly["timeseries"]["series"][0]["clicks"] == [2, 0]
    csv_series = reports.csv(f"links/{week['spring']}", **WEEK)  # its series unless told
    assert [(r["bucket"], r["clicks"]) for r in csv_series][1] == ("2026-03-03T00:00:00+00:00", "2")


def test_a_link_without_clicks_in_the_window_shows_zeros(
    reports: Any, week: dict[str, int]
) -> None:
    body = reports.get(f"links/{week['summer']}", **{"from": "2026-02-01", "to": "2026-02-07"})

    assert (body["figures"]["clicks"], body["figures"]["first_click_at"]) == (0, None)
    assert body["timeseries"]["series"] == []
    assert all(rows == [] for rows in body["breakdowns"].values())


# --- campaigns ------------------------------------------------------------------------------------


def test_the_campaign_report_sums_each_campaigns_links(
    reports: Any, week: dict[str, int]
) -> None:
    body = reports.get("campaigns", **WEEK)

    assert [without_outcomes(row) for row in body["rows"]] == [
        {"campaign": "spring-launch", "links": 3, "touchpoints": 2, "clicks": 5,
         "human_clicks": 5, "bot_clicks": 1, "scanner_clicks": 0, "scans": 1, "visitors": 5,
         "first_click_at": "2026-03-03T10:15:00+00:00",
         "last_click_at": "2026-03-06T14:20:00+00:00"},
        {"campaign": "summer-sale", "links": 1, "touchpoints": 1, "clicks": 1,
         "human_clicks": 1, "bot_clicks": 0, "scanner_clicks": 0, "scans": 0, "visitors": 1,
         "first_click_at": "2026-03-08T23:00:00+00:00",
         "last_click_at": "2026-03-08T23:00:00+00:00"},
    ]  # `plain` has no campaign
    with_bots = reports.get("campaigns", bots="include", **WEEK)["rows"][0]
    assert (with_bots["clicks"], with_bots["human_clicks"]) == (6, 5)
    lines = reports.csv("campaigns", **WEEK)
    assert list(lines[0]) == [
        "campaign", "links", "touchpoints", "clicks", "human_clicks", "bot_clicks",
        "scanner_clicks", "scans", "visitors", "first_click_at", "last_click_at", *OUTCOME_COLUMNS,
    ]
    assert lines == [
        {name: "" if row[name] in ({}, None) else str(row[name]) for name in lines[0]}
        for row in body["rows"]
    ]


def test_a_campaigns_drill_down_has_its_links_touchpoints_and_sources(
    reports: Any, week: dict[str, int]
) -> None:
    body = reports.get("campaigns/spring-launch", **WEEK)

    assert body["campaign"] == "spring-launch"
    assert body["figures"] == reports.get("campaigns", **WEEK)["rows"][0]
    assert [(r["link"]["slug"], r["clicks"]) for r in body["links"]] == [
        ("spring", 3), ("compare", 1), ("offer", 1),
    ]
    series = body["timeseries"]
    assert series["group_by"] == "touchpoint"
    assert [(s["key"], s["total"]) for s in series["series"]] == [("flyer", 4), ("bio", 1)]
    assert counts(body["breakdowns"]["referrer"]) == [
        ("Facebook", "Facebook", 3), ("", "Direct or unknown", 1), ("Google", "Google", 1),
    ]
    lines = reports.csv("campaigns/spring-launch", **WEEK)
    assert [line["slug"] for line in lines] == ["spring", "compare", "offer"]
    countries = reports.csv("campaigns/spring-launch", table="country", **WEEK)
    assert [(c["value"], c["label"], c["clicks"]) for c in countries] == [
        ("FR", "France", "3"), ("GB", "United Kingdom", "2"),
    ]


def without_outcomes(row: dict[str, Any]) -> dict[str, Any]:
    """A row without what came of its clicks (conversions: test_conversions.py)."""
    return {name: value for name, value in row.items() if name not in OUTCOME_COLUMNS}
