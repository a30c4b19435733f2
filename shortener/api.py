"""The JSON API for stages, touchpoints and links: thin views over the services."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from shortener import bulk, links, placements, request_input, stages, touchpoints
from shortener.api_auth import requires
from shortener.bulk_csv import LINK_COLUMNS, TOUCHPOINT_COLUMNS
from shortener.bulk_request import BulkRequest
from shortener.db import utcnow
from shortener.errors import BadRequestError
from shortener.links import link_json
from shortener.models import Role
from shortener.placements import placement_json
from shortener.qr import qr_response
from shortener.runtime import runtime
from shortener.stages import stage_json
from shortener.touchpoints import touchpoint_json
from shortener.unit_of_work import db_session

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def body() -> Any:
    if not request.is_json:
        raise BadRequestError("The request body must be JSON (Content-Type: application/json).")
    return request_input.parse_json(request.get_data())


def _scheme() -> str:
    return runtime().settings.scheme


# --- stages ------------------------------------------------------------------------------------


@bp.get("/stages")
@requires(Role.ANALYST)
def list_stages() -> Any:
    return {"items": [stage_json(s) for s in stages.list_stages(db_session())]}


@bp.post("/stages")
@requires(Role.ADMIN)
def create_stage() -> Any:
    stage = stages.create_stage(db_session(), stages.StageInput.from_json(body()))
    return stage_json(stage), 201


@bp.put("/stages/order")
@requires(Role.ADMIN)
def reorder_stages() -> Any:
    ordered = stages.reorder_stages(db_session(), stages.order_from_json(body()))
    return {"items": [stage_json(s) for s in ordered]}


# --- touchpoints -------------------------------------------------------------------------------


@bp.get("/touchpoints")
@requires(Role.ANALYST)
def list_touchpoints() -> Any:
    found = touchpoints.list_touchpoints(
        db_session(),
        channel=request_input.text_param(request.args, "channel", max_length=16),
        include_archived=request.args.get("archived") == "include",
    )
    return {"items": [touchpoint_json(tp) for tp in found]}


@bp.post("/touchpoints")
@requires(Role.MARKETER)
def create_touchpoint() -> Any:
    data = touchpoints.TouchpointInput.from_json(body())
    today = runtime().settings.today(utcnow())
    return touchpoint_json(touchpoints.create_touchpoint(db_session(), data, today=today)), 201


@bp.post("/touchpoints/bulk")
@requires(Role.MARKETER)
def bulk_create_touchpoints() -> Any:
    sent = BulkRequest.from_request(request, TOUCHPOINT_COLUMNS)
    report = bulk.import_touchpoints(
        db_session(), sent.rows, today=runtime().settings.today(utcnow()),
        atomic=sent.atomic, dry_run=sent.dry_run,
    )
    return bulk.report_json(report, "touchpoint", touchpoint_json)


@bp.get("/touchpoints/<key>")
@requires(Role.ANALYST)
def get_touchpoint(key: str) -> Any:
    return touchpoint_json(touchpoints.get_touchpoint(db_session(), key))


@bp.patch("/touchpoints/<key>")
@requires(Role.MARKETER)
def update_touchpoint(key: str) -> Any:
    data = touchpoints.TouchpointInput.from_json(body(), partial=True)
    return touchpoint_json(touchpoints.update_touchpoint(db_session(), key, data, now=utcnow()))


@bp.delete("/touchpoints/<key>")
@requires(Role.MARKETER)
def archive_touchpoint(key: str) -> Any:
    return touchpoint_json(touchpoints.archive_touchpoint(db_session(), key, now=utcnow()))


@bp.get("/touchpoints/<key>/exposures")
@requires(Role.ANALYST)
def list_exposures(key: str) -> Any:
    session = db_session()
    found = placements.list_placements(session, touchpoints.get_touchpoint(session, key))
    return {"items": [placement_json(p) for p in found]}


@bp.post("/touchpoints/<key>/exposures")
@requires(Role.MARKETER)
def add_exposure(key: str) -> Any:
    session = db_session()
    touchpoint = touchpoints.get_touchpoint(session, key)
    data = placements.PlacementInput.from_json(body())
    return placement_json(placements.add_placement(session, touchpoint, data)), 201


@bp.delete("/touchpoints/<key>/exposures/<int:placement_id>")
@requires(Role.MARKETER)
def remove_exposure(key: str, placement_id: int) -> Any:
    session = db_session()
    touchpoint = touchpoints.get_touchpoint(session, key)
    return placement_json(placements.remove_placement(session, touchpoint, placement_id))


# --- links -------------------------------------------------------------------------------------


@bp.get("/links")
@requires(Role.ANALYST)
def list_links() -> Any:
    args = request.args
    page = links.list_links(
        db_session(),
        links.LinkFilter.from_args(args),
        limit=request_input.limit_param(args, default=50, maximum=links.MAX_PAGE),
        cursor=args.get("cursor"),
    )
    items = [link_json(link, scheme=_scheme()) for link in page.items]
    return {"items": items, "next_cursor": page.next_cursor}


@bp.post("/links")
@requires(Role.MARKETER)
def create_link() -> Any:
    settings = runtime().settings
    link = links.create_link(
        db_session(),
        links.LinkInput.from_json(body()),
        own_hosts=runtime().own_hosts(),
        default_status=settings.default_redirect_status,
    )
    return link_json(link, scheme=settings.scheme), 201


@bp.post("/links/bulk")
@requires(Role.MARKETER)
def bulk_create_links() -> Any:
    settings = runtime().settings
    sent = BulkRequest.from_request(request, LINK_COLUMNS)
    report = bulk.import_links(
        db_session(), sent.rows, domain=request.args.get("domain"), own_hosts=runtime().own_hosts(),
        default_status=settings.default_redirect_status, atomic=sent.atomic, dry_run=sent.dry_run,
    )
    return bulk.report_json(report, "link", lambda link: link_json(link, scheme=settings.scheme))


@bp.get("/links/<int:link_id>")
@requires(Role.ANALYST)
def get_link(link_id: int) -> Any:
    return link_json(links.get_link(db_session(), link_id), scheme=_scheme())


@bp.patch("/links/<int:link_id>")
@requires(Role.MARKETER)
def update_link(link_id: int) -> Any:
    data = links.LinkInput.from_json(body(), partial=True)
    own_hosts = runtime().own_hosts()
    link = links.update_link(db_session(), link_id, data, own_hosts=own_hosts, now=utcnow())
    return link_json(link, scheme=_scheme())


@bp.delete("/links/<int:link_id>")
@requires(Role.MARKETER)
def archive_link(link_id: int) -> Any:
    return link_json(links.archive_link(db_session(), link_id, now=utcnow()), scheme=_scheme())


@bp.get("/links/<int:link_id>/qr.<any(svg, png):fmt>")
@requires(Role.ANALYST)
def link_qr(link_id: int, fmt: str) -> Response:
    link = links.get_link(db_session(), link_id)
    data = links.scan_url(link, scheme=_scheme())
    return qr_response(data, request.args, fmt=fmt, name=link.slug)
