"""The body of a bulk request, JSON rows or a CSV file, and its options (atomic, dry run)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from flask import Request
from pydantic import Field
from werkzeug.exceptions import RequestEntityTooLarge

from shortener import request_input, schemas
from shortener.bulk import MAX_ROWS, Row
from shortener.bulk_csv import Columns, NoRowsError, TooManyRowsError, rows_from_csv
from shortener.errors import BadRequestError, DomainError

# 10,000 rows of long URLs and titles; far more than the 1 MiB other requests may send.
MAX_BODY = 16 * 1024 * 1024
CSV_TYPES = frozenset({"text/csv", "application/csv"})


class UnsupportedBodyError(DomainError):
    code = "unsupported_media_type"
    status = 415


class BodyTooLargeError(DomainError):
    code = "request_entity_too_large"
    status = 413

    def __init__(self) -> None:
        super().__init__(
            f"The request body is larger than {MAX_BODY // (1024 * 1024)} MiB.",
            details={"limit": MAX_BODY},
        )


class BulkFlags(schemas.Query):
    atomic: bool = Field(default=False, description="all rows or none")
    dry_run: bool = Field(default=False, description="check every row, store none")


class LinkBulkFlags(BulkFlags):
    domain: Annotated[str, schemas.Line(300)] | None = Field(
        default=None, description="of the rows that name none"
    )


class BulkBody(schemas.Body):
    # Any JSON values: a row that is not an object is refused on its own, by its number.
    rows: list[Any] = Field(description="one object per row, as the single create takes")
    atomic: bool = schemas.optional(description="overrides the query parameter")
    dry_run: bool = schemas.optional(description="overrides the query parameter")


# What a bulk request may send: its rows as JSON, as CSV, or as an uploaded CSV file.
MEDIA = {
    "application/json": {"schema": BulkBody},
    "text/csv": {"schema": {"type": "string"}},
    "multipart/form-data": {"schema": {
        "type": "object", "properties": {"file": {"type": "string", "format": "binary"}},
        "required": ["file"],
    }},
}


@dataclass(frozen=True, slots=True)
class BulkRequest:
    rows: list[Row]
    atomic: bool
    dry_run: bool

    @classmethod
    def from_request(cls, request: Request, columns: Columns, flags: BulkFlags) -> BulkRequest:
        """JSON `{"rows": [...], "atomic"?, "dry_run"?}`, a `text/csv` body, or a multipart
        upload whose `file` field is the CSV; `atomic` and `dry_run` may also be query
        parameters (`flags`; a JSON field given wins)."""
        atomic, dry_run = flags.atomic, flags.dry_run
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise BodyTooLargeError()
        request.max_content_length = MAX_BODY
        try:
            if request.is_json:
                body = schemas.validate_body(
                    BulkBody, request_input.parse_json(request.get_data())
                )
                given = body.given()
                atomic = given.get("atomic", atomic)
                dry_run = given.get("dry_run", dry_run)
                return cls(rows_from_json(body.rows), atomic, dry_run)
            if request.mimetype in CSV_TYPES:
                return cls(rows_from_csv(request.get_data(), columns), atomic, dry_run)
            if request.mimetype == "multipart/form-data":
                upload = request.files.get("file")
                if upload is None:
                    raise BadRequestError(
                        "The upload has no `file` field: send the CSV file as the field `file`."
                    )
                return cls(rows_from_csv(upload.read(), columns), atomic, dry_run)
        except RequestEntityTooLarge:
            raise BodyTooLargeError() from None
        raise UnsupportedBodyError(
            "Send the rows as JSON (Content-Type: application/json, {\"rows\": [...]}), as CSV "
            "(Content-Type: text/csv), or as a CSV file upload (multipart/form-data, field "
            "`file`)."
        )


def rows_from_json(rows: list[Any]) -> list[Row]:
    if len(rows) > MAX_ROWS:
        raise TooManyRowsError(MAX_ROWS)
    if not rows:
        raise NoRowsError("The list of rows is empty.")
    return [Row(number, fields) for number, fields in enumerate(rows, start=1)]
