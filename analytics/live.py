"""The live feed: clicks as they are stored, for whoever watches `GET /api/v1/live`.

After a batch commits, whoever stored it (the worker, or the embedded sink) publishes the clicks
it inserted, from the rows it stored — their public fields only: never an IP, a visitor id or a
journey — as one message: on a Redis channel that every web process listens to, or (embedded, no
Redis) straight to this process's hub. Nothing is read or sent while nobody watches.

A web process keeps one `LiveHub`: one subscriber thread holding one pub/sub connection (while
anyone watches) fans each message out to a bounded queue per viewer. A viewer whose queue is full
is dropped (its stream ends), so a slow reader never holds up the publisher or the other viewers.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from analytics.retry import Backoff
from shortener.errors import DomainError
from shortener.models import Link, Stage, Touchpoint
from shortener.redis_client import ERRORS, Client, database_of, subscribers

log = logging.getLogger(__name__)

QUEUE_SIZE = 64  # messages (one per batch) a viewer may fall behind by before it is dropped
RETRY_MS = 3000  # how soon a browser's EventSource comes back after its stream ends
POLL_SECONDS = 1.0  # how often the subscriber looks whether anyone still watches
STORES_DOWN: tuple[type[Exception], ...] = (*ERRORS, SQLAlchemyError)


class LiveFullError(DomainError):
    """This process already serves as many viewers as it may (TOUCHLINK_LIVE_VIEWERS)."""

    code = "live_full"
    status = 503

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "30"}


class LivePublisher(Protocol):
    """Where a batch's stored clicks go: a Redis channel, or this process's hub."""

    def listening(self) -> bool: ...

    def publish(self, message: bytes) -> None: ...


def channel_of(client: Client, stream: str) -> str:
    """The channel of the feed: pub/sub ignores the database number, so the name carries it,
    and two installations sharing one Redis server keep their feeds apart."""
    return f"{stream}:live:{database_of(client)}"


class RedisChannel:
    """The worker's side of the channel."""

    def __init__(self, client: Client, channel: str) -> None:
        self._client = client
        self.channel = channel

    def listening(self) -> bool:
        # One round trip; it spares the message when nobody watches.
        return subscribers(self._client, self.channel) > 0

    def publish(self, message: bytes) -> None:
        self._client.publish(self.channel, message)


class Names:
    """The slugs, touchpoint keys and stage keys the feed shows, by id: read on first sight,
    then kept for `ttl` seconds (a renamed slug shows within a minute), so that a batch's clicks
    are published from the rows ingest has in hand, with no read back."""

    def __init__(self, ttl: float = 60.0) -> None:
        self._ttl = ttl
        self._read_at = 0.0
        self._names: dict[Any, dict[int, str]] = {}

    def of(self, session: Session, rows: Sequence[dict[str, Any]]) -> tuple[dict[int, str], ...]:
        """(slugs by link id, touchpoint keys, stage keys) of every id of `rows`."""
        if time.monotonic() - self._read_at > self._ttl:
            self._names = {Link: {}, Touchpoint: {}, Stage: {}}
            self._read_at = time.monotonic()
        found = []
        for model, column, name in ((Link, "link_id", Link.slug),
                                    (Touchpoint, "touchpoint_id", Touchpoint.key),
                                    (Stage, "stage_id", Stage.key)):
            known = self._names[model]
            missing = {row[column] for row in rows} - known.keys()
            if missing:
                known.update((id_, key) for id_, key in session.execute(
                    select(model.id, name).where(model.id.in_(missing))))
            found.append(known)
        return tuple(found)


def live_clicks(session: Session, names: Names, rows: Sequence[dict[str, Any]]
                ) -> list[dict[str, Any]]:
    """The stored rows of a batch as the feed shows them, oldest first: public fields only."""
    slugs, touchpoints, stages = names.of(session, rows)
    return [
        {
            "at": row["occurred_at"].isoformat(), "link_id": row["link_id"],
            "slug": slugs.get(row["link_id"]), "touchpoint": touchpoints.get(row["touchpoint_id"]),
            "stage": stages.get(row["stage_id"]), "scan": bool(row["via_qr"]),
            "country": row["country"], "device": row["device"], "bot": bool(row["is_bot"]),
            "test": bool(row["is_test"]),
        }
        for row in sorted(rows, key=lambda row: (row["occurred_at"], row["click_id"]))
    ]


def publish_stored(
    publisher: LivePublisher | None, sessions: sessionmaker[Session], names: Names,
    rows: Sequence[dict[str, Any]],
) -> int:
    """Publish the clicks a committed batch stored (its rows); how many. The feed is a view:
    whatever fails here (Redis, SQL, or a fault of the feed's own), the batch is stored all the
    same, and the feed misses it."""
    if publisher is None or not rows:
        return 0
    try:
        if not publisher.listening():
            return 0
        with sessions() as session:
            clicks = live_clicks(session, names, rows)
        publisher.publish(orjson.dumps(clicks))
    except STORES_DOWN as exc:
        log.warning("the live feed missed %d clicks: %s", len(rows), exc)
        return 0
    except Exception:  # a fault of the feed's: logged in full, never the batch's failure
        log.exception("the live feed missed %d clicks", len(rows))
        return 0
    return len(clicks)


@dataclass(frozen=True, slots=True)
class LiveFilter:
    """Which clicks a viewer wants: all, or those of one touchpoint and/or stage (keys)."""

    touchpoint: str | None = None
    stage: str | None = None

    @property
    def everything(self) -> bool:
        return self.touchpoint is None and self.stage is None

    def keeps(self, click: dict[str, Any]) -> bool:
        return (self.touchpoint is None or click.get("touchpoint") == self.touchpoint) and (
            self.stage is None or click.get("stage") == self.stage
        )


class Viewer:
    """One open stream: its filter and its bounded queue of messages to send."""

    __slots__ = ("dropped", "filter", "left", "queue")

    def __init__(self, wanted: LiveFilter, size: int) -> None:
        self.filter = wanted
        self.queue: queue.Queue[bytes] = queue.Queue(size)
        self.dropped = False
        self.left = False

    def offer(self, message: bytes, clicks: list[dict[str, Any]] | None) -> bool:
        """Queue the message (the clicks this viewer wants of it); False when the queue is full."""
        if clicks is not None:
            kept = [click for click in clicks if self.filter.keeps(click)]
            if not kept:
                return True
            message = orjson.dumps(kept)
        try:
            self.queue.put_nowait(message)
        except queue.Full:
            return False
        return True


class LiveHub:
    """This process's viewers, and the fan-out of each message to them.

    With `connect` (a new Redis client), a subscriber thread (started on the first viewer, in
    each process that serves one) feeds it from the channel; without, the embedded sink calls
    `publish` itself.
    """

    def __init__(
        self,
        *,
        max_viewers: int,
        queue_size: int = QUEUE_SIZE,
        connect: Callable[[], Client] | None = None,
        channel: str | None = None,
    ) -> None:
        self.max_viewers = max_viewers
        self._queue_size = queue_size
        self._connect = connect
        self._channel = channel
        self._viewers: set[Viewer] = set()  # those receiving
        self._open = 0  # streams not ended yet, dropped ones included: each holds a thread
        self._lock = threading.Lock()
        self._pid: int | None = None
        self.dropped = 0  # viewers dropped for reading too slowly, since the start

    def join(self, wanted: LiveFilter) -> Viewer:
        with self._lock:
            if self._open >= self.max_viewers:
                raise LiveFullError(
                    f"This process already serves {self.max_viewers} live viewers "
                    "(TOUCHLINK_LIVE_VIEWERS); try again shortly."
                )
            viewer = Viewer(wanted, self._queue_size)
            self._viewers.add(viewer)
            self._open += 1
        if self._connect is not None and self._pid != os.getpid():
            self._start_subscriber()
        return viewer

    def leave(self, viewer: Viewer) -> None:
        with self._lock:
            if viewer.left:
                return
            viewer.left = True
            self._viewers.discard(viewer)
            self._open -= 1

    def watching(self) -> int:
        """Viewers receiving now."""
        return len(self._viewers)

    def open_streams(self) -> int:
        """Streams not ended yet, dropped ones included."""
        return self._open

    def listening(self) -> bool:
        return bool(self._viewers)

    def publish(self, message: bytes) -> None:
        """Hand a message to every viewer; a viewer with no room left is dropped, never waited
        for."""
        with self._lock:
            viewers = list(self._viewers)
        if not viewers:
            return
        clicks = None
        if any(not viewer.filter.everything for viewer in viewers):
            clicks = orjson.loads(message)
        for viewer in viewers:
            wanted = None if viewer.filter.everything else clicks
            if not viewer.offer(message, wanted):
                self._drop(viewer)

    def _drop(self, viewer: Viewer) -> None:
        with self._lock:
            if viewer in self._viewers:
                self._viewers.discard(viewer)
                viewer.dropped = True
                self.dropped += 1
        log.info("dropped a live viewer that read too slowly")

    def _start_subscriber(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()  # a forked server worker starts a thread of its own
        threading.Thread(target=self._subscribe, name="live-feed", daemon=True).start()

    def _subscribe(self) -> None:
        """Hold the subscription while anyone watches; come back after Redis goes away."""
        assert self._connect is not None and self._channel is not None
        channel, backoff = self._channel, Backoff()
        while True:
            try:
                client = self._connect()
                pubsub: Any = client.pubsub(  # type: ignore[no-untyped-call]
                    ignore_subscribe_messages=True
                )
                with pubsub:
                    self._relay(pubsub, channel)
            except ERRORS as exc:
                pause = backoff.next()
                log.warning("live feed: Redis is not answering (%s); again in %.1fs", exc, pause)
                time.sleep(pause)
            else:
                backoff.reset()

    def _relay(self, pubsub: Any, channel: str) -> None:
        subscribed = False
        while True:
            if self._viewers and not subscribed:
                pubsub.subscribe(channel)
                subscribed = True
            elif not self._viewers and subscribed:
                # Nobody watches: unsubscribed, the worker reads nothing back for the feed.
                pubsub.unsubscribe(channel)
                subscribed = False
            if not subscribed:
                time.sleep(POLL_SECONDS / 4)
                continue
            message = pubsub.get_message(timeout=POLL_SECONDS)
            if message is not None and message.get("type") == "message":
                self.publish(message["data"])


class EventStream:
    """The viewer's Server-Sent Events, as a WSGI body: an `event: clicks` with a JSON array per
    message, a `: ping` comment after `heartbeat` seconds of silence (a write is how a server
    learns that the client left), and a last `event: dropped` for a viewer that fell behind.

    The server closes it when the client goes away (at a failed write) or the stream ends; the
    viewer leaves the hub then, even if not one event was sent.
    """

    def __init__(self, hub: LiveHub, viewer: Viewer, *, heartbeat: float) -> None:
        self._hub = hub
        self._viewer = viewer
        self._heartbeat = heartbeat
        self._events: Generator[bytes, None, None] = self._generate()

    def __iter__(self) -> Iterator[bytes]:
        return self._events

    def close(self) -> None:
        self._events.close()
        self._hub.leave(self._viewer)

    def _generate(self) -> Generator[bytes, None, None]:
        viewer = self._viewer
        try:
            yield f"retry: {RETRY_MS}\n: watching\n\n".encode()
            while not viewer.dropped:
                try:
                    message = viewer.queue.get(timeout=self._heartbeat)
                except queue.Empty:
                    yield b": ping\n\n"
                    continue
                if viewer.dropped:
                    break
                yield b"event: clicks\ndata: " + message + b"\n\n"
            yield b'event: dropped\ndata: {"reason": "read too slowly"}\n\n'
        finally:
            self._hub.leave(viewer)
