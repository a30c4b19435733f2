"""Alembic environment: the connection comes from `migrations.alembic_config`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, Engine

import analytics.models  # noqa: F401  (registers clicks and rollups on the metadata)
import shortener.models  # noqa: F401
from migrations import include_name
from shortener.db import Base

target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


bind = context.config.attributes.get("connection")
if bind is None:
    raise RuntimeError("Run migrations through `touchlink db upgrade`.")
if isinstance(bind, Engine):
    with bind.connect() as conn:
        run_migrations(conn)
        conn.commit()
else:
    run_migrations(bind)
