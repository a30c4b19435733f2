"""Multi-touch attribution: each conversion of the window shares its credit (1, and its value)
among the touchpoints of its journey's touches in the `lookback_days` before it.

- `last` / `first`: all of it to the last / first touch;
- `linear`: equal shares to every touch;
- `position`: 40 % to the first, 40 % to the last, 20 % split among the others (50/50 with two
  touches, all of it with one);
- `time_decay`: each touch weighs 2^(-age / 7 days) at the conversion's time, normalised.

Without a journey (journeys off, Do Not Track, a coupon) the converting click's touchpoint (or
the coupon's) gets all of it. Shares are worked out in millionths and handed out by largest
remainder, so one conversion's credits add up to exactly 1 and to exactly its value.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import Field
from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased
from typing_extensions import TypedDict

from analytics.models import Conversion, JourneyTouch
from analytics.reports.conversions import EventName, filtered_conversions, money
from analytics.reports.query import ReportArgs, ReportQuery
from analytics.reports.refs import TouchpointRef, touchpoint_refs
from analytics.reports.render import ReportHead, TouchpointRefOut, head
from shortener import schemas
from shortener.errors import InvalidParameterError

Model = Literal["last", "first", "linear", "position", "time_decay"]
MODELS: tuple[str, ...] = get_args(Model)
DEFAULT_LOOKBACK_DAYS = 30
MAX_LOOKBACK_DAYS = 365
HALF_LIFE = timedelta(days=7)
UNIT = 1_000_000  # a conversion's credit, in millionths


def parse_model(raw: str | None) -> Model:
    value = (raw or "last").strip()
    if value not in MODELS:
        raise InvalidParameterError("model", f"must be one of {', '.join(MODELS)}")
    return value  # type: ignore[return-value]


class AttributionArgs(ReportArgs):
    event: EventName | None = Field(default=None, description="only conversions of this event")
    model: Model = Field(default="last", description="how a conversion's credit is shared")
    lookback_days: Annotated[int, schemas.Between(1, MAX_LOOKBACK_DAYS)] = Field(
        default=DEFAULT_LOOKBACK_DAYS, description="how far back a journey's touches count"
    )


def weights(model: Model, ages: Sequence[timedelta]) -> list[float]:
    """The share of each touch (in time order; `ages` at the conversion's time), summing to 1."""
    n = len(ages)
    if model == "last":
        return [0.0] * (n - 1) + [1.0]
    if model == "first":
        return [1.0] + [0.0] * (n - 1)
    if model == "linear":
        return [1 / n] * n
    if model == "position":
        if n <= 2:
            return [1 / n] * n
        return [0.4] + [0.2 / (n - 2)] * (n - 2) + [0.4]
    decay = [2 ** -(age / HALF_LIFE) for age in ages]
    total = sum(decay)
    return [d / total for d in decay]


def split(amount: int, shares: Sequence[float]) -> list[int]:
    """`amount` in whole parts proportional to `shares`, adding up to exactly `amount`: the
    floors, then one more to the largest remainders (the earliest first among equals)."""
    exact = [amount * share for share in shares]
    parts = [int(x) for x in exact]
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in by_remainder[: amount - sum(parts)]:
        parts[i] += 1
    return parts


@dataclass(frozen=True, slots=True)
class AttributionRow:
    touchpoint: TouchpointRef
    conversions: float  # credited: a decimal, to six places
    revenue: dict[str, str]  # credited, by currency


class AttributionRowOut(TypedDict):
    touchpoint: TouchpointRefOut
    conversions: float  # credited
    revenue: dict[str, str]  # credited, by currency


class AttributionReportOut(ReportHead):
    event: str | None
    model: Model
    lookback_days: int
    conversions: int
    with_journey: int
    rows: list[AttributionRowOut]


@dataclass(frozen=True, slots=True)
class AttributionReport:
    kind: ClassVar[str] = "attribution"
    csv_header: ClassVar[tuple[str, ...]] = (
        "touchpoint_key", "touchpoint_name", "channel", "conversions", "revenue",
    )

    query: ReportQuery
    event: str | None
    model: Model
    lookback_days: int
    conversions: int  # the conversions shared out
    with_journey: int  # of them, those shared along a journey
    rows: tuple[AttributionRow, ...]  # most credited first

    def to_json(self) -> AttributionReportOut:
        return {
            **head(self.query), "event": self.event, "model": self.model,
            "lookback_days": self.lookback_days, "conversions": self.conversions,
            "with_journey": self.with_journey,
            "rows": [
                {"touchpoint": {"key": r.touchpoint.key, "name": r.touchpoint.name,
                                "channel": r.touchpoint.channel},
                 "conversions": r.conversions, "revenue": r.revenue}
                for r in self.rows
            ],
        }

    def csv_rows(self) -> Iterable[Sequence[Any]]:
        for row in self.rows:
            ref = row.touchpoint
            revenue = "; ".join(f"{currency} {v}" for currency, v in row.revenue.items())
            yield ref.key, ref.name, ref.channel, row.conversions, revenue


def attribution(
    session: Session, query: ReportQuery, *, event: str | None, model: Model, lookback_days: int
) -> AttributionReport:
    conversions = _conversions(session, query, event)
    journeys = _journey_touches(session, conversions, timedelta(days=lookback_days))
    credit: dict[int, int] = defaultdict(int)
    revenue: dict[tuple[int, str], int] = defaultdict(int)
    followed = 0
    for conversion_id, occurred_at, touchpoint_id, micros, currency in conversions:
        touches = journeys.get(conversion_id) or [(occurred_at, touchpoint_id)]
        followed += conversion_id in journeys
        shares = weights(model, [occurred_at - at for at, _ in touches])
        for (_, tp), part in zip(touches, split(UNIT, shares), strict=True):
            if part:
                credit[tp] += part
        if micros and currency:
            for (_, tp), part in zip(touches, split(micros, shares), strict=True):
                if part:
                    revenue[(tp, currency)] += part
    refs = touchpoint_refs(session, set(credit))
    rows = [
        AttributionRow(
            touchpoint=refs[tp],
            conversions=round(units / UNIT, 6),
            revenue={cur: money(v) for (t, cur), v in sorted(revenue.items()) if t == tp},
        )
        for tp, units in credit.items()
    ]
    rows.sort(key=lambda row: (-row.conversions, row.touchpoint.key))
    return AttributionReport(
        query=query, event=event, model=model, lookback_days=lookback_days,
        conversions=len(conversions), with_journey=followed, rows=tuple(rows),
    )


def _conversions(
    session: Session, query: ReportQuery, event: str | None
) -> list[tuple[str, datetime, int, int | None, str | None]]:
    if query.empty:
        return []
    stmt = select(
        Conversion.id, Conversion.occurred_at, Conversion.touchpoint_id,
        Conversion.value_micros, Conversion.currency,
    )
    if event:
        stmt = stmt.where(Conversion.event == event)
    return [tuple(row) for row in session.execute(filtered_conversions(session, stmt, query))]


def _journey_touches(
    session: Session, conversions: Sequence[tuple[Any, ...]], lookback: timedelta
) -> dict[str, list[tuple[datetime, int]]]:
    """Per conversion of a click with a journey: its journey's touches in the lookback before
    it, in time order (touchpoint ids)."""
    ids = [row[0] for row in conversions]
    occurred = {row[0]: row[1] for row in conversions}
    found: dict[str, list[tuple[datetime, int]]] = {}
    converting = aliased(JourneyTouch)
    for start in range(0, len(ids), 500):
        rows = session.execute(
            select(Conversion.id, JourneyTouch.touched_at, JourneyTouch.touchpoint_id)
            .join(converting, converting.click_id == Conversion.click_id)
            .join(JourneyTouch, and_(
                JourneyTouch.journey_id == converting.journey_id,
                JourneyTouch.touched_at <= Conversion.occurred_at,
            ))
            .where(Conversion.id.in_(ids[start : start + 500]))
            .order_by(Conversion.id, JourneyTouch.touched_at, JourneyTouch.click_id)
        )
        for conversion_id, touches in groupby(rows, key=lambda row: row[0]):
            kept = [(at, tp) for _, at, tp in touches
                    if occurred[conversion_id] - at <= lookback]
            if kept:
                found[conversion_id] = kept
    return found
