"""The window of a report: whole hours or local dates, cut at the present, compared with the
window the issue states — for a requested [F, T) cut at N, [F - (T - F), F - (T - F) + (N - F)) —
and empty when it has not begun. Through the reports API, with clicks at chosen times.

Windows up to the present depend on the clock: each test takes the time before and after its
requests, and accepts either hour when one ends while it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from shortener.db import utcnow

HOUR = timedelta(hours=1)
WINDOW_KEYS = ("from", "to", "previous_from", "previous_to")


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def head(body: dict[str, Any]) -> tuple[str, ...]:
    return tuple(body[k] for k in WINDOW_KEYS)


def expected_head(
    start: datetime, requested: datetime, now: datetime, zone: ZoneInfo
) -> tuple[str, ...]:
    """The issue's formula: [F, T) cut at N = the end of the current hour, compared with
    [F - (T - F), F - (T - F) + (N - F))."""
    cut = min(requested, floor_hour(now) + HOUR)
    previous = start - (requested - start)
    return tuple(
        t.astimezone(zone).isoformat() for t in (start, cut, previous, previous + (cut - start))
    )


Timed = Callable[[Callable[[], Any]], tuple[Any, list[datetime]]]


@pytest.fixture
def timed() -> Timed:
    """`timed(ask)`: ask's answer and the times before and after it (the hours it may see)."""

    def run(ask: Callable[[], Any]) -> tuple[Any, list[datetime]]:
        before = utcnow()
        answer = ask()
        return answer, [before, utcnow()]

    return run


# --- whole hours ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "suggested"),
    [
        ("from", "2026-03-01T05:30", "2026-03-01T05:00:00"),
        ("to", "2026-03-01T12:00:01", "2026-03-01T12:00:00"),
        ("from", "2026-03-01T10:00:00+05:30", "2026-03-01T04:00:00+00:00"),  # 04:30 UTC
        ("to", "2026-03-01T12:00:00.5+00:00", "2026-03-01T12:00:00+00:00"),
    ],
)
def test_a_bound_inside_an_hour_is_a_400_that_says_so(
    reports: Any, name: str, value: str, suggested: str
) -> None:
    other = {"from": "2026-02-28"} if name == "to" else {"to": "2026-03-02"}
    for path in ("touchpoints", "stages", "timeseries", "breakdown?dimension=os"):
        error = reports.error(path, **{name: value, **other})
        assert error["code"] == "invalid_parameter"
        assert error["details"] == {"parameter": name}
        assert "must be a whole hour" in error["message"], error
        assert value in error["message"]
        assert f"like {suggested}" in error["message"], error


def test_whole_hour_bounds_take_the_hours_between(
    reports: Any, shop: Any, ingest: Any, people: Any
) -> None:
    shop.touchpoint("store-flyer", "physical", created_at="2026-02-01T00:00:00+00:00")
    shop.link("spring", "store-flyer", "awareness", created_at="2026-02-01T00:00:00+00:00")
    ingest.visits(
        "spring",
        ("2026-03-01T07:59:00+00:00", people.anna),  # before the previous window
        ("2026-03-01T09:59:00+00:00", people.anna),
        ("2026-03-01T10:00:00+00:00", people.ben),
        ("2026-03-01T11:59:59+00:00", people.clara),
        ("2026-03-01T12:00:00+00:00", people.david),  # `to` is excluded
    )
    body = reports.get("touchpoints", **{"from": "2026-03-01T10:00", "to": "2026-03-01T12:00"})

    assert head(body) == (
        "2026-03-01T10:00:00+00:00", "2026-03-01T12:00:00+00:00",
        "2026-03-01T08:00:00+00:00", "2026-03-01T10:00:00+00:00",
    )
    (flyer,) = body["rows"]
    assert (flyer["clicks"], flyer["previous_clicks"]) == (2, 1)


# --- cut at the present ---------------------------------------------------------------------------


def test_a_window_past_the_present_is_cut_and_compared_with_as_many_hours_one_length_before(
    reports: Any, shop: Any, ingest: Any, people: Any, timed: Timed
) -> None:
    now = utcnow()
    start = floor_hour(now) - 2 * HOUR
    requested = floor_hour(now) + 5 * HOUR  # 7 hours asked for, 3 of them begun
    shop.touchpoint("store-flyer", "physical", created_at=start - 24 * HOUR)
    shop.link("spring", "store-flyer", "awareness", created_at=start - 24 * HOUR)
    previous = start - 7 * HOUR
    ingest.visits(
        "spring",
        (previous - timedelta(minutes=5), people.david),  # before the previous window
        (previous + timedelta(minutes=10), people.anna),
        (previous + timedelta(hours=2, minutes=10), people.ben),
        (previous + timedelta(hours=2, minutes=20), people.crawler),
        # Past the same hours of the window before (3, or 4 if an hour ends meanwhile): out.
        (previous + timedelta(hours=4, minutes=30), people.clara),
        (start + timedelta(minutes=10), people.anna),
    )
    shop.visit("spring", people.ben)  # a click now, through the redirect

    window = {"from": start.isoformat(), "to": requested.isoformat()}
    body, times = timed(lambda: reports.get("touchpoints", **window))
    assert head(body) in {expected_head(start, requested, t, ZoneInfo("UTC")) for t in times}
    assert datetime.fromisoformat(body["to"]) - start in (3 * HOUR, 4 * HOUR)
    (flyer,) = body["rows"]
    assert (flyer["clicks"], flyer["previous_clicks"], flyer["previous_human_clicks"]) == (2, 2, 2)
    with_bots = reports.get("touchpoints", bots="include", **window)["rows"][0]
    assert (with_bots["previous_clicks"], with_bots["previous_human_clicks"]) == (3, 2)


def test_today_so_far_is_compared_with_the_same_hours_of_yesterday_in_local_days(
    make_app: Any, reports: Any, shop: Any, ingest: Any, people: Any, timed: Timed
) -> None:
    paris_zone = ZoneInfo("Europe/Paris")
    paris: Flask = make_app(timezone="Europe/Paris")
    now = utcnow()
    today = now.astimezone(paris_zone).date()
    start = datetime(today.year, today.month, today.day, tzinfo=paris_zone).astimezone(UTC)
    tomorrow = today + timedelta(days=1)
    requested = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=paris_zone)
    previous = start - (requested - start)  # local midnight of yesterday, unless a clock moved
    shop.touchpoint("store-flyer", "physical", created_at=start - 48 * HOUR)
    shop.link("spring", "store-flyer", "awareness", created_at=start - 48 * HOUR)
    local = ingest.into(paris)
    local.visits(
        "spring",
        (previous + timedelta(minutes=10), people.anna),  # the first hour of yesterday: in
        (start - timedelta(minutes=10), people.ben),  # the last one: only if today is over
        (start + timedelta(minutes=5), people.clara),
    )
    in_paris = reports.on(paris)

    window = {"from": str(today), "to": str(today)}
    body, times = timed(lambda: in_paris.get("touchpoints", **window))

    assert head(body) in {expected_head(start, requested, t, paris_zone) for t in times}
    assert body["timezone"] == "Europe/Paris"
    assert body["from"].endswith(("+01:00", "+02:00"))  # in the local offset
    (flyer,) = body["rows"]
    assert flyer["clicks"] == 1
    whole_day = datetime.fromisoformat(body["previous_to"]) == start
    assert flyer["previous_clicks"] == (2 if whole_day else 1)  # never all of yesterday so far


# --- empty windows --------------------------------------------------------------------------------


def test_a_future_window_says_it_is_empty_and_ranks_nothing(
    reports: Any, journey: None
) -> None:
    tomorrow = utcnow().date() + timedelta(days=1)
    window = {"from": str(tomorrow), "to": str(tomorrow + timedelta(days=2))}
    start = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=UTC)

    for order in ("most", "least"):
        body = reports.get("touchpoints", order=order, **window)
        assert (body["empty"], body["rows"]) == (True, []), order
        assert head(body) == (
            start.isoformat(), start.isoformat(),  # nothing of it has begun
            (start - timedelta(days=3)).isoformat(), (start - timedelta(days=3)).isoformat(),
        )
    stages = reports.get("stages", **window)
    assert [r["clicks"] for r in stages["rows"]] == [0, 0, 0, 0, 0]
    assert reports.get("timeseries", **window)["buckets"] == []
    assert reports.get("breakdown", dimension="device", **window)["rows"] == []


def test_a_past_window_without_clicks_is_empty_but_lists_who_existed_when_asked_least_first(
    reports: Any, shop: Any, ingest: Any, people: Any
) -> None:
    shop.touchpoint("store-flyer", "physical", created_at="2019-06-01T00:00:00+00:00")
    shop.link("spring", "store-flyer", "awareness", created_at="2019-06-01T00:00:00+00:00")
    shop.visit("spring", people.anna)  # now, outside the window
    window = {"from": "2020-01-01", "to": "2020-01-07"}

    most = reports.get("touchpoints", **window)
    least = reports.get("touchpoints", order="least", **window)

    assert (most["empty"], most["rows"]) == (True, [])
    assert least["empty"] is True
    assert [(r["touchpoint"]["key"], r["clicks"], r["links"]) for r in least["rows"]] == [
        ("store-flyer", 0, 1)
    ]


@pytest.mark.usefixtures("journey")
def test_a_window_with_clicks_is_not_empty_whatever_the_page_shows(reports: Any) -> None:
    body = reports.get("touchpoints", order="least", limit=1)

    assert [r["touchpoint"]["key"] for r in body["rows"]] == ["packaging"]  # no click of its own
    assert body["empty"] is False
