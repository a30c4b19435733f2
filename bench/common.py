"""What the benchmark scripts share: services, the CLI, and a realistic mix of user agents."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = os.environ.get("TOUCHLINK_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
REDIS = os.environ.get("TOUCHLINK_BENCH_REDIS", "redis://127.0.0.1:6379")

# (kind, user agent, weight): mostly phones and desktops, some crawlers and link previews.
AGENTS: list[tuple[str, str, int]] = [
    (
        "human",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        30,
    ),
    (
        "human",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Mobile Safari/537.36",
        25,
    ),
    (
        "human",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36",
        20,
    ),
    (
        "human",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/17.5 Safari/605.1.15",
        8,
    ),
    ("human", "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0", 4),
    (
        "human",
        "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        3,
    ),
    ("bot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 3),
    ("bot", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 2),
    ("bot", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", 2),
    ("bot", "WhatsApp/2.23.20.0", 2),
    ("bot", "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", 1),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def fresh_postgres(name: str) -> str:
    """An empty database `name` on the local server; returns its URL."""
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{POSTGRES}/{name}"


def fresh_redis(db: int) -> str:
    url = f"{REDIS}/{db}"
    redis.Redis.from_url(url).flushdb()
    return url


def touchlink(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    """Run a `touchlink` command (with `stdin` as its input); its standard output."""
    result = subprocess.run(
        [sys.executable, "-c", "from wsgi import main; main()", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"touchlink {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def wait_for_http(port: int, path: str = "/healthz", timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port}")


def seed_links(env: dict[str, str], count: int) -> list[str]:
    """`count` links (slugs s0, s1, …) over 200 touchpoints, ids 1..count in order."""
    code = f"""
import os, random
from wsgi import create_app
from shortener.runtime import runtime
from shortener.models import Link, Touchpoint, Stage
app = create_app()
rt = runtime(app)
with rt.sessions.begin() as s:
    stages = s.query(Stage).all()
    tps = [Touchpoint(key=f"tp-{{i}}", name=f"Touchpoint {{i}}", channel=("digital","physical","human","hybrid")[i % 4]) for i in range(200)]
    s.add_all(tps)
    s.flush()
    s.add_all([Link(domain=rt.settings.short_host, slug=f"s{{i}}", destination=f"https://shop.example.com/p/{{i}}?ref=bench",
                    touchpoint=tps[i % 200], stage=stages[i % len(stages)], campaign="bench" if i % 3 == 0 else None)
               for i in range({count})])
"""
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
    return [f"s{i}" for i in range(count)]


