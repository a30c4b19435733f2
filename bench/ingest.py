"""Ingest throughput: one worker process draining a stream of realistic clicks into PostgreSQL.

Fills the stream with N clicks (phones, desktops, crawlers and link previews; many IPs; scans and
clicks) over 10,000 links, then times `touchlink worker --drain` (enrichment, clicks, rollups)
and, as the baseline on the same database in the same run, a plain batched INSERT of the same
number of already-enriched rows into a copy of the clicks table (no enrichment, no rollups, no
stream). Prints clicks/s of both, their ratio, the worker's time split and its peak RSS.

    python bench/ingest.py                  # 1,000,000 clicks
    python bench/ingest.py --clicks 20000   # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from analytics.events import encode_click  # noqa: E402
from bench.common import AGENTS, fresh_postgres, fresh_redis, seed_links, touchlink  # noqa: E402
from shortener.clicks import RawClick, new_click_id  # noqa: E402

REFERRERS = ["", "", "https://www.instagram.com/", "https://l.facebook.com/l.php?u=x",
             "https://www.google.com/", "android-app://com.google.android.gm/", "https://t.co/abc"]


def fill_stream(
    url: str, stream: str, clicks: int, links: int, *, journeys: bool = False
) -> float:
    """XADD `clicks` realistic raw clicks (with `journeys`, each visitor's browser a journey
    cookie); returns the seconds it took."""
    rng = random.Random(42)
    agents = [a for _, a, weight in AGENTS for _ in range(weight)]
    # 200,000 visitors: a few very active, most seen a few times, as on real links.
    visitors = [
        f"{rng.choice((81, 92, 176, 203, 24, 66, 2, 31))}.{rng.randrange(256)}."
        f"{rng.randrange(256)}.{rng.randrange(1, 255)}"
        for _ in range(200_000)
    ]
    # A generator of their own, so that the clicks are the same with journeys or without.
    cookie_rng = random.Random(7)
    cookies = [f"{cookie_rng.getrandbits(128):032x}" for _ in visitors] if journeys else []
    client = redis.Redis.from_url(url)
    started = time.perf_counter()
    now = time.time()
    pipe = client.pipeline(transaction=False)
    for i in range(clicks):
        link = min(int(rng.paretovariate(1.1)), links)
        visitor = (
            rng.randrange(len(visitors))
            if rng.random() < 0.6
            else min(int(rng.paretovariate(1.0)) - 1, len(visitors) - 1)
        )
        click = RawClick(
            click_id=new_click_id(),
            # Over the last 3 days, in the order they happen (as the redirect stamps them),
            # up to 50 ms apart between web processes.
            at=now - 3 * 86400 * (1 - i / clicks) - rng.random() * 0.05,
            link_id=link,
            touchpoint_id=(link - 1) % 200 + 1,
            stage_id=(link - 1) % 5 + 1,
            ip=visitors[visitor],
            user_agent=rng.choice(agents),
            referrer=rng.choice(REFERRERS),
            language=rng.choice(("en-US,en;q=0.9", "fr-FR,fr;q=0.8", "de-DE", "")),
            via_qr=rng.random() < 0.15,
            journey=cookies[visitor] if journeys else "",
        )
        pipe.xadd(stream, encode_click(click))  # type: ignore[arg-type]
        if i % 5000 == 4999:
            pipe.execute()
            print(f"\rfilling the stream: {i + 1:,}/{clicks:,}", end="", flush=True)
    pipe.execute()
    print()
    return time.perf_counter() - started


def baseline_insert(env: dict[str, str], rows: int) -> float:
    """Seconds for a plain batched INSERT of `rows` enriched rows into a copy of `clicks`."""
    code = f"""
import time, psycopg, random
url = {env["TOUCHLINK_DATABASE_URL"]!r}
with psycopg.connect(url, autocommit=True) as conn:
    conn.execute("CREATE TABLE clicks_baseline (LIKE clicks INCLUDING ALL)")
    rng = random.Random(1)
    batch = [(f"{{i:032x}}", "2026-01-01T00:00:00+00", 1, 1, 1, False, False, None, "mobile", "iOS",
              "Mobile Safari", "FR", "instagram.com", "en-US", f"{{rng.getrandbits(128):032x}}")
             for i in range({rows})]
    started = time.perf_counter()
    with conn.cursor() as cur:
        for i in range(0, len(batch), 1000):
            with conn.transaction():  # one transaction per 1,000 rows, as ingest batches
                cur.executemany(
                    "INSERT INTO clicks_baseline (click_id, occurred_at, link_id, touchpoint_id, stage_id, via_qr,"
                    " is_bot, bot_reason, device, os, browser, country, referrer_host, language, visitor_id)"
                    " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", batch[i:i + 1000])
    print(time.perf_counter() - started)
    conn.execute("DROP TABLE clicks_baseline")
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--baseline-rows", type=int, default=200_000)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="touchlink-ingest-"))
    env = {
        **os.environ,
        "TOUCHLINK_INSTANCE_PATH": str(workdir / "instance"),
        "TOUCHLINK_DATABASE_URL": fresh_postgres("touchlink_ingest"),
        "TOUCHLINK_REDIS_URL": fresh_redis(4),
        "TOUCHLINK_LOG_LEVEL": "WARNING",
    }
    touchlink(env, "init")
    seed_links(env, 10_000)
    fill_seconds = fill_stream(env["TOUCHLINK_REDIS_URL"], "touchlink:clicks", args.clicks, 10_000)
    print(f"stream filled with {args.clicks:,} clicks in {fill_seconds:.1f}s")

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    worker = subprocess.run(
        [sys.executable, "-c", "from wsgi import main; main()", "worker", "--drain",
         "--consumer", "bench", "--batch-size", str(args.batch_size)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The worker process's own CPU time: steadier than its wall time on a busy machine.
    cpu_seconds = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    peak_rss_mb = after.ru_maxrss / 1024
    print(worker.stdout.strip())
    rate = args.clicks / seconds

    baseline_rows = min(args.baseline_rows, args.clicks)
    base_seconds = baseline_insert(env, baseline_rows)
    base_rate = baseline_rows / base_seconds
    print(f"worker: {args.clicks:,} clicks in {seconds:.1f}s = {rate:,.0f} clicks/s "
          f"(process start and enricher load included); peak RSS {peak_rss_mb:.0f} MB; "
          f"CPU {cpu_seconds:.1f}s = {cpu_seconds / args.clicks * 1e6:.0f} µs per click")
    print(f"baseline: plain INSERT of {baseline_rows:,} enriched rows: {base_rate:,.0f} rows/s; "
          f"ratio {rate / base_rate:.2f}")
    split = re.search(r"read ([\d.]+)s, enrich ([\d.]+)s, write ([\d.]+)s, ack ([\d.]+)s", worker.stdout)
    stats = dict(zip(("read_s", "enrich_s", "write_s", "ack_s"), map(float, split.groups()), strict=True)) if split else {}
    print(json.dumps({
        "bench": "ingest", "clicks": args.clicks, "rate": round(rate), "seconds": round(seconds, 1),
        "baseline_rate": round(base_rate), "ratio": round(rate / base_rate, 3),
        "peak_rss_mb": round(peak_rss_mb), "cpu_s": round(cpu_seconds, 2),
        "cpu_us_per_click": round(cpu_seconds / args.clicks * 1e6, 1), **stats,
    }))


if __name__ == "__main__":
    main()
