"""Reports from a streaming replica (TOUCHLINK_REPORTS_DATABASE_URL): a real primary and a real
hot standby made from it with pg_basebackup, on free ports. Links and clicks are written to the
primary; the reports API, the dashboard and `touchlink report` read the replica, which the test
shows by pausing its replay: the figures stop where the replica stopped, then catch up."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from flask import Flask
from sqlalchemy import func, select

import migrations
from analytics.models import LinkHourlyStats
from shortener import domains
from shortener.db import make_engine, make_sessionmaker
from shortener.keys import create_key
from shortener.models import Role
from shortener.runtime import runtime
from shortener.settings import Settings
from shortener.stages import apply_preset
from shortener.unit_of_work import transaction
from tests.conftest import BASE_URL, ShortDomainClient
from tests.faults import wait_until
from tests.services import PostgresServer
from wsgi import create_app

DATABASE = "touchlink"


def plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[PostgresServer, PostgresServer]]:
    primary = PostgresServer()
    primary.start()
    replica = PostgresServer()
    try:
        with psycopg.connect(plain(primary.url), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {DATABASE}")
        replica.start(replica_of=primary)
        yield primary, replica
    finally:
        for server in (replica, primary):
            if server.data.exists():
                server.stop()


def url_of(server: PostgresServer) -> str:
    return server.url.rsplit("/", 1)[0] + f"/{DATABASE}"


class Replay:
    """The replica's replay of the primary's WAL: paused, resumed, caught up."""

    def __init__(self, primary: PostgresServer, replica: PostgresServer) -> None:
        self.primary = psycopg.connect(plain(url_of(primary)), autocommit=True)
        self.replica = psycopg.connect(plain(url_of(replica)), autocommit=True)

    def pause(self) -> None:
        self.replica.execute("SELECT pg_wal_replay_pause()")
        wait_until(lambda: self._one("SELECT pg_get_wal_replay_pause_state()") == "paused",
                   timeout=10, what="the replica's replay to pause")

    def resume(self) -> None:
        self.replica.execute("SELECT pg_wal_replay_resume()")

    def caught_up(self) -> None:
        # Where the primary has inserted WAL: its commits are asynchronous (the test servers'
        # synchronous_commit=off), so some may not be written out yet, let alone sent.
        row = self.primary.execute("SELECT pg_current_wal_insert_lsn()").fetchone()
        assert row is not None
        wait_until(
            lambda: self._one(f"SELECT pg_last_wal_replay_lsn() >= '{row[0]}'::pg_lsn") is True,
            timeout=30, what="the replica to replay what the primary wrote",
        )

    def in_recovery(self) -> bool:
        return bool(self._one("SELECT pg_is_in_recovery()"))

    def _one(self, sql: str) -> Any:
        found = self.replica.execute(sql).fetchone()
        return found[0] if found else None

    def close(self) -> None:
        self.primary.close()
        self.replica.close()


@pytest.fixture
def replay(servers: tuple[PostgresServer, PostgresServer]) -> Iterator[Replay]:
    found = Replay(*servers)
    yield found
    found.resume()
    found.close()


@pytest.fixture
def app(servers: tuple[PostgresServer, PostgresServer], tmp_path: Path) -> Iterator[Flask]:
    primary, replica = servers
    engine = make_engine(url_of(primary))
    migrations.upgrade(engine)
    with transaction(make_sessionmaker(engine)) as session:
        apply_preset(session, "classic")
        domains.seed(session, urlsplit(BASE_URL).netloc, ())
    settings = Settings(
        secret_key="test-secret-key-that-is-long-enough-for-us",
        database_url=url_of(primary),
        reports_database_url=url_of(replica),
        instance_path=str(tmp_path / "instance"),
        base_url=BASE_URL,
        spool_dir=str(tmp_path / "spool"),
    )
    made = create_app(settings)
    made.config["TESTING"] = True
    made.test_client_class = ShortDomainClient
    yield made
    runtime(made).close()
    engine.dispose()


def stored_clicks(app: Flask) -> int:
    with runtime(app).sessions() as session:
        return int(session.scalar(select(func.coalesce(func.sum(LinkHourlyStats.clicks), 0))))


def command_reported(app: Flask) -> int:
    """`touchlink report touchpoints --format json`'s human clicks of the store flyer."""
    result = app.test_cli_runner().invoke(args=["report", "touchpoints", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {r["touchpoint"]["key"]: r for r in json.loads(result.output)["rows"]}
    return int(rows["store-flyer"]["human_clicks"])


def test_reports_read_the_replica_and_writes_go_to_the_primary(
    app: Flask, replay: Replay
) -> None:
    with transaction(runtime(app).sessions) as session:
        _, raw = create_key(session, name="admin", role=Role.ADMIN)
    key = {"Authorization": f"Bearer {raw}"}
    client = app.test_client()
    made = client.post("/api/v1/touchpoints", headers=key,
                       json={"key": "store-flyer", "name": "Store flyer", "channel": "physical"})
    assert made.status_code == 201, made.json
    link = client.post("/api/v1/links", headers=key, json={
        "url": "https://shop.example.com/spring", "slug": "spring", "touchpoint": "store-flyer",
        "stage": "awareness",
    })
    assert link.status_code == 201, link.json
    assert replay.in_recovery()  # the reports' database is a hot standby: it cannot be written

    def click(n: int, start: int) -> None:
        for i in range(start, start + n):
            answer = client.get("/spring", environ_base={"REMOTE_ADDR": f"81.130.4.{i}"},
                                headers={"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0"
                                         " like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"})
            assert answer.status_code == 302

    def reported() -> int:
        answer = client.get("/api/v1/reports/touchpoints", headers=key)
        assert answer.status_code == 200, answer.json
        rows = {r["touchpoint"]["key"]: r for r in answer.json["rows"]}
        return int(rows["store-flyer"]["human_clicks"]) if "store-flyer" in rows else 0

    click(3, 1)
    wait_until(lambda: stored_clicks(app) == 3, timeout=30, what="3 clicks stored")
    replay.caught_up()
    assert reported() == 3

    replay.pause()
    click(2, 10)
    wait_until(lambda: stored_clicks(app) == 5, timeout=30, what="5 clicks stored")
    assert reported() == 3  # the replica's figures, where its replay stopped
    assert command_reported(app) == 3

    replay.resume()
    replay.caught_up()
    assert reported() == 5
    assert command_reported(app) == 5


def test_reports_wait_out_a_replica_that_is_down(
    app: Flask, servers: tuple[PostgresServer, PostgresServer]
) -> None:
    _, replica = servers
    with transaction(runtime(app).sessions) as session:
        _, raw = create_key(session, name="analyst", role=Role.ANALYST)
    key = {"Authorization": f"Bearer {raw}"}
    client = app.test_client()
    assert client.get("/api/v1/reports/touchpoints", headers=key).status_code == 200
    replica.stop_only()
    try:
        down = client.get("/api/v1/reports/touchpoints", headers=key)
        assert down.status_code == 503
        assert down.json["error"]["code"] == "database_unavailable"
        assert down.headers["Retry-After"] == "5"
        # The link side does not need the replica.
        assert client.get("/api/v1/touchpoints", headers=key).status_code == 200
    finally:
        replica.launch()
    wait_until(lambda: client.get("/api/v1/reports/touchpoints", headers=key).status_code == 200,
               timeout=30, what="reports once the replica is back")
