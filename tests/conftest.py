"""Fixtures over real services: PostgreSQL and SQLite (every database test runs on both) and Redis.

Each test runs inside one outer transaction that is rolled back when it ends, as pypi/warehouse's
tests do: the app's sessions join it through savepoints, so nothing a test writes outlives it and
no table needs emptying. A test whose rows other processes or threads must read (a worker
subprocess, concurrent requests) is marked `commits`: its app commits for real, and the tables
are emptied after it. Under pytest-xdist every worker has its own PostgreSQL database and its own
Redis database.
"""

from __future__ import annotations

import html
import itertools
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import Connection, Engine, func, make_url, select, text
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

import migrations
from analytics.models import Click, LinkHourlyStats
from analytics.runtime import Runtime, runtime
from shortener import domains
from shortener.db import Base, make_engine, make_sessionmaker
from shortener.keys import create_key
from shortener.models import Role
from shortener.settings import Settings
from shortener.stages import apply_preset
from shortener.unit_of_work import transaction
from shortener.users import create_user
from tests import services
from tests.faults import LocalRedisCluster, RedisServer, Workers
from tests.user_agents import BROWSER
from wsgi import create_app

# Set by pytest_configure (tests/services.py): the machine's servers, or private ones.
POSTGRES_URL = services.DEFAULT_POSTGRES
REDIS_URL = services.DEFAULT_REDIS
BASE_URL = "http://go.test"
PASSWORD = "correct horse battery"


def pytest_configure(config: pytest.Config) -> None:
    global POSTGRES_URL, REDIS_URL
    if not hasattr(config, "workerinput"):  # the controlling process (xdist's workers inherit)
        config.add_cleanup(services.provide())
    POSTGRES_URL = os.environ.get(services.POSTGRES_VARIABLE, services.DEFAULT_POSTGRES)
    REDIS_URL = os.environ.get(services.REDIS_VARIABLE, services.DEFAULT_REDIS)
    config.addinivalue_line(
        "markers",
        "commits: the app commits for real (other processes or threads read the test's rows); "
        "the tables are emptied afterwards",
    )


def _worker_number() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker.removeprefix("gw") or 0)


# --- databases, one set per test process ------------------------------------------------------


def _admin(url: str) -> psycopg.Connection[Any]:
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        return psycopg.connect(plain, autocommit=True)
    except psycopg.OperationalError as exc:
        raise RuntimeError(
            f"PostgreSQL is not reachable at {url}; start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "
            "(or run .ci/run, which does)."
        ) from exc


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this test process's own, made for the session and dropped after it."""
    name = f"touchlink_test_{os.getpid()}"
    with _admin(POSTGRES_URL) as admin:
        _drop_abandoned(admin)
        admin.execute(f'CREATE DATABASE "{name}"')
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with _admin(POSTGRES_URL) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _drop_abandoned(admin: psycopg.Connection[Any]) -> None:
    """Databases of test processes that died before they could drop their own."""
    rows = admin.execute(
        "SELECT datname FROM pg_database WHERE datname LIKE 'touchlink\\_test\\_%'"
    ).fetchall()
    for (name,) in rows:
        pid = int(name.rsplit("_", 1)[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except PermissionError:
            pass


@pytest.fixture(scope="session", params=["postgresql", "sqlite"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """Migrated once per test process, with the classic stages."""
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'touchlink.db'}"
    engine = make_engine(url)
    migrations.upgrade(engine)
    _seed(engine)
    yield engine
    engine.dispose()


def _seed(engine: Engine) -> None:
    with transaction(make_sessionmaker(engine)) as session:
        apply_preset(session, "classic")
        domains.seed(session, urlsplit(BASE_URL).netloc, ())


def _empty_tables(engine: Engine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))  # noqa: S608 (our table names)


@pytest.fixture
def scratch(engine: Engine, tmp_path: Path) -> Iterator[Engine]:
    """An empty database of the same kind as `engine`, to migrate step by step; on PostgreSQL
    its sessions are far from UTC (+14:00), as a server's TimeZone may be."""
    if engine.dialect.name == "sqlite":
        scratch = make_engine(f"sqlite:///{tmp_path / 'scratch.db'}")
        yield scratch
        scratch.dispose()
        return
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS scratch CASCADE"))
        conn.execute(text("CREATE SCHEMA scratch"))
    url = engine.url.render_as_string(hide_password=False)
    options = "-csearch_path=scratch -ctimezone=Pacific/Kiritimati"
    made = make_engine(url, connect_args={"options": options})
    yield made
    made.dispose()
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA scratch CASCADE"))


@pytest.fixture
def bind(request: pytest.FixtureRequest, engine: Engine) -> Iterator[Engine | Connection]:
    """What the test's apps are bound to: a connection inside a transaction that is rolled back
    at the end, or (marked `commits`) the engine itself, emptied afterwards."""
    if request.node.get_closest_marker("commits") is not None:
        yield engine
        _empty_tables(engine)
        _seed(engine)
        return
    with engine.connect() as connection:
        outer = connection.begin()
        yield connection
        if outer.is_active:
            outer.rollback()


@pytest.fixture(scope="session")
def redis_url() -> str:
    server, _, first = REDIS_URL.rpartition("/")
    database = int(first) - _worker_number()
    if database < 0:
        raise RuntimeError(f"too many test workers for the Redis databases below {REDIS_URL}")
    return f"{server}/{database}"


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """The test process's Redis database, empty before and after the test."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        raise RuntimeError(
            f"Redis is not reachable at {redis_url}; start it (see README, Development) "
            "or run .ci/run, which does."
        ) from exc
    yield client
    client.flushdb()
    client.close()


# --- apps -----------------------------------------------------------------------------------------


@pytest.fixture
def settings(engine: Engine, tmp_path: Path) -> Settings:
    return Settings(
        secret_key="test-secret-key-that-is-long-enough-for-us",
        database_url=engine.url.render_as_string(hide_password=False),
        instance_path=str(tmp_path / "instance"),
        base_url=BASE_URL,
        spool_dir=str(tmp_path / "spool"),
        cache_ttl=5.0,
    )


AppMaker = Callable[..., Flask]


class ShortDomainClient(FlaskClient):
    """A test client whose requests name the app's short domain in their Host (as browsers
    following its links do), unless a test gives another `base_url` or Host."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        if not args or isinstance(args[0], str):
            kwargs.setdefault("base_url", runtime(self.application).settings.base_url)
        return super().open(*args, **kwargs)


@pytest.fixture
def make_app(settings: Settings, bind: Engine | Connection) -> Iterator[AppMaker]:
    """Apps of the test's settings with `changes` (e.g. `redis_url=…`), bound to the test's
    transaction; each is closed (its queued clicks handed on) when the test ends."""
    made: list[Flask] = []

    def make(**changes: Any) -> Flask:
        app = create_app(replace(settings, **changes), bind=bind)
        app.config["TESTING"] = True
        app.test_client_class = ShortDomainClient
        rt = runtime(app)
        with transaction(rt.sessions) as session:
            domains.seed(session, rt.settings.short_host, rt.settings.short_domains)
        made.append(app)
        return app

    yield make
    for app in made:
        runtime(app).close()


@pytest.fixture
def app(make_app: AppMaker) -> Flask:
    """The embedded default: no Redis, clicks stored in SQL by the web process."""
    return make_app()


@pytest.fixture
def redis_app(make_app: AppMaker, redis_client: redis.Redis, redis_url: str) -> Flask:
    """Production wiring: clicks go to a Redis stream, a worker moves them into SQL."""
    return make_app(redis_url=redis_url)


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
    """A session on the app's database for the test to read with. Its savepoint holds what the
    app's requests write afterwards: call `expire_all()` to see fresh rows, never `rollback()`,
    which would undo them."""
    with runtime(app).sessions() as session:
        yield session


# --- the API --------------------------------------------------------------------------------------


@pytest.fixture
def make_key(app: Flask) -> Callable[[str], str]:
    """A raw API key of the given role, created through the service the CLI uses."""

    def make(role: str = "marketer") -> str:
        with transaction(runtime(app).sessions) as session:
            _, raw = create_key(session, name=f"test {role}", role=Role(role))
        return raw

    return make


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def bearer() -> Callable[[str], dict[str, str]]:
    """`bearer(raw_key)`: the Authorization header that sends the key."""
    return _bearer


@pytest.fixture
def headers(make_key: Callable[[str], str]) -> Callable[[str], dict[str, str]]:
    """`headers(role)`: the Authorization header of a new key of that role."""
    return lambda role: _bearer(make_key(role))


@pytest.fixture
def marketer(headers: Callable[[str], dict[str, str]]) -> dict[str, str]:
    return headers("marketer")


@pytest.fixture
def analyst(headers: Callable[[str], dict[str, str]]) -> dict[str, str]:
    return headers("analyst")


@pytest.fixture
def admin(headers: Callable[[str], dict[str, str]]) -> dict[str, str]:
    return headers("admin")


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


@pytest.fixture
def make_flyer() -> Callable[[Flask], None]:
    """Give an app the touchpoint `flyer` (physical) with the link /flyer at awareness."""

    def make(app: Flask) -> None:
        with transaction(runtime(app).sessions) as session:
            _, raw = create_key(session, name="flyer maker", role=Role.MARKETER)
        client, auth = app.test_client(), _bearer(raw)
        touchpoint = {"key": "flyer", "name": "Flyer", "channel": "physical"}
        link = {"url": "https://shop.example.com/", "touchpoint": "flyer", "stage": "awareness",
                "slug": "flyer"}
        for path, body in (("/api/v1/touchpoints", touchpoint), ("/api/v1/links", link)):
            response = client.post(path, json=body, headers=auth)
            assert response.status_code == 201, response.json

    return make


# --- clicks ---------------------------------------------------------------------------------------


class Clicks:
    """Redirects sent as customers would, and what of them reached SQL."""

    @staticmethod
    def send(
        client: FlaskClient, slug: str, count: int, *, agent: str = BROWSER, qr: bool = False
    ) -> None:
        path = f"/{slug}?qr=1" if qr else f"/{slug}"
        for i in range(count):
            response = client.get(
                path,
                headers={"User-Agent": agent},
                environ_base={"REMOTE_ADDR": f"198.51.100.{i % 250}"},
            )
            assert response.status_code == 302

    @staticmethod
    def stored(session: Session) -> tuple[int, int]:
        """(rows of clicks, human clicks + bot clicks in the rollups)."""
        session.expire_all()
        rows = session.scalar(select(func.count()).select_from(Click)) or 0
        rolled = session.execute(
            select(
                func.coalesce(func.sum(LinkHourlyStats.clicks + LinkHourlyStats.bot_clicks), 0)
            )
        ).scalar_one()
        return rows, int(rolled)


@pytest.fixture
def clicks() -> Clicks:
    return Clicks()


@pytest.fixture
def worker_env(settings: Settings, redis_url: str, tmp_path: Path) -> Callable[..., dict[str, str]]:
    """The environment of a `touchlink worker` process over the test's database and Redis."""

    def env(**extra: str) -> dict[str, str]:
        return {
            "TOUCHLINK_DATABASE_URL": settings.database_url,
            "TOUCHLINK_REDIS_URL": redis_url,
            "TOUCHLINK_INSTANCE_PATH": str(tmp_path / "worker-instance"),
            "TOUCHLINK_BASE_URL": settings.base_url,
            "TOUCHLINK_BATCH_SIZE": "100",
            **extra,
        }

    return env


# --- the pages ------------------------------------------------------------------------------------

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Pages:
    """Forms sent as a browser sends them, and what the pages show."""

    @staticmethod
    def csrf_token(client: FlaskClient, path: str = "/signin") -> str:
        """The CSRF token of the session, as a form on `path` carries it."""
        page = client.get(path)
        found = _TOKEN.search(page.get_data(as_text=True))
        assert found is not None, f"no CSRF field on {path}"
        return found.group(1)

    def post_form(
        self, client: FlaskClient, path: str, data: dict[str, Any], **kwargs: Any
    ) -> TestResponse:
        """Submit a form as the page at `path` (or `form_page`) would: with the CSRF token."""
        token = self.csrf_token(client, kwargs.pop("form_page", path))
        return client.post(path, data={"csrf_token": token, **data}, **kwargs)

    @staticmethod
    def text(response: TestResponse) -> str:
        return response.get_data(as_text=True)

    def field_error(self, response: TestResponse, field: str) -> str:
        """The message a page shows next to a form field."""
        shown = self.text(response)
        found = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', shown)
        assert found is not None, f"no error shown next to {field}: {shown[:2000]}"
        return html.unescape(found.group(1))


@pytest.fixture
def pages() -> Pages:
    return Pages()


class AuthActions:
    """People signing in to the pages, through the real form (the Flask tutorial's `auth`)."""

    def __init__(self, app: Flask, pages: Pages) -> None:
        self._app = app
        self._pages = pages
        self._numbers = itertools.count(1)

    def add_user(self, email: str, role: str = "marketer", password: str = PASSWORD) -> None:
        with transaction(runtime(self._app).sessions) as session:
            create_user(session, email=email, role=Role(role), password=password)

    def sign_in(
        self, client: FlaskClient, email: str, password: str = PASSWORD, **extra: str
    ) -> TestResponse:
        form = {"email": email, "password": password, **extra}
        return self._pages.post_form(client, "/signin", form)

    def client(self, role: str = "marketer") -> FlaskClient:
        """A new client, signed in through the form as a new user of `role`."""
        email = f"{role}{next(self._numbers)}@example.com"
        self.add_user(email, role)
        client = self._app.test_client()
        response = self.sign_in(client, email)
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return client


@pytest.fixture
def auth(app: Flask, pages: Pages) -> AuthActions:
    return AuthActions(app, pages)


# --- faults ---------------------------------------------------------------------------------------


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own, which it may stop and start again at will."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[LocalRedisCluster]:
    """A Redis Cluster of the test's own: three masters with AOF, whose nodes it may kill and
    start again."""
    cluster = LocalRedisCluster(tmp_path / "cluster")
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def workers(
    bind: Engine | Connection,
    redis_client: redis.Redis,
    worker_env: Callable[..., dict[str, str]],
) -> Iterator[Workers]:
    """`touchlink worker` processes over the test's database and Redis (`worker_env()`, unless a
    start is given its own `env`); any still running when the test ends is killed, before its
    tables are emptied."""
    if isinstance(bind, Connection):
        pytest.fail(
            "a worker process cannot see the test's uncommitted rows: mark the test `commits`",
            pytrace=False,
        )
    started = Workers(worker_env())
    yield started
    started.close()
