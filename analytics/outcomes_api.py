"""The conversions API: a shop (a tracker key, or any role above) posts what came of a click or
a coupon. 202 when accepted (in Redis, the spool or SQL: stored exactly once by the worker), 200
with the first one's id when its `external_id` was seen before, 422 naming the field at fault.
And their reports (analyst role and above): conversions over time, and attribution."""

from __future__ import annotations

import csv
import io
from typing import Any

from flask import Blueprint, request
from sqlalchemy.orm import Session

from analytics.conversions import (
    EVENT,
    Accepted,
    accept,
    conversion_from_json,
    conversion_json,
    release,
)
from analytics.reports import attribution, conversions, timeseries
from analytics.reports.query import ReportRequest
from analytics.reports.render import respond
from analytics.runtime import runtime
from shortener import request_input
from shortener.api_auth import requires
from shortener.db import utcnow
from shortener.errors import BadRequestError, DomainError, InvalidParameterError
from shortener.models import Role
from shortener.unit_of_work import reading_session, report_session

bp = Blueprint("outcomes", __name__, url_prefix="/api/v1")

MAX_BULK = 1000


@bp.post("/conversions")
@requires(Role.TRACKER)
def post_conversion() -> Any:
    if not request.is_json:
        raise BadRequestError("The request body must be JSON (Content-Type: application/json).")
    body, status = _record(reading_session(), request_input.parse_json(request.get_data()), {})
    return body, status


@bp.post("/conversions/bulk")
@requires(Role.TRACKER)
def post_conversions() -> Any:
    """Many conversions at once (offline sales): a JSON list (or `{"rows": [...]}`) or CSV with
    a header row of the same fields; a result per row, in order."""
    rows = _bulk_rows()
    if len(rows) > MAX_BULK:
        raise BadRequestError(f"At most {MAX_BULK} rows per call; this one has {len(rows)}.")
    session, seen = reading_session(), dict[str, str]()
    results = []
    for number, row in enumerate(rows, start=1):
        try:
            body, status = _record(session, row, seen)
        except DomainError as exc:
            if exc.status >= 500:
                raise
            body, status = exc.to_json(), exc.status
        results.append({"row": number, "status": status, **body})
    counts = {name: sum(1 for r in results if r["status"] == code)
              for name, code in (("accepted", 202), ("duplicates", 200))}
    return {**counts, "refused": len(results) - sum(counts.values()), "results": results}


@bp.get("/reports/conversions")
@requires(Role.ANALYST)
def conversion_report() -> Any:
    ask = _ask({"event", "interval"})
    report = conversions.conversion_report(
        report_session(), ask.query, event=_event(),
        interval=timeseries.parse_interval(request.args),
    )
    return respond(report, ask.format)


@bp.get("/reports/attribution")
@requires(Role.ANALYST)
def attribution_report() -> Any:
    ask = _ask({"event", "model", "lookback_days"})
    report = attribution.attribution(
        report_session(), ask.query, event=_event(),
        model=attribution.parse_model(request.args.get("model")),
        lookback_days=attribution.parse_lookback(request.args.get("lookback_days")),
    )
    return respond(report, ask.format)


def _ask(takes: set[str]) -> ReportRequest:
    return ReportRequest.from_args(
        request.args, now=utcnow(), zone=runtime().settings.zone, takes=takes
    )


def _event() -> str | None:
    event = (request.args.get("event") or "").strip()
    if event and not EVENT.fullmatch(event):
        raise InvalidParameterError("event", "must be an event name (a-z, 0-9, _ and -)")
    return event or None


def _record(
    session: Session, data: Any, seen: dict[str, str]
) -> tuple[dict[str, Any], int]:
    """Check one conversion and hand it on; `seen` keeps the external ids of this call."""
    rt = runtime()
    conversion = conversion_from_json(
        session, data, tokens=rt.click_tokens, now=utcnow(),
        window_days=rt.settings.conversion_window_days,
    )
    external = conversion.external_id
    if external is not None and external in seen:
        accepted = Accepted(seen[external], duplicate=True)
    else:
        accepted = accept(session, conversion, rt.redis)
    if not accepted.duplicate:
        try:
            rt.sink.record(conversion)
        except Exception:
            release(rt.redis, external)  # not taken: a retry must not be called a duplicate
            raise
    if external is not None:
        seen[external] = accepted.id
    return conversion_json(conversion, accepted), 200 if accepted.duplicate else 202


def _bulk_rows() -> list[Any]:
    if request.mimetype == "text/csv":
        try:
            text = request.get_data().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise BadRequestError("The CSV must be UTF-8.") from None
        reader = csv.DictReader(io.StringIO(text))
        # Empty cells are fields not given; a value stays a string (a decimal, parsed exactly).
        return [{k: v for k, v in row.items() if k and v not in (None, "")} for row in reader]
    if not request.is_json:
        raise BadRequestError("Send JSON (a list of conversions) or CSV (Content-Type: text/csv).")
    data = request_input.parse_json(request.get_data())
    if isinstance(data, dict) and set(data) == {"rows"}:
        data = data["rows"]
    if not isinstance(data, list):
        raise BadRequestError('The body must be a list of conversions, or {"rows": [...]}.')
    return data
