"""Clicks over time, per hour or per day, for each touchpoint, stage or channel.

Read from the hourly rollups like the other reports: `clicks` are human clicks (scans included),
bots added only when asked for; `scans` and `visitors` are human; archived touchpoints are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, Literal

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from analytics.models import LinkHourlyStats as Stats
from analytics.reports.query import ReportQuery
from analytics.reports.render import head
from analytics.reports.sql import filtered
from shortener.errors import InvalidParameterError
from shortener.models import Stage, Touchpoint

Interval = Literal["hour", "day"]
GroupBy = Literal["touchpoint", "stage", "channel"]

INTERVALS: tuple[Interval, ...] = ("hour", "day")
GROUPS: tuple[GroupBy, ...] = ("touchpoint", "stage", "channel")
# Hourly points beyond a month are too many to draw or read; ask for days instead.
MAX_HOURLY_SPAN = timedelta(days=31)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

@dataclass(frozen=True, slots=True)
class Series:
    """One group's figures, a value for each bucket of the timeseries."""

    key: str
    name: str
    clicks: tuple[int, ...]
    scans: tuple[int, ...]
    visitors: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.clicks)


@dataclass(frozen=True, slots=True)
class Timeseries:
    kind: ClassVar[str] = "timeseries"
    csv_header: ClassVar[tuple[str, ...]] = (
        "bucket", "group_key", "group_name", "clicks", "scans", "visitors",
    )

    query: ReportQuery
    interval: Interval
    group_by: GroupBy
    buckets: tuple[datetime, ...]  # the start of each hour or UTC day
    series: tuple[Series, ...]  # most clicks first

    @property
    def totals(self) -> tuple[int, ...]:
        return tuple(sum(s.clicks[i] for s in self.series) for i in range(len(self.buckets)))

    def to_json(self) -> dict[str, Any]:
        return {
            **head(self.query),
            "interval": self.interval,
            "group_by": self.group_by,
            "buckets": [bucket.isoformat() for bucket in self.buckets],
            "series": [
                {
                    "key": s.key,
                    "name": s.name,
                    "total": s.total,
                    "clicks": list(s.clicks),
                    "scans": list(s.scans),
                    "visitors": list(s.visitors),
                }
                for s in self.series
            ],
        }

    def csv_rows(self) -> Iterable[Sequence[Any]]:
        for s in self.series:
            for i, bucket in enumerate(self.buckets):
                yield bucket, s.key, s.name, s.clicks[i], s.scans[i], s.visitors[i]


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
    raise InvalidParameterError("group_by", f"must be touchpoint, stage or channel, not {raw!r}")


def timeseries(
    session: Session, query: ReportQuery, *, interval: Interval = "day",
    group_by: GroupBy = "touchpoint",
) -> Timeseries:
    """Figures per bucket and group; every bucket of the period is there, zeros included.

    Only groups with clicks (as counted) in the period get a series.
    """
    if interval == "hour" and query.end - query.start > MAX_HOURLY_SPAN:
        raise InvalidParameterError(
            "interval", f"hour covers at most {MAX_HOURLY_SPAN.days} days; use day"
        )
    buckets = _buckets(query, interval)
    index = {bucket: i for i, bucket in enumerate(buckets)}
    bucket_column = Stats.hour if interval == "hour" else _day_of(session)
    key, name, order = _group_columns(group_by)
    counted = Stats.clicks + Stats.bot_clicks if query.bots else Stats.clicks
    stmt = filtered(
        session,
        select(
            bucket_column,
            key,
            name,
            order,
            func.sum(counted),
            func.sum(Stats.scans),
            func.sum(Stats.visitors),
        ),
        query,
    )
    if group_by == "stage":
        stmt = stmt.join(Stage, Stage.id == Stats.stage_id)
    stmt = stmt.group_by(bucket_column, key, name, order)

    groups: dict[str, tuple[str, Any, list[int], list[int], list[int]]] = {}
    for raw_bucket, group_key, group_name, group_order, clicks, scans, visitors in session.execute(
        stmt
    ):
        position = index.get(_as_bucket(raw_bucket, interval))
        if position is None:
            continue
        entry = groups.setdefault(
            str(group_key),
            (str(group_name), group_order, [0] * len(buckets), [0] * len(buckets),
             [0] * len(buckets)),
        )
        entry[2][position] += int(clicks or 0)
        entry[3][position] += int(scans or 0)
        entry[4][position] += int(visitors or 0)
    series = [
        Series(k, name_, tuple(c), tuple(s), tuple(v))
        for k, (name_, _, c, s, v) in groups.items()
        if sum(c)
    ]
    series.sort(key=lambda s: (-s.total, s.key))
    return Timeseries(query, interval, group_by, tuple(buckets), tuple(series))


def _group_columns(group_by: GroupBy) -> tuple[Any, Any, Any]:
    """The key, the name and an ordering column of the group."""
    if group_by == "touchpoint":
        return Touchpoint.key, Touchpoint.name, Touchpoint.key
    if group_by == "stage":
        return Stage.key, Stage.name, Stage.position
    return Touchpoint.channel, Touchpoint.channel, Touchpoint.channel


def _day_of(session: Session) -> ColumnElement[Any]:
    """The UTC day of a rollup's hour, in a form each backend can group by."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date_trunc("day", func.timezone("UTC", Stats.hour))
    # SQLite holds UTC times as 'YYYY-MM-DD HH:MM:SS…' text.
    return func.substr(Stats.hour, 1, 10)


def _as_bucket(raw: Any, interval: Interval) -> datetime:
    if isinstance(raw, str):
        day = date.fromisoformat(raw[:10])
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    if isinstance(raw, datetime):
        moment = raw.replace(tzinfo=UTC) if raw.tzinfo is None else raw.astimezone(UTC)
        if interval == "day":
            return moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return moment
    if isinstance(raw, date):
        return datetime(raw.year, raw.month, raw.day, tzinfo=UTC)
    raise TypeError(f"not a time bucket: {raw!r}")


def _buckets(query: ReportQuery, interval: Interval) -> list[datetime]:
    if interval == "hour":
        step = HOUR
        first = query.start
    else:
        step = DAY
        first = query.start.replace(hour=0, minute=0, second=0, microsecond=0)
    buckets = []
    moment = first
    while moment < query.end:
        buckets.append(moment)
        moment += step
    return buckets
