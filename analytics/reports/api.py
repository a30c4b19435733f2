"""The reports API: thin views that take their query string as a model (the window and filters of
`ReportArgs`, and each report's own parameters), ask one report family, and answer JSON or, with
format=csv, CSV. Bearer keys of the analyst role and above.

Any parameter a report does not take is a 400 naming it, never silently ignored.
"""

from __future__ import annotations

from typing import Annotated, Any

from flask import Blueprint
from pydantic import Field

from analytics.reports import (
    breakdowns,
    drilldown,
    engagement,
    feedback,
    journeys,
    stages,
    timeseries,
)
from analytics.reports.breakdowns import ALL_DIMENSIONS, Dimension
from analytics.reports.query import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Limit,
    Order,
    RankBy,
    ReportArgs,
    ReportQuery,
)
from analytics.reports.render import csv_response, respond
from analytics.reports.timeseries import GroupBy, Interval
from shortener.api_auth import requires
from shortener.db import utcnow
from shortener.models import Role
from shortener.openapi import operation
from shortener.runtime import runtime
from shortener.schemas import Line, OneOf
from shortener.unit_of_work import report_session

bp = Blueprint("reports", __name__, url_prefix="/api/v1/reports")

# A touchpoint's key as a parameter: an unknown one, however long, is a 404.
TouchpointKey = Annotated[str, Line(1000)]


class TouchpointReportArgs(ReportArgs):
    order: Order = Field(default="most", description="least: zero-click touchpoints first")
    by: RankBy = Field(default="clicks", description="what ranks the touchpoints")
    limit: Annotated[int, Limit(MAX_LIMIT)] = DEFAULT_LIMIT


class TimeseriesArgs(ReportArgs):
    interval: Interval = Field(default="day", description="hour covers at most 31 days")
    group_by: GroupBy = "touchpoint"


class BreakdownArgs(ReportArgs):
    dimension: Dimension = Field(description="what the clicks are counted by")
    limit: Annotated[int, Limit(breakdowns.MAX_LIMIT)] = breakdowns.DEFAULT_LIMIT


class FunnelArgs(ReportArgs):
    mode: journeys.Mode = Field(
        default="closed",
        description="closed: a journey counts at a stage when it reached every one before;"
        " open: at each stage it touched",
    )


class PathArgs(ReportArgs):
    limit: Annotated[int, Limit(journeys.MAX_PATHS)] = journeys.DEFAULT_PATHS


class NextArgs(ReportArgs):
    touchpoint: TouchpointKey = Field(description="the key of a touchpoint")


class FeedbackArgs(ReportArgs):
    by: feedback.By = "touchpoint"


class CommentArgs(ReportArgs):
    touchpoint: TouchpointKey | None = Field(
        default=None, description="the key of a touchpoint: its comments only"
    )
    limit: Annotated[int, Limit(feedback.MAX_COMMENTS)] = feedback.DEFAULT_COMMENTS


class DetailArgs(ReportArgs):
    interval: Interval = Field(default="day", description="of the timeseries")
    table: Annotated[str, OneOf("links", "timeseries", *ALL_DIMENSIONS)] | None = Field(
        default=None, description="the part a CSV download holds"
    )


def _window(args: ReportArgs) -> ReportQuery:
    return ReportQuery.of(args, now=utcnow(), zone=runtime().settings.zone)


@bp.get("/touchpoints")
@requires(Role.ANALYST)
@operation("Engagement per touchpoint, the most (or least) engaged first",
           query=TouchpointReportArgs, responses={200: engagement.TouchpointReportOut}, csv=True)
def touchpoint_report(query: TouchpointReportArgs) -> Any:
    report = engagement.touchpoint_report(
        report_session(), _window(query), order=query.order, by=query.by, limit=query.limit
    )
    return respond(report, query.format)


@bp.get("/stages")
@requires(Role.ANALYST)
@operation("Clicks and visitors at each stage, in journey order", query=ReportArgs,
           responses={200: stages.StageReportOut}, csv=True,
           description="Takes no `stage` filter: it covers every stage.")
def stage_report(query: ReportArgs) -> Any:
    return respond(stages.stage_report(report_session(), _window(query)), query.format)


@bp.get("/timeseries")
@requires(Role.ANALYST)
@operation("Clicks per hour or local day, for each touchpoint, stage, channel or link",
           query=TimeseriesArgs, responses={200: timeseries.TimeseriesOut}, csv=True)
def timeseries_report(query: TimeseriesArgs) -> Any:
    report = timeseries.timeseries(
        report_session(), _window(query), interval=query.interval, group_by=query.group_by
    )
    return respond(report, query.format)


@bp.get("/breakdown")
@requires(Role.ANALYST)
@operation("Clicks by device, OS, browser, country, referrer or source", query=BreakdownArgs,
           responses={200: breakdowns.BreakdownOut}, csv=True)
def breakdown_report(query: BreakdownArgs) -> Any:
    report = breakdowns.breakdown(
        report_session(), _window(query), query.dimension, limit=query.limit
    )
    return respond(report, query.format)


@bp.get("/funnel")
@requires(Role.ANALYST)
@operation("Journeys at each stage, and those that went on", query=FunnelArgs,
           responses={200: journeys.FunnelReportOut}, csv=True)
def funnel_report(query: FunnelArgs) -> Any:
    report = journeys.funnel(report_session(), _window(query), mode=query.mode)
    return respond(report, query.format)


@bp.get("/paths")
@requires(Role.ANALYST)
@operation("The most common sequences of touchpoints", query=PathArgs,
           responses={200: journeys.PathReportOut}, csv=True)
def path_report(query: PathArgs) -> Any:
    report = journeys.paths(report_session(), _window(query), limit=query.limit)
    return respond(report, query.format)


@bp.get("/next")
@requires(Role.ANALYST)
@operation("Where the journeys that touched a touchpoint went next", query=NextArgs,
           responses={200: journeys.NextReportOut}, errors=(404,), csv=True)
def next_report(query: NextArgs) -> Any:
    report = journeys.next_touchpoints(report_session(), _window(query), query.touchpoint)
    return respond(report, query.format)


@bp.get("/feedback")
@requires(Role.ANALYST)
@operation("Survey answers per touchpoint or per stage: NPS, CSAT, CES", query=FeedbackArgs,
           responses={200: feedback.FeedbackReportOut | feedback.StageFeedbackReportOut},
           csv=True)
def feedback_report(query: FeedbackArgs) -> Any:
    report = feedback.feedback_report(report_session(), _window(query), by=query.by)
    return respond(report, query.format)


@bp.get("/feedback/comments")
@requires(Role.ANALYST)
@operation("The latest survey comments, newest first", query=CommentArgs,
           responses={200: feedback.CommentListOut}, errors=(404,), csv=True)
def feedback_comments(query: CommentArgs) -> Any:
    found = feedback.latest_comments(
        report_session(), _window(query), touchpoint=query.touchpoint, limit=query.limit
    )
    return respond(found, query.format)


@bp.get("/campaigns")
@requires(Role.ANALYST)
@operation("Clicks and visitors per campaign", query=ReportArgs,
           responses={200: drilldown.CampaignReportOut}, csv=True)
def campaign_report(query: ReportArgs) -> Any:
    return respond(drilldown.campaign_report(report_session(), _window(query)), query.format)


@bp.get("/touchpoints/<key>")
@requires(Role.ANALYST)
@operation("A touchpoint up close: its figures, links, timeseries and breakdowns",
           query=DetailArgs, responses={200: drilldown.TouchpointDetailOut}, csv=True)
def touchpoint_detail(key: str, query: DetailArgs) -> Any:
    detail = drilldown.touchpoint_detail(
        report_session(), key, _window(query), interval=query.interval
    )
    return _detail(detail, query, default_table="links")


@bp.get("/links/<int:link_id>")
@requires(Role.ANALYST)
@operation("A link up close: its figures, timeseries and breakdowns", query=DetailArgs,
           responses={200: drilldown.LinkDetailOut}, csv=True)
def link_detail(link_id: int, query: DetailArgs) -> Any:
    detail = drilldown.link_detail(
        report_session(), link_id, _window(query), interval=query.interval
    )
    return _detail(detail, query, default_table="timeseries")


@bp.get("/campaigns/<path:name>")
@requires(Role.ANALYST)
@operation("A campaign up close: its figures, links, timeseries and breakdowns",
           query=DetailArgs, responses={200: drilldown.CampaignDetailOut}, csv=True)
def campaign_detail(name: str, query: DetailArgs) -> Any:
    detail = drilldown.campaign_detail(
        report_session(), name, _window(query), interval=query.interval
    )
    return _detail(detail, query, default_table="links")


def _detail(detail: drilldown.Detail, args: DetailArgs, *, default_table: str) -> Any:
    """The detail as JSON, or one of its parts (`table`) as CSV."""
    if args.format == "json":
        return detail.to_json()
    return csv_response(detail.table(args.table or default_table))
