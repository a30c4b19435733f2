"""The marketer pages: touchpoints and links, made and changed through the services the API uses.

A form that the services refuse is shown again with each message next to its field (422, or 409
for a slug or key in use); nothing a person types reaches a 500.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response as BaseResponse

from shortener import links, stages, touchpoints
from shortener.api import forget_links_of, qr_image, scan_url, short_url
from shortener.db import utcnow
from shortener.errors import DomainError, InvalidFieldError, InvalidParameterError
from shortener.models import REDIRECT_STATUSES, Channel, Link, Role, Touchpoint
from shortener.qr import QROptions
from shortener.runtime import db_session, runtime
from shortener.web_auth import add_nav_item, signed_in

bp = Blueprint("marketer", __name__)

CLICK_FIGURES = "touchlink.click_figures"
# The pages count clicks over a recent window, which the rollups' index on the hour serves.
RECENT = timedelta(days=30)
LAST_CLICK_WINDOW = timedelta(days=90)
PAGE_SIZE = 50
QR_FIELDS = ("size", "margin", "ecc", "fg", "bg")
KINDS = (
    "advertising", "social", "email", "web", "checkout", "delivery", "support", "survey",
    "event", "signage", "sales",
)
STATUS_NAMES = {
    301: "301 Moved permanently",
    302: "302 Found (temporary)",
    307: "307 Temporary redirect",
    308: "308 Permanent redirect",
}


class ClickFigures(Protocol):
    """Click counts for the pages, provided by the click side (never imported from here)."""

    def link_clicks(
        self, session: Session, link_ids: Collection[int], *, since: datetime
    ) -> Mapping[int, int]: ...

    def last_clicks(
        self, session: Session, touchpoint_ids: Collection[int], *, since: datetime
    ) -> Mapping[int, datetime]: ...


def _figures() -> ClickFigures | None:
    figures: ClickFigures | None = current_app.extensions.get(CLICK_FIGURES)
    return figures


# --- queries the pages need beyond the services ---------------------------------------------------


def stage_coverage(session: Session) -> dict[int, dict[int, int]]:
    """Live links per touchpoint per stage: {touchpoint id: {stage id: links}}."""
    coverage: dict[int, dict[int, int]] = defaultdict(dict)
    rows = session.execute(
        select(Link.touchpoint_id, Link.stage_id, func.count())
        .where(Link.archived.is_(False))
        .group_by(Link.touchpoint_id, Link.stage_id)
    )
    for touchpoint_id, stage_id, count in rows:
        coverage[touchpoint_id][stage_id] = int(count)
    return coverage


def campaign_names(session: Session) -> list[str]:
    query = select(Link.campaign).where(Link.campaign.is_not(None)).distinct()
    return sorted(name for name in session.scalars(query) if name)


def field_errors(exc: DomainError) -> dict[str, str]:
    """A refusal as messages keyed by form field; `_form` when it names no field."""
    field = exc.details.get("field")
    if isinstance(field, str):
        prefix = f"{field}: "
        text = exc.message[len(prefix):] if exc.message.startswith(prefix) else exc.message
        return {field: text[:1].upper() + text[1:]}
    return {"_form": exc.message}


def _whole_number(raw: str, name: str) -> int:
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10:
        raise InvalidFieldError(name, "must be a whole number, like 5000")
    return int(raw)


def _optional(form: MultiDict[str, str], data: dict[str, Any], name: str, *, partial: bool) -> str:
    """Copy a text field that may be left blank: absent on a create, cleared on an edit."""
    value = form.get(name, "").strip()
    if value:
        data[name] = value
    elif partial:
        data[name] = None
    return value


def touchpoint_input(form: MultiDict[str, str], *, partial: bool) -> touchpoints.TouchpointInput:
    data: dict[str, Any] = {name: form.get(name, "") for name in ("key", "name", "channel")}
    _optional(form, data, "kind", partial=partial)
    exposure = form.get("exposure", "").strip().replace(",", "").replace(" ", "")
    if exposure:
        data["exposure"] = _whole_number(exposure, "exposure")
    elif partial:
        data["exposure"] = None
    return touchpoints.TouchpointInput.from_json(data, partial=partial)


def link_input(form: MultiDict[str, str], *, editing: Link | None = None) -> links.LinkInput:
    """A create's input, or with `editing`, an update's (the touchpoint only when it changes, so
    that a link of an archived touchpoint can still be edited)."""
    partial = editing is not None
    data: dict[str, Any] = {name: form.get(name, "") for name in ("url", "touchpoint", "stage")}
    if editing is not None and data["touchpoint"] == editing.touchpoint.key:
        del data["touchpoint"]
    slug = form.get("slug", "").strip()
    if slug:
        data["slug"] = slug
    _optional(form, data, "campaign", partial=partial)
    _optional(form, data, "title", partial=partial)
    _optional(form, data, "expires_at", partial=partial)
    data["utm"] = form.get("utm") == "on"
    status = form.get("redirect_status", "").strip()
    if status:
        data["redirect_status"] = _whole_number(status, "redirect_status")
    return links.LinkInput.from_json(data, partial=partial)


def _forget(*pairs: tuple[str, str]) -> None:
    resolver = runtime().resolver
    for domain, slug in pairs:
        resolver.invalidate(domain, slug)


# --- touchpoints ---------------------------------------------------------------------------------


@bp.get("/touchpoints")
@signed_in(Role.MARKETER)
def touchpoint_list() -> str:
    session = db_session()
    include_archived = request.args.get("archived") == "include"
    found = touchpoints.list_touchpoints(session, include_archived=include_archived)
    figures = _figures()
    last = (
        figures.last_clicks(
            session, [tp.id for tp in found], since=utcnow() - LAST_CLICK_WINDOW
        )
        if figures is not None
        else {}
    )
    return render_template(
        "touchpoints.html",
        touchpoints=found,
        stages=stages.list_stages(session),
        coverage=stage_coverage(session),
        last_clicks=last,
        include_archived=include_archived,
    )


def _touchpoint_form(
    values: Mapping[str, Any], *, touchpoint: Touchpoint | None, errors: dict[str, str]
) -> str:
    return render_template(
        "touchpoint_form.html",
        values=values,
        touchpoint=touchpoint,
        errors=errors,
        channels=[(c.value, c.value.capitalize()) for c in Channel],
        kinds=KINDS,
    )


@bp.route("/touchpoints/new", methods=["GET", "POST"])
@signed_in(Role.MARKETER)
def touchpoint_new() -> Any:
    if request.method == "GET":
        return _touchpoint_form({"channel": "digital"}, touchpoint=None, errors={})
    session = db_session()
    try:
        tp = touchpoints.create_touchpoint(session, touchpoint_input(request.form, partial=False))
        session.commit()
    except DomainError as exc:
        session.rollback()
        return _touchpoint_form(request.form, touchpoint=None, errors=field_errors(exc)), exc.status
    flash(f"Touchpoint “{tp.name}” created. Now give it a link.", "success")
    return redirect(url_for(".link_new", touchpoint=tp.key))


@bp.route("/touchpoints/<key>/edit", methods=["GET", "POST"])
@signed_in(Role.MARKETER)
def touchpoint_edit(key: str) -> Any:
    session = db_session()
    tp = touchpoints.get_touchpoint(session, key)
    if request.method == "GET":
        values = {
            "key": tp.key, "name": tp.name, "channel": tp.channel, "kind": tp.kind or "",
            "exposure": tp.exposure or "",
        }
        return _touchpoint_form(values, touchpoint=tp, errors={})
    try:
        data = touchpoint_input(request.form, partial=True)
        tp = touchpoints.update_touchpoint(session, key, data)
        session.commit()
    except DomainError as exc:
        session.rollback()
        return _touchpoint_form(request.form, touchpoint=tp, errors=field_errors(exc)), exc.status
    forget_links_of(tp)
    flash(f"Touchpoint “{tp.name}” saved.", "success")
    return redirect(url_for(".touchpoint_list"))


@bp.post("/touchpoints/<key>/archive")
@signed_in(Role.MARKETER)
def touchpoint_archive(key: str) -> BaseResponse:
    session = db_session()
    tp = touchpoints.archive_touchpoint(session, key)
    session.commit()
    forget_links_of(tp)
    flash(f"Touchpoint “{tp.name}” archived; its links stay as they are.", "success")
    return redirect(url_for(".touchpoint_list"))


@bp.post("/touchpoints/<key>/restore")
@signed_in(Role.MARKETER)
def touchpoint_restore(key: str) -> BaseResponse:
    session = db_session()
    restore = touchpoints.TouchpointInput.from_json({"archived": False}, partial=True)
    tp = touchpoints.update_touchpoint(session, key, restore)
    session.commit()
    forget_links_of(tp)
    flash(f"Touchpoint “{tp.name}” restored.", "success")
    return redirect(url_for(".touchpoint_list"))


# --- links ---------------------------------------------------------------------------------------


@bp.get("/links")
@signed_in(Role.MARKETER)
def link_list() -> str:
    session = db_session()
    args = request.args
    where = links.LinkFilter.from_args(args)
    page = links.list_links(session, where, limit=PAGE_SIZE, cursor=args.get("cursor") or None)
    figures = _figures()
    counts = (
        figures.link_clicks(session, [link.id for link in page.items], since=utcnow() - RECENT)
        if figures is not None
        else {}
    )
    next_args = {k: v for k, v in args.items() if k != "cursor" and v}
    return render_template(
        "links.html",
        page=page,
        where=where,
        counts=counts,
        touchpoints=touchpoints.list_touchpoints(session, include_archived=True),
        stages=stages.list_stages(session),
        campaigns=campaign_names(session),
        next_args=next_args,
        now=utcnow(),
        short_url=short_url,
    )


def _link_form(
    values: Mapping[str, Any], *, link: Link | None, errors: dict[str, str]
) -> str:
    session = db_session()
    live = touchpoints.list_touchpoints(session)
    choices = [(tp.key, f"{tp.name} ({tp.channel})") for tp in live]
    if link is not None and link.touchpoint.archived:
        choices.insert(0, (link.touchpoint.key, f"{link.touchpoint.name} (archived)"))
    return render_template(
        "link_form.html",
        values=values,
        link=link,
        errors=errors,
        touchpoints=choices,
        stages=[(stage.key, stage.name) for stage in stages.list_stages(session)],
        campaigns=campaign_names(session),
        statuses=[(status, STATUS_NAMES[status]) for status in REDIRECT_STATUSES],
        short_host=runtime().settings.short_host,
    )


def _link_values(link: Link) -> dict[str, Any]:
    return {
        "url": link.destination,
        "touchpoint": link.touchpoint.key,
        "stage": link.stage.key,
        "slug": link.slug,
        "campaign": link.campaign or "",
        "title": link.title or "",
        "utm": link.utm,
        "redirect_status": link.redirect_status,
        "expires_at": link.expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
        if link.expires_at
        else "",
    }


def _submitted(form: MultiDict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = form.to_dict()
    values["utm"] = form.get("utm") == "on"
    return values


@bp.route("/links/new", methods=["GET", "POST"])
@signed_in(Role.MARKETER)
def link_new() -> Any:
    settings = runtime().settings
    if request.method == "GET":
        values = {
            "touchpoint": request.args.get("touchpoint", ""),
            "stage": request.args.get("stage", ""),
            "utm": True,
            "redirect_status": settings.default_redirect_status,
        }
        return _link_form(values, link=None, errors={})
    session = db_session()
    try:
        link = links.create_link(
            session,
            link_input(request.form),
            domain=settings.short_host,
            own_hosts=settings.own_hosts,
            default_status=settings.default_redirect_status,
        )
        session.commit()
    except DomainError as exc:
        session.rollback()
        values = _submitted(request.form)
        return _link_form(values, link=None, errors=field_errors(exc)), exc.status
    _forget((link.domain, link.slug))  # a cached "not found" may linger
    flash(f"Link {short_url(link)} created.", "success")
    return redirect(url_for(".link_page", link_id=link.id))


@bp.get("/links/<int:link_id>")
@signed_in(Role.MARKETER)
def link_page(link_id: int) -> Any:
    session = db_session()
    link = links.get_link(session, link_id)
    qr_values = {name: request.args.get(name, "") for name in QR_FIELDS}
    qr_errors: dict[str, str] = {}
    try:
        options = QROptions.from_args(request.args)
        image_args = {name: value for name, value in qr_values.items() if value}
    except InvalidParameterError as exc:
        qr_errors = {exc.name: exc.message.removeprefix(f"{exc.name}: ")}
        options, image_args = QROptions(), {}
    figures = _figures()
    clicks = (
        figures.link_clicks(session, [link.id], since=utcnow() - RECENT).get(link.id, 0)
        if figures is not None
        else None
    )
    return render_template(
        "link.html",
        link=link,
        short=short_url(link),
        scan=scan_url(link),
        expired=links.is_expired(link, utcnow()),
        clicks=clicks,
        qr=options,
        qr_values=qr_values,
        qr_errors=qr_errors,
        image_args=image_args,
        status_name=STATUS_NAMES.get(link.redirect_status, str(link.redirect_status)),
    ), (400 if qr_errors else 200)


@bp.get("/links/<int:link_id>/qr.<any(svg, png):fmt>")
@signed_in(Role.MARKETER)
def link_qr(link_id: int, fmt: str) -> Response:
    return qr_image(links.get_link(db_session(), link_id), fmt)


@bp.route("/links/<int:link_id>/edit", methods=["GET", "POST"])
@signed_in(Role.MARKETER)
def link_edit(link_id: int) -> Any:
    session = db_session()
    link = links.get_link(session, link_id)
    if request.method == "GET":
        return _link_form(_link_values(link), link=link, errors={})
    old_slug = link.slug
    try:
        link = links.update_link(
            session,
            link_id,
            link_input(request.form, editing=link),
            own_hosts=runtime().settings.own_hosts,
        )
        session.commit()
    except DomainError as exc:
        session.rollback()
        return _link_form(_submitted(request.form), link=link, errors=field_errors(exc)), exc.status
    _forget((link.domain, old_slug), (link.domain, link.slug))
    flash("Link saved.", "success")
    return redirect(url_for(".link_page", link_id=link.id))


@bp.post("/links/<int:link_id>/archive")
@signed_in(Role.MARKETER)
def link_archive(link_id: int) -> BaseResponse:
    session = db_session()
    link = links.archive_link(session, link_id)
    session.commit()
    _forget((link.domain, link.slug))
    flash("Link archived: it now answers 410 Gone.", "success")
    return redirect(url_for(".link_page", link_id=link.id))


@bp.post("/links/<int:link_id>/restore")
@signed_in(Role.MARKETER)
def link_restore(link_id: int) -> BaseResponse:
    session = db_session()
    restore = links.LinkInput.from_json({"archived": False}, partial=True)
    link = links.update_link(session, link_id, restore, own_hosts=runtime().settings.own_hosts)
    session.commit()
    _forget((link.domain, link.slug))
    flash("Link restored: it redirects again.", "success")
    return redirect(url_for(".link_page", link_id=link.id))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    add_nav_item(
        app, "marketer.touchpoint_list", "Touchpoints", role=Role.MARKETER, position=20,
        section="marketer.touchpoint",
    )
    add_nav_item(
        app, "marketer.link_list", "Links", role=Role.MARKETER, position=30,
        section="marketer.link",
    )

