"""The ingest worker moves every click from the stream into SQL exactly once, whatever happens."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text

from analytics.models import Click, Journey, JourneyTouch, LinkHourlyStats
from analytics.partitions import month_after, month_start, monthly_partitions, partition_name
from analytics.runtime import Runtime, runtime
from analytics.stream import GROUP, ClickStream, dead_letter_stream
from analytics.worker import IngestWorker
from shortener.unit_of_work import transaction
from tests.faults import KILL_AFTER_COMMIT, KILL_BEFORE_COMMIT, Workers, wait_until
from tests.user_agents import GOOGLEBOT, IPHONE, SLACKBOT


@pytest.fixture
def redis_rt(redis_app: Flask, make_flyer: Callable[[Flask], None]) -> Runtime:
    """The runtime of an app capturing clicks into Redis, with the link /flyer."""
    make_flyer(redis_app)
    return runtime(redis_app)


@pytest.fixture
def redis_web(redis_rt: Runtime, redis_app: Flask) -> FlaskClient:
    """A customer's browser on that app (once /flyer exists)."""
    return redis_app.test_client()


@pytest.fixture
def journey_app(
    make_app: Callable[..., Flask], redis_client: redis.Redis, redis_url: str,
    make_flyer: Callable[[Flask], None],
) -> Flask:
    """An app capturing clicks into Redis and following journeys with a cookie, with /flyer."""
    app = make_app(redis_url=redis_url, journeys="cookie")
    make_flyer(app)
    return app


def send_from_browsers(app: Flask, browsers: int, clicks: int) -> None:
    """`clicks` clicks on /flyer, from `browsers` browsers in turn, each with its cookie jar."""
    jars = [app.test_client() for _ in range(browsers)]
    for i in range(clicks):
        response = jars[i % browsers].get(
            "/flyer", headers={"User-Agent": IPHONE},
            environ_base={"REMOTE_ADDR": f"198.51.100.{i % browsers}"},
        )
        assert response.status_code == 302
        assert response.headers["Set-Cookie"].startswith("tl_j=")
    runtime(app).sink.flush()  # type: ignore[attr-defined]


def journeys_kept(rt: Runtime) -> tuple[int, int, int]:
    """(journeys, touches, the journeys' own count of their touches)."""
    with rt.sessions() as session:
        journeys, counted = session.execute(
            select(func.count(), func.coalesce(func.sum(Journey.touches), 0))
            .select_from(Journey)
        ).one()
        touches = session.scalar(select(func.count()).select_from(JourneyTouch))
    return int(journeys), int(touches or 0), int(counted)


@pytest.fixture
def in_process_worker(redis_rt: Runtime) -> IngestWorker:
    """An IngestWorker in the test's process, on the test's (rolled-back) connection."""
    assert redis_rt.redis is not None
    stream = ClickStream(redis_rt.redis, redis_rt.settings.stream, consumer="w1")
    return IngestWorker(stream, redis_rt.sessions, redis_rt.enricher, redis_rt.metrics)


@pytest.mark.commits
def test_worker_drains_the_stream_into_sql_with_enrichment(
    redis_rt: Runtime,
    redis_web: FlaskClient,
    redis_client: redis.Redis,
    workers: Workers,
    clicks: Any,
) -> None:
    stream = redis_rt.settings.stream
    clicks.send(redis_web, "flyer", 30, agent=IPHONE)
    clicks.send(redis_web, "flyer", 10, agent=IPHONE, qr=True)
    clicks.send(redis_web, "flyer", 5, agent=GOOGLEBOT)
    clicks.send(redis_web, "flyer", 3, agent=SLACKBOT)
    redis_rt.sink.flush()  # type: ignore[attr-defined]
    assert redis_client.xlen(stream) == 48

    code, output = workers.run("--drain", "--consumer", "w1")
    assert code == 0, output
    assert "48 clicks stored" in output

    with redis_rt.sessions() as session:
        assert clicks.stored(session) == (48, 48)
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
    assert redis_client.xpending(stream, GROUP)["pending"] == 0
    assert redis_client.xlen(stream) == 0


@pytest.mark.commits
@pytest.mark.parametrize(
    "inject", [KILL_AFTER_COMMIT, KILL_BEFORE_COMMIT], ids=["between-commit-and-ack", "mid-batch"]
)
def test_worker_killed_by_sigkill_loses_nothing_and_counts_nothing_twice(
    inject: str,
    journey_app: Flask,
    redis_client: redis.Redis,
    workers: Workers,
    clicks: Any,
) -> None:
    """With journeys: 250 clicks of 25 browsers, whose touches commit with their clicks."""
    rt = runtime(journey_app)
    stream = rt.settings.stream
    send_from_browsers(journey_app, 25, 250)

    code, output = workers.run("--drain", "--consumer", "w1", inject=inject)
    assert code == -signal.SIGKILL, output
    # The batches in hand (one, or two on PostgreSQL, which overlaps them) stay pending.
    pending = redis_client.xpending(stream, GROUP)["pending"]
    assert pending in (100, 200)
    with rt.sessions() as session:
        rows, rolled = clicks.stored(session)
    assert rows == rolled  # clicks and rollups commit together
    journeys, touches, counted = journeys_kept(rt)
    assert touches == counted == rows  # and so do the touches, every click a human's
    if inject == KILL_AFTER_COMMIT:
        assert rows in (100, 200)  # committed, not acknowledged
        assert journeys == 25
    else:
        assert rows == 0  # killed inside the transaction: nothing committed
        assert journeys == 0

    code, output = workers.run("--drain", "--consumer", "w1")
    assert code == 0, output
    with rt.sessions() as session:
        assert clicks.stored(session) == (250, 250)
    assert journeys_kept(rt) == (25, 250, 250)  # the replayed batch added no touch twice
    assert redis_client.xpending(stream, GROUP)["pending"] == 0


@pytest.mark.commits
def test_entries_of_a_dead_consumer_are_reclaimed_by_another(
    redis_rt: Runtime,
    redis_web: FlaskClient,
    redis_client: redis.Redis,
    workers: Workers,
    worker_env: Callable[..., dict[str, str]],
    clicks: Any,
) -> None:
    def pending_by_consumer(stream: str) -> dict[bytes, int]:
        consumers = redis_client.xinfo_consumers(stream, GROUP)
        return {c["name"]: c["pending"] for c in consumers}

    clicks.send(redis_web, "flyer", 120)
    redis_rt.sink.flush()  # type: ignore[attr-defined]
    env = worker_env(TOUCHLINK_RECLAIM_IDLE="1")
    code, output = workers.run(
        "--drain", "--consumer", "doomed", env=env, inject=KILL_BEFORE_COMMIT
    )
    assert code == -signal.SIGKILL, output
    # The batches in hand (one, or two on PostgreSQL, which overlaps them) stay pending.
    assert pending_by_consumer(redis_rt.settings.stream) in ({b"doomed": 100}, {b"doomed": 120})

    code, output = workers.run("--drain", "--consumer", "rescuer", env=env)
    assert code == 0, output
    with redis_rt.sessions() as session:
        # `rescuer` read what was never delivered at once, and took over the rest once idle.
        assert clicks.stored(session) == (120, 120)
    assert pending_by_consumer(redis_rt.settings.stream) == {b"doomed": 0, b"rescuer": 0}


@pytest.mark.commits
def test_sigterm_finishes_the_batch_in_hand_and_exits_cleanly(
    redis_rt: Runtime,
    redis_web: FlaskClient,
    redis_client: redis.Redis,
    workers: Workers,
    clicks: Any,
) -> None:
    worker = workers.start("--consumer", "w1")
    clicks.send(redis_web, "flyer", 50)
    redis_rt.sink.flush()  # type: ignore[attr-defined]

    def all_stored() -> bool:
        with redis_rt.sessions() as session:
            return clicks.stored(session)[0] == 50

    wait_until(all_stored, timeout=30, what="the running worker storing the 50 clicks")
    worker.signal(signal.SIGTERM)
    code, output = worker.finish(timeout=20)
    assert code == 0, output
    assert "50 clicks stored" in output
    assert redis_client.xpending(redis_rt.settings.stream, GROUP)["pending"] == 0


def test_poison_entries_go_to_the_dead_letter_stream_and_the_rest_is_stored(
    redis_rt: Runtime,
    redis_web: FlaskClient,
    redis_client: redis.Redis,
    in_process_worker: IngestWorker,
    clicks: Any,
) -> None:
    stream = redis_rt.settings.stream
    clicks.send(redis_web, "flyer", 5)
    redis_rt.sink.flush()  # type: ignore[attr-defined]
    redis_client.xadd(stream, {"c": "not json"})
    redis_client.xadd(stream, {"c": '["ab",1.0,999999,1,1,"","","","",0]'})  # no such link
    clicks.send(redis_web, "flyer", 5)
    redis_rt.sink.flush()  # type: ignore[attr-defined]

    stats = in_process_worker.run(drain=True).totals

    assert (stats.inserted, stats.dead_lettered) == (10, 2)
    dead = redis_client.xrange(dead_letter_stream(stream))
    errors = sorted(fields[b"error"].decode() for _, fields in dead)
    assert errors[0].startswith("link 999999 does not exist")
    assert errors[1].startswith("not a click event")
    assert redis_client.xpending(stream, GROUP)["pending"] == 0
    with redis_rt.sessions() as session:
        assert clicks.stored(session) == (10, 10)
    registry = redis_rt.metrics.registry
    assert registry.get_sample_value("touchlink_clicks_ingested_total") == 10
    assert registry.get_sample_value("touchlink_clicks_dead_lettered_total") == 2


def test_a_vanished_consumer_group_is_recreated_loudly(
    redis_rt: Runtime,
    redis_web: FlaskClient,
    redis_client: redis.Redis,
    in_process_worker: IngestWorker,
    clicks: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = redis_rt.settings.stream
    in_process_worker.stream.ensure_group()
    clicks.send(redis_web, "flyer", 7)
    redis_rt.sink.flush()  # type: ignore[attr-defined]
    redis_client.xgroup_destroy(stream, GROUP)  # as a Redis restart without data would

    with caplog.at_level(logging.ERROR, logger="analytics.stream"):
        first = in_process_worker.consume_batch()  # what the running loop does next

    assert "consumer group" in caplog.text and "is gone" in caplog.text
    stats = in_process_worker.run(drain=True).totals
    assert first.inserted + stats.inserted == 7
    with redis_rt.sessions() as session:
        assert clicks.stored(session) == (7, 7)


def test_the_workers_metrics_count_journey_touches(
    journey_app: Flask, redis_client: redis.Redis, clicks: Any
) -> None:
    rt = runtime(journey_app)
    send_from_browsers(journey_app, 3, 7)
    clicks.send(journey_app.test_client(), "flyer", 2, agent=GOOGLEBOT)
    rt.sink.flush()  # type: ignore[attr-defined]
    assert rt.redis is not None
    worker = IngestWorker(
        ClickStream(rt.redis, rt.settings.stream, consumer="w1"), rt.sessions, rt.enricher,
        rt.metrics, journeys=rt.journey_keys,
    )

    assert worker.run(drain=True).totals.inserted == 9

    registry = rt.metrics.registry
    assert registry.get_sample_value("touchlink_clicks_ingested_total") == 9
    assert registry.get_sample_value("touchlink_journey_touches_total") == 7
    assert journeys_kept(rt) == (3, 7, 7)


@pytest.mark.commits
def test_raw_clicks_leave_redis_soon_after_their_commit_on_an_idle_instance(
    redis_rt: Runtime, redis_web: FlaskClient, redis_client: redis.Redis, workers: Workers,
    clicks: Any,
) -> None:
    worker = workers.start("--consumer", "w1")

    def stored(count: int) -> Callable[[], bool]:
        def check() -> bool:
            with redis_rt.sessions() as session:
                return bool(clicks.stored(session)[0] == count)
        return check

    # Two batches close together: the first one's trim comes too soon to take the second.
    for total in (20, 40):
        clicks.send(redis_web, "flyer", 20)
        redis_rt.sink.flush()  # type: ignore[attr-defined]
        wait_until(stored(total), timeout=30, what=f"the running worker storing {total} clicks")
    # No click comes after: the stream still empties, IPs and all, within 10 s of the commit.
    wait_until(lambda: redis_client.xlen(redis_rt.settings.stream) == 0, timeout=10,
               what="the stored entries trimmed from the stream")
    worker.signal(signal.SIGTERM)
    code, output = worker.finish(timeout=20)
    assert code == 0, output


def test_the_worker_makes_this_months_partition_of_the_raw_clicks_and_the_next_two(
    redis_rt: Runtime, redis_web: FlaskClient, in_process_worker: IngestWorker, clicks: Any,
) -> None:
    month = month_start(datetime.now(UTC))
    months = []
    for _ in range(3):
        months.append(partition_name(month))
        month = month_after(month)
    postgres = redis_rt.engine.dialect.name == "postgresql"
    if postgres:  # as if the migration had made none of them
        with transaction(redis_rt.sessions) as session:
            for name in months:
                session.execute(text(f"DROP TABLE {name}"))
    clicks.send(redis_web, "flyer", 3)
    redis_rt.sink.flush()  # type: ignore[attr-defined]

    stats = in_process_worker.run(drain=True).totals

    assert stats.inserted == 3
    with redis_rt.sessions() as session:
        assert clicks.stored(session) == (3, 3)
        if not postgres:  # one plain table: nothing to make
            return
        assert set(months) <= set(monthly_partitions(session))
        where = session.scalars(text("SELECT tableoid::regclass::text FROM clicks"))
        assert list(where) == [months[0]] * 3  # none left in the default partition
