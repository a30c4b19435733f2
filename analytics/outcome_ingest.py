"""Outcomes → rows, in the caller's transaction, each at most once: conversions (of a click's
link, or of a coupon's touchpoint) and survey answers (one per journey, or per visitor and day,
at each link)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from analytics import journeys as journey_store
from analytics.conversions import MICROS
from analytics.enrich import visitor_id
from analytics.ingest import visitor_salts
from analytics.journeys import JourneyKeys
from analytics.models import Conversion, FeedbackAnswer
from analytics.upserts import dialect_insert
from shortener import webhooks
from shortener.journey_cookie import COOKIELESS
from shortener.models import Link, Touchpoint
from shortener.outcomes import AnswerEvent, ConversionEvent, Outcome


@dataclass(slots=True)
class OutcomeResult:
    conversions: int = 0
    answers: int = 0
    duplicates: int = 0  # replayed, a retried external id, or a second answer
    # Outcomes that can never be stored (their link is gone): the caller dead-letters them.
    rejected: list[Outcome] = field(default_factory=list)


def store_outcomes(
    session: Session,
    outcomes: Sequence[Outcome],
    *,
    now: datetime,
    zone: tzinfo = UTC,
    journeys: JourneyKeys | None = None,
) -> OutcomeResult:
    """Insert the outcomes not stored yet; flushes, never commits."""
    result = OutcomeResult()
    conversions = [o for o in outcomes if isinstance(o, ConversionEvent)]
    answers = [o for o in outcomes if isinstance(o, AnswerEvent)]
    links = _links(session, {o.link_id for o in conversions if o.link_id is not None})
    rows = []
    for conversion in conversions:
        place = links.get(conversion.link_id) if conversion.link_id is not None else None
        if conversion.link_id is not None and place is None:
            result.rejected.append(conversion)
            continue
        touchpoint_id, stage_id = place or (conversion.touchpoint_id, None)
        rows.append(_conversion_row(conversion, touchpoint_id, stage_id))
    stored = _insert_new(session, Conversion.__table__, rows)
    result.conversions = len(stored)
    result.duplicates += len(rows) - result.conversions
    _announce(session, [row for row in rows if row["id"] in stored], now=now)
    if answers:
        rows = _answer_rows(session, answers, now=now, zone=zone, journeys=journeys)
        result.answers = len(_insert_new(session, FeedbackAnswer.__table__, rows))
        result.duplicates += len(rows) - result.answers
    return result


def _announce(session: Session, rows: list[dict[str, Any]], *, now: datetime) -> None:
    """A `conversion.created` webhook event for each conversion stored, in its transaction."""
    if not rows:
        return
    keys = dict(session.execute(
        select(Touchpoint.id, Touchpoint.key)
        .where(Touchpoint.id.in_({row["touchpoint_id"] for row in rows}))
    ).all())
    for row in rows:
        value = row["value_micros"]
        webhooks.emit(session, "conversion.created", {
            "id": row["id"], "event": row["event"], "occurred_at": row["occurred_at"].isoformat(),
            "value": None if value is None else str(Decimal(value) / MICROS),
            "currency": row["currency"], "touchpoint": keys.get(row["touchpoint_id"]),
            "link_id": row["link_id"], "coupon": row["coupon"],
            "external_id": row["external_id"],
        }, now=now)


def _links(session: Session, ids: set[int]) -> dict[int | None, tuple[int, int]]:
    if not ids:
        return {}
    found = session.execute(
        select(Link.id, Link.touchpoint_id, Link.stage_id).where(Link.id.in_(ids))
    )
    return {link_id: (touchpoint_id, stage_id) for link_id, touchpoint_id, stage_id in found}


def _conversion_row(
    conversion: ConversionEvent, touchpoint_id: int | None, stage_id: int | None
) -> dict[str, Any]:
    clicked = conversion.clicked_at
    return {
        "id": conversion.id,
        "external_id": conversion.external_id,
        "event": conversion.event,
        "occurred_at": datetime.fromtimestamp(conversion.occurred_at, UTC),
        "value_micros": conversion.value_micros,
        "currency": conversion.currency,
        "click_id": conversion.click_id,
        "clicked_at": datetime.fromtimestamp(clicked, UTC) if clicked is not None else None,
        "link_id": conversion.link_id,
        "coupon": conversion.coupon,
        "touchpoint_id": touchpoint_id,
        "stage_id": stage_id,
    }


def _answer_rows(
    session: Session,
    answers: Sequence[AnswerEvent],
    *,
    now: datetime,
    zone: tzinfo,
    journeys: JourneyKeys | None,
) -> list[dict[str, Any]]:
    days = {_day(a.at, zone) for a in answers}
    salts = visitor_salts(session, days, now=now, zone=zone)
    journey_salts: dict[int, bytes] = {}
    if journeys is not None and any(a.journey == COOKIELESS for a in answers):
        journey_salts = journey_store.salts(
            session, journeys, days, today=now.astimezone(zone).date()
        )
    rows = []
    for answer in answers:
        day = _day(answer.at, zone)
        if journeys is not None and answer.journey:
            who = "j:" + journeys.key(
                answer.journey, ip=answer.ip, user_agent=answer.user_agent,
                salts=journey_salts, day=day,
            )
        else:
            who = f"v:{day.isoformat()}:{visitor_id(salts[day], answer.ip, answer.user_agent)}"
        # `who` is a keyed hash already (the journey key, or the day's visitor id).
        once = hashlib.blake2b(f"{answer.link_id}\n{who}".encode(), digest_size=16).hexdigest()
        rows.append({
            "id": answer.id,
            "once": once,
            "answered_at": datetime.fromtimestamp(answer.at, UTC),
            "link_id": answer.link_id,
            "touchpoint_id": answer.touchpoint_id,
            "stage_id": answer.stage_id,
            "kind": answer.kind,
            "score": answer.score,
            "comment": answer.comment or None,
        })
    return rows


def _insert_new(session: Session, table: Any, rows: list[dict[str, Any]]) -> set[Any]:
    """Insert the rows that break no unique constraint (the id, an external id, `once`); the
    ids of those inserted."""
    if not rows:
        return set()
    target: Table = table
    stmt = dialect_insert(session, target).on_conflict_do_nothing().returning(target.c.id)
    return {found[0] for row in rows if (found := session.execute(stmt, row).first()) is not None}


def _day(at: float, zone: tzinfo) -> date:
    return datetime.fromtimestamp(at, zone).date()
