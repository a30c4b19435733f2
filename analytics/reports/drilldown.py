"""One touchpoint, one link or one campaign up close: the figures of the window and of the one it
is compared with, clicks over time, where the clicks came from, and the links behind them.

Per link, the figures are read from the hourly rollups; per touchpoint, they are the touchpoint
report's own row, so both agree with the reports to the click.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, ClassVar, cast

from sqlalchemy import and_, case, distinct, func, or_, select
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from analytics.models import DimensionStats as Days
from analytics.models import LinkHourlyStats as Stats
from analytics.reports import breakdowns, conversions, engagement, timeseries
from analytics.reports.breakdowns import ALL_DIMENSIONS, Breakdown, BreakdownRowOut, Dimension
from analytics.reports.conversions import OUTCOME_COLUMNS
from analytics.reports.engagement import TouchpointRowOut
from analytics.reports.query import ReportQuery
from analytics.reports.rates import change
from analytics.reports.render import Report, ReportHead, as_json, flat_row, head
from analytics.reports.sql import dimension_days, human_clicks, link_live_in, stage_id
from analytics.reports.timeseries import Interval, SeriesPartOut, Timeseries
from shortener.errors import InvalidParameterError, NotFoundError
from shortener.models import Link, Touchpoint
from shortener.schemas import TimeText

BREAKDOWN_ROWS = 10


@dataclass(frozen=True, slots=True)
class LinkRef:
    id: int
    slug: str
    domain: str
    touchpoint: str
    stage: str
    campaign: str | None
    archived: bool


@dataclass(frozen=True, slots=True)
class LinkRow:
    link: LinkRef
    clicks: int
    human_clicks: int
    bot_clicks: int
    scanner_clicks: int  # of the bot clicks, mail scanners'
    scans: int
    visitors: int
    previous_clicks: int
    change: float | None
    comparable: bool
    first_click_at: datetime | None
    last_click_at: datetime | None
    # What came of it (analytics.reports.conversions): conversions by event, revenue by
    # currency, conversions per visitor.
    conversions: dict[str, int] = field(default_factory=dict)
    revenue: dict[str, str] = field(default_factory=dict)
    conversion_rate: float | None = None
    conversion_rate_low: float | None = None
    conversion_rate_high: float | None = None


class LinkRefOut(TypedDict):
    id: int
    slug: str
    domain: str
    touchpoint: str
    stage: str
    campaign: str | None
    archived: bool


class LinkRowOut(TypedDict):
    """A `LinkRow` as JSON."""

    link: LinkRefOut
    clicks: int
    human_clicks: int
    bot_clicks: int
    scanner_clicks: int
    scans: int
    visitors: int
    previous_clicks: int
    change: float | None
    comparable: bool
    first_click_at: TimeText | None
    last_click_at: TimeText | None
    conversions: dict[str, int]
    revenue: dict[str, str]
    conversion_rate: float | None
    conversion_rate_low: float | None
    conversion_rate_high: float | None


class LinkTableOut(ReportHead):
    rows: list[LinkRowOut]


@dataclass(frozen=True, slots=True)
class LinkTable:
    kind: ClassVar[str] = "links"
    csv_header: ClassVar[tuple[str, ...]] = (
        "link_id", "slug", "domain", "touchpoint_key", "stage_key", "campaign", "archived",
        "clicks", "human_clicks", "bot_clicks", "scanner_clicks", "scans", "visitors",
        "previous_clicks", "change", "comparable", "first_click_at", "last_click_at",
        *OUTCOME_COLUMNS,
    )

    query: ReportQuery
    rows: tuple[LinkRow, ...]

    def to_json(self) -> LinkTableOut:
        return {**head(self.query), "rows": as_json(self.rows)}

    def csv_rows(self) -> Iterable[Sequence[Any]]:
        return (flat_row(row) for row in self.rows)


class TouchpointSubjectOut(TypedDict):
    key: str
    name: str
    channel: str
    kind: str | None
    exposure: int | None
    archived: bool


class DetailPartsOut(ReportHead):
    """What every drill-down answers besides its subject and its figures."""

    links: list[LinkRowOut]
    timeseries: SeriesPartOut
    breakdowns: dict[Dimension, list[BreakdownRowOut]]


class TouchpointDetailOut(DetailPartsOut):
    touchpoint: TouchpointSubjectOut
    figures: TouchpointRowOut | None  # None: the window does not list it


class LinkDetailOut(DetailPartsOut):
    link: LinkRefOut
    figures: LinkRowOut


class CampaignDetailOut(DetailPartsOut):
    campaign: str
    figures: CampaignRowOut


DetailOut = TouchpointDetailOut | LinkDetailOut | CampaignDetailOut


@dataclass(frozen=True, slots=True)
class Detail:
    """What a drill-down page shows; each part also downloads as CSV (`table=`)."""

    subject: dict[str, Any]  # the touchpoint, link or campaign, as the API shows it
    query: ReportQuery
    figures: Any  # a TouchpointRow, a LinkRow or a CampaignRow
    links: LinkTable
    series: Timeseries
    sources: Mapping[Dimension, Breakdown]

    def to_json(self) -> DetailOut:
        answer = {
            **head(self.query),
            **self.subject,
            "figures": as_json(self.figures),
            "links": as_json(self.links.rows),
            "timeseries": self.series.series_json(),
            "breakdowns": {
                dimension: found.rows_json() for dimension, found in self.sources.items()
            },
        }
        # The subject (its one key) and the figures are those of the detail's kind.
        return cast(DetailOut, answer)

    def table(self, name: str) -> Report:
        """One part of the page as a report of its own, for CSV."""
        if name == "links":
            return self.links
        if name == "timeseries":
            return self.series
        for dimension, found in self.sources.items():
            if name == dimension:
                return found
        tables = ", ".join(("links", "timeseries", *self.sources))
        raise InvalidParameterError("table", f"must be one of {tables}, not {name!r}")


def touchpoint_detail(
    session: Session, key: str, query: ReportQuery, *, interval: Interval = "day"
) -> Detail:
    touchpoint = _touchpoint(session, key)
    scoped = replace(query, touchpoint_id=touchpoint.id)
    figures = engagement.touchpoint_figures(session, scoped)
    about: TouchpointSubjectOut = {
        "key": touchpoint.key, "name": touchpoint.name, "channel": touchpoint.channel,
        "kind": touchpoint.kind, "exposure": touchpoint.exposure, "archived": touchpoint.archived,
    }
    return Detail(
        subject={"touchpoint": about},
        query=query,
        figures=figures,
        links=link_table(session, scoped),
        series=timeseries.timeseries(session, scoped, interval=interval, group_by="link"),
        sources=_sources(session, scoped),
    )


def link_detail(
    session: Session, link_id: int, query: ReportQuery, *, interval: Interval = "day"
) -> Detail:
    link = session.get(Link, link_id) if 0 < link_id <= 2**31 - 1 else None
    if link is None:
        raise NotFoundError(f"No link with id {link_id}.")
    scoped = replace(query, link_id=link.id)
    table = link_table(session, scoped)
    ref = _link_ref(link)
    return Detail(
        subject={"link": as_json(ref)},
        query=query,
        figures=table.rows[0] if table.rows else _no_clicks(ref),
        links=table,
        series=timeseries.timeseries(session, scoped, interval=interval, group_by="stage"),
        sources=_sources(session, scoped),
    )


def campaign_detail(
    session: Session, name: str, query: ReportQuery, *, interval: Interval = "day"
) -> Detail:
    scoped = replace(query, campaign=name)
    rows = campaign_report(session, scoped).rows
    found = next((row for row in rows if row.campaign == name), None)
    if found is None:
        raise NotFoundError(f"No campaign named {name!r} in this window.")
    return Detail(
        subject={"campaign": name},
        query=query,
        figures=found,
        links=link_table(session, scoped),
        series=timeseries.timeseries(session, scoped, interval=interval, group_by="touchpoint"),
        sources=_sources(session, scoped),
    )


# --- per link ------------------------------------------------------------------------------------


def link_table(session: Session, query: ReportQuery) -> LinkTable:
    """The links of the query's touchpoint, link or campaign: those live in the window, and
    those with clicks in it, most clicks first."""
    current = and_(Stats.hour >= query.start, Stats.hour < query.end)
    previous = and_(Stats.hour >= query.previous_start, Stats.hour < query.previous_end)

    def when(window: Any, value: Any) -> Any:
        return func.coalesce(func.sum(case((window, value), else_=0)), 0)

    figures = (
        select(
            Stats.link_id,
            when(current, human_clicks(Stats, query)).label("human"),
            when(current, Stats.bot_clicks).label("bots"),
            when(current, Stats.scanner_clicks).label("scanners"),
            when(current, Stats.scans).label("scans"),
            when(current, Stats.visitors).label("visitors"),
            when(previous, human_clicks(Stats, query)).label("previous_human"),
            when(previous, Stats.bot_clicks).label("previous_bots"),
            func.min(case((current, Stats.first_click_at))).label("first"),
            func.max(case((current, Stats.last_click_at))).label("last"),
        )
        .where(or_(current, previous))
        .group_by(Stats.link_id)
    )
    live = link_live_in(query)
    # The stage and channel filters narrow the links as they narrow every other part of a
    # drill-down: clicks at that stage (as at click time), and links there live in the window.
    if query.stage is not None:
        stage = stage_id(session, query.stage)
        figures = figures.where(Stats.stage_id == stage)
        live = and_(live, Link.stage_id == stage)
    if query.channel is not None:
        figures = figures.join(Touchpoint, Touchpoint.id == Stats.touchpoint_id).where(
            Touchpoint.channel == query.channel
        )
        live = and_(live, Link.touchpoint.has(Touchpoint.channel == query.channel))
    # Only the links listed are summed: not every link of the workspace, then most left out.
    if query.touchpoint_id is not None:
        figures = figures.where(Stats.link_id.in_(
            select(Link.id).where(Link.touchpoint_id == query.touchpoint_id)
        ))
    if query.link_id is not None:
        figures = figures.where(Stats.link_id == query.link_id)
    if query.campaign is not None:
        figures = figures.where(Stats.link_id.in_(
            select(Link.id).where(Link.campaign == query.campaign)
        ))
    found = figures.subquery()
    stmt = select(Link, found).outerjoin(found, found.c.link_id == Link.id).where(
        or_(live, found.c.human + found.c.bots > 0)
    )
    if query.touchpoint_id is not None:
        stmt = stmt.where(Link.touchpoint_id == query.touchpoint_id)
    if query.link_id is not None:
        stmt = stmt.where(Link.id == query.link_id)
    if query.campaign is not None:
        stmt = stmt.where(Link.campaign == query.campaign)
    outcomes = conversions.outcomes_by(session, query, "link")
    rows = []
    for (
        link, _, human, bots, scanners, scans, visitors, previous_human, previous_bots, first, last
    ) in session.execute(stmt):
        human, bots, previous_human = int(human or 0), int(bots or 0), int(previous_human or 0)
        clicks = human + bots if query.bots else human
        before = previous_human + int(previous_bots or 0) if query.bots else previous_human
        moved, comparable = change(
            clicks, before, current_human=human, previous_human=previous_human
        )
        rows.append(
            LinkRow(
                link=_link_ref(link), clicks=clicks, human_clicks=human, bot_clicks=bots,
                scanner_clicks=int(scanners or 0), scans=int(scans or 0),
                visitors=int(visitors or 0), previous_clicks=before,
                change=moved, comparable=comparable, first_click_at=first, last_click_at=last,
                **conversions.outcome_fields(outcomes.get(link.id), int(visitors or 0)),
            )
        )
    rows.sort(key=lambda row: (-row.clicks, -row.visitors, row.link.slug))
    return LinkTable(query=query, rows=tuple(rows))


# --- per campaign --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CampaignRow:
    campaign: str
    links: int  # live at some time in the window
    touchpoints: int  # of those links, and of the links clicked in the window
    clicks: int
    human_clicks: int
    bot_clicks: int
    scanner_clicks: int
    scans: int
    visitors: int
    first_click_at: datetime | None  # of the window
    last_click_at: datetime | None
    # What came of it (analytics.reports.conversions): conversions by event, revenue by
    # currency, conversions per visitor.
    conversions: dict[str, int] = field(default_factory=dict)
    revenue: dict[str, str] = field(default_factory=dict)
    conversion_rate: float | None = None
    conversion_rate_low: float | None = None
    conversion_rate_high: float | None = None


class CampaignRowOut(TypedDict):
    """A `CampaignRow` as JSON."""

    campaign: str
    links: int
    touchpoints: int
    clicks: int
    human_clicks: int
    bot_clicks: int
    scanner_clicks: int
    scans: int
    visitors: int
    first_click_at: TimeText | None
    last_click_at: TimeText | None
    conversions: dict[str, int]
    revenue: dict[str, str]
    conversion_rate: float | None
    conversion_rate_low: float | None
    conversion_rate_high: float | None


class CampaignReportOut(ReportHead):
    rows: list[CampaignRowOut]


@dataclass(frozen=True, slots=True)
class CampaignReport:
    kind: ClassVar[str] = "campaigns"
    csv_header: ClassVar[tuple[str, ...]] = (
        "campaign", "links", "touchpoints", "clicks", "human_clicks", "bot_clicks",
        "scanner_clicks", "scans", "visitors", "first_click_at", "last_click_at",
        *OUTCOME_COLUMNS,
    )

    query: ReportQuery
    rows: tuple[CampaignRow, ...]

    def to_json(self) -> CampaignReportOut:
        return {**head(self.query), "rows": as_json(self.rows)}

    def csv_rows(self) -> Iterable[Sequence[Any]]:
        return (flat_row(row) for row in self.rows)


def campaign_report(session: Session, query: ReportQuery) -> CampaignReport:
    """Per campaign (the links' campaign), most clicks first: its links and touchpoints, clicks,
    scans, visitors, and its first and last click of the window."""
    if query.empty:
        return CampaignReport(query=query, rows=())
    if query.whole_days and query.touchpoint_id is None and query.link_id is None:
        return _campaigns_of_days(session, query)
    per_link = link_table(session, replace(query, campaign=None))
    if query.campaign is not None:
        per_link = LinkTable(
            query, tuple(r for r in per_link.rows if r.link.campaign == query.campaign)
        )
    live = set(
        session.scalars(select(Link.id).where(link_live_in(query), Link.campaign.is_not(None)))
    )
    grouped: dict[str, list[LinkRow]] = {}
    for row in per_link.rows:
        # Any click counts a link in, a bot's too: its campaign's bot clicks include it.
        if row.link.campaign is not None and (
            row.link.id in live or row.human_clicks or row.bot_clicks
        ):
            grouped.setdefault(row.link.campaign, []).append(row)
    outcomes = conversions.outcomes_by(session, query, "campaign")
    rows = []
    for name, found in grouped.items():
        firsts = [r.first_click_at for r in found if r.first_click_at]
        lasts = [r.last_click_at for r in found if r.last_click_at]
        rows.append(
            CampaignRow(
                campaign=name,
                links=sum(1 for r in found if r.link.id in live),
                touchpoints=len({r.link.touchpoint for r in found}),
                clicks=sum(r.clicks for r in found),
                human_clicks=sum(r.human_clicks for r in found),
                bot_clicks=sum(r.bot_clicks for r in found),
                scanner_clicks=sum(r.scanner_clicks for r in found),
                scans=sum(r.scans for r in found),
                visitors=sum(r.visitors for r in found),
                first_click_at=min(firsts, default=None),
                last_click_at=max(lasts, default=None),
                **conversions.outcome_fields(
                    outcomes.get(name), sum(r.visitors for r in found)
                ),
            )
        )
    rows.sort(key=lambda row: (-row.clicks, -row.visitors, row.campaign))
    return CampaignReport(query=query, rows=tuple(rows))


def _campaigns_of_days(session: Session, query: ReportQuery) -> CampaignReport:
    """The campaign report over whole days, from `dimension_stats` (a click counts for the
    campaign its link had when clicked) and the links live in the window."""
    human = Days.clicks + Days.test_clicks if query.tests else Days.clicks
    figures = select(
        Days.campaign,
        func.sum(human),
        func.sum(Days.bot_clicks),
        func.sum(Days.scanner_clicks),
        func.sum(case((Days.value == "scan", human), else_=0)),
        func.sum(Days.visitors),
        func.min(Days.first_click_at),
        func.max(Days.last_click_at),
    ).where(Days.campaign != "")
    figures = dimension_days(session, figures, query, "source")
    found = {
        name: (int(h), int(b), int(sc), int(scans), int(v), first, last)
        for name, h, b, sc, scans, v, first, last in session.execute(
            figures.group_by(Days.campaign)
        )
    }
    live = select(Link.campaign, func.count(), func.count(distinct(Link.touchpoint_id))).where(
        link_live_in(query), Link.campaign.is_not(None)
    )
    if query.stage is not None:
        live = live.where(Link.stage_id == stage_id(session, query.stage))
    if query.channel is not None:
        live = live.where(Link.touchpoint.has(Touchpoint.channel == query.channel))
    if query.campaign is not None:
        live = live.where(Link.campaign == query.campaign)
    links = {
        name: (int(n), int(t)) for name, n, t in session.execute(live.group_by(Link.campaign))
    }
    outcomes = conversions.outcomes_by(session, query, "campaign")
    rows = []
    for name in found.keys() | links.keys():
        h, b, sc, scans, visitors, first, last = found.get(name, (0, 0, 0, 0, 0, None, None))
        if not (h or b) and name not in links:
            continue
        count, touchpoints = links.get(name, (0, 0))
        rows.append(
            CampaignRow(
                campaign=str(name), links=count, touchpoints=touchpoints,
                clicks=h + b if query.bots else h, human_clicks=h, bot_clicks=b,
                scanner_clicks=sc, scans=scans, visitors=visitors, first_click_at=first,
                last_click_at=last, **conversions.outcome_fields(outcomes.get(name), visitors),
            )
        )
    rows.sort(key=lambda row: (-row.clicks, -row.visitors, row.campaign))
    return CampaignReport(query=query, rows=tuple(rows))


# --- helpers -------------------------------------------------------------------------------------


def _touchpoint(session: Session, key: str) -> Touchpoint:
    found = session.scalars(select(Touchpoint).where(Touchpoint.key == key[:64])).one_or_none()
    if found is None:
        raise NotFoundError(f"No touchpoint with key '{key}'.")
    return found


def _link_ref(link: Link) -> LinkRef:
    return LinkRef(
        id=link.id, slug=link.slug, domain=link.domain, touchpoint=link.touchpoint.key,
        stage=link.stage.key, campaign=link.campaign, archived=link.archived,
    )


def _no_clicks(ref: LinkRef) -> LinkRow:
    return LinkRow(ref, 0, 0, 0, 0, 0, 0, 0, None, False, None, None)


def _sources(session: Session, query: ReportQuery) -> dict[Dimension, Breakdown]:
    return breakdowns.breakdowns(session, query, ALL_DIMENSIONS, limit=BREAKDOWN_ROWS)
