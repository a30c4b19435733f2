"""`/api/v1/webhooks`: receivers of signed events, for admins."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask

from shortener import webhooks
from shortener.api_auth import requires
from shortener.models import Role
from shortener.openapi import operation
from shortener.runtime import runtime
from shortener.schemas import Items
from shortener.unit_of_work import db_session
from shortener.webhooks import NewWebhook, NewWebhookOut, WebhookOut

bp = Blueprint("webhooks_api", __name__, url_prefix="/api/v1/webhooks")


@bp.get("")
@requires(Role.ADMIN)
@operation("Webhooks, each with its latest deliveries", responses={200: Items[WebhookOut]})
def list_webhooks() -> Any:
    session = db_session()
    return {"items": [
        webhooks.webhook_json(webhook, webhooks.recent_deliveries(session, webhook))
        for webhook in webhooks.list_webhooks(session)
    ]}


@bp.post("")
@requires(Role.ADMIN)
@operation("Add a webhook; its signing secret is in the answer, and only there",
           body=NewWebhook, responses={201: NewWebhookOut})
def add_webhook(body: NewWebhook) -> Any:
    rt = runtime()
    data = webhooks.WebhookInput.of(
        body, own_hosts=rt.own_hosts(), allow_private=rt.settings.webhook_allow_private
    )
    webhook, secret = webhooks.add_webhook(db_session(), data, secret_key=rt.settings.secret_key)
    return webhooks.new_webhook_json(webhook, secret), 201


@bp.get("/<int:webhook_id>")
@requires(Role.ADMIN)
@operation("A webhook, with its latest deliveries", responses={200: WebhookOut})
def get_webhook(webhook_id: int) -> Any:
    session = db_session()
    webhook = webhooks.find_webhook(session, webhook_id)
    return webhooks.webhook_json(webhook, webhooks.recent_deliveries(session, webhook))


@bp.post("/<int:webhook_id>/enable")
@requires(Role.ADMIN)
@operation("Send to a disabled webhook again, its failures forgotten",
           responses={200: WebhookOut})
def enable_webhook(webhook_id: int) -> Any:
    session = db_session()
    webhook = webhooks.enable_webhook(session, webhook_id)
    return webhooks.webhook_json(webhook, webhooks.recent_deliveries(session, webhook))


@bp.delete("/<int:webhook_id>")
@requires(Role.ADMIN)
@operation("Delete a webhook and every delivery it has waiting", responses={204: None})
def remove_webhook(webhook_id: int) -> Any:
    webhooks.remove_webhook(db_session(), webhook_id)
    return "", 204


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
