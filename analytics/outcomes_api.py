"""The conversions API: a shop (a tracker key, or any role above) posts what came of a click or
a coupon. 202 when accepted (in Redis, the spool or SQL: stored exactly once by the worker), 200
with the first one's id when its `external_id` was seen before, 422 naming the field at fault.
And their reports (analyst role and above): conversions over time, and attribution."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal, NotRequired

from flask import Blueprint, request
from pydantic import Field
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from analytics.conversions import (
    Accepted,
    ConversionOut,
    NewConversion,
    accept,
    conversion_from_json,
    conversion_json,
    conversion_of,
    release,
)
from analytics.reports import attribution, conversions
from analytics.reports.attribution import AttributionArgs, AttributionReportOut
from analytics.reports.conversions import ConversionArgs, ConversionReportOut
from analytics.reports.query import ReportArgs, ReportQuery
from analytics.reports.render import respond
from analytics.runtime import runtime
from shortener import request_input, schemas
from shortener.api_auth import requires
from shortener.db import utcnow
from shortener.errors import BadRequestError, DomainError
from shortener.models import Role
from shortener.openapi import operation
from shortener.outcomes import ConversionEvent
from shortener.schemas import ErrorDetail
from shortener.unit_of_work import reading_session, report_session

bp = Blueprint("outcomes", __name__, url_prefix="/api/v1")

MAX_BULK = 1000


class ConversionRows(schemas.Body):
    """Bulk conversions as a JSON object (a bare list of them is taken too). Each row is checked
    on its own, and answered in the results, so this describes the body but is not applied."""

    rows: Annotated[list[NewConversion], Field(max_length=MAX_BULK)]


BULK_MEDIA = {
    "application/json": {
        "schema": Annotated[list[NewConversion], Field(max_length=MAX_BULK)] | ConversionRows
    },
    "text/csv": {"schema": {
        "type": "string", "description": "a header row of the fields, then one row each",
    }},
}


class ConversionResult(TypedDict):
    """A row's answer: its conversion's (as the single post's), or its error."""

    row: int
    status: int  # the single post's: 202, 200 for a duplicate, or the error's
    id: NotRequired[str]
    result: NotRequired[Literal["accepted", "duplicate"]]
    event: NotRequired[str]
    external_id: NotRequired[str | None]
    error: NotRequired[ErrorDetail]


class ConversionBulkReport(TypedDict):
    accepted: int
    duplicates: int
    refused: int
    results: list[ConversionResult]


@bp.post("/conversions")
@requires(Role.TRACKER)
@operation("Report a conversion of a click or a coupon", body=NewConversion,
           responses={202: ConversionOut, 200: ConversionOut})
def post_conversion(body: NewConversion) -> Any:
    rt, session = runtime(), reading_session()
    conversion = conversion_of(
        session, body, tokens=rt.click_tokens, now=utcnow(),
        window_days=rt.settings.conversion_window_days,
    )
    return _record(session, conversion, {})


@bp.post("/conversions/bulk")
@requires(Role.TRACKER)
@operation(f"Report up to {MAX_BULK:,} conversions at once, a result each",
           request_media=BULK_MEDIA, responses={200: ConversionBulkReport}, errors=(400, 413))
def post_conversions() -> Any:
    """Many conversions at once (offline sales): a JSON list (or `{"rows": [...]}`) or CSV with
    a header row of the same fields; a result per row, in order."""
    rows = _bulk_rows()
    if len(rows) > MAX_BULK:
        raise BadRequestError(f"At most {MAX_BULK} rows per call; this one has {len(rows)}.")
    session, seen = reading_session(), dict[str, str]()
    results = [_row_result(session, number, row, seen) for number, row in enumerate(rows, 1)]
    accepted = sum(1 for r in results if r["status"] == 202)
    duplicates = sum(1 for r in results if r["status"] == 200)
    report: ConversionBulkReport = {
        "accepted": accepted, "duplicates": duplicates,
        "refused": len(results) - accepted - duplicates, "results": results,
    }
    return report


@bp.get("/reports/conversions")
@requires(Role.ANALYST)
@operation("Conversions and revenue per touchpoint, and over time", query=ConversionArgs,
           responses={200: ConversionReportOut}, csv=True)
def conversion_report(query: ConversionArgs) -> Any:
    report = conversions.conversion_report(
        report_session(), _window(query), event=query.event, interval=query.interval
    )
    return respond(report, query.format)


@bp.get("/reports/attribution")
@requires(Role.ANALYST)
@operation("Conversions credited to the touchpoints of their journeys", query=AttributionArgs,
           responses={200: AttributionReportOut}, csv=True)
def attribution_report(query: AttributionArgs) -> Any:
    report = attribution.attribution(
        report_session(), _window(query), event=query.event, model=query.model,
        lookback_days=query.lookback_days,
    )
    return respond(report, query.format)


def _window(query: ReportArgs) -> ReportQuery:
    return ReportQuery.of(query, now=utcnow(), zone=runtime().settings.zone)


def _row_result(
    session: Session, number: int, row: Any, seen: dict[str, str]
) -> ConversionResult:
    """One bulk row checked and handed on like a single post, or refused by its error."""
    rt = runtime()
    try:
        conversion = conversion_from_json(
            session, row, tokens=rt.click_tokens, now=utcnow(),
            window_days=rt.settings.conversion_window_days,
        )
        body, status = _record(session, conversion, seen)
    except DomainError as exc:
        if exc.status >= 500:
            raise
        return {"row": number, "status": exc.status, "error": exc.to_json()["error"]}
    return {"row": number, "status": status, "id": body["id"], "result": body["result"],
            "event": body["event"], "external_id": body["external_id"]}


def _record(
    session: Session, conversion: ConversionEvent, seen: dict[str, str]
) -> tuple[ConversionOut, int]:
    """Hand a checked conversion on, once; `seen` keeps the external ids of this call."""
    rt = runtime()
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
