"""The reports API: thin views that parse the query string once (`ReportRequest`), ask one report
family, and answer JSON or, with format=csv, CSV. Bearer keys of the analyst role and above.

Each view names the parameters it takes beyond the window's; any other is a 400 naming it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from flask import Blueprint, request

from analytics.reports import (
    breakdowns,
    drilldown,
    engagement,
    feedback,
    journeys,
    stages,
    timeseries,
)
from analytics.reports.query import ReportRequest, parse_order_by
from analytics.reports.render import csv_response, respond
from shortener.api_auth import requires
from shortener.db import utcnow
from shortener.errors import InvalidParameterError
from shortener.models import Role
from shortener.runtime import runtime
from shortener.unit_of_work import report_session

bp = Blueprint("reports", __name__, url_prefix="/api/v1/reports")

DETAIL_PARAMETERS = ("interval", "table")


def _ask(takes: Collection[str] = (), **limits: int) -> ReportRequest:
    return ReportRequest.from_args(
        request.args, now=utcnow(), zone=runtime().settings.zone, takes=takes, **limits
    )


@bp.get("/touchpoints")
@requires(Role.ANALYST)
def touchpoint_report() -> Any:
    ask = _ask({"order", "by", "limit"})
    report = engagement.touchpoint_report(
        report_session(), ask.query, order=ask.order, by=parse_order_by(request.args),
        limit=ask.limit,
    )
    return respond(report, ask.format)


@bp.get("/stages")
@requires(Role.ANALYST)
def stage_report() -> Any:
    ask = _ask()
    return respond(stages.stage_report(report_session(), ask.query), ask.format)


@bp.get("/timeseries")
@requires(Role.ANALYST)
def timeseries_report() -> Any:
    ask = _ask({"interval", "group_by"})
    report = timeseries.timeseries(
        report_session(),
        ask.query,
        interval=timeseries.parse_interval(request.args),
        group_by=timeseries.parse_group_by(request.args),
    )
    return respond(report, ask.format)


@bp.get("/breakdown")
@requires(Role.ANALYST)
def breakdown_report() -> Any:
    ask = _ask(
        {"dimension", "limit"},
        default_limit=breakdowns.DEFAULT_LIMIT,
        max_limit=breakdowns.MAX_LIMIT,
    )
    report = breakdowns.breakdown(
        report_session(), ask.query, breakdowns.parse_dimension(request.args), limit=ask.limit
    )
    return respond(report, ask.format)


@bp.get("/funnel")
@requires(Role.ANALYST)
def funnel_report() -> Any:
    ask = _ask({"mode"})
    mode = journeys.parse_mode(request.args.get("mode"))
    return respond(journeys.funnel(report_session(), ask.query, mode=mode), ask.format)


@bp.get("/paths")
@requires(Role.ANALYST)
def path_report() -> Any:
    ask = _ask({"limit"}, default_limit=journeys.DEFAULT_PATHS, max_limit=journeys.MAX_PATHS)
    return respond(journeys.paths(report_session(), ask.query, limit=ask.limit), ask.format)


@bp.get("/next")
@requires(Role.ANALYST)
def next_report() -> Any:
    ask = _ask({"touchpoint"})
    key = (request.args.get("touchpoint") or "").strip()
    if not key:
        raise InvalidParameterError("touchpoint", "is required: the key of a touchpoint")
    return respond(journeys.next_touchpoints(report_session(), ask.query, key), ask.format)


@bp.get("/feedback")
@requires(Role.ANALYST)
def feedback_report() -> Any:
    ask = _ask({"by"})
    by = feedback.parse_by(request.args)
    return respond(feedback.feedback_report(report_session(), ask.query, by=by), ask.format)


@bp.get("/feedback/comments")
@requires(Role.ANALYST)
def feedback_comments() -> Any:
    ask = _ask(
        {"touchpoint", "limit"},
        default_limit=feedback.DEFAULT_COMMENTS,
        max_limit=feedback.MAX_COMMENTS,
    )
    key = (request.args.get("touchpoint") or "").strip() or None
    found = feedback.latest_comments(report_session(), ask.query, touchpoint=key, limit=ask.limit)
    return respond(found, ask.format)


@bp.get("/campaigns")
@requires(Role.ANALYST)
def campaign_report() -> Any:
    ask = _ask()
    return respond(drilldown.campaign_report(report_session(), ask.query), ask.format)


@bp.get("/touchpoints/<key>")
@requires(Role.ANALYST)
def touchpoint_detail(key: str) -> Any:
    ask = _ask(DETAIL_PARAMETERS)
    interval = timeseries.parse_interval(request.args)
    return _detail(drilldown.touchpoint_detail(report_session(), key, ask.query, interval=interval),
                   ask, default_table="links")


@bp.get("/links/<int:link_id>")
@requires(Role.ANALYST)
def link_detail(link_id: int) -> Any:
    ask = _ask(DETAIL_PARAMETERS)
    interval = timeseries.parse_interval(request.args)
    return _detail(drilldown.link_detail(report_session(), link_id, ask.query, interval=interval),
                   ask, default_table="timeseries")


@bp.get("/campaigns/<path:name>")
@requires(Role.ANALYST)
def campaign_detail(name: str) -> Any:
    ask = _ask(DETAIL_PARAMETERS)
    interval = timeseries.parse_interval(request.args)
    return _detail(drilldown.campaign_detail(report_session(), name, ask.query, interval=interval),
                   ask, default_table="links")


def _detail(detail: drilldown.Detail, ask: ReportRequest, *, default_table: str) -> Any:
    if ask.format == "json":
        return detail.to_json()
    return csv_response(detail.table(request.args.get("table") or default_table))
