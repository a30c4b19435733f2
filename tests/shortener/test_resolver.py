"""The link resolver's in-process cache: bounded, and refreshed by edits.

What the cache holds is seen from outside, as its callers see it: an answer from the cache does not
reach SQL, and one the cache has forgotten does."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from shortener.db import make_sessionmaker
from shortener.resolver import LinkResolver


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Database:
    """Sessions on the test's database that count the queries reaching it."""

    def __init__(self, bind: Engine | Connection) -> None:
        self.sessions: sessionmaker[Session] = make_sessionmaker(bind)
        self.queries = 0
        event.listen(self.sessions, "do_orm_execute", self._count)

    def _count(self, _state: ORMExecuteState) -> None:
        self.queries += 1

    def reached(self, resolver: LinkResolver, slug: str) -> bool:
        """Resolve `slug` on go.test; whether that had to ask SQL (it was not cached)."""
        before = self.queries
        resolver.resolve("go.test", slug)
        return self.queries > before


@pytest.fixture
def database(bind: Engine | Connection) -> Database:
    return Database(bind)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_unknown_slugs_cannot_grow_the_cache_without_end(
    database: Database, clock: Clock, link: dict[str, Any]
) -> None:
    resolver = LinkResolver(database.sessions, None, ttl=60, max_entries=40, clock=clock)
    assert resolver.resolve("go.test", "spring") is not None

    for n in range(200):
        assert resolver.resolve("go.test", f"nothing-{n}") is None

    # Nothing has expired (the clock stands still), yet at most 40 answers are still cached.
    cached = [n for n in reversed(range(200)) if not database.reached(resolver, f"nothing-{n}")]
    assert 0 < len(cached) <= 40
    assert 199 in cached and 0 not in cached
    target = resolver.resolve("go.test", "spring")
    assert target is not None and target.link_id == link["id"]


def test_a_full_cache_drops_its_expired_entries_before_any_live_one(
    database: Database, clock: Clock, link: dict[str, Any]
) -> None:
    resolver = LinkResolver(database.sessions, None, ttl=10, max_entries=8, clock=clock)
    assert database.reached(resolver, "spring")  # the oldest entry
    clock.now = 5.0
    for n in range(6):
        resolver.resolve("go.test", f"old-{n}")
    clock.now = 10.0
    assert database.reached(resolver, "spring")  # expired: loaded again, live until 20

    clock.now = 16.0  # the old-* entries have expired, the oldest entry (spring) has not
    resolver.resolve("go.test", "new-0")  # the eighth entry: the cache is full
    resolver.resolve("go.test", "new-1")  # room is made

    assert not database.reached(resolver, "spring")
    assert not database.reached(resolver, "new-0")
    assert not database.reached(resolver, "new-1")
