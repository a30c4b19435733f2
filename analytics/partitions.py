"""Monthly partitions of the raw clicks on PostgreSQL.

There `clicks` is partitioned by range of `occurred_at` (migration 0020): one partition a UTC
calendar month, `clicks_2026_12` from 2026-12-01 00:00 UTC to 2027-01-01 00:00 UTC, and
`clicks_default` for any click no month's partition holds (a clock far off, a late click of a
month already dropped), so that ingest never refuses a click. The worker makes this month's
partition and the next AHEAD months' at its start and now and then; retention drops the months
wholly past it instead of deleting their rows one by one. SQLite keeps one plain table, and
nothing here does anything there.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from analytics.models import Click
from shortener.unit_of_work import transaction

log = logging.getLogger(__name__)

AHEAD = 2  # months made ahead of the current one
# Seconds between two rounds of the worker (and the embedded sink) making partitions ahead.
PARTITIONS_EVERY = 3600.0
DEFAULT_PARTITION = "clicks_default"
_MONTHLY = re.compile(r"clicks_(\d{4})_(\d{2})")
# Taken (for the transaction) by whoever adds or drops partitions, so that two workers doing it
# at once take turns instead of failing on each other's tables.
_LOCK_KEY = 7_345_120_020
# DDL on a partition locks the whole `clicks` table: a lock that waits behind a long query on the
# raw clicks would stop every ingest transaction queued behind it. Better give up, and try again
# at the next round.
_LOCK_TIMEOUT = "5s"


def month_start(at: datetime) -> datetime:
    """The start (UTC) of the UTC month holding `at`."""
    utc = at.astimezone(UTC)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


def month_after(start: datetime) -> datetime:
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def partition_name(start: datetime) -> str:
    """The name of the partition of the month beginning at `start`: clicks_2026_12."""
    return f"clicks_{start:%Y_%m}"


def is_click_partition(name: str) -> bool:
    """Whether a table is one of the partitions of `clicks` (made here, not by the models)."""
    return name == DEFAULT_PARTITION or _MONTHLY.fullmatch(name) is not None


def is_partitioned(session: Session) -> bool:
    """Whether `clicks` is a partitioned table (PostgreSQL since migration 0020)."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    found = session.scalar(text(
        "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table"
        " WHERE partrelid = to_regclass('clicks'))"
    ))
    return bool(found)


def monthly_partitions(session: Session) -> dict[str, datetime]:
    """The month partitions of `clicks` there are, by name: the start of each one's month."""
    names = session.scalars(text(
        "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'clicks'::regclass"
    ))
    found = {}
    for name in names:
        month = _MONTHLY.fullmatch(name)
        if month is not None:
            found[name] = datetime(int(month[1]), int(month[2]), 1, tzinfo=UTC)
    return found


def ensure_partitions(
    session: Session, *, now: datetime, since: datetime | None = None
) -> list[str]:
    """Make the missing month partitions from the month of `since` (default: `now`'s) to AHEAD
    months after `now`'s; the names of those made, none on SQLite. Safe to run again, and from
    several workers at once. Rows the default partition holds for a month being made are moved
    into it (PostgreSQL refuses the partition while the default holds rows of its range)."""
    if not is_partitioned(session):
        return []
    start, last = month_start(since or now), month_start(now)
    for _ in range(AHEAD):
        last = month_after(last)
    made = []
    with _turn(session):
        existing = monthly_partitions(session)
        while start <= last:
            name = partition_name(start)
            if name not in existing:
                _create(session, name, start, month_after(start))
                made.append(name)
            start = month_after(start)
    return made


def keep_partitions_ahead(sessions: sessionmaker[Session]) -> list[str]:
    """`ensure_partitions` for now, in a transaction of its own: the worker's (and the embedded
    sink's) round. A failure (SQL away, a lock not had in time) is logged and left to the next
    round; meanwhile the default partition takes the clicks, so none is lost."""
    try:
        with transaction(sessions) as session:
            made = ensure_partitions(session, now=datetime.now(UTC))
    except SQLAlchemyError as exc:
        log.warning("could not make the partitions of the raw clicks (%s); trying later", exc)
        return []
    if made:
        log.info("made the partitions %s of the raw clicks", ", ".join(made))
    return made


def drop_partitions_before(session: Session, cutoff: datetime) -> int:
    """Drop the month partitions wholly before `cutoff`; how many clicks they held (none on
    SQLite). The rows before `cutoff` in the partition that straddles it, or in the default one,
    are the caller's to delete."""
    if not is_partitioned(session):
        return 0
    dropped = 0
    with _turn(session):
        for name, start in sorted(monthly_partitions(session).items()):
            if month_after(start) > cutoff:
                continue
            # The exact count, for what the worker reports it forgot: one scan of a month that
            # is about to go anyway.
            dropped += int(session.scalar(text(f"SELECT count(*) FROM {name}")) or 0)  # noqa: S608
            session.execute(text(f"DROP TABLE {name}"))
    return dropped


@contextmanager
def _turn(session: Session) -> Iterator[None]:
    """This transaction's turn at partition DDL (held to its end), locks waited for
    _LOCK_TIMEOUT at most meanwhile; the rest of the transaction keeps its own lock_timeout."""
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    # After the advisory lock: waiting for another worker's turn is bounded by its own timeout.
    before = session.scalar(text("SELECT current_setting('lock_timeout')"))
    set_timeout = text("SELECT set_config('lock_timeout', :value, true)")
    session.execute(set_timeout, {"value": _LOCK_TIMEOUT})
    yield
    session.execute(set_timeout, {"value": before})


def _create(session: Session, name: str, start: datetime, end: datetime) -> None:
    # Names and bounds are made here from dates, never from input.
    bounds = f"FROM ('{start:%Y-%m-%d %H:%M:%S}+00') TO ('{end:%Y-%m-%d %H:%M:%S}+00')"
    in_range = {"start": start, "end": end}
    strays = session.scalar(text(
        f"SELECT EXISTS (SELECT 1 FROM {DEFAULT_PARTITION}"  # noqa: S608
        " WHERE occurred_at >= :start AND occurred_at < :end)"
    ), in_range)
    if not strays:
        session.execute(text(f"CREATE TABLE {name} PARTITION OF clicks FOR VALUES {bounds}"))
        return
    columns = ", ".join(Click.__table__.c.keys())
    session.execute(text(f"CREATE TABLE {name} (LIKE clicks INCLUDING DEFAULTS)"))
    session.execute(text(
        f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION}"  # noqa: S608
        f" WHERE occurred_at >= :start AND occurred_at < :end RETURNING {columns})"
        f" INSERT INTO {name} ({columns}) SELECT {columns} FROM moved"
    ), in_range)
    # Attaching gives the table the primary key's index and checks its rows are in range.
    session.execute(text(f"ALTER TABLE clicks ATTACH PARTITION {name} FOR VALUES {bounds}"))
