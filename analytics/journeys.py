"""Journeys at ingest: the keyed hash stored for a journey id, the touches of a batch (in the
batch's transaction, for its new clicks only, so a replayed batch adds nothing), and retention.

A journey id is the `tl_j` cookie's, or (cookieless) an HMAC of the IP and user agent under a
salt of the current TOUCHLINK_JOURNEY_DAYS-long period. SQL keeps only HMAC(secret, id): the
installation's secret turns an id that travels in a cookie into a key that only this
installation can make, and never back into the id.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import Table, delete, select
from sqlalchemy.orm import Session

from analytics import journey_rollups
from analytics.journey_summary import Progress, Touch
from analytics.models import Journey, JourneySalt, JourneyTouch
from analytics.upserts import add_counts, insert_new, salts_of, update_rows
from shortener.journey_cookie import COOKIELESS
from shortener.keyed_hash import keyed_hash

RETENTION_EVERY = 600.0  # seconds between two deletions of journeys past their retention
MAX_TOUCHES = 500  # touches a journey keeps; `Journey.touches` counts every human click seen


@dataclass(frozen=True, slots=True)
class JourneyKeys:
    """How ingest turns a click's journey into the key it stores."""

    secret: bytes
    days: int  # TOUCHLINK_JOURNEY_DAYS: how long a cookieless id lasts

    @classmethod
    def of(cls, secret_key: str, *, days: int) -> JourneyKeys:
        # A key of its own, derived from the installation's secret (which also signs sessions).
        return cls(hmac.digest(secret_key.encode(), b"touchlink journeys", "sha256"), days)

    def period(self, day: date) -> int:
        return day.toordinal() // self.days

    def key(self, journey: str, *, ip: str, user_agent: str, salts: dict[int, bytes],
            day: date) -> str:
        """The stored key of a click's journey (`journey` is the cookie's id or COOKIELESS)."""
        if journey == COOKIELESS:
            message = f"{ip}\n{user_agent}".encode("utf-8", "surrogatepass")
            journey = keyed_hash(salts[self.period(day)]).digest(message).hex()
        return keyed_hash(self.secret).digest(journey.encode())[:16].hex()


def salts(session: Session, keys: JourneyKeys, days: set[date], *, today: date) -> dict[int, bytes]:
    """The salts of the cookieless periods of `days`, made on first use; those of periods more
    than one period old are deleted."""
    periods = {keys.period(day) for day in days}
    session.execute(
        delete(JourneySalt).where(
            JourneySalt.period < keys.period(today) - 1, JourneySalt.period.not_in(periods)
        )
    )
    return salts_of(session, JourneySalt.period, periods)


@dataclass(slots=True)
class Recorded:
    touches: int  # stored
    change: journey_rollups.Change | None  # of the journey rollups, for the caller to apply


def record_touches(
    session: Session, rows: Sequence[dict[str, Any]], keys: dict[str, str], zone: tzinfo
) -> Recorded:
    """Store the touches of the batch's new human clicks that have a journey (`keys`: click id →
    journey key), creating or extending their journeys, up to MAX_TOUCHES per journey; what
    their rollups change is returned, to be applied last in the transaction (with the other
    rollups: the rows that every batch shares)."""
    by_key: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda row: (row["occurred_at"], row["click_id"])):
        key = keys.get(row["click_id"])
        if key is not None and not row["is_bot"]:
            by_key.setdefault(key, []).append(row)
    if not by_key:
        return Recorded(0, None)
    table: Table = Journey.__table__  # type: ignore[assignment]
    # A browser past MAX_TOUCHES is a machine or a shared screen, not one person's journey: its
    # clicks are counted, but it is no longer followed, nor written (were it in every batch, each
    # batch would wait on its row for the one before to commit).
    for key in session.scalars(
        select(Journey.key).where(Journey.key.in_(by_key), Journey.touches >= MAX_TOUCHES)
    ):
        del by_key[key]
    if not by_key:
        return Recorded(0, None)
    stages = journey_rollups.stages_in_order(session)
    order, place = journey_rollups.stage_order(stages), {s.id: i for i, s in enumerate(stages)}
    # Most journeys are new to their batch: each is inserted with the progress of its touches
    # here, so that only those seen before are written twice (their progress extended below).
    # Most of those have a single touch, and keep no progress: its one touch says it all, and
    # is read back (analytics.journey_rollups) if the journey goes on.
    fresh = {
        key: Progress.of([
            Touch(row["occurred_at"], place[row["stage_id"]], row["touchpoint_id"])
            for row in touches[:MAX_TOUCHES]
        ], len(stages))
        for key, touches in by_key.items() if len(touches) > 1
    }
    # In key order, so that two workers extending the same journeys lock them in one order; one
    # that another batch took past MAX_TOUCHES meanwhile is left as it is, and not returned.
    found = add_counts(session, table, [
        {"key": key, "first_touch_at": touches[0]["occurred_at"],
         "last_touch_at": touches[-1]["occurred_at"], "touches": len(touches),
         "progress": fresh[key].dumps(order) if key in fresh else None}
        for key, touches in sorted(by_key.items())
    ], keys=["key"], counters=["touches"], latest="last_touch_at", earliest="first_touch_at",
        returning=["id", "key", "touches", "progress"], stop_at=("touches", MAX_TOUCHES))
    extended, stored, rows_of_touches = {}, {}, []
    for journey_id, key, seen, progress in found:
        before = seen - len(by_key[key])  # what it held before this batch
        # Its touches up to MAX_TOUCHES (so that its summary stays cheap to redo).
        followed = by_key[key][: max(MAX_TOUCHES - before, 0)]
        if not followed:
            continue
        stored[journey_id] = progress
        extended[journey_id] = journey_rollups.Extension(
            [(row["click_id"], row["occurred_at"], row["stage_id"], row["touchpoint_id"])
             for row in followed],
            progress, new=before == 0, fresh=fresh.get(key) if before == 0 else None,
        )
        rows_of_touches += [{
            "click_id": row["click_id"], "journey_id": journey_id,
            "touched_at": row["occurred_at"], "touchpoint_id": row["touchpoint_id"],
            "stage_id": row["stage_id"], "link_id": row["link_id"], "via_qr": row["via_qr"],
        } for row in followed]
    # The batch's new clicks have no touch yet: each is stored once, as its click is.
    touch_table: Table = JourneyTouch.__table__  # type: ignore[assignment]
    insert_new(session, touch_table, rows_of_touches, keys=["click_id"])
    progress, change = journey_rollups.touches_added(session, extended, zone, stages)
    update_rows(session, table, [
        {"id": journey_id, "progress": kept} for journey_id, kept in sorted(progress.items())
        if kept != stored[journey_id]
    ], key="id")
    return Recorded(len(rows_of_touches), change)


def forget_journeys(
    session: Session, *, now: datetime, retention_days: int, zone: tzinfo
) -> int:
    """Delete the journeys whose last touch is older than the retention, touches, rollups and
    all; how many journeys went. Rollups cut in another zone or on other stages are rebuilt."""
    cutoff = now - timedelta(days=retention_days)
    leaving = dict(
        session.execute(select(Journey.id, Journey.progress).where(Journey.last_touch_at < cutoff))
        .all()
    )
    old = sorted(leaving)
    journey_rollups.journeys_leaving(session, leaving, zone)
    for i in range(0, len(old), journey_rollups.CHUNK):
        chunk = old[i : i + journey_rollups.CHUNK]
        session.execute(delete(JourneyTouch).where(JourneyTouch.journey_id.in_(chunk)))
        session.execute(delete(Journey).where(Journey.id.in_(chunk)))
    journey_rollups.ensure(session, zone)
    return len(old)


class RetentionClock:
    """When the next deletion of old journeys is due (the worker and the embedded sink ask)."""

    def __init__(self, every: float = RETENTION_EVERY) -> None:
        self._every = every
        self._next = 0.0

    def due(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self._every
        return True


