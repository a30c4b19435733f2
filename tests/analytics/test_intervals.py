"""Small samples say so: every rate carries its 95 % Wilson interval (checked against the textbook
formula computed here), and a change is null and `comparable: false` unless both windows have 20
human clicks. Through the reports API, with clicks at chosen times."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from statistics import NormalDist
from typing import Any

import pytest

from tests.user_agents import GOOGLEBOT, IPHONE

MADE = "2026-01-01T00:00:00+00:00"
WEEK = {"from": "2026-03-02", "to": "2026-03-08"}  # compared with 23 February to 1 March
Z = NormalDist().inv_cdf(0.975)


def wilson(successes: int, trials: int) -> tuple[float, float]:
    """The Wilson score interval, as the textbooks write it (Wilson 1927; Agresti and Coull)."""
    p = successes / trials
    centre = p + Z * Z / (2 * trials)
    spread = Z * math.sqrt(p * (1 - p) / trials + Z * Z / (4 * trials * trials))
    denominator = 1 + Z * Z / trials
    return (centre - spread) / denominator, (centre + spread) / denominator


def close(value: float, expected: float, places: int) -> bool:
    """`value`, rounded to `places`, is `expected` rounded the same way."""
    return abs(value - expected) <= 0.5 * 10**-places + 1e-12


def people_on(day: str, count: int, *, first: int = 0, agent: str = IPHONE) -> list[Any]:
    """`count` different people clicking on `day` (ISO date), a minute apart from 09:00 UTC."""
    start = datetime.fromisoformat(f"{day}T09:00:00+00:00")
    numbers = range(first, first + count)
    return [
        (start + timedelta(minutes=i), (f"198.51.{n // 250}.{n % 250 + 1}", agent))
        for i, n in enumerate(numbers)
    ]


@pytest.fixture
def flyer(shop: Any) -> None:
    shop.touchpoint("flyer", "physical", created_at=MADE)
    shop.link("spring", "flyer", "awareness", created_at=MADE)


def row(reports: Any, **params: Any) -> Any:
    (found,) = reports.get("touchpoints", **WEEK, **params)["rows"]
    return found


@pytest.mark.usefixtures("flyer")
@pytest.mark.parametrize(("clicks", "scans"), [(37, 11), (3, 2), (25, 0), (8, 8), (1, 1)])
def test_the_share_of_scans_has_its_wilson_interval(
    reports: Any, ingest: Any, clicks: int, scans: int
) -> None:
    visits = people_on("2026-03-03", clicks)
    ingest.visits("spring", *[(*v, i < scans) for i, v in enumerate(visits)])
    ingest.visits("spring", *people_on("2026-03-04", 4, first=200, agent=GOOGLEBOT))

    found = row(reports, bots="include")

    assert (found["human_clicks"], found["bot_clicks"], found["scans"]) == (clicks, 4, scans)
    low, high = wilson(scans, clicks)  # of the human clicks, whatever bots= says
    assert close(found["scan_share"], scans / clicks, 4)
    assert close(found["scan_share_low"], low, 4), (found["scan_share_low"], low)
    assert close(found["scan_share_high"], high, 4), (found["scan_share_high"], high)
    assert 0.0 <= found["scan_share_low"] <= found["scan_share"] <= found["scan_share_high"] <= 1


@pytest.mark.usefixtures("flyer")
@pytest.mark.parametrize(("visitors", "reached"), [(13, 2000), (0, 500), (40, 40), (7, 12_000)])
def test_the_rate_per_1k_reached_has_its_wilson_interval(
    reports: Any, ingest: Any, shop: Any, visitors: int, reached: int
) -> None:
    shop.place("flyer", reached, "2026-03-01")
    if visitors:
        ingest.visits("spring", *people_on("2026-03-05", visitors))

    found = reports.get("touchpoints", order="least", **WEEK)["rows"][0]

    low, high = wilson(visitors, reached)
    assert (found["visitors"], found["reached"]) == (visitors, reached)
    assert close(found["per_1k_reached"], visitors / reached * 1000, 2)
    assert close(found["per_1k_reached_low"], low * 1000, 2), (found, low * 1000)
    assert close(found["per_1k_reached_high"], high * 1000, 2), (found, high * 1000)


@pytest.mark.usefixtures("flyer")
def test_a_touchpoint_without_human_clicks_or_exposure_has_no_rate_to_give(
    reports: Any, ingest: Any
) -> None:
    ingest.visits("spring", *people_on("2026-03-03", 3, agent=GOOGLEBOT))

    found = row(reports, bots="include")

    assert (found["clicks"], found["human_clicks"]) == (3, 0)
    for name in ("scan_share", "scan_share_low", "scan_share_high", "reached", "per_1k_reached",
                 "per_1k_reached_low", "per_1k_reached_high"):
        assert found[name] is None, name


# --- changes --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("flyer")
@pytest.mark.parametrize(
    ("before", "now", "change", "comparable"),
    [
        (20, 30, 0.5, True),
        (40, 20, -0.5, True),
        (20, 20, 0.0, True),
        (19, 60, None, False),  # the previous window has too few human clicks
        (60, 19, None, False),  # and here this one
        (1, 0, None, False),  # not a -100 % trend
        (0, 25, None, False),
    ],
)
def test_a_change_needs_20_human_clicks_in_both_windows(
    reports: Any, ingest: Any, before: int, now: int, change: float | None, comparable: bool
) -> None:
    visits = people_on("2026-02-25", before) + people_on("2026-03-04", now, first=100)
    if visits:
        ingest.visits("spring", *visits)

    found = reports.get("touchpoints", order="least", **WEEK)["rows"][0]

    assert (found["clicks"], found["previous_clicks"]) == (now, before)
    assert (found["change"], found["comparable"]) == (change, comparable)


@pytest.mark.usefixtures("flyer")
def test_bots_never_make_a_window_comparable(reports: Any, ingest: Any) -> None:
    ingest.visits(
        "spring",
        *people_on("2026-02-25", 19),
        *people_on("2026-02-26", 10, first=50, agent=GOOGLEBOT),
        *people_on("2026-03-04", 30, first=100),
        *people_on("2026-03-05", 10, first=150, agent=GOOGLEBOT),
    )

    with_bots = row(reports, bots="include")
    assert (with_bots["clicks"], with_bots["previous_clicks"]) == (40, 29)
    assert (with_bots["human_clicks"], with_bots["previous_human_clicks"]) == (30, 19)
    assert (with_bots["change"], with_bots["comparable"]) == (None, False)

    ingest.visits("spring", *people_on("2026-02-27", 1, first=200))  # a 20th human click
    with_bots = row(reports, bots="include")
    assert (with_bots["change"], with_bots["comparable"]) == (round(40 / 30 - 1, 4), True)
    humans = row(reports)
    assert (humans["change"], humans["comparable"]) == (0.5, True)  # 30 against 20


@pytest.mark.usefixtures("flyer")
def test_a_links_change_in_the_drill_down_follows_the_same_rule(
    reports: Any, ingest: Any
) -> None:
    ingest.visits("spring", *people_on("2026-02-25", 5), *people_on("2026-03-04", 1, first=50))

    (link,) = reports.get("touchpoints/flyer", **WEEK)["links"]

    assert (link["clicks"], link["previous_clicks"]) == (1, 5)
    assert (link["change"], link["comparable"]) == (None, False)
