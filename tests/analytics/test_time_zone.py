"""Days cut in the workspace's time zone (TOUCHLINK_TIMEZONE): report dates are local midnights,
daily buckets are local days, visitors are counted per local day, and the daily rollups are cut
again when the zone changes (`touchlink db upgrade`). Through the API, with clicks at chosen times
stored by the ingest of an app of that zone."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics.models import (
    Click,
    DailyVisitor,
    LinkHourlyStats,
    Period,
    TouchpointStats,
    VisitorSalt,
    WorkspaceState,
)
from shortener.models import Touchpoint

PARIS = ZoneInfo("Europe/Paris")
MADE = "2026-01-01T00:00:00+00:00"


@pytest.fixture
def paris(make_app: Any) -> Flask:
    return make_app(timezone="Europe/Paris")


@pytest.fixture
def flyer(shop: Any) -> None:
    """store-flyer/spring and insta-bio/bio, made before any window of these tests."""
    shop.touchpoint("store-flyer", "physical", created_at=MADE)
    shop.touchpoint("insta-bio", "digital", created_at=MADE)
    shop.link("spring", "store-flyer", "awareness", created_at=MADE)
    shop.link("bio", "insta-bio", "decision", created_at=MADE)


def day(reports: Any, path: str, when: str, **params: Any) -> Any:
    return reports.get(path, **{"from": when, "to": when, **params})


@pytest.mark.usefixtures("flyer")
def test_a_click_late_on_3_march_in_utc_counts_on_4_march_in_paris(
    reports: Any, ingest: Any, paris: Flask, people: Any
) -> None:
    ingest.into(paris).visits(
        "spring",
        ("2026-03-03T22:59:00+00:00", people.anna),  # 23:59 in Paris: 3 March
        ("2026-03-03T23:30:00+00:00", people.ben),  # 00:30 in Paris: 4 March
    )
    in_paris = reports.on(paris)

    third, fourth = (day(in_paris, "touchpoints", d) for d in ("2026-03-03", "2026-03-04"))
    assert (third["from"], third["to"]) == (
        "2026-03-03T00:00:00+01:00", "2026-03-04T00:00:00+01:00"
    )
    assert third["previous_from"] == "2026-03-02T00:00:00+01:00"
    assert third["timezone"] == "Europe/Paris"
    assert [r["clicks"] for r in third["rows"] if r["touchpoint"]["key"] == "store-flyer"] == [1]
    assert [r["clicks"] for r in fourth["rows"] if r["touchpoint"]["key"] == "store-flyer"] == [1]
    assert fourth["rows"][0]["previous_clicks"] == 1  # 3 March, the day before in Paris


@pytest.mark.usefixtures("flyer")
def test_the_daily_timeseries_buckets_are_local_days(
    reports: Any, ingest: Any, paris: Flask, people: Any
) -> None:
    ingest.into(paris).visits(
        "spring",
        ("2026-03-02T23:10:00+00:00", people.anna),  # 3 March in Paris
        ("2026-03-03T12:00:00+00:00", people.ben),
        ("2026-03-03T23:30:00+00:00", people.clara),  # 4 March in Paris
    )
    window = {"from": "2026-03-02", "to": "2026-03-04"}

    body = reports.on(paris).get("timeseries", **window)
    hourly = reports.on(paris).get(
        "timeseries", interval="hour", **{"from": "2026-03-04T00:00", "to": "2026-03-04T02:00"}
    )
    csv_lines = reports.on(paris).csv("timeseries", **window)

    assert body["buckets"] == [
        "2026-03-02T00:00:00+01:00", "2026-03-03T00:00:00+01:00", "2026-03-04T00:00:00+01:00",
    ]
    (series,) = body["series"]
    assert series["clicks"] == [0, 2, 1]
    assert series["visitors"] == [0, 2, 1]
    assert hourly["buckets"] == ["2026-03-04T00:00:00+01:00", "2026-03-04T01:00:00+01:00"]
    assert hourly["series"][0]["clicks"] == [1, 0]
    assert [(line["bucket"], line["clicks"]) for line in csv_lines] == [
        ("2026-03-02T00:00:00+01:00", "0"),
        ("2026-03-03T00:00:00+01:00", "2"),
        ("2026-03-04T00:00:00+01:00", "1"),
    ]


@pytest.mark.usefixtures("flyer")
def test_visitors_are_counted_once_per_local_day(
    reports: Any, ingest: Any, paris: Flask, session: Session, people: Any
) -> None:
    # Anna twice on each link, an hour apart: the same UTC day, but two days in Paris on spring.
    ingest.into(paris).visits(
        "spring",
        ("2026-03-03T22:30:00+00:00", people.anna),  # 23:30 in Paris, 3 March
        ("2026-03-03T23:30:00+00:00", people.anna),  # 00:30 in Paris, 4 March
    )
    ingest.visits(  # stored as a UTC workspace would
        "bio",
        ("2026-03-03T22:30:00+00:00", people.anna),
        ("2026-03-03T23:30:00+00:00", people.anna),
    )
    window = {"from": "2026-03-03", "to": "2026-03-04"}

    body = reports.on(paris).get("touchpoints", **window)
    rows = {r["touchpoint"]["key"]: r for r in body["rows"]}

    assert (rows["store-flyer"]["clicks"], rows["store-flyer"]["visitors"]) == (2, 2)
    assert (rows["insta-bio"]["clicks"], rows["insta-bio"]["visitors"]) == (2, 1)
    ids = Counter(
        (link_id, visitor)
        for link_id, visitor in session.execute(select(Click.link_id, Click.visitor_id))
    )
    assert sorted(ids.values()) == [1, 1, 2]  # the visitor id rotates at local midnight too


@pytest.mark.usefixtures("flyer")
def test_a_window_over_a_change_of_clock_has_its_local_days(
    reports: Any, ingest: Any, paris: Flask, people: Any
) -> None:
    # Paris moves to summer time at 01:00 UTC on 29 March 2026: that day has 23 hours.
    local = ingest.into(paris)
    local.visits(
        "spring",
        ("2026-03-28T23:30:00+00:00", people.anna),  # 00:30 on 29 March, winter time
        ("2026-03-29T21:59:00+00:00", people.ben),  # 23:59 on 29 March, summer time
        ("2026-03-29T22:00:00+00:00", people.clara),  # 00:00 on 30 March
    )

    body = day(reports.on(paris), "touchpoints", "2026-03-29")

    assert (body["from"], body["to"]) == (
        "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"
    )
    assert body["previous_from"] == "2026-03-28T01:00:00+01:00"  # 23 hours earlier
    assert body["rows"][0]["clicks"] == 2


def test_a_redirect_counts_its_visitor_on_the_local_day(
    make_app: Any, shop: Any, link: dict[str, Any], session: Session, people: Any
) -> None:
    zone = ZoneInfo("Etc/GMT-14")  # 14 hours ahead of UTC: most of the time another day
    client = make_app(timezone="Etc/GMT-14").test_client()
    ip, agent = people.anna
    before = datetime.now(UTC).astimezone(zone).date()
    response = client.get("/spring", headers={"User-Agent": agent},
                          environ_base={"REMOTE_ADDR": ip})
    after = datetime.now(UTC).astimezone(zone).date()

    assert response.status_code == 302
    (day,) = session.scalars(select(DailyVisitor.day))
    assert day in {before, after}
    (salt_day,) = session.scalars(select(VisitorSalt.day))
    assert salt_day == day


# --- a change of zone ----------------------------------------------------------------------------


def local_sums(session: Session, zone: ZoneInfo) -> dict[tuple[Any, ...], tuple[int, ...]]:
    """touchpoint_stats as it must be in `zone`: the hourly rows summed per local period."""
    sums: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for row in session.scalars(select(LinkHourlyStats)):
        local_day = row.hour.astimezone(zone).date()
        for period in Period:
            key = (period.value, period.start_of(local_day), row.stage_id, row.touchpoint_id)
            for i, name in enumerate(("clicks", "scans", "bot_clicks", "visitors")):
                sums[key][i] += getattr(row, name)
    return {key: tuple(value) for key, value in sums.items()}


def stored(session: Session) -> dict[tuple[Any, ...], tuple[int, ...]]:
    session.expire_all()
    return {
        (s.period, s.period_start, s.stage_id, s.touchpoint_id): (
            s.clicks, s.scans, s.bot_clicks, s.visitors
        )
        for s in session.scalars(select(TouchpointStats))
    }


@pytest.mark.usefixtures("flyer")
def test_db_upgrade_cuts_the_daily_rollups_again_when_the_time_zone_changes(
    reports: Any, ingest: Any, make_app: Any, session: Session, people: Any
) -> None:
    rng = random.Random(9)
    visitors = [people.anna, people.ben, people.clara, people.david, people.crawler]
    start = datetime(2026, 2, 20, tzinfo=UTC)
    times = sorted(start + timedelta(minutes=rng.randrange(60 * 24 * 60)) for _ in range(240))
    per_link: dict[str, list[Any]] = {"spring": [], "bio": []}
    for at in times:
        per_link[rng.choice(["spring", "bio"])].append((at, rng.choice(visitors)))
    for slug, visits in per_link.items():  # stored in UTC days, as the workspace was until now
        ingest.visits(slug, *visits)
    assert stored(session) == local_sums(session, ZoneInfo("UTC"))
    paris = make_app(timezone="Europe/Paris")

    with paris.app_context():
        first = paris.test_cli_runner().invoke(args=["db", "upgrade"])
        again = paris.test_cli_runner().invoke(args=["db", "upgrade"])

    assert first.exit_code == 0, (first.output, first.exception)
    assert "Rebuilt the daily rollups for the time zone Europe/Paris." in first.output
    assert again.exit_code == 0 and "Rebuilt" not in again.output  # once is enough
    assert stored(session) == local_sums(session, PARIS)
    state = session.get(WorkspaceState, "rollup_timezone")
    assert state is not None and state.value == "Europe/Paris"

    # The same question now gets local days' answers, over days, weeks and months alike.
    keys = {tp.id: tp.key for tp in session.scalars(select(Touchpoint))}
    in_paris = reports.on(paris)
    for first_day, last_day in [
        (date(2026, 3, 3), date(2026, 3, 3)),
        (date(2026, 3, 2), date(2026, 3, 15)),  # two whole weeks
        (date(2026, 2, 21), date(2026, 4, 19)),  # March whole, and parts of the others
    ]:
        body = in_paris.get("touchpoints", **{"from": str(first_day), "to": str(last_day)})
        expected = {"store-flyer": [0, 0], "insta-bio": [0, 0]}
        for click in session.scalars(select(Click)):
            if first_day <= click.occurred_at.astimezone(PARIS).date() <= last_day:
                expected[keys[click.touchpoint_id]][click.is_bot] += 1
        got = {r["touchpoint"]["key"]: [r["human_clicks"], r["bot_clicks"]] for r in body["rows"]}
        assert got == expected, (first_day, last_day)
        assert body["from"] == f"{first_day}T00:00:00+01:00"
