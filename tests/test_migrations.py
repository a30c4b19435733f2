"""The Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import Engine, inspect

import analytics.models  # noqa: F401  (registers clicks and rollups on the metadata)
import migrations
import shortener.models  # noqa: F401
from shortener.db import Base


def test_autogenerate_finds_no_difference_between_migrations_and_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
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
