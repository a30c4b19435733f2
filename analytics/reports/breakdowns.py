"""Where clicks come from: device, OS, browser, country, referrer, scan or click.

A breakdown keeps the ten (or `limit`) most frequent values of the window. Whole local days
(every window of the dashboard) are summed from `dimension_stats`, whose rows carry the stage,
channel and campaign of their clicks at click time; one touchpoint's or link's page, or a window
cut inside a day, groups the raw clicks instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal

from sqlalchemy import Select, and_, case, func, literal, or_, select, union_all
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from analytics.countries import country_name
from analytics.models import Click
from analytics.models import DimensionStats as Stats
from analytics.reports.query import ReportQuery, check_limit
from analytics.reports.render import ReportHead, head
from analytics.reports.sql import dimension_days, stage_id
from shortener.models import Link, Touchpoint

Dimension = Literal["device", "os", "browser", "country", "referrer", "referrer_host", "source"]

# The dashboard's panels; `referrer_host` (the hosts behind each referrer site) is for drill-down.
DIMENSIONS: tuple[Dimension, ...] = ("device", "os", "browser", "country", "referrer", "source")
ALL_DIMENSIONS: tuple[Dimension, ...] = (*DIMENSIONS, "referrer_host")
DIMENSION_NAMES: dict[Dimension, str] = {
    "device": "Device",
    "os": "Operating system",
    "browser": "Browser",
    "country": "Country",
    "referrer": "Referrer",
    "referrer_host": "Referring host",
    "source": "Scan or click",
}
DEFAULT_LIMIT = 10
MAX_LIMIT = 100
_UNKNOWN = {
    "referrer": "Direct or unknown", "referrer_host": "Direct or unknown", "country": "Unknown",
}
_SOURCES = {"scan": "QR code scan", "click": "Click"}


@dataclass(frozen=True, slots=True)
class BreakdownRow:
    value: str  # as stored (a country's ISO code, a referrer's site); "" when the click had none
    label: str  # for people (the country's name)
    clicks: int
    visitors: int  # a visitor per link per day, counted where their first click of the day is
    share: float  # of all the clicks of the period, 4 places


class BreakdownRowOut(TypedDict):
    value: str
    label: str
    clicks: int
    visitors: int
    share: float


class BreakdownOut(ReportHead):
    dimension: Dimension
    total: int
    other: int
    rows: list[BreakdownRowOut]


@dataclass(frozen=True, slots=True)
class Breakdown:
    csv_header: ClassVar[tuple[str, ...]] = (
        "dimension", "value", "label", "clicks", "visitors", "share",
    )

    query: ReportQuery
    dimension: Dimension
    rows: tuple[BreakdownRow, ...]  # most clicks first
    total: int  # every click of the period, those past the limit included

    @property
    def kind(self) -> str:
        return self.dimension

    @property
    def other(self) -> int:
        """Clicks with a value outside the rows shown."""
        return self.total - sum(row.clicks for row in self.rows)

    def to_json(self) -> BreakdownOut:
        return {
            **head(self.query),
            "dimension": self.dimension,
            "total": self.total,
            "other": self.other,
            "rows": self.rows_json(),
        }

    def rows_json(self) -> list[BreakdownRowOut]:
        return [
            {
                "value": row.value,
                "label": row.label,
                "clicks": row.clicks,
                "visitors": row.visitors,
                "share": row.share,
            }
            for row in self.rows
        ]

    def csv_rows(self) -> Iterable[Sequence[Any]]:
        for row in self.rows:
            yield self.dimension, row.value, row.label, row.clicks, row.visitors, row.share


def breakdown(
    session: Session, query: ReportQuery, dimension: Dimension, *, limit: int = DEFAULT_LIMIT
) -> Breakdown:
    """The period's clicks by one dimension, the `limit` most frequent values first."""
    return breakdowns(session, query, (dimension,), limit=limit)[dimension]


def breakdowns(
    session: Session,
    query: ReportQuery,
    dimensions: Sequence[Dimension],
    *,
    limit: int = DEFAULT_LIMIT,
) -> dict[Dimension, Breakdown]:
    """`breakdown` of each of `dimensions`; from the raw clicks (a touchpoint's or a link's, or
    a window cut inside a day), all of them in one reading of the clicks."""
    check_limit(limit, MAX_LIMIT)
    if query.empty:
        return {d: Breakdown(query=query, dimension=d, rows=(), total=0) for d in dimensions}
    if query.whole_days and query.touchpoint_id is None and query.link_id is None:
        counted = {d: _from_rollups(session, query, d, limit) for d in dimensions}
    else:
        counted = _from_clicks(session, query, dimensions, limit)
    return {d: _breakdown(query, d, *counted[d]) for d in dimensions}


def _breakdown(query: ReportQuery, dimension: Dimension, found: Counts, total: int) -> Breakdown:
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


Counts = list[tuple[str, int, int]]  # (value, clicks, visitors), most clicks first


def _from_rollups(
    session: Session, query: ReportQuery, dimension: Dimension, limit: int
) -> tuple[Counts, int]:
    clicks: Any = Stats.clicks
    if query.bots:
        clicks = clicks + Stats.bot_clicks
    if query.tests:
        clicks = clicks + Stats.test_clicks
    stmt = dimension_days(
        session,
        select(Stats.value, func.sum(clicks).label("clicks"), func.sum(Stats.visitors)),
        query,
        dimension,
    )
    values = stmt.group_by(Stats.value).having(func.sum(clicks) > 0).subquery()
    found = session.execute(
        select(values, func.sum(values.c.clicks).over())
        .order_by(values.c.clicks.desc(), values.c.value)
        .limit(limit)
    ).all()
    total = int(found[0][3]) if found else 0
    return [(str(v), int(c), int(u)) for v, c, u, _ in found], total


def _from_clicks(
    session: Session, query: ReportQuery, dimensions: Sequence[Dimension], limit: int
) -> dict[Dimension, tuple[Counts, int]]:
    """The same from the raw clicks: for one touchpoint or link, or a window cut inside a day.
    A visitor counts as in the rollups: once per link per day (visitor ids rotate daily), under
    the value of their first human click of the day, when it is in the window. The clicks are
    read once, whatever the number of dimensions."""
    person = and_(Click.is_bot.is_(False), Click.is_test.is_(False), Click.visitor_id != "")
    nth = func.row_number().over(
        partition_by=(person, Click.visitor_id, Click.link_id),
        order_by=(Click.occurred_at, Click.click_id),
    )
    day_start = query.local(query.start).replace(hour=0)
    clicks = _matching_clicks(
        session,
        select(
            *(_column(d).label(d) for d in dimensions),
            Click.occurred_at.label("at"),
            case((person, nth), else_=0).label("nth"),
        ),
        query,
        since=day_start,
    ).cte("matching")
    per_value = union_all(*(
        select(
            literal(d).label("dimension"),
            clicks.c[d].label("value"),
            func.count().label("clicks"),
            func.sum(case((clicks.c.nth == 1, 1), else_=0)).label("visitors"),
        )
        .where(clicks.c.at >= query.start)
        .group_by(clicks.c[d])
        for d in dimensions
    )).subquery()
    # Each dimension's first `limit` values, and its total over all of them (before LIMIT).
    ranked = select(
        per_value,
        func.row_number().over(
            partition_by=per_value.c.dimension,
            order_by=(per_value.c.clicks.desc(), per_value.c.value),
        ).label("place"),
        func.sum(per_value.c.clicks).over(partition_by=per_value.c.dimension).label("total"),
    ).subquery()
    found: dict[Dimension, tuple[Counts, int]] = {d: ([], 0) for d in dimensions}
    for dimension, value, count, visitors, _, total in session.execute(
        select(ranked).where(ranked.c.place <= limit).order_by(ranked.c.dimension, ranked.c.place)
    ):
        rows, _ = found[dimension]
        rows.append((str(value or ""), int(count), int(visitors or 0)))
        found[dimension] = rows, int(total)
    return found


def _matching_clicks(
    session: Session, stmt: Select[Any], query: ReportQuery, *, since: datetime | None = None
) -> Select[Any]:
    """A select over the raw clicks narrowed to the window (from `since`, when earlier) and the
    filters."""
    stmt = (
        stmt.select_from(Click)
        .join(Touchpoint, Touchpoint.id == Click.touchpoint_id)
        .where(Click.occurred_at >= (since or query.start), Click.occurred_at < query.end)
    )
    if query.touchpoint_id is not None:
        stmt = stmt.where(Click.touchpoint_id == query.touchpoint_id)
    if query.link_id is not None:
        stmt = stmt.where(Click.link_id == query.link_id)
    if not query.bots:
        stmt = stmt.where(Click.is_bot.is_(False))
    if not query.tests:
        # A bot's fetch before go-live is a bot click, as the rollups count it.
        stmt = stmt.where(or_(Click.is_test.is_(False), Click.is_bot.is_(True)))
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
        return func.coalesce(Click.referrer_site, "")
    if dimension == "referrer_host":
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
    if dimension == "country":
        return country_name(value)
    return value
