"""Bulk import speed: 10,000 link rows over the API into PostgreSQL, against creating links one
request at a time, on the same server in the same run.

Starts Touchlink (PostgreSQL + Redis) under granian on a fresh database, makes 50 store
touchpoints with one `POST /api/v1/touchpoints/bulk`, then times `POST /api/v1/links/bulk` with
10,000 rows sent as a CSV upload (custom slugs) and as JSON (random slugs); the baseline is the
single `POST /api/v1/links` repeated (a sample, scaled to the same number of rows). Checks that
every row was created and that an imported slug redirects. Prints the figures and one JSON line.

    python bench/bulk.py                 # 10,000 rows
    python bench/bulk.py --rows 1000     # smoke
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.common import free_port, fresh_postgres, fresh_redis, touchlink, wait_for_http  # noqa: E402

STAGES = ("awareness", "consideration", "decision", "post-purchase", "support")
STORES = 50


class Api:
    def __init__(self, port: int, key: str) -> None:
        self.port, self.key = port, key

    def post(self, path: str, body: bytes, content_type: str) -> tuple[int, Any, float]:
        """(status, JSON answer, seconds) of one POST."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        started = time.perf_counter()
        conn.request("POST", path, body=body, headers={
            "Authorization": f"Bearer {self.key}", "Content-Type": content_type})
        response = conn.getresponse()
        answer = json.loads(response.read())
        seconds = time.perf_counter() - started
        conn.close()
        return response.status, answer, seconds

    def status_of(self, path: str) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
        return status


def link_rows(count: int, prefix: str) -> list[dict[str, str]]:
    return [
        {
            "url": f"https://shop.example.com/stores/{i % STORES}/offer/{i}?ref=flyer",
            "touchpoint": f"store-{i % STORES:02d}",
            "stage": STAGES[i % len(STAGES)],
            "campaign": "rollout",
            **({"slug": f"{prefix}{i}"} if prefix else {}),
        }
        for i in range(count)
    ]


def as_csv(rows: list[dict[str, str]]) -> bytes:
    header = list(rows[0])
    lines = [",".join(header)] + [",".join(row[name] for name in header) for row in rows]
    return ("\r\n".join(lines) + "\r\n").encode()


def multipart(data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"links.csv\"\r\n"
        "Content-Type: text/csv\r\n\r\n"
    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--single", type=int, default=300, help="single creates in the baseline")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="touchlink-bulk-"))
    env = {
        **os.environ,
        "TOUCHLINK_INSTANCE_PATH": str(workdir / "instance"),
        "TOUCHLINK_DATABASE_URL": fresh_postgres("touchlink_bulk"),
        "TOUCHLINK_REDIS_URL": fresh_redis(5),
        "TOUCHLINK_BASE_URL": "http://go.example.com",
        "TOUCHLINK_LOG_LEVEL": "WARNING",
    }
    touchlink(env, "init")
    key = touchlink(env, "keys", "create", "--name", "bench", "--role", "marketer").split()[0]
    port = free_port()
    server = subprocess.Popen(
        [shutil.which("granian") or "granian", "--interface", "wsgi", "--workers", "1",
         "--blocking-threads", "4", "--port", str(port), "wsgi:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(port)
        api = Api(port, key)
        stores = [{"key": f"store-{i:02d}", "name": f"Store {i}", "channel": "physical",
                   "exposure": 2000} for i in range(STORES)]
        status, answer, tp_seconds = api.post(
            "/api/v1/touchpoints/bulk", json.dumps({"rows": stores}).encode(), "application/json")
        assert status == 200 and answer["totals"]["created"] == STORES, answer

        body, content_type = multipart(as_csv(link_rows(args.rows, "s")))
        status, answer, csv_seconds = api.post("/api/v1/links/bulk", body, content_type)
        assert status == 200 and answer["totals"]["created"] == args.rows, answer["totals"]

        payload = json.dumps({"rows": link_rows(args.rows, ""), "atomic": True}).encode()
        status, answer, json_seconds = api.post("/api/v1/links/bulk", payload, "application/json")
        assert status == 200 and answer["totals"]["created"] == args.rows, answer["totals"]
        random_slug = answer["results"][-1]["link"]["slug"]

        singles = link_rows(args.single, "one")
        started = time.perf_counter()
        for row in singles:
            status, _, _ = api.post("/api/v1/links", json.dumps(row).encode(), "application/json")
            assert status == 201
        single_seconds = (time.perf_counter() - started) / args.single * args.rows

        assert api.status_of("/s0") == 302 and api.status_of(f"/{random_slug}") == 302
    finally:
        server.terminate()
        server.wait(timeout=30)
    with psycopg.connect(env["TOUCHLINK_DATABASE_URL"]) as conn:
        found = conn.execute("SELECT count(*) FROM links").fetchone()
        stored = found[0] if found else 0
    assert stored == 2 * args.rows + args.single, stored

    print(f"{STORES} touchpoints (bulk JSON): {tp_seconds:.2f}s")
    print(f"{args.rows:,} links, CSV upload, custom slugs:  {csv_seconds:.2f}s "
          f"= {args.rows / csv_seconds:,.0f} rows/s")
    print(f"{args.rows:,} links, JSON, random slugs, atomic: {json_seconds:.2f}s "
          f"= {args.rows / json_seconds:,.0f} rows/s")
    print(f"baseline: single POST /api/v1/links, {args.single} timed, scaled to {args.rows:,}: "
          f"{single_seconds:.1f}s; bulk is {single_seconds / csv_seconds:.0f}x faster (CSV)")
    print(json.dumps({
        "bench": "bulk", "rows": args.rows, "csv_seconds": round(csv_seconds, 2),
        "json_seconds": round(json_seconds, 2), "touchpoints_seconds": round(tp_seconds, 2),
        "single_seconds_scaled": round(single_seconds, 1),
        "speedup": round(single_seconds / csv_seconds, 1), "stored": stored,
    }))


if __name__ == "__main__":
    main()
