"""The import page: a marketer uploads a CSV file of links or touchpoints, sees each row checked
(a dry run, by the rules of the single create) before anything is written, imports, and downloads
the result of every row as CSV.

The file travels from the preview to the import inside the page's form (base64), and the results
from the result page to their download the same way, so that no upload is kept on any server:
each step checks everything again.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, render_template, request

from shortener import bulk, stages
from shortener.bulk import Outcome, Report, Row, RowsInvalidError
from shortener.bulk_csv import (
    LINK_COLUMNS,
    TOUCHPOINT_COLUMNS,
    Columns,
    results_csv,
    rows_from_csv,
)
from shortener.bulk_request import MAX_BODY
from shortener.db import utcnow
from shortener.errors import BadRequestError, DomainError
from shortener.links import short_url
from shortener.models import Role
from shortener.nav import add_nav_item
from shortener.runtime import runtime
from shortener.signin import signed_in
from shortener.unit_of_work import db_session, rollback_request

# Under /links/ and /touchpoints/, whose names no slug may take: /import could be a link's slug.
bp = Blueprint("imports", __name__, url_prefix="/<any(links, touchpoints):kind>/import")

SHOWN_VALID = 100  # valid rows listed on a page; every refused row is listed
# The file comes back base64-encoded in the preview's form: a third larger than the upload.
MAX_FORM = MAX_BODY * 4 // 3 + 64 * 1024


@dataclass(frozen=True, slots=True)
class Kind:
    name: str  # links or touchpoints
    label: str
    columns: Columns
    results: tuple[str, ...]
    example: str  # a template file's header and one row


KINDS = {
    "links": Kind(
        "links", "Links", LINK_COLUMNS, ("slug", "short_url", "url"),
        "url,touchpoint,stage,slug,campaign,title\r\n"
        "https://shop.example.com/lyon,store-flyer-lyon,awareness,lyon,spring,Lyon store\r\n",
    ),
    "touchpoints": Kind(
        "touchpoints", "Touchpoints", TOUCHPOINT_COLUMNS, ("key", "name"),
        "key,name,channel,kind,exposure,coupons\r\n"
        "store-flyer-lyon,\"Store flyer, Lyon\",physical,advertising,2000,LYON10\r\n",
    ),
}


@bp.url_value_preprocessor
def _allow_large_uploads(_endpoint: str | None, _values: dict[str, Any] | None) -> None:
    # Runs before the app's hooks, the CSRF check among them, read the form: an import's file
    # may be far larger than the 1 MiB other forms may send.
    request.max_content_length = MAX_FORM
    request.max_form_memory_size = MAX_FORM


@bp.url_defaults
def _links_by_default(_endpoint: str, values: dict[str, Any]) -> None:
    values.setdefault("kind", "links")  # the navigation's link names no kind


@bp.get("")
@signed_in(Role.MARKETER)
def upload(kind: str) -> str:
    return _upload_page(KINDS[kind], error=None)


def _upload_page(kind: Kind, *, error: str | None) -> str:
    return render_template(
        "import_upload.html", kinds=KINDS.values(), kind=kind, error=error,
        stages=stages.list_stages(db_session()),
    )


@bp.get("/template.csv")
@signed_in(Role.MARKETER)
def template(kind: str) -> Response:
    return _csv_download(KINDS[kind].example, f"touchlink-{kind}.csv")


@bp.post("/preview")
@signed_in(Role.MARKETER)
def preview(kind: str) -> Any:
    chosen = KINDS[kind]
    try:
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise BadRequestError("Choose a CSV file to upload.")
        data = upload.read()
        rows = rows_from_csv(data, chosen.columns)
        report = _import(chosen, rows, atomic=False, dry_run=True)
    except DomainError as exc:
        return _upload_page(chosen, error=exc.message), exc.status
    return render_template(
        "import_preview.html", kind=chosen, report=report, shown=_shown(report),
        rows=_describe(chosen, rows), data=base64.b64encode(data).decode("ascii"),
        filename=upload.filename,
    )


@bp.post("/run")
@signed_in(Role.MARKETER)
def run(kind: str) -> Any:
    chosen = KINDS[kind]
    try:
        data = base64.b64decode(request.form.get("data", ""), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequestError("The file did not come back whole: upload it again.") from None
    atomic = request.form.get("atomic") == "on"
    try:
        rows = rows_from_csv(data, chosen.columns)
        report, status = _import(chosen, rows, atomic=atomic, dry_run=False), 200
    except RowsInvalidError as exc:
        rollback_request()
        report, status = exc.report, exc.status
    except DomainError as exc:
        rollback_request()
        return _upload_page(chosen, error=exc.message), exc.status
    describe = _describe(chosen, rows)
    results = results_csv(report, chosen.results, describe)
    return render_template(
        "import_done.html", kind=chosen, report=report, shown=_shown(report), rows=describe,
        results=base64.b64encode(results.encode("utf-8")).decode("ascii"),
    ), status


@bp.post("/results.csv")
@signed_in(Role.MARKETER)
def results(kind: str) -> Response:
    """The results file the result page carries, handed back as a download."""
    try:
        text = base64.b64decode(request.form.get("results", ""), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise BadRequestError("The results did not come back whole.") from None
    return _csv_download(text, f"touchlink-{kind}-import-results.csv")


def _import(kind: Kind, rows: list[Row], *, atomic: bool, dry_run: bool) -> Report:
    settings = runtime().settings
    if kind.name == "links":
        return bulk.import_links(
            db_session(), rows, domain=None, own_hosts=runtime().own_hosts(),
            default_status=settings.default_redirect_status, atomic=atomic, dry_run=dry_run,
        )
    return bulk.import_touchpoints(
        db_session(), rows, today=settings.today(utcnow()), atomic=atomic, dry_run=dry_run,
    )


def _shown(report: Report) -> list[Outcome]:
    """Every refused row, and the first valid ones."""
    valid = 0
    shown = []
    for outcome in report.outcomes:
        if outcome.ok:
            valid += 1
            if valid > SHOWN_VALID:
                continue
        shown.append(outcome)
    return shown


def _describe(kind: Kind, rows: list[Row]) -> Callable[[Outcome], Mapping[str, Any]]:
    """What a row makes, or would make: its slug and URL, or its key and name."""
    fields = {row.number: row.fields or {} for row in rows}
    scheme = runtime().settings.scheme

    def describe(outcome: Outcome) -> Mapping[str, Any]:
        made, given = outcome.created, fields.get(outcome.row, {})
        if kind.name == "links":
            return {
                "slug": made.slug if made else given.get("slug"),
                "short_url": short_url(made, scheme=scheme) if made else "",
                "url": made.destination if made else given.get("url"),
            }
        return {"key": made.key if made else given.get("key"),
                "name": made.name if made else given.get("name")}

    return describe


def _csv_download(text: str, filename: str) -> Response:
    return Response(
        text.encode("utf-8"),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    add_nav_item(
        app, "imports.upload", "Import", role=Role.MARKETER, position=40, section="imports."
    )
