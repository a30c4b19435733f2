"""The redirect's CPU cost per request under the WSGI interface, against the bare Flask app.

No server and no network: each variant runs in a process of its own, which calls the WSGI app
directly with environs like the ones bench/redirect.py sends (the same Zipf-like slugs, user
agents, 15% scans and half the requests carrying a `tl_j` cookie), after two warm-up passes that
fill the link cache. Variants alternate round by round; the CPU time per request (the process's,
background threads included) is printed per round and as the median. `--profile` prints where
the time goes in Touchlink with journeys by cookie (cProfile over CPU time).

    python bench/redirect_profile.py                   # 5 rounds of 20,000 requests
    python bench/redirect_profile.py --profile         # and the top functions
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import AGENTS, fresh_postgres, fresh_redis, seed_links, touchlink  # noqa: E402

VARIANTS = ("bare", "touchlink", "touchlink-journeys")
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def environs(slugs: list[str], count: int) -> list[dict[str, Any]]:
    rng = random.Random(1)
    agents = [a for _, a, weight in AGENTS for _ in range(weight)]
    browsers = [f"tl_j={rng.getrandbits(128):032x}" for _ in range(2_000)]
    found = []
    for _ in range(count):
        slug = slugs[min(int(rng.paretovariate(1.1)) - 1, len(slugs) - 1)]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "GET",
            "SCRIPT_NAME": "",
            "PATH_INFO": f"/{slug}",
            "QUERY_STRING": "qr=1" if rng.random() < 0.15 else "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_PORT": "40000",
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_USER_AGENT": rng.choice(agents),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.version": (1, 0),
        }
        if rng.random() < 0.5:
            environ["HTTP_COOKIE"] = rng.choice(browsers)
        found.append(environ)
    return found


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
    return None


def drive(app: WSGIApp, batch: list[dict[str, Any]]) -> None:
    for environ in batch:
        body = app({**environ, "wsgi.input": io.BytesIO(b"")}, _start_response)
        for _ in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()


def child(variant: str, count: int, profile: bool) -> None:
    app: WSGIApp
    if variant == "bare":
        from bench.bare_app import app as bare

        app = bare
    else:
        from wsgi import create_app

        app = create_app()
    batch = environs([f"s{i}" for i in range(int(os.environ["BENCH_LINKS"]))], count)
    drive(app, batch)
    drive(app, batch)
    if profile:
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        drive(app, batch)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(40)
        print(out.getvalue(), file=sys.stderr)
    wall, cpu = time.perf_counter(), time.process_time()
    drive(app, batch)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps({"cpu_us": cpu / count * 1e6, "wall_us": wall / count * 1e6}), flush=True)
    os._exit(0)  # no shutdown flush to wait for: the clicks are not the point here


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--links", type=int, default=10_000)
    parser.add_argument("--redis-db", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.requests, args.profile)
        return

    workdir = Path(tempfile.mkdtemp(prefix="touchlink-profile-"))
    env = {
        **os.environ,
        "TOUCHLINK_INSTANCE_PATH": str(workdir / "instance"),
        "TOUCHLINK_BASE_URL": "http://127.0.0.1:8000",
        "TOUCHLINK_DATABASE_URL": fresh_postgres("touchlink_profile"),
        "TOUCHLINK_REDIS_URL": fresh_redis(args.redis_db),
        "TOUCHLINK_LOG_LEVEL": "WARNING",
        "BENCH_LINKS": str(args.links),
    }
    touchlink(env, "init")
    seed_links(env, args.links)
    envs = {
        "bare": env,
        "touchlink": env,
        "touchlink-journeys": {**env, "TOUCHLINK_JOURNEYS": "cookie"},
    }
    cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for round_ in range(args.rounds):
        order = VARIANTS if round_ % 2 == 0 else VARIANTS[::-1]
        for name in order:
            command = [sys.executable, __file__, "--child", name, "--requests", str(args.requests)]
            if args.profile and round_ == 0 and name == "touchlink-journeys":
                command.append("--profile")
            out = subprocess.run(
                command, cwd=ROOT, env=envs[name], capture_output=True, text=True, check=True
            )
            if "--profile" in command:
                print(out.stderr)
            figures = json.loads(out.stdout.strip().splitlines()[-1])
            cpu[name].append(figures["cpu_us"])
        line = "  ".join(f"{name} {cpu[name][-1]:6.1f}" for name in VARIANTS)
        print(f"round {round_ + 1}: µs of CPU per request: {line}", flush=True)
    base = statistics.median(cpu["bare"])
    summary: dict[str, Any] = {"bench": "redirect_profile", "bare_cpu_us": round(base, 1)}
    for name in VARIANTS[1:]:
        mine = statistics.median(cpu[name])
        per_round = [round(b / m, 3) for m, b in zip(cpu[name], cpu["bare"], strict=True)]
        print(
            f"{name}: median {mine:.1f} µs vs bare {base:.1f} µs: +{mine - base:.1f} µs, "
            f"bare/it {base / mine:.2f} (per round {per_round})"
        )
        summary[f"{name.replace('-', '_')}_cpu_us"] = round(mine, 1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
