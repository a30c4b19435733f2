"""The time zone the daily rollups are cut in, and their rebuild when TOUCHLINK_TIMEZONE changes.

`touchpoint_stats` holds days, weeks and months of the workspace's time zone. The zone they were
cut in is stored (`workspace_state.rollup_timezone`); when the setting changes, they are summed
again from `link_hourly_stats` (whole UTC hours, so any whole-hour zone can be rebuilt exactly).
Daily visitors before the change keep the days they were counted in.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select, text
from sqlalchemy.orm import Session

from analytics.models import LinkHourlyStats, Period, TouchpointStats, WorkspaceState

ROLLUP_TIMEZONE = "rollup_timezone"


def stored_zone(session: Session) -> str:
    found = session.get(WorkspaceState, ROLLUP_TIMEZONE)
    return found.value if found is not None else "UTC"


def ensure_zone(session: Session, zone: ZoneInfo) -> bool:
    """Make the daily rollups those of `zone`; True when they had to be rebuilt."""
    if stored_zone(session) == zone.key:
        return False
    rebuild_touchpoint_stats(session, zone)
    session.merge(WorkspaceState(key=ROLLUP_TIMEZONE, value=zone.key))
    session.flush()
    return True


def rebuild_touchpoint_stats(session: Session, zone: ZoneInfo) -> None:
    """`touchpoint_stats` summed again from the hourly rows, in the days of `zone`."""
    session.execute(delete(TouchpointStats))
    if session.get_bind().dialect.name == "postgresql":
        _rebuild_in_sql(session, zone)
    else:
        _rebuild_in_python(session, zone)
    session.flush()


def _rebuild_in_sql(session: Session, zone: ZoneInfo) -> None:
    local = "(hour AT TIME ZONE :zone)"
    starts = {
        Period.DAY: f"CAST({local} AS date)",
        Period.WEEK: f"CAST(date_trunc('week', {local}) AS date)",
        Period.MONTH: f"CAST(date_trunc('month', {local}) AS date)",
    }
    for period, start in starts.items():
        # The period names and start expressions are our own constants, never input.
        session.execute(
            text(
                "INSERT INTO touchpoint_stats (period, period_start, stage_id, touchpoint_id,"  # noqa: S608
                " clicks, scans, bot_clicks, visitors, test_clicks, scanner_clicks, last_click_at)"
                f" SELECT '{period.value}', {start}, stage_id, touchpoint_id, sum(clicks),"
                " sum(scans), sum(bot_clicks), sum(visitors), sum(test_clicks),"
                " sum(scanner_clicks), max(last_click_at)"
                f" FROM link_hourly_stats GROUP BY {start}, stage_id, touchpoint_id"
            ),
            {"zone": zone.key},
        )


def _rebuild_in_python(session: Session, zone: ZoneInfo) -> None:
    sums: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0, None])
    rows = session.execute(
        select(
            LinkHourlyStats.hour,
            LinkHourlyStats.stage_id,
            LinkHourlyStats.touchpoint_id,
            LinkHourlyStats.clicks,
            LinkHourlyStats.scans,
            LinkHourlyStats.bot_clicks,
            LinkHourlyStats.visitors,
            LinkHourlyStats.test_clicks,
            LinkHourlyStats.scanner_clicks,
            LinkHourlyStats.last_click_at,
        ).execution_options(yield_per=10_000)
    )
    for hour, stage_id, touchpoint_id, *counts, last in rows:
        day = hour.astimezone(zone).date()
        for period in Period:
            total = sums[(period.value, period.start_of(day), stage_id, touchpoint_id)]
            for i, count in enumerate(counts):
                total[i] += count
            total[6] = _later(total[6], last)
    if sums:
        session.execute(
            insert(TouchpointStats),
            [
                {
                    "period": period, "period_start": start, "stage_id": stage_id,
                    "touchpoint_id": touchpoint_id, "clicks": c, "scans": s, "bot_clicks": b,
                    "visitors": v, "test_clicks": t, "scanner_clicks": sc, "last_click_at": last,
                }
                for (period, start, stage_id, touchpoint_id), (c, s, b, v, t, sc, last) in sorted(
                    sums.items(), key=lambda item: item[0]
                )
            ],
        )


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return max(a, b)
