"""The detailed reports API: clicks over time, and clicks by one dimension; JSON, or CSV with
`format=csv`. Beside `analytics.api` under the same /api/v1/reports prefix, and like it for
bearer keys of the analyst role and above only."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from analytics import breakdowns, timeseries
from analytics.reports import ReportQuery
from shortener.api import requires
from shortener.db import utcnow
from shortener.errors import InvalidParameterError
from shortener.models import Role
from shortener.runtime import db_session

bp = Blueprint("report_details", __name__, url_prefix="/api/v1/reports")


@bp.get("/timeseries")
@requires(Role.ANALYST)
def timeseries_report() -> Any:
    args = request.args
    csv = _wants_csv()
    found = timeseries.timeseries(
        db_session(),
        ReportQuery.from_args(args, now=utcnow()),
        interval=timeseries.parse_interval(args),
        group_by=timeseries.parse_group_by(args),
    )
    if not csv:
        return found.to_json()
    text = timeseries.csv_text(found.csv_header, found.csv_rows())
    return _csv(text, timeseries.csv_filename(found.kind, found.query))


@bp.get("/breakdown")
@requires(Role.ANALYST)
def breakdown_report() -> Any:
    args = request.args
    csv = _wants_csv()
    found = breakdowns.breakdown(
        db_session(),
        ReportQuery.from_args(args, now=utcnow()),
        breakdowns.parse_dimension(args),
        limit=breakdowns.parse_limit(args),
    )
    if not csv:
        return found.to_json()
    text = timeseries.csv_text(found.csv_header, found.csv_rows())
    return _csv(text, timeseries.csv_filename(found.dimension, found.query))


def _wants_csv() -> bool:
    fmt = request.args.get("format") or "json"
    if fmt not in ("json", "csv"):
        raise InvalidParameterError("format", f"must be json or csv, not {fmt!r}")
    return fmt == "csv"


def _csv(text: str, filename: str) -> Response:
    disposition = f'attachment; filename="{filename}"'
    return Response(text, mimetype="text/csv", headers={"Content-Disposition": disposition})
