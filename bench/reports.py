"""Report speed over a large workspace: every report the API serves over clicks, over windows
from 7 to 400 days, against queries over the raw clicks giving the same answer, in the same run.

Builds 5,000 touchpoints (1 or 2 journey stages each, Zipf-like popularity, the least popular
never clicked, 1% archived), 50,000 links and 10,000,000 clicks over 180 days (~10% bots, ~15%
scans, visitors repeating within a day) with a bulk loader in SQL that writes the clicks and
every rollup as ingest would. That claim is checked first: a sample of raw clicks goes through the
real ingest (`store_clicks`), then the loader rebuilds every rollup table from the clicks ingest
stored, and both must be identical row for row. Then each report is asked over each window
(hour-cut and whole days, mid-month, ending in the past, reaching before the first click):
once to warm the server, then `--runs` times through HTTP for p50 and p95 (the journey map,
which the API does not serve, as a function), and its answer is compared with a raw query's,
timed `--raw-runs` times. Prints a table, one JSON line, and the cells that miss the target.

    python bench/reports.py                       # 10,000,000 clicks: loading takes minutes
    python bench/reports.py --clicks 1000000 --keep --runs 5 --raw-runs 1
    python bench/reports.py --reuse --keep --only touchpoints   # the kept workspace again
    python bench/reports.py --smoke               # tiny sizes, three windows
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
from analytics.reports.journey_map import journey_map  # noqa: E402
from analytics.reports.query import DEFAULT_LIMIT, ReportQuery  # noqa: E402
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


# --- the raw answers ------------------------------------------------------------------------------

RAW_TOUCHPOINTS = """
WITH counts AS (
    SELECT touchpoint_id,
           count(*) FILTER (WHERE occurred_at >= %(start)s AND NOT is_bot) AS clicks,
           count(*) FILTER (WHERE occurred_at >= %(start)s AND NOT is_bot AND via_qr) AS scans,
           count(*) FILTER (WHERE occurred_at < %(previous_end)s AND NOT is_bot)
               AS previous_clicks,
           max(occurred_at) FILTER (WHERE occurred_at >= %(start)s AND NOT is_bot) AS last_click_at,
           count(*) FILTER (WHERE occurred_at >= %(start)s) AS current_clicks
    FROM clicks
    WHERE (occurred_at >= %(start)s AND occurred_at < %(end)s)
       OR (occurred_at >= %(previous_start)s AND occurred_at < %(previous_end)s)
    GROUP BY touchpoint_id
), visits AS (
    -- A visitor of a link on a day counts where their first click of that day is.
    SELECT touchpoint_id, count(*) AS visitors
    FROM (SELECT touchpoint_id, min(occurred_at) AS first_at
          FROM clicks
          WHERE NOT is_bot AND occurred_at >= %(start_day)s AND occurred_at < %(end)s
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
WHERE (t.created_at < %(end)s AND (t.archived_at IS NULL OR t.archived_at > %(start)s))
      OR c.current_clicks > 0
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

# Figures per group of raw clicks (the groups `keys`, over clicks `c` joined with `join`,
# narrowed by `where`): human clicks, bot clicks, scans, human clicks of the previous window,
# the first and last human click, and visitors, each counted once per link per UTC day where
# their first human click of that day is (and only when that click is in the window).
RAW_GROUPED = """
WITH counts AS (
    SELECT {keys},
           count(*) FILTER (WHERE {current} AND NOT c.is_bot) AS human,
           count(*) FILTER (WHERE {current} AND c.is_bot) AS bots,
           count(*) FILTER (WHERE {current} AND NOT c.is_bot AND c.via_qr) AS scans,
           count(*) FILTER (WHERE NOT ({current}) AND NOT c.is_bot) AS previous,
           min(c.occurred_at) FILTER (WHERE {current} AND NOT c.is_bot) AS first_at,
           max(c.occurred_at) FILTER (WHERE {current} AND NOT c.is_bot) AS last_at
    FROM clicks AS c {join}
    WHERE ({current} OR (c.occurred_at >= %(previous_start)s
                         AND c.occurred_at < %(previous_end)s)) {where}
    GROUP BY {groups}
), firsts AS (
    SELECT DISTINCT ON (CAST(c.occurred_at AT TIME ZONE 'UTC' AS date), c.link_id, c.visitor_id)
           c.*
    FROM clicks AS c {join}
    WHERE NOT c.is_bot AND c.occurred_at >= %(start_day)s AND c.occurred_at < %(end)s {where}
    ORDER BY CAST(c.occurred_at AT TIME ZONE 'UTC' AS date), c.link_id, c.visitor_id,
             c.occurred_at, c.click_id
), visits AS (
    SELECT {keys}, count(*) AS visitors
    FROM firsts AS c {join}
    WHERE c.occurred_at >= %(start)s
    GROUP BY {groups}
)
SELECT counts.*, coalesce(visits.visitors, 0) FROM counts LEFT JOIN visits USING ({names})
"""
CURRENT = "(c.occurred_at >= %(start)s AND c.occurred_at < %(end)s)"


@dataclass(frozen=True, slots=True)
class Figures:
    human: int
    bots: int
    scans: int
    previous: int
    first_at: datetime | None
    last_at: datetime | None
    visitors: int


Grouped = dict[tuple[Any, ...], Figures]


def window_params(q: ReportQuery, *, previous: bool = True) -> dict[str, Any]:
    start_day = datetime(q.start.year, q.start.month, q.start.day, tzinfo=UTC)
    # Without the previous window, an empty one: the raw query reads what the report needs.
    return {"start": q.start, "end": q.end, "start_day": start_day,
            "previous_start": q.previous_start if previous else q.start,
            "previous_end": q.previous_end if previous else q.start}


def raw_grouped(
    conn: psycopg.Connection[Any], q: ReportQuery, keys: list[str], *, join: str = "",
    where: str = "", previous: bool = False, params: dict[str, Any] | None = None,
) -> Grouped:
    names = [f"g{i}" for i in range(len(keys))]
    sql = RAW_GROUPED.format(
        keys=", ".join(f"{k} AS {n}" for k, n in zip(keys, names, strict=True)),
        groups=", ".join(str(i + 1) for i in range(len(keys))), names=", ".join(names),
        join=join, where=where, current=CURRENT,
    )
    rows = conn.execute(sql, {**window_params(q, previous=previous), **(params or {})})
    found = {tuple(row[:len(keys)]): Figures(*row[len(keys):]) for row in rows}
    conn.rollback()
    return found


def at(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def differences(got: dict[Any, Any], expected: dict[Any, Any]) -> list[str]:
    """The first few keys on which two answers differ, with both values."""
    wrong = [k for k in {**expected, **got} if got.get(k) != expected.get(k)]
    return [f"{k}: {got.get(k)} != {expected.get(k)}" for k in wrong[:3]]


# Each check takes the raw connection, the window and the report's JSON; it returns its
# differences from the raw answer (none: equal).
Check = Callable[[psycopg.Connection[Any], ReportQuery, dict[str, Any]], list[str]]


def check_touchpoints(order: str) -> Check:
    def check(conn: psycopg.Connection[Any], q: ReportQuery, answer: dict[str, Any]) -> list[str]:
        rows = conn.execute(RAW_TOUCHPOINTS, window_params(q)).fetchall()
        conn.rollback()
        expected = {row[0]: tuple(row[1:]) for row in rows}
        got = {
            r["touchpoint"]["key"]: (r["clicks"], r["scans"], r["visitors"], r["previous_clicks"],
                                     at(r["last_click_at"]))
            for r in answer["rows"]
        }
        wrong = differences(got, {k: expected.get(k) for k in got})
        # The rows the report chose are the most (least) clicked, in that order.
        ranked = sorted((v[0] for v in expected.values()), reverse=order == "most")
        shown = [r["clicks"] for r in answer["rows"]]
        if shown != ranked[:len(shown)] or len(shown) != min(DEFAULT_LIMIT, len(ranked)):
            wrong.append(f"ranking: {shown[:5]}… != {ranked[:5]}…")
        return wrong
    return check


def check_stages(conn: psycopg.Connection[Any], q: ReportQuery, answer: dict[str, Any]) -> list[str]:
    rows = conn.execute(RAW_STAGES, window_params(q)).fetchall()
    conn.rollback()
    got = {r["stage"]["key"]: (r["clicks"], r["scans"], r["visitors"], r["touchpoints"])
           for r in answer["rows"]}
    return differences(got, {row[0]: tuple(row[1:]) for row in rows})


GROUP_KEYS = {
    "stage": ("s.key", "JOIN stages AS s ON s.id = c.stage_id"),
    "touchpoint": ("t.key", "JOIN touchpoints AS t ON t.id = c.touchpoint_id"),
}


def check_timeseries(interval: str, group_by: str) -> Check:
    key, join = GROUP_KEYS[group_by]

    def check(conn: psycopg.Connection[Any], q: ReportQuery, answer: dict[str, Any]) -> list[str]:
        found = raw_grouped(conn, q, [key, f"date_trunc('{interval}', c.occurred_at)"], join=join)
        totals: dict[Any, int] = {}
        for (group, _), f in found.items():
            totals[group] = totals.get(group, 0) + f.human
        expected = {  # a series for each group with clicks, every bucket with any figure
            k: (f.human, f.bots, f.scans, f.visitors) for k, f in found.items()
            if totals[k[0]] and (f.human, f.bots, f.scans, f.visitors) != (0, 0, 0, 0)
        }
        buckets = [datetime.fromisoformat(b) for b in answer["buckets"]]
        got = {}
        for s in answer["series"]:
            for i, bucket in enumerate(buckets):
                figures = (s["human_clicks"][i], s["bot_clicks"][i], s["scans"][i],
                           s["visitors"][i])
                if figures != (0, 0, 0, 0):
                    got[(s["key"], bucket)] = figures
        return differences(got, expected)
    return check


DIMENSION_KEYS = {
    "device": "c.device", "os": "c.os", "browser": "c.browser",
    "country": "coalesce(c.country, '')", "referrer": "coalesce(c.referrer_site, '')",
    "source": "CASE WHEN c.via_qr THEN 'scan' ELSE 'click' END",
}


def check_breakdown(dimension: str) -> Check:
    def check(conn: psycopg.Connection[Any], q: ReportQuery, answer: dict[str, Any]) -> list[str]:
        found = raw_grouped(conn, q, [DIMENSION_KEYS[dimension]])
        expected = {k[0]: (f.human, f.visitors) for k, f in found.items() if f.human}
        got = {r["value"]: (r["clicks"], r["visitors"]) for r in answer["rows"]}
        wrong = differences(got, {k: expected.get(k) for k in got})
        ranked = sorted((c for c, _ in expected.values()), reverse=True)
        shown = [r["clicks"] for r in answer["rows"]]
        if shown != ranked[:len(shown)] or len(shown) != min(len(ranked), 10):
            wrong.append(f"ranking: {shown} != {ranked[:10]}")
        if answer["total"] != sum(ranked):
            wrong.append(f"total: {answer['total']} != {sum(ranked)}")
        return wrong
    return check


def link_figures(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r["human_clicks"], r["bot_clicks"], r["scans"], r["visitors"], r["previous_clicks"],
            at(r["first_click_at"]), at(r["last_click_at"]))


def raw_link_figures(f: Figures) -> tuple[Any, ...]:
    return (f.human, f.bots, f.scans, f.visitors, f.previous, f.first_at, f.last_at)


def check_campaigns(conn: psycopg.Connection[Any], q: ReportQuery, answer: dict[str, Any]) -> list[str]:
    found = raw_grouped(conn, q, ["l.campaign"], join="JOIN links AS l ON l.id = c.link_id",
                        where="AND l.campaign IS NOT NULL")
    expected = {k[0]: (f.human, f.bots, f.scans, f.visitors, f.last_at)
                for k, f in found.items() if f.human or f.bots}
    got = {r["campaign"]: (r["human_clicks"], r["bot_clicks"], r["scans"], r["visitors"],
                           at(r["last_click_at"])) for r in answer["rows"]}
    return differences(got, expected)


def check_touchpoint_detail(key: str) -> Check:
    def check(conn: psycopg.Connection[Any], q: ReportQuery, answer: dict[str, Any]) -> list[str]:
        found = raw_grouped(conn, q, ["c.link_id"], previous=True,
                            where="AND c.touchpoint_id = (SELECT id FROM touchpoints"
                                  " WHERE key = %(key)s)", params={"key": key})
        expected = {k[0]: raw_link_figures(f) for k, f in found.items() if f.human or f.bots}
        got = {r["link"]["id"]: link_figures(r) for r in answer["links"]
               if r["human_clicks"] or r["bot_clicks"]}
        return differences(got, expected)
    return check


def check_link_detail(link_id: int) -> Check:
    def check(conn: psycopg.Connection[Any], q: ReportQuery, answer: dict[str, Any]) -> list[str]:
        found = raw_grouped(conn, q, ["c.link_id"], previous=True,
                            where="AND c.link_id = %(link)s", params={"link": link_id})
        expected = raw_link_figures(found[(link_id,)]) if (link_id,) in found else None
        return differences({link_id: link_figures(answer["figures"])}, {link_id: expected})
    return check


def check_journey_map(conn: psycopg.Connection[Any], q: ReportQuery, answer: dict[str, Any]) -> list[str]:
    found = raw_grouped(conn, q, ["t.key", "s.key"],
                        join=GROUP_KEYS["touchpoint"][1] + " " + GROUP_KEYS["stage"][1])
    expected = {k: (f.human, f.visitors) for k, f in found.items() if f.human or f.visitors}
    got = {}
    for row in answer["rows"]:
        for stage, cell in zip(answer["stages"], row["cells"], strict=True):
            if cell["clicks"] or cell["visitors"]:
                got[(row["touchpoint"]["key"], stage["key"])] = (cell["clicks"], cell["visitors"])
    return differences(got, expected)


# --- the reports and the windows ------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    name: str
    path: str  # under /api/v1/reports; "" for a report the API does not serve
    params: dict[str, str]
    check: Check | None
    hourly: bool = False  # hours: only windows of at most 31 days
    function: Callable[[Session, ReportQuery], dict[str, Any]] | None = None  # when no path


def reports_served(touchpoint: str, link_id: int) -> list[Report]:
    """Every report the API serves over clicks, as this bench asks it, with its raw check."""
    found = [
        Report("touchpoints most", "/touchpoints", {"order": "most"}, check_touchpoints("most")),
        Report("touchpoints least", "/touchpoints", {"order": "least"},
               check_touchpoints("least")),
        Report("stages", "/stages", {}, check_stages),
        Report("timeseries day/stage", "/timeseries", {"interval": "day", "group_by": "stage"},
               check_timeseries("day", "stage")),
        Report("timeseries day/touchpoint", "/timeseries",
               {"interval": "day", "group_by": "touchpoint"},
               check_timeseries("day", "touchpoint")),
        Report("timeseries hour/stage", "/timeseries", {"interval": "hour", "group_by": "stage"},
               check_timeseries("hour", "stage"), hourly=True),
    ]
    found += [Report(f"breakdown {d}", "/breakdown", {"dimension": d}, check_breakdown(d))
              for d in DIMENSION_KEYS]
    found += [
        Report("campaigns", "/campaigns", {}, check_campaigns),
        Report("touchpoint detail", f"/touchpoints/{touchpoint}", {},
               check_touchpoint_detail(touchpoint)),
        Report("link detail", f"/links/{link_id}", {}, check_link_detail(link_id)),
        Report("campaign detail", "/campaigns/spring", {}, None),
        Report("journey map", "", {}, check_journey_map,
               function=lambda s, q: journey_map(s, q).to_json()),
    ]
    return found


# Reports over data this workspace has none of: said, not timed.
NOT_MEASURED = {
    "funnel, paths, next": "no journeys in this workspace (bench/journeys.py measures them)",
    "attribution, feedback, feedback/comments": "no conversions or answers in this workspace",
}
NOT_CHECKED = {
    "campaign detail": "not checked: the same link rows as the touchpoint detail, one campaign",
}


def windows(now: datetime) -> list[tuple[str, dict[str, str]]]:
    """(name, from and to) of each window, at `now`: whole hours up to the end of the current
    one, whole local days (today included, cut at the current hour), a mid-month 30-day window
    (the 15th to the 14th) and hours ending in the past."""
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    today = now.date()
    month = today.replace(day=1) - timedelta(days=1 if today.day > 14 else 32)
    mid_start = month.replace(day=15)
    mid_end = (mid_start + timedelta(days=31)).replace(day=14)
    past = end - timedelta(days=3, hours=5)

    def hours(days: int, until: datetime = end) -> dict[str, str]:
        return {"from": (until - timedelta(days=days)).isoformat(), "to": until.isoformat()}

    def dates(days: int) -> dict[str, str]:
        return {"from": (today - timedelta(days=days - 1)).isoformat(), "to": today.isoformat()}

    return [
        ("7d hours", hours(7)), ("7d dates", dates(7)),
        ("30d hours", hours(30)), ("30d mid-month", {"from": mid_start.isoformat(),
                                                     "to": mid_end.isoformat()}),
        ("30d hours, past", hours(30, past)),
        ("90d hours", hours(90)), ("90d dates", dates(90)),
        ("180d hours", hours(180)), ("180d dates", dates(180)),
        ("400d hours", hours(400)), ("400d dates", dates(400)),
    ]


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


def describe(url: str) -> tuple[dict[str, int], dict[str, int]]:
    """Rows per table and per touchpoint_stats period."""
    with psycopg.connect(url, autocommit=True) as conn:
        sizes = {t: one(conn, f"SELECT count(*) FROM {t}")
                 for t in ("clicks", "clicks_default", *ROLLUPS)}
        periods: dict[str, int] = dict(conn.execute(
            "SELECT period, count(*) FROM touchpoint_stats GROUP BY period").fetchall())
        never = one(conn, "SELECT count(*) FROM touchpoints t WHERE NOT archived AND NOT EXISTS"
                          " (SELECT 1 FROM touchpoint_stats s WHERE s.touchpoint_id = t.id)")
    print("workspace: " + ", ".join(f"{t} {n:,}" for t, n in sizes.items())
          + f" ({', '.join(f'{n:,} {p}s' for p, n in periods.items())}); "
          f"{never} live touchpoints never clicked")
    return sizes, periods


TARGET_MS, TARGET_RATIO = 50, 100
SMOKE_WINDOWS = (0, 3, 10)  # 7 days of hours, mid-month, 400 dates


def measure_cell(
    report: Report, name: str, args: dict[str, str], now: datetime, *, get: Callable[[str], bytes],
    session: Session, raw_conn: psycopg.Connection[Any], runs: int, raw_runs: int,
) -> dict[str, Any]:
    """One report over one window: its first call, p50 and p95 of the next `runs`, the raw
    query's time and whether both answer the same."""
    q = ReportQuery.from_args(args, now=now)
    if report.hourly and q.end - q.start > timedelta(days=31):
        return {"skipped": "hours cover at most 31 days"}
    body: list[bytes] = []
    function = report.function
    if function is not None:
        def call() -> None:
            body[:] = [json.dumps(function(session, q), default=str).encode()]
            session.rollback()
    else:
        path = f"/api/v1/reports{report.path}?{urlencode({**args, **report.params})}"

        def call() -> None:
            body[:] = [get(path)]
    first = timed(call, 1)[0]  # the plan made; kept by the server, as after any first request
    times = timed(call, runs)
    answer = json.loads(body[0])
    entry: dict[str, Any] = {
        "via": "function" if report.function else "http", "first": first,
        "p50": statistics.median(times), "p95": p95(times), "kb": len(body[0]) / 1024,
    }
    if report.check is None:
        entry["agree"] = NOT_CHECKED.get(report.name, "not checked")
        return entry
    wrong: list[str] = []
    if (at(answer["from"]), at(answer["to"])) != (q.start, q.end):
        wrong = [f"window {answer['from']} to {answer['to']} (the hour turned)"]
    check = report.check

    def raw() -> None:
        wrong.extend(check(raw_conn, q, answer))
    raw_times = timed(raw, raw_runs)
    entry |= {"raw": statistics.median(raw_times), "agree": not wrong}
    entry["ratio"] = entry["raw"] / entry["p50"]
    if wrong:
        entry["differences"] = wrong[:3]
        print(f"  {report.name}, {name}: DIFFERS: {'; '.join(wrong[:3])}")
    return entry


def misses(entry: dict[str, Any]) -> list[str]:
    if "skipped" in entry:
        return []
    found = []
    if entry["p50"] > TARGET_MS:
        found.append(f"p50 {entry['p50']:.0f} ms")
    if "ratio" in entry and entry["ratio"] < TARGET_RATIO:
        found.append(f"{entry['ratio']:.0f}x")
    if entry["agree"] is False:
        found.append("differs from the raw query")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--touchpoints", type=int, default=5_000)
    parser.add_argument("--links", type=int, default=50_000)
    parser.add_argument("--clicks", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=180, help="of clicks, up to now")
    parser.add_argument("--runs", type=int, default=10, help="timed calls per report and window")
    parser.add_argument("--raw-runs", type=int, default=1, help="timed raw queries per cell")
    parser.add_argument("--sample", type=int, default=5_000, help="clicks through ingest")
    parser.add_argument("--database", default="touchlink_reports", help="on the local PostgreSQL")
    parser.add_argument("--reuse", action="store_true", help="the workspace left by --keep")
    parser.add_argument("--keep", action="store_true", help="leave the workspace for --reuse")
    parser.add_argument("--load-only", action="store_true", help="build the workspace, keep it")
    parser.add_argument("--only", help="the reports whose name holds this text")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, three windows")
    args = parser.parse_args()
    if args.smoke:
        args.touchpoints, args.links, args.clicks = 100, 1_000, 20_000
        args.runs, args.raw_runs, args.sample = 2, 1, 500

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
    sizes, periods = describe(url)

    key = touchlink(env, "keys", "create", "--name", "bench", "--role", "analyst").split()[0]
    engine = make_engine(sa_url)
    served = [r for r in reports_served("tp-00001", 1) if (args.only or "") in r.name]
    results: dict[str, dict[str, dict[str, Any]]] = {}
    print(f"{'report':26} {'window':16} {'via':4} {'first':>8} {'p50':>8} {'p95':>8} {'KB':>7} "
          f"{'raw':>9} {'ratio':>7}  agree")
    with server(env) as port, Session(engine) as session, \
            psycopg.connect(url, autocommit=True) as raw_conn:
        raw_conn.execute("SET TIME ZONE 'UTC'")
        raw_conn.execute("SET work_mem = '256MB'")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

        def get(path: str) -> bytes:
            connection.request("GET", path, headers={"Authorization": f"Bearer {key}"})
            response = connection.getresponse()
            body = response.read()
            assert response.status == 200, body[:300]
            return body

        for report in served:
            cells = results[report.name] = {}
            for index in range(len(windows(datetime.now(UTC)))):
                if args.smoke and index not in SMOKE_WINDOWS:
                    continue
                now = datetime.now(UTC)  # each cell's window as the server sees it then
                name, window = windows(now)[index]
                e = cells[name] = measure_cell(
                    report, name, window, now, get=get, session=session, raw_conn=raw_conn,
                    runs=args.runs, raw_runs=args.raw_runs,
                )
                if "skipped" in e:
                    continue
                raw = (f"{e['raw']:7.0f}ms {e['ratio']:6.0f}x  {e['agree']}" if "raw" in e
                       else f"{'':17}  {e['agree']}")
                print(f"{report.name:26} {name:16} {e['via'][:4]:4} {e['first']:6.1f}ms "
                      f"{e['p50']:6.1f}ms {e['p95']:6.1f}ms {e['kb']:7.1f} {raw}", flush=True)
        connection.close()
    engine.dispose()
    for names, reason in NOT_MEASURED.items():
        print(f"{names}: not measured, {reason}")

    failing = {f"{report} / {window}": found for report, cells in results.items()
               for window, entry in cells.items() if (found := misses(entry))}
    timed_cells = [e for c in results.values() for e in c.values() if "skipped" not in e]
    print(json.dumps({
        "bench": "reports", "clicks": sizes["clicks"], "touchpoints": about["touchpoints"],
        "links": about["links"], "days": about["days"], "runs": args.runs,
        "raw_runs": args.raw_runs, "load_s": about["load_s"], "loader_matches_ingest": True,
        "rows": {**sizes, **{f"touchpoint_stats_{p}": n for p, n in periods.items()}},
        "cells": len(timed_cells), "failing": failing, "met": not failing,
        "results": {report: {window: {k: round(v, 2) if isinstance(v, float) else v
                                      for k, v in entry.items()}
                             for window, entry in c.items()} for report, c in results.items()},
        "not_measured": NOT_MEASURED,
    }))
    target = f"p50 <= {TARGET_MS} ms, >= {TARGET_RATIO}x the raw query, the same answer"
    if failing:
        print(f"targets ({target}): NOT met in {len(failing)} of {len(timed_cells)} cells:")
        for cell, found in failing.items():
            print(f"  {cell}: {', '.join(found)}")
    else:
        print(f"targets ({target}): met in all {len(timed_cells)} cells")
    if not args.keep:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')


if __name__ == "__main__":
    main()
