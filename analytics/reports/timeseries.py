"""Clicks over time, per hour or per local day, for each touchpoint, stage, channel or link.

Read from the daily rollups (`touchpoint_stats`) for whole days by touchpoint, stage or
channel, else from the hourly ones. As in the other reports, `clicks` are human clicks (scans
included), bots added only when asked for, and `human_clicks` and `bot_clicks` say which is
which; `scans` and `visitors` are human. Days are those of the workspace's time zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache, partial
from typing import Any, ClassVar, Literal

from sqlalchemy import case, func, select, union_all
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from analytics.models import DimensionStats as Dims
from analytics.models import LinkHourlyStats as Stats
from analytics.models import Period
from analytics.models import TouchpointStats as Days
from analytics.reports.query import ReportQuery, day_start
from analytics.reports.render import ReportHead, head
from analytics.reports.sql import (
    AnySelect,
    dimension_days,
    filtered,
    human_clicks,
    piece_rows,
    plan,
    run_report,
    stage_id,
)
from shortener.errors import InvalidParameterError
from shortener.models import Link, Stage, Touchpoint
from shortener.schemas import TimeText

Interval = Literal["hour", "day"]
GroupBy = Literal["touchpoint", "stage", "channel", "link"]

INTERVALS: tuple[Interval, ...] = ("hour", "day")
GROUPS: tuple[GroupBy, ...] = ("touchpoint", "stage", "channel", "link")
# Hourly points beyond a month are too many to draw or read; ask for days instead.
MAX_HOURLY_SPAN = timedelta(days=31)
HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Series:
    """One group's figures, a value for each bucket of the timeseries."""

    key: str
    name: str
    clicks: tuple[int, ...]
    human_clicks: tuple[int, ...]
    bot_clicks: tuple[int, ...]
    scans: tuple[int, ...]
    visitors: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.clicks)


class SeriesOut(TypedDict):
    """A `Series` as JSON: a value for each bucket."""

    key: str
    name: str
    total: int
    clicks: list[int]
    human_clicks: list[int]
    bot_clicks: list[int]
    scans: list[int]
    visitors: list[int]


class SeriesPartOut(TypedDict):
    """The series of a timeseries, without the window (as a drill-down shows them)."""

    interval: Interval
    group_by: GroupBy
    buckets: list[TimeText]
    series: list[SeriesOut]


class TimeseriesOut(ReportHead, SeriesPartOut):
    pass


@dataclass(frozen=True, slots=True)
class Timeseries:
    kind: ClassVar[str] = "timeseries"
    csv_header: ClassVar[tuple[str, ...]] = (
        "bucket", "group_key", "group_name", "clicks", "human_clicks", "bot_clicks", "scans",
        "visitors",
    )

    query: ReportQuery
    interval: Interval
    group_by: GroupBy
    buckets: tuple[datetime, ...]  # the start of each hour or local day, in the local zone
    series: tuple[Series, ...]  # most clicks first
    other: Series | None = None  # the groups past `top`, added up (key "")
    other_groups: int = 0  # how many

    @property
    def totals(self) -> tuple[int, ...]:
        return tuple(sum(s.clicks[i] for s in self.series) for i in range(len(self.buckets)))

    def to_json(self) -> TimeseriesOut:
        return {**head(self.query), **self.series_json()}

    def series_json(self) -> SeriesPartOut:
        return {
            "interval": self.interval,
            "group_by": self.group_by,
            "buckets": [bucket.isoformat() for bucket in self.buckets],
            "series": [
                {
                    "key": s.key,
                    "name": s.name,
                    "total": s.total,
                    "clicks": list(s.clicks),
                    "human_clicks": list(s.human_clicks),
                    "bot_clicks": list(s.bot_clicks),
                    "scans": list(s.scans),
                    "visitors": list(s.visitors),
                }
                for s in self.series
            ],
        }

    def csv_rows(self) -> Iterable[Sequence[Any]]:
        for s in self.series:
            for i, bucket in enumerate(self.buckets):
                yield (
                    bucket, s.key, s.name, s.clicks[i], s.human_clicks[i], s.bot_clicks[i],
                    s.scans[i], s.visitors[i],
                )


def parse_interval(args: Mapping[str, str], *, default: Interval = "day") -> Interval:
    raw = (args.get("interval") or "").strip() or default
    for interval in INTERVALS:
        if raw == interval:
            return interval
    raise InvalidParameterError("interval", f"must be hour or day, not {raw!r}")


def parse_group_by(args: Mapping[str, str], *, default: GroupBy = "touchpoint") -> GroupBy:
    raw = (args.get("group_by") or "").strip() or default
    for group in GROUPS:
        if raw == group:
            return group
    raise InvalidParameterError("group_by", f"must be one of {', '.join(GROUPS)}, not {raw!r}")


def timeseries(
    session: Session,
    query: ReportQuery,
    *,
    interval: Interval = "day",
    group_by: GroupBy = "touchpoint",
    top: int | None = None,
    ranked: Ranked | None = None,
) -> Timeseries:
    """Figures per bucket and group; every bucket of the window is there, zeros included.

    Only groups with clicks (as counted) in the window get a series; with `top`, only the `top`
    groups with most clicks, the others added up as `other`. `ranked`: the top touchpoints as
    the caller ranked them already, by clicks (the dashboard's table), not ranked again.
    """
    if interval == "hour" and query.end - query.start > MAX_HOURLY_SPAN:
        raise InvalidParameterError(
            "interval", f"hour covers at most {MAX_HOURLY_SPAN.days} days; use day"
        )
    buckets = buckets_of(query, interval)
    index = {bucket: i for i, bucket in enumerate(buckets)}
    daily = (
        interval == "day" and query.whole_days and group_by != "link"
        and query.campaign is None and query.link_id is None
    )
    found = _daily_rows(session, query, group_by, top, ranked) if daily else _hourly_rows(
        session, query, interval, group_by
    )
    width = len(buckets)
    groups: dict[str | None, tuple[str, list[int], list[int], list[int], list[int]]] = {}
    others = 0
    for bucket, group_key, group_name, human, bots, scans, visitors, rest in found:
        position = index.get(bucket)
        if position is None:
            continue
        others = max(others, rest)
        key = None if group_key is None else str(group_key)
        entry = groups.setdefault(
            key, (str(group_name), [0] * width, [0] * width, [0] * width, [0] * width)
        )
        entry[1][position] += int(human or 0)
        entry[2][position] += int(bots or 0)
        entry[3][position] += int(scans or 0)
        entry[4][position] += int(visitors or 0)
    series: list[Series] = []
    other = None
    for group_key, (group_name, human, bots, scans, visitors) in groups.items():
        clicks = [h + b for h, b in zip(human, bots, strict=True)] if query.bots else human
        made = Series(group_key or "", group_name, tuple(clicks), tuple(human), tuple(bots),
                      tuple(scans), tuple(visitors))
        if group_key is None:  # the groups past `top`, added up in SQL
            other = made
        elif sum(clicks):
            series.append(made)
    series.sort(key=lambda s: (-s.total, s.key))
    if top is not None and len(series) > top:
        other = _added_up([*series[top:], *([other] if other else [])])
        others += len(series) - top
        series = series[:top]
    return Timeseries(
        query, interval, group_by, tuple(buckets), tuple(series), other=other,
        other_groups=others if other is not None else 0,
    )


def _added_up(series: Sequence[Series]) -> Series:
    return Series("", "Other", *(
        tuple(map(sum, zip(*(getattr(s, f) for s in series), strict=True)))
        for f in ("clicks", "human_clicks", "bot_clicks", "scans", "visitors")
    ))


# (bucket, group key, group name, human, bots, scans, visitors, groups added up as other)
Row = tuple[datetime, Any, Any, Any, Any, Any, Any, int]


def _hourly_rows(
    session: Session, query: ReportQuery, interval: Interval, group_by: GroupBy
) -> Iterable[Row]:
    """From `link_hourly_stats`: hours, links and campaigns (the link's), and windows cut
    inside a day."""
    key, name, order = _group_columns(group_by)
    stmt = filtered(
        session,
        select(
            Stats.hour,
            key,
            name,
            order,
            func.sum(human_clicks(Stats, query)),
            func.sum(Stats.bot_clicks),
            func.sum(Stats.scans),
            func.sum(Stats.visitors),
        ),
        query,
    )
    if group_by == "stage":
        stmt = stmt.join(Stage, Stage.id == Stats.stage_id)
    if group_by == "link" and query.campaign is None:  # a campaign filter joins the links
        stmt = stmt.join(Link, Link.id == Stats.link_id)
    stmt = stmt.group_by(Stats.hour, key, name, order)
    for hour, group_key, group_name, _, *figures in session.execute(stmt):
        yield (bucket_of(hour, query, interval), group_key, group_name, *figures, 0)


def _daily_rows(
    session: Session, query: ReportQuery, group_by: GroupBy, top: int | None,
    ranked: Ranked | None,
) -> Iterable[Row]:
    """Whole days, from the daily rollups: by stage or channel from `dimension_stats` (a few
    rows a day); by touchpoint from `touchpoint_stats`, the `top` ones alone when asked (found
    as the touchpoint report finds them, the others added up from `dimension_stats`)."""
    if query.touchpoint_id is None and group_by != "touchpoint":
        return _dimension_days(session, query, group_by)
    if query.touchpoint_id is None and top is not None:
        return _top_touchpoint_days(session, query, top, ranked)
    return _touchpoint_days(session, query, group_by)


def _dimension_days(session: Session, query: ReportQuery, group_by: GroupBy) -> Iterable[Row]:
    """Per day and stage, or channel (as at click time), from the `source` rows of
    `dimension_stats` (every click is in one of them)."""
    key, name = (
        (Stage.key, Stage.name) if group_by == "stage" else (Dims.channel, Dims.channel)
    )
    human = Dims.clicks + Dims.test_clicks if query.tests else Dims.clicks
    stmt = dimension_days(
        session,
        select(
            Dims.day, key, name, func.sum(human), func.sum(Dims.bot_clicks),
            func.sum(case((Dims.value == "scan", human), else_=0)), func.sum(Dims.visitors),
        ),
        query,
        "source",
    ).group_by(Dims.day, key, name)
    if group_by == "stage":
        stmt = stmt.join(Stage, Stage.id == Dims.stage_id)
    for day, *figures in session.execute(stmt):
        yield (query.local(day_start(day, query.zone)), *figures, 0)


def _top_touchpoint_days(
    session: Session, query: ReportQuery, top: int, ranked: Ranked | None
) -> Iterable[Row]:
    """The `top` touchpoints' days, and every other click of each day as one group (key None)."""
    if ranked is None:
        only = stage_id(session, query.stage) if query.stage is not None else None
        found = run_report(session, query, partial(_ranking, query, only, top))
        ids = [touchpoint_id for touchpoint_id, _ in found]
        groups = int(found[0][1]) if found else 0
    else:
        keys = list(ranked.keys[:top])
        ids = list(session.scalars(select(Touchpoint.id).where(Touchpoint.key.in_(keys))))
        groups = ranked.groups
    top_sums: dict[datetime, list[int]] = {}
    for row in _touchpoint_days(session, query, "touchpoint", ids=ids) if ids else ():
        yield row
        sums = top_sums.setdefault(row[0], [0, 0, 0, 0])
        for i, figure in enumerate(row[3:7]):
            sums[i] += int(figure or 0)
    if groups <= len(ids):
        return
    # A day's other touchpoints: all its clicks (every stage's) less the top ones'.
    totals: dict[datetime, list[int]] = {}
    for bucket, _, _, *figures, _ in _dimension_days(session, query, "stage"):
        sums = totals.setdefault(bucket, [0, 0, 0, 0])
        for i, figure in enumerate(figures):
            sums[i] += int(figure or 0)
    for bucket, sums in totals.items():
        rest = [total - shown for total, shown in zip(sums, top_sums.get(bucket, [0] * 4),
                                                        strict=True)]
        yield bucket, None, "Other", rest[0], rest[1], rest[2], rest[3], groups - len(ids)


@dataclass(frozen=True, slots=True)
class Ranked:
    """Touchpoints ranked by clicks (as counted) in the window: the keys of the first, with
    clicks, and how many have any."""

    keys: tuple[str, ...]
    groups: int


@lru_cache(maxsize=128)
def _ranking(query: ReportQuery, stage: int | None, top: int, open_end: bool) -> AnySelect:
    """The `top` touchpoints with most clicks (as counted), then by key, and how many have any,
    from the runs of rollup rows that make up the window."""
    pieces = plan(query, with_previous=False, open_end=open_end)
    rows = union_all(*(piece_rows(p, query, stage, ("human", "bots")) for p in pieces)).subquery()
    counted = func.sum(rows.c.human + rows.c.bots if query.bots else rows.c.human)
    stmt = (
        select(rows.c.touchpoint_id, func.count().over())
        .join(Touchpoint, Touchpoint.id == rows.c.touchpoint_id)
        .group_by(rows.c.touchpoint_id, Touchpoint.key)
        .having(counted > 0)
        .order_by(counted.desc(), Touchpoint.key)
        .limit(top)
    )
    if query.channel is not None:
        stmt = stmt.where(Touchpoint.channel == query.channel)
    return stmt


def _touchpoint_days(
    session: Session, query: ReportQuery, group_by: GroupBy, *, ids: Sequence[int] = ()
) -> Iterable[Row]:
    """From the day rows of `touchpoint_stats` (of the touchpoints `ids`, when given), summed in
    SQL."""
    key, name, _ = _group_columns(group_by)
    per = (
        select(
            Days.period_start.label("day"),
            key.label("key"),
            name.label("name"),
            func.sum(human_clicks(Days, query)).label("human"),
            func.sum(Days.bot_clicks).label("bots"),
            func.sum(Days.scans).label("scans"),
            func.sum(Days.visitors).label("visitors"),
        )
        .join(Touchpoint, Touchpoint.id == Days.touchpoint_id)
        .where(
            Days.period == Period.DAY.value,
            Days.period_start >= query.first_day,
            Days.period_start < query.end_day,
        )
        .group_by(Days.period_start, key, name)
    )
    if group_by == "stage":
        per = per.join(Stage, Stage.id == Days.stage_id)
    if query.touchpoint_id is not None:
        per = per.where(Days.touchpoint_id == query.touchpoint_id)
    if query.stage is not None:
        per = per.where(Days.stage_id == stage_id(session, query.stage))
    if query.channel is not None:
        per = per.where(Touchpoint.channel == query.channel)
    if ids:
        per = per.where(Days.touchpoint_id.in_(ids))
    for day, *figures in session.execute(per):
        yield (query.local(day_start(day, query.zone)), *figures, 0)


def _group_columns(group_by: GroupBy) -> tuple[Any, Any, Any]:
    """The key, the name and an ordering column of the group."""
    if group_by == "touchpoint":
        return Touchpoint.key, Touchpoint.name, Touchpoint.key
    if group_by == "stage":
        return Stage.key, Stage.name, Stage.position
    if group_by == "link":
        return Link.id, Link.slug, Link.id
    return Touchpoint.channel, Touchpoint.channel, Touchpoint.channel


def bucket_of(hour: datetime, query: ReportQuery, interval: Interval) -> datetime:
    local = query.local(hour)
    if interval == "hour":
        return local
    return query.local(day_start(local.date(), query.zone))


def buckets_of(query: ReportQuery, interval: Interval) -> list[datetime]:
    if interval == "hour":
        count = int((query.end - query.start) / HOUR)
        return [query.local(query.start + i * HOUR) for i in range(count)]
    if query.empty:
        return []
    first, last = query.first_day, query.last_day
    return [
        query.local(day_start(first + timedelta(days=i), query.zone))
        for i in range((last - first).days + 1)
    ]
