"""Journey reports and journey ingest on PostgreSQL, each against a baseline of the same run.

1. Reports. A workspace of 200 touchpoints and 10,000 links on the classic stages, and
   `--journeys` journeys of about `--touches` touches each over `--days` days (generated in SQL:
   each journey starts at a random time, goes on every 0 to 3 days, and climbs the stages as it
   goes, some touchpoints of each stage far more visited than others). The journey rollups are
   built from the touches (as after a change of time zone), then the funnel (closed and open),
   paths and next are timed as the API computes them, over the whole history and over a month
   cut mid-day at both ends, and each is compared with one SQL query over the raw touches that
   gives the same answer (window functions, a join per stage for the closed funnel): both
   timed, answers checked equal.
2. Ingest. The same stream of realistic clicks drained by `touchlink worker` twice, into fresh
   databases: without journeys, and with every visitor's browser a journey cookie. Prints both
   rates and their ratio.

    python bench/journeys.py                                   # 1,000,000 journeys, 10 M touches
    python bench/journeys.py --journeys 20000 --ingest-clicks 20000 --runs 3   # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from analytics import journey_rollups  # noqa: E402
from analytics.reports import journeys  # noqa: E402
from analytics.reports.query import ReportQuery  # noqa: E402
from bench.common import POSTGRES, fresh_postgres, fresh_redis, seed_links, touchlink  # noqa: E402
from bench.ingest import fill_stream  # noqa: E402
from shortener.db import make_engine  # noqa: E402
from shortener.models import Stage, Touchpoint  # noqa: E402

# Journeys, then their touches: the k-th touch of a journey climbs one stage in two, on average,
# and picks a link of its stage, the first links far more often than the last (a few touchpoints
# of each stage draw most people, as on real workspaces: random()^3 puts 46 % of the touches on
# the first tenth).
GENERATE = ["""
INSERT INTO journeys (id, key, first_touch_at, last_touch_at, touches)
SELECT j, md5(j::text), now(), now(), 0 FROM generate_series(1, %(journeys)s) AS j
""", """
INSERT INTO journey_touches (click_id, journey_id, touched_at, touchpoint_id, stage_id, link_id,
                             via_qr)
SELECT lpad(to_hex(j), 12, '0') || lpad(to_hex(k), 20, '0'), j, t, links.touchpoint_id,
       links.stage_id, links.id, random() < 0.15
FROM (
    SELECT j, k,
           least(%(end)s::timestamptz - interval '1 second',
                 start + (k + random() * 0.9) * gap) AS t,
           least(4, k / 2 + (random() < 0.2)::int) AS place, random() AS pick
    FROM (SELECT j, %(end)s::timestamptz - random() * %(days)s * interval '1 day' AS start,
                 interval '1 day' * random() * 3 AS gap,
                 1 + floor(-ln(1 - random()) * %(touches)s)::int AS n
          FROM generate_series(1, %(journeys)s) AS j) AS journey,
         LATERAL generate_series(0, n - 1) AS k
) AS touch
JOIN (SELECT stages.position - 1 AS place, array_agg(links.id) AS ids
      FROM links JOIN stages ON stages.id = links.stage_id GROUP BY stages.position) AS pool
  ON pool.place = touch.place
JOIN links ON links.id = pool.ids[1 + floor(touch.pick ^ 3 * array_length(pool.ids, 1))::int]
""", """
UPDATE journeys SET first_touch_at = s.first, last_touch_at = s.last, touches = s.n
FROM (SELECT journey_id, min(touched_at) AS first, max(touched_at) AS last, count(*) AS n
      FROM journey_touches GROUP BY journey_id) AS s
WHERE s.journey_id = journeys.id
"""]

TOUCHES = """
WITH places AS (SELECT id, row_number() OVER (ORDER BY position, id) - 1 AS place FROM stages)
SELECT journey_id, touched_at, click_id, touchpoint_id, place
FROM journey_touches JOIN places ON places.id = journey_touches.stage_id
WHERE touched_at >= %(start)s AND touched_at < %(end)s
"""

RAW_OPEN = f"""
WITH t AS ({TOUCHES}),
     f AS (SELECT journey_id, place, min(touched_at) AS first, max(touched_at) AS last
           FROM t GROUP BY journey_id, place)
SELECT a.place, count(*), count(b.journey_id)
FROM f AS a LEFT JOIN f AS b
  ON b.journey_id = a.journey_id AND b.place = a.place + 1 AND b.last > a.first
GROUP BY a.place ORDER BY a.place
"""

RAW_PATHS = f"""
WITH t AS ({TOUCHES}),
     o AS (SELECT journey_id, touchpoint_id, touched_at, click_id,
                  lag(touchpoint_id) OVER (PARTITION BY journey_id
                                           ORDER BY touched_at, click_id) AS before
           FROM t),
     p AS (SELECT journey_id,
                  array_agg(touchpoints.key COLLATE "C" ORDER BY touched_at, click_id) AS path
           FROM o JOIN touchpoints ON touchpoints.id = o.touchpoint_id
           WHERE before IS DISTINCT FROM touchpoint_id GROUP BY journey_id)
SELECT path, count(*) FROM p GROUP BY path ORDER BY count(*) DESC, path LIMIT %(limit)s
"""

RAW_NEXT = f"""
WITH t AS ({TOUCHES}),
     first AS (SELECT DISTINCT ON (journey_id) journey_id, touched_at AS at, click_id
               FROM t WHERE touchpoint_id = %(tp)s ORDER BY journey_id, touched_at, click_id),
     later AS (SELECT DISTINCT ON (t.journey_id) t.journey_id, t.touchpoint_id
               FROM t JOIN first USING (journey_id)
               WHERE (t.touched_at, t.click_id) > (first.at, first.click_id)
                 AND t.touchpoint_id <> %(tp)s
               ORDER BY t.journey_id, t.touched_at, t.click_id)
SELECT later.touchpoint_id, count(*)
FROM first LEFT JOIN later USING (journey_id) GROUP BY later.touchpoint_id
"""


def raw_closed(stages: int) -> str:
    """The greedy chain, one join per stage: the earliest touch at each stage after the last."""
    steps = ["s0 AS (SELECT journey_id, min(touched_at) AS at FROM t WHERE place = 0 "
             "GROUP BY journey_id)"]
    for k in range(1, stages):
        steps.append(
            f"s{k} AS (SELECT t.journey_id, min(t.touched_at) AS at FROM t JOIN s{k - 1} AS p "
            f"ON p.journey_id = t.journey_id AND t.touched_at > p.at WHERE t.place = {k} "
            f"GROUP BY t.journey_id)"
        )
    counts = ", ".join(f"(SELECT count(*) FROM s{k})" for k in range(stages))
    return f"WITH t AS ({TOUCHES}), {', '.join(steps)} SELECT {counts}"


def timed(run: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    times, answer = [], None
    for _ in range(runs):
        started = time.perf_counter()
        answer = run()
        times.append((time.perf_counter() - started) * 1000)
    return times, answer


def reports(url: str, runs: int, start: datetime, end: datetime) -> dict[str, Any]:
    query = ReportQuery(start=start, end=end)
    params = {"start": query.start, "end": query.end, "limit": 20}
    engine = make_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    results: dict[str, Any] = {}
    with Session(engine) as session, psycopg.connect(url, autocommit=True) as raw:
        raw.execute("SET work_mem = '256MB'")
        stages = len(session.scalars(select(Stage)).all())
        busiest = raw.execute(
            "SELECT touchpoint_id FROM journey_touches GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
        assert busiest is not None
        tp = session.get_one(Touchpoint, busiest[0])
        keys = dict(session.execute(select(Touchpoint.id, Touchpoint.key)).all())
        cases: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
            "funnel closed": (
                lambda: [r.journeys for r in journeys.funnel(session, query).rows],
                lambda: list(raw.execute(raw_closed(stages), params).fetchone() or ()),
            ),
            "funnel open": (
                lambda: [(r.journeys, r.continued or 0)
                         for r in journeys.funnel(session, query, mode="open").rows],
                lambda: [(n, c if k < stages - 1 else 0)
                         for k, n, c in raw.execute(RAW_OPEN, params).fetchall()],
            ),
            "paths": (
                lambda: [(list(r.path), r.journeys) for r in journeys.paths(session, query).rows],
                lambda: [(path, n) for path, n in raw.execute(RAW_PATHS, params).fetchall()],
            ),
            "next": (
                lambda: sorted((r.touchpoint.key if r.touchpoint else "", r.journeys)
                               for r in journeys.next_touchpoints(session, query, tp.key).rows),
                lambda: sorted((keys[after] if after else "", n) for after, n in raw.execute(
                    RAW_NEXT, {**params, "tp": tp.id}).fetchall()),
            ),
        }
        print(f"  {'report':16} {'p50':>10} {'raw':>10} {'ratio':>8}  agree")
        for name, (ours, baseline) in cases.items():
            times, answer = timed(ours, runs)
            raw_times, expected = timed(baseline, 1)
            p50, raw_ms = statistics.median(times), raw_times[0]
            agree = answer == expected
            results[name] = {"p50_ms": round(p50, 1), "raw_ms": round(raw_ms, 1),
                             "ratio": round(raw_ms / p50, 1), "agree": agree}
            print(f"  {name:16} {p50:8.1f}ms {raw_ms:8.0f}ms {raw_ms / p50:7.1f}x  {agree}")
    engine.dispose()
    return results


def ingest_rate(clicks: int, *, with_journeys: bool) -> float:
    workdir = Path(tempfile.mkdtemp(prefix="touchlink-journeys-"))
    env = {
        **os.environ,
        "TOUCHLINK_INSTANCE_PATH": str(workdir / "instance"),
        "TOUCHLINK_DATABASE_URL": fresh_postgres("touchlink_journeys_ingest"),
        "TOUCHLINK_REDIS_URL": fresh_redis(5),
        "TOUCHLINK_LOG_LEVEL": "WARNING",
    }
    touchlink(env, "init")
    seed_links(env, 10_000)
    fill_stream(env["TOUCHLINK_REDIS_URL"], "touchlink:clicks", clicks, 10_000,
                journeys=with_journeys)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "from wsgi import main; main()", "worker", "--drain",
         "--consumer", "bench"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )
    return clicks / (time.perf_counter() - started)


def generate(args: argparse.Namespace) -> tuple[str, Any, datetime]:
    """A fresh database of `args.journeys` journeys and their rollups."""
    url = fresh_postgres("touchlink_journeys")
    workdir = Path(tempfile.mkdtemp(prefix="touchlink-journeys-"))
    env = {**os.environ, "TOUCHLINK_INSTANCE_PATH": str(workdir / "instance"),
           "TOUCHLINK_DATABASE_URL": url, "TOUCHLINK_LOG_LEVEL": "WARNING"}
    env.pop("TOUCHLINK_REDIS_URL", None)
    touchlink(env, "init")
    seed_links(env, 10_000)
    started = time.perf_counter()
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in GENERATE:
            conn.execute(statement, {"journeys": args.journeys, "touches": args.touches,
                                     "days": args.days, "end": end})
        conn.execute("VACUUM ANALYZE")
        touches = conn.execute("SELECT count(*) FROM journey_touches").fetchone()
    assert touches is not None
    print(f"{args.journeys:,} journeys, {touches[0]:,} touches over {args.days} days "
          f"(loaded in {time.perf_counter() - started:.0f}s)")
    started = time.perf_counter()
    engine = make_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with Session(engine) as session, session.begin():
        journey_rollups.ensure(session, ZoneInfo("UTC"))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        paths = conn.execute("SELECT count(*) FROM journey_paths").fetchone()
    engine.dispose()
    assert paths is not None
    print(f"rollups built in {time.perf_counter() - started:.0f}s ({paths[0]:,} distinct paths)")
    return url, touches, end


def reports_part(args: argparse.Namespace) -> dict[str, Any]:
    """Generate the workspace, build its rollups, time the reports over two windows."""
    if args.reuse:
        url = f"{POSTGRES}/touchlink_journeys"
        with psycopg.connect(url, autocommit=True) as conn:
            touches = conn.execute("SELECT count(*) FROM journey_touches").fetchone()
            newest = conn.execute("SELECT max(touched_at) FROM journey_touches").fetchone()
        assert touches is not None and newest is not None and newest[0] is not None
        end = newest[0].astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        print(f"reusing touchlink_journeys: {touches[0]:,} touches")
    else:
        url, touches, end = generate(args)
    # The whole history, up to the present; then a month cut mid-day at both ends, whose edges
    # hold journeys reaching outside it.
    present = end + timedelta(hours=1)
    windows = {
        f"last {args.days} days": (present - timedelta(days=args.days), present),
        "30 days, ending 10 days ago, mid-day": (
            present - timedelta(days=40, hours=7), present - timedelta(days=10, hours=7)
        ),
    }
    found: dict[str, Any] = {"journeys": args.journeys, "touches": touches[0], "days": args.days}
    for i, (name, (start, stop)) in enumerate(windows.items()):
        print(name)
        # The month walks its edges: timed once, it is there to be read, not to pass.
        found[name] = reports(url, args.runs if i == 0 else 1, start, stop)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journeys", type=int, default=1_000_000)
    parser.add_argument("--touches", type=int, default=10, help="mean touches per journey")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--ingest-clicks", type=int, default=200_000)
    parser.add_argument("--only", choices=("reports", "ingest"), help="run one part alone")
    parser.add_argument("--reuse", action="store_true",
                        help="time the reports on the database the last run generated")
    args = parser.parse_args()
    found = reports_part(args) if args.only != "ingest" else {}
    if args.only == "reports":
        print(json.dumps({"bench": "journeys", "reports": found}))
        return
    without = ingest_rate(args.ingest_clicks, with_journeys=False)
    with_journeys = ingest_rate(args.ingest_clicks, with_journeys=True)
    print(f"ingest of {args.ingest_clicks:,} clicks: {without:,.0f} clicks/s without journeys, "
          f"{with_journeys:,.0f} with; ratio {with_journeys / without:.2f}")
    print(json.dumps({
        "bench": "journeys", "reports": found,
        "ingest": {"clicks": args.ingest_clicks, "without": round(without),
                   "with": round(with_journeys), "ratio": round(with_journeys / without, 3)},
    }))


if __name__ == "__main__":
    main()
