"""The marketer pages: touchpoints and links, made and changed through the services the API uses.

A form that the services refuse is shown again with each message next to its field (422, or 409
for a slug or key in use); nothing a person types reaches a 500.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, timedelta
from typing import Any

from flask import Blueprint, Flask, Response, flash, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response as BaseResponse

from shortener import forms, links, placements, request_input, slug_history, stages, touchpoints
from shortener.db import utcnow
from shortener.errors import InvalidParameterError
from shortener.links import LinkInput, scan_url, short_url
from shortener.models import REDIRECT_STATUSES, Channel, Link, Role, Touchpoint
from shortener.nav import add_nav_item
from shortener.placements import PlacementInput
from shortener.qr import QROptions, qr_response
from shortener.runtime import runtime
from shortener.signin import signed_in
from shortener.survey import QUESTIONS
from shortener.touchpoints import TouchpointInput
from shortener.unit_of_work import db_session

bp = Blueprint("marketer", __name__)

# The pages count clicks over a recent window, which the rollups' index on the hour serves.
RECENT = timedelta(days=30)
LAST_CLICK_WINDOW = timedelta(days=90)
PAGE_SIZE = 50
QR_FIELDS = ("size", "margin", "ecc", "fg", "bg")
KINDS = (
    "advertising", "social", "email", "web", "checkout", "delivery", "support", "survey",
    "event", "signage", "sales",
)
SURVEY_KINDS = (
    ("", "No survey: redirect at once"),
    ("nps", "NPS: how likely to recommend, 0 to 10"),
    ("csat", "CSAT: how satisfied, 1 to 5"),
    ("ces", "CES: how easy, 1 to 7"),
)
SURVEY_THEN_NAMES = (
    ("thanks", "Thank the customer"),
    ("forward", "Go on to the destination URL"),
)
STATUS_NAMES = {
    301: "301 Moved permanently",
    302: "302 Found (temporary)",
    307: "307 Temporary redirect",
    308: "308 Permanent redirect",
}


def _scheme() -> str:
    return runtime().settings.scheme


# --- touchpoints ---------------------------------------------------------------------------------


@bp.get("/touchpoints")
@signed_in(Role.MARKETER)
def touchpoint_list() -> str:
    session = db_session()
    include_archived = request.args.get("archived") == "include"
    q = request_input.text_param(request.args, "q")
    found = touchpoints.list_touchpoints(session, include_archived=include_archived)
    if q:
        found = [tp for tp in found if _matches(tp, q)]
    last = runtime().figures.last_clicks(
        session, [tp.id for tp in found], since=utcnow() - LAST_CLICK_WINDOW
    )
    return render_template(
        "touchpoints.html",
        touchpoints=found,
        stages=stages.list_stages(session),
        coverage=links.stage_coverage(session),
        last_clicks=last,
        include_archived=include_archived,
        q=q or "",
    )


def _matches(tp: Touchpoint, q: str) -> bool:
    """A touchpoint the list's search finds: `q` in its name, key or kind, in any case."""
    needle = q.casefold()
    return any(needle in (text or "").casefold() for text in (tp.name, tp.key, tp.kind))


def _touchpoint_form(
    values: Mapping[str, Any],
    *,
    touchpoint: Touchpoint | None,
    errors: dict[str, str],
    placement_values: Mapping[str, Any] | None = None,
    placement_errors: dict[str, str] | None = None,
) -> str:
    """The touchpoint form; when editing, its placements with a form to add one."""
    found = placements.list_placements(db_session(), touchpoint) if touchpoint else ()
    return render_template(
        "touchpoint_form.html",
        values=values,
        touchpoint=touchpoint,
        errors=errors,
        labels=forms.TOUCHPOINT_LABELS,
        placement_labels=forms.PLACEMENT_LABELS,
        channels=[(c.value, c.value.capitalize()) for c in Channel],
        kinds=KINDS,
        placements=found,
        placement_values=placement_values or {"from": runtime().settings.today(utcnow())},
        placement_errors=placement_errors or {},
    )


def _touchpoint_values(tp: Touchpoint) -> dict[str, Any]:
    return {"key": tp.key, "name": tp.name, "channel": tp.channel, "kind": tp.kind or ""}


@bp.route("/touchpoints/new", methods=["GET", "POST"])
@signed_in(Role.MARKETER)
def touchpoint_new() -> Any:
    if request.method == "GET":
        return _touchpoint_form({"channel": "digital"}, touchpoint=None, errors={})

    form = forms.with_suggested_key(request.form)

    def create() -> BaseResponse:
        data = TouchpointInput.from_form(form, partial=False)
        tp = touchpoints.create_touchpoint(
            db_session(), data, today=runtime().settings.today(utcnow())
        )
        flash(f"Touchpoint “{tp.name}” created. Now give it a link.", "success")
        return redirect(url_for(".link_new", touchpoint=tp.key))

    return forms.submit(
        create,
        lambda errors: _touchpoint_form(form, touchpoint=None, errors=errors),
        forms.touchpoint_refusals(db_session(), form, editing=None),
    )


@bp.route("/touchpoints/<key>/edit", methods=["GET", "POST"])
@signed_in(Role.MARKETER)
def touchpoint_edit(key: str) -> Any:
    tp = touchpoints.get_touchpoint(db_session(), key)
    if request.method == "GET":
        return _touchpoint_form(_touchpoint_values(tp), touchpoint=tp, errors={})

    def save() -> BaseResponse:
        data = TouchpointInput.from_form(request.form, partial=True)
        saved = touchpoints.update_touchpoint(db_session(), key, data, now=utcnow())
        flash(f"Touchpoint “{saved.name}” saved.", "success")
        return redirect(url_for(".touchpoint_list"))

    return forms.submit(
        save,
        lambda errors: _touchpoint_form(request.form, touchpoint=tp, errors=errors),
        forms.touchpoint_refusals(db_session(), request.form, editing=tp),
    )


@bp.post("/touchpoints/<key>/placements")
@signed_in(Role.MARKETER)
def placement_add(key: str) -> Any:
    tp = touchpoints.get_touchpoint(db_session(), key)

    def add() -> BaseResponse:
        data = PlacementInput.from_form(request.form)
        placement = placements.add_placement(db_session(), tp, data)
        flash(
            f"Placement of {placement.count:,} added: the exposure is now {tp.exposure or 0:,}.",
            "success",
        )
        return redirect(url_for(".touchpoint_edit", key=tp.key) + "#placements")

    def show(errors: dict[str, str]) -> str:
        return _touchpoint_form(
            _touchpoint_values(tp), touchpoint=tp, errors={},
            placement_values=request.form, placement_errors=errors,
        )

    return forms.submit(add, show, forms.placement_refusals(request.form))


@bp.post("/touchpoints/<key>/placements/<int:placement_id>/delete")
@signed_in(Role.MARKETER)
def placement_delete(key: str, placement_id: int) -> BaseResponse:
    session = db_session()
    tp = touchpoints.get_touchpoint(session, key)
    removed = placements.remove_placement(session, tp, placement_id)
    flash(f"Placement of {removed.count:,} deleted.", "success")
    return redirect(url_for(".touchpoint_edit", key=tp.key) + "#placements")


@bp.post("/touchpoints/<key>/archive")
@signed_in(Role.MARKETER)
def touchpoint_archive(key: str) -> BaseResponse:
    tp = touchpoints.archive_touchpoint(db_session(), key, now=utcnow())
    flash(f"Touchpoint “{tp.name}” archived; its links stay as they are.", "success")
    return redirect(url_for(".touchpoint_list"))


@bp.post("/touchpoints/<key>/restore")
@signed_in(Role.MARKETER)
def touchpoint_restore(key: str) -> BaseResponse:
    restore = TouchpointInput.from_json({"archived": False}, partial=True)
    tp = touchpoints.update_touchpoint(db_session(), key, restore, now=utcnow())
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
    counts = runtime().figures.link_clicks(
        session, [link.id for link in page.items], since=utcnow() - RECENT
    )
    next_args = {k: v for k, v in args.items() if k != "cursor" and v}
    scheme = _scheme()
    return render_template(
        "links.html",
        page=page,
        where=where,
        counts=counts,
        touchpoints=touchpoints.list_touchpoints(session, include_archived=True),
        stages=stages.list_stages(session),
        campaigns=links.campaign_names(session),
        next_args=next_args,
        shorts={link.id: short_url(link, scheme=scheme) for link in page.items},
        now=utcnow(),
    )


def _link_form(values: Mapping[str, Any], *, link: Link | None, errors: dict[str, str]) -> str:
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
        labels=forms.LINK_LABELS,
        touchpoints=choices,
        stages=[(stage.key, stage.name) for stage in stages.list_stages(session)],
        campaigns=links.campaign_names(session),
        statuses=[(status, STATUS_NAMES[status]) for status in REDIRECT_STATUSES],
        survey_kinds=SURVEY_KINDS,
        survey_then=SURVEY_THEN_NAMES,
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
        "track_conversions": link.track_conversions,
        "survey_kind": link.survey_kind or "",
        "survey_question": link.survey_question or "",
        "survey_then": link.survey_then or "thanks",
        "redirect_status": link.redirect_status,
        "fallback_url": link.fallback_url or "",
        "starts_at": link.starts_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
        if link.starts_at
        else "",
        "expires_at": link.expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
        if link.expires_at
        else "",
    }


def _submitted(form: MultiDict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = form.to_dict()
    values["utm"] = form.get("utm") == "on"
    values["track_conversions"] = form.get("track_conversions") == "on"
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
            "survey_then": "thanks",
        }
        return _link_form(values, link=None, errors={})

    def create() -> BaseResponse:
        link = links.create_link(
            db_session(),
            LinkInput.from_form(request.form),
            own_hosts=runtime().own_hosts(),
            default_status=settings.default_redirect_status,
        )
        flash(f"Link {short_url(link, scheme=settings.scheme)} created.", "success")
        return redirect(url_for(".link_page", link_id=link.id))

    refusals = forms.link_refusals(
        db_session(), request.form, editing=None,
        domain=settings.short_host, own_hosts=runtime().own_hosts(),
    )
    return forms.submit(
        create,
        lambda errors: _link_form(_submitted(request.form), link=None, errors=errors),
        refusals,
    )


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
    clicks = runtime().figures.link_clicks(session, [link.id], since=utcnow() - RECENT)
    return render_template(
        "link.html",
        link=link,
        short=short_url(link, scheme=_scheme()),
        scan=scan_url(link, scheme=_scheme()),
        expired=links.is_expired(link, utcnow()),
        old_slugs=slug_history.old_slugs(session, link.id),
        clicks=clicks.get(link.id, 0),
        qr=options,
        qr_values=qr_values,
        qr_errors=qr_errors,
        image_args=image_args,
        status_name=STATUS_NAMES.get(link.redirect_status, str(link.redirect_status)),
        survey_question=QUESTIONS.get(link.survey_kind or "", ""),
    ), (400 if qr_errors else 200)


@bp.get("/links/<int:link_id>/qr.<any(svg, png):fmt>")
@signed_in(Role.MARKETER)
def link_qr(link_id: int, fmt: str) -> Response:
    link = links.get_link(db_session(), link_id)
    return qr_response(scan_url(link, scheme=_scheme()), request.args, fmt=fmt, name=link.slug)


@bp.route("/links/<int:link_id>/edit", methods=["GET", "POST"])
@signed_in(Role.MARKETER)
def link_edit(link_id: int) -> Any:
    link = links.get_link(db_session(), link_id)
    if request.method == "GET":
        return _link_form(_link_values(link), link=link, errors={})

    def save() -> BaseResponse:
        data = LinkInput.from_form(request.form, editing=link)
        own_hosts = runtime().own_hosts()
        links.update_link(db_session(), link_id, data, own_hosts=own_hosts, now=utcnow())
        flash("Link saved.", "success")
        return redirect(url_for(".link_page", link_id=link_id))

    refusals = forms.link_refusals(
        db_session(), request.form, editing=link,
        domain=link.domain, own_hosts=runtime().own_hosts(),
    )
    return forms.submit(
        save,
        lambda errors: _link_form(_submitted(request.form), link=link, errors=errors),
        refusals,
    )


@bp.post("/links/<int:link_id>/archive")
@signed_in(Role.MARKETER)
def link_archive(link_id: int) -> BaseResponse:
    links.archive_link(db_session(), link_id, now=utcnow())
    flash("Link archived: it now answers 410 Gone.", "success")
    return redirect(url_for(".link_page", link_id=link_id))


@bp.post("/links/<int:link_id>/restore")
@signed_in(Role.MARKETER)
def link_restore(link_id: int) -> BaseResponse:
    restore = LinkInput.from_json({"archived": False}, partial=True)
    links.update_link(
        db_session(), link_id, restore, own_hosts=runtime().own_hosts(), now=utcnow()
    )
    flash("Link restored: it redirects again.", "success")
    return redirect(url_for(".link_page", link_id=link_id))


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
