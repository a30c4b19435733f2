"""Set-at-a-time INSERT … ON CONFLICT for the ingest batch, in each backend's fastest form.

On PostgreSQL a batch travels as one JSON document that json_populate_recordset() turns into
rows of the table's own types: one short statement whatever the batch size, encoded by the C JSON
encoder, instead of a thousand-row VALUES list (or per-value array adaptation) in Python.
SQLite takes the same rows through SQLAlchemy's executemany.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from typing import Any

import orjson
from sqlalchemy import Table, bindparam, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute, Session


def insert_new(
    session: Session,
    table: Table,
    rows: list[dict[str, Any]],
    *,
    keys: Sequence[str],
    returning: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """Insert the rows whose `keys` are new; the `returning` columns of those inserted."""
    if not rows:
        return []
    if _is_postgres(session):
        suffix = f"ON CONFLICT ({', '.join(keys)}) DO NOTHING"
        if not returning:
            _json_insert(session, table, rows, suffix)
            return []
        suffix += f" RETURNING {', '.join(returning)}"
        return [tuple(r) for r in _json_insert(session, table, rows, suffix).all()]
    stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(keys))
    if not returning:
        session.execute(stmt, rows)
        return []
    found = session.execute(stmt.returning(*(table.c[name] for name in returning)), rows)
    return [tuple(r) for r in found.all()]


def add_counts(
    session: Session,
    table: Table,
    rows: list[dict[str, Any]],
    *,
    keys: Sequence[str],
    counters: Sequence[str],
    latest: str | None = None,
    earliest: str | None = None,
    returning: Sequence[str] = (),
    stop_at: tuple[str, int] | None = None,
) -> list[tuple[Any, ...]]:
    """Upsert: add `counters` to the stored row of the same `keys`, keep the later `latest`
    and the earlier `earliest` (when named); the `returning` columns of each row, as stored.
    With `stop_at` (a column, a number), a stored row whose column has reached the number is
    left as it is, and not returned."""
    if not rows:
        return []
    if _is_postgres(session):
        updates = [f"{c} = {table.name}.{c} + excluded.{c}" for c in counters]
        # GREATEST and LEAST ignore NULLs, so a row of bot clicks alone keeps the stored time.
        if latest:
            updates.append(f"{latest} = GREATEST({table.name}.{latest}, excluded.{latest})")
        if earliest:
            updates.append(f"{earliest} = LEAST({table.name}.{earliest}, excluded.{earliest})")
        suffix = f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(updates)}"
        if stop_at:
            suffix += f" WHERE {table.name}.{stop_at[0]} < {int(stop_at[1])}"
        if returning:
            suffix += f" RETURNING {', '.join(returning)}"
            return [tuple(r) for r in _json_insert(session, table, rows, suffix).all()]
        _json_insert(session, table, rows, suffix)
        return []
    stmt = sqlite.insert(table)
    set_: dict[str, Any] = {c: table.c[c] + stmt.excluded[c] for c in counters}
    # SQLite's two-argument max() and min() are NULL if either side is: fall back to the other.
    if latest:
        current, new = table.c[latest], stmt.excluded[latest]
        set_[latest] = func.coalesce(func.max(current, new), current, new)
    if earliest:
        current, new = table.c[earliest], stmt.excluded[earliest]
        set_[earliest] = func.coalesce(func.min(current, new), current, new)
    upsert = stmt.on_conflict_do_update(
        index_elements=list(keys), set_=set_,
        where=table.c[stop_at[0]] < stop_at[1] if stop_at else None,
    )
    if returning:
        found = session.execute(upsert.returning(*(table.c[c] for c in returning)), rows)
        return [tuple(r) for r in found.all()]
    session.execute(upsert, rows)
    return []


def update_rows(
    session: Session, table: Table, rows: list[dict[str, Any]], *, key: str
) -> None:
    """Set the columns of `rows` on the stored rows of the same `key`."""
    if not rows:
        return
    columns = [name for name in rows[0] if name != key]
    if _is_postgres(session):
        sets = ", ".join(f"{name} = v.{name}" for name in columns)
        # Table and column names come from our own metadata, never from input.
        sql = (
            f"UPDATE {table.name} SET {sets} "  # noqa: S608
            f"FROM json_populate_recordset(NULL::{table.name}, CAST(:rows AS json)) AS v "
            f"WHERE {table.name}.{key} = v.{key}"
        )
        session.execute(text(sql), {"rows": orjson.dumps(rows).decode()})
        return
    stmt = (
        update(table)
        .where(table.c[key] == bindparam(f"_{key}"))
        .values({name: bindparam(f"_{name}") for name in columns})
    )
    session.execute(stmt, [{f"_{name}": value for name, value in row.items()} for row in rows])


def dialect_insert(session: Session, table: Table) -> Any:
    """INSERT in the session's dialect, for its ON CONFLICT clauses."""
    return (postgresql.insert if _is_postgres(session) else sqlite.insert)(table)


def salts_of(
    session: Session, column: InstrumentedAttribute[Any], wanted: Collection[Any]
) -> dict[Any, bytes]:
    """The salts stored under `wanted` values of a salt table's key `column`, each made (32
    random bytes) on first use. Another worker may win the race for one: what is stored is
    read back."""
    model = column.class_
    found = {key: salt for key, salt in session.execute(
        select(column, model.salt).where(column.in_(wanted))
    )}
    missing = sorted(set(wanted) - set(found))
    if missing:
        session.execute(
            dialect_insert(session, model.__table__).on_conflict_do_nothing(),
            [{column.key: key, "salt": secrets.token_bytes(32)} for key in missing],
        )
        found.update(session.execute(select(column, model.salt).where(column.in_(missing))).all())
    return found


def _json_insert(session: Session, table: Table, rows: list[dict[str, Any]], suffix: str) -> Any:
    columns = ", ".join(rows[0])
    # Table and column names come from our own metadata, never from input.
    sql = (
        f"INSERT INTO {table.name} ({columns}) "  # noqa: S608
        f"SELECT {columns} FROM json_populate_recordset(NULL::{table.name}, CAST(%s AS json)) "
        f"{suffix}"
    )
    # orjson writes dates and aware datetimes in ISO 8601, as PostgreSQL reads them. Straight
    # to the driver: the ORM's statement path costs more than these statements' own work.
    return session.connection().exec_driver_sql(sql, (orjson.dumps(rows).decode(),))


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
