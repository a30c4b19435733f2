"""Journeys at ingest: SQL keeps a keyed hash of the journey id and the touches of human clicks,
in the click's own transaction (a replayed batch adds nothing), through the embedded sink, the
Redis stream and the worker alike; journeys past TOUCHLINK_JOURNEY_RETENTION_DAYS are deleted
with their touches, and the click figures stay."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
import pytest
import redis
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics.ingest import store_clicks
from analytics.models import Journey
from analytics.runtime import Runtime, runtime
from analytics.stream import ClickStream
from analytics.worker import IngestWorker
from shortener.db import Base, utcnow
from shortener.models import Link
from shortener.unit_of_work import transaction
from tests.faults import RedisServer, Workers
from tests.user_agents import ANDROID, DESKTOP, GOOGLEBOT, IPHONE

JOURNEY_ID = re.compile(r"[0-9a-f]{32}")
ANNA_ID = "a" * 32
BEN_ID = "b" * 32


@pytest.fixture
def app(make_app: Callable[..., Flask], make_flyer: Callable[[Flask], None]) -> Flask:
    """This module's app follows journeys with a cookie, and has the link /flyer."""
    app = make_app(journeys="cookie")
    make_flyer(app)
    return app


def everything_stored(session: Session) -> str:
    """Every value of every row of every table, as text (bytes in hexadecimal)."""
    session.expire_all()
    values = []
    for table in Base.metadata.sorted_tables:
        for row in session.execute(select(table)):
            values += [v.hex() if isinstance(v, bytes) else str(v) for v in row]
    return "\n".join(values)


def journey_figures(session: Session) -> list[tuple[str, Any, Any, int]]:
    """(key, first touch, last touch, touches) of every journey."""
    session.expire_all()
    rows = session.execute(
        select(Journey.key, Journey.first_touch_at, Journey.last_touch_at, Journey.touches)
        .order_by(Journey.key)
    )
    return [(key, first, last, touches) for key, first, last, touches in rows]


# --- what SQL keeps -------------------------------------------------------------------------------


def test_sql_keeps_only_a_keyed_hash_of_the_journey_id(
    browser: Any, session: Session, journey_rows: Any
) -> None:
    people = [browser(f"203.0.113.{i}", agent) for i, agent in enumerate((IPHONE, ANDROID), 1)]
    for person in people * 2:
        person.click("flyer")
    ids = [person.journey for person in people]

    stored = everything_stored(session)

    assert all(i and JOURNEY_ID.fullmatch(i) for i in ids)
    for journey_id in ids:
        assert journey_id not in stored  # nowhere, in no table
    assert set(journey_rows.read(session)) == {journey_rows.key_of(i) for i in ids}
    assert journey_rows.counts(session) == (2, 4)


def test_the_key_is_made_under_the_installations_secret(
    make_app: Callable[..., Flask], app: Flask, session: Session, journey_rows: Any
) -> None:
    other = make_app(journeys="cookie", secret_key="another-installation-secret-key-long-enough")
    for installation in (app, other):
        response = installation.test_client(use_cookies=False).get(
            "/flyer", headers={"User-Agent": IPHONE, "Cookie": f"tl_j={ANNA_ID}"}
        )
        assert response.headers["Set-Cookie"].startswith(f"tl_j={ANNA_ID};")

    keys = [key for key, *_ in journey_figures(session)]

    # One cookie value, two installations: two keys that cannot be linked, neither the id.
    assert len(keys) == 2 and len(set(keys)) == 2
    assert journey_rows.key_of(ANNA_ID) in keys and ANNA_ID not in keys


def test_cookieless_journeys_keep_neither_address_nor_user_agent(
    make_app: Callable[..., Flask], browser: Any, session: Session, journey_rows: Any
) -> None:
    cookieless = make_app(journeys="cookieless")
    for _ in range(2):
        browser("203.0.113.77", ANDROID, app=cookieless).click("flyer")

    (touches,) = journey_rows.read(session).values()
    assert len(touches) == 2
    assert "203.0.113.77" not in everything_stored(session)


# --- exactly once ---------------------------------------------------------------------------------


def test_a_batch_stored_twice_adds_its_touches_once(
    rt: Runtime, ingest: Any, session: Session, journey_rows: Any, enricher: Any, clicks: Any
) -> None:
    at = utcnow().replace(microsecond=0) - timedelta(hours=5)
    batch = [
        ingest.make("flyer", at, ip="203.0.113.7", agent=IPHONE, journey=ANNA_ID),
        ingest.make("flyer", at + timedelta(minutes=5), ip="203.0.113.7", agent=IPHONE,
                    journey=ANNA_ID, qr=True),
        ingest.make("flyer", at + timedelta(minutes=7), ip="203.0.113.8", agent=ANDROID,
                    journey=BEN_ID),
    ]
    results = []
    for _ in range(2):  # a worker killed between commit and acknowledgement stores it again
        with transaction(rt.sessions) as writing:
            results.append(store_clicks(writing, batch, enricher, now=utcnow(),
                                        journeys=rt.journey_keys))

    assert [(r.inserted, r.duplicates, r.touches) for r in results] == [(3, 0, 3), (0, 3, 0)]
    assert clicks.stored(session) == (3, 3)
    assert journey_figures(session) == sorted([
        (journey_rows.key_of(ANNA_ID), at, at + timedelta(minutes=5), 2),
        (journey_rows.key_of(BEN_ID), at + timedelta(minutes=7), at + timedelta(minutes=7), 1),
    ])
    anna = journey_rows.read(session)[journey_rows.key_of(ANNA_ID)]
    assert [(t.at, t.via_qr) for t in anna] == [(at, False), (at + timedelta(minutes=5), True)]


def test_a_journey_is_extended_by_later_batches_in_any_order(
    ingest: Any, session: Session, journey_rows: Any
) -> None:
    at = utcnow().replace(microsecond=0) - timedelta(days=3)
    for moment in (at, at + timedelta(days=2), at - timedelta(days=1)):  # the last one late
        ingest.click("flyer", moment, ip="203.0.113.7", agent=IPHONE, journey=ANNA_ID)

    assert journey_figures(session) == [
        (journey_rows.key_of(ANNA_ID), at - timedelta(days=1), at + timedelta(days=2), 3),
    ]


def test_a_browser_past_the_most_touches_a_journey_keeps_is_counted_not_followed(
    rt: Runtime, ingest: Any, session: Session, journey_rows: Any, enricher: Any, clicks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("analytics.journeys.MAX_TOUCHES", 3)
    at = utcnow().replace(microsecond=0) - timedelta(hours=5)
    minutes = [4, 0, 2, 6, 8, 10]  # three batches, out of order within the first
    results = []
    for part in (minutes[:2], minutes[2:5], minutes[5:]):
        batch = [ingest.make("flyer", at + timedelta(minutes=m), ip="203.0.113.7",
                             agent=IPHONE, journey=ANNA_ID) for m in part]
        with transaction(rt.sessions) as writing:
            results.append(store_clicks(writing, batch, enricher, now=utcnow(),
                                        journeys=rt.journey_keys))

    assert [(r.inserted, r.touches) for r in results] == [(2, 2), (3, 1), (1, 0)]
    assert clicks.stored(session) == (6, 6)  # every click counted
    anna = journey_rows.read(session)[journey_rows.key_of(ANNA_ID)]
    assert [t.at for t in anna] == [at, at + timedelta(minutes=2), at + timedelta(minutes=4)]
    # The clicks seen while it was followed: once full, the journey is no longer written.
    assert journey_figures(session) == [
        (journey_rows.key_of(ANNA_ID), at, at + timedelta(minutes=8), 5),
    ]


def test_touches_are_made_of_human_clicks_with_a_journey_only(
    rt: Runtime, ingest: Any, session: Session, journey_rows: Any, enricher: Any, clicks: Any
) -> None:
    at = utcnow() - timedelta(hours=1)
    batch = [
        ingest.make("flyer", at, ip="203.0.113.7", agent=IPHONE, journey=ANNA_ID),
        ingest.make("flyer", at, ip="203.0.113.8", agent=IPHONE),  # DNT: no journey
        # Bots never have one, whatever the click carries.
        ingest.make("flyer", at, ip="66.249.66.1", agent=GOOGLEBOT, journey=BEN_ID),
        ingest.make("flyer", at, ip="66.249.66.1", agent=GOOGLEBOT, journey="*"),
    ]
    with transaction(rt.sessions) as writing:
        result = store_clicks(writing, batch, enricher, now=utcnow(), journeys=rt.journey_keys)

    assert (result.inserted, result.touches) == (4, 1)
    assert clicks.stored(session) == (4, 4)
    assert list(journey_rows.read(session)) == [journey_rows.key_of(ANNA_ID)]


def test_the_embedded_sink_counts_journey_touches_in_its_metrics(
    app: Flask, browser: Any
) -> None:
    for person in (browser(), browser("203.0.113.8", ANDROID)):
        person.click("flyer")
        person.click("flyer")
    browser("203.0.113.9", DESKTOP, dnt=True).click("flyer")
    browser("66.249.66.1", GOOGLEBOT).click("flyer")

    registry = runtime(app).metrics.registry
    assert registry.get_sample_value("touchlink_clicks_ingested_total") == 6
    assert registry.get_sample_value("touchlink_journey_touches_total") == 4


# --- through Redis and the worker -----------------------------------------------------------------


@pytest.fixture
def redis_journeys(
    make_app: Callable[..., Flask], redis_client: redis.Redis, redis_url: str, app: Flask
) -> Callable[..., Flask]:
    """`redis_journeys(mode="cookie", **settings)`: an app capturing clicks into the test's
    Redis stream, following journeys (the link /flyer is the module's app's)."""

    def make(mode: str = "cookie", **settings: Any) -> Flask:
        return make_app(redis_url=redis_url, journeys=mode, **settings)

    return make


def in_process_worker(rt: Runtime) -> IngestWorker:
    """An IngestWorker as `touchlink worker` makes it, on the test's connection."""
    assert rt.redis is not None
    stream = ClickStream(rt.redis, rt.settings.stream, consumer="w1")
    return IngestWorker(
        stream, rt.sessions, rt.enricher, rt.metrics, zone=rt.settings.zone,
        journeys=rt.journey_keys, journey_retention_days=rt.settings.journey_retention_days,
    )


def stream_payloads(client: redis.Redis, stream: str) -> list[list[Any]]:
    return [orjson.loads(fields[b"c"]) for _, fields in client.xrange(stream)]


def test_a_clicks_journey_travels_through_the_stream_to_the_worker(
    redis_journeys: Callable[..., Flask], redis_client: redis.Redis, browser: Any,
    session: Session, journey_rows: Any,
) -> None:
    web = redis_journeys()
    rt = runtime(web)
    anna, ben = browser(app=web), browser("203.0.113.8", ANDROID, app=web)
    for person in (anna, ben, anna):
        person.click("flyer")
    browser("203.0.113.9", DESKTOP, app=web, gpc=True).click("flyer")
    browser("66.249.66.1", GOOGLEBOT, app=web).click("flyer")
    rt.sink.flush()  # type: ignore[attr-defined]

    payloads = stream_payloads(redis_client, rt.settings.stream)
    # The journey, then the flags (1: a test before go-live, 2: private): 12 fields.
    assert [p[10] for p in payloads] == [anna.journey, ben.journey, anna.journey, "", ""]
    assert all(len(p) == 12 and not p[11] & 1 for p in payloads)
    assert journey_rows.counts(session) == (0, 0)  # nothing stored before the worker runs

    stats = in_process_worker(rt).run(drain=True).totals

    assert stats.inserted == 5
    stored = journey_rows.read(session)
    assert {k: len(v) for k, v in stored.items()} == {
        journey_rows.key_of(anna.journey): 2, journey_rows.key_of(ben.journey): 1,
    }
    registry = rt.metrics.registry
    assert registry.get_sample_value("touchlink_journey_touches_total") == 3
    assert registry.get_sample_value("touchlink_clicks_ingested_total") == 5


def test_cookieless_clicks_travel_unresolved_and_the_worker_derives_the_journey(
    redis_journeys: Callable[..., Flask], redis_client: redis.Redis, browser: Any,
    session: Session, journey_rows: Any,
) -> None:
    web = redis_journeys("cookieless")
    rt = runtime(web)
    for ip, agent in (("203.0.113.7", IPHONE), ("203.0.113.7", IPHONE), ("203.0.113.7", ANDROID)):
        response = browser(ip, agent, app=web).click("flyer")
        assert "Set-Cookie" not in response.headers
    rt.sink.flush()  # type: ignore[attr-defined]
    assert [p[10] for p in stream_payloads(redis_client, rt.settings.stream)] == ["*"] * 3

    in_process_worker(rt).run(drain=True)

    assert sorted(len(t) for t in journey_rows.read(session).values()) == [1, 2]


def test_a_clicks_journey_survives_the_spool_while_redis_is_down(
    make_app: Callable[..., Flask], private_redis: RedisServer, browser: Any, session: Session,
    journey_rows: Any,
) -> None:
    web = make_app(redis_url=private_redis.url, journeys="cookie")
    sink: Any = runtime(web).sink
    anna = browser(app=web)
    private_redis.stop()
    for _ in range(2):
        anna.click("flyer")  # the cookie is set all the same: it costs no round trip
    sink.flush()
    assert sink.spooled() == 2

    private_redis.start()
    sink.flush()  # replays the spool into the stream
    in_process_worker(runtime(web)).run(drain=True)

    stored = journey_rows.read(session)
    assert {k: len(v) for k, v in stored.items()} == {journey_rows.key_of(anna.journey): 2}


def test_a_click_written_before_journeys_is_stored_without_one(
    redis_journeys: Callable[..., Flask], redis_client: redis.Redis, session: Session,
    journey_rows: Any, clicks: Any,
) -> None:
    rt = runtime(redis_journeys())
    with rt.sessions() as reading:
        link_id, touchpoint_id, stage_id = reading.execute(
            select(Link.id, Link.touchpoint_id, Link.stage_id)
        ).one()
    old = ["0" * 32, utcnow().timestamp(), link_id, touchpoint_id, stage_id, "203.0.113.7",
           IPHONE, "", "", 0]  # ten fields: no journey
    redis_client.xadd(rt.settings.stream, {"c": orjson.dumps(old)})

    stats = in_process_worker(rt).run(drain=True).totals

    assert (stats.inserted, stats.dead_lettered) == (1, 0)
    assert clicks.stored(session) == (1, 1)
    assert journey_rows.counts(session) == (0, 0)


# --- retention ------------------------------------------------------------------------------------


@pytest.fixture
def old_journeys(ingest: Any) -> Callable[[int], None]:
    """`old_journeys(days)`: Anna's journey last touched a day more than `days` ago, Ben's a day
    less (both began twice as long ago), with a bot click among them."""

    def make(days: int) -> None:
        now = utcnow().replace(microsecond=0)
        for journey, last in ((ANNA_ID, days + 1), (BEN_ID, days - 1)):
            for ago in (2 * days, last):
                ingest.click("flyer", now - timedelta(days=ago), ip="203.0.113.7", agent=IPHONE,
                             journey=journey)
        ingest.click("flyer", now - timedelta(days=days + 1), ip="66.249.66.1", agent=GOOGLEBOT)

    return make


def test_the_worker_forgets_journeys_past_the_retention_with_their_touches(
    redis_journeys: Callable[..., Flask], old_journeys: Callable[[int], None], browser: Any,
    session: Session, journey_rows: Any, clicks: Any,
) -> None:
    web = redis_journeys(journey_retention_days=30)
    rt = runtime(web)
    old_journeys(30)
    assert journey_rows.counts(session) == (2, 4)
    before = clicks.stored(session)
    carol = browser("203.0.113.9", DESKTOP, app=web)
    carol.click("flyer")
    rt.sink.flush()  # type: ignore[attr-defined]

    in_process_worker(rt).run(drain=True)

    stored = journey_rows.read(session)
    assert set(stored) == {journey_rows.key_of(BEN_ID), journey_rows.key_of(carol.journey)}
    assert len(stored[journey_rows.key_of(BEN_ID)]) == 2  # its touch of 60 days ago too
    assert journey_rows.counts(session) == (2, 3)
    assert clicks.stored(session) == (before[0] + 1, before[1] + 1)  # click figures stay
    assert rt.metrics.registry.get_sample_value("touchlink_journeys_forgotten_total") == 1


def test_an_idle_worker_forgets_journeys_past_the_retention_too(
    redis_journeys: Callable[..., Flask], old_journeys: Callable[[int], None],
    session: Session, journey_rows: Any,
) -> None:
    rt = runtime(redis_journeys(journey_retention_days=30))
    old_journeys(30)

    in_process_worker(rt).run(drain=True)  # no click in the stream

    assert journey_rows.counts(session) == (1, 2)


def test_the_embedded_sink_forgets_journeys_past_the_retention(
    make_app: Callable[..., Flask], old_journeys: Callable[[int], None], browser: Any,
    session: Session, journey_rows: Any, clicks: Any,
) -> None:
    web = make_app(journeys="cookie", journey_retention_days=30)
    old_journeys(30)
    before = clicks.stored(session)
    carol = browser("203.0.113.9", DESKTOP, app=web)

    carol.click("flyer")  # stored by the web process, which then deletes what is too old

    assert set(journey_rows.read(session)) == {
        journey_rows.key_of(BEN_ID), journey_rows.key_of(carol.journey),
    }
    assert journey_rows.counts(session) == (2, 3)
    assert clicks.stored(session) == (before[0] + 1, before[1] + 1)
    registry = runtime(web).metrics.registry
    assert registry.get_sample_value("touchlink_journeys_forgotten_total") == 1


def test_the_default_retention_is_90_days(
    make_app: Callable[..., Flask], old_journeys: Callable[[int], None], browser: Any,
    session: Session, journey_rows: Any,
) -> None:
    web = make_app(journeys="cookie")
    old_journeys(90)

    browser(app=web).click("flyer")

    assert journey_rows.counts(session) == (2, 3)
    assert journey_rows.key_of(ANNA_ID) not in journey_rows.read(session)


@pytest.fixture
def committed_app(make_app: Callable[..., Flask], redis_url: str) -> Flask:
    return make_app(journeys="cookie", redis_url=redis_url)


@pytest.mark.commits
def test_touchlink_worker_forgets_journeys_past_its_configured_retention(
    committed_app: Flask, old_journeys: Callable[[int], None], browser: Any, workers: Workers,
    worker_env: Callable[..., dict[str, str]], session: Session, journey_rows: Any,
) -> None:
    old_journeys(30)
    browser(app=committed_app).click("flyer")
    runtime(committed_app).sink.flush()  # type: ignore[attr-defined]

    code, output = workers.run(
        "--drain", "--consumer", "w1", env=worker_env(TOUCHLINK_JOURNEY_RETENTION_DAYS="30")
    )

    assert code == 0, output
    assert "forgot 1 journeys past their retention" in output
    assert journey_rows.counts(session) == (2, 3)
    assert journey_rows.key_of(ANNA_ID) not in journey_rows.read(session)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Journey)) == 2
