"""Where clicks come from: device, OS, browser, country, referrer, scan or click.

Breakdowns read the raw clicks of the period with one GROUP BY, keeping the ten (or `limit`) most
frequent values: fine at the volumes a dashboard period holds today; daily dimension rollups take
over when that stops being true.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from sqlalchemy import Select, case, distinct, func, select
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from analytics.countries import country_name
from analytics.models import Click
from analytics.reports.query import ReportQuery, check_limit
from analytics.reports.render import ReportHead, head
from analytics.reports.sql import stage_id
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
    visitors: int  # distinct visitor ids, which rotate daily: a visitor per day
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
    check_limit(limit, MAX_LIMIT)
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
    """A select over the raw clicks narrowed to the window and the filters."""
    stmt = (
        stmt.select_from(Click)
        .join(Touchpoint, Touchpoint.id == Click.touchpoint_id)
        .where(Click.occurred_at >= query.start, Click.occurred_at < query.end)
    )
    if query.touchpoint_id is not None:
        stmt = stmt.where(Click.touchpoint_id == query.touchpoint_id)
    if query.link_id is not None:
        stmt = stmt.where(Click.link_id == query.link_id)
    if not query.bots:
        stmt = stmt.where(Click.is_bot.is_(False))
    if not query.tests:
        stmt = stmt.where(Click.is_test.is_(False))
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
