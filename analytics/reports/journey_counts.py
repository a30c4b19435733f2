"""The counts the journey reports are made of, over the journeys' touches inside a window.

With the rollups current and no channel or campaign filter (nor, for paths and next, a stage
filter), they are the rollup rows whose first and last days are among the window's days,
corrected by walking the journeys at the window's edges: those of its first or last day with a
touch outside the window (their whole summary taken away, their touches inside it added), and
those crossing into it from before or after (their touches inside it added). Otherwise every
journey of the window is walked. Either way each journey is summarized by
`analytics.journey_summary`, so both give the same answer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import groupby
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from analytics import journey_rollups
from analytics.journey_summary import Touch, after_of, funnel_of, moved_of, path_of
from analytics.models import (
    Journey,
    JourneyFunnelDays,
    JourneyNextDays,
    JourneyPath,
    JourneyPathDays,
    JourneyStopDays,
    JourneyTouch,
)
from analytics.reports.query import ReportQuery, day_start
from analytics.reports.sql import stage_id as find_stage_id
from shortener.models import Link, Stage, Touchpoint

Path = tuple[int, ...]
# Corrections are walked while the journeys at the window's edges are fewer than one in
# EDGE_SHARE of those the rollups hold for it (each is read whole, and walked twice).
EDGE_SHARE = 4


@dataclass(frozen=True, slots=True)
class _Days:
    """The window's local days, as the rollups count them, and the journeys at its edges."""

    first: date
    last: date
    start: datetime  # when the first one begins
    end: datetime  # when the last one ends
    edges: list[int]


def funnel_counts(
    session: Session, query: ReportQuery, stages: Sequence[Stage]
) -> Counter[tuple[int, int, int]]:
    """Journeys by (closed depth, open stages reached, open stages continued from)."""
    counts: Counter[tuple[int, int, int]] = Counter()
    days = _rollup_days(session, query, stages)
    if days is not None:
        rows = session.execute(
            select(
                JourneyFunnelDays.depth, JourneyFunnelDays.reached, JourneyFunnelDays.continued,
                func.sum(JourneyFunnelDays.journeys),
            )
            .where(*_within(JourneyFunnelDays, days))
            .group_by(JourneyFunnelDays.depth, JourneyFunnelDays.reached,
                      JourneyFunnelDays.continued)
        )
        counts.update({(depth, reached, went): int(n) for depth, reached, went, n in rows})
    for sign, touches in _walked(session, query, stages, days):
        counts[funnel_of(touches, len(stages))] += sign
    return +counts


def path_counts(
    session: Session, query: ReportQuery, stages: Sequence[Stage], *, limit: int
) -> tuple[int, Counter[Path]]:
    """The journeys of the window, and its paths with their journeys: all of them when walked;
    from the rollups, at least those as followed as the `limit`-th most followed one."""
    days = _rollup_days(session, query, stages, by_stage=True)
    walked: Counter[Path] = Counter()
    journeys = 0
    for sign, touches in _walked(session, query, stages, days, by_stage=True):
        walked[path_of(touches)] += sign
        journeys += sign
    if days is None:
        return journeys, +walked
    journeys += _journeys_within(session, days)
    # A path has no more journeys in a window than it keeps in all (JourneyPath.journeys) plus
    # those walked. So past the limit-th count among the most kept paths and the walked ones,
    # only the paths kept by as many journeys can be in the answer.
    known = _stored(session, walked) | _paths(
        session,
        select(JourneyPath.id, JourneyPath.touchpoints)
        .order_by(JourneyPath.journeys.desc(), JourneyPath.id)
        .limit(2 * limit),
    )
    counted = _in_window(session, days, known, walked)
    bar = sorted(counted.values(), reverse=True)[limit - 1] if len(counted) >= limit else 1
    known |= _paths(
        session,
        select(JourneyPath.id, JourneyPath.touchpoints).where(JourneyPath.journeys >= bar),
    )
    return journeys, _in_window(session, days, known, walked)


def next_counts(
    session: Session, query: ReportQuery, stages: Sequence[Stage], touchpoint_id: int
) -> Counter[int | None]:
    """For the journeys that touched the touchpoint: their next other touchpoint (None: no
    further touch)."""
    counts: Counter[int | None] = Counter()
    days = _rollup_days(session, query, stages, by_stage=True)
    if days is not None:
        rows = session.execute(
            select(JourneyNextDays.next_touchpoint_id, func.sum(JourneyNextDays.journeys))
            .where(JourneyNextDays.touchpoint_id == touchpoint_id,
                   *_within(JourneyNextDays, days))
            .group_by(JourneyNextDays.next_touchpoint_id)
        )
        for found, n in rows:
            counts[None if found == journey_rollups.NO_NEXT else found] += int(n)
    for sign, touches in _walked(session, query, stages, days, by_stage=True):
        after = after_of(touches)
        if touchpoint_id in after:
            counts[after[touchpoint_id]] += sign
    return +counts


def stop_counts(
    session: Session, query: ReportQuery, stages: Sequence[Stage]
) -> tuple[Counter[int], Counter[int]]:
    """Per touchpoint id: the journeys that touched it, and those that moved on from it. The
    filters choose the touches at the touchpoint that count; the later touch may be any."""
    if query.channel is not None or query.campaign is not None or query.stage is not None:
        return _filtered_stops(session, query, stages)
    touched: Counter[int] = Counter()
    moved: Counter[int] = Counter()
    days = _rollup_days(session, query, stages)
    if days is not None:
        rows = session.execute(
            select(JourneyStopDays.touchpoint_id, func.sum(JourneyStopDays.journeys),
                   func.sum(JourneyStopDays.moved_on))
            .where(*_within(JourneyStopDays, days))
            .group_by(JourneyStopDays.touchpoint_id)
        )
        for tp, n, went in rows:
            touched[tp] += int(n)
            moved[tp] += int(went)
    for sign, touches in _walked(session, query, stages, days):
        for tp in {touch.touchpoint for touch in touches}:
            touched[tp] += sign
        for tp in moved_of(touches):
            moved[tp] += sign
    return +touched, +moved


def _filtered_stops(
    session: Session, query: ReportQuery, stages: Sequence[Stage]
) -> tuple[Counter[int], Counter[int]]:
    touched: Counter[int] = Counter()
    moved: Counter[int] = Counter()
    if query.empty:
        return touched, moved
    place = {stage.id: i for i, stage in enumerate(stages)}
    wanted = find_stage_id(session, query.stage) if query.stage is not None else None
    rows = session.execute(
        select(
            JourneyTouch.journey_id, JourneyTouch.touched_at, JourneyTouch.stage_id,
            JourneyTouch.touchpoint_id, Touchpoint.channel, Link.campaign,
        )
        .join(Touchpoint, Touchpoint.id == JourneyTouch.touchpoint_id)
        .join(Link, Link.id == JourneyTouch.link_id)
        .where(JourneyTouch.touched_at >= query.start, JourneyTouch.touched_at < query.end)
        .order_by(JourneyTouch.journey_id, JourneyTouch.touched_at, JourneyTouch.click_id)
        .execution_options(yield_per=10_000)
    )
    for _, journey in groupby(rows, key=lambda row: row[0]):
        touches, starts = [], []
        for _, at, stage, tp, channel, campaign in journey:
            touches.append(Touch(at, place[stage], tp))
            starts.append(
                (query.channel is None or channel == query.channel)
                and (query.campaign is None or campaign == query.campaign)
                and (wanted is None or stage == wanted)
            )
        touched.update({t.touchpoint for t, start in zip(touches, starts, strict=True) if start})
        moved.update(moved_of(touches, starts))
    return touched, moved


# --- the rollups, when they answer ---------------------------------------------------------------


def _rollup_days(
    session: Session, query: ReportQuery, stages: Sequence[Stage], *, by_stage: bool = False
) -> _Days | None:
    """The window's days when the rollups answer the query, else None (walk it all): they do
    not with a filter, when they are cut on other stages or in another zone, or when the
    journeys at the window's edges are so many of its journeys that walking the window costs
    less."""
    filtered = query.channel is not None or query.campaign is not None
    if query.empty or filtered or (by_stage and query.stage is not None):
        return None
    if not journey_rollups.current(session, query.zone, stages):
        return None
    first, last = query.first_day, query.last_day
    start, end = day_start(first, query.zone), day_start(last + timedelta(days=1), query.zone)
    edges = list(session.scalars(
        select(Journey.id).where(
            or_(
                and_(Journey.first_touch_at < query.start, Journey.last_touch_at >= start),
                and_(Journey.last_touch_at >= query.end, Journey.first_touch_at < end),
            )
        )
    ))
    days = _Days(first, last, start, end, edges)
    if len(edges) * EDGE_SHARE > _journeys_within(session, days):
        return None
    return days


def _journeys_within(session: Session, days: _Days) -> int:
    return session.scalar(
        select(func.coalesce(func.sum(JourneyFunnelDays.journeys), 0))
        .where(*_within(JourneyFunnelDays, days))
    ) or 0


def _within(model: Any, days: _Days) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return (model.first_day >= days.first, model.last_day <= days.last)


def _paths(session: Session, stmt: Select[int, str]) -> dict[int, str]:
    return {path_id: text for path_id, text in session.execute(stmt)}


def _stored(session: Session, paths: Counter[Path]) -> dict[int, str]:
    """The stored ids of `paths`, for those stored."""
    keys = [journey_rollups.path_key(path)[1] for path in paths]
    found: dict[int, str] = {}
    for i in range(0, len(keys), journey_rollups.CHUNK):
        found |= _paths(
            session,
            select(JourneyPath.id, JourneyPath.touchpoints).where(
                JourneyPath.key.in_(keys[i : i + journey_rollups.CHUNK])
            ),
        )
    return found


def _in_window(
    session: Session, days: _Days, paths: dict[int, str], walked: Counter[Path]
) -> Counter[Path]:
    counted: Counter[Path] = Counter(walked)
    ids = sorted(paths)
    for i in range(0, len(ids), journey_rollups.CHUNK):
        rows = session.execute(
            select(JourneyPathDays.path_id, func.sum(JourneyPathDays.journeys))
            .where(JourneyPathDays.path_id.in_(ids[i : i + journey_rollups.CHUNK]),
                   *_within(JourneyPathDays, days))
            .group_by(JourneyPathDays.path_id)
        )
        for path_id, n in rows:
            counted[journey_rollups.parse_path(paths[path_id])] += int(n)
    return +counted


# --- the walk ------------------------------------------------------------------------------------


def _walked(
    session: Session, query: ReportQuery, stages: Sequence[Stage], days: _Days | None,
    *, by_stage: bool = False,
) -> Iterator[tuple[int, list[Touch]]]:
    """Journeys' touches to add (1) or take away (-1): with `days`, the corrections at the
    window's edges; without, every journey of the window."""
    if query.empty:
        return
    if days is None:
        for touches in _window_touches(session, query, stages, by_stage=by_stage):
            yield 1, touches
        return
    for _, journey in journey_rollups.touches_of(session, days.edges, stages):
        touches = [touch for _, touch in journey]
        if touches[0].at >= days.start and touches[-1].at < days.end:
            yield -1, touches  # counted in the rollups, whole
        inside = [touch for touch in touches if query.start <= touch.at < query.end]
        if inside:
            yield 1, inside


def _window_touches(
    session: Session, query: ReportQuery, stages: Sequence[Stage], *, by_stage: bool
) -> Iterator[list[Touch]]:
    """The window's touches, a journey at a time, in time order. The channel and campaign
    filters keep the touches at their touchpoints and links; with `by_stage`, the stage filter
    keeps those at its stage."""
    place = {stage.id: i for i, stage in enumerate(stages)}
    stmt = select(
        JourneyTouch.journey_id, JourneyTouch.touched_at, JourneyTouch.stage_id,
        JourneyTouch.touchpoint_id,
    ).where(JourneyTouch.touched_at >= query.start, JourneyTouch.touched_at < query.end)
    if query.channel is not None:
        stmt = stmt.join(Touchpoint, Touchpoint.id == JourneyTouch.touchpoint_id).where(
            Touchpoint.channel == query.channel
        )
    if query.campaign is not None:
        stmt = stmt.join(Link, Link.id == JourneyTouch.link_id).where(
            Link.campaign == query.campaign
        )
    if by_stage and query.stage is not None:
        stmt = stmt.where(JourneyTouch.stage_id == find_stage_id(session, query.stage))
    stmt = stmt.order_by(
        JourneyTouch.journey_id, JourneyTouch.touched_at, JourneyTouch.click_id
    ).execution_options(yield_per=10_000)
    for _, touches in groupby(session.execute(stmt), key=lambda row: row[0]):
        yield [Touch(at, place[stage], tp) for _, at, stage, tp in touches]
