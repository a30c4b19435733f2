"""Capture modes: strict capture has each click in Redis before the redirect answers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis
from flask import Flask
from sqlalchemy import Engine

from shortener.settings import Settings
from tests.analytics.pipeline import click_many, make_link
from tests.conftest import REDIS_URL, _build_app


@pytest.fixture
def strict_app(settings: Settings, engine: Engine, redis_client: redis.Redis) -> Iterator[Flask]:
    yield from _build_app(replace(settings, redis_url=REDIS_URL, strict_capture=True), engine)


def test_strict_capture_has_the_click_in_redis_when_the_redirect_answers(
    strict_app: Flask, redis_client: redis.Redis, settings: Settings
) -> None:
    make_link(strict_app)
    client = strict_app.test_client()
    for sent in range(1, 4):
        click_many(client, "flyer", 1)
        assert redis_client.xlen(settings.stream) == sent  # no flush, no wait

