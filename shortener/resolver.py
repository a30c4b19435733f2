"""Slug → redirect target, through an in-process cache, then Redis, then SQL.

Edits reach every process at once: the editor deletes the Redis entry and publishes the key on a
channel that each process listens to, dropping its own copy. When Redis or SQL cannot answer, a
stale in-process entry is served rather than failing a customer's click.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from shortener.models import Hub, Link, SlugHistory
from shortener.redis_client import ERRORS, Client, database_of
from shortener.slugs import slug_key
from shortener.urls import build_location, is_safe_redirect_target

log = logging.getLogger(__name__)

STORES_DOWN: tuple[type[Exception], ...] = (*ERRORS, SQLAlchemyError)
# Redis went away, or close() pulled the connection from under listen().
LISTENER_DOWN: tuple[type[Exception], ...] = (*ERRORS, OSError, ValueError, AttributeError)

INVALIDATE_CHANNEL = "touchlink:links:invalidate"
# Edits delete the Redis entry at once; the TTL only bounds the rare race of a reader that
# loaded the old row from SQL just before the edit committed and stored it just after.
REDIS_TTL = 300
# Unknown slugs are cached too (as None), so the in-process cache must be bounded: otherwise
# requests for random slugs would grow it without end.
MAX_LOCAL_ENTRIES = 50_000


@dataclass(frozen=True, slots=True)
class Target:
    """Everything the redirect needs about a link, small enough to cache everywhere."""

    link_id: int
    destination: str
    touchpoint_id: int
    touchpoint_key: str
    channel: str
    stage_id: int
    campaign: str | None
    redirect_status: int
    utm: bool
    expires_at: float | None
    archived: bool
    track_conversions: bool = False
    survey_kind: str | None = None  # a survey link shows its question instead of redirecting
    survey_question: str | None = None
    survey_then: str | None = None
    hub: bool = False  # a hub's link shows the hub's page instead (`shortener.hubs_public`)
    fallback_url: str | None = None  # where it sends customers once archived or expired
    starts_at: float | None = None  # its go-live: clicks before are tests

    @classmethod
    def of(cls, link: Link, *, hub: bool = False) -> Target:
        return cls(
            link_id=link.id,
            destination=link.destination,
            touchpoint_id=link.touchpoint_id,
            touchpoint_key=link.touchpoint.key,
            channel=link.touchpoint.channel,
            stage_id=link.stage_id,
            campaign=link.campaign,
            redirect_status=link.redirect_status,
            utm=link.utm,
            expires_at=link.expires_at.timestamp() if link.expires_at else None,
            archived=link.archived,
            track_conversions=link.track_conversions,
            survey_kind=link.survey_kind,
            survey_question=link.survey_question,
            survey_then=link.survey_then,
            hub=hub,
            fallback_url=link.fallback_url,
            starts_at=link.starts_at.timestamp() if link.starts_at else None,
        )

    # Worked out once per cache fill rather than on every click.
    utm_params: dict[str, str] | None = field(init=False, compare=False, repr=False)
    location: str = field(init=False, compare=False, repr=False)  # when the click has no query
    safe: bool = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        utm = None
        if self.utm:
            utm = {"utm_source": self.touchpoint_key, "utm_medium": self.channel}
            if self.campaign:
                utm["utm_campaign"] = self.campaign
        object.__setattr__(self, "utm_params", utm)
        object.__setattr__(self, "location", build_location(self.destination, (), utm))
        # Stored destinations were validated on the way in; this guards rows written by hand.
        object.__setattr__(self, "safe", is_safe_redirect_target(self.destination))

    def to_json(self) -> str:
        return json.dumps({name: getattr(self, name) for name in _STORED})

    @classmethod
    def from_json(cls, raw: bytes | str) -> Target:
        return cls(**json.loads(raw))

    def is_live(self, now: float) -> bool:
        return not self.archived and (self.expires_at is None or now < self.expires_at)


_STORED = tuple(f.name for f in fields(Target) if f.init)


_MISSING = object()


class LinkResolver:
    """Finds the target of `(domain, slug)`; safe to share between the threads of a process."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        redis_client: Client | None,
        *,
        subscriber: Client | None = None,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = MAX_LOCAL_ENTRIES,
    ) -> None:
        self._sessions = sessions
        self._redis = redis_client
        # Listening blocks on a socket, so it needs a client without the hot path's short timeouts.
        self._subscriber = subscriber or redis_client
        self._ttl = ttl
        self._clock = clock
        self._local: dict[str, tuple[float, Target | None]] = {}
        self._max_entries = max_entries
        self._listener_pid: int | None = None
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._pubsub: Any = None

    def resolve(self, domain: str, slug: str) -> Target | None:
        """The target of `slug` whatever its letter case, or of the link that gave it up."""
        key = _key(domain, slug)
        entry = self._local.get(key)
        now = self._clock()
        if entry is not None and entry[0] > now:
            return entry[1]
        self._ensure_listener()
        try:
            target = self._load(key, domain, slug)
        except STORES_DOWN:
            if entry is None:
                raise
            log.warning("serving a stale cache entry for %s: the stores did not answer", key)
            return entry[1]
        if len(self._local) >= self._max_entries:
            self._evict(now)
        self._local[key] = (now + self._ttl, target)
        return target

    def invalidate(self, domain: str, slug: str) -> None:
        """Forget `(domain, slug)` here and in every process; call after the edit is committed."""
        key = _key(domain, slug)
        self._local.pop(key, None)
        if self._redis is not None:
            try:
                # Two round trips, not a pipeline: a cluster pipeline refuses PUBLISH.
                self._redis.delete(_redis_key(key))
                self._redis.publish(invalidate_channel(self._redis), key)
            except ERRORS:
                # Other processes learn of the edit when their entry expires (TOUCHLINK_CACHE_TTL),
                # and each listener clears its cache when it reconnects to Redis.
                log.warning("could not publish the edit of %s: Redis is not answering", key)

    def clear(self) -> None:
        self._local.clear()

    def close(self) -> None:
        """Stop listening for edits (a process shutting down, or a test's app torn down)."""
        self._closed.set()
        pubsub = self._pubsub
        if pubsub is not None:
            with contextlib.suppress(*ERRORS, OSError):
                pubsub.close()

    def _evict(self, now: float) -> None:
        """Drop expired entries, and if that is not enough, the oldest quarter."""
        entries = list(self._local.items())  # a snapshot: other threads keep resolving
        stale = [key for key, (expires, _) in entries if expires <= now]
        if len(entries) - len(stale) >= self._max_entries:
            stale.extend(key for key, _ in entries[: self._max_entries // 4 + 1])
        for key in stale:
            self._local.pop(key, None)

    def _load(self, key: str, domain: str, slug: str) -> Target | None:
        if self._redis is not None:
            try:
                cached = self._redis.get(_redis_key(key))
            except ERRORS:
                cached = None  # Redis is down: SQL still knows
            if cached is not None:
                return Target.from_json(cached)
        with self._sessions() as session:
            query = select(Link, Hub.id).outerjoin(Hub, Hub.link_id == Link.id)
            row = session.execute(
                query.where(Link.domain == domain, Link.slug_key == slug_key(slug))
            ).one_or_none()
            if row is None:  # a slug printed before its link was renamed
                row = session.execute(query.join(SlugHistory, SlugHistory.link_id == Link.id).where(
                    SlugHistory.domain == domain, SlugHistory.slug_key == slug_key(slug)
                )).one_or_none()
            target = Target.of(row[0], hub=row[1] is not None) if row is not None else None
        if target is not None and self._redis is not None:
            with contextlib.suppress(*ERRORS):
                self._redis.set(_redis_key(key), target.to_json(), ex=REDIS_TTL)
        return target

    def _ensure_listener(self) -> None:
        # Started lazily, once per process: threads do not survive a pre-forking server's fork.
        if self._redis is None or self._listener_pid == os.getpid() or self._closed.is_set():
            return
        with self._lock:
            if self._listener_pid == os.getpid():
                return
            self._listener_pid = os.getpid()
            threading.Thread(target=self._listen, name="link-invalidations", daemon=True).start()

    def _listen(self) -> None:
        assert self._subscriber is not None
        while not self._closed.is_set():
            try:
                pubsub: Any = self._subscriber.pubsub(  # type: ignore[no-untyped-call]
                    ignore_subscribe_messages=True
                )
                self._pubsub = pubsub
                pubsub.subscribe(invalidate_channel(self._subscriber))
                # Whatever was published while we were not listening is lost: start afresh.
                self.clear()
                for message in pubsub.listen():
                    self._local.pop(_decode(message.get("data")), None)
            except LISTENER_DOWN:
                self._closed.wait(1.0)


def invalidate_channel(client: Client) -> str:
    """The channel edits are published on. Pub/sub ignores Redis's numbered databases, so the
    database is part of the name: instances sharing a server on different databases keep apart."""
    return f"{INVALIDATE_CHANNEL}:{database_of(client)}"


def _key(domain: str, slug: str) -> str:
    return f"{domain}/{slug_key(slug)}"


def _redis_key(key: str) -> str:
    return f"touchlink:link:{key}"


def _decode(data: Any) -> str:
    return data.decode() if isinstance(data, bytes) else str(data)
