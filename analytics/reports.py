"""Engagement reports over the hourly rollups: per touchpoint, and per stage of the journey.

Reports read `link_hourly_stats` only, never the raw clicks, so that they cost the same at ten
thousand clicks or ten million. Figures are sums of the rollups over whole hours:
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
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, Literal, TypeVar

from sqlalchemy import ColumnElement, Select, asc, case, desc, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from analytics.models import LinkHourlyStats as Stats
from shortener.errors import InvalidParameterError
from shortener.models import Channel, Link, Stage, Touchpoint

SelectT = TypeVar("SelectT", bound="Select[*tuple[Any, ...]]")

Order = Literal["most", "least"]

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
    counted = _counted_clicks(query)
    current = Stats.hour >= query.start
    # One pass over both periods: the index on (hour, touchpoint_id) serves the whole range.
    totals = _matching(
        select(
            Stats.touchpoint_id.label("touchpoint_id"),
            func.sum(case((current, counted), else_=0)).label("clicks"),
            func.sum(case((current, Stats.scans), else_=0)).label("scans"),
            func.sum(case((current, Stats.visitors), else_=0)).label("visitors"),
            func.sum(case((current, 0), else_=counted)).label("previous_clicks"),
            func.max(case((current, Stats.last_click_at))).label("last_click_at"),
        ).where(Stats.hour >= query.previous_start, Stats.hour < query.end),
        query,
        stage_id,
    ).group_by(Stats.touchpoint_id).subquery()

    live = select(Link.touchpoint_id.label("touchpoint_id"), func.count().label("links")).where(
        Link.archived.is_(False)
    )
    if stage_id is not None:
        live = live.where(Link.stage_id == stage_id)
    if query.campaign is not None:
        live = live.where(Link.campaign == query.campaign)
    links = live.group_by(Link.touchpoint_id).subquery()

    clicks = func.coalesce(totals.c.clicks, 0)
    visitors = func.coalesce(totals.c.visitors, 0)
    # A LEFT JOIN from the touchpoints: those without clicks are rows too, and the window sum
    # (taken before LIMIT) makes each share one of all matching touchpoints, not of the page.
    stmt = (
        select(
            Touchpoint,
            clicks,
            func.coalesce(totals.c.scans, 0),
            visitors,
            func.coalesce(links.c.links, 0),
            func.coalesce(totals.c.previous_clicks, 0),
            totals.c.last_click_at,
            func.sum(clicks).over(),
        )
        .outerjoin(totals, totals.c.touchpoint_id == Touchpoint.id)
        .outerjoin(links, links.c.touchpoint_id == Touchpoint.id)
        .where(Touchpoint.archived.is_(False))
    )
    if query.channel is not None:
        stmt = stmt.where(Touchpoint.channel == query.channel)
    if stage_id is not None or query.campaign is not None:
        stmt = stmt.where(
            or_(links.c.touchpoint_id.is_not(None), totals.c.touchpoint_id.is_not(None))
        )
    direction = desc if order == "most" else asc
    stmt = stmt.order_by(direction(clicks), direction(visitors), _by_key(session)).limit(limit)

    rows = []
    for tp, n_clicks, scans, n_visitors, n_links, previous, last, total in session.execute(stmt):
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


def stage_report(session: Session, query: ReportQuery) -> StageReport:
    """Every stage in journey order, zeros included, with the share of visitors lost to the next.

    `touchpoints` counts the distinct touchpoints with clicks (as counted) at that stage in the
    period. `drop_to_next` is (visitors - next stage's visitors) / visitors, 4 places: negative
    when the next stage has more visitors, None for the last stage or a stage without visitors.
    """
    if query.stage is not None:
        raise InvalidParameterError("stage", "the stage report covers every stage; leave it out")
    counted = _counted_clicks(query)
    matching = _matching(
        select(
            Stats.stage_id.label("stage_id"),
            func.sum(counted).label("clicks"),
            func.sum(Stats.scans).label("scans"),
            func.sum(Stats.visitors).label("visitors"),
            func.count(case((counted > 0, Stats.touchpoint_id)).distinct()).label("touchpoints"),
        )
        .join(Touchpoint, Touchpoint.id == Stats.touchpoint_id)
        .where(Touchpoint.archived.is_(False), Stats.hour >= query.start, Stats.hour < query.end),
        query,
        None,
    )
    if query.channel is not None:
        matching = matching.where(Touchpoint.channel == query.channel)
    totals = matching.group_by(Stats.stage_id).subquery()
    stmt = (
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
    found = [
        (StageRef(stage.key, stage.name, stage.position), int(c), int(s), int(v), int(t))
        for stage, c, s, v, t in session.execute(stmt)
    ]
    rows = tuple(
        StageRow(ref, c, s, v, t, _drop(v, found[i + 1][3] if i + 1 < len(found) else None))
        for i, (ref, c, s, v, t) in enumerate(found)
    )
    return StageReport(query=query, rows=rows)


def _drop(visitors: int, following: int | None) -> float | None:
    if following is None or not visitors:
        return None
    return round((visitors - following) / visitors, 4)


# --- CSV -------------------------------------------------------------------------------------


def to_csv(report: Report) -> str:
    """The report as CSV: a header, then one line per row; text that a spreadsheet would run as a
    formula is defused with a leading apostrophe (touchpoint and stage names are user input)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(report.csv_header)
    writer.writerows([_csv_cell(value) for value in _flat(row)] for row in report.rows)
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


def _csv_cell(value: Any) -> str:
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


def _counted_clicks(query: ReportQuery) -> ColumnElement[int] | InstrumentedAttribute[int]:
    return Stats.clicks + Stats.bot_clicks if query.bots else Stats.clicks


def _matching(stmt: SelectT, query: ReportQuery, stage_id: int | None) -> SelectT:
    """Narrow a select over the rollups to the query's stage and campaign."""
    if stage_id is not None:
        stmt = stmt.where(Stats.stage_id == stage_id)
    if query.campaign is not None:
        # The campaign is the link's; a stage, by contrast, is the one the click had.
        stmt = stmt.join(Link, Link.id == Stats.link_id).where(Link.campaign == query.campaign)
    return stmt


def _stage_id(session: Session, key: str | None) -> int | None:
    if key is None:
        return None
    found = session.scalar(select(Stage.id).where(Stage.key == key))
    if found is None:
        raise InvalidParameterError("stage", f"no stage with key {key!r}")
    return found


def _by_key(session: Session) -> ColumnElement[str] | InstrumentedAttribute[str]:
    # Byte order on both databases, whatever collation PostgreSQL was initialised with.
    if session.get_bind().dialect.name == "postgresql":
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
