"""The JSON API of hubs: thin views over `shortener.hubs`; marketers write, analysts read."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from shortener import hubs, request_input
from shortener.api_auth import requires
from shortener.db import utcnow
from shortener.hubs import LinkRules, hub_json
from shortener.hubs_input import HubInput, buttons_from_json
from shortener.models import Role
from shortener.openapi import json_body as body
from shortener.runtime import runtime
from shortener.unit_of_work import db_session

bp = Blueprint("hubs_api", __name__, url_prefix="/api/v1")


def _rules() -> LinkRules:
    return LinkRules.of(runtime())


def _scheme() -> str:
    return runtime().settings.scheme


@bp.get("/hubs")
@requires(Role.ANALYST)
def list_hubs() -> Any:
    found = hubs.list_hubs(
        db_session(),
        touchpoint=request_input.text_param(request.args, "touchpoint", max_length=64),
        include_archived=request.args.get("archived") == "include",
    )
    return {"items": [hub_json(hub, scheme=_scheme()) for hub in found]}


@bp.post("/hubs")
@requires(Role.MARKETER)
def create_hub() -> Any:
    data = HubInput.from_json(body())
    hub = hubs.create_hub(db_session(), data, rules=_rules(), now=utcnow())
    return hub_json(hub, scheme=_scheme()), 201


@bp.get("/hubs/<int:hub_id>")
@requires(Role.ANALYST)
def get_hub(hub_id: int) -> Any:
    return hub_json(hubs.get_hub(db_session(), hub_id), scheme=_scheme())


@bp.patch("/hubs/<int:hub_id>")
@requires(Role.MARKETER)
def update_hub(hub_id: int) -> Any:
    data = HubInput.from_json(body(), partial=True)
    hub = hubs.update_hub(db_session(), hub_id, data, rules=_rules(), now=utcnow())
    return hub_json(hub, scheme=_scheme())


@bp.delete("/hubs/<int:hub_id>")
@requires(Role.MARKETER)
def archive_hub(hub_id: int) -> Any:
    return hub_json(hubs.archive_hub(db_session(), hub_id, now=utcnow()), scheme=_scheme())


@bp.put("/hubs/<int:hub_id>/buttons")
@requires(Role.MARKETER)
def set_buttons(hub_id: int) -> Any:
    session = db_session()
    entries = buttons_from_json(body())
    hub = hubs.set_buttons(
        session, hubs.get_hub(session, hub_id), entries, rules=_rules(), now=utcnow()
    )
    return hub_json(hub, scheme=_scheme())
