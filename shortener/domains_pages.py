"""The admin page of the short domains, /links/domains (under /links, a path no slug can take):
each domain with its links, a form to add one, and per domain the forms to make it the default,
set or clear its fallback URL, move its links to another domain, or remove it. The rules are
those of `shortener.domains`, which the API follows too.

A refused form is shown again with its messages: the add form with every refusal at once, a
domain's form with the service's message by that domain.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from shortener import domains
from shortener.errors import DomainError, NotFoundError
from shortener.forms import Refusals, submit
from shortener.models import Role
from shortener.nav import add_nav_item
from shortener.runtime import runtime
from shortener.signin import signed_in
from shortener.unit_of_work import db_session

bp = Blueprint("domains", __name__)

ADD = "add"  # the add form's scope; each domain's forms have its host as theirs
LABELS = {"host": "Host", "fallback_url": "Fallback URL"}
# What a refused field of the add form is replaced with to read the rest of it.
_ACCEPTED: dict[str, Any] = {"host": "example.com", "fallback_url": None}


@bp.after_request
def _serve_changes(response: Any) -> Any:
    # As the API does: this process reads the domains again at its next redirect.
    if request.method != "GET":
        runtime().domains.forget()
    return response


def _own_hosts() -> Collection[str]:
    return runtime().own_hosts()


def _page(
    *, errors: dict[str, str] | None = None, scope: str = "",
    values: Mapping[str, Any] | None = None,
) -> str:
    """The page; `errors` and `values` belong to the form of `scope`: ADD, or a domain's host."""
    session = db_session()
    found = domains.list_domains(session)
    scheme = runtime().settings.scheme
    return render_template(
        "domains.html",
        domains=found,
        counts=domains.link_counts(session),
        base_urls={d.host: domains.domain_json(d, scheme=scheme)["base_url"] for d in found},
        errors=errors or {},
        scope=scope,
        values=values or {},
        labels=LABELS,
    )


def _add_input(form: Mapping[str, str]) -> dict[str, Any]:
    """The add form as the API's JSON: a blank fallback is none; the checkbox, a boolean."""
    return {
        "host": form.get("host", ""),
        "fallback_url": form.get("fallback_url", "").strip() or None,
        "default": form.get("default") == "on",
    }


def add_refusals(session: Session, data: dict[str, Any], *, own_hosts: Collection[str]) -> Refusals:
    """Every refusal of the add form at once: each refused field is given an accepted value and
    the input read again by `DomainInput`, then a host already taken is named too (the unique
    index still decides a race, in `add_domain`)."""
    trial, refusals = dict(data), Refusals()
    while True:
        try:
            parsed = domains.DomainInput.from_json(trial, own_hosts=own_hosts)
            break
        except DomainError as exc:
            refusals.add(exc)
            name = exc.details.get("field")
            if name not in _ACCEPTED or trial[name] == _ACCEPTED[name]:
                return refusals
            trial[name] = _ACCEPTED[name]
    if "host" not in refusals.messages:
        try:
            domains.find_domain(session, parsed.host)
        except NotFoundError:
            return refusals
        refusals.add(domains.host_taken(parsed.host))
    return refusals


def _back() -> str:
    # `#top` (the top of any HTML page), where the flash is, rather than the part of the page
    # the form was sent to, which a redirect without a fragment of its own would keep.
    return url_for(".domain_list") + "#top"


@bp.get("/links/domains")
@signed_in(Role.ADMIN)
def domain_list() -> str:
    return _page()


@bp.post("/links/domains")
@signed_in(Role.ADMIN)
def domain_add() -> Any:
    data, own_hosts = _add_input(request.form), _own_hosts()

    def add() -> BaseResponse:
        entry = domains.DomainInput.from_json(data, own_hosts=own_hosts)
        domain = domains.add_domain(db_session(), entry)
        default = " New links go on it." if domain.is_default else ""
        flash(f"Short domain {domain.host} added.{default}", "success")
        return redirect(_back())

    return submit(
        add,
        lambda errors: _page(errors=errors, scope=ADD, values=request.form),
        add_refusals(db_session(), data, own_hosts=own_hosts),
    )


def _on_domain(host: str, action: Callable[[Session], str]) -> Any:
    """Do `action` to the domain `host`, then go back to the page saying what it did; a refusal
    shows the page again with its message by that domain."""

    def act() -> BaseResponse:
        flash(action(db_session()), "success")
        return redirect(_back())

    return submit(act, lambda errors: _page(errors=errors, scope=host, values=request.form))


@bp.post("/links/domains/<host>/default")
@signed_in(Role.ADMIN)
def domain_default(host: str) -> Any:
    def make(session: Session) -> str:
        domain = domains.update_domain(session, host, {"default": True}, own_hosts=_own_hosts())
        return f"{domain.host} is the default short domain: new links go on it."

    return _on_domain(host, make)


@bp.post("/links/domains/<host>/fallback")
@signed_in(Role.ADMIN)
def domain_fallback(host: str) -> Any:
    fallback = request.form.get("fallback_url", "").strip() or None  # blank clears it

    def save(session: Session) -> str:
        change = {"fallback_url": fallback}
        domain = domains.update_domain(session, host, change, own_hosts=_own_hosts())
        if domain.fallback_url is None:
            return f"Unknown slugs on {domain.host} now get the not-found page."
        return f"Unknown slugs on {domain.host} now go to {domain.fallback_url}."

    return _on_domain(host, save)


@bp.post("/links/domains/<host>/move")
@signed_in(Role.ADMIN)
def domain_move(host: str) -> Any:
    to = request.form.get("to", "").strip()

    def move(session: Session) -> str:
        moved = domains.move_links(session, host, to)
        return f"{moved:,} links moved from {host} to {to}."

    return _on_domain(host, move)


@bp.post("/links/domains/<host>/remove")
@signed_in(Role.ADMIN)
def domain_remove(host: str) -> Any:
    def remove(session: Session) -> str:
        domains.remove_domain(session, host)
        return f"Short domain {host} removed."

    return _on_domain(host, remove)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    add_nav_item(
        app, "domains.domain_list", "Domains", role=Role.ADMIN, position=50, section="domains."
    )
