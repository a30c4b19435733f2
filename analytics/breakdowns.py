"""Where clicks come from (device, OS, browser, country, referrer, scan or click), and the journey
map: engagement of each touchpoint at each stage.

Breakdowns read the raw clicks of the period with one GROUP BY, keeping the ten (or `limit`) most
frequent values: fine at the volumes a dashboard period holds today; daily dimension rollups take
over when that stops being true. The journey map reads the hourly rollups like the other reports.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from sqlalchemy import Select, case, distinct, func, select
from sqlalchemy.orm import Session

from analytics.models import Click
from analytics.models import LinkHourlyStats as Stats
from analytics.reports import ReportQuery, StageRef, TouchpointRef
from analytics.timeseries import filtered, report_head, stage_id
from shortener.errors import InvalidParameterError
from shortener.models import Link, Stage, Touchpoint

Dimension = Literal["device", "os", "browser", "country", "referrer", "source"]

DIMENSIONS: tuple[Dimension, ...] = ("device", "os", "browser", "country", "referrer", "source")
DIMENSION_NAMES: dict[Dimension, str] = {
    "device": "Device",
    "os": "Operating system",
    "browser": "Browser",
    "country": "Country",
    "referrer": "Referrer",
    "source": "Scan or click",
}
DEFAULT_LIMIT = 10
MAX_LIMIT = 100
_UNKNOWN = {"referrer": "Direct or unknown", "country": "Unknown"}
_SOURCES = {"scan": "QR code scan", "click": "Click"}


@dataclass(frozen=True, slots=True)
class BreakdownRow:
    value: str  # as stored; "" when the click had none
    label: str  # for people
    clicks: int
    visitors: int  # distinct visitor ids, which rotate daily: a visitor per day
    share: float  # of all the clicks of the period, 4 places


@dataclass(frozen=True, slots=True)
class Breakdown:
    kind: ClassVar[str] = "breakdown"
    csv_header: ClassVar[tuple[str, ...]] = ("dimension", "value", "clicks", "visitors", "share")

    query: ReportQuery
    dimension: Dimension
    rows: tuple[BreakdownRow, ...]  # most clicks first
    total: int  # every click of the period, those past the limit included

    @property
    def other(self) -> int:
        """Clicks with a value outside the rows shown."""
        return self.total - sum(row.clicks for row in self.rows)

    def to_json(self) -> dict[str, Any]:
        return {
            **report_head(self.query),
            "dimension": self.dimension,
            "total": self.total,
            "other": self.other,
            "rows": [
                {
                    "value": row.value,
                    "label": row.label,
                    "clicks": row.clicks,
                    "visitors": row.visitors,
                    "share": row.share,
                }
                for row in self.rows
            ],
        }

    def csv_rows(self) -> Iterable[Sequence[Any]]:
        for row in self.rows:
            yield self.dimension, row.label, row.clicks, row.visitors, row.share


def parse_dimension(args: Mapping[str, str]) -> Dimension:
    raw = (args.get("dimension") or "").strip()
    for dimension in DIMENSIONS:
        if raw == dimension:
            return dimension
    raise InvalidParameterError(
        "dimension", f"must be one of {', '.join(DIMENSIONS)}, not {raw!r}"
    )


def parse_limit(args: Mapping[str, str]) -> int:
    raw = (args.get("limit") or "").strip()
    if not raw:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw[:6]) <= MAX_LIMIT:
        raise InvalidParameterError("limit", f"must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def breakdown(
    session: Session, query: ReportQuery, dimension: Dimension, *, limit: int = DEFAULT_LIMIT
) -> Breakdown:
    """The period's clicks by one dimension, the `limit` most frequent values first."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidParameterError("limit", f"must be a whole number from 1 to {MAX_LIMIT}")
    value = _column(dimension)
    grouped = (
        _matching_clicks(
            session, select(value, func.count(), func.count(distinct(Click.visitor_id))), query
        )
        .group_by(value)
        .order_by(func.count().desc(), value)
        .limit(limit)
    )
    found = [(str(v or ""), int(c), int(u)) for v, c, u in session.execute(grouped)]
    total = int(session.scalar(_matching_clicks(session, select(func.count()), query)) or 0)
    rows = tuple(
        BreakdownRow(
            value=v,
            label=_label(dimension, v),
            clicks=c,
            visitors=u,
            share=round(c / total, 4) if total else 0.0,
        )
        for v, c, u in found
    )
    return Breakdown(query=query, dimension=dimension, rows=rows, total=total)


def _matching_clicks(session: Session, stmt: Select[Any], query: ReportQuery) -> Select[Any]:
    """A select over the raw clicks narrowed to the period, the filters and live touchpoints."""
    stmt = (
        stmt.select_from(Click)
        .join(Touchpoint, Touchpoint.id == Click.touchpoint_id)
        .where(
            Touchpoint.archived.is_(False),
            Click.occurred_at >= query.start,
            Click.occurred_at < query.end,
        )
    )
    if not query.bots:
        stmt = stmt.where(Click.is_bot.is_(False))
    if query.stage is not None:
        stmt = stmt.where(Click.stage_id == stage_id(session, query.stage))
    if query.channel is not None:
        stmt = stmt.where(Touchpoint.channel == query.channel)
    if query.campaign is not None:
        stmt = stmt.join(Link, Link.id == Click.link_id).where(Link.campaign == query.campaign)
    return stmt


def _column(dimension: Dimension) -> Any:
    if dimension == "source":
        return case((Click.via_qr.is_(True), "scan"), else_="click")
    if dimension == "referrer":
        return func.coalesce(Click.referrer_host, "")
    if dimension == "country":
        return func.coalesce(Click.country, "")
    return {"device": Click.device, "os": Click.os, "browser": Click.browser}[dimension]


def _label(dimension: Dimension, value: str) -> str:
    if dimension == "source":
        return _SOURCES.get(value, value)
    if not value:
        return _UNKNOWN.get(dimension, "Unknown")
    if dimension == "device":
        return value.capitalize()
    return value


# --- the journey map ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MapCell:
    clicks: int
    visitors: int
    links: int  # live links of the touchpoint at the stage


@dataclass(frozen=True, slots=True)
class MapRow:
    touchpoint: TouchpointRef
    cells: tuple[MapCell, ...]  # one per stage, in journey order

    @property
    def clicks(self) -> int:
        return sum(cell.clicks for cell in self.cells)


@dataclass(frozen=True, slots=True)
class JourneyMap:
    kind: ClassVar[str] = "journey-map"
    csv_header: ClassVar[tuple[str, ...]] = (
        "touchpoint_key", "touchpoint_name", "channel", "stage_key", "stage_name", "clicks",
        "visitors", "links",
    )

    query: ReportQuery
    stages: tuple[StageRef, ...]
    rows: tuple[MapRow, ...]  # most clicks first

    @property
    def gaps(self) -> frozenset[str]:
        """Keys of the stages no touchpoint serves: no live link there, and no click."""
        return frozenset(
            stage.key
            for i, stage in enumerate(self.stages)
            if not any(row.cells[i].links or row.cells[i].clicks for row in self.rows)
        )

    @property
    def busiest(self) -> int:
        return max((cell.clicks for row in self.rows for cell in row.cells), default=0)

    def csv_rows(self) -> Iterable[Sequence[Any]]:
        for row in self.rows:
            tp = row.touchpoint
            for stage, cell in zip(self.stages, row.cells, strict=True):
                yield (
                    tp.key, tp.name, tp.channel, stage.key, stage.name, cell.clicks,
                    cell.visitors, cell.links,
                )


def journey_map(session: Session, query: ReportQuery) -> JourneyMap:
    """Clicks and visitors of every live touchpoint at every stage, with its live links there.

    Every stage is a column whatever the stage filter; the channel and campaign filters choose the
    touchpoints (with a campaign: those with a live link in it or clicks through one).
    """
    counted = Stats.clicks + Stats.bot_clicks if query.bots else Stats.clicks
    unstaged = ReportQuery(
        start=query.start, end=query.end, channel=query.channel, campaign=query.campaign,
        bots=query.bots,
    )
    clicks = filtered(
        session,
        select(Stats.touchpoint_id, Stats.stage_id, func.sum(counted), func.sum(Stats.visitors)),
        unstaged,
    ).group_by(Stats.touchpoint_id, Stats.stage_id)
    figures: dict[tuple[int, int], tuple[int, int]] = {
        (tp, st): (int(c or 0), int(v or 0)) for tp, st, c, v in session.execute(clicks)
    }
    live = select(Link.touchpoint_id, Link.stage_id, func.count()).where(Link.archived.is_(False))
    if query.campaign is not None:
        live = live.where(Link.campaign == query.campaign)
    link_counts: dict[tuple[int, int], int] = {
        (tp, st): int(n)
        for tp, st, n in session.execute(live.group_by(Link.touchpoint_id, Link.stage_id))
    }
    stage_rows = session.scalars(select(Stage).order_by(Stage.position, Stage.id)).all()
    stages = tuple(StageRef(s.key, s.name, s.position) for s in stage_rows)
    wanted = select(Touchpoint).where(Touchpoint.archived.is_(False)).order_by(Touchpoint.key)
    if query.channel is not None:
        wanted = wanted.where(Touchpoint.channel == query.channel)
    if query.campaign is not None:
        involved = {tp for tp, _ in figures} | {tp for tp, _ in link_counts}
        wanted = wanted.where(Touchpoint.id.in_(involved))
    by_touchpoint: dict[int, list[MapCell]] = defaultdict(list)
    touchpoints = session.scalars(wanted).all()
    for tp in touchpoints:
        for stage in stage_rows:
            c, v = figures.get((tp.id, stage.id), (0, 0))
            by_touchpoint[tp.id].append(MapCell(c, v, link_counts.get((tp.id, stage.id), 0)))
    rows = [
        MapRow(TouchpointRef(tp.key, tp.name, tp.channel), tuple(by_touchpoint[tp.id]))
        for tp in touchpoints
    ]
    rows.sort(key=lambda row: (-row.clicks, row.touchpoint.key))
    return JourneyMap(query=query, stages=stages, rows=tuple(rows))
