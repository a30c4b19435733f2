"""`/api/v1/domains`: the short domains, for admins."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, request

from shortener import domains, request_input
from shortener.api_auth import requires
from shortener.models import Role
from shortener.openapi import json_body as body
from shortener.runtime import runtime
from shortener.unit_of_work import db_session

bp = Blueprint("domains_api", __name__, url_prefix="/api/v1/domains")


def _json(domain: Any) -> dict[str, Any]:
    return domains.domain_json(domain, scheme=runtime().settings.scheme)


@bp.after_request
def _serve_changes(response: Any) -> Any:
    # This process reads the domains again at its next redirect; others within the cache TTL.
    if request.method != "GET":
        runtime().domains.forget()
    return response


@bp.get("")
@requires(Role.ADMIN)
def list_domains() -> Any:
    return {"items": [_json(domain) for domain in domains.list_domains(db_session())]}


@bp.post("")
@requires(Role.ADMIN)
def add_domain() -> Any:
    data = domains.DomainInput.from_json(body(), own_hosts=runtime().own_hosts())
    return _json(domains.add_domain(db_session(), data)), 201


@bp.patch("/<host>")
@requires(Role.ADMIN)
def update_domain(host: str) -> Any:
    own_hosts = runtime().own_hosts()
    return _json(domains.update_domain(db_session(), host, body(), own_hosts=own_hosts))


@bp.delete("/<host>")
@requires(Role.ADMIN)
def remove_domain(host: str) -> Any:
    domains.remove_domain(db_session(), host)
    return "", 204


@bp.post("/<host>/move")
@requires(Role.ADMIN)
def move_links(host: str) -> Any:
    """Put every link of `host` on the domain `{"to": …}`."""
    data = request_input.json_object(body())
    request_input.reject_unknown(data, frozenset({"to"}))
    to = request_input.string(data, "to", required=True, max_length=300)
    return {"moved": domains.move_links(db_session(), host, to)}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
