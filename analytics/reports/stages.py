"""Visitors by stage, in journey order, over the rollups like the touchpoint report
(`analytics.reports.engagement`, whose figures it shares)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any, ClassVar

from sqlalchemy import case, func, select, union_all
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from analytics.reports import conversions
from analytics.reports.conversions import OUTCOME_COLUMNS
from analytics.reports.query import ReportQuery
from analytics.reports.refs import StageRef
from analytics.reports.render import ReportHead, StageRefOut, as_json, flat_row, head
from analytics.reports.sql import AnySelect, piece_rows, plan, run_report
from shortener.errors import InvalidParameterError
from shortener.models import Stage, Touchpoint

STAGE_FIGURES = ("stage_id", "human", "bots", "scans", "visitors")


@dataclass(frozen=True, slots=True)
class StageRow:
    stage: StageRef
    clicks: int
    human_clicks: int
    bot_clicks: int
    scans: int
    visitors: int
    touchpoints: int
    # The next stage's visitors over this stage's: a ratio of totals, not people moving on
    # (visitors of one stage are not followed to the next).
    next_stage_ratio: float | None
    # What came of it (analytics.reports.conversions): conversions by event, revenue by
    # currency, conversions per visitor.
    conversions: dict[str, int] = field(default_factory=dict)
    revenue: dict[str, str] = field(default_factory=dict)
    conversion_rate: float | None = None
    conversion_rate_low: float | None = None
    conversion_rate_high: float | None = None


class StageRowOut(TypedDict):
    """A `StageRow` as JSON."""

    stage: StageRefOut
    clicks: int
    human_clicks: int
    bot_clicks: int
    scans: int
    visitors: int
    touchpoints: int
    next_stage_ratio: float | None
    conversions: dict[str, int]
    revenue: dict[str, str]
    conversion_rate: float | None
    conversion_rate_low: float | None
    conversion_rate_high: float | None


class StageReportOut(ReportHead):
    rows: list[StageRowOut]


@dataclass(frozen=True, slots=True)
class StageReport:
    kind: ClassVar[str] = "stages"
    csv_header: ClassVar[tuple[str, ...]] = (
        "stage_key", "stage_name", "position", "clicks", "human_clicks", "bot_clicks", "scans",
        "visitors", "touchpoints", "next_stage_ratio", *OUTCOME_COLUMNS,
    )

    query: ReportQuery
    rows: tuple[StageRow, ...]

    def to_json(self) -> StageReportOut:
        return {**head(self.query), "rows": as_json(self.rows)}

    def csv_rows(self) -> Iterable[Sequence[Any]]:
        return (flat_row(row) for row in self.rows)


def stage_report(session: Session, query: ReportQuery) -> StageReport:
    """Every stage in journey order, zeros included: clicks and visitors at each, and the next
    stage's visitors as a ratio of this one's (totals of different people, not a funnel).

    `touchpoints` counts the distinct touchpoints with clicks (as counted) at that stage in the
    window. `next_stage_ratio` is the next stage's visitors / this stage's, 4 places; None for
    the last stage or a stage without visitors.
    """
    if query.stage is not None:
        raise InvalidParameterError("stage", "the stage report covers every stage; leave it out")
    if query.empty:  # nothing to plan: every stage, with zeros
        stages = session.scalars(select(Stage).order_by(Stage.position, Stage.id))
        found = [(stage, 0, 0, 0, 0, 0) for stage in stages]
    else:
        found = run_report(session, query, partial(_stage_statement, query))
    visitors = [int(v) for *_, v, _ in found]
    outcomes = conversions.outcomes_by(session, query, "stage")
    rows = []
    for i, (stage, human, bots, scans, visitor_count, touchpoints) in enumerate(found):
        human, bots = int(human), int(bots)
        following = visitors[i + 1] if i + 1 < len(visitors) else None
        rows.append(
            StageRow(
                stage=StageRef(stage.key, stage.name, stage.position),
                clicks=human + bots if query.bots else human,
                human_clicks=human,
                bot_clicks=bots,
                scans=int(scans),
                visitors=int(visitor_count),
                touchpoints=int(touchpoints),
                next_stage_ratio=_ratio(following, int(visitor_count)),
                **conversions.outcome_fields(outcomes.get(stage.id), int(visitor_count)),
            )
        )
    return StageReport(query=query, rows=tuple(rows))


@lru_cache(maxsize=128)
def _stage_statement(query: ReportQuery, open_end: bool) -> AnySelect:
    """The stage report in one statement; kept like the touchpoint report's."""
    pieces = plan(query, with_previous=False, open_end=open_end)
    rows = union_all(
        *(piece_rows(p, query, None, STAGE_FIGURES) for p in pieces)
    ).subquery()
    counted = rows.c.human + rows.c.bots if query.bots else rows.c.human
    # Per touchpoint first: a touchpoint counts at a stage when its sum there is positive.
    per_touchpoint = (
        select(
            rows.c.stage_id,
            func.sum(rows.c.human).label("human"),
            func.sum(rows.c.bots).label("bots"),
            func.sum(counted).label("counted"),
            func.sum(rows.c.scans).label("scans"),
            func.sum(rows.c.visitors).label("visitors"),
        )
        .join(Touchpoint, Touchpoint.id == rows.c.touchpoint_id)
        .group_by(rows.c.stage_id, rows.c.touchpoint_id)
    )
    if query.channel is not None:
        per_touchpoint = per_touchpoint.where(Touchpoint.channel == query.channel)
    each = per_touchpoint.subquery()
    totals = (
        select(
            each.c.stage_id,
            func.sum(each.c.human).label("human"),
            func.sum(each.c.bots).label("bots"),
            func.sum(each.c.scans).label("scans"),
            func.sum(each.c.visitors).label("visitors"),
            func.count(case((each.c.counted > 0, 1))).label("touchpoints"),
        )
        .group_by(each.c.stage_id)
        .subquery()
    )
    return (
        select(
            Stage,
            func.coalesce(totals.c.human, 0),
            func.coalesce(totals.c.bots, 0),
            func.coalesce(totals.c.scans, 0),
            func.coalesce(totals.c.visitors, 0),
            func.coalesce(totals.c.touchpoints, 0),
        )
        .outerjoin(totals, totals.c.stage_id == Stage.id)
        .order_by(Stage.position, Stage.id)
    )


def _ratio(following: int | None, visitors: int) -> float | None:
    if following is None or not visitors:
        return None
    return round(following / visitors, 4)


def clear_caches() -> None:
    _stage_statement.cache_clear()
