"""Clicks over time, per hour or per local day, for each touchpoint, stage, channel or link.

Read from the hourly rollups like the other reports: `clicks` are human clicks (scans included),
bots added only when asked for, and `human_clicks` and `bot_clicks` say which is which; `scans`
and `visitors` are human. Days are those of the workspace's time zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from analytics.models import LinkHourlyStats as Stats
from analytics.reports.query import ReportQuery, day_start
from analytics.reports.render import ReportHead, head
from analytics.reports.sql import filtered, human_clicks
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
) -> Timeseries:
    """Figures per bucket and group; every bucket of the window is there, zeros included.

    Only groups with clicks (as counted) in the window get a series.
    """
    if interval == "hour" and query.end - query.start > MAX_HOURLY_SPAN:
        raise InvalidParameterError(
            "interval", f"hour covers at most {MAX_HOURLY_SPAN.days} days; use day"
        )
    buckets = buckets_of(query, interval)
    index = {bucket: i for i, bucket in enumerate(buckets)}
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

    width = len(buckets)
    groups: dict[str, tuple[str, list[int], list[int], list[int], list[int]]] = {}
    for hour, group_key, group_name, _, human, bots, scans, visitors in session.execute(stmt):
        position = index.get(bucket_of(hour, query, interval))
        if position is None:
            continue
        entry = groups.setdefault(
            str(group_key), (str(group_name), [0] * width, [0] * width, [0] * width, [0] * width)
        )
        entry[1][position] += int(human or 0)
        entry[2][position] += int(bots or 0)
        entry[3][position] += int(scans or 0)
        entry[4][position] += int(visitors or 0)
    series = []
    for group_key, (group_name, human, bots, scans, visitors) in groups.items():
        clicks = [h + b for h, b in zip(human, bots, strict=True)] if query.bots else human
        if sum(clicks):
            series.append(
                Series(group_key, group_name, tuple(clicks), tuple(human), tuple(bots),
                       tuple(scans), tuple(visitors))
            )
    series.sort(key=lambda s: (-s.total, s.key))
    return Timeseries(query, interval, group_by, tuple(buckets), tuple(series))


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
