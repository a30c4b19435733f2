"""The reports API: thin views that parse the query string once (`ReportRequest`), ask one report
family, and answer JSON or, with format=csv, CSV. Bearer keys of the analyst role and above."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from analytics.reports import breakdowns, engagement, timeseries
from analytics.reports.query import ReportRequest
from analytics.reports.render import respond
from shortener.api_auth import requires
from shortener.db import utcnow
from shortener.models import Role
from shortener.unit_of_work import db_session

bp = Blueprint("reports", __name__, url_prefix="/api/v1/reports")


@bp.get("/touchpoints")
@requires(Role.ANALYST)
def touchpoint_report() -> Any:
    ask = ReportRequest.from_args(request.args, now=utcnow())
    report = engagement.touchpoint_report(
        db_session(), ask.query, order=ask.order, limit=ask.limit
    )
    return respond(report, ask.format)


@bp.get("/stages")
@requires(Role.ANALYST)
def stage_report() -> Any:
    ask = ReportRequest.from_args(request.args, now=utcnow())
    return respond(engagement.stage_report(db_session(), ask.query), ask.format)


@bp.get("/timeseries")
@requires(Role.ANALYST)
def timeseries_report() -> Any:
    args = request.args
    ask = ReportRequest.from_args(args, now=utcnow())
    report = timeseries.timeseries(
        db_session(),
        ask.query,
        interval=timeseries.parse_interval(args),
        group_by=timeseries.parse_group_by(args),
    )
    return respond(report, ask.format)


@bp.get("/breakdown")
@requires(Role.ANALYST)
def breakdown_report() -> Any:
    args = request.args
    ask = ReportRequest.from_args(
        args, now=utcnow(), default_limit=breakdowns.DEFAULT_LIMIT, max_limit=breakdowns.MAX_LIMIT
    )
    report = breakdowns.breakdown(
        db_session(), ask.query, breakdowns.parse_dimension(args), limit=ask.limit
    )
    return respond(report, ask.format)
