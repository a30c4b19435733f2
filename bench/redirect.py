"""Redirect-and-log throughput against the bare-Flask ceiling, on the same server, in the same run.

Starts Touchlink (PostgreSQL + Redis, one ingest worker) under a production WSGI server, seeds
many links, and drives it with wrk on loopback: Zipf-like slug popularity, a mix of phone, desktop,
crawler and link-preview user agents, some scans. Then the same server with the same settings
serves a bare Flask app answering 302 with no I/O. Prints req/s, p50 and p99 of both and their
ratio; afterwards stops the server (which flushes), drains the worker, and checks that SQL holds
every click that was served.

Each run starts every server afresh, warms it for WARMUP seconds with the same load (which fills
Touchlink's link cache, as a server that has been up a while has it), then measures; the order of
the apps turns from run to run, so that none always follows the same neighbour. A ratio is taken
within each run (the apps measured minutes apart on a shared machine differ more than they do
side by side), and the summary gives the median of those as well as the ratio of the medians.

    python bench/redirect.py                         # granian, 5 runs of 10 s
    python bench/redirect.py --server gunicorn --strict --runs 1
    python bench/redirect.py --journeys              # also with journeys followed by cookie
    python bench/redirect.py --smoke                 # seconds, tiny sizes (CI)
    python bench/redirect.py --live-viewers 20       # also with 20 live-feed viewers connected

With `--live-viewers N`, a `touchlink worker` runs during every Touchlink measurement (so that the
viewers have clicks to receive, and the runs without viewers carry the same worker), N viewers
hold `GET /api/v1/live` open through the "touchlink-live" runs, and every server of the run gets
N more blocking threads per worker (a viewer holds one for as long as it watches). The summary
gives the ratio with the viewers and without them, measured side by side in each run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    AGENTS,
    free_port,
    fresh_postgres,
    fresh_redis,
    seed_links,
    touchlink,
    wait_for_http,
)

WORKERS = 2
THREADS = 8
WARMUP = 5  # seconds of load before each measurement, for every app alike


def server_command(server: str, target: str, port: int, threads: int = THREADS) -> list[str]:
    if server == "granian":
        return [
            shutil.which("granian") or "granian",
            "--interface",
            "wsgi",
            "--workers",
            str(WORKERS),
            "--blocking-threads",
            str(threads),
            "--port",
            str(port),
            "--no-log",
            target,
        ]
    if server == "gunicorn":
        return [
            shutil.which("gunicorn") or "gunicorn",
            "-w",
            str(WORKERS),
            "--threads",
            str(threads),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            target,
        ]
    raise SystemExit(f"unknown server {server}")


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing; installing it from Debian's packages")
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    return shutil.which("wrk") or "wrk"


def wrk_script(path: Path, slugs: list[str]) -> None:
    """A Lua script for wrk: Zipf-like slug popularity, weighted user agents, 15% scans, and half
    the requests from returning browsers carrying a journey cookie (ignored with journeys off)."""
    rng = random.Random(1)
    picks = [slugs[min(int(rng.paretovariate(1.1)) - 1, len(slugs) - 1)] for _ in range(20_000)]
    browsers = [f"tl_j={rng.getrandbits(128):032x}" for _ in range(2_000)]
    agents = [a for _, a, weight in AGENTS for _ in range(weight)]

    def lua_list(items: list[str]) -> str:
        return "{" + ",".join(json.dumps(i) for i in items) + "}"

    path.write_text(f"""
local slugs = {lua_list(picks)}
local agents = {lua_list(agents)}
local browsers = {lua_list(browsers)}
math.randomseed(os.time())
local threads = {{}}
setup = function(thread) table.insert(threads, thread) end
init = function(args) found = 0 end
response = function(status, headers, body) if status == 302 then found = found + 1 end end
done = function(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do n = n + t:get("found") end
  print("redirects: " .. n)
end
request = function()
  local slug = slugs[math.random(#slugs)]
  local suffix = ""
  if math.random() < 0.15 then suffix = "?qr=1" end
  local headers = {{["User-Agent"] = agents[math.random(#agents)]}}
  if math.random() < 0.5 then headers["Cookie"] = browsers[math.random(#browsers)] end
  return wrk.format("GET", "/" .. slug .. suffix, headers)
end
""")


def run_wrk(wrk: str, port: int, script: Path, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        [
            wrk,
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"redirects: (\d+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "requests": total,
        "p50_ms": _latency(out, "50%"),
        "p99_ms": _latency(out, "99%"),
        "bad": int(errors.group(1)) if errors else 0,
        "socket_errors": sock.group(1) if sock else "",  # type: ignore[dict-item]
    }


def _latency(out: str, label: str) -> float:
    value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def peak_rss_mb(parent: int) -> float:
    """The largest peak RSS among the server's processes (each worker is one)."""
    pids = [parent]
    with contextlib.suppress(OSError):
        pids += [int(p) for p in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]
    peak = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        if match:
            peak = max(peak, int(match.group(1)))
    return peak / 1024


def serve(
    server: str, target: str, port: int, env: dict[str, str], threads: int = THREADS
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        server_command(server, target, port, threads),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_http(port, "/s0" if target == "wsgi:app" else "/x")
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class LiveViewers:
    """N clients holding `GET /api/v1/live` open, each reading in a thread of its own (recv into
    a buffer, counting events: as cheap a reader as can be, so that it takes little of the CPU
    the server is measured on)."""

    def __init__(self, port: int, key: str, count: int) -> None:
        self.events = [0] * count
        self.dropped = [0] * count
        self.connected = [False] * count
        self.received = [0] * count
        self._sockets = []
        request = (
            f"GET /api/v1/live HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {key}\r\n\r\n"
        ).encode()
        for i in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=60)
            sock.sendall(request)
            self._sockets.append(sock)
            threading.Thread(target=self._read, args=(i, sock), daemon=True).start()
        deadline = time.monotonic() + 30
        while not all(self.connected):
            if time.monotonic() > deadline:
                raise SystemExit(f"only {sum(self.connected)} of {count} live viewers connected")
            time.sleep(0.05)

    def _read(self, i: int, sock: socket.socket) -> None:
        tail = b""
        while True:
            try:
                chunk = sock.recv(1 << 16)
            except OSError:
                return
            if not chunk:
                return
            if not self.connected[i]:
                if not chunk.startswith(b"HTTP/1.1 200"):
                    raise SystemExit(f"live viewer refused: {chunk[:200]!r}")
                self.connected[i] = True
            seen = tail + chunk
            self.events[i] += seen.count(b"event: clicks")
            self.dropped[i] += seen.count(b"event: dropped")
            self.received[i] += len(chunk)
            tail = chunk[-15:]  # an event name cut between two reads is counted once

    def close(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A `touchlink worker`, once it reads the stream (it starts in seconds: the load must not
    begin before it does)."""
    worker = subprocess.Popen([sys.executable, "-c", "from wsgi import main; main()", "worker",
                               "--consumer", "bench"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis.from_url(env["TOUCHLINK_REDIS_URL"])
    stream = env.get("TOUCHLINK_STREAM", "touchlink:clicks")
    started = time.time() * 1000
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and worker.poll() is None:
        with contextlib.suppress(redis.ResponseError):  # no group yet
            for consumer in client.xinfo_consumers(stream, "touchlink-ingest"):
                if consumer["name"] == b"bench" and time.time() * 1000 - consumer["idle"] > started:
                    client.close()
                    return worker
        time.sleep(0.1)
    raise SystemExit("the worker did not start reading the stream within 60 s")


def count_clicks(env: dict[str, str]) -> tuple[int, int]:
    code = """
from sqlalchemy import func, select
from wsgi import create_app
from shortener.runtime import runtime
from analytics.models import Click
rt = runtime(create_app())
with rt.sessions() as s:
    print(s.scalar(select(func.count()).select_from(Click)), s.scalar(select(func.count()).select_from(Click).where(Click.is_bot.is_(False))))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[0]), int(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=["granian", "gunicorn"], default="granian")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--links", type=int, default=10_000)
    parser.add_argument("--strict", action="store_true", help="also measure strict capture")
    parser.add_argument(
        "--journeys", action="store_true", help="also measure with journeys followed by cookie"
    )
    parser.add_argument(
        "--live-viewers", type=int, default=0, metavar="N",
        help="also measure with N live-feed viewers connected (a worker runs during the load)",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one short run")
    args = parser.parse_args()
    warmup_seconds = WARMUP
    if args.smoke:
        args.runs, args.seconds, args.links, args.connections = 1, 2, 200, 10
        warmup_seconds = 1

    wrk = ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="touchlink-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "TOUCHLINK_INSTANCE_PATH": str(workdir / "instance"),
        "TOUCHLINK_BASE_URL": f"http://127.0.0.1:{port}",
        "TOUCHLINK_DATABASE_URL": fresh_postgres("touchlink_bench"),
        "TOUCHLINK_REDIS_URL": fresh_redis(3),
        "TOUCHLINK_LOG_LEVEL": "WARNING",
    }
    touchlink(env, "init")
    slugs = seed_links(env, args.links)
    script = workdir / "mix.lua"
    wrk_script(script, slugs)
    modes = [("touchlink", env)]
    if args.strict:
        modes.append(("touchlink-strict", {**env, "TOUCHLINK_STRICT_CAPTURE": "true"}))
    if args.journeys:
        modes.append(("touchlink-journeys", {**env, "TOUCHLINK_JOURNEYS": "cookie"}))
    live = args.live_viewers > 0
    threads = THREADS + args.live_viewers  # each viewer holds a thread; the same for every app
    live_key = ""
    if live:
        modes.append(("touchlink-live", env))
        live_key = touchlink(env, "keys", "create", "--name", "bench viewers",
                             "--role", "analyst").split()[0]
    results: dict[str, list[dict[str, float]]] = {"bare": []}
    rss: dict[str, float] = {}
    served = 0
    everything = [("bare", env), *modes]
    for run in range(args.runs):
        shift = run % len(everything)
        for name, mode_env in everything[shift:] + everything[:shift]:
            target = "bench.bare_app:app" if name == "bare" else "wsgi:app"
            process = serve(args.server, target, port, mode_env, threads)
            worker = start_worker(env) if live and name != "bare" else None
            viewers = (
                LiveViewers(port, live_key, args.live_viewers) if name == "touchlink-live"
                else None
            )
            warmup = run_wrk(wrk, port, script, warmup_seconds, args.connections)
            figures = run_wrk(wrk, port, script, args.seconds, args.connections)
            rss[name] = max(rss.get(name, 0), peak_rss_mb(process.pid))
            if viewers is not None:
                figures["live_events_min"] = min(viewers.events)
                figures["live_mb_per_viewer"] = statistics.median(viewers.received) / 1e6
                figures["live_dropped"] = sum(viewers.dropped)
                viewers.close()
            if worker is not None:
                stop(worker)  # it finishes its batch; the rest is drained after the runs
            stop(process)
            results.setdefault(name, []).append(figures)
            if name != "bare":
                served += int(figures["requests"] + warmup["requests"])
            print(
                f"run {run + 1} {name:>16}: {figures['rps']:>8.0f} req/s  p50 {figures['p50_ms']:.2f} ms"
                f"  p99 {figures['p99_ms']:.2f} ms  bad {figures['bad']:.0f}"
                + (
                    f"  viewers: >= {figures['live_events_min']:.0f} batches and "
                    f"{figures['live_mb_per_viewer']:.1f} MB each, {figures['live_dropped']:.0f} "
                    "dropped" if viewers is not None else ""
                ),
                flush=True,
            )

    # Logging is the web side's job; ingest is decoupled from it (that is the point of the
    # stream), so the worker drains after the load instead of competing with it for the cores.
    started = time.perf_counter()
    ingest = subprocess.Popen([sys.executable, "-c", "from wsgi import main; main()", "worker",
                               "--drain", "--consumer", "bench"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, text=True)
    ingest_rss = 0.0
    while ingest.poll() is None:
        ingest_rss = max(ingest_rss, peak_rss_mb(ingest.pid))
        time.sleep(0.2)
    print(f"drained in {time.perf_counter() - started:.1f}s: {ingest.stdout.read().strip() if ingest.stdout else ''}")
    stored, human = count_clicks(env)

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    summary = {"bench": "redirect", "server": args.server, "runs": args.runs}
    base = med("bare", "rps")
    for name, _ in modes:
        ratio = med(name, "rps") / base
        spread = [
            round(r["rps"] / b["rps"], 3)
            for r, b in zip(results[name], results["bare"], strict=True)
        ]
        print(
            f"{name}: median {med(name, 'rps'):.0f} req/s vs bare {base:.0f} req/s = ratio {ratio:.2f}; "
            f"per run {spread}, median {statistics.median(spread):.2f}; "
            f"p50 {med(name, 'p50_ms'):.2f} ms, p99 {med(name, 'p99_ms'):.2f} ms"
        )
        key = {"touchlink": "", "touchlink-strict": "strict_", "touchlink-journeys": "journeys_",
               "touchlink-live": "live_"}[name]
        summary |= {
            f"{key}ratio": round(ratio, 3),
            f"{key}ratio_per_run": spread,
            f"{key}ratio_median_of_runs": round(statistics.median(spread), 3),
            f"{key}rps": round(med(name, "rps")),
            f"{key}p50_ms": med(name, "p50_ms"),
            f"{key}p99_ms": med(name, "p99_ms"),
        }
    if live:
        beside = [
            round(v["rps"] / t["rps"], 3)
            for v, t in zip(results["touchlink-live"], results["touchlink"], strict=True)
        ]
        print(
            f"with {args.live_viewers} live viewers vs without (same run, worker running in "
            f"both): per run {beside}, median {statistics.median(beside):.3f}; "
            f"{threads} blocking threads per server worker"
        )
        summary |= {
            "live_viewers": args.live_viewers,
            "live_vs_without_per_run": beside,
            "live_vs_without_median": round(statistics.median(beside), 3),
            "live_batches_per_viewer_min": min(r["live_events_min"] for r in results["touchlink-live"]),
            "live_dropped": sum(r["live_dropped"] for r in results["touchlink-live"]),
            "threads": threads,
        }
    summary |= {
        "baseline_rps": round(base),
        "baseline_p99_ms": med("bare", "p99_ms"),
        "web_rss_mb": round(max(v for k, v in rss.items() if k != "bare"), 1),
        "ingest_rss_mb": round(ingest_rss, 1),
        "served_measured": served,
        "clicks_stored": stored,
        "human_clicks": human,
        "lost": max(0, served - stored),
        "in_flight_extra": max(0, stored - served),
    }
    # wrk stops with requests in flight: the server answered (and logged) them, wrk never read
    # the answer. So SQL may hold up to `connections` more per run, never fewer.
    print(f"clicks in SQL: {stored} ({human} human); redirects received by wrk: {served}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
