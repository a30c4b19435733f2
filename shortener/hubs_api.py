"""The JSON API of hubs: thin views over `shortener.hubs`; marketers write, analysts read."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import Blueprint
from pydantic import Field

from shortener import hubs
from shortener.api_auth import requires
from shortener.db import utcnow
from shortener.hubs import HubOut, LinkRules, hub_json
from shortener.hubs_input import ButtonInput, ButtonList, HubChange, HubInput, NewHub
from shortener.models import Role
from shortener.openapi import operation
from shortener.runtime import runtime
from shortener.schemas import Items, Query
from shortener.unit_of_work import db_session

bp = Blueprint("hubs_api", __name__, url_prefix="/api/v1")


class HubFilter(Query):
    touchpoint: Annotated[str, Field(max_length=64)] | None = None
    archived: Literal["include"] | None = Field(default=None, description="include archived ones")


def _rules() -> LinkRules:
    return LinkRules.of(runtime())


def _scheme() -> str:
    return runtime().settings.scheme


@bp.get("/hubs")
@requires(Role.ANALYST)
@operation("Hubs, newest first", query=HubFilter, responses={200: Items[HubOut]})
def list_hubs(query: HubFilter) -> Any:
    found = hubs.list_hubs(
        db_session(), touchpoint=query.touchpoint, include_archived=query.archived == "include"
    )
    return {"items": [hub_json(hub, scheme=_scheme()) for hub in found]}


@bp.post("/hubs")
@requires(Role.MARKETER)
@operation("Make a hub, with its link and its buttons", body=NewHub, responses={201: HubOut},
           errors=(409,))
def create_hub(body: NewHub) -> Any:
    hub = hubs.create_hub(db_session(), HubInput.of(body), rules=_rules(), now=utcnow())
    return hub_json(hub, scheme=_scheme()), 201


@bp.get("/hubs/<int:hub_id>")
@requires(Role.ANALYST)
@operation("A hub", responses={200: HubOut})
def get_hub(hub_id: int) -> Any:
    return hub_json(hubs.get_hub(db_session(), hub_id), scheme=_scheme())


@bp.patch("/hubs/<int:hub_id>")
@requires(Role.MARKETER)
@operation("Change a hub; archived: false restores it", body=HubChange,
           responses={200: HubOut})
def update_hub(hub_id: int, body: HubChange) -> Any:
    hub = hubs.update_hub(db_session(), hub_id, HubInput.of(body), rules=_rules(), now=utcnow())
    return hub_json(hub, scheme=_scheme())


@bp.delete("/hubs/<int:hub_id>")
@requires(Role.MARKETER)
@operation("Archive a hub: its page and its buttons answer 410 from then on",
           responses={200: HubOut})
def archive_hub(hub_id: int) -> Any:
    return hub_json(hubs.archive_hub(db_session(), hub_id, now=utcnow()), scheme=_scheme())


@bp.put("/hubs/<int:hub_id>/buttons")
@requires(Role.MARKETER)
@operation("Replace a hub's buttons, in order", body=ButtonList, responses={200: HubOut},
           description="A button kept (by its id, or with the same destination and stage) keeps"
           " its link and its clicks; one left out has its link archived.")
def set_buttons(hub_id: int, body: ButtonList) -> Any:
    session = db_session()
    entries = [ButtonInput.of(button) for button in body.buttons]
    hub = hubs.set_buttons(
        session, hubs.get_hub(session, hub_id), entries, rules=_rules(), now=utcnow()
    )
    return hub_json(hub, scheme=_scheme())
