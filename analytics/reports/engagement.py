"""Engagement per touchpoint, over the rollups (visitors by stage: `analytics.reports.stages`).

Reports read rollups only, never the raw clicks, so that they cost the same at ten thousand
clicks or ten million. A window is cut into a few runs of rollup rows, added or taken away:
whole months, weeks and days from `touchpoint_stats`, and hours from `link_hourly_stats` only at
the edges of a window that starts or ends inside a day (see `plan_pieces`). Figures are sums of
the rollups over whole hours:
- `human_clicks` are human clicks, scans included; `bot_clicks` are bots and link previews;
  `clicks` are the human clicks, and the bots too when a query asks for them (`bots=include`);
- `scans` and `visitors` are always human;
- `visitors` adds up each link's unique visitors of each day: a visitor who comes back on another
  day, or who clicks two links, counts again (visitor ids rotate daily, by design);
- an archived touchpoint keeps its figures: its clicks count in every window they happened in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache, partial
from typing import Any, ClassVar, Literal

from sqlalchemy import Subquery, asc, case, desc, func, literal_column, or_, select, union_all
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from analytics.reports import conversions, journeys, stages
from analytics.reports.conversions import OUTCOME_COLUMNS
from analytics.reports.periods import clear_plan_caches
from analytics.reports.query import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Order,
    RankBy,
    ReportQuery,
    check_limit,
)
from analytics.reports.rates import change, rate
from analytics.reports.refs import TouchpointRef
from analytics.reports.render import ReportHead, TouchpointRefOut, as_json, flat_row, head
from analytics.reports.sql import (
    AnySelect,
    by_key,
    is_postgres,
    link_live_in,
    piece_rows,
    plan,
    run_report,
    touchpoint_existed_in,
)
from analytics.reports.sql import stage_id as find_stage_id
from shortener.errors import InvalidParameterError
from shortener.models import Link, Placement, Touchpoint
from shortener.schemas import TimeText

TOUCHPOINT_FIGURES = (
    "human", "bots", "scanners", "scans", "visitors", "previous_human", "previous_bots",
    "last_click_at", "activity", "current_activity",
)


# --- results -----------------------------------------------------------------------------------
# Field order is the order of the JSON objects and of the CSV columns.


@dataclass(frozen=True, slots=True)
class TouchpointRow:
    touchpoint: TouchpointRef
    archived: bool
    clicks: int  # human clicks, and bots when the query includes them
    human_clicks: int
    bot_clicks: int
    scanner_clicks: int  # of the bot clicks, mail scanners' (bot_reason "scanner:…")
    scans: int
    scan_share: float | None  # of the human clicks, with its 95 % interval
    scan_share_low: float | None
    scan_share_high: float | None
    visitors: int
    links: int  # links live at some time in the window (matching the stage and campaign)
    share: float  # of the clicks of every touchpoint listed, 4 places
    previous_clicks: int
    previous_human_clicks: int
    change: float | None  # relative to previous_clicks; None unless comparable
    comparable: bool  # both windows have enough human clicks to compare
    last_click_at: datetime | None  # latest human click in the window
    reached: int | None  # people reached by placements begun before the window ended
    per_1k_reached: float | None  # visitors per 1,000 people reached, with its 95 % interval
    per_1k_reached_low: float | None
    per_1k_reached_high: float | None
    # Journeys with a touch here in the window, and those with a later touch at a later stage.
    journeys: int = 0
    moved_on: int = 0
    moved_on_rate: float | None = None
    moved_on_low: float | None = None
    moved_on_high: float | None = None
    # What came of it (analytics.reports.conversions): conversions by event, revenue by
    # currency, conversions per visitor.
    conversions: dict[str, int] = field(default_factory=dict)
    revenue: dict[str, str] = field(default_factory=dict)
    conversion_rate: float | None = None
    conversion_rate_low: float | None = None
    conversion_rate_high: float | None = None


class TouchpointRowOut(TypedDict):
    """A `TouchpointRow` as JSON."""

    touchpoint: TouchpointRefOut
    archived: bool
    clicks: int
    human_clicks: int
    bot_clicks: int
    scanner_clicks: int
    scans: int
    scan_share: float | None
    scan_share_low: float | None
    scan_share_high: float | None
    visitors: int
    links: int
    share: float
    previous_clicks: int
    previous_human_clicks: int
    change: float | None
    comparable: bool
    last_click_at: TimeText | None
    reached: int | None
    per_1k_reached: float | None
    per_1k_reached_low: float | None
    per_1k_reached_high: float | None
    journeys: int
    moved_on: int
    moved_on_rate: float | None
    moved_on_low: float | None
    moved_on_high: float | None
    conversions: dict[str, int]
    revenue: dict[str, str]
    conversion_rate: float | None
    conversion_rate_low: float | None
    conversion_rate_high: float | None


class TouchpointReportOut(ReportHead):
    order: Order
    by: RankBy
    empty: bool
    without_reach: int
    rows: list[TouchpointRowOut]


LISTED_TOTALS = (
    "all_human", "all_bots", "all_scanners", "all_scans", "all_visitors", "all_previous_human",
    "listed", "clicked",
)


@dataclass(frozen=True, slots=True)
class ListedTotals:
    """The sums over every touchpoint the report lists, those past its limit included."""

    human_clicks: int = 0
    bot_clicks: int = 0
    scanner_clicks: int = 0
    scans: int = 0
    visitors: int = 0
    previous_human_clicks: int = 0
    touchpoints: int = 0
    clicked: int = 0  # touchpoints with clicks (as counted) in the window


@dataclass(frozen=True, slots=True)
class TouchpointReport:
    kind: ClassVar[str] = "touchpoints"
    csv_header: ClassVar[tuple[str, ...]] = (
        "touchpoint_key", "touchpoint_name", "channel", "archived", "clicks", "human_clicks",
        "bot_clicks", "scanner_clicks", "scans", "scan_share", "scan_share_low",
        "scan_share_high", "visitors", "links", "share", "previous_clicks",
        "previous_human_clicks", "change", "comparable", "last_click_at", "reached",
        "per_1k_reached", "per_1k_reached_low", "per_1k_reached_high", "journeys", "moved_on",
        "moved_on_rate", "moved_on_low", "moved_on_high", *OUTCOME_COLUMNS,
    )

    query: ReportQuery
    order: Order
    by: RankBy
    rows: tuple[TouchpointRow, ...]
    empty: bool  # no click at all in the window (or it has not begun): nothing to rank
    listed: ListedTotals = ListedTotals()

    @property
    def without_reach(self) -> int:
        """Rows with no exposure to rate them by (listed last when ranked by the rate)."""
        return sum(1 for row in self.rows if row.reached is None)

    def to_json(self) -> TouchpointReportOut:
        return {
            **head(self.query),
            "order": self.order,
            "by": self.by,
            "empty": self.empty,
            "without_reach": self.without_reach,
            "rows": as_json(self.rows),
        }

    def csv_rows(self) -> Iterable[Sequence[Any]]:
        return (flat_row(row) for row in self.rows)


# --- per touchpoint ------------------------------------------------------------------------------


def touchpoint_report(
    session: Session,
    query: ReportQuery,
    *,
    order: Order = "most",
    by: RankBy = "clicks",
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> TouchpointReport:
    """Engagement per touchpoint, most engaged first (or least: zero-click touchpoints first);
    `limit` rows from the `offset`-th on.

    A touchpoint is listed when it existed at some time in the window (made before it ended, not
    archived before it began) or had clicks in it, with zeros when it had none; with a stage or
    campaign filter, only those with a link there live in the window, or clicks there in either
    window. Ranked by clicks (ties: visitors, then key) or by visitors per 1,000 reached (those
    without exposure last). A window without any click ranks nothing as most engaged.
    """
    if order not in ("most", "least"):
        raise InvalidParameterError("order", f"must be most or least, not {order!r}")
    check_limit(limit)
    if query.empty:
        return TouchpointReport(query=query, order=order, by=by, rows=(), empty=True)
    stage = find_stage_id(session, query.stage) if query.stage else None
    # Ranked by the moved-on rate, every touchpoint is read and ranked here, after the rollups.
    sql_by, sql_limit, sql_offset = (
        ("clicks", MAX_LIMIT, 0) if by == "moved_on" else (by, limit, offset)
    )
    statement = partial(
        _touchpoint_statement, query, stage, order, sql_by, sql_limit,
        postgres=is_postgres(session), offset=sql_offset,
    )
    found = run_report(session, query, statement)
    rows, listed, empty = _parsed(found)
    if empty and order == "most":
        rows = []
    if journeys.journeys_touched(session, query):
        rows = _with_journeys(session, query, rows)
        if by == "moved_on":
            rows = _by_moved_on(rows, order)
    if by == "moved_on":  # read to MAX_LIMIT above, with journeys or without
        rows = rows[offset:offset + limit]
    rows = _with_outcomes(session, query, rows)
    return TouchpointReport(
        query=query, order=order, by=by, rows=tuple(rows), empty=empty, listed=listed
    )


def most_and_least(
    session: Session, query: ReportQuery, *, limit: int = DEFAULT_LIMIT
) -> tuple[TouchpointReport, TouchpointReport]:
    """The touchpoint reports ranked by clicks, most and least engaged first (as
    `touchpoint_report` gives them), from one reading of the rollups: the dashboard's tables."""
    check_limit(limit)
    if query.empty:
        return (
            TouchpointReport(query=query, order="most", by="clicks", rows=(), empty=True),
            TouchpointReport(query=query, order="least", by="clicks", rows=(), empty=True),
        )
    stage = find_stage_id(session, query.stage) if query.stage else None
    statement = partial(
        _touchpoint_statement, query, stage, "both", "clicks", limit,
        postgres=is_postgres(session),
    )
    found = run_report(session, query, statement)
    places = [(int(row[-2]), int(row[-1])) for row in found]
    rows, listed, empty = _parsed([row[:-2] for row in found])
    if journeys.journeys_touched(session, query):
        rows = _with_journeys(session, query, rows)
    rows = _with_outcomes(session, query, rows)

    def ranked(side: int) -> tuple[TouchpointRow, ...]:
        placed = sorted((place[side], row) for place, row in zip(places, rows, strict=True)
                        if place[side] <= limit)
        return tuple(row for _, row in placed)

    most = () if empty else ranked(0)  # a window without any click ranks nothing as most
    return (
        TouchpointReport(query=query, order="most", by="clicks", rows=most, empty=empty,
                         listed=listed),
        TouchpointReport(query=query, order="least", by="clicks", rows=ranked(1), empty=empty,
                         listed=listed),
    )


def _parsed(found: Sequence[Any]) -> tuple[list[TouchpointRow], ListedTotals, bool]:
    """The rows of the touchpoint statement, the sums of all listed, and whether the window
    holds no click at all."""
    width = len(found[0]) - len(LISTED_TOTALS) if found else 0
    rows = [_touchpoint_row(*row[:width]) for row in found]
    listed = ListedTotals(*(int(n or 0) for n in found[0][width:])) if found else ListedTotals()
    # The window's total (taken before LIMIT), not this page's: a page of the least engaged
    # may hold no click while the window does.
    empty = not any(int(row[width - 1] or 0) for row in found)
    return rows, listed, empty


def _with_journeys(
    session: Session, query: ReportQuery, rows: list[TouchpointRow]
) -> list[TouchpointRow]:
    figures = journeys.moved_on(session, query)
    ids = _ids(session, [row.touchpoint.key for row in rows])
    found = []
    for row in rows:
        moved = figures.get(ids[row.touchpoint.key])
        if moved is not None:
            row = replace(
                row, journeys=moved.journeys, moved_on=moved.moved_on,
                moved_on_rate=moved.rate, moved_on_low=moved.low, moved_on_high=moved.high,
            )
        found.append(row)
    return found


def _with_outcomes(
    session: Session, query: ReportQuery, rows: list[TouchpointRow]
) -> list[TouchpointRow]:
    found = conversions.outcomes_by(session, query, "touchpoint")
    ids = _ids(session, [row.touchpoint.key for row in rows])
    return [
        replace(row, **conversions.outcome_fields(found.get(ids[row.touchpoint.key]), row.visitors))
        for row in rows
    ]


def _ids(session: Session, keys: list[str]) -> dict[str, int]:
    if not keys:
        return {}
    found = session.execute(select(Touchpoint.key, Touchpoint.id).where(Touchpoint.key.in_(keys)))
    return {key: touchpoint_id for key, touchpoint_id in found}


def _by_moved_on(rows: list[TouchpointRow], order: Order) -> list[TouchpointRow]:
    """The share of journeys moved on, highest (or lowest: where journeys stall) first;
    touchpoints without journeys last."""
    rated = [row for row in rows if row.moved_on_rate is not None]
    sign = -1 if order == "most" else 1
    rated.sort(key=lambda row: (sign * (row.moved_on_rate or 0.0), sign * row.journeys,
                                row.touchpoint.key))
    return rated + [row for row in rows if row.moved_on_rate is None]


def touchpoint_figures(session: Session, query: ReportQuery) -> TouchpointRow | None:
    """The row of the query's touchpoint (`query.touchpoint_id`) as the touchpoint report shows
    it, its share taken of every touchpoint listed in the window (not of itself alone); None
    when the window does not list it."""
    found = touchpoint_report(session, query, order="least", limit=1).rows
    if not found:
        return None
    everyone = replace(query, touchpoint_id=None)
    stage = find_stage_id(session, query.stage) if query.stage else None
    statement = partial(
        _touchpoint_statement, everyone, stage, "most", "clicks", 1, postgres=is_postgres(session)
    )
    top = run_report(session, everyone, statement)
    total = int(top[0][-1 - len(LISTED_TOTALS)] or 0) if top else 0
    row = found[0]
    return replace(row, share=round(row.clicks / total, 4) if total else 0.0)


def _touchpoint_row(
    tp: Touchpoint,
    human: int,
    bots: int,
    scanners: int,
    clicks: int,
    scans: int,
    visitors: int,
    links: int,
    previous_human: int,
    previous_clicks: int,
    last: datetime | None,
    reached: int | None,
    total: int,
) -> TouchpointRow:
    human, bots, clicks, visitors = int(human), int(bots), int(clicks), int(visitors)
    previous_clicks = int(previous_clicks)
    scan_share, scan_low, scan_high = rate(int(scans), human)
    per_1k, per_1k_low, per_1k_high = rate(visitors, reached, scale=1000, places=2)
    moved, comparable = change(
        clicks, previous_clicks, current_human=human, previous_human=int(previous_human)
    )
    return TouchpointRow(
        touchpoint=TouchpointRef(tp.key, tp.name, tp.channel),
        archived=tp.archived,
        clicks=clicks,
        human_clicks=human,
        bot_clicks=bots,
        scanner_clicks=int(scanners),
        scans=int(scans),
        scan_share=scan_share,
        scan_share_low=scan_low,
        scan_share_high=scan_high,
        visitors=visitors,
        links=int(links),
        share=round(clicks / int(total), 4) if total else 0.0,
        previous_clicks=previous_clicks,
        previous_human_clicks=int(previous_human),
        change=moved,
        comparable=comparable,
        last_click_at=last,
        reached=int(reached) if reached else None,
        per_1k_reached=per_1k,
        per_1k_reached_low=per_1k_low,
        per_1k_reached_high=per_1k_high,
    )


@lru_cache(maxsize=128)
def _touchpoint_statement(
    query: ReportQuery,
    stage_id: int | None,
    order: Order | Literal["both"],
    by: RankBy,
    limit: int,
    open_end: bool,
    *,
    postgres: bool,
    offset: int = 0,
) -> AnySelect:
    """The touchpoint report in one statement; kept, as the same report is asked for again and
    again (a dashboard's, up to the current hour)."""
    pieces = plan(query, with_previous=True, open_end=open_end)
    rows = union_all(
        *(piece_rows(p, query, stage_id, TOUCHPOINT_FIGURES) for p in pieces)
    ).subquery()
    totals = (
        select(
            rows.c.touchpoint_id,
            *(
                (func.max if name == "last_click_at" else func.sum)(rows.c[name]).label(name)
                for name in TOUCHPOINT_FIGURES
            ),
        )
        .group_by(rows.c.touchpoint_id)
        .subquery()
    )
    return _touchpoint_rows(
        query, stage_id, totals, order, by, limit, postgres=postgres, offset=offset
    )


def _reach(query: ReportQuery) -> Subquery:
    """People reached per touchpoint by the placements begun before the window ended."""
    last_day = (query.end - timedelta(hours=1)).astimezone(query.zone).date()
    return (
        select(Placement.touchpoint_id, func.sum(Placement.count).label("reached"))
        .where(Placement.starts_on <= last_day)
        .group_by(Placement.touchpoint_id)
        .subquery()
    )


def _touchpoint_rows(
    query: ReportQuery,
    stage_id: int | None,
    totals: Subquery,
    order: Order | Literal["both"],
    by: RankBy,
    limit: int,
    *,
    postgres: bool,
    offset: int = 0,
) -> AnySelect:
    live = select(func.count().label("links")).where(link_live_in(query))
    if stage_id is not None:
        live = live.where(Link.stage_id == stage_id)
    if query.campaign is not None:
        live = live.where(Link.campaign == query.campaign)

    human = func.coalesce(totals.c.human, 0)
    bots = func.coalesce(totals.c.bots, 0)
    clicks = human + bots if query.bots else human
    previous_human = func.coalesce(totals.c.previous_human, 0)
    previous = previous_human + func.coalesce(totals.c.previous_bots, 0) if query.bots else (
        previous_human
    )
    visitors = func.coalesce(totals.c.visitors, 0)
    reach = _reach(query)
    # A LEFT JOIN from the touchpoints: those without clicks are rows too, and the window sum
    # (taken before LIMIT) makes each share one of all touchpoints listed, not of the page.
    stmt = (
        select(
            Touchpoint.id.label("id"),
            human.label("human"),
            bots.label("bots"),
            func.coalesce(totals.c.scanners, 0).label("scanners"),
            clicks.label("clicks"),
            func.coalesce(totals.c.scans, 0).label("scans"),
            visitors.label("visitors"),
            previous_human.label("previous_human"),
            previous.label("previous_clicks"),
            totals.c.last_click_at,
            reach.c.reached,
            func.sum(clicks).over().label("total"),
            # The sums of every touchpoint listed, taken before LIMIT too: `ListedTotals`.
            func.sum(human).over().label("all_human"),
            func.sum(bots).over().label("all_bots"),
            func.sum(func.coalesce(totals.c.scanners, 0)).over().label("all_scanners"),
            func.sum(func.coalesce(totals.c.scans, 0)).over().label("all_scans"),
            func.sum(visitors).over().label("all_visitors"),
            func.sum(previous_human).over().label("all_previous_human"),
            func.count().over().label("listed"),
            func.count(case((clicks > 0, 1))).over().label("clicked"),
        )
        .outerjoin(totals, totals.c.touchpoint_id == Touchpoint.id)
        .outerjoin(reach, reach.c.touchpoint_id == Touchpoint.id)
        .where(or_(touchpoint_existed_in(query), totals.c.current_activity > 0))
    )
    if query.channel is not None:
        stmt = stmt.where(Touchpoint.channel == query.channel)
    if query.touchpoint_id is not None:
        stmt = stmt.where(Touchpoint.id == query.touchpoint_id)
    filtered = stage_id is not None or query.campaign is not None
    if filtered:
        links = live.add_columns(Link.touchpoint_id).group_by(Link.touchpoint_id).subquery()
        # Runs added and taken away can leave a touchpoint a row of zeros: clicks of any kind
        # in either window are what make it one with clicks there.
        stmt = stmt.outerjoin(links, links.c.touchpoint_id == Touchpoint.id).where(
            or_(links.c.touchpoint_id.is_not(None), totals.c.activity > 0)
        )
        stmt = stmt.add_columns(func.coalesce(links.c.links, 0).label("links"))
    ranks: list[Any] = []
    if order == "both":  # the first `limit` rows of either ranking, each row with its places
        ranked = stmt.add_columns(*(
            func.row_number().over(
                order_by=_ranking(clicks, visitors, reach.c.reached, side, by, postgres)
            ).label(f"{side}_rank") for side in ("most", "least")
        )).subquery()
        page = select(ranked).where(
            or_(ranked.c.most_rank <= limit, ranked.c.least_rank <= limit)
        ).subquery()
        ranks = [page.c.most_rank, page.c.least_rank]
    else:
        ranking = _ranking(clicks, visitors, reach.c.reached, order, by, postgres)
        page = stmt.order_by(*ranking).offset(offset).limit(limit).subquery()
    # Without a filter every live link counts: counted for the page only, not for every touchpoint.
    n_links = page.c.links if filtered else live.where(
        Link.touchpoint_id == Touchpoint.id
    ).scalar_subquery()
    return (
        select(
            Touchpoint,
            page.c.human,
            page.c.bots,
            page.c.scanners,
            page.c.clicks,
            page.c.scans,
            page.c.visitors,
            n_links,
            page.c.previous_human,
            page.c.previous_clicks,
            page.c.last_click_at,
            page.c.reached,
            page.c.total,
            *(page.c[name] for name in LISTED_TOTALS),
            *ranks,
        )
        .join(page, page.c.id == Touchpoint.id)
        .order_by(*ranks[:1] or _ranking(
            page.c.clicks, page.c.visitors, page.c.reached, order, by, postgres  # type: ignore[arg-type]
        ))
    )


def _ranking(
    clicks: Any, visitors: Any, reached: Any, order: Order, by: RankBy, postgres: bool
) -> list[Any]:
    """Most (or least) clicks, then visitors, then the key; by the rate first when asked, with
    touchpoints that have no exposure to rate them by last."""
    direction = desc if order == "most" else asc
    ranking = [direction(clicks), direction(visitors), by_key(postgres)]
    if by == "per_1k_reached":
        per_reached = visitors * literal_column("1.0") / func.nullif(reached, 0)
        ranking.insert(0, direction(per_reached).nulls_last())
    return ranking


def clear_caches() -> None:
    """Forget the plans and statements kept for reports asked for again: the next report of any
    window is planned from scratch (what a benchmark of a first report needs)."""
    clear_plan_caches()
    _touchpoint_statement.cache_clear()
    stages.clear_caches()
