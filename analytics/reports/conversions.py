"""Conversions over a window: the figures the touchpoint, stage, link and campaign rows gain
(conversions by event, revenue by currency), and the conversions report (per touchpoint, with
the median time from click to conversion, and over time).

A conversion counts in the window it happened in (`occurred_at`), at the touchpoint, stage and
link of its click (or its coupon's touchpoint). Revenue is kept in millionths of a currency, so
every sum is exact; currencies are never added together.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field, WithJsonSchema
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from analytics.conversions import EVENT
from analytics.models import Conversion
from analytics.reports.query import ReportArgs, ReportQuery
from analytics.reports.rates import rate
from analytics.reports.refs import TouchpointRef, touchpoint_refs
from analytics.reports.render import ReportHead, TouchpointRefOut, as_json, head
from analytics.reports.sql import AnySelect, stage_id
from analytics.reports.timeseries import Interval, bucket_of, buckets_of
from shortener.models import Link, Touchpoint
from shortener.schemas import TimeText

By = Literal["touchpoint", "stage", "link", "campaign"]
MICROS = Decimal(1_000_000)


def _event(value: str) -> str:
    value = value.strip()
    if not EVENT.fullmatch(value):
        raise ValueError("must be an event name (a-z, 0-9, _ and -)")
    return value


# A report's `event` filter: the conversions of that event alone.
EventName = Annotated[
    str, AfterValidator(_event), WithJsonSchema({"type": "string", "pattern": f"^{EVENT.pattern}$"})
]


def money(micros: int) -> str:
    """Millionths of a currency as a decimal string with at least two places: 1250000 → 1.25."""
    value = (Decimal(micros) / MICROS).normalize()
    return f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else f"{value:f}"


@dataclass(frozen=True, slots=True)
class Outcomes:
    """What came of a row's clicks in a window."""

    conversions: dict[str, int] = field(default_factory=dict)  # by event
    revenue_micros: dict[str, int] = field(default_factory=dict)  # by currency

    @property
    def total(self) -> int:
        return sum(self.conversions.values())

    @property
    def revenue(self) -> dict[str, str]:
        return {currency: money(v) for currency, v in sorted(self.revenue_micros.items())}

    def revenue_text(self) -> str:
        """For CSV: `EUR 120.00; USD 3.50`."""
        return "; ".join(f"{currency} {v}" for currency, v in self.revenue.items())


NO_OUTCOMES = Outcomes()
# The fields every touchpoint, stage, link and campaign row ends with, and their CSV columns.
OUTCOME_COLUMNS = (
    "conversions", "revenue", "conversion_rate", "conversion_rate_low", "conversion_rate_high",
)


def outcome_fields(outcomes: Outcomes | None, visitors: int) -> dict[str, Any]:
    """A row's outcome fields: conversions by event, revenue by currency, and conversions per
    visitor with its 95 % interval."""
    found = outcomes or NO_OUTCOMES
    value, low, high = rate(found.total, visitors)
    return {
        "conversions": found.conversions, "revenue": found.revenue, "conversion_rate": value,
        "conversion_rate_low": low, "conversion_rate_high": high,
    }


def outcomes_by(session: Session, query: ReportQuery, by: By) -> dict[Any, Outcomes]:
    """Conversions and revenue of the window per touchpoint id, stage id, link id or campaign."""
    if query.empty:
        return {}
    column = {
        "touchpoint": Conversion.touchpoint_id, "stage": Conversion.stage_id,
        "link": Conversion.link_id, "campaign": Link.campaign,
    }[by]
    stmt = select(
        column, Conversion.event, Conversion.currency, func.count(),
        func.coalesce(func.sum(Conversion.value_micros), 0),
    ).group_by(column, Conversion.event, Conversion.currency)
    counts: dict[Any, Counter[str]] = defaultdict(Counter)
    revenue: dict[Any, Counter[str]] = defaultdict(Counter)
    rows = session.execute(filtered_conversions(session, stmt, query))
    for key, event, currency, n, micros in rows:
        counts[key][event] += int(n)
        if currency is not None:
            revenue[key][currency] += int(micros)
    return {
        key: Outcomes(dict(sorted(counts[key].items())), dict(revenue[key])) for key in counts
    }


def filtered_conversions(session: Session, stmt: AnySelect, query: ReportQuery) -> AnySelect:
    """Narrowed to the window and the filters: a stage or campaign filter keeps only the
    conversions of clicks (a coupon has neither)."""
    stmt = stmt.outerjoin(Link, Link.id == Conversion.link_id).where(
        Conversion.occurred_at >= query.start, Conversion.occurred_at < query.end
    )
    if query.touchpoint_id is not None:
        stmt = stmt.where(Conversion.touchpoint_id == query.touchpoint_id)
    if query.link_id is not None:
        stmt = stmt.where(Conversion.link_id == query.link_id)
    if query.stage is not None:
        stmt = stmt.where(Conversion.stage_id == stage_id(session, query.stage))
    if query.channel is not None:
        stmt = stmt.join(Touchpoint, Touchpoint.id == Conversion.touchpoint_id).where(
            Touchpoint.channel == query.channel
        )
    if query.campaign is not None:
        stmt = stmt.where(Link.campaign == query.campaign)
    return stmt


# --- the conversions report ----------------------------------------------------------------------


class ConversionArgs(ReportArgs):
    event: EventName | None = Field(default=None, description="only conversions of this event")
    interval: Interval = Field(default="day", description="the series' buckets")


@dataclass(frozen=True, slots=True)
class ConversionRow:
    touchpoint: TouchpointRef
    conversions: dict[str, int]
    revenue: dict[str, str]
    # From the click to the conversion; None for coupons only (they have no click).
    median_seconds_to_convert: float | None


class ConversionRowOut(TypedDict):
    touchpoint: TouchpointRefOut
    conversions: dict[str, int]
    revenue: dict[str, str]
    median_seconds_to_convert: float | None


class ConversionReportOut(ReportHead):
    event: str | None
    interval: Interval
    conversions: dict[str, int]  # by event
    revenue: dict[str, str]  # by currency
    rows: list[ConversionRowOut]
    buckets: list[TimeText]
    series: dict[str, list[int]]  # conversions per bucket, by event


@dataclass(frozen=True, slots=True)
class ConversionReport:
    kind: ClassVar[str] = "conversions"
    csv_header: ClassVar[tuple[str, ...]] = (
        "touchpoint_key", "touchpoint_name", "channel", "conversions", "by_event", "revenue",
        "median_seconds_to_convert",
    )

    query: ReportQuery
    event: str | None
    interval: Interval
    totals: Outcomes
    rows: tuple[ConversionRow, ...]  # most conversions first
    buckets: tuple[datetime, ...]
    series: dict[str, tuple[int, ...]]  # conversions per bucket, by event

    def to_json(self) -> ConversionReportOut:
        return {
            **head(self.query),
            "event": self.event,
            "interval": self.interval,
            "conversions": self.totals.conversions,
            "revenue": self.totals.revenue,
            "rows": as_json(self.rows),
            "buckets": [bucket.isoformat() for bucket in self.buckets],
            "series": {event: list(counts) for event, counts in self.series.items()},
        }

    def csv_rows(self) -> Iterable[Sequence[Any]]:
        for row in self.rows:
            ref = row.touchpoint
            by_event = "; ".join(f"{event} {n}" for event, n in row.conversions.items())
            revenue = "; ".join(f"{currency} {v}" for currency, v in row.revenue.items())
            yield (ref.key, ref.name, ref.channel, sum(row.conversions.values()), by_event,
                   revenue, row.median_seconds_to_convert)


def conversion_report(
    session: Session, query: ReportQuery, *, event: str | None, interval: Interval
) -> ConversionReport:
    found = [] if query.empty else session.execute(filtered_conversions(session, select(
        Conversion.touchpoint_id, Conversion.event, Conversion.currency, Conversion.value_micros,
        Conversion.occurred_at, Conversion.clicked_at,
    ).where(*([Conversion.event == event] if event else [])), query)).all()
    refs = touchpoint_refs(session, {row[0] for row in found})
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    revenue: dict[int, Counter[str]] = defaultdict(Counter)
    delays: dict[int, list[float]] = defaultdict(list)
    buckets = tuple(buckets_of(query, interval))
    place = {bucket: i for i, bucket in enumerate(buckets)}
    series: dict[str, list[int]] = {}
    for touchpoint_id, name, currency, micros, occurred_at, clicked_at in found:
        counts[touchpoint_id][name] += 1
        if currency is not None:
            revenue[touchpoint_id][currency] += micros or 0
        if clicked_at is not None:
            delays[touchpoint_id].append((occurred_at - clicked_at).total_seconds())
        line = series.setdefault(name, [0] * len(buckets))
        at = place.get(bucket_of(occurred_at, query, interval))
        if at is not None:
            line[at] += 1
    rows = [
        ConversionRow(
            touchpoint=refs[tp],
            conversions=dict(sorted(counts[tp].items())),
            revenue=Outcomes({}, dict(revenue[tp])).revenue,
            median_seconds_to_convert=(
                round(statistics.median(delays[tp]), 1) if delays[tp] else None
            ),
        )
        for tp in counts
    ]
    rows.sort(key=lambda row: (-sum(row.conversions.values()), row.touchpoint.key))
    totals = Outcomes(
        dict(sorted(sum(counts.values(), Counter()).items())),
        dict(sum(revenue.values(), Counter())),
    )
    return ConversionReport(
        query=query, event=event, interval=interval, totals=totals, rows=tuple(rows),
        buckets=buckets, series={name: tuple(line) for name, line in sorted(series.items())},
    )
