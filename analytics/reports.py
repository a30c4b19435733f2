"""Engagement reports over the rollups: per touchpoint, and per stage of the journey.

Reports read rollups only, never the raw clicks, so that they cost the same at ten thousand
clicks or ten million. A period is cut into a few runs of rollup rows, added or taken away:
whole months, weeks and days from `touchpoint_stats`, and hours from `link_hourly_stats` only at
the edges of a period that starts or ends inside a day (see `plan_pieces`). Figures are sums of
the rollups over whole hours:
- `clicks` are human clicks, scans included; bot clicks are added only when a query asks for them;
- `scans` and `visitors` are always human;
- `visitors` adds up each link's unique visitors of each day: a visitor who comes back on another
  day, or who clicks two links, counts again (visitor ids rotate daily, by design);
- archived touchpoints are left out of every report, their clicks included.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache, partial
from typing import Any, ClassVar, Literal

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Subquery,
    and_,
    asc,
    case,
    cast,
    desc,
    exists,
    func,
    literal_column,
    null,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from analytics.models import LinkHourlyStats as Stats
from analytics.models import TouchpointStats
from analytics.periods import HOURS, Piece, clear_plan_caches, plan_pieces
from shortener.db import UTCDateTime
from shortener.errors import InvalidParameterError
from shortener.models import Channel, Link, Stage, Touchpoint

Order = Literal["most", "least"]
AnySelect = Select[*tuple[Any, ...]]

DEFAULT_DAYS = 30
MAX_DAYS = 400
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
HOUR = timedelta(hours=1)
# Bounds for `from` and `to` that keep the previous period a valid datetime.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """The period [start, end) in whole UTC hours, and the filters every report shares."""

    start: datetime
    end: datetime
    stage: str | None = None
    channel: str | None = None
    campaign: str | None = None
    bots: bool = False

    @classmethod
    def from_args(cls, args: Mapping[str, str], *, now: datetime) -> ReportQuery:
        """Parse `from`, `to`, `stage`, `channel`, `campaign`, `bots`; empty values count as absent.

        `to` given as a date includes that day; a date and time is rounded down to the hour and
        excluded. Without them: the 30 days up to the end of the current hour.
        """
        start = _parse_time(args, "from")
        end = _parse_time(args, "to", day_end=True)
        if end is None:
            end = _floor_hour(now.astimezone(UTC)) + HOUR
        if start is None:
            start = end - timedelta(days=DEFAULT_DAYS)
        if start >= end:
            raise InvalidParameterError("from", f"must be before to ({end.isoformat()})")
        if end - start > timedelta(days=MAX_DAYS):
            raise InvalidParameterError("to", f"a report covers at most {MAX_DAYS} days")
        bots = _arg(args, "bots") or "exclude"
        if bots not in ("include", "exclude"):
            raise InvalidParameterError("bots", f"must be include or exclude, not {bots!r}")
        channel = _arg(args, "channel")
        if channel is not None and channel not in set(Channel):
            raise InvalidParameterError(
                "channel", f"must be one of {', '.join(Channel)}, not {channel!r}"
            )
        return cls(
            start=start,
            end=end,
            stage=_arg(args, "stage"),
            channel=channel,
            campaign=_arg(args, "campaign"),
            bots=bots == "include",
        )

    @property
    def previous_start(self) -> datetime:
        """Start of the period of the same length just before this one."""
        return self.start - (self.end - self.start)


def parse_order(args: Mapping[str, str]) -> Order:
    raw = _arg(args, "order") or "most"
    if raw == "most":
        return "most"
    if raw == "least":
        return "least"
    raise InvalidParameterError("order", f"must be most or least, not {raw!r}")


def parse_limit(args: Mapping[str, str], *, default: int = DEFAULT_LIMIT) -> int:
    raw = _arg(args, "limit")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameterError("limit", f"must be a whole number, not {raw!r}") from None
    _check_limit(value)
    return value


# --- results -----------------------------------------------------------------------------------
# Field order is the order of the JSON objects and of the CSV columns.


@dataclass(frozen=True, slots=True)
class TouchpointRef:
    key: str
    name: str
    channel: str


@dataclass(frozen=True, slots=True)
class TouchpointRow:
    touchpoint: TouchpointRef
    clicks: int
    scans: int
    visitors: int
    links: int  # live links that match the stage and campaign filters
    share: float  # of the clicks of every matching touchpoint, 4 places
    previous_clicks: int
    change: float | None  # relative to previous_clicks, 4 places; None when that is 0
    last_click_at: datetime | None  # latest human click in the period
    engagement_rate: float | None  # visitors / exposure, 6 places; None without an exposure


@dataclass(frozen=True, slots=True)
class TouchpointReport:
    kind: ClassVar[str] = "touchpoints"
    csv_header: ClassVar[tuple[str, ...]] = (
        "touchpoint_key", "touchpoint_name", "channel", "clicks", "scans", "visitors", "links",
        "share", "previous_clicks", "change", "last_click_at", "engagement_rate",
    )

    query: ReportQuery
    order: Order
    rows: tuple[TouchpointRow, ...]

    def to_json(self) -> dict[str, Any]:
        return {**_head(self.query), "order": self.order, "rows": [_json(r) for r in self.rows]}


@dataclass(frozen=True, slots=True)
class StageRef:
    key: str
    name: str
    position: int


@dataclass(frozen=True, slots=True)
class StageRow:
    stage: StageRef
    clicks: int
    scans: int
    visitors: int
    touchpoints: int
    drop_to_next: float | None


@dataclass(frozen=True, slots=True)
class StageReport:
    kind: ClassVar[str] = "stages"
    csv_header: ClassVar[tuple[str, ...]] = (
        "stage_key", "stage_name", "position", "clicks", "scans", "visitors", "touchpoints",
        "drop_to_next",
    )

    query: ReportQuery
    rows: tuple[StageRow, ...]

    def to_json(self) -> dict[str, Any]:
        return {**_head(self.query), "rows": [_json(r) for r in self.rows]}


Report = TouchpointReport | StageReport


# --- queries -----------------------------------------------------------------------------------


def touchpoint_report(
    session: Session, query: ReportQuery, *, order: Order = "most", limit: int = DEFAULT_LIMIT
) -> TouchpointReport:
    """Engagement per touchpoint, most engaged first (or least: zero-click touchpoints first).

    Every non-archived touchpoint of the channel is a row, with zeros when it had no clicks; with
    a stage or campaign filter, only those with a live link at that stage / in that campaign, or
    with clicks there in this period or the previous one. Ties go to visitors, then to the key.
    """
    if order not in ("most", "least"):
        raise InvalidParameterError("order", f"must be most or least, not {order!r}")
    _check_limit(limit)
    stage_id = _stage_id(session, query.stage)
    statement = partial(
        _touchpoint_statement, query, stage_id, order, limit, postgres=_is_postgres(session)
    )
    rows = []
    for tp, n_clicks, scans, n_visitors, n_links, previous, last, total in _run(
        session, query, statement
    ):
        n_clicks, n_visitors, previous = int(n_clicks), int(n_visitors), int(previous)
        rows.append(
            TouchpointRow(
                touchpoint=TouchpointRef(tp.key, tp.name, tp.channel),
                clicks=n_clicks,
                scans=int(scans),
                visitors=n_visitors,
                links=int(n_links),
                share=round(n_clicks / int(total), 4) if total else 0.0,
                previous_clicks=previous,
                change=round((n_clicks - previous) / previous, 4) if previous else None,
                last_click_at=last,
                engagement_rate=round(n_visitors / tp.exposure, 6) if tp.exposure else None,
            )
        )
    return TouchpointReport(query=query, order=order, rows=tuple(rows))


@lru_cache(maxsize=128)
def _touchpoint_statement(
    query: ReportQuery,
    stage_id: int | None,
    order: Order,
    limit: int,
    open_end: bool,
    *,
    postgres: bool,
) -> AnySelect:
    """The touchpoint report in one statement; kept, as the same report is asked for again and
    again (a dashboard's, up to the current hour)."""
    filtered = stage_id is not None or query.campaign is not None
    figures = ["clicks", "scans", "visitors", "previous_clicks", "last_click_at"]
    figures += ["activity"] if filtered else []
    pieces = _plan(query, query.previous_start, open_end=open_end)
    rows = union_all(*(_piece_rows(p, query, stage_id, figures) for p in pieces)).subquery()
    totals = (
        select(
            rows.c.touchpoint_id,
            *(
                (func.max if name == "last_click_at" else func.sum)(rows.c[name]).label(name)
                for name in figures
            ),
        )
        .group_by(rows.c.touchpoint_id)
        .subquery()
    )
    return _touchpoint_rows(query, stage_id, totals, order, limit, postgres=postgres)


def _touchpoint_rows(
    query: ReportQuery,
    stage_id: int | None,
    totals: Subquery,
    order: Order,
    limit: int,
    *,
    postgres: bool,
) -> AnySelect:
    live = select(func.count().label("links")).where(Link.archived.is_(False))
    if stage_id is not None:
        live = live.where(Link.stage_id == stage_id)
    if query.campaign is not None:
        live = live.where(Link.campaign == query.campaign)

    clicks = func.coalesce(totals.c.clicks, 0)
    visitors = func.coalesce(totals.c.visitors, 0)
    # A LEFT JOIN from the touchpoints: those without clicks are rows too, and the window sum
    # (taken before LIMIT) makes each share one of all matching touchpoints, not of the page.
    stmt = (
        select(
            Touchpoint.id.label("id"),
            clicks.label("clicks"),
            func.coalesce(totals.c.scans, 0).label("scans"),
            visitors.label("visitors"),
            func.coalesce(totals.c.previous_clicks, 0).label("previous_clicks"),
            totals.c.last_click_at,
            func.sum(clicks).over().label("total"),
        )
        .outerjoin(totals, totals.c.touchpoint_id == Touchpoint.id)
        .where(Touchpoint.archived.is_(False))
    )
    if query.channel is not None:
        stmt = stmt.where(Touchpoint.channel == query.channel)
    filtered = stage_id is not None or query.campaign is not None
    if filtered:
        links = live.add_columns(Link.touchpoint_id).group_by(Link.touchpoint_id).subquery()
        # Runs added and taken away can leave a touchpoint a row of zeros: clicks of any kind
        # in either period are what make it one with clicks there.
        stmt = stmt.outerjoin(links, links.c.touchpoint_id == Touchpoint.id).where(
            or_(links.c.touchpoint_id.is_not(None), totals.c.activity > 0)
        )
        stmt = stmt.add_columns(func.coalesce(links.c.links, 0).label("links"))
    direction = desc if order == "most" else asc
    page = stmt.order_by(direction(clicks), direction(visitors), _by_key(postgres)).limit(limit)
    rows = page.subquery()
    # Without a filter every live link counts: counted for the page only, not for every touchpoint.
    n_links = rows.c.links if filtered else live.where(
        Link.touchpoint_id == Touchpoint.id
    ).scalar_subquery()
    return (
        select(
            Touchpoint,
            rows.c.clicks,
            rows.c.scans,
            rows.c.visitors,
            n_links,
            rows.c.previous_clicks,
            rows.c.last_click_at,
            rows.c.total,
        )
        .join(rows, rows.c.id == Touchpoint.id)
        .order_by(direction(rows.c.clicks), direction(rows.c.visitors), _by_key(postgres))
    )


def stage_report(session: Session, query: ReportQuery) -> StageReport:
    """Every stage in journey order, zeros included, with the share of visitors lost to the next.

    `touchpoints` counts the distinct touchpoints with clicks (as counted) at that stage in the
    period. `drop_to_next` is (visitors - next stage's visitors) / visitors, 4 places: negative
    when the next stage has more visitors, None for the last stage or a stage without visitors.
    """
    if query.stage is not None:
        raise InvalidParameterError("stage", "the stage report covers every stage; leave it out")

    found = [
        (StageRef(stage.key, stage.name, stage.position), int(c), int(s), int(v), int(t))
        for stage, c, s, v, t in _run(session, query, partial(_stage_statement, query))
    ]
    rows = tuple(
        StageRow(ref, c, s, v, t, _drop(v, found[i + 1][3] if i + 1 < len(found) else None))
        for i, (ref, c, s, v, t) in enumerate(found)
    )
    return StageReport(query=query, rows=rows)


@lru_cache(maxsize=128)
def _stage_statement(query: ReportQuery, open_end: bool) -> AnySelect:
    """The stage report in one statement; kept like the touchpoint report's."""
    pieces = _plan(query, query.start, open_end=open_end)
    rows = union_all(
        *(_piece_rows(p, query, None, STAGE_FIGURES) for p in pieces)
    ).subquery()
    # Per touchpoint first: a touchpoint counts at a stage when its sum there is positive.
    per_touchpoint = (
        select(
            rows.c.stage_id,
            func.sum(rows.c.clicks).label("clicks"),
            func.sum(rows.c.scans).label("scans"),
            func.sum(rows.c.visitors).label("visitors"),
        )
        .join(Touchpoint, Touchpoint.id == rows.c.touchpoint_id)
        .where(Touchpoint.archived.is_(False))
        .group_by(rows.c.stage_id, rows.c.touchpoint_id)
    )
    if query.channel is not None:
        per_touchpoint = per_touchpoint.where(Touchpoint.channel == query.channel)
    each = per_touchpoint.subquery()
    totals = (
        select(
            each.c.stage_id,
            func.sum(each.c.clicks).label("clicks"),
            func.sum(each.c.scans).label("scans"),
            func.sum(each.c.visitors).label("visitors"),
            func.count(case((each.c.clicks > 0, 1))).label("touchpoints"),
        )
        .group_by(each.c.stage_id)
        .subquery()
    )
    return (
        select(
            Stage,
            func.coalesce(totals.c.clicks, 0),
            func.coalesce(totals.c.scans, 0),
            func.coalesce(totals.c.visitors, 0),
            func.coalesce(totals.c.touchpoints, 0),
        )
        .outerjoin(totals, totals.c.stage_id == Stage.id)
        .order_by(Stage.position, Stage.id)
    )


def _drop(visitors: int, following: int | None) -> float | None:
    if following is None or not visitors:
        return None
    return round((visitors - following) / visitors, 4)


# --- a period as runs of rollup rows (planned in analytics.periods) ---------------------------

STAGE_FIGURES = ("stage_id", "clicks", "scans", "visitors")


def clear_caches() -> None:
    """Forget the plans and statements kept for reports asked for again: the next report of any
    period is planned from scratch (what a benchmark of a first report needs)."""
    clear_plan_caches()
    for cached in (_touchpoint_statement, _stage_statement):
        cached.cache_clear()


def _plan(query: ReportQuery, previous_start: datetime, *, open_end: bool) -> tuple[Piece, ...]:
    # A bound inside an hour takes that hour's row or not by its start, like `hour >= start`.
    return plan_pieces(
        _ceil_hour(previous_start),
        _ceil_hour(query.start),
        _ceil_hour(query.end),
        hours_only=query.campaign is not None,
        open_end=open_end,
    )


def _piece_rows(
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
    start, end = _ceil_hour(query.start), _ceil_hour(query.end)
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


def _run(
    session: Session, query: ReportQuery, statement: Callable[[bool], AnySelect]
) -> list[Any]:
    """The rows of a report statement, built for a current period that may read past its end or
    not (see `_rows`)."""
    if not _is_postgres(session):
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
    stored_later = exists().where(Stats.hour >= _ceil_hour(query.end))
    if not session.scalar(select(stored_later)):
        rows = session.execute(statement(True).add_columns(stored_later)).all()
        if not rows or not rows[0][-1]:
            return [row[:-1] for row in rows]
        # A click from the end on was stored since the check: plan the period without it.
    return list(session.execute(statement(False)).all())


# --- CSV -------------------------------------------------------------------------------------


def to_csv(report: Report) -> str:
    """The report as CSV: a header, then one line per row; text that a spreadsheet would run as a
    formula is defused with a leading apostrophe (touchpoint and stage names are user input)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(report.csv_header)
    writer.writerows([csv_cell(value) for value in _flat(row)] for row in report.rows)
    return out.getvalue()


def csv_filename(report: Report) -> str:
    """`touchpoints-2026-10-24-2026-11-23.csv`: the first and the last day the report covers."""
    last_day = (report.query.end - timedelta(microseconds=1)).date()
    return f"{report.kind}-{report.query.start.date()}-{last_day}.csv"


def _flat(row: Any) -> list[Any]:
    """A row's values in field order, the nested touchpoint or stage spread out in place."""
    values: list[Any] = []
    for f in fields(row):
        value = getattr(row, f.name)
        values.extend(_flat(value) if is_dataclass(value) else [value])
    return values


def _json(value: Any) -> Any:
    if is_dataclass(value):
        return {f.name: _json(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def csv_cell(value: Any) -> str:
    """A CSV cell; text that a spreadsheet would run as a formula is quoted with an apostrophe."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA_START) else value
    return str(value)


# --- helpers -----------------------------------------------------------------------------------


def _head(query: ReportQuery) -> dict[str, Any]:
    return {
        "from": query.start.isoformat(),
        "to": query.end.isoformat(),
        "bots": "include" if query.bots else "exclude",
        "filters": {"stage": query.stage, "channel": query.channel, "campaign": query.campaign},
    }


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _stage_id(session: Session, key: str | None) -> int | None:
    if key is None:
        return None
    found = session.scalar(select(Stage.id).where(Stage.key == key))
    if found is None:
        raise InvalidParameterError("stage", f"no stage with key {key!r}")
    return found


def _by_key(postgres: bool) -> ColumnElement[str] | InstrumentedAttribute[str]:
    # Byte order on both databases, whatever collation PostgreSQL was initialised with.
    if postgres:
        return Touchpoint.key.collate("C")
    return Touchpoint.key


def _check_limit(value: int) -> None:
    if not 1 <= value <= MAX_LIMIT:
        raise InvalidParameterError("limit", f"must be between 1 and {MAX_LIMIT}")


def _arg(args: Mapping[str, str], name: str) -> str | None:
    value = (args.get(name) or "").strip()
    return value or None


def _parse_time(args: Mapping[str, str], name: str, *, day_end: bool = False) -> datetime | None:
    raw = _arg(args, name)
    if raw is None:
        return None
    try:
        if _DATE.fullmatch(raw):
            day = date.fromisoformat(raw)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            if day_end:
                moment += timedelta(days=1)
        else:
            moment = datetime.fromisoformat(raw)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            moment = _floor_hour(moment.astimezone(UTC))
    except (ValueError, OverflowError):
        raise InvalidParameterError(
            name, f"must be a date (YYYY-MM-DD) or an ISO 8601 date and time, not {raw!r}"
        ) from None
    if not EARLIEST <= moment <= LATEST:
        raise InvalidParameterError(name, f"must be between {EARLIEST.year} and {LATEST.year}")
    return moment


def _floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _ceil_hour(moment: datetime) -> datetime:
    floor = _floor_hour(moment)
    return floor if floor == moment else floor + HOUR
