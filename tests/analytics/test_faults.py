"""Faults of the services around the pipeline delay clicks; they never lose or double them."""

from __future__ import annotations

import http.client
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from flask import Flask
from sqlalchemy import Engine, func, select

from analytics.models import Click, Conversion
from analytics.runtime import runtime
from tests.faults import RedisServer, TcpProxy, WatchedProcess, Workers, free_port
from tests.user_agents import BROWSER


@pytest.fixture
def private_redis_app(
    make_app: Callable[..., Flask], private_redis: RedisServer, make_flyer: Callable[[Flask], None]
) -> Flask:
    """An app capturing clicks into the test's own redis-server, with the link /flyer."""
    app = make_app(redis_url=private_redis.url)
    make_flyer(app)
    return app


@pytest.fixture
def sql_proxy(engine: Engine) -> Iterator[TcpProxy]:
    """A way to the test's PostgreSQL that the test can cut and restore (not started yet)."""
    proxy = TcpProxy(engine.url.port or 5432)
    yield proxy
    proxy.cut()


@pytest.fixture
def granian(worker_env: Callable[..., dict[str, str]]) -> Iterator[Callable[..., WatchedProcess]]:
    """`start(port, **env)`: the production server, over the test's database and Redis."""
    started: list[WatchedProcess] = []

    def start(port: int, **env: str) -> WatchedProcess:
        argv = ["granian", "--interface", "wsgi", "--workers", "2", "--blocking-threads", "4",
                "--port", str(port), "wsgi:app"]
        server = WatchedProcess(argv, worker_env(**env))
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


@pytest.mark.commits
def test_clicks_taken_while_redis_is_down_are_spooled_and_arrive_after_it_returns(
    private_redis_app: Flask, private_redis: RedisServer, workers: Workers, clicks: Any,
    worker_env: Callable[..., dict[str, str]],
) -> None:
    client = private_redis_app.test_client()
    rt = runtime(private_redis_app)
    sink: Any = rt.sink
    env = worker_env(TOUCHLINK_REDIS_URL=private_redis.url)

    clicks.send(client, "flyer", 40)
    sink.flush()
    code, output = workers.run("--drain", "--consumer", "w1", env=env)
    assert code == 0 and "40 clicks stored" in output, output

    private_redis.stop()
    clicks.send(client, "flyer", 60)  # every redirect still answers 302
    sink.flush()
    assert sink.spooled() == 60
    assert rt.metrics.registry.get_sample_value("touchlink_clicks_spooled_total") == 60

    private_redis.start()  # empty: Redis kept nothing while it was down
    sink.flush()  # replays the spool into the stream
    assert sink.spooled() == 0
    code, output = workers.run("--drain", "--consumer", "w1", env=env)
    assert code == 0 and "60 clicks stored" in output, output
    with rt.sessions() as session:
        assert clicks.stored(session) == (100, 100)


@pytest.mark.commits
def test_a_conversion_taken_while_redis_is_down_is_spooled_and_stored_once(
    private_redis_app: Flask, private_redis: RedisServer, workers: Workers,
    worker_env: Callable[..., dict[str, str]], headers: Callable[[str], dict[str, str]],
) -> None:
    api, rt = private_redis_app.test_client(), runtime(private_redis_app)
    coupon = api.patch("/api/v1/touchpoints/flyer", json={"coupons": ["FLYER5"]},
                       headers=headers("marketer"))
    assert coupon.status_code == 200
    tracker = headers("tracker")
    env = worker_env(TOUCHLINK_REDIS_URL=private_redis.url)

    private_redis.stop()
    sale = {"coupon": "flyer5", "event": "sale", "value": "5.00", "currency": "EUR"}
    taken = api.post("/api/v1/conversions", json=sale, headers=tracker)
    assert taken.status_code == 202  # in the spool: taken, as a click would be
    assert rt.sink.spooled() == 1  # type: ignore[attr-defined]

    private_redis.start()
    rt.sink.flush()  # type: ignore[attr-defined]  (replays the spool into the stream)
    assert rt.sink.spooled() == 0  # type: ignore[attr-defined]
    code, output = workers.run("--drain", "--consumer", "w1", env=env)
    assert code == 0 and "1 outcomes stored" in output, output
    with rt.sessions() as session:
        stored = session.execute(select(Conversion.id, Conversion.value_micros)).all()
    assert [tuple(row) for row in stored] == [(taken.json["id"], 5_000_000)]


@pytest.mark.commits
@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_sql_taken_away_for_a_while_delays_ingest_and_loses_nothing(
    redis_app: Flask,
    make_flyer: Callable[[Flask], None],
    engine: Engine,
    sql_proxy: TcpProxy,
    workers: Workers,
    worker_env: Callable[..., dict[str, str]],
    clicks: Any,
) -> None:
    make_flyer(redis_app)
    clicks.send(redis_app.test_client(), "flyer", 300)
    runtime(redis_app).sink.flush()  # type: ignore[attr-defined]
    through_proxy = engine.url.set(port=sql_proxy.port).render_as_string(hide_password=False)

    # SQL is away before the worker starts, and until the worker has found it so.
    worker = workers.start(
        "--drain", "--consumer", "w1", env=worker_env(TOUCHLINK_DATABASE_URL=through_proxy)
    )
    worker.wait_for_output("SQL is not answering", timeout=30)
    assert worker.returncode is None, worker.output  # still waiting for SQL
    sql_proxy.start()
    code, output = worker.finish(timeout=60)
    assert code == 0, output
    assert "300 clicks stored" in output
    with runtime(redis_app).sessions() as session:
        assert clicks.stored(session) == (300, 300)
        assert session.scalar(select(func.count(func.distinct(Click.click_id)))) == 300


@pytest.mark.commits
def test_a_server_stopping_gracefully_hands_on_the_clicks_it_still_holds(
    redis_app: Flask,
    make_flyer: Callable[[Flask], None],
    redis_client: redis.Redis,
    granian: Callable[..., WatchedProcess],
) -> None:
    """Under granian, the production server: SIGTERM flushes the web workers' click queues."""
    make_flyer(redis_app)
    stream = runtime(redis_app).settings.stream
    port = free_port()
    # Long enough that no click leaves before the stop, unless the stop flushes it.
    server = granian(port, TOUCHLINK_FLUSH_INTERVAL="1")
    # Stopping granian while a worker is still starting leaves it hanging: wait for both.
    server.wait_for_output("Started worker", count=2, timeout=60)
    for _ in range(12):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/flyer", headers={"User-Agent": BROWSER, "Host": "go.test"})
        assert conn.getresponse().status == 302
        conn.close()
    assert redis_client.xlen(stream) == 0  # still queued in the web workers

    server.signal(signal.SIGTERM)
    code, output = server.finish(timeout=60)

    assert code == 0, output
    assert redis_client.xlen(stream) == 12, output
