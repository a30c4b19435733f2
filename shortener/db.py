"""The declarative base (one metadata for both packages), engines and sessions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so Alembic can name (and later drop) what it created.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime that comes back aware on SQLite too (it stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given; use datetime.now(UTC)")
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


# A connection option marking a unit of work that will write (see `write_session`).
WRITE_OPTION = "touchlink_write"


def make_engine(url: str, **options: Any) -> Engine:
    """An engine tuned for the backend: WAL and foreign keys on SQLite, pre-ping on PostgreSQL."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **options)


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINT; let SQLAlchemy emit BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    # In WAL mode a transaction that has read cannot start writing once another connection has
    # committed since its read: SQLite answers "database is locked" at once, without waiting. A unit
    # of work that will write therefore takes the write lock up front (waiting its turn); readers
    # stay concurrent.
    immediate = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def write_session(sessions: sessionmaker[Session]) -> Session:
    """A session for a unit of work that writes; on SQLite it waits for the write lock first."""
    bind = sessions.kw.get("bind")
    if isinstance(bind, Engine) and bind.dialect.name == "sqlite":
        return sessions(bind=bind.execution_options(**{WRITE_OPTION: True}))
    return sessions()


@contextmanager
def unique_or(session: Session, conflict: Callable[[], Exception]) -> Iterator[None]:
    """Run the block's changes in a savepoint and flush them; a unique index refusing them (a race
    included) rolls back just the savepoint and raises `conflict()`.

    Make the changes inside the block: the savepoint flushes whatever is pending before it starts.
    """
    try:
        with session.begin_nested():
            yield
            session.flush()
    except IntegrityError:
        raise conflict() from None


def add_unique(session: Session, obj: Any, conflict: Callable[[], Exception]) -> None:
    """Insert `obj`; the unique index (not a prior check) decides races: `conflict()` if taken."""
    with unique_or(session, conflict):
        session.add(obj)


def make_sessionmaker(bind: Any) -> sessionmaker[Session]:
    """Sessions for `bind`; an outer Connection (tests) is joined through savepoints."""
    return sessionmaker(
        bind=bind,
        expire_on_commit=False,
        join_transaction_mode="create_savepoint",
    )
