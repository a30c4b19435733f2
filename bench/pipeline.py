"""End-to-end check of the click pipeline under load, with a worker killed mid-run.

Sends N real HTTP redirects over 30 touchpoints (some never clicked) with a mix of browser, bot
and link-preview user agents, drains them with two workers (one SIGKILLed and restarted while the
load runs), then checks that the touchpoint report's totals equal the human clicks sent, exactly,
and that the zero-click touchpoints come first in `order=least`. `--embedded` runs the same on
SQLite with no Redis and no worker.

    python bench/pipeline.py                 # PostgreSQL + Redis, two workers
    python bench/pipeline.py --embedded      # SQLite, in-process buffer
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    AGENTS,
    free_port,
    fresh_postgres,
    fresh_redis,
    touchlink,
    wait_for_http,
)

CHANNELS = ("digital", "physical", "human", "hybrid")
STAGES = ("awareness", "consideration", "decision", "post-purchase", "support")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redirects", type=int, default=10_000)
    parser.add_argument("--touchpoints", type=int, default=30)
    parser.add_argument("--idle", type=int, default=5, help="touchpoints that get no click")
    parser.add_argument("--embedded", action="store_true", help="SQLite, no Redis, no worker")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="touchlink-pipeline-"))
    port = free_port()
    env = {
        **os.environ,
        "TOUCHLINK_INSTANCE_PATH": str(workdir / "instance"),
        "TOUCHLINK_BASE_URL": f"http://127.0.0.1:{port}",
        "TOUCHLINK_LOG_LEVEL": "WARNING",
        "TOUCHLINK_RECLAIM_IDLE": "2",
        "TOUCHLINK_PROXY_HOPS": "1",  # the load sends X-Forwarded-For: many visitors
    }
    if not args.embedded:
        env["TOUCHLINK_DATABASE_URL"] = fresh_postgres("touchlink_pipeline")
        env["TOUCHLINK_REDIS_URL"] = fresh_redis(2)
    touchlink(env, "init")
    slugs = make_links(env, args.touchpoints)
    clicked = slugs[: len(slugs) - args.idle]

    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from wsgi import main; main()",
            "run",
            "--no-demo",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_http(port, "/healthz")
    workers: dict[str, subprocess.Popen[bytes]] = {}
    if not args.embedded:
        for name in ("w1", "w2"):
            workers[name] = start_worker(env, name)

    sent = Counter[str]()
    started = time.perf_counter()
    killer = None
    if workers:
        killer = threading.Timer(1.0, lambda: kill_and_restart(env, workers, "w1"))
        killer.start()
    send_load(port, clicked, args.redirects, sent)
    elapsed = time.perf_counter() - started
    if killer:
        killer.join()

    server.send_signal(signal.SIGTERM)  # flushes the clicks it holds
    server.wait(timeout=30)
    if workers:
        wait_until_ingested(env)
        for process in workers.values():
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)

    def least_engaged(*extra: str) -> dict[str, Any]:
        args = ("report", "touchpoints", "--least", "--limit", "1000", "--format", "json", *extra)
        result: dict[str, Any] = json.loads(touchlink(env, *args))
        return result

    report = least_engaged("--bots")
    human = least_engaged()
    rows = human["rows"]
    total_clicks = sum(r["clicks"] for r in rows)
    all_clicks = sum(r["clicks"] for r in report["rows"])
    idle_keys = {f"tp-{i:02d}" for i in range(len(slugs) - args.idle, len(slugs))}
    first_keys = {r["touchpoint"]["key"] for r in rows[: args.idle]}
    ok = total_clicks == sent["human"] and all_clicks == sent["all"] and first_keys == idle_keys
    print(
        f"redirects sent: {sent['all']} ({sent['human']} human, {sent['bot']} bots/previews, "
        f"{sent['scan']} scans) in {elapsed:.1f}s = {sent['all'] / elapsed:.0f} req/s"
    )
    print(
        f"report: {total_clicks} human clicks, {all_clicks} with bots; "
        f"first {args.idle} of order=least: {sorted(first_keys)}"
    )
    print("OK" if ok else "MISMATCH")
    print(
        json.dumps(
            {
                "bench": "pipeline",
                "mode": "embedded" if args.embedded else "redis",
                "sent": sent["all"],
                "human_sent": sent["human"],
                "human_reported": total_clicks,
                "all_reported": all_clicks,
                "lost": sent["all"] - all_clicks,
                "ok": ok,
            }
        )
    )
    sys.exit(0 if ok else 1)


def make_links(env: dict[str, str], count: int) -> list[str]:
    slugs = []
    for i in range(count):
        key = f"tp-{i:02d}"
        touchlink(
            env,
            "touchpoints",
            "create",
            key,
            "--name",
            f"Touchpoint {i}",
            "--channel",
            CHANNELS[i % len(CHANNELS)],
        )
        slug = f"l{i:02d}"
        touchlink(
            env,
            "links",
            "create",
            f"https://shop.example.com/{i}",
            "--touchpoint",
            key,
            "--stage",
            STAGES[i % len(STAGES)],
            "--slug",
            slug,
        )
        slugs.append(slug)
    return slugs


def send_load(port: int, slugs: list[str], count: int, sent: Counter[str]) -> None:
    rng = random.Random(7)
    plan = []
    for i in range(count):
        slug = slugs[min(int(rng.paretovariate(1.2)) - 1, len(slugs) - 1)]
        kind, agent = rng.choices(AGENTS, weights=[a[2] for a in AGENTS])[0][:2]
        scan = kind == "human" and rng.random() < 0.2
        plan.append((slug, agent, scan, kind, f"203.0.113.{i % 200}"))
    lock = threading.Lock()

    def worker(chunk: list[tuple[str, str, bool, str, str]]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for slug, agent, scan, kind, ip in chunk:
            path = f"/{slug}?qr=1" if scan else f"/{slug}"
            conn.request("GET", path, headers={"User-Agent": agent, "X-Forwarded-For": ip})
            response = conn.getresponse()
            response.read()
            if response.status != 302:
                raise RuntimeError(f"{path}: {response.status}")
            if response.getheader("Connection", "").lower() == "close" or response.version == 10:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            with lock:
                sent["all"] += 1
                sent["human" if kind == "human" else "bot"] += 1
                sent["scan"] += scan
        conn.close()

    threads = 8
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, [plan[i::threads] for i in range(threads)]))


def start_worker(env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from wsgi import main; main()",
            "worker",
            "--consumer",
            name,
            "--batch-size",
            "200",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_and_restart(
    env: dict[str, str], workers: dict[str, subprocess.Popen[bytes]], name: str
) -> None:
    workers[name].kill()
    workers[name].wait()
    print(f"killed worker {name} with SIGKILL; restarting it")
    time.sleep(0.5)
    workers[name] = start_worker(env, name)


def wait_until_ingested(env: dict[str, str], timeout: float = 120) -> None:
    import redis

    client = redis.Redis.from_url(env["TOUCHLINK_REDIS_URL"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info: Any = client.xinfo_groups("touchlink:clicks")
        if info and info[0]["pending"] == 0 and info[0].get("lag", 1) == 0:
            return
        time.sleep(0.2)
    raise RuntimeError("ingest did not finish in time")


if __name__ == "__main__":
    main()
