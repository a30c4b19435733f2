"""The counts the alert tests read, from the rollups only (never raw clicks), asked once per
evaluation whatever the number of rules that need them."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics.models import LinkHourlyStats, Period, TouchpointStats

BASELINE_DAYS = 28
BASELINE_WEEKS = 4
HOUR = timedelta(hours=1)


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def weeks_before(start: datetime, end: datetime, weeks: int, zone: tzinfo
                 ) -> list[tuple[datetime, datetime]]:
    """The same local weekday-hours as [start, end) in each of the `weeks` weeks before: a week
    is 7 days of the workspace's clock, so a change to or from summer time keeps the hours."""
    found = []
    for k in range(1, weeks + 1):
        shift = timedelta(days=7 * k)
        # Aware arithmetic on a zone's datetime moves its wall clock, which is what we want.
        found.append(((start.astimezone(zone) - shift).astimezone(UTC),
                      (end.astimezone(zone) - shift).astimezone(UTC)))
    return found


class Figures:
    """Counts per touchpoint at `now`, each query made once and kept for the evaluation."""

    def __init__(self, session: Session, *, now: datetime, zone: tzinfo) -> None:
        self.session, self.now, self.zone = session, now, zone
        self._cache: dict[tuple[Any, ...], Any] = {}
        today = now.astimezone(zone).date()
        self.baseline_days = (today - timedelta(days=BASELINE_DAYS), today)
        self.baseline_hours = (
            _midnight(today, zone) - _midnight(self.baseline_days[0], zone)
        ) / HOUR

    def baseline(self, column: str) -> dict[int, int]:
        """Human (`clicks`) or bot (`bot_clicks`) clicks per touchpoint in the BASELINE_DAYS
        whole days of the workspace before today; there are `baseline_hours` hours in them."""
        key = ("baseline", column)
        if key not in self._cache:
            counted = getattr(TouchpointStats, column)
            first, after = self.baseline_days
            self._cache[key] = dict(self.session.execute(
                select(TouchpointStats.touchpoint_id, func.sum(counted))
                .where(TouchpointStats.period == Period.DAY.value,
                       TouchpointStats.period_start >= first,
                       TouchpointStats.period_start < after)
                .group_by(TouchpointStats.touchpoint_id)
            ).all())
        found: dict[int, int] = self._cache[key]
        return found

    def hourly(self, column: str, start: datetime, end: datetime) -> dict[int, int]:
        """Clicks of `column` per touchpoint in the hours from `start` up to `end`."""
        key = ("hourly", column, start, end)
        if key not in self._cache:
            counted = getattr(LinkHourlyStats, column)
            self._cache[key] = dict(self.session.execute(
                select(LinkHourlyStats.touchpoint_id, func.sum(counted))
                .where(LinkHourlyStats.hour >= start, LinkHourlyStats.hour < end)
                .group_by(LinkHourlyStats.touchpoint_id)
            ).all())
        found: dict[int, int] = self._cache[key]
        return found

    def last_human_click(self, since: datetime) -> dict[int, datetime]:
        """The latest human click per touchpoint among the hours from that of `since` on."""
        key = ("last", floor_hour(since))
        if key not in self._cache:
            rows = self.session.execute(
                select(LinkHourlyStats.touchpoint_id, func.max(LinkHourlyStats.last_click_at))
                .where(LinkHourlyStats.hour >= floor_hour(since),
                       LinkHourlyStats.last_click_at.is_not(None))
                .group_by(LinkHourlyStats.touchpoint_id)
            ).all()
            self._cache[key] = {tp: at for tp, at in rows if at is not None}
        found: dict[int, datetime] = self._cache[key]
        return found


def _midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(), zone)
