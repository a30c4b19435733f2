"""One unit of work per request: what a committed change makes stale leaves every link cache, and
a refused change publishes nothing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from shortener.resolver import invalidate_channel

Headers = dict[str, str]


@pytest.fixture
def api(redis_app: Flask) -> FlaskClient:
    return redis_app.test_client()


@pytest.fixture
def poster(api: FlaskClient, marketer: Headers) -> list[str]:
    """A touchpoint with two links, both followed once so that every cache holds them."""
    touchpoint = {"key": "poster", "name": "Poster", "channel": "physical"}
    assert api.post("/api/v1/touchpoints", json=touchpoint, headers=marketer).status_code == 201
    slugs = ["poster-a", "poster-b"]
    for slug in slugs:
        body = {"url": "https://shop.example.com/", "touchpoint": "poster",
                "stage": "awareness", "slug": slug}
        assert api.post("/api/v1/links", json=body, headers=marketer).status_code == 201
        assert api.get(f"/{slug}").status_code == 302
    return slugs


@pytest.fixture
def published(redis_client: redis.Redis) -> Iterator[Callable[[], list[str]]]:
    """The invalidations published from now on, as `domain/slug` keys."""
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    pubsub.subscribe(invalidate_channel(redis_client))
    pubsub.get_message(timeout=1.0)  # the subscription's confirmation

    def read() -> list[str]:
        keys = []
        while (message := pubsub.get_message(timeout=0.2)) is not None:
            keys.append(message["data"].decode())
        return sorted(keys)

    yield read
    pubsub.close()


def cached(client: redis.Redis, slug: str) -> bool:
    return bool(client.exists(f"touchlink:link:go.test/{slug}"))


def test_archiving_a_touchpoint_through_the_api_drops_its_links_from_every_cache(
    api: FlaskClient,
    marketer: Headers,
    poster: list[str],
    redis_client: redis.Redis,
    published: Callable[[], list[str]],
) -> None:
    assert all(cached(redis_client, slug) for slug in poster)

    response = api.delete("/api/v1/touchpoints/poster", headers=marketer)

    assert response.status_code == 200
    assert response.json is not None and response.json["archived"] is True
    assert not any(cached(redis_client, slug) for slug in poster)
    assert published() == [f"go.test/{slug}" for slug in poster]


def test_a_refused_change_publishes_nothing_and_keeps_the_cache(
    api: FlaskClient,
    marketer: Headers,
    poster: list[str],
    redis_client: redis.Redis,
    published: Callable[[], list[str]],
) -> None:
    refused = api.patch(
        "/api/v1/touchpoints/poster", json={"channel": "telepathy"}, headers=marketer
    )

    assert refused.status_code == 422
    assert all(cached(redis_client, slug) for slug in poster)
    assert published() == []


def test_a_renamed_touchpoint_reaches_the_cache_of_another_process(
    make_app: Callable[..., Flask],
    redis_url: str,
    api: FlaskClient,
    marketer: Headers,
    poster: list[str],
) -> None:
    # A second app is a second process as far as the caches go: its own in-process cache, fed by
    # the same Redis.
    other = make_app(redis_url=redis_url, cache_ttl=3600.0).test_client()
    assert "utm_source=poster" in other.get("/poster-a").headers["Location"]

    renamed = api.patch("/api/v1/touchpoints/poster", json={"key": "shop-poster"}, headers=marketer)
    assert renamed.status_code == 200

    deadline = time.monotonic() + 5
    location: Any = None
    while time.monotonic() < deadline:
        location = other.get("/poster-a").headers["Location"]
        if "utm_source=shop-poster" in location:
            break
        time.sleep(0.02)
    assert "utm_source=shop-poster" in location
