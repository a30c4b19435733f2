"""Webhooks: receivers of events, signed per the Standard Webhooks specification.

An event is written as one delivery row per webhook that wants it, in the transaction that made
the event, so that a link created is never announced unless it was stored; the worker sends the
deliveries (analytics.webhook_delivery), never a request that a person waits on.

A webhook's signing secret is never stored: it is HMAC(installation secret, its salt), made
again when a delivery is signed, and shown once when the webhook is made. Changing
TOUCHLINK_SECRET_KEY therefore changes every webhook's secret.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import secrets
import socket
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

import orjson
from pydantic import AfterValidator, WithJsonSchema
from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from shortener import schemas
from shortener.db import utcnow
from shortener.errors import InvalidURLError, NotFoundError
from shortener.models import Link, Webhook, WebhookClicks, WebhookDelivery
from shortener.urls import MAX_URL_LENGTH, validate_destination

EVENTS = (
    "link.created", "link.updated", "clicks", "alert.raised", "alert.resolved",
    "conversion.created",
)
MAX_EVENTS_FIELD = 255


class UnsafeAddressError(Exception):
    """A webhook's host resolves to an address it may not be sent to."""


def secret_of(secret_key: str, salt: str) -> str:
    """The signing secret of the webhook of `salt`, as its receiver is given it (`whsec_` and
    base64)."""
    key = hmac.digest(secret_key.encode(), f"touchlink webhook {salt}".encode(), "sha256")
    return "whsec_" + base64.b64encode(key).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header of a delivery: `v1,` and the base64 HMAC-SHA256 of
    `id.timestamp.body` under the secret's bytes."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.digest(key, signed, "sha256")).decode()


def public_addresses(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The addresses `host` resolves to, each checked: private, loopback, link-local and other
    non-public addresses raise UnsafeAddressError unless `allow_private`. Asked again at each
    delivery, so a name that later resolves elsewhere (DNS rebinding) is caught then."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeAddressError(f"the host {host} has no address in DNS") from exc
    addresses = list(dict.fromkeys(str(answer[4][0]) for answer in answers))
    if not allow_private:
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            mapped = getattr(ip, "ipv4_mapped", None)
            if not (mapped or ip).is_global or ip.is_multicast:
                raise UnsafeAddressError(
                    f"the host {host} resolves to {address}, a private or reserved address "
                    "(TOUCHLINK_WEBHOOK_ALLOW_PRIVATE=1 allows it)"
                )
    return addresses


def check_url(url: str, *, own_hosts: Collection[str], allow_private: bool) -> str:
    """A webhook URL as it will be called: a destination's rules, then its addresses."""
    checked = validate_destination(url, own_hosts=own_hosts)
    parts = urlsplit(checked)
    assert parts.hostname is not None  # validate_destination requires a host
    try:
        public_addresses(parts.hostname, parts.port or default_port(parts.scheme),
                         allow_private=allow_private)
    except UnsafeAddressError as exc:
        raise InvalidURLError("url", f"{exc}.") from exc
    return checked


def default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _known_events(events: list[str]) -> list[str]:
    if not events:
        raise ValueError(f"must name at least one of {', '.join(EVENTS)}")
    unknown = [event for event in events if event not in EVENTS]
    if unknown:
        raise ValueError(f"unknown event {unknown[0]!r}; choose from {', '.join(EVENTS)}")
    return list(dict.fromkeys(events))


# The event types of a webhook, each once, in the order given. Checked as a whole, so that a
# refusal names `events` rather than one of its items.
Events = Annotated[
    list[str],
    AfterValidator(_known_events),
    WithJsonSchema({"type": "array", "items": {"enum": list(EVENTS)}, "minItems": 1}),
]


class NewWebhook(schemas.Body):
    url: Annotated[str, schemas.Address(MAX_URL_LENGTH)]
    events: Events


class _WebhookEvents(schemas.Body):
    events: Events


@dataclass(frozen=True, slots=True)
class WebhookInput:
    url: str
    events: tuple[str, ...]

    @classmethod
    def from_json(cls, data: Any, *, own_hosts: Collection[str], allow_private: bool
                  ) -> WebhookInput:
        return cls.of(schemas.validate_body(NewWebhook, data), own_hosts=own_hosts,
                      allow_private=allow_private)

    @classmethod
    def of(cls, body: NewWebhook, *, own_hosts: Collection[str], allow_private: bool
           ) -> WebhookInput:
        url = check_url(body.url, own_hosts=own_hosts, allow_private=allow_private)
        return cls(url, tuple(body.events))


def check_events(events: Any) -> tuple[str, ...]:
    """The event types of a webhook, refused as the API refuses them (the page checks them
    apart from the URL, to show both refusals at once)."""
    return tuple(schemas.validate_body(_WebhookEvents, {"events": events}).events)


def add_webhook(session: Session, data: WebhookInput, *, secret_key: str) -> tuple[Webhook, str]:
    """Make a webhook; it and its secret, which is shown this once."""
    webhook = Webhook(url=data.url, events=",".join(data.events),
                      secret_salt=secrets.token_hex(16))
    session.add(webhook)
    session.flush()
    return webhook, secret_of(secret_key, webhook.secret_salt)


def list_webhooks(session: Session) -> list[Webhook]:
    return list(session.scalars(select(Webhook).order_by(Webhook.id)))


def find_webhook(session: Session, webhook_id: int) -> Webhook:
    webhook = session.get(Webhook, webhook_id)
    if webhook is None:
        raise NotFoundError(f"No webhook {webhook_id}.")
    return webhook


def enable_webhook(session: Session, webhook_id: int) -> Webhook:
    """Send to a disabled webhook again (its receiver mended), its failures forgotten: the events
    from now on, and its deliveries still being retried (events while it was disabled were not
    kept for it); its alert is resolved at the next evaluation."""
    webhook = find_webhook(session, webhook_id)
    webhook.active, webhook.failures_in_a_row, webhook.disabled_reason = True, 0, None
    return webhook


def remove_webhook(session: Session, webhook_id: int) -> Webhook:
    """Delete the webhook and all it has waiting or sent; the webhook, as it was."""
    webhook = find_webhook(session, webhook_id)
    for model in (WebhookDelivery, WebhookClicks):
        session.execute(delete(model).where(model.webhook_id == webhook.id))
    session.delete(webhook)
    return webhook


def recent_deliveries(session: Session, webhook: Webhook, limit: int = 20
                      ) -> list[WebhookDelivery]:
    return list(session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id)
        .order_by(WebhookDelivery.id.desc()).limit(limit)
    ))


def emit(session: Session, event: str, data: Mapping[str, Any], *,
         now: datetime | None = None) -> int:
    """Write a delivery of `event` for each active webhook that wants it; how many."""
    assert event in EVENTS, event
    now = now or utcnow()
    wanting = [
        webhook for webhook in session.scalars(select(Webhook).where(Webhook.active))
        if event in webhook.events.split(",")
    ]
    for webhook in wanting:
        session.add(delivery(webhook.id, event, data, now=now))
    return len(wanting)


def delivery(webhook_id: int, event: str, data: Mapping[str, Any], *, now: datetime
             ) -> WebhookDelivery:
    """A delivery of `event`, due now, with the body the Standard Webhooks examples use."""
    payload = {"type": event, "timestamp": now.isoformat(), "data": data}
    return WebhookDelivery(
        webhook_id=webhook_id, message_id="msg_" + secrets.token_hex(16), event=event,
        payload=orjson.dumps(payload).decode(), next_attempt_at=now,
    )


def link_event(session: Session, event: str, link: Link) -> None:
    session.flush()  # the link's id
    emit(session, event, {
        "id": link.id, "domain": link.domain, "slug": link.slug,
        "destination": link.destination, "touchpoint": link.touchpoint.key,
        "stage": link.stage.key, "campaign": link.campaign, "archived": link.archived,
    })


class DeliveryOut(TypedDict):
    id: str  # the message id, the `webhook-id` header
    event: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: schemas.TimeText
    delivered_at: schemas.TimeText | None


class _WebhookFields(TypedDict):
    id: int
    url: str
    events: list[str]
    active: bool
    failures_in_a_row: int
    disabled_reason: str | None
    created_at: schemas.TimeText


class WebhookOut(_WebhookFields):
    deliveries: list[DeliveryOut]  # the latest first


class NewWebhookOut(_WebhookFields):
    secret: str  # shown this once: it is never stored, nor shown again


def webhook_json(webhook: Webhook, deliveries: list[WebhookDelivery]) -> WebhookOut:
    return {**_fields(webhook), "deliveries": [delivery_json(d) for d in deliveries]}


def new_webhook_json(webhook: Webhook, secret: str) -> NewWebhookOut:
    return {**_fields(webhook), "secret": secret}


def _fields(webhook: Webhook) -> _WebhookFields:
    return {
        "id": webhook.id, "url": webhook.url, "events": webhook.events.split(","),
        "active": webhook.active, "failures_in_a_row": webhook.failures_in_a_row,
        "disabled_reason": webhook.disabled_reason, "created_at": webhook.created_at.isoformat(),
    }


def delivery_json(sent: WebhookDelivery) -> DeliveryOut:
    return {
        "id": sent.message_id, "event": sent.event, "status": sent.status,
        "attempts": sent.attempts, "last_status_code": sent.last_status_code,
        "last_error": sent.last_error, "created_at": sent.created_at.isoformat(),
        "delivered_at": sent.delivered_at.isoformat() if sent.delivered_at else None,
    }
