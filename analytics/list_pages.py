"""The dashboard's lists in full, for workspaces too large for its tables: every touchpoint
ranked most or least engaged, a page at a time, and every value of a breakdown, with the
dashboard's window and filters."""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, Flask, abort, render_template, request, url_for
from sqlalchemy.orm import Session

from analytics.dashboard import PARAMETERS, DashboardQuery, page_context, rate_top
from analytics.reports import engagement, journeys
from analytics.reports.breakdowns import DIMENSIONS, MAX_LIMIT, breakdown
from analytics.reports.query import Order
from shortener.db import utcnow
from shortener.errors import InvalidParameterError
from shortener.models import Role
from shortener.runtime import runtime
from shortener.signin import signed_in
from shortener.unit_of_work import report_session, rollback_request

bp = Blueprint("dashboard_lists", __name__, template_folder="templates", url_prefix="/dashboard")

PAGE_ROWS = 100  # touchpoints a page
RANKINGS = ("most", "least")
TAKES = (PARAMETERS - {"group_by", "funnel", "map", "model", "interval", "table"}) | {"page"}


@bp.get("/all/<table>")
@signed_in(Role.ANALYST)
def all_rows(table: str) -> Any:
    if table not in RANKINGS and table not in DIMENSIONS:
        abort(404)
    session, now, zone = report_session(), utcnow(), runtime().settings.zone
    try:
        view = DashboardQuery.from_args(request.args, now=now, zone=zone, takes=TAKES)
        return _page(session, view, table, page=_page_number(request.args.get("page")))
    except InvalidParameterError as exc:
        # As on the dashboard: the page still answers, on the default window, saying why.
        rollback_request()
        view = DashboardQuery.from_args({}, now=now, zone=zone, takes=TAKES)
        return _page(session, view, table, page=1, error=exc.message), 400


def _page_number(text: str | None) -> int:
    if not text:
        return 1
    if not text.isdigit() or int(text) < 1:
        raise InvalidParameterError("page", f"must be a whole number from 1, not {text!r}")
    return int(text)


def _page(
    session: Session, view: DashboardQuery, table: str, *, page: int, error: str | None = None
) -> str:
    query = view.report
    context: dict[str, Any] = {
        **page_context(view),
        "here": lambda **args: url_for("dashboard_lists.all_rows", table=table, **args),
        "table": table,
        "error": error,
    }
    if table in DIMENSIONS:
        dimension = next(d for d in DIMENSIONS if d == table)
        return render_template(
            "all_rows.html", **context, found=breakdown(session, query, dimension, limit=MAX_LIMIT)
        )
    order: Order = "most" if table == "most" else "least"
    report = engagement.touchpoint_report(
        session, query, order=order, limit=PAGE_ROWS, offset=(page - 1) * PAGE_ROWS
    )
    pages = max(1, math.ceil(report.listed.touchpoints / PAGE_ROWS))
    if page > pages and not error:
        raise InvalidParameterError("page", f"this list has {pages} page{'s' * (pages > 1)}")
    return render_template(
        "all_rows.html",
        **context,
        report=report,
        rows=report.rows,
        empty=report.empty,
        first=(page - 1) * PAGE_ROWS + 1,
        page=page,
        pages=pages,
        rate_top=rate_top(report.rows),
        with_journeys=journeys.journeys_touched(session, query),
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
