"""Capture modes: strict capture has each click in Redis before the redirect answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from flask import Flask

from analytics.runtime import runtime


def test_strict_capture_has_the_click_in_redis_when_the_redirect_answers(
    make_app: Callable[..., Flask],
    make_flyer: Callable[[Flask], None],
    redis_client: redis.Redis,
    redis_url: str,
    clicks: Any,
) -> None:
    # Queued clicks would wait a second for the flusher: only strict capture has them sooner.
    app = make_app(redis_url=redis_url, strict_capture=True, flush_interval=1.0)
    make_flyer(app)
    client = app.test_client()
    stream = runtime(app).settings.stream
    for sent in range(1, 4):
        clicks.send(client, "flyer", 1)
        assert redis_client.xlen(stream) == sent  # no flush, no wait
