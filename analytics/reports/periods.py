"""A report window as runs of rollup rows: whole months, weeks and days of `touchpoint_stats`
(cut in the workspace's time zone), and hours of `link_hourly_stats` only inside the days that
hold the windows' bounds, each run added or taken away, chosen as the cheapest path over those
boundaries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from heapq import heappop, heappush
from math import inf
from zoneinfo import ZoneInfo

from analytics.models import Period

HOURS = "hour"  # the level of `link_hourly_stats`; the others are the periods of `touchpoint_stats`
# Rows read for one period of a level, relative to a day of touchpoint_stats (a day holds about
# every active touchpoint and stage, a month hardly more; an hour, the links clicked in it).
_COST = {HOURS: 0.3, Period.DAY: 1.0, Period.WEEK: 1.1, Period.MONTH: 1.2}
_EPOCH_TIME = datetime(1970, 1, 1, tzinfo=UTC)
_REACH = 62 * 24  # how far past the windows a plan may start or end a run
_UTC = ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class Piece:
    """Rollup rows of one level over [start, end), counted `current` and `previous` times: ±1, 0.

    For a period of `touchpoint_stats`, [start, end) are the instants its local days begin."""

    level: str  # HOURS, or a Period of touchpoint_stats
    start: datetime
    end: datetime
    current: int
    previous: int


@lru_cache(maxsize=512)
def plan_pieces(
    previous_start: datetime,
    start: datetime,
    end: datetime,
    *,
    previous_end: datetime | None = None,
    zone: ZoneInfo = _UTC,
    hours_only: bool = False,
    open_end: bool = False,
) -> tuple[Piece, ...]:
    """Runs of rollup rows whose signed sums are both windows, the current [start, end) and the
    previous [previous_start, previous_end) (by default up to `start`), in whole hours, chosen
    to read few rows.

    Each window is a shortest path from its start to its end over the bounds of hours and of
    local days, weeks and months: a run is added where the path goes forward and taken away
    where it goes back (a day less the hours before the start). The current window never reaches
    past `end`, where a run would hold clicks whose latest time hides the window's, unless
    `open_end` says nothing is stored from `end` on. `hours_only` keeps to link_hourly_stats
    (for campaigns).
    """
    p, q, s, e = (
        _hour(t) for t in (previous_start, previous_end or start, start, end)
    )
    calendar = _Calendar(zone)
    weights: dict[tuple[str, int, int], list[int]] = {}
    near = {calendar.day_of(x) for x in (p, q, s, e)}
    # (start, end, whether it may end past `end`, the last hour a run may reach)
    legs = [(s, e, open_end, e + _REACH if open_end else e), (p, q, False, q + _REACH)]
    low = min(p, s) - _REACH
    for index, (a, b, past_end, high) in enumerate(legs):
        if a >= b:
            continue
        if hours_only:
            runs = [(HOURS, a, b, 1)]
        else:
            runs = _route(a, b, calendar, past_end=past_end, low=low, high=high, near=near)
        for level, lo, hi, sign in runs:
            weights.setdefault((level, lo, hi), [0, 0])[index] += sign
    return tuple(
        Piece(level, _time(lo), _time(hi), current, previous)
        for (level, lo, hi), (current, previous) in sorted(weights.items())
        if current or previous
    )


def _route(
    a: int,
    b: int,
    calendar: _Calendar,
    *,
    past_end: bool,
    low: int,
    high: int,
    near: set[int],
) -> list[tuple[str, int, int, int]]:
    """Dijkstra from hour `a` to hour `b` (or to any hour past it), between `low` and `high`."""
    best = {a: 0.0}
    came: dict[int, tuple[int, str]] = {}
    queue = [(0.0, a)]
    while True:  # hours lead from any bound to any other: `b` is always reached
        cost, x = heappop(queue)
        if x == b or (past_end and x > b):
            break
        if cost > best[x]:
            continue
        for level, y in calendar.steps(x, near):
            if low <= y <= high and cost + _COST[level] < best.get(y, inf):
                best[y] = cost + _COST[level]
                came[y] = (x, level)
                heappush(queue, (best[y], y))
    runs: list[tuple[str, int, int, int]] = []
    while x != a:
        y, level = came[x]
        sign = 1 if x > y else -1
        if runs and runs[-1][0] == level and runs[-1][3] == sign:
            _, lo, hi, _ = runs.pop()
            runs.append((level, min(lo, x, y), max(hi, x, y), sign))
        else:
            runs.append((level, min(x, y), max(x, y), sign))
        x = y
    return runs


class _Calendar:
    """Local days, weeks (from Monday) and months of a zone, on hours since the epoch."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone

    def day_of(self, x: int) -> int:
        """The local day (an ordinal) that hour `x` belongs to."""
        return _local_day(x, self.zone)

    def steps(self, x: int, near: set[int]) -> list[tuple[str, int]]:
        """The bounds one run away from hour `x`; hours only inside the days holding the
        windows' bounds."""
        steps = _period_steps(x, self.zone)
        if self.day_of(x) in near or self.day_of(x - 1) in near:
            return [*steps, (HOURS, x - 1), (HOURS, x + 1)]
        return steps


@lru_cache(maxsize=65_536)
def _local_day(x: int, zone: ZoneInfo) -> int:
    return _time(x).astimezone(zone).date().toordinal()


@lru_cache(maxsize=16_384)
def _day_start(ordinal: int, zone: ZoneInfo) -> int:
    """The first hour of a local day (its midnight, or the hour after a gap at midnight)."""
    day = date.fromordinal(ordinal)
    return _hour(datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC))


@lru_cache(maxsize=16_384)
def _period_steps(x: int, zone: ZoneInfo) -> list[tuple[str, int]]:
    ordinal = _local_day(x, zone)
    if _day_start(ordinal, zone) != x:
        return []  # not the start of a local day
    steps: list[tuple[str, int]] = [
        (Period.DAY, _day_start(ordinal - 1, zone)),
        (Period.DAY, _day_start(ordinal + 1, zone)),
    ]
    day = date.fromordinal(ordinal)
    if day.weekday() == 0:
        steps += [
            (Period.WEEK, _day_start(ordinal - 7, zone)),
            (Period.WEEK, _day_start(ordinal + 7, zone)),
        ]
    if day.day == 1:
        before = (day - timedelta(days=1)).replace(day=1)
        steps += [
            (Period.MONTH, _day_start(before.toordinal(), zone)),
            (Period.MONTH, _day_start(Period.MONTH.after(day).toordinal(), zone)),
        ]
    return steps


def _hour(moment: datetime) -> int:
    return int((moment - _EPOCH_TIME).total_seconds()) // 3600


def _time(hours: int) -> datetime:
    return _EPOCH_TIME + timedelta(hours=hours)


def clear_plan_caches() -> None:
    for cached in (plan_pieces, _period_steps, _local_day, _day_start):
        cached.cache_clear()
