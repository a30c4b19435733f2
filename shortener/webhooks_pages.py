"""The admin page of the webhooks, /links/webhooks (under /links, a path no slug can take): each
webhook with its last deliveries, a form to add one (its secret shown once, on the page that
answers the form, never in a cookie or a later page) and one to remove each. The rules are those
of `shortener.webhooks`, which the API follows too."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from shortener import webhooks
from shortener.errors import DomainError
from shortener.forms import Refusals, submit
from shortener.models import Role
from shortener.nav import add_nav_item
from shortener.runtime import runtime
from shortener.signin import signed_in
from shortener.unit_of_work import db_session

bp = Blueprint("webhooks", __name__)

LABELS = {"url": "URL", "events": "Events"}


def _page(*, errors: dict[str, str] | None = None, values: Mapping[str, Any] | None = None,
          created: tuple[Any, str] | None = None) -> str:
    session = db_session()
    found = webhooks.list_webhooks(session)
    return render_template(
        "webhooks.html",
        webhooks=found,
        deliveries={w.id: webhooks.recent_deliveries(session, w, 10) for w in found},
        events=webhooks.EVENTS,
        errors=errors or {},
        values=values or {},
        chosen=set(request.form.getlist("events")) if values else {"link.created", "clicks"},
        labels=LABELS,
        created=created,
    )


@bp.get("/links/webhooks")
@signed_in(Role.ADMIN)
def webhook_list() -> str:
    return _page()


@bp.post("/links/webhooks")
@signed_in(Role.ADMIN)
def webhook_add() -> Any:
    rt = runtime()
    data = {"url": request.form.get("url", "").strip(), "events": request.form.getlist("events")}

    def add() -> Any:
        entry = webhooks.WebhookInput.from_json(
            data, own_hosts=rt.own_hosts(), allow_private=rt.settings.webhook_allow_private
        )
        webhook, secret = webhooks.add_webhook(
            db_session(), entry, secret_key=rt.settings.secret_key
        )
        return _page(created=(webhook, secret)), 201

    return submit(
        add, lambda errors: _page(errors=errors, values=request.form), _refusals(data)
    )


def _refusals(data: dict[str, Any]) -> Refusals:
    """Every refusal of the add form at once: the URL's and the events'."""
    rt, refusals = runtime(), Refusals()
    for check in (
        lambda: webhooks.check_url(data["url"], own_hosts=rt.own_hosts(),
                                   allow_private=rt.settings.webhook_allow_private),
        lambda: webhooks.check_events(data["events"]),
    ):
        try:
            check()
        except DomainError as exc:
            refusals.add(exc)
    return refusals


@bp.post("/links/webhooks/<int:webhook_id>/remove")
@signed_in(Role.ADMIN)
def webhook_remove(webhook_id: int) -> Any:
    def remove() -> BaseResponse:
        removed = webhooks.remove_webhook(db_session(), webhook_id)
        flash(f"Webhook to {removed.url} removed: nothing more is sent to it.", "success")
        return redirect(url_for(".webhook_list") + "#top")

    return submit(remove, lambda errors: _page(errors=errors))


@bp.post("/links/webhooks/<int:webhook_id>/enable")
@signed_in(Role.ADMIN)
def webhook_enable(webhook_id: int) -> Any:
    def enable() -> BaseResponse:
        webhook = webhooks.enable_webhook(db_session(), webhook_id)
        flash(f"Webhook to {webhook.url} enabled again: events are sent to it from now on.",
              "success")
        return redirect(url_for(".webhook_list") + f"#webhook-{webhook.id}")

    return submit(enable, lambda errors: _page(errors=errors))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    add_nav_item(
        app, "webhooks.webhook_list", "Webhooks", role=Role.ADMIN, position=55,
        section="webhooks.",
    )
