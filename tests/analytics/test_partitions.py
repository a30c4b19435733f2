"""Raw clicks in monthly partitions on PostgreSQL (one plain table on SQLite): each click in the
partition of its UTC month, none lost outside them, each stored once, and retention dropping the
months wholly past it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from analytics.models import Click, LinkHourlyStats
from analytics.partitions import DEFAULT_PARTITION, ensure_partitions, monthly_partitions
from analytics.retention import forget_old
from shortener.clicks import RawClick
from shortener.runtime import runtime
from shortener.unit_of_work import transaction
from tests.analytics.conftest import Ingest, People
from tests.faults import wait_until


def at(moment: str) -> datetime:
    return datetime.fromisoformat(moment).replace(tzinfo=UTC)


def postgres(app: Flask) -> bool:
    with runtime(app).sessions() as session:
        return session.get_bind().dialect.name == "postgresql"


def where_stored(app: Flask) -> dict[str, str]:
    """Each stored click's id: the table holding its row (a partition, or `clicks` on SQLite)."""
    with runtime(app).sessions() as session:
        if session.get_bind().dialect.name != "postgresql":
            return dict.fromkeys(session.scalars(select(Click.click_id)), "clicks")
        rows = session.execute(text("SELECT click_id, tableoid::regclass::text FROM clicks"))
        return {click_id: table for click_id, table in rows}


def partitions(app: Flask) -> set[str]:
    with runtime(app).sessions() as session:
        return set(monthly_partitions(session)) if postgres(app) else set()


def make_ahead(app: Flask, now: datetime, since: datetime | None = None) -> list[str]:
    with transaction(runtime(app).sessions) as session:
        return ensure_partitions(session, now=now, since=since)


def stored(app: Flask) -> tuple[int, int]:
    """(raw click rows, human clicks in the hourly rollups)."""
    with runtime(app).sessions() as session:
        rows = session.scalar(select(func.count()).select_from(Click)) or 0
        clicks = session.scalar(select(func.sum(LinkHourlyStats.clicks))) or 0
    return rows, int(clicks)


def test_partitions_are_made_for_this_month_and_the_two_after_once(app: Flask) -> None:
    november = at("2031-11-15 08:00")

    made = make_ahead(app, november)
    again = make_ahead(app, november)

    if postgres(app):
        assert made == ["clicks_2031_11", "clicks_2031_12", "clicks_2032_01"]
        assert {"clicks_2031_11", "clicks_2031_12", "clicks_2032_01"} <= partitions(app)
        assert "clicks_2032_02" not in partitions(app)
    else:  # one plain table
        assert made == []
    assert again == []


def test_clicks_land_in_the_partition_of_their_utc_month_and_the_rest_in_the_default_one(
    app: Flask, ingest: Ingest, people: People, link: dict[str, Any]
) -> None:
    make_ahead(app, at("2031-11-15 08:00"))
    times = {
        "last-of-november": "2031-11-30T23:59:59.999999+00:00",
        "first-of-december": "2031-12-01T00:00:00+00:00",
        "december-in-tokyo": "2031-12-01T08:30:00+09:00",  # still November 30 in UTC
        "far-future": "2099-06-01T00:00:00+00:00",  # no month partition: the default one
    }
    clicks = {name: ingest.make("spring", moment, ip=people.anna[0], agent=people.anna[1])
              for name, moment in times.items()}

    assert ingest.raw(list(clicks.values())) == 4

    expected = {
        "last-of-november": "clicks_2031_11",
        "first-of-december": "clicks_2031_12",
        "december-in-tokyo": "clicks_2031_11",
        "far-future": DEFAULT_PARTITION,
    }
    if not postgres(app):
        expected = dict.fromkeys(expected, "clicks")
    where = where_stored(app)
    assert {name: where[click.click_id] for name, click in clicks.items()} == expected


def test_a_replayed_batch_across_months_stores_nothing_twice(
    app: Flask, ingest: Ingest, people: People, link: dict[str, Any]
) -> None:
    make_ahead(app, at("2031-11-15 08:00"))
    batch = [
        ingest.make("spring", moment, ip=ip, agent=agent)
        for moment, (ip, agent) in [
            ("2031-11-29T10:00:00+00:00", people.anna),
            ("2031-12-02T10:00:00+00:00", people.ben),
            ("2031-12-02T11:00:00+00:00", people.anna),
            ("2099-01-01T00:00:00+00:00", people.clara),  # in the default partition
        ]
    ]

    assert ingest.raw(batch) == 4
    assert ingest.raw(batch) == 0  # a worker killed between commit and acknowledgement
    assert ingest.raw(batch[1:3], batch=1) == 0  # and the batch split up

    assert stored(app) == (4, 4)


def test_a_month_made_after_its_clicks_came_takes_them_from_the_default_partition(
    app: Flask, ingest: Ingest, people: People, link: dict[str, Any]
) -> None:
    march = [
        ingest.make("spring", f"2032-03-{day:02}T12:00:00+00:00", ip=ip, agent=agent)
        for day, (ip, agent) in [(1, people.anna), (15, people.ben), (31, people.clara)]
    ]
    april = ingest.make("spring", "2032-04-01T00:00:00+00:00", ip=people.anna[0],
                        agent=people.anna[1])
    assert ingest.raw([*march, april]) == 4

    made = make_ahead(app, at("2032-03-10 00:00"))

    where = where_stored(app)
    if postgres(app):
        assert made == ["clicks_2032_03", "clicks_2032_04", "clicks_2032_05"]
        assert [where[c.click_id] for c in march] == ["clicks_2032_03"] * 3
        assert where[april.click_id] == "clicks_2032_04"
    assert len(where) == 4
    assert ingest.raw([*march, april]) == 0  # the moved rows keep them stored once
    assert stored(app) == (4, 4)


def test_retention_drops_the_months_past_it_and_deletes_only_the_older_rows_of_the_rest(
    app: Flask, ingest: Ingest, people: People, link: dict[str, Any]
) -> None:
    now = at("2031-06-15 12:00")  # 30 days: the cutoff is 2031-05-16 12:00
    make_ahead(app, now, since=at("2031-03-01 00:00"))
    moments = {
        "old-default": ["2020-01-01T00:00:00+00:00"],
        "march": ["2031-03-01T00:00:00+00:00", "2031-03-31T23:59:59+00:00"],
        "april": ["2031-04-02T00:00:00+00:00"] * 3,
        "may-before": ["2031-05-01T00:00:00+00:00", "2031-05-16T11:59:59+00:00"],
        "may-after": ["2031-05-16T12:00:00+00:00"],
        "june": ["2031-06-15T11:00:00+00:00"],
    }
    clicks: dict[str, list[RawClick]] = {
        name: [ingest.make("spring", moment, ip=people.ben[0], agent=people.ben[1])
               for moment in times]
        for name, times in moments.items()
    }
    assert ingest.raw([c for group in clicks.values() for c in group]) == 10

    with transaction(runtime(app).sessions) as session:
        gone = forget_old(session, now=now, journey_days=90, raw_days=30,
                          zone=runtime(app).settings.zone)

    assert gone.clicks == 1 + 2 + 3 + 2
    kept = where_stored(app)
    assert set(kept) == {c.click_id for c in clicks["may-after"] + clicks["june"]}
    assert stored(app) == (2, 10)  # the figures do not change
    if postgres(app):
        assert partitions(app) == {
            "clicks_2031_05", "clicks_2031_06", "clicks_2031_07", "clicks_2031_08"
        }
        assert kept[clicks["may-after"][0].click_id] == "clicks_2031_05"
    with transaction(runtime(app).sessions) as session:
        again = forget_old(session, now=now, journey_days=90, raw_days=30,
                           zone=runtime(app).settings.zone)
    assert again.clicks == 0  # a second round finds nothing more to forget


def test_the_raw_clicks_are_one_plain_table_on_sqlite_and_partitioned_on_postgresql(
    session: Session,
) -> None:
    if session.get_bind().dialect.name == "postgresql":
        kind = session.scalar(text("SELECT relkind FROM pg_class WHERE oid = 'clicks'::regclass"))
        assert kind == "p"
        default = session.scalar(text("SELECT to_regclass('clicks_default')::text"))
        assert default == DEFAULT_PARTITION
    else:
        tables = session.scalars(text(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'clicks%'"
        ))
        assert list(tables) == ["clicks"]


def test_two_workers_making_the_same_months_at_once_take_turns(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no partitions to make")
    january = at("2040-01-15 00:00")
    months = ["clicks_2040_01", "clicks_2040_02", "clicks_2040_03"]
    second: list[list[str]] = []

    def other_worker() -> None:
        with Session(engine) as session, session.begin():
            second.append(ensure_partitions(session, now=january))

    try:
        with Session(engine) as session, session.begin():
            first = ensure_partitions(session, now=january)
            thread = threading.Thread(target=other_worker)
            thread.start()
            # The other worker waits for this one's turn to end (its commit) before it looks.
            waiting = text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
            with engine.connect() as watch:
                wait_until(lambda: watch.scalar(waiting) == 1, timeout=10,
                           what="the other worker waiting for its turn")
        thread.join(timeout=30)

        assert first == months
        assert second == [[]]  # it found them made, and failed on nothing
    finally:
        with engine.begin() as conn:
            for name in months:
                conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
