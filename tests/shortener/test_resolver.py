"""The link resolver's in-process cache: bounded, and refreshed by edits."""

from __future__ import annotations

from typing import Any

from shortener.resolver import LinkResolver
from shortener.runtime import Runtime


def test_unknown_slugs_cannot_grow_the_cache_without_end(rt: Runtime, link: dict[str, Any]) -> None:
    resolver = LinkResolver(rt.sessions, None, ttl=60, max_entries=40)

    assert resolver.resolve("go.test", "spring") is not None
    for n in range(200):
        assert resolver.resolve("go.test", f"nothing-{n}") is None
        assert len(resolver._local) <= 40

    target = resolver.resolve("go.test", "spring")
    assert target is not None and target.link_id == link["id"]


def test_expired_entries_are_dropped_first(rt: Runtime, link: dict[str, Any]) -> None:
    now = [0.0]
    resolver = LinkResolver(rt.sessions, None, ttl=10, max_entries=8, clock=lambda: now[0])
    for n in range(7):
        resolver.resolve("go.test", f"old-{n}")

    now[0] = 11.0
    resolver.resolve("go.test", "spring")
    resolver.resolve("go.test", "new")

    assert set(resolver._local) == {"go.test/spring", "go.test/new"}
