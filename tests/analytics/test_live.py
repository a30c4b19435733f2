"""The live feed end to end: a click through the redirect, stored by a worker batch over the real
Redis stream, arrives on `GET /api/v1/live` — a real threaded HTTP server, read over a socket —
with its public fields and nothing private; a viewer that never reads is dropped while another
keeps receiving; heartbeats; the session of a signed-in analyst; 401, 403, 400 and 404; and the
embedded default (no Redis) feeding the feed from its own sink."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import orjson
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.test import TestResponse

from analytics.live import RedisChannel, channel_of
from analytics.live_api import live_hub
from analytics.runtime import runtime
from analytics.stream import ClickStream
from analytics.worker import IngestWorker
from shortener.openapi import document
from tests.conftest import AuthActions, Pages
from tests.faults import wait_until
from tests.user_agents import IPHONE

FIELDS = {"at", "link_id", "slug", "touchpoint", "stage", "scan", "country", "device", "bot",
          "test"}
VISITOR_IP = "203.0.113.77"


class Served:
    """An app on a real threaded server on a free loopback port, for streams to stay open on."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.server_port
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Viewer:
    """A live-feed client on a plain socket: the status, then every event as it comes (a
    thread reads them), or, with `reads=False`, a client that never reads a byte."""

    def __init__(self, port: int, path: str, headers: dict[str, str], *, reads: bool = True):
        self.sock = socket.socket()
        if not reads:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{lines}\r\n".encode())
        self.head = b""
        self.events: list[tuple[str, str]] = []  # (event name or "comment", data)
        self._buffer = b""
        self.closed = False
        if reads:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while chunk := self._recv():
            self._buffer += chunk
            if not self.head and b"\r\n\r\n" in self._buffer:
                self.head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
            while self.head and b"\n\n" in self._buffer:
                block, self._buffer = self._buffer.split(b"\n\n", 1)
                self.events.append(_event(block.decode()))
        self.closed = True

    def _recv(self) -> bytes:
        try:
            return self.sock.recv(1 << 16)
        except OSError:
            return b""

    @property
    def status(self) -> int:
        return int(self.head.split(b" ", 2)[1]) if self.head else 0

    def clicks(self) -> list[dict[str, Any]]:
        return [click for name, data in self.events if name == "clicks"
                for click in json.loads(data)]

    def close(self) -> None:
        self.sock.close()


def _event(block: str) -> tuple[str, str]:
    name, data, comments = "message", [], []
    for line in block.splitlines():
        if line.startswith(":"):
            comments.append(line[1:].strip())
            continue
        field, _, value = line.partition(":")
        if field == "event":
            name = value.strip()
        elif field == "data":
            data.append(value.strip())
        elif field == "retry":
            name = "retry"
            data.append(value.strip())
    if not data and comments:
        return "comment", "\n".join(comments)
    return name, "\n".join(data)


@pytest.fixture
def serve() -> Iterator[Callable[[Flask], Served]]:
    started: list[Served] = []

    def start(app: Flask) -> Served:
        started.append(Served(app))
        return started[-1]

    yield start
    for served in started:
        served.close()


@pytest.fixture
def viewers() -> Iterator[Callable[..., Viewer]]:
    opened: list[Viewer] = []

    def open_viewer(port: int, path: str = "/api/v1/live", **kwargs: Any) -> Viewer:
        opened.append(Viewer(port, path, **kwargs))
        return opened[-1]

    yield open_viewer
    for viewer in opened:
        viewer.close()


@pytest.fixture
def live_app(
    make_app: Callable[..., Flask], redis_client: redis.Redis, redis_url: str,
    make_flyer: Callable[[Flask], None],
) -> Flask:
    """Production wiring (clicks to the Redis stream), heartbeats every 0.2 s, with /flyer."""
    app = make_app(redis_url=redis_url, live_heartbeat=0.2)
    make_flyer(app)
    return app


def analyst_headers(app: Flask, make_key: Callable[[str], str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key('analyst')}"}


def worker_of(app: Flask) -> IngestWorker:
    rt = runtime(app)
    assert rt.redis is not None
    stream = ClickStream(rt.redis, rt.settings.stream, consumer="w1")
    stream.ensure_group()
    return IngestWorker(stream, rt.sessions, rt.enricher, rt.metrics)


def redirect(app: Flask, slug: str = "flyer", *, qr: bool = False) -> None:
    response = app.test_client().get(
        f"/{slug}?qr=1" if qr else f"/{slug}", headers={"User-Agent": IPHONE},
        environ_base={"REMOTE_ADDR": VISITOR_IP},
    )
    assert response.status_code == 302
    runtime(app).sink.flush()  # type: ignore[attr-defined]


@pytest.mark.commits
def test_a_stored_click_reaches_the_live_feed_with_its_public_fields_only(
    live_app: Flask, serve: Callable[[Flask], Served], viewers: Callable[..., Viewer],
    make_key: Callable[[str], str],
) -> None:
    served = serve(live_app)
    viewer = viewers(served.port, headers=analyst_headers(live_app, make_key))
    wait_until(lambda: viewer.status == 200, timeout=10, what="the stream's head")
    assert b"text/event-stream" in viewer.head and live_hub(live_app).watching() == 1

    worker = worker_of(live_app)
    redirect(live_app, qr=True)
    assert worker.consume_batch().inserted == 1

    wait_until(lambda: viewer.clicks(), timeout=10, what="the click on the live feed")
    [click] = viewer.clicks()
    assert set(click) == FIELDS
    assert {k: v for k, v in click.items() if k not in ("at", "link_id")} == {
        "slug": "flyer", "touchpoint": "flyer", "stage": "awareness", "scan": True,
        "country": click["country"], "device": "mobile", "bot": False, "test": False,
    }
    raw = "".join(data for _, data in viewer.events)
    assert VISITOR_IP not in raw and "visitor" not in raw and "journey" not in raw
    assert viewer.events[0] == ("retry", "3000")


@pytest.mark.commits
def test_a_viewer_that_never_reads_is_dropped_while_another_keeps_receiving(
    live_app: Flask, serve: Callable[[Flask], Served], viewers: Callable[..., Viewer],
    make_key: Callable[[str], str], redis_client: redis.Redis,
) -> None:
    served, auth = serve(live_app), analyst_headers(live_app, make_key)
    viewers(served.port, headers=auth, reads=False)  # connected, and never reading a byte
    reader = viewers(served.port, headers=auth)
    hub = live_hub(live_app)
    wait_until(lambda: hub.watching() == 2 and reader.status == 200, timeout=10,
               what="both viewers join")

    # Real-sized batches on the real channel, until the stuck viewer's socket buffers and then
    # its queue are full: 200 messages of 600 clicks, about 25 MB.
    stream = runtime(live_app).settings.stream
    channel = RedisChannel(redis_client, channel_of(redis_client, stream))
    click = {"at": "2026-12-02T05:00:00+00:00", "link_id": 1, "slug": "flyer",
             "touchpoint": "flyer", "stage": "awareness", "scan": False, "country": "FR",
             "device": "mobile", "bot": False, "test": False}
    message = orjson.dumps([click] * 600)
    for sent in range(200):
        # As a worker's batches come: never so many at once that a reader keeping up falls
        # behind by a queue's worth; the stuck viewer falls behind all the same.
        wait_until(partial(keeps_up, reader, sent - 16), timeout=30,
                   what="the reading viewer keeps up")
        channel.publish(message)

    wait_until(lambda: hub.dropped == 1, timeout=30, what="the stuck viewer is dropped")
    wait_until(lambda: batches(reader) == 200, timeout=30,
               what="the reading viewer gets every message")
    assert len(reader.clicks()) == 200 * 600
    assert hub.watching() == 1
    assert ("dropped", '{"reason": "read too slowly"}') not in reader.events


def batches(viewer: Viewer) -> int:
    return sum(name == "clicks" for name, _ in viewer.events)


def keeps_up(viewer: Viewer, count: int) -> bool:
    return batches(viewer) >= count


def error_of(response: TestResponse) -> dict[str, Any]:
    body = response.get_json()
    assert isinstance(body, dict), response.get_data(as_text=True)[:500]
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.commits
def test_heartbeats_keep_coming_and_a_closed_stream_ends(
    live_app: Flask, serve: Callable[[Flask], Served], viewers: Callable[..., Viewer],
    make_key: Callable[[str], str],
) -> None:
    served = serve(live_app)
    viewer = viewers(served.port, headers=analyst_headers(live_app, make_key))
    wait_until(lambda: viewer.events.count(("comment", "ping")) >= 3, timeout=10,
               what="three heartbeats")
    hub = live_hub(live_app)
    assert hub.open_streams() == 1
    viewer.close()
    # The next heartbeat's write fails: the server closes the stream and the hub forgets it.
    wait_until(lambda: hub.open_streams() == 0, timeout=10, what="the stream ends")


@pytest.mark.commits
def test_filters_keep_one_touchpoint_and_stage(
    live_app: Flask, serve: Callable[[Flask], Served], viewers: Callable[..., Viewer],
    make_key: Callable[[str], str], client: FlaskClient,
) -> None:
    marketer = {"Authorization": f"Bearer {make_key('marketer')}"}
    other = live_app.test_client().post("/api/v1/links", headers=marketer, json={
        "url": "https://shop.example.com/faq", "touchpoint": "flyer", "stage": "support",
        "slug": "faq",
    })
    assert other.status_code == 201, other.json
    served, auth = serve(live_app), analyst_headers(live_app, make_key)
    support = viewers(served.port, "/api/v1/live?touchpoint=flyer&stage=support", headers=auth)
    everything = viewers(served.port, headers=auth)
    wait_until(lambda: support.status == everything.status == 200, timeout=10,
               what="both streams' heads")

    worker = worker_of(live_app)
    redirect(live_app, "flyer")
    redirect(live_app, "faq")
    assert worker.consume_batch().inserted == 2

    wait_until(lambda: len(everything.clicks()) == 2, timeout=10, what="both clicks")
    wait_until(lambda: support.clicks(), timeout=10, what="the support click")
    assert [c["slug"] for c in support.clicks()] == ["faq"]


def test_the_feed_needs_an_analyst(
    live_app: Flask, headers: Callable[[str], dict[str, str]], auth: AuthActions,
) -> None:
    client = live_app.test_client()
    refused = client.get("/api/v1/live")
    assert refused.status_code == 401 and error_of(refused)["code"] == "unauthenticated"
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    wrong = client.get("/api/v1/live", headers=headers("tracker"))
    assert wrong.status_code == 403 and error_of(wrong)["code"] == "forbidden"
    bad = client.get("/api/v1/live", headers={"Authorization": "Bearer tl_nope"})
    assert bad.status_code == 401

    # The dashboard's EventSource sends no header: the session of a signed-in analyst will do.
    analyst = AuthActions(live_app, Pages()).client("analyst")
    streamed = analyst.get("/api/v1/live", buffered=False)
    assert streamed.status_code == 200 and streamed.mimetype == "text/event-stream"
    assert next(streamed.response).startswith(b"retry: 3000")  # type: ignore[call-overload]
    streamed.close()


def test_bad_filters_are_refused_in_json(
    live_app: Flask, headers: Callable[[str], dict[str, str]],
) -> None:
    client, analyst = live_app.test_client(), headers("analyst")
    unknown = client.get("/api/v1/live?touchpoint=nowhere", headers=analyst)
    assert unknown.status_code == 404 and error_of(unknown)["code"] == "not_found"
    assert client.get("/api/v1/live?stage=nowhere", headers=analyst).status_code == 404
    typo = client.get("/api/v1/live?touchpont=flyer", headers=analyst)
    assert typo.status_code == 400
    assert error_of(typo)["details"] == {"parameter": "touchpont"}


def test_a_process_serves_at_most_its_viewers(
    make_app: Callable[..., Flask], redis_client: redis.Redis, redis_url: str,
    headers: Callable[[str], dict[str, str]],
) -> None:
    app = make_app(redis_url=redis_url, live_viewers=1)
    client, analyst = app.test_client(), headers("analyst")
    first = client.get("/api/v1/live", headers=analyst, buffered=False)
    assert first.status_code == 200
    second = client.get("/api/v1/live", headers=analyst)
    assert second.status_code == 503 and error_of(second)["code"] == "live_full"
    first.close()
    assert client.get("/api/v1/live", headers=analyst, buffered=False).status_code == 200


@pytest.mark.commits
def test_without_redis_the_embedded_sink_feeds_the_live_feed(
    make_app: Callable[..., Flask], make_flyer: Callable[[Flask], None],
    serve: Callable[[Flask], Served], viewers: Callable[..., Viewer],
    make_key: Callable[[str], str],
) -> None:
    app = make_app()
    make_flyer(app)
    served = serve(app)
    viewer = viewers(served.port, headers=analyst_headers(app, make_key))
    wait_until(lambda: viewer.status == 200, timeout=10, what="the stream's head")

    redirect(app)  # the embedded sink stores it, then hands it to this process's feed

    wait_until(lambda: viewer.clicks(), timeout=10, what="the click on the live feed")
    [click] = viewer.clicks()
    assert set(click) == FIELDS and click["slug"] == "flyer" and click["scan"] is False


def test_the_feed_answers_as_its_operation_is_documented(
    live_app: Flask, headers: Callable[[str], dict[str, str]],
) -> None:
    """Its statuses and media types as documented (schemathesis sees the stream's headers only)."""
    operation = document(live_app)["paths"]["/api/v1/live"]["get"]
    client, analyst = live_app.test_client(), headers("analyst")
    streamed = client.get("/api/v1/live", headers=analyst, buffered=False)
    assert streamed.status_code == 200
    assert streamed.mimetype in operation["responses"]["200"]["content"]
    streamed.close()
    for answer in (
        client.get("/api/v1/live"),
        client.get("/api/v1/live", headers=headers("tracker")),
        client.get("/api/v1/live?touchpoint=nowhere", headers=analyst),
        client.get("/api/v1/live?touchpont=flyer", headers=analyst),
    ):
        assert str(answer.status_code) in operation["responses"]
        assert answer.mimetype in operation["responses"][str(answer.status_code)]["content"]
