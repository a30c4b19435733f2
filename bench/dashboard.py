"""The analyst dashboard over a large workspace: the whole page, served by `granian`, for 7, 30
and 90 days, against what its breakdowns cost when they grouped the raw clicks, in the same run.

Builds the workspace of `bench/reports.py` (5,000 touchpoints, 50,000 links, by default
10,000,000 clicks over 180 days, its loader checked against the real ingest first, every rollup
included), signs an analyst in and times `GET /dashboard?range=…` over HTTP (p50, p95, the size
of the HTML). The baseline is the page's six breakdowns grouped from the raw clicks, as the page
did before `dimension_stats` (`analytics.reports.breakdowns._from_clicks`), timed on the same
database; both answers are compared value by value. Then the 30-day pages of the busiest
touchpoint, a median one and the busiest link (their breakdowns read their own raw clicks).
Prints one line per window and page, and one JSON line.

    python bench/dashboard.py               # 10,000,000 clicks: loading takes minutes
    python bench/dashboard.py --smoke       # tiny sizes, seconds
    python bench/dashboard.py --reuse       # the workspace a previous run left (`--keep`)
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from analytics.reports.breakdowns import DIMENSIONS, _from_clicks, _from_rollups  # noqa: E402
from analytics.reports.query import ReportQuery  # noqa: E402
from bench.common import POSTGRES, touchlink  # noqa: E402
from bench.reports import (  # noqa: E402
    check_loader_against_ingest,
    load_clicks,
    make_partitions,
    p95,
    seed_workspace,
    server,
)
from shortener.db import make_engine  # noqa: E402

DATABASE = "touchlink_dashboard"
EMAIL, PASSWORD = "analyst@bench.test", "bench-password-1234"
RANGES = {"7d": 7, "30d": 30, "90d": 90}
TARGET_MS, TARGET_KB, TARGET_RATIO = 150, 300, 50
# The page before dimension_stats, on this workspace (the scale issue's figures, 7/30/90 days).
BEFORE_MS = {"7d": 12_700, "30d": 19_000, "90d": 38_000}


def build(args: argparse.Namespace, url: str, env: dict[str, str], now: datetime) -> None:
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.database}"')
    touchlink(env, "init")
    sa_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    # The ingest check goes 45 days back.
    make_partitions(sa_url, since=now - timedelta(days=max(args.days, 45)), now=now)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        workspace = seed_workspace(conn, args)
        check_loader_against_ingest(conn, sa_url, args.sample, now)
        print(f"loader check: {args.sample:,} clicks through ingest, rebuilt identically")
        started = time.perf_counter()
        load_clicks(conn, workspace, args, now)
        print(f"loaded in {time.perf_counter() - started:.0f}s")
        conn.execute("VACUUM ANALYZE")
    touchlink(env, "users", "create", "--email", EMAIL, "--role", "analyst",
              "--password-stdin", stdin=f"{PASSWORD}\n")


def signed_in(port: int) -> urllib.request.OpenerDirector:
    """An opener carrying an analyst's session cookie."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    base = f"http://127.0.0.1:{port}"
    form = opener.open(f"{base}/signin", timeout=30).read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token, "no CSRF token on the sign-in page"
    data = urllib.parse.urlencode(
        {"email": EMAIL, "password": PASSWORD, "csrf_token": token.group(1)}
    ).encode()
    landed = opener.open(f"{base}/signin", data=data, timeout=30)
    assert "/signin" not in landed.url, "sign-in failed"
    return opener


def page_times(opener: urllib.request.OpenerDirector, port: int, name: str, runs: int,
               path: str = "/dashboard") -> tuple[list[float], int]:
    url = f"http://127.0.0.1:{port}{path}?range={name}"
    size = 0
    times = []
    for i in range(runs + 1):  # the first request warms the server's caches
        started = time.perf_counter()
        with opener.open(url, timeout=300) as response:
            body = response.read()
            assert response.status == 200, body[:300]
        if i:
            times.append((time.perf_counter() - started) * 1000)
        size = len(body)
    return times, size


def breakdown_times(session: Session, query: ReportQuery, runs: int) -> tuple[float, float, bool]:
    """(ms for the six breakdowns from the rollups, ms from the raw clicks, same answers)."""
    def rollups() -> dict[Any, Any]:
        return {d: _from_rollups(session, query, d, 10) for d in DIMENSIONS}

    def raw() -> dict[Any, Any]:
        return _from_clicks(session, query, DIMENSIONS, 10)

    fast = []
    for _ in range(runs):
        started = time.perf_counter()
        answer = rollups()
        fast.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    expected = raw()
    slow = (time.perf_counter() - started) * 1000
    return statistics.median(fast), slow, answer == expected


def drill_downs(session: Session, now: datetime) -> dict[str, tuple[str, int]]:
    """The pages of the busiest touchpoint, a median one and the busiest link over the last 30
    days: (path, human and bot clicks there)."""
    since = now - timedelta(days=30)
    per_touchpoint = session.execute(text(
        "SELECT t.key, count(*) FROM clicks AS c JOIN touchpoints AS t ON t.id = c.touchpoint_id"
        " WHERE c.occurred_at >= :since GROUP BY t.key ORDER BY 2 DESC, 1"
    ), {"since": since}).all()
    busiest_link = session.execute(text(
        "SELECT link_id, count(*) FROM clicks WHERE occurred_at >= :since"
        " GROUP BY link_id ORDER BY 2 DESC, 1 LIMIT 1"
    ), {"since": since}).one()
    busiest, median = per_touchpoint[0], per_touchpoint[len(per_touchpoint) // 2]
    return {
        "busiest touchpoint": (f"/dashboard/touchpoints/{busiest[0]}", int(busiest[1])),
        "median touchpoint": (f"/dashboard/touchpoints/{median[0]}", int(median[1])),
        "busiest link": (f"/dashboard/links/{busiest_link[0]}", int(busiest_link[1])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--touchpoints", type=int, default=5_000)
    parser.add_argument("--links", type=int, default=50_000)
    parser.add_argument("--clicks", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--runs", type=int, default=10, help="timed requests per window")
    parser.add_argument("--sample", type=int, default=5_000, help="clicks through ingest")
    parser.add_argument("--reuse", action="store_true", help="the workspace left by --keep")
    parser.add_argument("--keep", action="store_true", help="leave the workspace for --reuse")
    parser.add_argument("--database", default=DATABASE, help="on the local PostgreSQL")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    args = parser.parse_args()
    if args.smoke:
        args.touchpoints, args.links, args.clicks, args.runs, args.sample = 100, 1_000, 50_000, 3, 500

    url = f"{POSTGRES}/{args.database}"
    workdir = Path(tempfile.gettempdir()) / f"touchlink-{args.database}"
    env = {**os.environ, "TOUCHLINK_INSTANCE_PATH": str(workdir / "instance"),
           "TOUCHLINK_DATABASE_URL": url, "TOUCHLINK_LOG_LEVEL": "WARNING"}
    env.pop("TOUCHLINK_REDIS_URL", None)
    now = datetime.now(UTC).replace(microsecond=0)
    if not args.reuse:
        build(args, url, env, now)
    with psycopg.connect(url) as conn:
        clicks = conn.execute("SELECT count(*) FROM clicks").fetchone()
    print(f"workspace: {clicks[0] if clicks else 0:,} clicks")

    engine = make_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    results: dict[str, dict[str, Any]] = {}
    with server(env) as port, Session(engine) as session:
        opener = signed_in(port)
        print(f"{'window':6} {'p50':>9} {'p95':>9} {'HTML':>9} {'breakdowns':>11} "
              f"{'raw':>9} {'raw/page':>9} {'before/page':>12}  agree")
        for name, days in RANGES.items():
            times, size = page_times(opener, port, name, args.runs)
            today = now.date()
            query = ReportQuery.from_args(
                {"from": (today - timedelta(days=days - 1)).isoformat(), "to": today.isoformat()},
                now=now,
            )
            fast, raw, agree = breakdown_times(session, query, args.runs)
            page = statistics.median(times)
            results[name] = {
                "p50_ms": round(page, 1), "p95_ms": round(p95(times), 1),
                "html_kb": round(size / 1024, 1), "breakdowns_ms": round(fast, 1),
                "raw_breakdowns_ms": round(raw), "raw_over_page": round(raw / page, 1),
                "before_over_page": round(BEFORE_MS[name] / page), "agree": agree,
            }
            r = results[name]
            print(f"{name:6} {page:7.1f}ms {r['p95_ms']:7.1f}ms {r['html_kb']:7.1f}KB "
                  f"{fast:9.1f}ms {raw:7.0f}ms {r['raw_over_page']:8.1f}x "
                  f"{r['before_over_page']:11.0f}x  {agree}", flush=True)
        # The drill-down pages read their breakdowns from the raw clicks of their touchpoint or
        # link (indexed by both): the busiest touchpoint and link, and a median touchpoint.
        details = drill_downs(session, now)
        print(f"{'30 days of':34} {'p50':>9} {'p95':>9}  clicks")
        for label, (path, clicks_there) in details.items():
            times, _ = page_times(opener, port, "30d", args.runs, path)
            results[label] = {"path": path, "clicks": clicks_there,
                              "p50_ms": round(statistics.median(times), 1),
                              "p95_ms": round(p95(times), 1)}
            print(f"{label:34} {results[label]['p50_ms']:7.1f}ms {results[label]['p95_ms']:7.1f}ms"
                  f"  {clicks_there:,}", flush=True)
    engine.dispose()
    met = all(
        r["p50_ms"] <= TARGET_MS and r["html_kb"] <= TARGET_KB and r["agree"]
        and r["before_over_page"] >= TARGET_RATIO for name, r in results.items() if name in RANGES
    )
    print(f"targets (p50 <= {TARGET_MS} ms, HTML <= {TARGET_KB} KB, >= {TARGET_RATIO}x the page "
          f"before, breakdowns equal to the raw clicks'): {'met' if met else 'NOT met'}")
    print(json.dumps({"bench": "dashboard", "clicks": clicks[0] if clicks else 0,
                      "touchpoints": args.touchpoints, "links": args.links, "days": args.days,
                      "windows": results, "met": met}))
    if not args.keep:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')


if __name__ == "__main__":
    main()
