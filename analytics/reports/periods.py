"""A report period as runs of rollup rows: whole months, weeks and days of `touchpoint_stats`,
and hours of `link_hourly_stats` only inside the days that hold the period's bounds, each run
added or taken away, chosen as the cheapest path over those boundaries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from heapq import heappop, heappush
from math import inf

from analytics.models import Period

HOURS = "hour"  # the level of `link_hourly_stats`; the others are the periods of `touchpoint_stats`
# Rows read for one period of a level, relative to a day of touchpoint_stats (a day holds about
# every active touchpoint and stage, a month hardly more; an hour, the links clicked in it).
_COST = {HOURS: 0.3, Period.DAY: 1.0, Period.WEEK: 1.1, Period.MONTH: 1.2}
_EPOCH = date(1970, 1, 1)
_EPOCH_TIME = datetime(1970, 1, 1, tzinfo=UTC)
_MONDAY = 4 * 24  # 1970-01-05, in hours since the epoch
_REACH = 62 * 24  # how far past the period a plan may start or end a run


@dataclass(frozen=True, slots=True)
class Piece:
    """Rollup rows of one level over [start, end), counted `current` and `previous` times: ±1, 0."""

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
    hours_only: bool = False,
    open_end: bool = False,
) -> tuple[Piece, ...]:
    """Runs of rollup rows whose signed sums are both periods, [previous_start, start) and
    [start, end) (whole hours), chosen to read few rows.

    Each period is a shortest path from its start to its end over the bounds of hours, days,
    weeks and months: a run is added where the path goes forward and taken away where it goes
    back (a day less the hours before the start). The current period never reaches past `end`,
    where a run would hold clicks whose latest time hides the period's, unless `open_end` says
    nothing is stored from `end` on. `hours_only` keeps to link_hourly_stats (for campaigns).
    """
    p, s, e = (int((t - _EPOCH_TIME).total_seconds()) // 3600 for t in (previous_start, start, end))
    weights: dict[tuple[str, int, int], list[int]] = {}
    near = {p // 24, s // 24, e // 24}
    # (start, end, whether it may end past `end`, the last hour a run may reach)
    legs = [(s, e, open_end, e + _REACH if open_end else e), (p, s, False, s + _REACH)]
    for index, (a, b, past_end, high) in enumerate(legs):
        if hours_only:
            runs = [(HOURS, a, b, 1)] if a < b else []
        else:
            runs = _route(a, b, past_end=past_end, low=p - _REACH, high=high, near=near)
        for level, lo, hi, sign in runs:
            weights.setdefault((level, lo, hi), [0, 0])[index] += sign
    return tuple(
        Piece(level, _time(lo), _time(hi), current, previous)
        for (level, lo, hi), (current, previous) in sorted(weights.items())
        if current or previous
    )


def _route(
    a: int, b: int, *, past_end: bool, low: int, high: int, near: set[int]
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
        for level, y in _steps(x, near):
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


def _steps(x: int, near: set[int]) -> list[tuple[str, int]]:
    """The bounds one run away from hour `x`; hours only inside the days holding the periods'
    bounds."""
    steps = _period_steps(x) if x % 24 == 0 else []
    if x // 24 in near or (x - 1) // 24 in near:
        return [*steps, (HOURS, x - 1), (HOURS, x + 1)]
    return steps


@lru_cache(maxsize=4096)
def _period_steps(x: int) -> list[tuple[str, int]]:
    steps: list[tuple[str, int]] = [(Period.DAY, x - 24), (Period.DAY, x + 24)]
    if (x - _MONDAY) % 168 == 0:
        steps += [(Period.WEEK, x - 168), (Period.WEEK, x + 168)]
    day = _EPOCH + timedelta(days=x // 24)
    if day.day == 1:
        before = (day - timedelta(days=1)).replace(day=1)
        steps += [(Period.MONTH, _hours(before)), (Period.MONTH, _hours(Period.MONTH.after(day)))]
    return steps


def _hours(day: date) -> int:
    return (day - _EPOCH).days * 24


def _time(hours: int) -> datetime:
    return _EPOCH_TIME + timedelta(hours=hours)


def clear_plan_caches() -> None:
    for cached in (plan_pieces, _period_steps):
        cached.cache_clear()
