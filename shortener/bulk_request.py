"""The body of a bulk request, JSON rows or a CSV file, and its options (atomic, dry run)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge

from shortener import request_input
from shortener.bulk import MAX_ROWS, Row
from shortener.bulk_csv import Columns, NoRowsError, TooManyRowsError, rows_from_csv
from shortener.errors import BadRequestError, DomainError, InvalidFieldError, InvalidParameterError

# 10,000 rows of long URLs and titles; far more than the 1 MiB other requests may send.
MAX_BODY = 16 * 1024 * 1024
CSV_TYPES = frozenset({"text/csv", "application/csv"})
BODY_FIELDS = frozenset({"rows", "atomic", "dry_run"})
_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


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


@dataclass(frozen=True, slots=True)
class BulkRequest:
    rows: list[Row]
    atomic: bool
    dry_run: bool

    @classmethod
    def from_request(cls, request: Request, columns: Columns) -> BulkRequest:
        """JSON `{"rows": [...], "atomic"?, "dry_run"?}`, a `text/csv` body, or a multipart
        upload whose `file` field is the CSV; `atomic` and `dry_run` may also be query
        parameters (a JSON field given wins)."""
        atomic = flag_param(request.args, "atomic")
        dry_run = flag_param(request.args, "dry_run")
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise BodyTooLargeError()
        request.max_content_length = MAX_BODY
        try:
            if request.is_json:
                data = request_input.json_object(request_input.parse_json(request.get_data()))
                request_input.reject_unknown(data, BODY_FIELDS)
                atomic = _flag_field(data, "atomic", atomic)
                dry_run = _flag_field(data, "dry_run", dry_run)
                return cls(rows_from_json(data.get("rows")), atomic, dry_run)
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


def rows_from_json(rows: Any) -> list[Row]:
    if not isinstance(rows, list):
        raise InvalidFieldError("rows", "must be a list of objects, one per row")
    if len(rows) > MAX_ROWS:
        raise TooManyRowsError(MAX_ROWS)
    if not rows:
        raise NoRowsError("The list of rows is empty.")
    return [Row(number, fields) for number, fields in enumerate(rows, start=1)]


def flag_param(args: Any, name: str) -> bool:
    raw = args.get(name, "").strip().lower()
    if not raw:
        return False
    if raw not in _FLAGS:
        raise InvalidParameterError(name, "must be true or false")
    return _FLAGS[raw]


def _flag_field(data: dict[str, Any], name: str, default: bool) -> bool:
    value = request_input.boolean(data, name)
    return default if value is request_input.MISSING else bool(value)
