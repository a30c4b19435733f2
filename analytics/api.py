"""The reports API: thin views over analytics.reports, answering JSON or, with format=csv, CSV."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, request

from analytics import reports
from analytics.reports import Report, ReportQuery
from shortener.api import requires
from shortener.db import utcnow
from shortener.errors import InvalidParameterError
from shortener.models import Role
from shortener.runtime import db_session

bp = Blueprint("reports", __name__, url_prefix="/api/v1/reports")

FORMATS = ("json", "csv")


@bp.get("/touchpoints")
@requires(Role.ANALYST)
def touchpoint_report() -> Any:
    args = request.args
    fmt = _format(args)
    report = reports.touchpoint_report(
        db_session(),
        ReportQuery.from_args(args, now=utcnow()),
        order=reports.parse_order(args),
        limit=reports.parse_limit(args),
    )
    return _render(report, fmt)


@bp.get("/stages")
@requires(Role.ANALYST)
def stage_report() -> Any:
    args = request.args
    fmt = _format(args)
    report = reports.stage_report(db_session(), ReportQuery.from_args(args, now=utcnow()))
    return _render(report, fmt)


def _format(args: Mapping[str, str]) -> str:
    fmt = args.get("format") or "json"
    if fmt not in FORMATS:
        raise InvalidParameterError("format", f"must be json or csv, not {fmt!r}")
    return fmt


def _render(report: Report, fmt: str) -> Any:
    if fmt == "json":
        return report.to_json()
    return Response(
        reports.to_csv(report),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{reports.csv_filename(report)}"'
        },
    )
