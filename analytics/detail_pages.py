"""The analytics page of one touchpoint, one link or one campaign, for the analyst role and above:
the figures of the window and of the one it is compared with, clicks over time, the links behind
them and where their clicks came from, over `analytics.reports.drilldown`; with journeys, a
touchpoint's journeys, how many moved on, and where they went next; with surveys, a touchpoint's
feedback and its latest comments. The window controls and parameters are the dashboard's; every
table downloads as CSV (`format=csv&table=…`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics.dashboard import PARAMETERS, DashboardQuery, draw_timeseries, page_context
from analytics.feedback_panels import touchpoint_feedback
from analytics.reports import drilldown, engagement, feedback, journeys
from analytics.reports.drilldown import Detail
from analytics.reports.query import ReportQuery
from analytics.reports.rates import change, rate
from analytics.reports.render import Report, csv_response
from shortener import links, stages, touchpoints
from shortener.db import utcnow
from shortener.errors import InvalidParameterError, NotFoundError
from shortener.models import Link, Role, Touchpoint
from shortener.runtime import runtime
from shortener.signin import signed_in
from shortener.unit_of_work import report_session, rollback_request

bp = Blueprint("dashboard_detail", __name__, template_folder="templates", url_prefix="/dashboard")

# The dashboard's parameters but the chart's grouping, which each page chooses, the funnel's mode
# and the map's colours; a campaign's page is its own campaign filter.
TAKES = PARAMETERS - {"group_by", "funnel", "map"}
CAMPAIGN_TAKES = TAKES - {"campaign"}
Rate = tuple[float | None, float | None, float | None]
NO_RATE: Rate = (None, None, None)


@dataclass(frozen=True, slots=True)
class Figures:
    """One window's figures of the page's subject, whatever its kind (zeros when it has none)."""

    clicks: int = 0
    human_clicks: int = 0
    bot_clicks: int = 0
    scanner_clicks: int = 0  # of the bot clicks, mail scanners'
    scans: int = 0
    scan_share: Rate = NO_RATE  # of the human clicks, with its 95 % interval
    visitors: int = 0
    reached: int | None = None  # touchpoints only
    per_1k_reached: Rate = NO_RATE
    links: int | None = None  # touchpoints and campaigns
    touchpoints: int | None = None  # campaigns
    journeys: int = 0  # touchpoints: journeys with a touch there, and those that moved on
    moved_on: int = 0
    moved_on_rate: Rate = NO_RATE
    first_click_at: datetime | None = None
    last_click_at: datetime | None = None

    @classmethod
    def of(cls, row: Any) -> Figures:
        """From a TouchpointRow, a LinkRow or a CampaignRow (or None: no figures)."""
        if row is None:
            return cls()
        touchpoint = isinstance(row, engagement.TouchpointRow)
        return cls(
            clicks=row.clicks,
            human_clicks=row.human_clicks,
            bot_clicks=row.bot_clicks,
            scanner_clicks=row.scanner_clicks,
            scans=row.scans,
            scan_share=rate(row.scans, row.human_clicks),
            visitors=row.visitors,
            reached=getattr(row, "reached", None),
            per_1k_reached=(
                (row.per_1k_reached, row.per_1k_reached_low, row.per_1k_reached_high)
                if touchpoint
                else NO_RATE
            ),
            links=row.links if touchpoint or isinstance(row, drilldown.CampaignRow) else None,
            touchpoints=getattr(row, "touchpoints", None),
            first_click_at=getattr(row, "first_click_at", None),
            last_click_at=row.last_click_at,
            journeys=row.journeys if touchpoint else 0,
            moved_on=row.moved_on if touchpoint else 0,
            moved_on_rate=(row.moved_on_rate, row.moved_on_low, row.moved_on_high)
            if touchpoint
            else NO_RATE,
        )


@dataclass(frozen=True, slots=True)
class Subject:
    """What a page is about, and how its detail and its previous window's figures are read."""

    kind: str  # touchpoint, link or campaign
    ident: str | int
    takes: frozenset[str]
    default_table: str

    def detail(self, session: Session, view: DashboardQuery) -> Detail:
        query, interval = view.report, view.interval
        if self.kind == "touchpoint":
            return drilldown.touchpoint_detail(session, str(self.ident), query, interval=interval)
        if self.kind == "link":
            return drilldown.link_detail(session, int(self.ident), query, interval=interval)
        return drilldown.campaign_detail(session, str(self.ident), query, interval=interval)

    def previous_row(self, session: Session, query: ReportQuery) -> Any:
        """The subject's row of the window compared with, read as a window of its own."""
        before = replace(
            query, start=query.previous_start, end=query.previous_end, requested_end=None
        )
        if self.kind == "touchpoint":
            tp = touchpoints.get_touchpoint(session, str(self.ident))
            found: Any = engagement.touchpoint_report(
                session, replace(before, touchpoint_id=tp.id), order="least", limit=1
            ).rows
        elif self.kind == "link":
            found = drilldown.link_table(session, replace(before, link_id=int(self.ident))).rows
        else:
            report = drilldown.campaign_report(session, replace(before, campaign=str(self.ident)))
            found = [row for row in report.rows if row.campaign == self.ident]
        return found[0] if found else None


@bp.get("/touchpoints/<key>")
@signed_in(Role.ANALYST)
def touchpoint_page(key: str) -> Any:
    return _answer(Subject("touchpoint", key, TAKES, "links"))


@bp.get("/links/<int:link_id>")
@signed_in(Role.ANALYST)
def link_page(link_id: int) -> Any:
    return _answer(Subject("link", link_id, TAKES, "timeseries"))


@bp.get("/campaigns/<path:name>")
@signed_in(Role.ANALYST)
def campaign_page(name: str) -> Any:
    return _answer(Subject("campaign", name, CAMPAIGN_TAKES, "links"))


def _answer(subject: Subject) -> Any:
    session, now, zone = report_session(), utcnow(), runtime().settings.zone

    def parse(args: Any) -> DashboardQuery:
        return DashboardQuery.from_args(args, now=now, zone=zone, takes=subject.takes)

    try:
        view = parse(request.args)
        detail = _detail_or_none(session, subject, view)
        if request.args.get("format") == "csv":
            if detail is None:
                raise NotFoundError(f"No campaign named {subject.ident!r} in this window.")
            table = request.args.get("table") or subject.default_table
            return csv_response(_table(session, subject, view, detail, table))
        return _page(session, subject, view, detail, error=None)
    except InvalidParameterError as exc:
        # As on the dashboard: the page still answers, on the default window, saying why.
        rollback_request()
        view = parse({})
        return _page(
            session, subject, view, _detail_or_none(session, subject, view), error=exc.message
        ), 400


def _table(
    session: Session, subject: Subject, view: DashboardQuery, detail: Detail, name: str
) -> Report:
    """A table of the page, for CSV: the detail's, and a touchpoint's next touchpoints."""
    if subject.kind != "touchpoint":
        return detail.table(name)
    if name == "next":
        return journeys.next_touchpoints(session, view.report, str(subject.ident))
    if name == "comments":
        return feedback.latest_comments(
            session, view.report, touchpoint=str(subject.ident), limit=feedback.MAX_COMMENTS
        )
    tables = ("links", "timeseries", *detail.sources, "next", "comments")
    if name not in tables:
        raise InvalidParameterError("table", f"must be one of {', '.join(tables)}, not {name!r}")
    return detail.table(name)


def _detail_or_none(session: Session, subject: Subject, view: DashboardQuery) -> Detail | None:
    """The detail; None for a campaign that exists but has nothing in this window (its page
    says so, with the window controls to choose another)."""
    if subject.kind == "campaign" and subject.ident in links.campaign_names(session):
        try:
            return subject.detail(session, view)
        except NotFoundError:
            return None
    return subject.detail(session, view)


def _page(
    session: Session,
    subject: Subject,
    view: DashboardQuery,
    detail: Detail | None,
    *,
    error: str | None,
) -> tuple[str, int] | str:
    query = view.report
    here = _here(subject)
    context: dict[str, Any] = {
        **page_context(view),
        "kind": subject.kind,
        "name": str(subject.ident),
        "here": here,
        "error": error,
        "detail": detail,
        "stage_names": {s.key: s.name for s in stages.list_stages(session)},
        # A campaign's links name their touchpoints: keys and names alone, not every model.
        "touchpoint_names": {
            key: name for key, name in session.execute(select(Touchpoint.key, Touchpoint.name))
        } if subject.kind == "campaign" else {},
    }
    # With journeys (on, or touches in the window): a touchpoint's journeys and where they went.
    context["with_journeys"] = (
        runtime().settings.journeys != "off" or journeys.journeys_touched(session, query)
    )
    context["next_report"] = (
        journeys.next_touchpoints(session, query, str(subject.ident))
        if subject.kind == "touchpoint" and detail is not None and context["with_journeys"]
        else None
    )
    context["feedback"] = (
        touchpoint_feedback(session, query, str(subject.ident))
        if subject.kind == "touchpoint" and detail is not None
        else None
    )
    if subject.kind == "link":
        link = session.get(Link, int(subject.ident))
        context["link"] = link
        context["heading"] = f"{link.domain}/{link.slug}" if link else str(subject.ident)
    elif subject.kind == "touchpoint" and detail is not None:
        context["heading"] = detail.subject["touchpoint"]["name"]
    else:
        context["heading"] = str(subject.ident)
    if detail is None:
        return render_template("detail.html", **context), 404
    current = Figures.of(detail.figures)
    previous = Figures.of(subject.previous_row(session, query))
    if detail.figures is not None and hasattr(detail.figures, "comparable"):
        moved, comparable = detail.figures.change, detail.figures.comparable
    else:
        moved, comparable = change(
            current.clicks,
            previous.clicks,
            current_human=current.human_clicks,
            previous_human=previous.human_clicks,
        )
    return render_template(
        "detail.html",
        **context,
        listed=detail.figures is not None,
        figures=current,
        previous=previous,
        change=moved,
        comparable=comparable,
        rate_top=max(current.per_1k_reached[2] or 0.0, previous.per_1k_reached[2] or 0.0) or 1.0,
        chart=draw_timeseries(detail.series),
        breakdowns=list(detail.sources.values()),
    )


def _here(subject: Subject) -> Callable[..., str]:
    """The URL of this page with other parameters (the window, a CSV table)."""
    endpoint = {"touchpoint": ".touchpoint_page", "link": ".link_page"}.get(
        subject.kind, ".campaign_page"
    )
    name = {"touchpoint": "key", "link": "link_id"}.get(subject.kind, "name")
    fixed: dict[str, Any] = {name: subject.ident}
    return lambda **args: url_for(endpoint, **fixed, **args)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
