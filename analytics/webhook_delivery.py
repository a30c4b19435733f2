"""Sending webhook deliveries (shortener.webhooks), from the worker, never from a request.

Each round packs the queued clicks into deliveries (analytics.webhook_clicks), claims the due
deliveries (a lease, so that two workers never send one twice at once), sends each signed per
the Standard Webhooks specification to an address checked again at that moment (a name rebound
to a private address is refused), and records what came back.

A delivery not answered 2xx is tried again after 5 s, 10 s, 20 s, … (at most an hour apart)
until 24 hours after it was made; a webhook whose deliveries fail 50 times in a row is
disabled, with the reason on it, and an alert is raised (analytics.alerts) in that transaction.
"""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from analytics import webhook_clicks
from analytics.alerts import Notify, raise_webhook_disabled
from shortener.db import utcnow
from shortener.models import Webhook, WebhookDelivery
from shortener.webhooks import (
    UnsafeAddressError,
    default_port,
    public_addresses,
    secret_of,
    sign,
)

log = logging.getLogger(__name__)

ROUND = 50  # deliveries claimed at once
LEASE = timedelta(minutes=2)  # a claimed delivery is not claimed again before this
TIMEOUT = 10.0  # seconds to connect, and to wait for the answer
FIRST_RETRY = 5.0  # seconds; doubled at each failure
LONGEST_WAIT = 3600.0
GIVE_UP_AFTER = timedelta(hours=24)
DISABLE_AFTER = 50  # failures in a row
USER_AGENT = "Touchlink-Webhooks/1"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int | None  # the HTTP status, or None when there was none
    error: str | None  # why it failed, or None


def deliver_due(
    sessions: sessionmaker[Session], *, secret_key: str, allow_private: bool,
    now: datetime | None = None, notify: Notify | None = None,
) -> int:
    """Send the deliveries due now; how many were sent (answered 2xx or not)."""
    now = now or utcnow()
    with sessions.begin() as session:
        webhook_clicks.pack_due(session, now=now)
    claimed = _claim(sessions, now)
    for delivery_id, url, salt, message_id, payload in claimed:
        timestamp = int(time.time())
        body = payload.encode()
        secret = secret_of(secret_key, salt)
        answer = post(url, body, {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, message_id, timestamp, body),
        }, allow_private=allow_private)
        _record(sessions, delivery_id, answer, utcnow(), notify or Notify(None))
    return len(claimed)


def _claim(sessions: sessionmaker[Session], now: datetime) -> list[tuple[int, str, str, str, str]]:
    with sessions.begin() as session:
        due = session.execute(
            select(WebhookDelivery, Webhook.url, Webhook.secret_salt)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now,
                   Webhook.active)
            .order_by(WebhookDelivery.id)
            .limit(ROUND)
            .with_for_update(skip_locked=True, of=WebhookDelivery)
        ).all()
        for delivery, _, _ in due:
            delivery.next_attempt_at = now + LEASE
        return [(d.id, url, salt, d.message_id, d.payload) for d, url, salt in due]


def _record(sessions: sessionmaker[Session], delivery_id: int, answer: Answer, now: datetime,
            notify: Notify) -> None:
    with sessions.begin() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None:  # its webhook was deleted meanwhile
            return
        webhook = session.get(Webhook, delivery.webhook_id)
        assert webhook is not None
        delivery.attempts += 1
        delivery.last_status_code = answer.status
        if answer.error is None:
            delivery.status, delivery.delivered_at, delivery.last_error = "delivered", now, None
            webhook.failures_in_a_row = 0
            return
        delivery.last_error = answer.error[:500]
        wait = min(FIRST_RETRY * 2 ** (delivery.attempts - 1), LONGEST_WAIT)
        if now + timedelta(seconds=wait) - delivery.created_at > GIVE_UP_AFTER:
            delivery.status = "failed"
        else:
            delivery.next_attempt_at = now + timedelta(seconds=wait)
        webhook.failures_in_a_row += 1
        if webhook.failures_in_a_row >= DISABLE_AFTER and webhook.active:
            webhook.active = False
            webhook.disabled_reason = (
                f"disabled at {now.isoformat(timespec='seconds')} after {DISABLE_AFTER} "
                f"failed deliveries in a row; the last: {delivery.last_error}"
            )
            log.warning("webhook %d (%s) %s", webhook.id, webhook.url, webhook.disabled_reason)
            raise_webhook_disabled(session, webhook, notify, now)


def post(url: str, body: bytes, headers: dict[str, str], *, allow_private: bool) -> Answer:
    """POST `body` to `url` at an address checked now; redirects are not followed."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or default_port(parts.scheme)
    try:
        address = public_addresses(host, port, allow_private=allow_private)[0]
    except UnsafeAddressError as exc:
        return Answer(None, str(exc))
    connection: http.client.HTTPConnection = (
        _PinnedHTTPS(host, port, address) if https else _PinnedHTTP(host, port, address)
    )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(65_536)
    except (OSError, http.client.HTTPException) as exc:
        return Answer(None, f"{type(exc).__name__}: {exc}")
    finally:
        connection.close()
    if 200 <= response.status < 300:
        return Answer(response.status, None)
    return Answer(response.status, f"answered {response.status} {response.reason}")


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the address that was checked, not to whatever the name resolves to next."""

    def __init__(self, host: str, port: int, address: str) -> None:
        super().__init__(host, port, timeout=TIMEOUT)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str) -> None:
        super().__init__(host, port, timeout=TIMEOUT, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class WebhookSender:
    """Sends the due deliveries about once a second, in a thread of its own, so that a slow
    receiver never holds up the ingest."""

    def __init__(self, sessions: sessionmaker[Session], *, secret_key: str, allow_private: bool,
                 every: float = 1.0, notify: Notify | None = None) -> None:
        self._sessions, self._secret_key, self._allow_private = sessions, secret_key, allow_private
        self._notify = notify
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)

    def start(self) -> WebhookSender:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=TIMEOUT * 2)

    def send_due(self) -> int:
        """Send what is due now, round after round; how many were sent."""
        total, sent = 0, ROUND
        while sent == ROUND:  # a full round: more may be due at once
            sent = deliver_due(self._sessions, secret_key=self._secret_key,
                               allow_private=self._allow_private, notify=self._notify)
            total += sent
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.send_due()
            except Exception:
                log.exception("sending webhooks failed; trying again shortly")
            self._stop.wait(self._every)
