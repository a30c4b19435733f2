"""Fixtures over real services: PostgreSQL and SQLite (every database test runs on both) and Redis.

Rows are committed for real, so that background flushers, worker subprocesses and the test all
see the same data; every table is emptied after each test.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

import migrations
from shortener.db import Base, make_engine
from shortener.keys import create_key
from shortener.models import Role
from shortener.runtime import Runtime, runtime
from shortener.settings import Settings
from shortener.stages import apply_preset
from wsgi import create_app

POSTGRES_URL = os.environ.get(
    "TOUCHLINK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TOUCHLINK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BASE_URL = "http://go.test"


def _migrated_postgres() -> Engine:
    engine = make_engine(POSTGRES_URL)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    except OperationalError as exc:
        raise RuntimeError(
            f"PostgreSQL is not reachable at {POSTGRES_URL}; start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "
            "(or run .ci/run, which does)."
        ) from exc
    migrations.upgrade(engine)
    return engine


@pytest.fixture(scope="session", params=["postgresql", "sqlite"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    if request.param == "postgresql":
        engine = _migrated_postgres()
    else:
        path = tmp_path_factory.mktemp("sqlite") / "touchlink.db"
        engine = make_engine(f"sqlite:///{path}")
        migrations.upgrade(engine)
    yield engine
    engine.dispose()


def empty_tables(engine: Engine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))  # noqa: S608 (our table names)


@pytest.fixture
def settings(engine: Engine, tmp_path: Path) -> Settings:
    return Settings(
        secret_key="test-secret-key-that-is-long-enough-for-us",
        database_url=engine.url.render_as_string(hide_password=False),
        base_url=BASE_URL,
        spool_dir=str(tmp_path / "spool"),
        cache_ttl=5.0,
    )


def _build_app(settings: Settings, engine: Engine) -> Iterator[Flask]:
    app = create_app(settings, bind=engine)
    app.config["TESTING"] = True
    with app.app_context(), runtime(app).sessions.begin() as session:
        apply_preset(session, "classic")
    try:
        yield app
    finally:
        runtime(app).sink.close()
        empty_tables(engine)


@pytest.fixture
def app(settings: Settings, engine: Engine) -> Iterator[Flask]:
    """The embedded default: no Redis, clicks buffered in process and written to SQL."""
    yield from _build_app(settings, engine)


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        raise RuntimeError(
            f"Redis is not reachable at {REDIS_URL}; start it (see README, Development) "
            "or run .ci/run, which does."
        ) from exc
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def redis_app(settings: Settings, engine: Engine, redis_client: redis.Redis) -> Iterator[Flask]:
    """Production wiring: clicks go to a Redis stream, a worker moves them into SQL."""
    yield from _build_app(replace(settings, redis_url=REDIS_URL), engine)


@pytest.fixture
def rt(app: Flask) -> Runtime:
    return runtime(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def cli(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    with runtime(app).sessions() as session:
        yield session


@pytest.fixture
def make_key(app: Flask) -> Callable[[str], str]:
    """A raw API key of the given role, created through the service the CLI uses."""

    def make(role: str = "marketer") -> str:
        with runtime(app).sessions.begin() as session:
            _, raw = create_key(session, name=f"test {role}", role=Role(role))
        return raw

    return make


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def marketer(make_key: Callable[[str], str]) -> dict[str, str]:
    return auth(make_key("marketer"))


@pytest.fixture
def analyst(make_key: Callable[[str], str]) -> dict[str, str]:
    return auth(make_key("analyst"))


@pytest.fixture
def touchpoint(client: FlaskClient, marketer: dict[str, str]) -> dict[str, Any]:
    response = client.post(
        "/api/v1/touchpoints",
        json={"key": "store-flyer", "name": "Store flyer", "channel": "physical", "exposure": 500},
        headers=marketer,
    )
    assert response.status_code == 201, response.json
    return response.json  # type: ignore[return-value]


@pytest.fixture
def link(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any]
) -> dict[str, Any]:
    response = client.post(
        "/api/v1/links",
        json={
            "url": "https://shop.example.com/spring?ref=flyer",
            "touchpoint": touchpoint["key"],
            "stage": "awareness",
            "slug": "spring",
            "campaign": "spring-launch",
        },
        headers=marketer,
    )
    assert response.status_code == 201, response.json
    return response.json  # type: ignore[return-value]
