"""The ingest worker moves every click from the stream into SQL exactly once, whatever happens."""

from __future__ import annotations

import logging
import signal
import time
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from analytics.enrich import make_enricher
from analytics.models import Click, LinkHourlyStats
from analytics.worker import GROUP, IngestWorker, dead_letter_stream
from shortener.runtime import runtime
from shortener.settings import Settings
from tests.analytics.pipeline import click_many, make_link, stored, worker_env
from tests.faults import KILL_AFTER_COMMIT, KILL_BEFORE_COMMIT, run_worker, worker_process

BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
SLACK = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"


@pytest.fixture
def redis_client_app(redis_app: Flask) -> FlaskClient:
    return redis_app.test_client()


@pytest.fixture
def redis_link(redis_app: Flask) -> None:
    make_link(redis_app)


def test_worker_drains_the_stream_into_sql_with_enrichment(
    redis_app: Flask,
    redis_client_app: FlaskClient,
    redis_link: None,
    redis_client: redis.Redis,
    settings: Settings,
    tmp_path: Path,
) -> None:
    click_many(redis_client_app, "flyer", 30, agent=IPHONE)
    click_many(redis_client_app, "flyer", 10, agent=IPHONE, qr=True)
    click_many(redis_client_app, "flyer", 5, agent=GOOGLEBOT)
    click_many(redis_client_app, "flyer", 3, agent=SLACK)
    runtime(redis_app).sink.flush()  # type: ignore[attr-defined]
    assert redis_client.xlen(settings.stream) == 48

    code, output = run_worker(worker_env(settings, tmp_path), "--drain", "--consumer", "w1")
    assert code == 0, output
    assert "48 clicks stored" in output

    with runtime(redis_app).sessions() as session:
        assert stored(session) == (48, 48)
        stats = session.execute(
            select(
                func.sum(LinkHourlyStats.clicks),
                func.sum(LinkHourlyStats.scans),
                func.sum(LinkHourlyStats.bot_clicks),
                func.sum(LinkHourlyStats.visitors),
            )
        ).one()
        assert tuple(stats) == (40, 10, 8, 30)  # 30 distinct IPs with one iPhone agent
        devices = dict(
            session.execute(select(Click.device, func.count()).group_by(Click.device)).all()
        )
        assert devices == {"mobile": 40, "bot": 8}
        reasons = {r for (r,) in session.execute(select(Click.bot_reason).where(Click.is_bot))}
        assert reasons == {"ua:Googlebot", "preview:Slackbot"}
    # Acknowledged entries are trimmed; nothing is left pending.
    assert redis_client.xpending(settings.stream, GROUP)["pending"] == 0
    assert redis_client.xlen(settings.stream) == 0


@pytest.mark.parametrize(
    "inject", [KILL_AFTER_COMMIT, KILL_BEFORE_COMMIT], ids=["between-commit-and-ack", "mid-batch"]
)
def test_worker_killed_by_sigkill_loses_nothing_and_counts_nothing_twice(
    inject: str,
    redis_app: Flask,
    redis_client_app: FlaskClient,
    redis_link: None,
    redis_client: redis.Redis,
    settings: Settings,
    tmp_path: Path,
) -> None:
    click_many(redis_client_app, "flyer", 250)
    runtime(redis_app).sink.flush()  # type: ignore[attr-defined]
    env = worker_env(settings, tmp_path)

    code, output = run_worker(env, "--drain", "--consumer", "w1", inject=inject)
    assert code == -signal.SIGKILL, output
    # The batches in hand (one, or two on PostgreSQL, which overlaps them) stay pending.
    pending = redis_client.xpending(settings.stream, GROUP)["pending"]
    assert pending in (100, 200)
    with runtime(redis_app).sessions() as session:
        rows, rolled = stored(session)
    assert rows == rolled  # clicks and rollups commit together
    if inject == KILL_AFTER_COMMIT:
        assert rows in (100, 200)  # committed, not acknowledged
    else:
        assert rows == 0  # killed inside the transaction: nothing committed

    code, output = run_worker(env, "--drain", "--consumer", "w1")
    assert code == 0, output
    with runtime(redis_app).sessions() as session:
        assert stored(session) == (250, 250)
    assert redis_client.xpending(settings.stream, GROUP)["pending"] == 0


def test_entries_of_a_dead_consumer_are_reclaimed_by_another(
    redis_app: Flask,
    redis_client_app: FlaskClient,
    redis_link: None,
    redis_client: redis.Redis,
    settings: Settings,
    tmp_path: Path,
) -> None:
    click_many(redis_client_app, "flyer", 120)
    runtime(redis_app).sink.flush()  # type: ignore[attr-defined]
    env = worker_env(settings, tmp_path, TOUCHLINK_RECLAIM_IDLE="1")
    code, _ = run_worker(env, "--drain", "--consumer", "doomed", inject=KILL_BEFORE_COMMIT)
    assert code == -signal.SIGKILL

    code, output = run_worker(env, "--drain", "--consumer", "rescuer")
    assert code == 0, output
    with runtime(redis_app).sessions() as session:
        # `rescuer` read the 20 new entries at once, and took over the 100 after a second idle.
        assert stored(session) == (120, 120)


def test_sigterm_finishes_the_batch_in_hand_and_exits_cleanly(
    redis_app: Flask,
    redis_client_app: FlaskClient,
    redis_link: None,
    redis_client: redis.Redis,
    settings: Settings,
    tmp_path: Path,
) -> None:
    process = worker_process(worker_env(settings, tmp_path), "--consumer", "w1")
    click_many(redis_client_app, "flyer", 50)
    runtime(redis_app).sink.flush()  # type: ignore[attr-defined]
    for _ in range(200):
        with runtime(redis_app).sessions() as session:
            if stored(session)[0] == 50:
                break
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=20)
    assert process.returncode == 0, output
    assert "50 clicks stored" in output
    assert redis_client.xpending(settings.stream, GROUP)["pending"] == 0


def test_poison_entries_go_to_the_dead_letter_stream_and_the_rest_is_stored(
    redis_app: Flask,
    redis_client_app: FlaskClient,
    redis_link: None,
    redis_client: redis.Redis,
    settings: Settings,
) -> None:
    click_many(redis_client_app, "flyer", 5)
    runtime(redis_app).sink.flush()  # type: ignore[attr-defined]
    redis_client.xadd(settings.stream, {"c": "not json"})
    redis_client.xadd(settings.stream, {"c": '["ab",1.0,999999,1,1,"","","","",0]'})  # no such link
    click_many(redis_client_app, "flyer", 5)
    runtime(redis_app).sink.flush()  # type: ignore[attr-defined]

    rt = runtime(redis_app)
    worker = IngestWorker(
        rt.redis,
        rt.sessions,
        make_enricher(),
        stream=settings.stream,  # type: ignore[arg-type]
        consumer="w1",
    )
    stats = worker.run(drain=True).totals
    assert (stats.inserted, stats.dead_lettered) == (10, 2)
    dead = redis_client.xrange(dead_letter_stream(settings.stream))
    errors = sorted(fields[b"error"].decode() for _, fields in dead)
    assert errors[0].startswith("link 999999 does not exist")
    assert errors[1].startswith("not a click event")
    with rt.sessions() as session:
        assert stored(session) == (10, 10)


def test_a_vanished_consumer_group_is_recreated_loudly(
    redis_app: Flask,
    redis_client_app: FlaskClient,
    redis_link: None,
    redis_client: redis.Redis,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rt = runtime(redis_app)
    worker = IngestWorker(
        rt.redis,
        rt.sessions,
        make_enricher(),
        stream=settings.stream,  # type: ignore[arg-type]
        consumer="w1",
    )
    worker.ensure_group()
    click_many(redis_client_app, "flyer", 7)
    rt.sink.flush()  # type: ignore[attr-defined]
    redis_client.xgroup_destroy(settings.stream, GROUP)  # as a Redis restart without data would
    with caplog.at_level(logging.ERROR, logger="analytics.worker"):
        first = worker.consume_batch()  # what the running loop does next
    assert "consumer group" in caplog.text and "is gone" in caplog.text
    stats = worker.run(drain=True).totals
    assert first.inserted + stats.inserted == 7
