"""SQL that the report families share: the rollup rows of a period (planned as runs in
`analytics.reports.periods`), the hourly rollups narrowed to a query, and lookups of filters."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    or_,
    select,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from analytics.models import DimensionStats as Dims
from analytics.models import LinkHourlyStats as Stats
from analytics.models import TouchpointStats
from analytics.reports.periods import HOURS, Piece, plan_pieces
from analytics.reports.query import ReportQuery, ceil_hour
from shortener.db import UTCDateTime
from shortener.errors import InvalidParameterError
from shortener.models import Link, Stage, Touchpoint

AnySelect = Select[*tuple[Any, ...]]


def plan(query: ReportQuery, *, with_previous: bool, open_end: bool) -> tuple[Piece, ...]:
    """The windows of `query` (and the one it is compared with) as runs of rollup rows."""
    # A bound inside an hour takes that hour's row or not by its start, like `hour >= start`.
    start = ceil_hour(query.start)
    previous = (ceil_hour(query.previous_start), ceil_hour(query.previous_end))
    return plan_pieces(
        previous[0] if with_previous else start,
        start,
        ceil_hour(query.end),
        previous_end=previous[1] if with_previous else start,
        zone=query.zone,
        # The campaign is the link's, and a link is not in touchpoint_stats: hours only.
        hours_only=query.campaign is not None or query.link_id is not None,
        open_end=open_end,
    )


def human_clicks(table: Any, query: ReportQuery) -> Any:
    """A rollup's human clicks, with the proofing scans before go-live when the query asks for
    them (`tests=include`)."""
    return table.clicks + table.test_clicks if query.tests else table.clicks


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
            TouchpointStats.period_start >= query.local(piece.start).date(),
            TouchpointStats.period_start < query.local(piece.end).date(),
        )
    start, end = ceil_hour(query.start), ceil_hour(query.end)
    current, previous = piece.current, piece.previous
    in_window = and_(table.last_click_at >= start, table.last_click_at < end)
    human = human_clicks(table, query)
    values: dict[str, Any] = {
        "stage_id": table.stage_id,
        "human": _times(current, human),
        "bots": _times(current, table.bot_clicks),
        "scanners": _times(current, table.scanner_clicks),
        "scans": _times(current, table.scans),
        "visitors": _times(current, table.visitors),
        "previous_human": _times(previous, human),
        "previous_bots": _times(previous, table.bot_clicks),
        # A run that starts before the window has its latest click in the window, or none there.
        "last_click_at": case((in_window, table.last_click_at))
        if current > 0
        else cast(null(), UTCDateTime),
        # Clicks of any kind in either window: what makes a touchpoint one with clicks there.
        "activity": _times(current + previous, human + table.bot_clicks),
        "current_activity": _times(current, human + table.bot_clicks),
    }
    stmt = stmt.add_columns(
        table.touchpoint_id.label("touchpoint_id"), *(values[f].label(f) for f in figures)
    )
    if stage_id is not None:
        stmt = stmt.where(table.stage_id == stage_id)
    if query.touchpoint_id is not None:
        stmt = stmt.where(table.touchpoint_id == query.touchpoint_id)
    if query.link_id is not None:
        stmt = stmt.where(Stats.link_id == query.link_id)
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
    # (90 days of 50,000 links on 2 cores: 25 ms alone, 33 ms with two workers). And a plan for
    # the window's own bounds: once psycopg has prepared a statement asked for again and again,
    # PostgreSQL may settle on a generic plan that reads every rollup row (3 s, not 30 ms).
    # One round trip each way.
    session.connection().exec_driver_sql(
        "SET LOCAL max_parallel_workers_per_gather = 0; "
        "SET LOCAL plan_cache_mode = force_custom_plan"
    )
    rows = _rows(session, query, statement)
    session.connection().exec_driver_sql(
        "SET LOCAL max_parallel_workers_per_gather TO DEFAULT; "
        "SET LOCAL plan_cache_mode TO DEFAULT"
    )
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
    """A select over the hourly rollups narrowed to the query's window and filters (archived
    touchpoints included: their clicks happened)."""
    stmt = stmt.join(Touchpoint, Touchpoint.id == Stats.touchpoint_id).where(
        Stats.hour >= query.start, Stats.hour < query.end
    )
    if query.touchpoint_id is not None:
        stmt = stmt.where(Stats.touchpoint_id == query.touchpoint_id)
    if query.link_id is not None:
        stmt = stmt.where(Stats.link_id == query.link_id)
    if query.stage is not None:
        stmt = stmt.where(Stats.stage_id == stage_id(session, query.stage))
    if query.channel is not None:
        stmt = stmt.where(Touchpoint.channel == query.channel)
    if query.campaign is not None:
        # The campaign is the link's; the stage is the one the click had.
        stmt = stmt.join(Link, Link.id == Stats.link_id).where(Link.campaign == query.campaign)
    return stmt


def dimension_days(
    session: Session, stmt: Select[Any], query: ReportQuery, dimension: str
) -> Select[Any]:
    """A select over one dimension's rows of `dimension_stats`, narrowed to the window's days and
    the query's filters (stage, channel and campaign as at click time)."""
    stmt = stmt.where(
        Dims.dimension == dimension, Dims.day >= query.first_day, Dims.day < query.end_day
    )
    if query.stage is not None:
        stmt = stmt.where(Dims.stage_id == stage_id(session, query.stage))
    if query.channel is not None:
        stmt = stmt.where(Dims.channel == query.channel)
    if query.campaign is not None:
        stmt = stmt.where(Dims.campaign == query.campaign)
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


def link_live_in(query: ReportQuery) -> ColumnElement[bool]:
    """Links live at some time in the window: made before it ended, neither archived nor
    expired before it began."""
    return and_(
        Link.created_at < query.end,
        or_(Link.archived_at.is_(None), Link.archived_at > query.start),
        or_(Link.expires_at.is_(None), Link.expires_at > query.start),
    )


def touchpoint_existed_in(query: ReportQuery) -> ColumnElement[bool]:
    """Touchpoints that existed at some time in the window: made before it ended and not
    archived before it began."""
    return and_(
        Touchpoint.created_at < query.end,
        or_(Touchpoint.archived_at.is_(None), Touchpoint.archived_at > query.start),
    )
