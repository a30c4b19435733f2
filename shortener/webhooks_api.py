"""`/api/v1/webhooks`: receivers of signed events, for admins."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask

from shortener import webhooks
from shortener.api_auth import requires
from shortener.models import Role
from shortener.openapi import json_body as body
from shortener.runtime import runtime
from shortener.unit_of_work import db_session

bp = Blueprint("webhooks_api", __name__, url_prefix="/api/v1/webhooks")


@bp.get("")
@requires(Role.ADMIN)
def list_webhooks() -> Any:
    session = db_session()
    return {"items": [
        webhooks.webhook_json(webhook, webhooks.recent_deliveries(session, webhook))
        for webhook in webhooks.list_webhooks(session)
    ]}


@bp.post("")
@requires(Role.ADMIN)
def add_webhook() -> Any:
    rt = runtime()
    data = webhooks.WebhookInput.from_json(
        body(), own_hosts=rt.own_hosts(), allow_private=rt.settings.webhook_allow_private
    )
    webhook, secret = webhooks.add_webhook(db_session(), data, secret_key=rt.settings.secret_key)
    # The secret is shown this once: it is never stored, nor shown again.
    return {**webhooks.webhook_json(webhook), "secret": secret}, 201


@bp.get("/<int:webhook_id>")
@requires(Role.ADMIN)
def get_webhook(webhook_id: int) -> Any:
    session = db_session()
    webhook = webhooks.find_webhook(session, webhook_id)
    return webhooks.webhook_json(webhook, webhooks.recent_deliveries(session, webhook))


@bp.post("/<int:webhook_id>/enable")
@requires(Role.ADMIN)
def enable_webhook(webhook_id: int) -> Any:
    session = db_session()
    webhook = webhooks.enable_webhook(session, webhook_id)
    return webhooks.webhook_json(webhook, webhooks.recent_deliveries(session, webhook))


@bp.delete("/<int:webhook_id>")
@requires(Role.ADMIN)
def remove_webhook(webhook_id: int) -> Any:
    webhooks.remove_webhook(db_session(), webhook_id)
    return "", 204


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
