"""The Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import Engine, MetaData, Table, insert, inspect, select, text
from sqlalchemy.orm import Session

import analytics.models  # noqa: F401  (registers clicks and rollups on the metadata)
import migrations
import shortener.models  # noqa: F401
from analytics.enrich import make_enricher
from analytics.ingest import store_clicks
from analytics.partitions import month_after, month_start, monthly_partitions, partition_name
from analytics.retention import forget_old
from shortener.clicks import RawClick
from shortener.db import Base
from shortener.models import Link, Stage, Touchpoint
from tests.user_agents import IPHONE


def test_autogenerate_finds_no_difference_between_migrations_and_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": migrations.include_name}
        )
        differences = compare_metadata(context, Base.metadata)

    assert differences == []


def test_the_database_is_at_the_latest_revision(engine: Engine) -> None:
    head = ScriptDirectory.from_config(migrations.alembic_config(engine)).get_current_head()

    assert head is not None
    assert migrations.current_revision(engine) == head


def test_db_upgrade_on_the_command_line_is_idempotent(
    app: Flask, cli: FlaskCliRunner, engine: Engine
) -> None:
    head = ScriptDirectory.from_config(migrations.alembic_config(engine)).get_current_head()
    tables = set(inspect(engine).get_table_names())

    # `touchlink` (a FlaskGroup) pushes an app context for every command; the runner does not.
    with app.app_context():
        first = cli.invoke(args=["db", "upgrade"])
        second = cli.invoke(args=["db", "upgrade"])

    for result in (first, second):
        assert result.exit_code == 0, (result.output, result.exception)
        assert f"Database at {head}" in result.output
    assert migrations.current_revision(engine) == head
    assert set(inspect(engine).get_table_names()) == tables
    assert set(Base.metadata.tables) <= tables


# --- 0020: the raw clicks partitioned by month on PostgreSQL ------------------------------------




def at(moment: str) -> datetime:
    return datetime.fromisoformat(moment).replace(tzinfo=UTC)


def clicks_0019(now: datetime) -> list[dict[str, Any]]:
    """Raw clicks as an installation at 0019 holds them (each of its own UTC month's partition
    after 0020, the partition named after it)."""
    moments = {
        "2025_11": at("2025-11-30 23:30"),  # December 1 in the session's time zone
        "2026_01": at("2026-01-15 12:00"),
        "2026_03": at("2026-03-01 00:00"),
        f"{now:%Y_%m}": now,
    }
    return [
        {"click_id": f"{i:032x}", "occurred_at": moment, "link_id": 1, "touchpoint_id": 1,
         "stage_id": 1, "via_qr": i % 2 == 0, "is_bot": False, "device": "mobile", "os": "iOS",
         "browser": "Mobile Safari", "country": "FR", "referrer_site": month,
         "visitor_id": "v" * 32, "is_test": False}
        for i, (month, moment) in enumerate(moments.items(), start=1)
    ]


def stored_clicks(bind: Engine) -> dict[str, dict[str, Any]]:
    """Every stored click by id, every column of it."""
    table = Table("clicks", MetaData(), autoload_with=bind)
    with bind.connect() as conn:
        return {row["click_id"]: dict(row) for row in conn.execute(select(table)).mappings()}


def where_stored(bind: Engine) -> dict[str, str]:
    with bind.connect() as conn:
        rows = conn.execute(text("SELECT click_id, tableoid::regclass::text FROM clicks"))
        return {click_id: table for click_id, table in rows}


def test_migration_0020_partitions_the_stored_clicks_by_month_and_back(scratch: Engine) -> None:
    postgres = scratch.dialect.name == "postgresql"
    now = datetime.now(UTC).replace(microsecond=0)
    migrations.upgrade(scratch, "0019")
    rows = clicks_0019(now)
    with scratch.begin() as conn:
        conn.execute(insert(Table("clicks", MetaData(), autoload_with=scratch)), rows)
    before = stored_clicks(scratch)
    assert len(before) == 4

    migrations.upgrade(scratch, "0020")

    assert stored_clicks(scratch) == before
    assert inspect(scratch).get_pk_constraint("clicks")["constrained_columns"] == [
        "click_id", "occurred_at"
    ]
    if postgres:
        assert {row["click_id"]: f"clicks_{row['referrer_site']}" for row in rows} == (
            where_stored(scratch)
        )
        with Session(scratch) as session:
            months = set(monthly_partitions(session))
        ahead, month = set(), month_start(now)
        for _ in range(3):  # this month and the next two
            ahead.add(partition_name(month))
            month = month_after(month)
        assert months == {"clicks_2025_11", "clicks_2026_01", "clicks_2026_03"} | ahead
    else:
        assert "clicks_default" not in inspect(scratch).get_table_names()

    # Ingest and retention on the migrated table.
    with Session(scratch) as session, session.begin():
        stage = Stage(key="awareness", name="Awareness", position=1)
        touchpoint = Touchpoint(key="flyer", name="Flyer", channel="physical")
        session.add_all([stage, touchpoint])
        session.flush()
        session.add(Link(domain="go.test", slug="flyer", slug_key="flyer",
                         destination="https://shop.example.com/", touchpoint_id=touchpoint.id,
                         stage_id=stage.id))
        session.flush()
        link = session.scalars(select(Link)).one()
        batch = [
            RawClick(click_id=f"{n:032x}", at=(now - timedelta(hours=n)).timestamp(),
                     link_id=link.id, touchpoint_id=touchpoint.id, stage_id=stage.id,
                     ip="203.0.113.7", user_agent=IPHONE, referrer="", language="fr-FR",
                     via_qr=False)
            for n in (10, 11)
        ]
        enricher = make_enricher()
        assert store_clicks(session, batch, enricher, now=now).inserted == 2
        assert store_clicks(session, batch, enricher, now=now).inserted == 0  # replayed
    with Session(scratch) as session, session.begin():
        forgotten = forget_old(session, now=at("2026-03-15 00:00"), journey_days=90,
                               raw_days=30, zone=UTC)
    assert forgotten.clicks == 2  # November's partition and January's
    if postgres:
        assert {"clicks_2025_11", "clicks_2026_01"}.isdisjoint(where_stored(scratch).values())
    after = stored_clicks(scratch)
    assert set(before) - set(after) == {
        row["click_id"] for row in rows if row["referrer_site"] in ("2025_11", "2026_01")
    }
    assert len(after) == 4  # two clicks of before, two ingested

    command.downgrade(migrations.alembic_config(scratch), "0019")

    assert stored_clicks(scratch) == after
    assert inspect(scratch).get_pk_constraint("clicks")["constrained_columns"] == ["click_id"]
    tables = inspect(scratch).get_table_names()
    assert not [name for name in tables if name.startswith("clicks_")]
    if postgres:
        with scratch.connect() as conn:
            kind = conn.scalar(text("SELECT relkind FROM pg_class WHERE oid = 'clicks'::regclass"))
        assert kind == "r"
    migrations.upgrade(scratch)  # and up again
    assert stored_clicks(scratch) == after
