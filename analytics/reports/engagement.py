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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache, partial
from typing import Any, ClassVar

from sqlalchemy import Subquery, asc, case, desc, func, or_, select, union_all
from sqlalchemy.orm import Session

from analytics.reports.periods import clear_plan_caches
from analytics.reports.query import DEFAULT_LIMIT, Order, ReportQuery, check_limit
from analytics.reports.render import as_json, flat_row, head
from analytics.reports.sql import (
    AnySelect,
    by_key,
    is_postgres,
    piece_rows,
    plan,
    run_report,
)
from analytics.reports.sql import (
    stage_id as find_stage_id,
)
from shortener.errors import InvalidParameterError
from shortener.models import Link, Stage, Touchpoint

STAGE_FIGURES = ("stage_id", "clicks", "scans", "visitors")


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
        return {**head(self.query), "order": self.order, "rows": as_json(self.rows)}

    def csv_rows(self) -> Iterable[Sequence[Any]]:
        return (flat_row(row) for row in self.rows)


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
        return {**head(self.query), "rows": as_json(self.rows)}

    def csv_rows(self) -> Iterable[Sequence[Any]]:
        return (flat_row(row) for row in self.rows)


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
    check_limit(limit)
    stage = find_stage_id(session, query.stage) if query.stage else None
    statement = partial(
        _touchpoint_statement, query, stage, order, limit, postgres=is_postgres(session)
    )
    rows = []
    for tp, n_clicks, scans, n_visitors, n_links, previous, last, total in run_report(
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
    pieces = plan(query, query.previous_start, open_end=open_end)
    rows = union_all(*(piece_rows(p, query, stage_id, figures) for p in pieces)).subquery()
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
    page = stmt.order_by(direction(clicks), direction(visitors), by_key(postgres)).limit(limit)
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
        .order_by(direction(rows.c.clicks), direction(rows.c.visitors), by_key(postgres))
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
        for stage, c, s, v, t in run_report(session, query, partial(_stage_statement, query))
    ]
    rows = tuple(
        StageRow(ref, c, s, v, t, _drop(v, found[i + 1][3] if i + 1 < len(found) else None))
        for i, (ref, c, s, v, t) in enumerate(found)
    )
    return StageReport(query=query, rows=rows)


@lru_cache(maxsize=128)
def _stage_statement(query: ReportQuery, open_end: bool) -> AnySelect:
    """The stage report in one statement; kept like the touchpoint report's."""
    pieces = plan(query, query.start, open_end=open_end)
    rows = union_all(
        *(piece_rows(p, query, None, STAGE_FIGURES) for p in pieces)
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


def clear_caches() -> None:
    """Forget the plans and statements kept for reports asked for again: the next report of any
    period is planned from scratch (what a benchmark of a first report needs)."""
    clear_plan_caches()
    for cached in (_touchpoint_statement, _stage_statement):
        cached.cache_clear()


