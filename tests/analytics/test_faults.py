"""Faults of the services around the pipeline delay clicks; they never lose or double them."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis
from flask import Flask
from sqlalchemy import Engine, func, select

from analytics.models import Click
from shortener.runtime import runtime
from shortener.settings import Settings
from tests.analytics.pipeline import click_many, make_link, stored, worker_env
from tests.conftest import _build_app
from tests.faults import (
    ROOT,
    RedisServer,
    TcpProxy,
    free_port,
    run_worker,
    worker_process,
)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def private_redis_app(
    settings: Settings, engine: Engine, private_redis: RedisServer
) -> Iterator[Flask]:
    yield from _build_app(replace(settings, redis_url=private_redis.url), engine)


def test_clicks_taken_while_redis_is_down_are_spooled_and_arrive_after_it_returns(
    private_redis_app: Flask,
    private_redis: RedisServer,
    settings: Settings,
    tmp_path: Path,
) -> None:
    app = private_redis_app
    make_link(app)
    client = app.test_client()
    sink = runtime(app).sink
    env = worker_env(settings, tmp_path, TOUCHLINK_REDIS_URL=private_redis.url)

    click_many(client, "flyer", 40)
    sink.flush()  # type: ignore[attr-defined]
    code, output = run_worker(env, "--drain", "--consumer", "w1")
    assert code == 0 and "40 clicks stored" in output, output

    private_redis.stop()
    click_many(client, "flyer", 60)  # every redirect still answers 302
    sink.flush()  # type: ignore[attr-defined]
    assert sink.spooled() == 60  # type: ignore[attr-defined]

    private_redis.start()  # empty: Redis kept nothing while it was down
    sink.flush()  # type: ignore[attr-defined]  # replays the spool into the stream
    assert sink.spooled() == 0  # type: ignore[attr-defined]
    code, output = run_worker(env, "--drain", "--consumer", "w1")
    assert code == 0, output
    with runtime(app).sessions() as session:
        assert stored(session) == (100, 100)


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_sql_taken_away_for_a_while_delays_ingest_and_loses_nothing(
    redis_app: Flask,
    settings: Settings,
    tmp_path: Path,
    engine: Engine,
) -> None:
    make_link(redis_app)
    client = redis_app.test_client()
    click_many(client, "flyer", 300)
    runtime(redis_app).sink.flush()  # type: ignore[attr-defined]

    proxy = TcpProxy(engine.url.port or 5432)
    proxy.start()
    through_proxy = engine.url.set(port=proxy.port).render_as_string(hide_password=False)
    proxy.cut()  # SQL is away before the worker starts, and for a while after
    process = worker_process(
        worker_env(settings, tmp_path, TOUCHLINK_DATABASE_URL=through_proxy),
        "--drain",
        "--consumer",
        "w1",
    )
    time.sleep(3)
    assert process.poll() is None, process.communicate()[0]  # still waiting for SQL
    proxy.start()
    output, _ = process.communicate(timeout=60)
    proxy.cut()
    assert process.returncode == 0, output
    assert "SQL is not answering" in output
    with runtime(redis_app).sessions() as session:
        assert stored(session) == (300, 300)
        assert session.scalar(select(func.count(func.distinct(Click.click_id)))) == 300


def test_a_server_stopping_gracefully_hands_on_the_clicks_it_still_holds(
    redis_app: Flask, redis_client: redis.Redis, settings: Settings, tmp_path: Path
) -> None:
    """Under granian, the production server: SIGTERM flushes the web workers' click queues."""
    make_link(redis_app)
    port = free_port()
    env = {
        **os.environ,
        **worker_env(settings, tmp_path),
        # Long enough that no click leaves before the stop, unless the stop flushes it.
        "TOUCHLINK_FLUSH_INTERVAL": "1",
    }
    server = subprocess.Popen(
        ["granian", "--interface", "wsgi", "--workers", "2", "--blocking-threads", "4",
         "--port", str(port), "wsgi:app"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        # Stopping granian while a worker is still starting leaves it hanging: wait for both.
        started = 0
        assert server.stdout is not None
        for line in server.stdout:
            started += "Started worker" in line
            if started == 2:
                break
        for _ in range(12):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/flyer", headers={"User-Agent": "Mozilla/5.0 (X11; Linux)"})
            assert conn.getresponse().status == 302
            conn.close()
        assert redis_client.xlen(settings.stream) == 0  # still queued in the web workers
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        assert server.stdout is not None
        server.stdout.close()
    assert redis_client.xlen(settings.stream) == 12
