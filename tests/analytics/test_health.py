"""/healthz tells whether SQL and Redis answer and how far ingest is behind; /metrics counts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine

from shortener.runtime import runtime
from shortener.settings import Settings
from tests.analytics.pipeline import click_many, make_link
from tests.conftest import _build_app
from tests.faults import RedisServer


def test_embedded_default_is_ok_with_sql_alone(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["status"] == "ok"
    assert response.json["checks"]["sql"]["ok"] is True
    assert "redis" not in response.json["checks"]


def test_with_redis_it_reports_the_ingest_backlog(redis_app: Flask) -> None:
    make_link(redis_app)
    client = redis_app.test_client()
    click_many(client, "flyer", 12)
    runtime(redis_app).sink.flush()  # type: ignore[attr-defined]
    body = client.get("/healthz").json
    assert body["status"] == "ok"
    assert body["checks"]["redis"]["stream_length"] == 12
    assert body["checks"]["spool"] == {"clicks": 0}


@pytest.fixture
def down_redis_app(settings: Settings, engine: Engine, tmp_path: Path) -> Iterator[Flask]:
    server = RedisServer(tmp_path)  # never started: nothing listens on its port
    yield from _build_app(replace(settings, redis_url=server.url), engine)


def test_redis_down_is_degraded_not_failing_and_clicks_are_spooled(down_redis_app: Flask) -> None:
    make_link(down_redis_app)
    client = down_redis_app.test_client()
    click_many(client, "flyer", 3)
    runtime(down_redis_app).sink.flush()  # type: ignore[attr-defined]
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["status"] == "degraded"
    assert set(response.json["problems"]) == {"redis", "spool"}
    assert response.json["checks"]["spool"] == {"clicks": 3}


def test_metrics_count_captured_clicks(client: FlaskClient, link: dict[str, object]) -> None:
    def captured() -> float:
        text = client.get("/metrics").get_data(as_text=True)
        line = next(x for x in text.splitlines() if x.startswith("touchlink_clicks_captured_total"))
        return float(line.split()[-1])

    before = captured()
    click_many(client, "spring", 4)
    assert captured() - before == 4
