"""Report speed over a large workspace: the touchpoint and stage reports against a plain GROUP BY
over the raw clicks, on the same database in the same run.

Builds 5,000 touchpoints (1 or 2 journey stages each, Zipf-like popularity, the least popular
never clicked, 1% archived), 50,000 links and 10,000,000 clicks over 90 days (~10% bots, ~15%
scans, visitors repeating within a day) with a bulk loader in SQL that writes the clicks and
every rollup as ingest would. That claim is checked first: a sample of raw clicks goes through the
real ingest (`store_clicks`), then the loader rebuilds every rollup table from the clicks ingest
stored, and both must be identical row for row. Then each report variant is timed through
`analytics.reports`, planned from scratch (caches cleared: p50, p95) and with its plan kept (warm
p50), a few over HTTP, the raw GROUP BY a few times; the figures of both are compared touchpoint
by touchpoint. Prints p50/p95 per variant, the raw query's time and the ratio, and one JSON line.

    python bench/reports.py                 # 10,000,000 clicks: loading takes minutes
    python bench/reports.py --smoke         # tiny sizes, seconds
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from analytics.dimension_rollups import VALUES as DIMENSION_VALUES  # noqa: E402
from analytics.dimension_rollups import rebuild_sql as dimension_sql  # noqa: E402
from analytics.enrich import make_enricher  # noqa: E402
from analytics.ingest import store_clicks  # noqa: E402
from analytics.partitions import ensure_partitions  # noqa: E402
from analytics.reports import engagement as reports  # noqa: E402
from analytics.reports import stages  # noqa: E402
from analytics.reports.periods import plan_pieces  # noqa: E402
from analytics.reports.query import DEFAULT_LIMIT, MAX_LIMIT, Order, ReportQuery  # noqa: E402
from bench.common import (  # noqa: E402
    AGENTS,
    POSTGRES,
    free_port,
    fresh_postgres,
    touchlink,
    wait_for_http,
)
from shortener.clicks import RawClick  # noqa: E402
from shortener.db import make_engine  # noqa: E402
from shortener.models import Channel  # noqa: E402

ROLLUPS = ("link_hourly_stats", "daily_visitors", "touchpoint_stats", "dimension_stats")
ZIPF = 1.1  # touchpoint popularity: rank r gets a share ∝ r^-1.1
ACTIVE = 0.96  # the least popular 4% of touchpoints get no clicks at all

# --- the workspace --------------------------------------------------------------------------------

# The stage of link `l` of touchpoint `tp`: every touchpoint has a first stage; even ones a second,
# which their odd-numbered links serve.
STAGE_OF = (
    "(%(stages)s::int[])[1 + CASE WHEN {tp} %% 2 = 0 AND {j} %% 2 = 1"
    " THEN ({tp} %% %(n_stages)s + 1 + {tp} / 2 %% (%(n_stages)s - 1)) %% %(n_stages)s"
    " ELSE {tp} %% %(n_stages)s END]"
)

SEED_TOUCHPOINTS = """
INSERT INTO touchpoints (key, name, channel, archived, archived_at)
SELECT 'tp-' || lpad(i::text, 5, '0'), 'Touchpoint ' || i,
       (ARRAY['digital', 'physical', 'human', 'hybrid'])[1 + i %% 4],
       i %% 100 = 0, CASE WHEN i %% 100 = 0 THEN now() END
FROM generate_series(1, %(touchpoints)s) AS i ORDER BY i
"""
# A quarter of the touchpoints have an exposure: one placement, begun before any click.
SEED_PLACEMENTS = """
INSERT INTO placements (touchpoint_id, count, starts_on)
SELECT id, 1000 + id * 37 % 20000, current_date - 400 FROM touchpoints WHERE id % 4 = 1
"""

SEED_LINKS = f"""
INSERT INTO links (domain, slug, slug_key, destination, touchpoint_id, stage_id, campaign,
                   archived, archived_at)
SELECT 'go.example.com', 'l' || l, 'l' || l, 'https://shop.example.com/p/' || l, tp,
       {STAGE_OF.format(tp="tp", j="j")}, CASE WHEN l %% 7 = 0 THEN 'spring' END, l %% 200 = 0,
       CASE WHEN l %% 200 = 0 THEN now() END
FROM (SELECT l, (l - 1) / %(per_tp)s + 1 AS tp, (l - 1) %% %(per_tp)s AS j
      FROM generate_series(1, %(links)s) AS l) AS numbered
ORDER BY l
"""

# One UTC day of clicks, in time order, into a temporary table `batch`.
GENERATE_DAY = f"""
CREATE TEMP TABLE batch ON COMMIT DROP AS
WITH drawn AS (
    SELECT %(start)s::timestamptz + random() * %(seconds)s * interval '1 second' AS occurred_at,
           least(floor(power((%(zipf_c)s - 1) * random() + 1, %(zipf_e)s)), %(active)s)::int
               AS rank,
           floor(power(random(), 2) * %(per_tp)s)::int AS j,
           random() AS bot, random() AS qr, random() AS dim,
           floor(power(random(), 3) * %(people)s)::int AS person,
           random() < 0.25 AS regular, floor(random() * 8)::int AS seat
    FROM generate_series(1, %(n)s)
), placed AS (
    SELECT *, (rank - 1) * 1009 %% %(touchpoints)s + 1 AS tp, bot < 0.1 AS is_bot,
           1 + floor(dim * 6)::int AS kind, 1 + floor(dim * 997)::int %% 8 AS place
    FROM drawn
)
SELECT lpad(to_hex(floor(extract(epoch FROM occurred_at) * 1000)::bigint), 12, '0')
           || lpad(to_hex(%(seq)s + row_number() OVER (ORDER BY occurred_at)), 20, '0')
           AS click_id,
       occurred_at, (tp - 1) * %(per_tp)s + j + 1 AS link_id, tp AS touchpoint_id,
       {STAGE_OF.format(tp="tp", j="j")} AS stage_id,
       qr < 0.15 AS via_qr, is_bot,
       CASE WHEN is_bot THEN 'crawler' END AS bot_reason,
       CASE WHEN is_bot THEN 'bot'
            ELSE (ARRAY['mobile', 'mobile', 'mobile', 'desktop', 'desktop', 'tablet'])[kind] END
           AS device,
       CASE WHEN is_bot THEN 'Other'
            ELSE (ARRAY['iOS', 'Android', 'iOS', 'Windows', 'Mac OS X', 'iOS'])[kind] END AS os,
       CASE WHEN is_bot THEN (ARRAY['Googlebot', 'bingbot', 'Slackbot', 'WhatsApp'])[1 + kind %% 4]
            ELSE (ARRAY['Mobile Safari', 'Chrome Mobile', 'Mobile Safari', 'Chrome', 'Safari',
                        'Mobile Safari'])[kind] END AS browser,
       (ARRAY['FR', 'DE', 'US', 'GB', 'ES', 'IT', 'NL', NULL])[place] AS country,
       (ARRAY['instagram.com', 'google.com', NULL, 'facebook.com', NULL, 't.co', NULL,
              'mail.google.com'])[place] AS referrer_host,
       (ARRAY['Instagram', 'Google', NULL, 'Facebook', NULL, 'Twitter', NULL,
              'Gmail'])[place] AS referrer_site,
       (ARRAY['en-US', 'fr-FR', 'de-DE', NULL])[1 + place %% 4] AS language,
       -- A quarter of the clicks come from a link's eight regulars, who click it again.
       md5(CASE WHEN is_bot THEN 'bot' || person %% 500
                WHEN regular THEN 'regular' || ((tp - 1) * %(per_tp)s + j) || '.' || seat
                ELSE person::text END || ':' || %(day)s) AS visitor_id,
       false AS is_test
FROM placed
ORDER BY occurred_at
"""

CLICK_COLUMNS = (
    "click_id, occurred_at, link_id, touchpoint_id, stage_id, via_qr, is_bot, bot_reason, device,"
    " os, browser, country, referrer_host, referrer_site, language, visitor_id, is_test"
)
# What ingest does to a set of clicks, in SQL: a visitor counts once per link per UTC day, in the
# hour of their first click (in time order, as the stream delivers them).
DAILY_VISITORS_FROM = """
INSERT INTO daily_visitors (day, link_id, visitor_id)
SELECT DISTINCT CAST(occurred_at AT TIME ZONE 'UTC' AS date), link_id, visitor_id
FROM {source} WHERE NOT is_bot
"""
LINK_HOURLY_FROM = """
INSERT INTO link_hourly_stats
    (hour, link_id, touchpoint_id, stage_id, clicks, scans, bot_clicks, visitors, first_click_at,
     last_click_at)
SELECT date_trunc('hour', occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', link_id,
       touchpoint_id, stage_id, count(*) FILTER (WHERE NOT is_bot),
       count(*) FILTER (WHERE NOT is_bot AND via_qr), count(*) FILTER (WHERE is_bot),
       count(*) FILTER (WHERE first_visit), min(occurred_at) FILTER (WHERE NOT is_bot),
       max(occurred_at) FILTER (WHERE NOT is_bot)
FROM (SELECT *, NOT is_bot AND row_number() OVER (
          PARTITION BY CAST(occurred_at AT TIME ZONE 'UTC' AS date), link_id, visitor_id, is_bot
          ORDER BY occurred_at, click_id) = 1 AS first_visit
      FROM {source}) AS c
GROUP BY 1, 2, 3, 4
"""
# Days from the hourly rows; weeks (from Monday) and months from the days.
TOUCHPOINT_STATS_FROM = [
    ("day", "link_hourly_stats", "CAST(hour AT TIME ZONE 'UTC' AS date)", ""),
    ("week", "touchpoint_stats", "CAST(date_trunc('week', period_start) AS date)",
     "WHERE period = 'day'"),
    ("month", "touchpoint_stats", "CAST(date_trunc('month', period_start) AS date)",
     "WHERE period = 'day'"),
]
TOUCHPOINT_STATS_SQL = """
INSERT INTO touchpoint_stats (period, period_start, stage_id, touchpoint_id, clicks, scans,
                              bot_clicks, visitors, last_click_at)
SELECT %(period)s, {start}, stage_id, touchpoint_id, sum(clicks), sum(scans), sum(bot_clicks),
       sum(visitors), max(last_click_at)
FROM {source} {where}
GROUP BY 2, 3, 4
ORDER BY 2, 3, 4
"""


def one(conn: psycopg.Connection[Any], sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


def rollups_from(conn: psycopg.Connection[Any], source: str) -> None:
    conn.execute(DAILY_VISITORS_FROM.format(source=source))
    conn.execute(LINK_HOURLY_FROM.format(source=source))
    for dimension in DIMENSION_VALUES:
        conn.execute(dimension_sql(source, dimension, zone="'UTC'"))


def touchpoint_stats_from_hourly(conn: psycopg.Connection[Any]) -> None:
    for period, source, start, where in TOUCHPOINT_STATS_FROM:
        sql = TOUCHPOINT_STATS_SQL.format(start=start, source=source, where=where)
        conn.execute(sql, {"period": period})


def seed_workspace(conn: psycopg.Connection[Any], args: argparse.Namespace) -> dict[str, Any]:
    stages = [row[0] for row in conn.execute("SELECT id FROM stages ORDER BY position, id")]
    params = {
        "touchpoints": args.touchpoints,
        "links": args.links,
        "per_tp": args.links // args.touchpoints,
        "stages": stages,
        "n_stages": len(stages),
    }
    with conn.transaction():
        conn.execute(SEED_TOUCHPOINTS, params)
        ids = one(conn, "SELECT ARRAY[min(id), max(id)] FROM touchpoints")
        assert ids == [1, args.touchpoints], "touchpoint ids must be 1..N"
        conn.execute(SEED_LINKS, params)
        assert one(conn, "SELECT ARRAY[min(id), max(id)] FROM links") == [1, args.links], "ids"
        conn.execute(SEED_PLACEMENTS)
    return params


# --- the loader, checked against ingest -----------------------------------------------------------


def make_partitions(url: str, *, since: datetime, now: datetime) -> list[str]:
    """The month partitions of the clicks to be loaded, from `since` (a new database has this
    month's and the next two): without them every older click would go to the default
    partition, where no report prunes by month and from which a month's partition made later
    would have to move them. Their names."""
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        made = ensure_partitions(session, now=now, since=since)
    engine.dispose()
    return made


def check_loader_against_ingest(
    conn: psycopg.Connection[Any], url: str, clicks: int, now: datetime
) -> dict[str, int]:
    """Store `clicks` raw clicks through the real ingest, rebuild the rollups from the stored
    clicks with the loader's SQL, and compare every rollup table row for row."""
    links = conn.execute("SELECT id, touchpoint_id, stage_id FROM links WHERE NOT archived"
                         " ORDER BY id LIMIT 300").fetchall()
    rng = random.Random(7)
    agents = [agent for _, agent, weight in AGENTS for _ in range(weight)]
    ips = [f"203.0.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(150)]
    # 45 days back: the sample crosses days, weeks and months.
    times = sorted(now.timestamp() - rng.random() * 45 * 86400 for _ in range(clicks))
    raw = []
    for i, at in enumerate(times):
        link_id, touchpoint_id, stage_id = links[min(int(rng.paretovariate(1.2)), len(links)) - 1]
        raw.append(RawClick(
            click_id=f"{int(at * 1000):012x}{i:020x}", at=at, link_id=link_id,
            touchpoint_id=touchpoint_id, stage_id=stage_id, ip=rng.choice(ips),
            user_agent=rng.choice(agents), referrer="", language="en-US",
            via_qr=rng.random() < 0.15,
        ))
    engine = make_engine(url)
    enricher = make_enricher()
    with Session(engine) as session:
        for i in range(0, len(raw), 500):
            with session.begin():
                store_clicks(session, raw[i:i + 500], enricher, now=now)
    engine.dispose()

    with conn.transaction():
        counts = _compare_rollups(conn)
        conn.execute("TRUNCATE clicks, visitor_salts, " + ", ".join(ROLLUPS))
    return counts


def _compare_rollups(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Rebuild the rollups from the stored clicks with the loader's SQL and compare them with
    what ingest made; the rows of each table."""
    counts = {}
    for table in ROLLUPS:
        conn.execute(f"CREATE TEMP TABLE ingest_{table} AS SELECT * FROM {table}")
        counts[table] = one(conn, f"SELECT count(*) FROM {table}")
        conn.execute(f"TRUNCATE {table}")
    rollups_from(conn, "clicks")
    touchpoint_stats_from_hourly(conn)
    for table in ROLLUPS:
        differ = conn.execute(
            f"SELECT (SELECT count(*) FROM (TABLE ingest_{table} EXCEPT ALL TABLE {table}) a),"
            f" (SELECT count(*) FROM (TABLE {table} EXCEPT ALL TABLE ingest_{table}) b)"
        ).fetchone()
        if differ != (0, 0):
            raise SystemExit(f"the loader disagrees with ingest on {table}: {differ} rows differ")
        conn.execute(f"DROP TABLE ingest_{table}")
    return counts


def load_clicks(
    conn: psycopg.Connection[Any], workspace: dict[str, Any], args: argparse.Namespace,
    now: datetime,
) -> None:
    """`args.clicks` clicks over the `args.days` days up to `now`, a UTC day at a time."""
    first = now - timedelta(days=args.days)
    days = []
    day = datetime(first.year, first.month, first.day, tzinfo=UTC)
    while day < now:
        start, end = max(day, first), min(day + timedelta(days=1), now)
        # Weekends are quieter.
        days.append((start, end, (end - start).total_seconds() * (0.8 if day.weekday() >= 5 else 1)))
        day += timedelta(days=1)
    total_weight = sum(weight for _, _, weight in days)
    active = max(1, int(args.touchpoints * ACTIVE))
    conn.execute("SET synchronous_commit = off")
    conn.execute("SET work_mem = '256MB'")
    done, started = 0, time.perf_counter()
    for i, (start, end, weight) in enumerate(days):
        n = args.clicks - done if i == len(days) - 1 else round(args.clicks * weight / total_weight)
        params = {
            **workspace, "start": start, "seconds": (end - start).total_seconds(), "n": n,
            "zipf_c": (active + 1) ** (1 - ZIPF), "zipf_e": 1 / (1 - ZIPF), "active": active,
            "people": max(1000, args.clicks // 5), "seq": done, "day": start.date().isoformat(),
        }
        with conn.transaction():  # `batch` is dropped at its commit
            conn.execute(GENERATE_DAY, params)
            conn.execute(f"INSERT INTO clicks ({CLICK_COLUMNS}) SELECT {CLICK_COLUMNS} FROM batch")
            rollups_from(conn, "batch")
        done += n
        rate = done / (time.perf_counter() - started)
        print(f"\rloading clicks and rollups: {100 * done / args.clicks:5.1f}%  "
              f"({done:,}/{args.clicks:,}, day {i + 1}/{len(days)}, {rate:,.0f} clicks/s)",
              end="", flush=True)
    print()
    with conn.transaction():
        touchpoint_stats_from_hourly(conn)


# --- the raw answer -------------------------------------------------------------------------------

RAW_TOUCHPOINTS = """
WITH counts AS (
    SELECT touchpoint_id,
           count(*) FILTER (WHERE occurred_at >= %(start)s AND NOT is_bot) AS clicks,
           count(*) FILTER (WHERE occurred_at >= %(start)s AND NOT is_bot AND via_qr) AS scans,
           count(*) FILTER (WHERE occurred_at < %(start)s AND NOT is_bot) AS previous_clicks,
           max(occurred_at) FILTER (WHERE occurred_at >= %(start)s AND NOT is_bot) AS last_click_at,
           count(*) FILTER (WHERE occurred_at >= %(start)s) AS current_clicks,
           count(*) AS any_clicks
    FROM clicks
    WHERE occurred_at >= %(previous)s AND occurred_at < %(end)s {stage}
    GROUP BY touchpoint_id
), visits AS (
    -- A visitor of a link on a day counts where their first click of that day is.
    SELECT touchpoint_id, count(*) AS visitors
    FROM (SELECT touchpoint_id, min(occurred_at) AS first_at
          FROM clicks
          WHERE NOT is_bot AND occurred_at >= %(start_day)s AND occurred_at < %(end)s {stage}
          GROUP BY CAST(occurred_at AT TIME ZONE 'UTC' AS date), link_id, visitor_id,
                   touchpoint_id) AS firsts
    WHERE first_at >= %(start)s
    GROUP BY touchpoint_id
)
SELECT t.key, coalesce(c.clicks, 0), coalesce(c.scans, 0), coalesce(v.visitors, 0),
       coalesce(c.previous_clicks, 0), c.last_click_at
FROM touchpoints AS t
LEFT JOIN counts AS c ON c.touchpoint_id = t.id
LEFT JOIN visits AS v ON v.touchpoint_id = t.id
-- Every touchpoint that existed in the window (archived ones too: their clicks happened).
WHERE ((t.created_at < %(end)s AND (t.archived_at IS NULL OR t.archived_at > %(start)s))
       OR c.current_clicks > 0) {member}
"""
# With a stage filter, the touchpoints with a link at that stage live in the window, or any
# click there.
STAGE_MEMBER = """
AND (c.any_clicks > 0 OR EXISTS (SELECT 1 FROM links AS l WHERE l.touchpoint_id = t.id
     AND l.created_at < %(end)s AND (l.archived_at IS NULL OR l.archived_at > %(start)s)
     AND l.stage_id = (SELECT id FROM stages WHERE key = %(stage)s)))
"""

RAW_STAGES = """
WITH counts AS (
    SELECT stage_id, count(*) FILTER (WHERE NOT is_bot) AS clicks,
           count(*) FILTER (WHERE NOT is_bot AND via_qr) AS scans,
           count(DISTINCT c.touchpoint_id) FILTER (WHERE NOT is_bot) AS touchpoints
    FROM clicks AS c
    WHERE occurred_at >= %(start)s AND occurred_at < %(end)s
    GROUP BY stage_id
), visits AS (
    SELECT stage_id, count(*) AS visitors
    FROM (SELECT stage_id, min(occurred_at) AS first_at
          FROM clicks AS c
          WHERE NOT is_bot AND occurred_at >= %(start_day)s AND occurred_at < %(end)s
          GROUP BY CAST(occurred_at AT TIME ZONE 'UTC' AS date), link_id, visitor_id,
                   stage_id) AS firsts
    WHERE first_at >= %(start)s
    GROUP BY stage_id
)
SELECT s.key, coalesce(c.clicks, 0), coalesce(c.scans, 0), coalesce(v.visitors, 0),
       coalesce(c.touchpoints, 0)
FROM stages AS s
LEFT JOIN counts AS c ON c.stage_id = s.id
LEFT JOIN visits AS v ON v.stage_id = s.id
ORDER BY s.position, s.id
"""


def raw_answer(conn: psycopg.Connection[Any], variant: Variant) -> dict[str, tuple[Any, ...]]:
    q = variant.query
    start_day = datetime(q.start.year, q.start.month, q.start.day, tzinfo=UTC)
    params: dict[str, Any] = {
        "start": q.start, "end": q.end, "previous": q.previous_start, "start_day": start_day,
    }
    if variant.kind == "stages":
        rows = conn.execute(RAW_STAGES, params).fetchall()
    else:
        stage = member = ""
        if q.stage is not None:
            stage, member = "AND stage_id = (SELECT id FROM stages WHERE key = %(stage)s)", STAGE_MEMBER
            params["stage"] = q.stage
        sql = RAW_TOUCHPOINTS.format(stage=stage, member=member)
        rows = conn.execute(sql, params).fetchall()
    conn.rollback()
    return {row[0]: tuple(row[1:]) for row in rows}


# --- the variants ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str  # "touchpoints" or "stages"
    query: ReportQuery
    order: Order = "most"
    raw_runs: int = 0  # how often to time the raw GROUP BY (0: not compared)

    def run(self, session: Session, *, limit: int = DEFAULT_LIMIT) -> reports.TouchpointReport | stages.StageReport:
        if self.kind == "stages":
            return stages.stage_report(session, self.query)
        return reports.touchpoint_report(session, self.query, order=self.order, limit=limit)

    def http_path(self) -> str:
        args = {"from": self.query.start.isoformat(), "to": self.query.end.isoformat()}
        if self.query.stage:
            args["stage"] = self.query.stage
        if self.kind == "touchpoints":
            args["order"] = self.order
        return f"/api/v1/reports/{self.kind}?{urlencode(args)}"


def variants(now: datetime, stage: str, raw_runs: int) -> list[Variant]:
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    today = datetime(now.year, now.month, now.day, tzinfo=UTC)

    def period(days: int, stage_key: str | None = None, until: datetime = end) -> ReportQuery:
        return ReportQuery(start=until - timedelta(days=days), end=until, stage=stage_key)

    return [
        Variant("touchpoints most 30d", "touchpoints", period(30), raw_runs=raw_runs),
        Variant("touchpoints least 30d", "touchpoints", period(30), "least"),
        Variant("touchpoints most 30d stage", "touchpoints", period(30, stage)),
        Variant("touchpoints most 90d", "touchpoints", period(90), raw_runs=raw_runs),
        Variant("touchpoints least 90d", "touchpoints", period(90), "least"),
        Variant("touchpoints most 90d stage", "touchpoints", period(90, stage), raw_runs=1),
        Variant("touchpoints least 90d stage", "touchpoints", period(90, stage), "least"),
        # From a date to a date: whole days, the last one today.
        Variant("touchpoints most 90d dates", "touchpoints",
                period(90, until=today + timedelta(days=1))),
        # Ending at the start of today: clicks stored after the end, the bounded plan.
        Variant("touchpoints most 89d to today", "touchpoints", period(89, until=today), raw_runs=1),
        Variant("stages 30d", "stages", period(30)),
        Variant("stages 90d", "stages", period(90), raw_runs=1),
    ]


def report_values(report: reports.TouchpointReport | stages.StageReport) -> dict[str, tuple[Any, ...]]:
    if isinstance(report, stages.StageReport):
        return {r.stage.key: (r.clicks, r.scans, r.visitors, r.touchpoints) for r in report.rows}
    return {
        r.touchpoint.key: (r.clicks, r.scans, r.visitors, r.previous_clicks, r.last_click_at)
        for r in report.rows
    }


def full_report(session: Session, variant: Variant) -> dict[str, tuple[Any, ...]]:
    """Every touchpoint's figures: the most and the least engaged 1,000 of each channel."""
    if variant.kind == "stages":
        return report_values(variant.run(session))
    found: dict[str, tuple[Any, ...]] = {}
    for channel in Channel:
        for order in ("most", "least"):
            query = ReportQuery(variant.query.start, variant.query.end, stage=variant.query.stage,
                                channel=channel.value)
            report = reports.touchpoint_report(session, query, order=order,
                                               limit=MAX_LIMIT)
            found |= report_values(report)
    return found


def timed(fn: Callable[[], Any], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return times


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


@contextmanager
def server(env: dict[str, str]) -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen(
        [shutil.which("granian") or "granian", "--interface", "wsgi", "--workers", "1",
         "--port", str(port), "--no-log", "wsgi:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(port)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def time_variant(
    session: Session, raw_conn: psycopg.Connection[Any], variant: Variant, runs: int
) -> dict[str, Any]:
    """p50/p95 planned from scratch (caches cleared) and with the plan kept; the raw query; and
    whether both give every touchpoint the same figures."""

    def call(cold: bool) -> None:
        if cold:
            reports.clear_caches()
        variant.run(session)
        session.rollback()

    call(True)  # the connection and the page cache warm, as in a running server
    cold = timed(lambda: call(True), runs)
    warm = timed(lambda: call(False), runs)
    q = variant.query
    pieces = plan_pieces(q.previous_start if variant.kind == "touchpoints" else q.start, q.start,
                         q.end, open_end=q.end > datetime.now(UTC))
    entry: dict[str, Any] = {"p50": statistics.median(cold), "p95": p95(cold),
                             "warm_p50": statistics.median(warm), "pieces": len(pieces)}
    if variant.raw_runs:
        expected: dict[str, tuple[Any, ...]] = {}

        def raw() -> None:
            expected.update(raw_answer(raw_conn, variant))

        raw_times = timed(raw, variant.raw_runs)
        got = full_report(session, variant)
        session.rollback()
        entry |= {"raw": statistics.median(raw_times), "agree": got == expected}
        if got != expected:
            wrong = [k for k in expected if got.get(k) != expected[k]][:5]
            print(f"  {variant.name}: DISAGREE on {[(k, got.get(k), expected[k]) for k in wrong]}")
    return entry


def build(args: argparse.Namespace, url: str, env: dict[str, str], now: datetime) -> dict[str, Any]:
    """A new workspace in `args.database`: the loader checked against ingest, then every click
    and rollup; what it holds, also kept as the database's comment for `--reuse`."""
    fresh_postgres(args.database)
    touchlink(env, "init")
    sa_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    # The ingest check goes 45 days back.
    make_partitions(sa_url, since=now - timedelta(days=max(args.days, 45)), now=now)
    with psycopg.connect(url, autocommit=True) as conn:  # transactions are explicit below
        conn.execute("SET TIME ZONE 'UTC'")
        workspace = seed_workspace(conn, args)
        started = time.perf_counter()
        sample = check_loader_against_ingest(conn, sa_url, args.sample, now)
        print(f"loader check: {args.sample:,} clicks through ingest "
              f"({', '.join(f'{t} {n:,} rows' for t, n in sample.items())}) and rebuilt by the "
              f"loader: identical ({time.perf_counter() - started:.1f}s)")
        started = time.perf_counter()
        load_clicks(conn, workspace, args, now)
        load_seconds = time.perf_counter() - started
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        vacuum_seconds = time.perf_counter() - started
        about = {"now": now.isoformat(), "days": args.days, "touchpoints": args.touchpoints,
                 "links": args.links, "load_s": round(load_seconds)}
        conn.execute(f"COMMENT ON DATABASE \"{args.database}\" IS "
                     f"'{json.dumps(about)}'")
    print(f"loaded in {load_seconds:.0f}s (+ VACUUM ANALYZE {vacuum_seconds:.0f}s)")
    return about


def reused(url: str, database: str) -> dict[str, Any]:
    """What the workspace a previous `--keep` run left holds."""
    with psycopg.connect(url) as conn:
        comment = one(conn, f"SELECT shobj_description(oid, 'pg_database') FROM pg_database"
                            f" WHERE datname = '{database}'")
    if not comment:
        raise SystemExit(f"{database} holds no workspace of this bench: run it with --keep")
    about: dict[str, Any] = json.loads(comment)
    return about


def describe(url: str) -> tuple[dict[str, int], dict[str, int], str]:
    """Rows per table and per touchpoint_stats period, and the first stage's key."""
    with psycopg.connect(url, autocommit=True) as conn:
        sizes = {t: one(conn, f"SELECT count(*) FROM {t}")
                 for t in ("clicks", "clicks_default", *ROLLUPS)}
        periods: dict[str, int] = dict(conn.execute(
            "SELECT period, count(*) FROM touchpoint_stats GROUP BY period").fetchall())
        never = one(conn, "SELECT count(*) FROM touchpoints t WHERE NOT archived AND NOT EXISTS"
                          " (SELECT 1 FROM touchpoint_stats s WHERE s.touchpoint_id = t.id)")
        stage = one(conn, "SELECT key FROM stages ORDER BY position LIMIT 1")
    print("workspace: " + ", ".join(f"{t} {n:,}" for t, n in sizes.items())
          + f" ({', '.join(f'{n:,} {p}s' for p, n in periods.items())}); "
          f"{never} live touchpoints never clicked")
    return sizes, periods, stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--touchpoints", type=int, default=5_000)
    parser.add_argument("--links", type=int, default=50_000)
    parser.add_argument("--clicks", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=180, help="of clicks, up to now")
    parser.add_argument("--runs", type=int, default=20, help="timed calls per report variant")
    parser.add_argument("--raw-runs", type=int, default=3, help="timed raw queries (headline)")
    parser.add_argument("--sample", type=int, default=5_000, help="clicks through ingest")
    parser.add_argument("--database", default="touchlink_reports", help="on the local PostgreSQL")
    parser.add_argument("--reuse", action="store_true", help="the workspace left by --keep")
    parser.add_argument("--keep", action="store_true", help="leave the workspace for --reuse")
    parser.add_argument("--load-only", action="store_true", help="build the workspace, keep it")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    args = parser.parse_args()
    if args.smoke:
        args.touchpoints, args.links, args.clicks = 100, 1_000, 50_000
        args.runs, args.raw_runs, args.sample = 3, 1, 1_000

    workdir = Path(tempfile.mkdtemp(prefix="touchlink-reports-"))
    url = f"{POSTGRES}/{args.database}"
    env = {**os.environ, "TOUCHLINK_INSTANCE_PATH": str(workdir / "instance"),
           "TOUCHLINK_DATABASE_URL": url, "TOUCHLINK_LOG_LEVEL": "WARNING"}
    env.pop("TOUCHLINK_REDIS_URL", None)
    env.pop("TOUCHLINK_TIMEZONE", None)  # the raw queries cut days in UTC
    sa_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    if args.reuse:
        about = reused(url, args.database)
    else:
        about = build(args, url, env, datetime.now(UTC).replace(microsecond=0))
    if args.load_only:
        return
    args.touchpoints, args.links, args.days = about["touchpoints"], about["links"], about["days"]
    now = datetime.fromisoformat(about["now"])
    load_seconds = about["load_s"]
    sizes, periods, stage = describe(url)

    engine = make_engine(sa_url)
    results: dict[str, dict[str, Any]] = {}
    print(f"{'variant':32} {'p50':>8} {'p95':>8} {'warm p50':>9} {'raw':>9} {'ratio':>7}  agree")
    with Session(engine) as session, psycopg.connect(url, autocommit=True) as raw_conn:
        raw_conn.execute("SET TIME ZONE 'UTC'")
        raw_conn.execute("SET work_mem = '256MB'")
        for variant in variants(now, stage, args.raw_runs):
            entry = results[variant.name] = time_variant(session, raw_conn, variant, args.runs)
            raw = (f" {entry['raw']:7.0f}ms {entry['raw'] / entry['p50']:6.0f}x  {entry['agree']}"
                   if "raw" in entry else "")
            print(f"{variant.name:32} {entry['p50']:6.1f}ms {entry['p95']:6.1f}ms "
                  f"{entry['warm_p50']:7.1f}ms{raw}", flush=True)
    engine.dispose()

    over_http: dict[str, float] = {}
    key = touchlink(env, "keys", "create", "--name", "bench", "--role", "analyst").split()[0]
    with server(env) as port:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for variant in variants(now, stage, 0):
            if variant.name not in ("touchpoints most 90d", "touchpoints most 30d", "stages 90d"):
                continue

            def get(v: Variant = variant) -> None:
                connection.request("GET", v.http_path(), headers={"Authorization": f"Bearer {key}"})
                response = connection.getresponse()
                body = response.read()
                assert response.status == 200, body[:300]

            get()
            times = timed(get, args.runs)
            over_http[variant.name] = statistics.median(times)
            print(f"HTTP {variant.name:27} {statistics.median(times):6.1f}ms {p95(times):6.1f}ms"
                  "  (plan kept by the server after the first request)")
        connection.close()

    agree = all(e["agree"] for e in results.values() if "agree" in e)
    head, month = results["touchpoints most 90d"], results["touchpoints most 30d"]
    print(f"touchpoint report over 90 days: p50 {head['p50']:.1f} ms, p95 {head['p95']:.1f} ms "
          f"(plan kept: {head['warm_p50']:.1f} ms); raw GROUP BY {head['raw']:.0f} ms; "
          f"{head['raw'] / head['p50']:,.0f}x faster; agree: {agree}")
    print(json.dumps({
        "bench": "reports", "clicks": sizes["clicks"], "touchpoints": args.touchpoints,
        "links": args.links,
        "p50_ms_90d": round(head["p50"], 2), "p95_ms_90d": round(head["p95"], 2),
        "warm_p50_ms_90d": round(head["warm_p50"], 2),
        "raw_ms_90d": round(head["raw"]), "speedup": round(head["raw"] / head["p50"]),
        "p50_ms_30d": round(month["p50"], 2), "raw_ms_30d": round(month["raw"]),
        "p50_ms_90d_stage": round(results["touchpoints most 90d stage"]["p50"], 2),
        "p50_ms_stages_90d": round(results["stages 90d"]["p50"], 2),
        "http_p50_ms_90d": round(over_http["touchpoints most 90d"], 2),
        "agree": agree, "loader_matches_ingest": True, "load_s": round(load_seconds),
        "rows": {**sizes, **{f"touchpoint_stats_{p}": n for p, n in periods.items()}},
        "variants": {name: {k: round(v, 2) if isinstance(v, float) else v for k, v in e.items()}
                     for name, e in results.items()},
    }))
    if not args.keep:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')


if __name__ == "__main__":
    main()
