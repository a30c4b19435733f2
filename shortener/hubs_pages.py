"""The marketer pages of hubs: make a hub, then add, edit, remove and move its buttons, one
plain form each (no script). They live under /links, a path no slug can take.

A form that the services refuse is shown again with each message next to its field, in the
form that was sent (the details, the new button, or the button edited).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from shortener import hubs, stages, touchpoints
from shortener.db import utcnow
from shortener.forms import submit
from shortener.hubs import LinkRules, avatar_path
from shortener.hubs_input import (
    MAX_BUTTONS,
    MAX_DESCRIPTION,
    MAX_LABEL,
    MAX_TITLE,
    ButtonInput,
    HubInput,
)
from shortener.links import short_url
from shortener.models import Hub, Role
from shortener.nav import add_nav_item
from shortener.runtime import runtime
from shortener.signin import signed_in
from shortener.unit_of_work import db_session

bp = Blueprint("hubs", __name__)

RECENT = timedelta(days=30)
MOVES = {"up": -1, "down": 1}


def _rules() -> LinkRules:
    return LinkRules.of(runtime())


def _avatar_upload() -> bytes | None:
    upload = request.files.get("avatar")
    data = upload.read() if upload is not None else b""
    return data or None


def _stage_choices() -> list[tuple[str, str]]:
    return [(stage.key, stage.name) for stage in stages.list_stages(db_session())]


@bp.get("/links/hubs")
@signed_in(Role.MARKETER)
def hub_list() -> str:
    session = db_session()
    include_archived = request.args.get("archived") == "include"
    found = hubs.list_hubs(session, include_archived=include_archived)
    views = runtime().figures.link_clicks(
        session, [hub.link_id for hub in found], since=utcnow() - RECENT
    )
    return render_template(
        "hub_list.html",
        hubs=found,
        views=views,
        include_archived=include_archived,
        short_urls={hub.id: short_url(hub.link, scheme=runtime().settings.scheme) for hub in found},
    )


def _new_form(values: Mapping[str, Any], errors: dict[str, str]) -> str:
    live = touchpoints.list_touchpoints(db_session())
    return render_template(
        "hub_new.html",
        values=values,
        errors=errors,
        touchpoints=[(tp.key, f"{tp.name} ({tp.channel})") for tp in live],
        stages=_stage_choices(),
        short_host=runtime().settings.short_host,
        max_title=MAX_TITLE,
        max_description=MAX_DESCRIPTION,
    )


@bp.route("/links/hubs/new", methods=["GET", "POST"])
@signed_in(Role.MARKETER)
def hub_new() -> Any:
    if request.method == "GET":
        return _new_form({"touchpoint": request.args.get("touchpoint", "")}, {})

    def create() -> BaseResponse:
        data = HubInput.from_form(request.form, partial=False, avatar=_avatar_upload())
        hub = hubs.create_hub(db_session(), data, rules=_rules(), now=utcnow())
        flash(f"Hub “{hub.title}” created. Now give it buttons.", "success")
        return redirect(url_for(".hub_page", hub_id=hub.id))

    return submit(create, lambda errors: _new_form(request.form, errors))


def _hub_form(
    hub: Hub, *, errors: dict[str, str] | None = None, scope: str = "",
    values: Mapping[str, Any] | None = None,
) -> str:
    """The hub's page; `errors` and `values` belong to the form `scope` names: `details`,
    `add`, or a button's id."""
    settings = runtime().settings
    clicks = runtime().figures.link_clicks(
        db_session(), [hub.link_id, *(b.link_id for b in hub.buttons)], since=utcnow() - RECENT
    )
    return render_template(
        "hub_edit.html",
        hub=hub,
        short=short_url(hub.link, scheme=settings.scheme),
        button_urls={b.id: short_url(b.link, scheme=settings.scheme) for b in hub.buttons},
        avatar=avatar_path(hub),
        clicks=clicks,
        stages=_stage_choices(),
        errors=errors or {},
        scope=scope,
        values=values or {},
        max_buttons=MAX_BUTTONS,
        max_title=MAX_TITLE,
        max_label=MAX_LABEL,
        max_description=MAX_DESCRIPTION,
    )


def _plain(errors: dict[str, str]) -> dict[str, str]:
    """`buttons[3].url` as `url`: the edited form's own field."""
    return {name.rpartition(".")[2]: text for name, text in errors.items()}


@bp.route("/links/hubs/<int:hub_id>", methods=["GET", "POST"])
@signed_in(Role.MARKETER)
def hub_page(hub_id: int) -> Any:
    hub = hubs.get_hub(db_session(), hub_id)
    if request.method == "GET":
        return _hub_form(hub)

    def save() -> BaseResponse:
        data = HubInput.from_form(
            request.form, partial=True, avatar=_avatar_upload(),
            remove_avatar=request.form.get("remove_avatar") == "on",
        )
        hubs.update_hub(db_session(), hub_id, data, rules=_rules(), now=utcnow())
        flash("Hub saved.", "success")
        return redirect(url_for(".hub_page", hub_id=hub_id))

    return submit(
        save, lambda errors: _hub_form(hub, errors=errors, scope="details", values=request.form)
    )


@bp.post("/links/hubs/<int:hub_id>/buttons")
@signed_in(Role.MARKETER)
def button_add(hub_id: int) -> Any:
    session = db_session()
    hub = hubs.get_hub(session, hub_id)

    def add() -> BaseResponse:
        entry = ButtonInput.from_form(request.form)
        button = hubs.add_button(session, hub, entry, rules=_rules(), now=utcnow())
        flash(f"Button “{button.label}” added.", "success")
        return redirect(url_for(".hub_page", hub_id=hub_id) + "#buttons")

    def show(errors: dict[str, str]) -> str:
        session.expire_all()  # the refused button is not the hub's
        return _hub_form(hub, errors=_plain(errors), scope="add", values=request.form)

    return submit(add, show)


@bp.post("/links/hubs/<int:hub_id>/buttons/<int:button_id>")
@signed_in(Role.MARKETER)
def button_save(hub_id: int, button_id: int) -> Any:
    session = db_session()
    hub = hubs.get_hub(session, hub_id)

    def save() -> BaseResponse:
        entry = ButtonInput.from_form(request.form, button_id=button_id)
        hubs.update_button(session, hub, button_id, entry, rules=_rules(), now=utcnow())
        flash("Button saved.", "success")
        return redirect(url_for(".hub_page", hub_id=hub_id) + f"#button-{button_id}")

    def show(errors: dict[str, str]) -> str:
        session.expire_all()
        return _hub_form(hub, errors=_plain(errors), scope=str(button_id), values=request.form)

    return submit(save, show)


@bp.post("/links/hubs/<int:hub_id>/buttons/<int:button_id>/move")
@signed_in(Role.MARKETER)
def button_move(hub_id: int, button_id: int) -> BaseResponse:
    session = db_session()
    hub = hubs.get_hub(session, hub_id)
    offset = MOVES.get(request.form.get("direction", ""), 0)
    hubs.move_button(session, hub, button_id, offset, rules=_rules(), now=utcnow())
    return redirect(url_for(".hub_page", hub_id=hub_id) + f"#button-{button_id}")


@bp.post("/links/hubs/<int:hub_id>/buttons/<int:button_id>/remove")
@signed_in(Role.MARKETER)
def button_remove(hub_id: int, button_id: int) -> BaseResponse:
    session = db_session()
    hub = hubs.get_hub(session, hub_id)
    hubs.remove_button(session, hub, button_id, rules=_rules(), now=utcnow())
    flash("Button removed; its link is archived, with its clicks.", "success")
    return redirect(url_for(".hub_page", hub_id=hub_id) + "#buttons")


@bp.post("/links/hubs/<int:hub_id>/archive")
@signed_in(Role.MARKETER)
def hub_archive(hub_id: int) -> BaseResponse:
    hub = hubs.archive_hub(db_session(), hub_id, now=utcnow())
    flash(f"Hub “{hub.title}” archived: its address answers 410 Gone.", "success")
    return redirect(url_for(".hub_page", hub_id=hub_id))


@bp.post("/links/hubs/<int:hub_id>/restore")
@signed_in(Role.MARKETER)
def hub_restore(hub_id: int) -> BaseResponse:
    restore = HubInput.from_json({"archived": False}, partial=True)
    hub = hubs.update_hub(db_session(), hub_id, restore, rules=_rules(), now=utcnow())
    flash(f"Hub “{hub.title}” restored.", "success")
    return redirect(url_for(".hub_page", hub_id=hub_id))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    add_nav_item(app, "hubs.hub_list", "Hubs", role=Role.MARKETER, position=35, section="hubs.")
