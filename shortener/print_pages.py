"""The print kit's views: the QR sheet as a PDF (API and page), and single codes with a logo.

`GET /api/v1/qr-sheet.pdf` takes the same selection as the page's form and the CLI;
`POST /api/v1/links/{id}/qr.svg|png` is the code of `GET` on the same path with a logo uploaded
as the multipart field `logo`. The page `/links/print` lets a marketer tick links and download a
sheet; it lives under /links, a path no slug can take, like every page of the link side.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, render_template, request, url_for
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from shortener import links, schemas
from shortener.api_auth import requires
from shortener.db import utcnow
from shortener.errors import NotFoundError
from shortener.forms import submit
from shortener.links import scan_url
from shortener.models import Channel, Role
from shortener.nav import add_nav_item
from shortener.openapi import operation
from shortener.print_logo import LOGO_MAX_BYTES, InvalidLogoError, Logo
from shortener.print_selection import (
    MAX_CODES,
    Selection,
    SelectionQuery,
    find_touchpoint,
    printable_query,
    select_links,
)
from shortener.print_sheet import (
    COLUMNS_MAX,
    PAPERS,
    LayoutQuery,
    SheetEntry,
    SheetLayout,
    render_sheet,
)
from shortener.qr import (
    CAPTION_MAX,
    IMAGE_MEDIA,
    CodeQuery,
    QROptions,
    code_response,
    qr_response,
)
from shortener.runtime import runtime
from shortener.signin import signed_in
from shortener.touchpoints import list_touchpoints
from shortener.unit_of_work import db_session

api_bp = Blueprint("print_api", __name__, url_prefix="/api/v1")
bp = Blueprint("print_kit", __name__)

# Room in a request for the form fields around a logo of the largest size allowed.
UPLOAD_ROOM = 64 * 1024
UPLOADS = frozenset({"print_api.api_logo_code", "print_kit.code"})
PAPER_NAMES = {"a4": "A4, 210 by 297 mm", "letter": "US Letter, 8.5 by 11 in"}
# A code with a logo: the logo, and the drawing options as fields beside it if not in the query.
LOGO_FORM = {"multipart/form-data": {"schema": {
    "type": "object",
    "properties": {
        "logo": {"type": "string", "format": "binary", "description": "a PNG or SVG image"},
        **CodeQuery.model_json_schema()["properties"],
    },
    "required": ["logo"],
}}}


class SheetQuery(SelectionQuery, LayoutQuery):
    """A sheet's codes, and how they are laid out."""


def sheet_response(session: Session, selection: Selection, layout: SheetLayout) -> Response:
    """The PDF of the codes `selection` names, laid out as `layout` says."""
    settings = runtime().settings
    found = select_links(session, selection, domain=settings.short_host, now=utcnow())
    entries = [SheetEntry.of(link, scheme=settings.scheme) for link in found]
    pdf = render_sheet(entries, layout, title=_title(selection))
    name = selection.touchpoint or selection.channel or "sheet"
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="qr-{name}.pdf"'},
    )


def _title(selection: Selection) -> str:
    if selection.touchpoint:
        return f"QR codes of the touchpoint {selection.touchpoint}"
    if selection.channel:
        return f"QR codes of the {selection.channel} touchpoints"
    return "QR codes"


def _allow_logo_uploads() -> None:
    """Lift the body limit for the requests that upload a logo. It must be done before anything
    reads the form, the CSRF check included, so this runs first of the app's request hooks."""
    if request.endpoint in UPLOADS:
        request.max_content_length = LOGO_MAX_BYTES + UPLOAD_ROOM


def uploaded_logo(*, required: bool) -> Logo | None:
    """The multipart field `logo` checked as a logo; None when absent and not `required`."""
    upload = request.files.get("logo")
    if upload is None or not upload.filename:
        if required:
            raise InvalidLogoError(
                "is required: send a PNG or SVG image as the multipart form field 'logo'"
            )
        return None
    return Logo.from_upload(upload.read())


# --- API -------------------------------------------------------------------------------------


@api_bp.get("/qr-sheet.pdf")
@requires(Role.ANALYST)
@operation("A PDF sheet of QR codes, each with its touchpoint, stage and short URL",
           query=SheetQuery, errors=(404, 422),
           media={"application/pdf": {"schema": {"type": "string", "format": "binary"}}})
def api_sheet(query: SheetQuery) -> Response:
    selection = Selection.of(query.every_link(request.args))
    return sheet_response(db_session(), selection, SheetLayout.of(query))


@api_bp.post("/links/<int:link_id>/qr.<any(svg, png):fmt>")
@requires(Role.ANALYST)
@operation("A link's QR code with a logo in its centre, read back before it is sent",
           query=CodeQuery, request_media=LOGO_FORM, media=IMAGE_MEDIA, errors=(413, 422))
def api_logo_code(link_id: int, fmt: str, query: CodeQuery) -> Response:
    logo = uploaded_logo(required=True)
    # Options may come as form fields beside the logo too; those of the query string win.
    sent = schemas.validate_query(CodeQuery, request.form)
    sent = sent.model_copy(update=query.model_dump(exclude_unset=True))
    link = links.get_link(db_session(), link_id)
    data = scan_url(link, scheme=runtime().settings.scheme)
    return code_response(
        data, QROptions.of(sent), fmt=fmt, name=link.slug, logo=logo, download=sent.download
    )


# --- the page --------------------------------------------------------------------------------


def _page(errors: dict[str, str], *, code_errors: dict[str, str] | None = None) -> str:
    session = db_session()
    args = request.args
    key = args.get("touchpoint", "").strip()
    channel = args.get("channel", "").strip() if "channel" in args else Channel.PHYSICAL.value
    touchpoint = None
    if key:
        try:
            touchpoint = find_touchpoint(session, key)
        except NotFoundError:
            errors = {"touchpoint": f"No touchpoint with key '{key}'.", **errors}
    # A touchpoint chosen is printed whatever its channel.
    channel = channel if channel in set(Channel) and touchpoint is None else ""
    query = printable_query(touchpoint=touchpoint, channel=channel or None, now=utcnow())
    shown = list(session.scalars(query.limit(MAX_CODES + 1)).unique())
    ticked = set(request.form.getlist("links")) if request.method == "POST" else None
    filter_args: dict[str, Any] = {"touchpoint": key, "channel": channel}
    return render_template(
        "print.html",
        links=shown[:MAX_CODES],
        more=len(shown) > MAX_CODES,
        limit=MAX_CODES,
        ticked=ticked,
        touchpoints=list_touchpoints(session, include_archived=True),
        channels=[c.value for c in Channel],
        key=key,
        channel=channel,
        filter_args=filter_args,
        papers=[(paper, PAPER_NAMES[paper]) for paper in PAPERS],
        columns=[(str(n), str(n)) for n in range(1, COLUMNS_MAX + 1)],
        code_links=[
            (link.id, f"/{link.slug} · {link.touchpoint.name} · {link.stage.name}")
            for link in shown[:MAX_CODES]
        ],
        values=request.form if request.method == "POST" else {},
        errors=errors,
        code_errors=code_errors or {},
        caption_max=CAPTION_MAX,
        logo_max=LOGO_MAX_BYTES,
        sheet_action=url_for(".sheet", **filter_args),
        code_action=url_for(".code", **filter_args),
    )


@bp.get("/links/print")
@signed_in(Role.MARKETER)
def print_page() -> str:
    return _page({})


@bp.post("/links/print/sheet.pdf")
@signed_in(Role.MARKETER)
def sheet() -> Any:
    if not request.form.getlist("links"):
        return _page({"links": "Tick at least one link to print."}), 422
    return submit(lambda: sheet_response(
        db_session(), Selection.from_args(request.form), SheetLayout.from_args(request.form)
    ), _page)


@bp.post("/links/print/code")
@signed_in(Role.MARKETER)
def code() -> Any:
    def draw() -> Response:
        logo = uploaded_logo(required=False)
        link = links.get_link(db_session(), _link_id(request.form.get("link", "")))
        data = scan_url(link, scheme=runtime().settings.scheme)
        fmt = "svg" if request.form.get("format") == "svg" else "png"
        form = MultiDict({**request.form.to_dict(), "download": "1"})
        return qr_response(data, form, fmt=fmt, name=link.slug, logo=logo)

    return submit(draw, lambda errors: _page({}, code_errors=errors))


def _link_id(raw: str) -> int:
    raw = raw.strip()
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 10 else 0


def init_app(app: Flask) -> None:
    """The print kit: its API routes, its page and the page's place in the navigation."""
    app.register_blueprint(api_bp)
    app.register_blueprint(bp)
    app.before_request_funcs.setdefault(None, []).insert(0, _allow_logo_uploads)
    add_nav_item(
        app, "print_kit.print_page", "Print", role=Role.MARKETER, position=35,
        section="print_kit.",
    )
