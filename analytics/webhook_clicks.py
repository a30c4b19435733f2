"""The `clicks` webhook event: the clicks a batch stores are queued for each webhook that wants
them, in the ingest transaction (so each is announced once, however often its batch is
replayed), then packed by the sender into deliveries of at most 1,000 clicks, at most one a
second per webhook, so that a busy link cannot flood a receiver.

A click is announced as the live feed shows it: time, link, touchpoint, stage, scan or click,
country, device, bot or not, proofing scan or not; never its IP or visitor id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shortener.models import Stage, Touchpoint, Webhook, WebhookClicks
from shortener.webhooks import delivery

PACK = 1_000  # clicks in one delivery at most
PACE = timedelta(seconds=1)  # between two deliveries of clicks to one webhook


def queue_clicks(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Queue the batch's newly stored clicks (`rows`, as inserted) for the webhooks that want
    them; nothing when none does."""
    wanting = [
        webhook_id for webhook_id, events in session.execute(
            select(Webhook.id, Webhook.events).where(Webhook.active)
        ) if "clicks" in events.split(",")
    ]
    if not wanting or not rows:
        return
    touchpoints = _keys(session, Touchpoint, {row["touchpoint_id"] for row in rows})
    stages = _keys(session, Stage, {row["stage_id"] for row in rows})
    clicks = [{
        "at": row["occurred_at"].isoformat(), "link_id": row["link_id"],
        "touchpoint": touchpoints.get(row["touchpoint_id"]), "stage": stages.get(row["stage_id"]),
        "scan": row["via_qr"], "country": row["country"], "device": row["device"],
        "bot": row["is_bot"], "test": row["is_test"],
    } for row in sorted(rows, key=lambda row: (row["occurred_at"], row["click_id"]))]
    for start in range(0, len(clicks), PACK):
        part = clicks[start : start + PACK]
        payload = orjson.dumps(part).decode()
        session.add_all(
            WebhookClicks(webhook_id=webhook_id, clicks=len(part), payload=payload)
            for webhook_id in wanting
        )


def _keys(session: Session, model: Any, ids: set[int]) -> dict[int, str]:
    return dict(session.execute(select(model.id, model.key).where(model.id.in_(ids))).all())


def pack_due(session: Session, *, now: datetime) -> int:
    """Turn each active webhook's oldest queued clicks (up to PACK) into a delivery, for the
    webhooks last sent clicks at least PACE ago; how many deliveries were made."""
    due = session.scalars(
        select(Webhook)
        .where(Webhook.active, Webhook.id.in_(select(WebhookClicks.webhook_id)))
        .order_by(Webhook.id)
        .with_for_update(skip_locked=True)
    ).all()
    made = 0
    for webhook in due:
        if webhook.clicks_sent_at is not None and now - webhook.clicks_sent_at < PACE:
            continue
        taken: list[int] = []
        clicks: list[dict[str, Any]] = []
        for queued in session.scalars(
            select(WebhookClicks).where(WebhookClicks.webhook_id == webhook.id)
            .order_by(WebhookClicks.id).limit(PACK)
        ):
            if clicks and len(clicks) + queued.clicks > PACK:
                break
            taken.append(queued.id)
            clicks += orjson.loads(queued.payload)
        session.execute(delete(WebhookClicks).where(WebhookClicks.id.in_(taken)))
        session.add(delivery(webhook.id, "clicks", {"clicks": clicks}, now=now))
        webhook.clicks_sent_at = now
        made += 1
    return made
