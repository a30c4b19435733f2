"""Breakdowns (device, OS, browser, country, referrer, scan or click) over a population of clicks
the test sends: whole days come from `dimension_stats`, a touchpoint's page and windows cut
inside a day from the raw clicks; both give what the test counts itself from what it sent, and
rebuilding the rollups from the raw clicks gives the rows ingest kept. The dashboard's chart keeps
the top groups of its series and adds up the rest, from the daily rollups or the hourly ones."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import select

from analytics.dimension_rollups import ensure_dimension_zone, rebuild_dimension_stats
from analytics.models import DimensionStats
from analytics.reports.breakdowns import ALL_DIMENSIONS
from analytics.reports.engagement import most_and_least
from analytics.reports.query import ReportQuery
from analytics.reports.timeseries import Ranked, timeseries
from shortener.db import utcnow
from shortener.runtime import runtime
from shortener.unit_of_work import transaction
from tests.user_agents import ANDROID, DESKTOP, GOOGLEBOT, IPHONE

MADE = "2026-02-20T00:00:00+00:00"
FIRST = datetime(2026, 3, 2, tzinfo=UTC)
DAYS = 6
WEEK = {"from": "2026-03-02", "to": "2026-03-07"}
# What the enricher makes of each user agent: (device, os, browser).
AGENTS = {
    IPHONE: ("mobile", "iOS", "Mobile Safari"),
    ANDROID: ("mobile", "Android", "Chrome Mobile"),
    DESKTOP: ("desktop", "Windows", "Chrome"),
}
IPS = {"81.130.4.5": "GB", "90.12.34.56": "FR", "198.51.100.7": "", "198.51.100.8": ""}
REFERRERS = {
    "https://m.facebook.com/story.php?id=1": ("m.facebook.com", "Facebook"),
    "https://l.facebook.com/l.php?u=x": ("l.facebook.com", "Facebook"),
    "https://www.google.com/search?q=flyer": ("google.com", "Google"),
    "": ("", ""),
}
# slug: (touchpoint, channel, stage, campaign)
LINKS = {
    "spring": ("flyer", "physical", "awareness", "spring-launch"),
    "compare": ("flyer", "physical", "consideration", "spring-launch"),
    "plain": ("flyer", "physical", "decision", None),
    "offer": ("bio", "digital", "decision", "spring-launch"),
    "summer": ("bio", "digital", "awareness", "summer-sale"),
}


@dataclass(frozen=True)
class Sent:
    slug: str
    at: datetime
    ip: str
    agent: str
    referrer: str
    qr: bool

    @property
    def bot(self) -> bool:
        return self.agent == GOOGLEBOT

    def value(self, dimension: str) -> str:
        if dimension == "source":
            return "scan" if self.qr else "click"
        if dimension == "country":
            return IPS[self.ip]
        if dimension in ("referrer", "referrer_host"):
            host, site = REFERRERS[self.referrer]
            return site if dimension == "referrer" else host
        return AGENTS[self.agent][("device", "os", "browser").index(dimension)]


@pytest.fixture
def sent(shop: Any, ingest: Any) -> list[Sent]:
    """300 clicks over six days on five links of two touchpoints, a tenth of them Googlebot's,
    by a few people who come back (so visitors repeat within a day and across links)."""
    shop.touchpoint("flyer", "physical", created_at=MADE)
    shop.touchpoint("bio", "digital", created_at=MADE)
    for slug, (touchpoint, _, stage, campaign) in LINKS.items():
        shop.link(slug, touchpoint, stage, campaign, created_at=MADE)
    rng = random.Random(11)
    clicks = []
    for _ in range(300):
        at = FIRST + timedelta(seconds=rng.randrange(DAYS * 86400))
        agent = GOOGLEBOT if rng.random() < 0.1 else rng.choice(list(AGENTS))
        clicks.append(Sent(rng.choice(list(LINKS)), at, rng.choice(list(IPS)), agent,
                           rng.choice(list(REFERRERS)), rng.random() < 0.2))
    clicks.sort(key=lambda c: c.at)
    ingest.raw(
        [ingest._raw(c.slug, c.at, ip=c.ip, agent=c.agent, qr=c.qr, referrer=c.referrer)
         for c in clicks],
        batch=37,
    )
    return clicks


def expected(
    clicks: list[Sent], dimension: str, within: tuple[datetime, datetime] | None = None,
    **only: str,
) -> tuple[list[tuple[str, int, int]], int]:
    """(value, clicks, visitors) most clicks first, and the clicks of every value `within` a
    window: a visitor (an address and user agent) once per link per day, under their first
    click's value, when that click is in the window."""
    chosen = [
        c for c in clicks
        if not c.bot
        and all(dict(zip(("touchpoint", "channel", "stage", "campaign"), LINKS[c.slug],
                         strict=True))[k] == v for k, v in only.items())
    ]
    counts: Counter[str] = Counter()
    visitors: Counter[str] = Counter()
    seen = set()
    start, end = within or (FIRST, FIRST + timedelta(days=DAYS))
    for c in chosen:
        value, inside = c.value(dimension), start <= c.at < end
        counts[value] += inside
        visit = (c.slug, c.at.date(), c.ip, c.agent)
        if visit not in seen:
            seen.add(visit)
            visitors[value] += inside
    rows = sorted(((v, n, visitors[v]) for v, n in counts.items() if n),
                  key=lambda r: (-r[1], r[0]))
    return rows, sum(counts.values())


def answered(body: dict[str, Any]) -> tuple[list[tuple[str, int, int]], int]:
    return [(r["value"], r["clicks"], r["visitors"]) for r in body["rows"]], body["total"]


@pytest.mark.parametrize("dimension", ALL_DIMENSIONS)
def test_a_breakdown_of_whole_days_counts_what_was_sent_under_every_filter(
    reports: Any, sent: list[Sent], dimension: str
) -> None:
    for only in ({}, {"stage": "awareness"}, {"channel": "physical"},
                 {"campaign": "spring-launch"}, {"stage": "decision", "channel": "digital"}):
        body = reports.get("breakdown", dimension=dimension, limit=100, **WEEK, **only)
        assert answered(body) == expected(sent, dimension, **only), only
        assert body["other"] == 0

    rows, total = expected(sent, dimension)
    top = reports.get("breakdown", dimension=dimension, limit=2, **WEEK)
    assert answered(top) == (rows[:2], total)
    assert top["other"] == total - sum(n for _, n, _ in rows[:2])


def test_bots_are_in_a_breakdown_only_when_asked_for(reports: Any, sent: list[Sent]) -> None:
    body = reports.get("breakdown", dimension="device", limit=100, bots="include", **WEEK)
    bots = sum(c.bot for c in sent)
    assert bots > 0
    assert body["total"] == len(sent)
    assert ("bot", bots, 0) in answered(body)[0]


def test_a_touchpoints_page_and_a_window_cut_inside_days_count_the_raw_clicks_alike(
    reports: Any, sent: list[Sent]
) -> None:
    page = reports.get("touchpoints/flyer", **WEEK)
    for dimension, rows in page["breakdowns"].items():
        found = [(r["value"], r["clicks"], r["visitors"]) for r in rows]
        assert found == expected(sent, dimension, touchpoint="flyer")[0][:len(found)], dimension

    cut = (FIRST + timedelta(hours=30), FIRST + timedelta(days=3, hours=7))
    window = {"from": "2026-03-03T06:00", "to": "2026-03-05T07:00"}
    for dimension in ("device", "referrer", "source"):
        body = reports.get("breakdown", dimension=dimension, limit=100, **window)
        assert answered(body) == expected(sent, dimension, cut), dimension


def test_the_rollups_rebuilt_from_the_raw_clicks_are_those_ingest_kept(
    app: Flask, sent: list[Sent]
) -> None:
    rt = runtime(app)

    def rows() -> list[tuple[Any, ...]]:
        with rt.sessions() as session:
            return [tuple(r) for r in session.execute(
                select(DimensionStats.__table__).order_by(*DimensionStats.__table__.primary_key)
            )]

    kept = rows()
    assert sum(r[6] + r[7] for r in kept if r[0] == "device") == len(sent)
    with transaction(rt.sessions) as session:
        rebuild_dimension_stats(session, ZoneInfo("UTC"))
    assert rows() == kept

    with transaction(rt.sessions) as session:
        assert ensure_dimension_zone(session, ZoneInfo("America/New_York"))
        assert not ensure_dimension_zone(session, ZoneInfo("America/New_York"))
    shifted: Counter[Any] = Counter()
    for c in sent:
        shifted[c.at.astimezone(ZoneInfo("America/New_York")).date()] += 1
    by_day: Counter[Any] = Counter()
    for r in rows():
        if r[0] == "source":
            by_day[r[1]] += r[6] + r[7]
    assert by_day == shifted


@pytest.mark.parametrize(("group_by", "top"), [("touchpoint", 1), ("stage", 2), ("stage", 9)])
def test_the_charts_series_are_the_top_groups_and_the_rest_added_up(
    app: Flask, sent: list[Sent], group_by: str, top: int
) -> None:
    rt = runtime(app)
    cut = (FIRST + timedelta(hours=30), FIRST + timedelta(days=3, hours=7))
    windows = [
        (WEEK, (FIRST, FIRST + timedelta(days=DAYS))),  # whole days: the daily rollups
        ({"from": "2026-03-03T06:00", "to": "2026-03-05T07:00"}, cut),  # the hourly ones
    ]
    for args, (start, end) in windows:
        days = [d.date() for d in (start.replace(hour=0) + timedelta(days=i) for i in range(7))
                if d < end]
        per: dict[str, Counter[Any]] = {}
        for c in sent:
            if not c.bot and start <= c.at < end:
                touchpoint, _, stage, _ = LINKS[c.slug]
                key = touchpoint if group_by == "touchpoint" else stage
                per.setdefault(key, Counter())[c.at.date()] += 1
        ranked = sorted(per, key=lambda k: (-sum(per[k].values()), k))
        query = ReportQuery.from_args(args, now=utcnow(), zone=rt.settings.zone)
        with rt.sessions() as session:
            found = timeseries(session, query, interval="day", group_by=group_by, top=top)

        assert [b.date() for b in found.buckets] == days
        assert [(s.key, list(s.clicks)) for s in found.series] == [
            (k, [per[k][d] for d in days]) for k in ranked[:top]
        ], args
        rest = ranked[top:]
        if rest:
            assert found.other is not None
            assert list(found.other.clicks) == [sum(per[k][d] for k in rest) for d in days]
            assert found.other_groups == len(rest)
        else:
            assert found.other is None and found.other_groups == 0


@pytest.mark.parametrize("top", [1, 2, 3])
def test_the_chart_takes_its_top_lines_from_the_tables_ranking_unchanged(
    app: Flask, sent: list[Sent], top: int
) -> None:
    """The dashboard ranks the touchpoints once, for its tables, and hands the chart its top."""
    rt = runtime(app)
    query = ReportQuery.from_args(WEEK, now=utcnow(), zone=rt.settings.zone)
    with rt.sessions() as session:
        most, _ = most_and_least(session, query, limit=top)
        ranked = Ranked(tuple(row.touchpoint.key for row in most.rows if row.clicks),
                        most.listed.clicked)
        given = timeseries(session, query, interval="day", top=top, ranked=ranked)
        alone = timeseries(session, query, interval="day", top=top)
    assert given == alone
    assert sum(sum(s.clicks) for s in given.series) + sum(
        given.other.clicks if given.other else ()
    ) == sum(1 for c in sent if not c.bot)

