"""What the worker (and the embedded sink) forgets now and then: journeys past
TOUCHLINK_JOURNEY_RETENTION_DAYS, and raw click rows past TOUCHLINK_RAW_RETENTION_DAYS (their
rollups stay, so the figures of the reports built on them do not change)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from analytics.journeys import forget_journeys
from analytics.models import Click
from analytics.partitions import drop_partitions_before


@dataclass(frozen=True, slots=True)
class Forgotten:
    journeys: int
    clicks: int


def forget_old(
    session: Session, *, now: datetime, journey_days: int, raw_days: int | None, zone: tzinfo
) -> Forgotten:
    journeys = forget_journeys(session, now=now, retention_days=journey_days, zone=zone)
    clicks = 0
    if raw_days is not None:
        cutoff = now - timedelta(days=raw_days)
        # On PostgreSQL the months wholly past the cutoff go as whole partitions; the DELETE is
        # then left the month that straddles it (and the default partition), on SQLite all.
        clicks = drop_partitions_before(session, cutoff)
        gone: Any = session.execute(delete(Click).where(Click.occurred_at < cutoff))
        clicks += int(gone.rowcount or 0)
    return Forgotten(journeys, clicks)
