"""The JSON API for stages, touchpoints and links: thin views over the services."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, Response, g, request

from shortener import fields, links, stages, touchpoints
from shortener.clicks import SCAN_PARAM
from shortener.db import utcnow
from shortener.errors import BadRequestError, PermissionDeniedError
from shortener.keys import authenticate, record_use
from shortener.models import Link, Role, Stage, Touchpoint
from shortener.qr import QROptions, render_png, render_svg
from shortener.runtime import db_session, runtime

bp = Blueprint("api", __name__, url_prefix="/api/v1")

F = TypeVar("F", bound=Callable[..., Any])

def requires(role: Role) -> Callable[[F], F]:
    """Authenticate the bearer key and check that its role reaches `role`."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            session, now = db_session(), utcnow()
            key = authenticate(session, request.headers.get("Authorization"), now=now)
            session.commit()  # the stamp below then starts its own transaction, with a write
            record_use(session, key, now=now)
            session.commit()  # keeps last_used_at even when the view fails
            if not Role(key.role).allows(role):
                raise PermissionDeniedError(
                    f"This key has the {key.role} role; this needs {role.value} or above."
                )
            g.api_key = key
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def body() -> Any:
    if not request.is_json:
        raise BadRequestError("The request body must be JSON (Content-Type: application/json).")
    return fields.parse_json(request.get_data())


# --- serialisers -------------------------------------------------------------------------------


def stage_json(stage: Stage) -> dict[str, Any]:
    return {"key": stage.key, "name": stage.name, "position": stage.position}


def touchpoint_json(tp: Touchpoint) -> dict[str, Any]:
    return {
        "key": tp.key,
        "name": tp.name,
        "channel": tp.channel,
        "kind": tp.kind,
        "exposure": tp.exposure,
        "archived": tp.archived,
        "created_at": tp.created_at.isoformat(),
    }


def link_json(link: Link) -> dict[str, Any]:
    return {
        "id": link.id,
        "slug": link.slug,
        "domain": link.domain,
        "short_url": short_url(link),
        "url": link.destination,
        "touchpoint": link.touchpoint.key,
        "stage": link.stage.key,
        "campaign": link.campaign,
        "title": link.title,
        "redirect_status": link.redirect_status,
        "utm": link.utm,
        "expires_at": link.expires_at.isoformat() if link.expires_at else None,
        "created_at": link.created_at.isoformat(),
        "archived": link.archived,
        "qr_svg": f"/api/v1/links/{link.id}/qr.svg",
        "qr_png": f"/api/v1/links/{link.id}/qr.png",
    }


def short_url(link: Link) -> str:
    scheme = runtime().settings.base_url.split("://", 1)[0]
    return f"{scheme}://{link.domain}/{link.slug}"


def scan_url(link: Link) -> str:
    return f"{short_url(link)}?{SCAN_PARAM}=1"


# --- stages ------------------------------------------------------------------------------------


@bp.get("/stages")
@requires(Role.ANALYST)
def list_stages() -> Any:
    return {"items": [stage_json(s) for s in stages.list_stages(db_session())]}


@bp.post("/stages")
@requires(Role.ADMIN)
def create_stage() -> Any:
    session = db_session()
    stage = stages.create_stage(session, stages.StageInput.from_json(body()))
    session.commit()
    return stage_json(stage), 201


@bp.put("/stages/order")
@requires(Role.ADMIN)
def reorder_stages() -> Any:
    session = db_session()
    ordered = stages.reorder_stages(session, stages.order_from_json(body()))
    session.commit()
    return {"items": [stage_json(s) for s in ordered]}


# --- touchpoints -------------------------------------------------------------------------------


@bp.get("/touchpoints")
@requires(Role.ANALYST)
def list_touchpoints() -> Any:
    found = touchpoints.list_touchpoints(
        db_session(),
        channel=fields.text_param(request.args, "channel", max_length=16),
        include_archived=request.args.get("archived") == "include",
    )
    return {"items": [touchpoint_json(tp) for tp in found]}


@bp.post("/touchpoints")
@requires(Role.MARKETER)
def create_touchpoint() -> Any:
    session = db_session()
    tp = touchpoints.create_touchpoint(session, touchpoints.TouchpointInput.from_json(body()))
    session.commit()
    return touchpoint_json(tp), 201


@bp.get("/touchpoints/<key>")
@requires(Role.ANALYST)
def get_touchpoint(key: str) -> Any:
    return touchpoint_json(touchpoints.get_touchpoint(db_session(), key))


@bp.patch("/touchpoints/<key>")
@requires(Role.MARKETER)
def update_touchpoint(key: str) -> Any:
    session = db_session()
    data = touchpoints.TouchpointInput.from_json(body(), partial=True)
    tp = touchpoints.update_touchpoint(session, key, data)
    session.commit()
    forget_links_of(tp)
    return touchpoint_json(tp)


@bp.delete("/touchpoints/<key>")
@requires(Role.MARKETER)
def archive_touchpoint(key: str) -> Any:
    session = db_session()
    tp = touchpoints.archive_touchpoint(session, key)
    session.commit()
    return touchpoint_json(tp)


# --- links -------------------------------------------------------------------------------------


@bp.get("/links")
@requires(Role.ANALYST)
def list_links() -> Any:
    args = request.args
    where = links.LinkFilter.from_args(args)
    page = links.list_links(
        db_session(), where, limit=links.parse_limit(args.get("limit")), cursor=args.get("cursor")
    )
    return {"items": [link_json(link) for link in page.items], "next_cursor": page.next_cursor}


@bp.post("/links")
@requires(Role.MARKETER)
def create_link() -> Any:
    session = db_session()
    settings = runtime().settings
    link = links.create_link(
        session,
        links.LinkInput.from_json(body()),
        domain=settings.short_host,
        own_hosts=settings.own_hosts,
        default_status=settings.default_redirect_status,
    )
    session.commit()
    runtime().resolver.invalidate(link.domain, link.slug)  # a cached "not found" may linger
    return link_json(link), 201


@bp.get("/links/<int:link_id>")
@requires(Role.ANALYST)
def get_link(link_id: int) -> Any:
    return link_json(links.get_link(db_session(), link_id))


@bp.patch("/links/<int:link_id>")
@requires(Role.MARKETER)
def update_link(link_id: int) -> Any:
    session = db_session()
    old_slug = links.get_link(session, link_id).slug
    data = links.LinkInput.from_json(body(), partial=True)
    link = links.update_link(session, link_id, data, own_hosts=runtime().settings.own_hosts)
    session.commit()
    runtime().resolver.invalidate(link.domain, old_slug)
    runtime().resolver.invalidate(link.domain, link.slug)
    return link_json(link)


@bp.delete("/links/<int:link_id>")
@requires(Role.MARKETER)
def archive_link(link_id: int) -> Any:
    session = db_session()
    link = links.archive_link(session, link_id)
    session.commit()
    runtime().resolver.invalidate(link.domain, link.slug)
    return link_json(link)


@bp.get("/links/<int:link_id>/qr.<any(svg, png):fmt>")
@requires(Role.ANALYST)
def link_qr(link_id: int, fmt: str) -> Response:
    return qr_image(links.get_link(db_session(), link_id), fmt)


def qr_image(link: Link, fmt: str) -> Response:
    """The link's QR code as `fmt` (svg or png), with the options of the query string."""
    options = QROptions.from_args(request.args)
    data = scan_url(link)
    if fmt == "svg":
        response = Response(render_svg(data, options), mimetype="image/svg+xml")
    else:
        response = Response(render_png(data, options), mimetype="image/png")
    if request.args.get("download"):
        response.headers["Content-Disposition"] = f'attachment; filename="{link.slug}-qr.{fmt}"'
    return response


def forget_links_of(tp: Touchpoint) -> None:
    """Drop the cached targets of a touchpoint's links: they carry its key and channel as UTM."""
    resolver = runtime().resolver
    for link in links.links_of_touchpoint(db_session(), tp.id):
        resolver.invalidate(link.domain, link.slug)
