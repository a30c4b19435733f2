"""The analyst dashboard: the window's engagement per touchpoint, the funnel of journeys (or
visitors by stage, without journeys), the paths journeys take, the journey map (by clicks, or
by NPS), the survey answers, outcomes (conversions credited by an attribution model),
campaigns, clicks over time and where clicks come from. Every
table also downloads as CSV: the same query string with `format=csv&table=<name>`. Every
touchpoint, link and campaign named on it opens its own page (`analytics.detail_pages`) with the
same window and filters.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, Response, render_template, request, url_for
from sqlalchemy.orm import Session

from analytics import charts
from analytics.alert_panels import alert_panel
from analytics.feedback_panels import MapBy, feedback_panel, parse_map
from analytics.journey_panels import journey_panels
from analytics.outcome_panels import outcome_panel
from analytics.reports import attribution, conversions, drilldown, engagement, journeys
from analytics.reports import stages as stage_reports
from analytics.reports.breakdowns import (
    DIMENSION_NAMES,
    DIMENSIONS,
    MAX_LIMIT,
    breakdown,
    breakdowns,
)
from analytics.reports.feedback import feedback_report
from analytics.reports.journey_map import journey_map, nps_map
from analytics.reports.query import MAX_LIMIT as MAX_ROWS
from analytics.reports.query import ReportQuery, check_known
from analytics.reports.rates import change, rate
from analytics.reports.render import Report, csv_response
from analytics.reports.timeseries import (
    MAX_HOURLY_SPAN,
    GroupBy,
    Interval,
    Ranked,
    Timeseries,
    parse_group_by,
    parse_interval,
    timeseries,
)
from shortener import links, stages
from shortener.db import utcnow
from shortener.errors import InvalidParameterError
from shortener.models import Channel, Role
from shortener.nav import add_nav_item
from shortener.runtime import runtime
from shortener.signin import signed_in
from shortener.unit_of_work import report_session, rollback_request

bp = Blueprint("dashboard", __name__, template_folder="templates")

PRESETS = {"7d": 7, "30d": 30, "90d": 90}
PARAMETERS = frozenset(
    {"range", "from", "to", "stage", "channel", "campaign", "bots", "tests", "interval", "group_by",
     "funnel", "map", "model", "format", "table"}
)
# What a link to another analytics page carries: the window and the filters.
WINDOW = ("range", "from", "to", "stage", "channel", "campaign", "bots", "tests")
SIDE_BY_SIDE = 8  # touchpoints in each of the most and least engaged tables
CHART_SERIES = 6  # lines drawn; the rest are added up as "Other"
MAP_ROWS = 25  # touchpoints on the journey map, most clicks first; its CSV has them all
TABLES = (
    "most", "least", "campaigns", "funnel", "paths", "stages", "map", "feedback", "attribution",
    "conversions", "timeseries", *DIMENSIONS,
)
HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class DashboardQuery:
    """The report query of the page, with how it was chosen and how the chart is drawn."""

    report: ReportQuery
    range: str  # a key of PRESETS, or "custom"
    interval: Interval
    group_by: GroupBy
    note: str | None = None  # why the page shows something else than was asked for
    funnel: journeys.Mode = "closed"
    map_by: MapBy = "clicks"  # what colours the journey map
    model: attribution.Model = "last"  # how the outcomes panel credits conversions
    takes: frozenset[str] = field(default=PARAMETERS, compare=False)  # the page's parameters

    @classmethod
    def from_args(
        cls,
        args: Mapping[str, str],
        *,
        now: datetime,
        zone: ZoneInfo,
        takes: Collection[str] = PARAMETERS,
    ) -> DashboardQuery:
        """`range` (7d, 30d, 90d or custom with `from` and `to`), the report filters, and the
        chart's `interval` (hour or day) and `group_by`; a 400 naming a malformed or unknown
        one (anything not in `takes`), the funnel's mode (`funnel`: closed or open) and what
        colours the journey map (`map`: clicks or nps). A preset is the same window as its
        dates typed in: the last N days, today included, so far."""
        check_known(args, takes)
        check_format(args)
        chosen = (args.get("range") or "").strip()
        if not chosen:
            chosen = "custom" if args.get("from") or args.get("to") else "30d"
        if chosen not in PRESETS and chosen != "custom":
            raise InvalidParameterError("range", "must be 7d, 30d, 90d or custom")
        query_args = {name: args.get(name, "") for name in ("stage", "channel", "campaign", "bots",
                                                         "tests")}
        if chosen == "custom":
            query_args["from"], query_args["to"] = args.get("from", ""), args.get("to", "")
        else:
            today = now.astimezone(zone).date()
            query_args["from"] = (today - timedelta(days=PRESETS[chosen] - 1)).isoformat()
            query_args["to"] = today.isoformat()
        report = ReportQuery.from_args(query_args, now=now, zone=zone)
        span = report.end - report.start
        interval = parse_interval(args, default="hour" if span <= timedelta(days=2) else "day")
        note = None
        if interval == "hour" and span > MAX_HOURLY_SPAN:
            interval = "day"
            note = f"Hourly points cover at most {MAX_HOURLY_SPAN.days} days: shown by day."
        funnel = (args.get("funnel") or "").strip() or "closed"
        if funnel not in journeys.MODES:
            raise InvalidParameterError("funnel", f"must be closed or open, not {funnel!r}")
        return cls(
            report, chosen, interval, parse_group_by(args), note,
            funnel="open" if funnel == "open" else "closed", map_by=parse_map(args),
            model=attribution.parse_model(args.get("model")), takes=frozenset(takes),
        )

    def args(self, **changes: str) -> dict[str, str]:
        """The query string of this view, with `changes`; empty values are left out."""
        q = self.report
        custom = self.range == "custom"
        values = {
            "range": self.range,
            "from": _bound(q, q.start) if custom else "",
            "to": _bound(q, q.requested_end or q.end, last=True) if custom else "",
            "stage": q.stage or "",
            "channel": q.channel or "",
            "campaign": q.campaign or "",
            "bots": "include" if q.bots else "",
            "tests": "include" if q.tests else "",
            "interval": self.interval,
            "group_by": self.group_by,
            "funnel": "" if self.funnel == "closed" else self.funnel,
            "map": "" if self.map_by == "clicks" else self.map_by,
            "model": "" if self.model == "last" else self.model,
        }
        values.update(changes)
        return {
            name: value for name, value in values.items() if value and name in self.takes
        }

    def window_args(self, *, leave_out: str = "") -> dict[str, str]:
        """The window and filters alone, as the drill-down pages take them (a campaign's page
        is its own campaign filter: `leave_out="campaign"`)."""
        return {
            k: v for k, v in self.args().items() if k in WINDOW and k != leave_out
        }


def check_format(args: Mapping[str, str]) -> None:
    """A page answers HTML, or a table as CSV (`format=csv&table=…`)."""
    fmt = (args.get("format") or "").strip()
    if fmt not in ("", "csv"):
        raise InvalidParameterError("format", f"must be csv (with table=…), not {fmt!r}")
    if args.get("table") and fmt != "csv":
        raise InvalidParameterError("table", "goes with format=csv")


def _bound(query: ReportQuery, moment: datetime, *, last: bool = False) -> str:
    """A bound as typed in: a date when it is a local midnight (`to`: the day before), else the
    local hour."""
    local = query.local(moment)
    if local.hour == 0:
        return (local.date() - timedelta(days=1) if last else local.date()).isoformat()
    return local.replace(tzinfo=None).isoformat(timespec="minutes")


# --- the page ----------------------------------------------------------------------------------


@bp.get("/dashboard")
@signed_in(Role.ANALYST)
def index() -> Any:
    session, now, zone = report_session(), utcnow(), runtime().settings.zone
    try:
        view = DashboardQuery.from_args(request.args, now=now, zone=zone)
        if request.args.get("format") == "csv":
            return table_csv(session, view, request.args.get("table", ""))
        return render_template("dashboard.html", **dashboard_context(session, view), error=None)
    except InvalidParameterError as exc:
        # The page still answers, on the default window, saying what was wrong.
        rollback_request()
        default = dashboard_context(session, DashboardQuery.from_args({}, now=now, zone=zone))
        return render_template("dashboard.html", **default, error=exc.message), 400


def dashboard_context(session: Session, view: DashboardQuery) -> dict[str, Any]:
    query = view.report
    ranked, lowest = engagement.most_and_least(session, query, limit=2 * SIDE_BY_SIDE)
    most, least = _most_and_least(ranked, lowest)
    people = journey_panels(session, view.report, mode=view.funnel)
    jmap = journey_map(session, query, limit=MAP_ROWS)
    # Visitors by stage, where there is no funnel of journeys to show instead.
    journey = None if people["touched"] else stage_reports.stage_report(
        session, replace(query, stage=None)
    )
    # The chart's lines are the tables' most engaged: ranked once, for both.
    top = Ranked(
        tuple(row.touchpoint.key for row in ranked.rows if row.clicks), ranked.listed.clicked
    )
    series = timeseries(
        session, query, interval=view.interval, group_by=view.group_by, top=CHART_SERIES,
        ranked=top,
    )
    return {
        **page_context(view),
        "here": lambda **args: url_for("dashboard.index", **args),
        "empty": ranked.empty,
        "totals": _totals(ranked.listed),
        "most": most,
        "least": least,
        "rate_top": rate_top([*most, *least]),
        # A window that has not begun has no campaign yet (every live link would list one).
        "campaigns": () if query.empty else drilldown.campaign_report(session, query).rows,
        "stage_steps": _stage_steps(journey, jmap.gaps) if journey else [],
        **people,
        "jmap": jmap,
        **feedback_panel(session, query, map_by=view.map_by, jmap=jmap),
        **outcome_panel(session, query, model=view.model),
        **alert_panel(session),
        "heat": charts.heat_level,
        "chart": draw_timeseries(series),
        "breakdowns": list(breakdowns(session, query, DIMENSIONS).values()),
        "stage_options": [(s.key, s.name) for s in stages.list_stages(session)],
        "channel_options": [c.value for c in Channel],
        "campaign_options": links.campaign_names(session),
    }


def page_context(view: DashboardQuery) -> dict[str, Any]:
    """What the dashboard and the drill-down pages show alike: the window and its controls."""
    query = view.report
    return {
        "view": view,
        "query": query,
        "zone": query.zone.key,
        "first_day": query.first_day,
        "last_day": query.last_day,
        # The last day asked for (the date field's `to`), where the present has not cut it.
        "to_day": ((query.requested_end or query.end) - HOUR).astimezone(query.zone).date(),
        # The window asked for, in local days; `so_far` says where the present cuts it.
        "window": window_label(query.start, query.requested_end or query.end, query),
        "previous_window": window_label(query.previous_start, query.previous_end, query),
        "so_far": (
            f"so far: up to {query.local(query.end):%b %d, %H:%M}"
            if query.requested_end is not None and not query.empty
            else ""
        ),
        "presets": PRESETS,
        "dimension_names": DIMENSION_NAMES,
        "bar": charts.bar,
        "interval_bar": charts.interval_bar,
    }


def window_label(start: datetime, end: datetime, query: ReportQuery) -> str:
    """`Nov 03, 2026 - Nov 09, 2026` (an en dash) for whole local days, else the local hours
    (`Nov 09, 2026 00:00 - Nov 09, 2026 14:00`)."""
    first, last = query.local(start), query.local(end)
    if end <= start:
        return "nothing yet"
    if first.hour == last.hour == 0:
        return f"{first:%b %d, %Y} \u2013 {(last - timedelta(days=1)):%b %d, %Y}"
    return f"{first:%b %d, %Y %H:%M} \u2013 {last:%b %d, %Y %H:%M}"


def rate_top(rows: Sequence[Any]) -> float:
    """The scale of the per 1k reached bars of a table: the highest upper bound shown."""
    return max((row.per_1k_reached_high or 0.0 for row in rows), default=0.0) or 1.0


def _most_and_least(
    ranked: engagement.TouchpointReport, lowest: engagement.TouchpointReport
) -> tuple[list[engagement.TouchpointRow], list[engagement.TouchpointRow]]:
    """The most and the least engaged touchpoints, side by side, none in both tables."""
    if ranked.empty:  # nothing to rank as most engaged: the least are every touchpoint, silent
        return [], list(lowest.rows[:SIDE_BY_SIDE])
    rows = ranked.rows
    if ranked.listed.touchpoints <= 2 * SIDE_BY_SIDE:  # all of them are here: split them in two
        shown = min(SIDE_BY_SIDE, math.ceil(len(rows) / 2))
        return list(rows[:shown]), list(reversed(rows[shown:]))[:SIDE_BY_SIDE]
    most = list(rows[:SIDE_BY_SIDE])
    keys = {row.touchpoint.key for row in most}
    return most, [row for row in lowest.rows if row.touchpoint.key not in keys][:SIDE_BY_SIDE]


def _totals(listed: engagement.ListedTotals) -> dict[str, Any]:
    human, previous_human = listed.human_clicks, listed.previous_human_clicks
    # The tile says "human clicks": its change is of human clicks, whatever `bots=` says.
    moved, comparable = change(
        human, previous_human, current_human=human, previous_human=previous_human
    )
    return {
        "human_clicks": human,
        "previous_human_clicks": previous_human,
        "bot_clicks": listed.bot_clicks,
        "scanner_clicks": listed.scanner_clicks,
        "scans": listed.scans,
        "scan_share": rate(listed.scans, human),
        "visitors": listed.visitors,
        "change": moved,
        "comparable": comparable,
        "touchpoints": listed.touchpoints,
        "silent": listed.touchpoints - listed.clicked,
    }


@dataclass(frozen=True, slots=True)
class StageStep:
    stage: stage_reports.StageRow
    next_name: str | None
    band: Any  # the SVG bar
    gap: bool


def _stage_steps(journey: stage_reports.StageReport, gaps: frozenset[str]) -> list[StageStep]:
    widest = max((row.visitors for row in journey.rows), default=0) or 1
    steps = []
    for i, row in enumerate(journey.rows):
        following = journey.rows[i + 1] if i + 1 < len(journey.rows) else None
        gap = row.stage.key in gaps
        band = charts.stage_bar(row.visitors / widest, gap=gap)
        steps.append(StageStep(row, following.stage.name if following else None, band, gap))
    return steps


@dataclass(frozen=True, slots=True)
class LegendEntry:
    swatch: Any
    key: str | None  # the group's key (None for "Other")
    name: str
    total: int


@dataclass(frozen=True, slots=True)
class Chart:
    svg: Any
    group_by: str
    legend: list[LegendEntry]


def draw_timeseries(series: Timeseries) -> Chart:
    """The clicks over time as an SVG line chart, the smaller series added up as "Other"."""
    drawn = series.series[:CHART_SERIES]
    lines = [charts.Line(s.name, s.clicks, charts.colour(i)) for i, s in enumerate(drawn)]
    keys: list[str | None] = [s.key for s in drawn]
    if series.other is not None:
        other = series.other.clicks
        lines.append(charts.Line(f"Other ({series.other_groups})", other, charts.OTHER))
        keys.append(None)
    counted = "Clicks, bots included," if series.query.bots else "Human clicks"
    svg = charts.line_chart(
        series.buckets,
        lines,
        hourly=series.interval == "hour",
        label=f"{counted} per {series.interval}, by {series.group_by}",
        empty_text="This window has not begun" if series.query.empty else (
            "No clicks in this window"
        ),
    )
    legend = [
        LegendEntry(charts.swatch(line.colour), key, line.name, sum(line.values))
        for key, line in zip(keys, lines, strict=True)
    ]
    return Chart(svg, series.group_by, legend)


# --- CSV -----------------------------------------------------------------------------------------


def table_csv(session: Session, view: DashboardQuery, table: str) -> Response:
    """A table of the page as CSV, with the page's window and filters."""
    query = view.report
    found: Report
    if table == "most":
        found = engagement.touchpoint_report(session, query, order="most", limit=MAX_ROWS)
    elif table == "least":
        found = engagement.touchpoint_report(session, query, order="least", limit=MAX_ROWS)
    elif table == "campaigns":
        found = drilldown.campaign_report(session, query)
    elif table == "funnel":
        found = journeys.funnel(session, query, mode=view.funnel)
    elif table == "paths":
        found = journeys.paths(session, query, limit=journeys.MAX_PATHS)
    elif table == "stages":
        found = stage_reports.stage_report(session, replace(query, stage=None))
    elif table == "map":
        found = nps_map(session, query) if view.map_by == "nps" else journey_map(session, query)
    elif table == "feedback":
        found = feedback_report(session, query)
    elif table == "attribution":
        found = attribution.attribution(
            session, query, event=None, model=view.model,
            lookback_days=attribution.DEFAULT_LOOKBACK_DAYS,
        )
    elif table == "conversions":
        found = conversions.conversion_report(session, query, event=None, interval="day")
    elif table == "timeseries":
        found = timeseries(session, query, interval=view.interval, group_by=view.group_by)
    elif table in DIMENSIONS:
        dimension = next(d for d in DIMENSIONS if d == table)
        found = breakdown(session, query, dimension, limit=MAX_LIMIT)
    else:
        raise InvalidParameterError("table", f"must be one of {', '.join(TABLES)}")
    return csv_response(found)


def local_time(moment: datetime | None, empty: str = "\u2014") -> str:
    """A time in the workspace's zone, as the reports count days: `2026-11-24 14:05`."""
    if moment is None:
        return empty
    return moment.astimezone(runtime().settings.zone).strftime("%Y-%m-%d %H:%M")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.add_template_filter(local_time, "local_time")
    # "dashboard" covers the drill-down pages too (endpoints `dashboard_detail.…`).
    add_nav_item(
        app, "dashboard.index", "Dashboard", role=Role.ANALYST, position=10, section="dashboard"
    )
