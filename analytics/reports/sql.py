"""SQL that the report families share: the rollup rows of a period (planned as runs in
`analytics.reports.periods`), the hourly rollups narrowed to a query, and lookups of filters."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    case,
    cast,
    exists,
    literal_column,
    null,
    select,
    text,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from analytics.models import LinkHourlyStats as Stats
from analytics.models import TouchpointStats
from analytics.reports.periods import HOURS, Piece, plan_pieces
from analytics.reports.query import ReportQuery, ceil_hour
from shortener.db import UTCDateTime
from shortener.errors import InvalidParameterError
from shortener.models import Link, Stage, Touchpoint

AnySelect = Select[*tuple[Any, ...]]


def plan(query: ReportQuery, previous_start: datetime, *, open_end: bool) -> tuple[Piece, ...]:
    # A bound inside an hour takes that hour's row or not by its start, like `hour >= start`.
    return plan_pieces(
        ceil_hour(previous_start),
        ceil_hour(query.start),
        ceil_hour(query.end),
        hours_only=query.campaign is not None,
        open_end=open_end,
    )


def piece_rows(
    piece: Piece, query: ReportQuery, stage_id: int | None, figures: Sequence[str]
) -> AnySelect:
    """The `figures` of one piece's rows per touchpoint, each times the piece's weight."""
    table: type[Stats] | type[TouchpointStats]
    if piece.level == HOURS:
        table = Stats
        stmt = select().where(Stats.hour >= piece.start, Stats.hour < piece.end)
    else:
        table = TouchpointStats
        stmt = select().where(
            TouchpointStats.period == piece.level,
            TouchpointStats.period_start >= piece.start.date(),
            TouchpointStats.period_start < piece.end.date(),
        )
    counted = table.clicks + table.bot_clicks if query.bots else table.clicks
    start, end = ceil_hour(query.start), ceil_hour(query.end)
    current, previous = piece.current, piece.previous
    in_period = and_(table.last_click_at >= start, table.last_click_at < end)
    values: dict[str, Any] = {
        "stage_id": table.stage_id,
        "clicks": _times(current, counted),
        "scans": _times(current, table.scans),
        "visitors": _times(current, table.visitors),
        "previous_clicks": _times(previous, counted),
        # A run that starts before the period has its latest click in the period, or none there.
        "last_click_at": case((in_period, table.last_click_at))
        if current > 0
        else cast(null(), UTCDateTime),
        # Clicks of any kind in either period: what makes a touchpoint one with clicks there.
        "activity": _times(current + previous, table.clicks + table.bot_clicks),
    }
    stmt = stmt.add_columns(
        table.touchpoint_id.label("touchpoint_id"), *(values[f].label(f) for f in figures)
    )
    if stage_id is not None:
        stmt = stmt.where(table.stage_id == stage_id)
    if query.campaign is not None:
        # The campaign is the link's; a stage, by contrast, is the one the click had.
        stmt = stmt.join(Link, Link.id == Stats.link_id).where(Link.campaign == query.campaign)
    return stmt


def _times(weight: int, value: Any) -> Any:
    if weight == 0:
        return literal_column("0", Integer)
    return value if weight > 0 else -value


def run_report(
    session: Session, query: ReportQuery, statement: Callable[[bool], AnySelect]
) -> list[Any]:
    """The rows of a report statement, built for a current period that may read past its end or
    not (see `_rows`)."""
    if not is_postgres(session):
        return _rows(session, query, statement)
    # Reports read tens of thousands of rows: parallel workers cost more to start than they save
    # (90 days of 50,000 links on 2 cores: 25 ms alone, 33 ms with two workers).
    session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    rows = _rows(session, query, statement)
    session.execute(text("SET LOCAL max_parallel_workers_per_gather TO DEFAULT"))
    return rows


def _rows(
    session: Session, query: ReportQuery, statement: Callable[[bool], AnySelect]
) -> list[Any]:
    """Whole periods past the end are read when nothing is stored from the end on (the usual
    report up to the current hour), in the same statement that checks it still holds."""
    stored_later = exists().where(Stats.hour >= ceil_hour(query.end))
    if not session.scalar(select(stored_later)):
        rows = session.execute(statement(True).add_columns(stored_later)).all()
        if not rows or not rows[0][-1]:
            return [row[:-1] for row in rows]
        # A click from the end on was stored since the check: plan the period without it.
    return list(session.execute(statement(False)).all())


def filtered(session: Session, stmt: Select[Any], query: ReportQuery) -> Select[Any]:
    """A select over the hourly rollups narrowed to the query's period, filters and live
    touchpoints."""
    stmt = stmt.join(Touchpoint, Touchpoint.id == Stats.touchpoint_id).where(
        Touchpoint.archived.is_(False), Stats.hour >= query.start, Stats.hour < query.end
    )
    if query.stage is not None:
        stmt = stmt.where(Stats.stage_id == stage_id(session, query.stage))
    if query.channel is not None:
        stmt = stmt.where(Touchpoint.channel == query.channel)
    if query.campaign is not None:
        # The campaign is the link's; the stage is the one the click had.
        stmt = stmt.join(Link, Link.id == Stats.link_id).where(Link.campaign == query.campaign)
    return stmt


def stage_id(session: Session, key: str) -> int:
    """The id of the stage a filter names; a 400 naming the parameter when there is none."""
    found = session.scalar(select(Stage.id).where(Stage.key == key))
    if found is None:
        raise InvalidParameterError("stage", f"no stage with key {key!r}")
    return found


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def by_key(postgres: bool) -> ColumnElement[str] | InstrumentedAttribute[str]:
    """Touchpoints in byte order of their key on both databases, whatever collation PostgreSQL
    was initialised with."""
    if postgres:
        return Touchpoint.key.collate("C")
    return Touchpoint.key
