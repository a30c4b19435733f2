"""The JSON API for stages, touchpoints and links: thin views over the services."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import Blueprint, Response, request
from pydantic import Field
from typing_extensions import TypedDict

from shortener import bulk, links, placements, schemas, stages, touchpoints
from shortener.api_auth import requires
from shortener.bulk import LinkBulkReport, TouchpointBulkReport
from shortener.bulk_csv import LINK_COLUMNS, TOUCHPOINT_COLUMNS
from shortener.bulk_request import MEDIA as BULK_MEDIA
from shortener.bulk_request import BulkFlags, BulkRequest, LinkBulkFlags
from shortener.db import utcnow
from shortener.links import LinkOut, link_json
from shortener.models import Channel, Role
from shortener.openapi import operation
from shortener.placements import PlacementOut, placement_json
from shortener.qr import IMAGE_MEDIA, CodeQuery, QROptions, code_response
from shortener.runtime import runtime
from shortener.schemas import Items, Query
from shortener.stages import StageOut, stage_json
from shortener.touchpoints import TouchpointOut, touchpoint_json
from shortener.unit_of_work import db_session

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _scheme() -> str:
    return runtime().settings.scheme


# --- stages ------------------------------------------------------------------------------------


@bp.get("/stages")
@requires(Role.ANALYST)
@operation("The journey's stages, in order", responses={200: Items[StageOut]})
def list_stages() -> Any:
    return {"items": [stage_json(s) for s in stages.list_stages(db_session())]}


@bp.post("/stages")
@requires(Role.ADMIN)
@operation("Add a stage, last", body=stages.NewStage, responses={201: StageOut}, errors=(409,))
def create_stage(body: stages.NewStage) -> Any:
    stage = stages.create_stage(db_session(), stages.StageInput.of(body))
    return stage_json(stage), 201


@bp.put("/stages/order")
@requires(Role.ADMIN)
@operation("Put the stages in a new order", body=stages.StageOrder,
           responses={200: Items[StageOut]})
def reorder_stages(body: stages.StageOrder) -> Any:
    ordered = stages.reorder_stages(db_session(), body.keys)
    return {"items": [stage_json(s) for s in ordered]}


# --- touchpoints -------------------------------------------------------------------------------


class TouchpointFilter(Query):
    channel: Annotated[Channel, Field(strict=False)] | None = None
    archived: Literal["include"] | None = Field(default=None, description="include archived ones")


@bp.get("/touchpoints")
@requires(Role.ANALYST)
@operation("Touchpoints", query=TouchpointFilter, responses={200: Items[TouchpointOut]})
def list_touchpoints(query: TouchpointFilter) -> Any:
    found = touchpoints.list_touchpoints(
        db_session(),
        channel=query.channel.value if query.channel else None,
        include_archived=query.archived == "include",
    )
    return {"items": [touchpoint_json(tp) for tp in found]}


@bp.post("/touchpoints")
@requires(Role.MARKETER)
@operation("Add a touchpoint", body=touchpoints.NewTouchpoint, responses={201: TouchpointOut},
           errors=(409,))
def create_touchpoint(body: touchpoints.NewTouchpoint) -> Any:
    data = touchpoints.TouchpointInput.of(body)
    today = runtime().settings.today(utcnow())
    return touchpoint_json(touchpoints.create_touchpoint(db_session(), data, today=today)), 201


@bp.post("/touchpoints/bulk")
@requires(Role.MARKETER)
@operation("Add up to 10,000 touchpoints at once", query=BulkFlags, request_media=BULK_MEDIA,
           responses={200: TouchpointBulkReport}, errors=(409, 413, 415, 422))
def bulk_create_touchpoints(query: BulkFlags) -> Any:
    sent = BulkRequest.from_request(request, TOUCHPOINT_COLUMNS, query)
    report = bulk.import_touchpoints(
        db_session(), sent.rows, today=runtime().settings.today(utcnow()),
        atomic=sent.atomic, dry_run=sent.dry_run,
    )
    return bulk.report_json(report, "touchpoint", touchpoint_json)


@bp.get("/touchpoints/<key>")
@requires(Role.ANALYST)
@operation("A touchpoint", responses={200: TouchpointOut})
def get_touchpoint(key: str) -> Any:
    return touchpoint_json(touchpoints.get_touchpoint(db_session(), key))


@bp.patch("/touchpoints/<key>")
@requires(Role.MARKETER)
@operation("Change a touchpoint", body=touchpoints.TouchpointChange,
           responses={200: TouchpointOut}, errors=(409,))
def update_touchpoint(key: str, body: touchpoints.TouchpointChange) -> Any:
    data = touchpoints.TouchpointInput.of(body)
    return touchpoint_json(touchpoints.update_touchpoint(db_session(), key, data, now=utcnow()))


@bp.delete("/touchpoints/<key>")
@requires(Role.MARKETER)
@operation("Archive a touchpoint", responses={200: TouchpointOut})
def archive_touchpoint(key: str) -> Any:
    return touchpoint_json(touchpoints.archive_touchpoint(db_session(), key, now=utcnow()))


@bp.get("/touchpoints/<key>/exposures")
@requires(Role.ANALYST)
@operation("A touchpoint's placements: how many people it reached, when",
           responses={200: Items[PlacementOut]})
def list_exposures(key: str) -> Any:
    session = db_session()
    found = placements.list_placements(session, touchpoints.get_touchpoint(session, key))
    return {"items": [placement_json(p) for p in found]}


@bp.post("/touchpoints/<key>/exposures")
@requires(Role.MARKETER)
@operation("Add a placement", body=placements.NewPlacement, responses={201: PlacementOut})
def add_exposure(key: str, body: placements.NewPlacement) -> Any:
    session = db_session()
    touchpoint = touchpoints.get_touchpoint(session, key)
    data = placements.PlacementInput.of(body)
    return placement_json(placements.add_placement(session, touchpoint, data)), 201


@bp.delete("/touchpoints/<key>/exposures/<int:placement_id>")
@requires(Role.MARKETER)
@operation("Remove a placement", responses={200: PlacementOut})
def remove_exposure(key: str, placement_id: int) -> Any:
    session = db_session()
    touchpoint = touchpoints.get_touchpoint(session, key)
    return placement_json(placements.remove_placement(session, touchpoint, placement_id))


# --- links -------------------------------------------------------------------------------------


class LinkQuery(Query):
    touchpoint: Annotated[str, schemas.Line(64)] | None = None
    stage: Annotated[str, schemas.Line(64)] | None = None
    campaign: schemas.Text | None = None
    q: schemas.Text | None = Field(default=None, description="in the slug, title or destination")
    archived: Literal["include"] | None = Field(default=None, description="include archived ones")
    limit: Annotated[int, schemas.Between(1, links.MAX_PAGE)] = 50
    cursor: Annotated[str, Field(max_length=200)] | None = Field(
        default=None, description="the `next_cursor` of the page before"
    )


class LinkPage(TypedDict):
    items: list[LinkOut]
    next_cursor: str | None


@bp.get("/links")
@requires(Role.ANALYST)
@operation("Links, newest first, a page at a time", query=LinkQuery,
           responses={200: LinkPage})
def list_links(query: LinkQuery) -> Any:
    page = links.list_links(
        db_session(),
        links.LinkFilter(query.touchpoint, query.stage, query.campaign, query.q,
                         include_archived=query.archived == "include"),
        limit=query.limit,
        cursor=query.cursor,
    )
    items = [link_json(link, scheme=_scheme()) for link in page.items]
    return {"items": items, "next_cursor": page.next_cursor}


@bp.post("/links")
@requires(Role.MARKETER)
@operation("Make a short link", body=links.NewLink, responses={201: LinkOut}, errors=(409,))
def create_link(body: links.NewLink) -> Any:
    settings = runtime().settings
    link = links.create_link(
        db_session(),
        links.LinkInput.of(body),
        own_hosts=runtime().own_hosts(),
        default_status=settings.default_redirect_status,
    )
    return link_json(link, scheme=settings.scheme), 201


@bp.post("/links/bulk")
@requires(Role.MARKETER)
@operation("Make up to 10,000 links at once", query=LinkBulkFlags, request_media=BULK_MEDIA,
           responses={200: LinkBulkReport}, errors=(409, 413, 415, 422))
def bulk_create_links(query: LinkBulkFlags) -> Any:
    settings = runtime().settings
    sent = BulkRequest.from_request(request, LINK_COLUMNS, query)
    report = bulk.import_links(
        db_session(), sent.rows, domain=query.domain, own_hosts=runtime().own_hosts(),
        default_status=settings.default_redirect_status, atomic=sent.atomic, dry_run=sent.dry_run,
    )
    return bulk.report_json(report, "link", lambda link: link_json(link, scheme=settings.scheme))


@bp.get("/links/<int:link_id>")
@requires(Role.ANALYST)
@operation("A link", responses={200: LinkOut})
def get_link(link_id: int) -> Any:
    return link_json(links.get_link(db_session(), link_id), scheme=_scheme())


@bp.patch("/links/<int:link_id>")
@requires(Role.MARKETER)
@operation("Change a link", body=links.LinkChange, responses={200: LinkOut}, errors=(409,))
def update_link(link_id: int, body: links.LinkChange) -> Any:
    data = links.LinkInput.of(body)
    own_hosts = runtime().own_hosts()
    link = links.update_link(db_session(), link_id, data, own_hosts=own_hosts, now=utcnow())
    return link_json(link, scheme=_scheme())


@bp.delete("/links/<int:link_id>")
@requires(Role.MARKETER)
@operation("Archive a link: it answers 410 from then on", responses={200: LinkOut})
def archive_link(link_id: int) -> Any:
    return link_json(links.archive_link(db_session(), link_id, now=utcnow()), scheme=_scheme())


@bp.get("/links/<int:link_id>/qr.<any(svg, png):fmt>")
@requires(Role.ANALYST)
@operation("A link's QR code, as SVG or PNG", query=CodeQuery, media=IMAGE_MEDIA)
def link_qr(link_id: int, fmt: str, query: CodeQuery) -> Response:
    link = links.get_link(db_session(), link_id)
    data = links.scan_url(link, scheme=_scheme())
    options = QROptions.of(query)
    return code_response(data, options, fmt=fmt, name=link.slug, download=query.download)
