"""Exposure as dated placements in the reports: a window's `reached` is the people reached by the
placements begun before it ended, `per_1k_reached` its visitors per 1,000 of them, and reports
rank by that rate with the touchpoints it cannot rate last. Placements are made through the API
(tests/shortener/test_api_touchpoints.py tests the endpoints themselves)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from shortener.db import utcnow
from tests.user_agents import IPHONE

MADE = "2026-01-15T00:00:00+00:00"
FEBRUARY = {"from": "2026-02-01", "to": "2026-02-28"}


def crowd(first: int, count: int, day: str) -> list[tuple[datetime, tuple[str, str]]]:
    """`count` different people clicking on `day` (ISO date), from 08:00 UTC."""
    start = datetime.fromisoformat(f"{day}T08:00:00+00:00")
    return [
        (start + timedelta(minutes=7 * i), (f"198.51.100.{first + i}", IPHONE))
        for i in range(count)
    ]


@pytest.fixture
def placed(shop: Any, ingest: Any) -> None:
    """flyer     1,000 reached from 15 January (its exposure on creation), 3,000 from 10 March;
                 5 visitors in February, 8 in March (from the 2nd)
    mailing   5,000 from 10 February; 10 visitors in February
    bio       no exposure; 3 visitors in February
    poster    200 from 1 April; 1 visitor in February"""
    shop.touchpoint("flyer", "physical", exposure=1000, created_at=MADE)
    shop.place("flyer", 3000, "2026-03-10", "2026-03-16", note="Second print run")
    for key, channel in (("mailing", "digital"), ("bio", "digital"), ("poster", "physical")):
        shop.touchpoint(key, channel, created_at=MADE)
    shop.place("mailing", 5000, "2026-02-10")
    shop.place("poster", 200, "2026-04-01")
    for key in ("flyer", "mailing", "bio", "poster"):
        shop.link(f"{key}-a", key, "awareness", created_at=MADE)
    ingest.visits("flyer-a", *crowd(0, 5, "2026-02-12"), *crowd(20, 8, "2026-03-02"))
    ingest.visits("mailing-a", *crowd(40, 10, "2026-02-14"))
    ingest.visits("bio-a", *crowd(60, 3, "2026-02-15"))
    ingest.visits("poster-a", *crowd(70, 1, "2026-02-16"))


def rates(body: Any) -> list[tuple[str, int | None, float | None]]:
    return [(r["touchpoint"]["key"], r["reached"], r["per_1k_reached"]) for r in body["rows"]]


@pytest.mark.usefixtures("placed")
def test_exposure_is_the_sum_of_the_placements(client: Any, analyst: dict[str, str]) -> None:
    flyer = client.get("/api/v1/touchpoints/flyer", headers=analyst).get_json()
    bio = client.get("/api/v1/touchpoints/bio", headers=analyst).get_json()

    assert (flyer["exposure"], bio["exposure"]) == (4000, None)


@pytest.mark.usefixtures("placed")
@pytest.mark.parametrize(
    ("window", "reached", "visitors"),
    [
        (FEBRUARY, 1000, 5),  # the second print run had not begun
        ({"from": "2026-03-01", "to": "2026-03-09"}, 1000, 8),
        ({"from": "2026-03-01", "to": "2026-03-10"}, 4000, 8),  # begun on its last day
        ({"from": "2026-03-01", "to": "2026-03-31"}, 4000, 8),
        ({"from": "2026-01-15", "to": "2026-01-15"}, 1000, 0),  # the day it was made
    ],
)
def test_the_rate_counts_the_placements_begun_before_the_window_ended(
    reports: Any, window: dict[str, str], reached: int | None, visitors: int
) -> None:
    listed = reports.get("touchpoints", order="least", **window)["rows"]
    flyer = next(r for r in listed if r["touchpoint"]["key"] == "flyer")

    assert (flyer["reached"], flyer["visitors"]) == (reached, visitors)
    expected = round(visitors / reached * 1000, 2) if reached else None
    assert flyer["per_1k_reached"] == expected


@pytest.mark.usefixtures("placed")
def test_ranked_by_the_rate_touchpoints_without_exposure_come_last_and_are_counted(
    reports: Any,
) -> None:
    most = reports.get("touchpoints", by="per_1k_reached", **FEBRUARY)
    least = reports.get("touchpoints", by="per_1k_reached", order="least", **FEBRUARY)
    by_clicks = reports.get("touchpoints", **FEBRUARY)

    assert rates(most) == [
        ("flyer", 1000, 5.0),
        ("mailing", 5000, 2.0),
        ("bio", None, None),  # no exposure at all
        ("poster", None, None),  # its only placement begins after February
    ]
    assert rates(least) == [
        ("mailing", 5000, 2.0), ("flyer", 1000, 5.0), ("poster", None, None), ("bio", None, None),
    ]
    assert (most["by"], most["without_reach"], least["without_reach"]) == ("per_1k_reached", 2, 2)
    assert [key for key, _, _ in rates(by_clicks)] == ["mailing", "flyer", "bio", "poster"]
    assert by_clicks["by"] == "clicks"


@pytest.mark.usefixtures("placed")
def test_the_rate_has_the_same_name_and_unit_in_csv(reports: Any) -> None:
    body = reports.get("touchpoints", by="per_1k_reached", **FEBRUARY)
    lines = reports.csv("touchpoints", by="per_1k_reached", **FEBRUARY)

    assert [
        (line["touchpoint_key"], line["reached"], line["per_1k_reached"],
         line["per_1k_reached_low"], line["per_1k_reached_high"])
        for line in lines
    ] == [
        (r["touchpoint"]["key"], *("" if r[k] is None else str(r[k]) for k in (
            "reached", "per_1k_reached", "per_1k_reached_low", "per_1k_reached_high")))
        for r in body["rows"]
    ]
    assert lines[0]["per_1k_reached"] == "5.0"
    assert "engagement_rate" not in lines[0]


def test_a_deleted_placement_no_longer_counts(
    reports: Any, shop: Any, link: dict[str, Any], client: Any, marketer: dict[str, str],
    people: Any,
) -> None:
    shop.visit("spring", people.anna)
    today = utcnow().date()
    extra = shop.place("store-flyer", 1500, str(today - timedelta(days=3)))
    window = {"from": str(today - timedelta(days=10)), "to": str(today + timedelta(days=1))}
    assert reports.get("touchpoints", **window)["rows"][0]["reached"] == 2000  # 500 + 1,500

    response = client.delete(
        f"/api/v1/touchpoints/store-flyer/exposures/{extra['id']}", headers=marketer
    )

    assert response.status_code == 200
    row = reports.get("touchpoints", **window)["rows"][0]
    assert (row["reached"], row["per_1k_reached"]) == (500, 2.0)  # 1 visitor of 500
