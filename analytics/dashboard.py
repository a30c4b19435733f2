"""The analyst dashboard: the period's engagement per touchpoint, the journey and its map, clicks
over time and where clicks come from. Every table also downloads as CSV: the same query string
with `format=csv&table=<name>`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Flask, Response, render_template, request
from sqlalchemy.orm import Session

from analytics import charts
from analytics.reports import engagement
from analytics.reports.breakdowns import DIMENSION_NAMES, DIMENSIONS, MAX_LIMIT, breakdown
from analytics.reports.journey_map import journey_map
from analytics.reports.query import MAX_LIMIT as MAX_ROWS
from analytics.reports.query import ReportQuery
from analytics.reports.render import Report, csv_response
from analytics.reports.timeseries import (
    MAX_HOURLY_SPAN,
    GroupBy,
    Interval,
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
from shortener.signin import signed_in
from shortener.unit_of_work import db_session, rollback_request

bp = Blueprint("dashboard", __name__, template_folder="templates")

PRESETS = {"7d": 7, "30d": 30, "90d": 90}
SIDE_BY_SIDE = 8  # touchpoints in each of the most and least engaged tables
CHART_SERIES = 6  # lines drawn; the rest are added up as "Other"
TABLES = ("most", "least", "stages", "map", "timeseries", *DIMENSIONS)
HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class DashboardQuery:
    """The report query of the page, with how it was chosen and how the chart is drawn."""

    report: ReportQuery
    range: str  # a key of PRESETS, or "custom"
    interval: Interval
    group_by: GroupBy
    note: str | None = None  # why the page shows something else than was asked for

    @classmethod
    def from_args(cls, args: Mapping[str, str], *, now: datetime) -> DashboardQuery:
        """`range` (7d, 30d, 90d or custom with `from` and `to`), the report filters, and the
        chart's `interval` (hour or day) and `group_by`; a 400 naming a malformed one."""
        chosen = (args.get("range") or "").strip()
        if not chosen:
            chosen = "custom" if args.get("from") or args.get("to") else "30d"
        if chosen not in PRESETS and chosen != "custom":
            raise InvalidParameterError("range", "must be 7d, 30d, 90d or custom")
        query_args = {name: args.get(name, "") for name in ("stage", "channel", "campaign", "bots")}
        if chosen == "custom":
            query_args["from"], query_args["to"] = args.get("from", ""), args.get("to", "")
        else:
            end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + HOUR
            query_args["from"] = (end - timedelta(days=PRESETS[chosen])).isoformat()
            query_args["to"] = end.isoformat()
        report = ReportQuery.from_args(query_args, now=now)
        span = report.end - report.start
        interval = parse_interval(args, default="hour" if span <= timedelta(days=2) else "day")
        note = None
        if interval == "hour" and span > MAX_HOURLY_SPAN:
            interval = "day"
            note = f"Hourly points cover at most {MAX_HOURLY_SPAN.days} days: shown by day."
        return cls(report, chosen, interval, parse_group_by(args), note)

    def args(self, **changes: str) -> dict[str, str]:
        """The query string of this view, with `changes`; empty values are left out."""
        q = self.report
        values = {
            "range": self.range,
            "from": q.start.date().isoformat() if self.range == "custom" else "",
            "to": q.last_day.isoformat() if self.range == "custom" else "",
            "stage": q.stage or "",
            "channel": q.channel or "",
            "campaign": q.campaign or "",
            "bots": "include" if q.bots else "",
            "interval": self.interval,
            "group_by": self.group_by,
        }
        values.update(changes)
        return {name: value for name, value in values.items() if value}


# --- the page ----------------------------------------------------------------------------------


@bp.get("/dashboard")
@signed_in(Role.ANALYST)
def index() -> Any:
    session, now = db_session(), utcnow()
    try:
        view = DashboardQuery.from_args(request.args, now=now)
        if request.args.get("format") == "csv":
            return _csv(session, view, request.args.get("table", ""))
        return render_template("dashboard.html", **_dashboard(session, view), error=None)
    except InvalidParameterError as exc:
        # The page still answers, on the default period, saying what was wrong.
        rollback_request()
        default = _dashboard(session, DashboardQuery.from_args({}, now=now))
        return render_template("dashboard.html", **default, error=exc.message), 400


def _dashboard(session: Session, view: DashboardQuery) -> dict[str, Any]:
    query = view.report
    everyone = engagement.touchpoint_report(session, query, limit=MAX_ROWS)
    rows = everyone.rows
    shown = min(SIDE_BY_SIDE, math.ceil(len(rows) / 2))
    whole_journey = replace(query, stage=None)
    journey = engagement.stage_report(session, whole_journey)
    jmap = journey_map(session, whole_journey)
    series = timeseries(session, query, interval=view.interval, group_by=view.group_by)
    clicks = sum(row.clicks for row in rows)
    previous = sum(row.previous_clicks for row in rows)
    return {
        "view": view,
        "query": query,
        "last_day": query.last_day,
        "presets": PRESETS,
        "totals": {
            "clicks": clicks,
            "scans": sum(row.scans for row in rows),
            "visitors": sum(row.visitors for row in rows),
            "previous": previous,
            "change": (clicks - previous) / previous if previous else None,
            "touchpoints": len(rows),
            "silent": sum(1 for row in rows if row.clicks == 0),
        },
        "most": rows[:shown],
        "least": list(reversed(rows[shown:]))[:SIDE_BY_SIDE],
        "funnel": _funnel(journey, jmap.gaps),
        "jmap": jmap,
        "heat": charts.heat_level,
        "chart": _chart(series),
        "breakdowns": [breakdown(session, query, dimension) for dimension in DIMENSIONS],
        "dimension_names": DIMENSION_NAMES,
        "bar": charts.bar,
        "stage_options": [(s.key, s.name) for s in stages.list_stages(session)],
        "channel_options": [c.value for c in Channel],
        "campaign_options": links.campaign_names(session),
    }


@dataclass(frozen=True, slots=True)
class FunnelStep:
    stage: engagement.StageRow
    next_name: str | None
    band: Any  # the SVG
    gap: bool


def _funnel(journey: engagement.StageReport, gaps: frozenset[str]) -> list[FunnelStep]:
    widest = max((row.visitors for row in journey.rows), default=0) or 1
    steps = []
    for i, row in enumerate(journey.rows):
        following = journey.rows[i + 1] if i + 1 < len(journey.rows) else None
        band = charts.funnel_segment(
            row.visitors / widest,
            following.visitors / widest if following is not None else None,
            gap=row.stage.key in gaps,
        )
        next_name = following.stage.name if following else None
        steps.append(FunnelStep(row, next_name, band, row.stage.key in gaps))
    return steps


@dataclass(frozen=True, slots=True)
class Chart:
    svg: Any
    legend: list[tuple[Any, str, int]]  # swatch, name, total


def _chart(series: Timeseries) -> Chart:
    drawn = series.series[:CHART_SERIES]
    rest = series.series[CHART_SERIES:]
    lines = [
        charts.Line(s.name, s.clicks, charts.colour(i)) for i, s in enumerate(drawn)
    ]
    if rest:
        other = tuple(sum(s.clicks[i] for s in rest) for i in range(len(series.buckets)))
        lines.append(charts.Line(f"Other ({len(rest)})", other, charts.OTHER))
    svg = charts.line_chart(
        series.buckets,
        lines,
        hourly=series.interval == "hour",
        label=f"Human clicks per {series.interval}, by {series.group_by}",
    )
    legend = [(charts.swatch(line.colour), line.name, sum(line.values)) for line in lines]
    return Chart(svg, legend)


# --- CSV -----------------------------------------------------------------------------------------


def _csv(session: Session, view: DashboardQuery, table: str) -> Response:
    """A table of the page as CSV, with the page's period and filters."""
    query = view.report
    whole_journey = replace(query, stage=None)
    found: Report
    if table == "most":
        found = engagement.touchpoint_report(session, query, order="most", limit=MAX_ROWS)
    elif table == "least":
        found = engagement.touchpoint_report(session, query, order="least", limit=MAX_ROWS)
    elif table == "stages":
        found = engagement.stage_report(session, whole_journey)
    elif table == "map":
        found = journey_map(session, whole_journey)
    elif table == "timeseries":
        found = timeseries(session, query, interval=view.interval, group_by=view.group_by)
    elif table in DIMENSIONS:
        dimension = next(d for d in DIMENSIONS if d == table)
        found = breakdown(session, query, dimension, limit=MAX_LIMIT)
    else:
        raise InvalidParameterError("table", f"must be one of {', '.join(TABLES)}")
    return csv_response(found)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    add_nav_item(app, "dashboard.index", "Dashboard", role=Role.ANALYST, position=10)
