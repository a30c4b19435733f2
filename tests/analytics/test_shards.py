"""Clicks sharded over several streams by link id, on one Redis or a Redis Cluster: each lands in
its link's shard, and a worker stores every click exactly once, through a cluster node and a
worker killed and restarted under traffic."""

from __future__ import annotations

import signal
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import redis
from flask import Flask
from sqlalchemy import func, select

from analytics.events import decode_entry
from analytics.live import LiveFilter, LiveHub, RedisChannel, channel_of
from analytics.models import Click
from analytics.runtime import Runtime, runtime
from analytics.stream import GROUP, ClickStream, dead_letter_stream, shard_streams
from analytics.worker import IngestWorker
from shortener.keys import create_key
from shortener.models import Role
from shortener.redis_client import Client, connect
from shortener.resolver import invalidate_channel
from shortener.unit_of_work import transaction
from tests.faults import LocalRedisCluster, Workers, wait_until
from tests.user_agents import BROWSER

SHARDS = 6


def make_links(app: Flask, count: int) -> dict[str, int]:
    """`count` links of the touchpoint `poster`, through the API: their ids by slug."""
    with transaction(runtime(app).sessions) as session:
        _, raw = create_key(session, name="poster maker", role=Role.MARKETER)
    client, auth = app.test_client(), {"Authorization": f"Bearer {raw}"}
    poster = {"key": "poster", "name": "Poster", "channel": "physical"}
    assert client.post("/api/v1/touchpoints", json=poster, headers=auth).status_code == 201
    links = {}
    for i in range(count):
        body = {"url": "https://shop.example.com/", "touchpoint": "poster", "stage": "awareness",
                "slug": f"poster-{i}"}
        response = client.post("/api/v1/links", json=body, headers=auth)
        assert response.status_code == 201, response.json
        links[body["slug"]] = int(response.json["id"])
    return links


def stored_by_link(rt: Runtime) -> Counter[int]:
    """Rows of clicks per link id, each click id once (one query: a worker may be committing)."""
    query = select(Click.link_id, func.count(), func.count(func.distinct(Click.click_id)))
    with rt.sessions() as session:
        rows = session.execute(query.group_by(Click.link_id)).all()
    assert all(count == distinct for _, count, distinct in rows), rows
    return Counter({link_id: count for link_id, count, _ in rows})


def link_ids_by_shard(client: Client, streams: list[str]) -> dict[int, set[int]]:
    """The link ids of the clicks waiting in each shard, by shard index."""
    return {
        index: {decode_entry(fields).link_id for _, fields in client.xrange(stream)}
        for index, stream in enumerate(streams)
    }


class Traffic:
    """Customers following the links one after another, from a thread of its own, until
    stopped: what they sent, by link id, and any answer that was not the redirect."""

    def __init__(self, app: Flask, links: dict[str, int]) -> None:
        self._app = app
        self._links = list(links.items())
        self.sent: Counter[int] = Counter()
        self.refused: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def total(self) -> int:
        return sum(self.sent.values())

    def stop(self) -> Counter[int]:
        self._stop.set()
        self._thread.join(timeout=30)
        assert not self.refused, f"answers other than 302: {self.refused[:5]}"
        return self.sent

    def _run(self) -> None:
        client = self._app.test_client()
        i = 0
        while not self._stop.is_set():
            slug, link_id = self._links[i % len(self._links)]
            response = client.get(
                f"/{slug}", headers={"User-Agent": BROWSER},
                environ_base={"REMOTE_ADDR": f"198.51.100.{i % 250}"},
            )
            if response.status_code == 302:
                self.sent[link_id] += 1
            else:
                self.refused.append(response.status_code)
            i += 1
            self._stop.wait(0.002)  # a steady few hundred clicks a second, not a flood


@pytest.fixture
def cluster_env(
    redis_cluster: LocalRedisCluster, worker_env: Callable[..., dict[str, str]]
) -> dict[str, str]:
    """A worker's environment over the test's cluster, with the test's shards."""
    return worker_env(
        TOUCHLINK_REDIS_URL=redis_cluster.url, TOUCHLINK_REDIS_CLUSTER="true",
        TOUCHLINK_STREAM_SHARDS=str(SHARDS), TOUCHLINK_RECLAIM_IDLE="2",
    )


@pytest.fixture
def cluster_app(make_app: Callable[..., Flask], redis_cluster: LocalRedisCluster) -> Flask:
    return make_app(redis_url=redis_cluster.url, redis_cluster=True, stream_shards=SHARDS)


# --- one Redis -----------------------------------------------------------------------------------


def test_with_one_shard_the_stream_and_its_dead_letters_keep_their_names(
    redis_app: Flask, make_flyer: Callable[[Flask], None], redis_client: redis.Redis, clicks: Any
) -> None:
    make_flyer(redis_app)
    rt = runtime(redis_app)
    clicks.send(redis_app.test_client(), "flyer", 5)
    rt.sink.flush()  # type: ignore[attr-defined]
    redis_client.xadd("touchlink:clicks", {"c": "not json"})
    assert rt.redis is not None
    assert rt.settings.stream_shards == 1
    health = redis_app.test_client().get("/healthz").json["checks"]["redis"]
    assert [(s["stream"], s["length"]) for s in health["shards"]] == [("touchlink:clicks", 6)]

    worker = IngestWorker(
        ClickStream(rt.redis, rt.settings.stream, consumer="w1"), rt.sessions, rt.enricher,
        rt.metrics,
    )
    assert worker.run(drain=True).totals.inserted == 5

    assert sorted(redis_client.scan_iter("touchlink:clicks*")) == [
        b"touchlink:clicks", b"touchlink:clicks:dead",
    ]
    assert redis_client.xlen("touchlink:clicks:dead") == 1
    assert not [key for key in redis_client.scan_iter() if b"{" in key]


def test_on_one_redis_each_click_lands_in_its_links_shard_and_is_stored_once(
    make_app: Callable[..., Flask], redis_client: redis.Redis, redis_url: str, clicks: Any
) -> None:
    app = make_app(redis_url=redis_url, stream_shards=4)
    rt = runtime(app)
    assert rt.redis is not None
    links = make_links(app, 8)
    web = app.test_client()
    for n, slug in enumerate(links, start=1):
        clicks.send(web, slug, n)  # 36 clicks, a different number for each link
    rt.sink.flush()  # type: ignore[attr-defined]
    streams = shard_streams("touchlink:clicks", 4)
    assert streams == [f"{{touchlink:clicks:{i}}}" for i in range(4)]
    assert link_ids_by_shard(rt.redis, streams) == {
        i: {id_ for id_ in links.values() if id_ % 4 == i} for i in range(4)
    }
    poisoned = streams[2]
    redis_client.xadd(poisoned, {"c": "not json"})

    stream = ClickStream(rt.redis, rt.settings.stream, shards=4, consumer="w1")
    stats = IngestWorker(stream, rt.sessions, rt.enricher, rt.metrics).run(drain=True).totals

    assert (stats.inserted, stats.dead_lettered) == (36, 1)
    assert stored_by_link(rt) == {id_: n for n, id_ in enumerate(links.values(), start=1)}
    with rt.sessions() as session:
        assert clicks.stored(session) == (36, 36)
    # The dead letter stays beside its shard; every shard is acknowledged and trimmed.
    assert [rt.redis.exists(dead_letter_stream(s)) for s in streams] == [0, 0, 1, 0]
    assert [rt.redis.xpending(s, GROUP)["pending"] for s in streams] == [0] * 4
    assert [rt.redis.xlen(s) for s in streams] == [0] * 4


# --- a Redis Cluster ----------------------------------------------------------------------------


@pytest.mark.commits
@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_on_a_cluster_each_click_lands_in_its_links_shard_and_a_worker_stores_each_once(
    cluster_app: Flask, redis_cluster: LocalRedisCluster, workers: Workers,
    cluster_env: dict[str, str], clicks: Any,
) -> None:
    rt = runtime(cluster_app)
    assert rt.redis is not None
    links = make_links(cluster_app, 12)
    web = cluster_app.test_client()
    for n, slug in enumerate(links, start=1):
        clicks.send(web, slug, n)  # 78 clicks
    rt.sink.flush()  # type: ignore[attr-defined]
    streams = shard_streams(rt.settings.stream, SHARDS)
    assert link_ids_by_shard(rt.redis, streams) == {
        i: {id_ for id_ in links.values() if id_ % SHARDS == i} for i in range(SHARDS)
    }
    assert len({redis_cluster.node_of(stream).port for stream in streams}) == 3  # spread out

    code, output = workers.run("--drain", "--consumer", "w1", env=cluster_env)

    assert code == 0, output
    assert "78 clicks stored" in output
    assert stored_by_link(rt) == {id_: n for n, id_ in enumerate(links.values(), start=1)}
    with rt.sessions() as session:
        assert clicks.stored(session) == (78, 78)
    assert [rt.redis.xpending(s, GROUP)["pending"] for s in streams] == [0] * SHARDS
    assert [rt.redis.xlen(s) for s in streams] == [0] * SHARDS


@pytest.mark.commits
@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_a_node_and_a_worker_killed_under_traffic_delay_clicks_and_lose_or_double_none(
    cluster_app: Flask, redis_cluster: LocalRedisCluster, workers: Workers,
    cluster_env: dict[str, str], clicks: Any,
) -> None:
    rt = runtime(cluster_app)
    sink: Any = rt.sink
    links = make_links(cluster_app, 12)
    streams = shard_streams(rt.settings.stream, SHARDS)
    victim = redis_cluster.node_of(streams[0])
    on_victim = {s for s in streams if redis_cluster.node_of(s) is victim}
    assert len(on_victim) < SHARDS  # the other nodes keep some shards answering
    traffic = Traffic(cluster_app, links)

    def stored() -> int:
        return sum(stored_by_link(rt).values())

    worker = workers.start("--consumer", "w1", env=cluster_env)
    traffic.start()
    wait_until(lambda: stored() >= 200, timeout=60, what="the worker storing clicks")

    redis_cluster.kill(victim)  # SIGKILL: its shards' clicks are spooled meanwhile
    wait_until(lambda: sink.spooled() >= 100, timeout=60, what="clicks spooled for the dead node")
    health = cluster_app.test_client().get("/healthz").json
    assert health["status"] == "degraded" and "redis" in health["problems"]
    away = {s["stream"] for s in health["checks"]["redis"]["shards"] if not s["ok"]}
    assert away == on_victim
    before = stored()  # the other shards' clicks go on being stored
    wait_until(lambda: stored() >= before + 100, timeout=60, what="the living shards ingested")

    worker.kill()  # SIGKILL, with batches in hand, while the node is still away
    worker = workers.start("--consumer", "w1", env=cluster_env)
    before = stored()
    wait_until(lambda: stored() >= before + 100, timeout=60, what="the restarted worker storing")

    redis_cluster.restart(victim)  # with its AOF: the entries it held are back

    def spool_replayed() -> bool:
        sink.flush()  # as the flusher thread does within a second
        return bool(sink.spooled() == 0)

    wait_until(spool_replayed, timeout=60, what="the spool replayed into the node's shards")
    sent = traffic.stop()
    sink.flush()
    total = sum(sent.values())
    wait_until(lambda: stored() == total, timeout=120, what=f"all {total} clicks stored")

    worker.signal(signal.SIGTERM)  # finish and leave
    code, output = worker.finish(timeout=30)
    assert code == 0, output
    assert stored_by_link(rt) == sent
    with rt.sessions() as session:
        assert clicks.stored(session) == (total, total)
    # Some of them went through the spool, and came out of it into their shards once.
    spooled = rt.metrics.registry.get_sample_value("touchlink_clicks_spooled_total")
    assert spooled is not None and 100 <= spooled < total
    assert rt.redis is not None
    assert [rt.redis.xpending(s, GROUP)["pending"] for s in streams] == [0] * SHARDS


def test_on_a_cluster_the_live_feed_and_link_edits_reach_their_listeners(
    cluster_app: Flask, redis_cluster: LocalRedisCluster, marketer: dict[str, str]
) -> None:
    """Pub/sub on a cluster: PUBSUB NUMSUB is asked of the node the subscribers are on, and
    an edit's invalidation (no longer pipelined with PUBLISH) is published."""
    client = connect(redis_cluster.url, cluster=True)
    channel = channel_of(client, "touchlink:clicks")
    publisher = RedisChannel(client, channel)
    assert not publisher.listening()
    hub = LiveHub(max_viewers=2, connect=lambda: connect(redis_cluster.url, cluster=True),
                  channel=channel)
    viewer = hub.join(LiveFilter())
    wait_until(publisher.listening, timeout=10, what="the hub's subscription counted")
    publisher.publish(b'[{"slug": "poster-0"}]')
    assert viewer.queue.get(timeout=10) == b'[{"slug": "poster-0"}]'
    hub.leave(viewer)

    links = make_links(cluster_app, 1)
    web = cluster_app.test_client()
    assert web.get("/poster-0").status_code == 302  # cached in the cluster
    assert client.exists("touchlink:link:go.test/poster-0")
    edits: Any = connect(redis_cluster.url, cluster=True).pubsub(  # type: ignore[no-untyped-call]
        ignore_subscribe_messages=True
    )
    edits.subscribe(invalidate_channel(client))
    edits.get_message(timeout=1.0)  # the subscription's confirmation
    changed = web.patch(f"/api/v1/links/{links['poster-0']}", headers=marketer,
                        json={"url": "https://shop.example.com/spring"})
    assert changed.status_code == 200, changed.json
    message = edits.get_message(timeout=5.0)
    assert message is not None and message["data"] == b"go.test/poster-0"
    assert not client.exists("touchlink:link:go.test/poster-0")
    edits.close()
    client.close()
