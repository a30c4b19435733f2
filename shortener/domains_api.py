"""`/api/v1/domains`: the short domains, for admins."""

from __future__ import annotations

from typing import Annotated, Any

from flask import Blueprint, Flask, request
from pydantic import Field
from typing_extensions import TypedDict

from shortener import domains, schemas
from shortener.api_auth import requires
from shortener.domains import DomainChange, DomainOut, NewDomain
from shortener.models import Domain, Role
from shortener.openapi import operation
from shortener.runtime import runtime
from shortener.schemas import Items
from shortener.unit_of_work import db_session

bp = Blueprint("domains_api", __name__, url_prefix="/api/v1/domains")


class Move(schemas.Body):
    to: Annotated[str, schemas.Line(300)] = Field(description="the domain the links go on")


class Moved(TypedDict):
    moved: int


def _json(domain: Domain) -> DomainOut:
    return domains.domain_json(domain, scheme=runtime().settings.scheme)


@bp.after_request
def _serve_changes(response: Any) -> Any:
    # This process reads the domains again at its next redirect; others within the cache TTL.
    if request.method != "GET":
        runtime().domains.forget()
    return response


@bp.get("")
@requires(Role.ADMIN)
@operation("The short domains, the default one first", responses={200: Items[DomainOut]})
def list_domains() -> Any:
    return {"items": [_json(domain) for domain in domains.list_domains(db_session())]}


@bp.post("")
@requires(Role.ADMIN)
@operation("Add a short domain (its DNS must point here)", body=NewDomain,
           responses={201: DomainOut}, errors=(409,))
def add_domain(body: NewDomain) -> Any:
    data = domains.DomainInput.of(body, own_hosts=runtime().own_hosts())
    return _json(domains.add_domain(db_session(), data)), 201


@bp.patch("/<host>")
@requires(Role.ADMIN)
@operation("Make a domain the default, or change its fallback URL", body=DomainChange,
           responses={200: DomainOut}, errors=(409,))
def update_domain(host: str, body: DomainChange) -> Any:
    own_hosts = runtime().own_hosts()
    return _json(domains.update_domain(db_session(), host, body, own_hosts=own_hosts))


@bp.delete("/<host>")
@requires(Role.ADMIN)
@operation("Remove a domain no link uses (never the default one)", responses={204: None},
           errors=(409,))
def remove_domain(host: str) -> Any:
    domains.remove_domain(db_session(), host)
    return "", 204


@bp.post("/<host>/move")
@requires(Role.ADMIN)
@operation("Put every link of a domain on another (refused if a slug is on both)", body=Move,
           responses={200: Moved}, errors=(409,))
def move_links(host: str, body: Move) -> Any:
    return {"moved": domains.move_links(db_session(), host, body.to)}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
