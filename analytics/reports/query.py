"""What a report is asked: the window and filters every report shares (`ReportQuery`), and the
one parser of a report's query string (`ReportRequest`): window, filters, order, limit, format.

A window is `[from, to)` in whole hours. Days are cut in the workspace's time zone: `from` and
`to` given as dates are local midnights (`to` includes its day). A window reaching past the
present is cut at the end of the current hour; the window it is compared with has the requested
length and starts one such length earlier, cut at the same offset: for a requested `[F, T)` cut
at `N`, `[F - (T - F), F - (T - F) + (N - F))`, so "today so far" is compared with the same
hours of yesterday.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from shortener.errors import InvalidParameterError
from shortener.models import Channel
from shortener.request_input import limit_param

Order = Literal["most", "least"]
RankBy = Literal["clicks", "per_1k_reached", "moved_on"]
Format = Literal["json", "csv"]

DEFAULT_DAYS = 30
MAX_DAYS = 400
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
HOUR = timedelta(hours=1)
# Bounds for `from` and `to` that keep the previous period a valid datetime.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)

UTC_ZONE = ZoneInfo("UTC")
# What every report takes; each report adds its own (see ReportRequest.from_args).
WINDOW_PARAMETERS = frozenset({"from", "to", "stage", "channel", "campaign", "bots", "tests",
                               "format"})

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """The window [start, end) in whole hours (aware, UTC), the filters every report shares, and
    the workspace's time zone, which cuts days, weeks and months."""

    start: datetime
    end: datetime  # as used: cut at the end of the current hour
    stage: str | None = None
    channel: str | None = None
    campaign: str | None = None
    bots: bool = False
    tests: bool = False  # proofing scans before a link's go-live (`tests=include`)
    requested_end: datetime | None = None  # the `to` asked for, when later than `end`
    zone: ZoneInfo = UTC_ZONE
    # Drill-down: one touchpoint, or one link (set by the views, never from a query string).
    touchpoint_id: int | None = None
    link_id: int | None = None

    @classmethod
    def from_args(
        cls, args: Mapping[str, str], *, now: datetime, zone: ZoneInfo = UTC_ZONE
    ) -> ReportQuery:
        """Parse `from`, `to`, `stage`, `channel`, `campaign`, `bots`, `tests`; empty values count
        as absent.

        `from` and `to` are dates (YYYY-MM-DD, local days; `to` includes its day) or whole-hour
        instants (ISO 8601; without an offset, local time), `to` excluded. Without them: the
        30 days up to the end of the current hour.
        """
        present = floor_hour(now.astimezone(UTC)) + HOUR
        start = _parse_time(args, "from", zone)
        requested = _parse_time(args, "to", zone, day_end=True)
        if requested is None:
            requested = present
        if start is None:
            start = requested - timedelta(days=DEFAULT_DAYS)
        if start >= requested:
            raise InvalidParameterError("from", f"must be before to ({requested.isoformat()})")
        if requested - start > timedelta(days=MAX_DAYS):
            raise InvalidParameterError("to", f"a report covers at most {MAX_DAYS} days")
        # Cut at the present; a window that has not begun is empty.
        end = max(start, min(requested, present))
        bots, tests = arg(args, "bots") or "exclude", arg(args, "tests") or "exclude"
        for name, value in (("bots", bots), ("tests", tests)):
            if value not in ("include", "exclude"):
                raise InvalidParameterError(name, f"must be include or exclude, not {value!r}")
        channel = arg(args, "channel")
        if channel is not None and channel not in set(Channel):
            raise InvalidParameterError(
                "channel", f"must be one of {', '.join(Channel)}, not {channel!r}"
            )
        return cls(
            start=start,
            end=end,
            stage=arg(args, "stage"),
            channel=channel,
            campaign=arg(args, "campaign"),
            bots=bots == "include",
            tests=tests == "include",
            requested_end=requested if requested != end else None,
            zone=zone,
        )

    @property
    def previous_start(self) -> datetime:
        """Start of the window compared with: one requested length earlier."""
        return self.start - ((self.requested_end or self.end) - self.start)

    @property
    def previous_end(self) -> datetime:
        """End of the window compared with: as long as this window (cut at the same offset)."""
        return self.previous_start + (self.end - self.start)

    @property
    def empty(self) -> bool:
        """The window has not begun (it lies in the future)."""
        return self.end <= self.start

    @property
    def first_day(self) -> date:
        """The local day the window starts on."""
        return self.start.astimezone(self.zone).date()

    @property
    def last_day(self) -> date:
        """The last local day the window touches."""
        return (max(self.end, self.start + HOUR) - HOUR).astimezone(self.zone).date()

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)


@dataclass(frozen=True, slots=True)
class ReportRequest:
    """A report's query string, parsed: the query, the order and number of rows, the format."""

    query: ReportQuery
    order: Order
    limit: int
    format: Format

    @classmethod
    def from_args(
        cls,
        args: Mapping[str, str],
        *,
        now: datetime,
        zone: ZoneInfo = UTC_ZONE,
        takes: Collection[str] = (),
        default_limit: int = DEFAULT_LIMIT,
        max_limit: int = MAX_LIMIT,
    ) -> ReportRequest:
        """Parse the query string of a report that takes the window parameters and `takes`;
        any other parameter is a 400 naming it, never silently ignored."""
        check_known(args, WINDOW_PARAMETERS | set(takes))
        return cls(
            query=ReportQuery.from_args(args, now=now, zone=zone),
            order=parse_order(args),
            limit=limit_param(args, default=default_limit, maximum=max_limit),
            format=parse_format(args),
        )


def check_known(args: Mapping[str, str], known: Collection[str]) -> None:
    """A 400 naming the first parameter that is not one of `known` (a misspelt filter would
    otherwise answer for everything)."""
    for name in args:
        if name not in known:
            raise InvalidParameterError(
                name, f"is not a parameter of this report (it takes: {', '.join(sorted(known))})"
            )


def parse_order(args: Mapping[str, str]) -> Order:
    raw = arg(args, "order") or "most"
    if raw == "most":
        return "most"
    if raw == "least":
        return "least"
    raise InvalidParameterError("order", f"must be most or least, not {raw!r}")


def parse_format(args: Mapping[str, str]) -> Format:
    raw = arg(args, "format") or "json"
    if raw == "json":
        return "json"
    if raw == "csv":
        return "csv"
    raise InvalidParameterError("format", f"must be json or csv, not {raw!r}")


def check_limit(value: int, maximum: int = MAX_LIMIT) -> None:
    if not 1 <= value <= maximum:
        raise InvalidParameterError("limit", f"must be a whole number from 1 to {maximum}")


def arg(args: Mapping[str, str], name: str) -> str | None:
    """A parameter's value, stripped; None when absent or blank."""
    value = (args.get(name) or "").strip()
    return value or None


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def parse_order_by(args: Mapping[str, str]) -> RankBy:
    raw = arg(args, "by") or "clicks"
    if raw == "clicks":
        return "clicks"
    if raw == "per_1k_reached":
        return "per_1k_reached"
    if raw == "moved_on":
        return "moved_on"
    raise InvalidParameterError(
        "by", f"must be clicks, per_1k_reached or moved_on, not {raw!r}"
    )


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """When a local day begins, in UTC (its first hour where midnight does not exist)."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def _parse_time(
    args: Mapping[str, str], name: str, zone: ZoneInfo, *, day_end: bool = False
) -> datetime | None:
    raw = arg(args, name)
    if raw is None:
        return None
    try:
        if _DATE.fullmatch(raw):
            day = date.fromisoformat(raw)
            if day_end:
                day += timedelta(days=1)
            moment = day_start(day, zone)
        else:
            parsed = datetime.fromisoformat(raw)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=zone)
            moment = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidParameterError(
            name, f"must be a date (YYYY-MM-DD) or an ISO 8601 date and time, not {raw!r}"
        ) from None
    if moment != floor_hour(moment):
        raise InvalidParameterError(
            name,
            # The hour it falls in, in the workspace's zone: in an offset of its own (+05:30)
            # the same clock time is no whole hour either.
            f"must be a whole hour (like {floor_hour(moment).astimezone(zone).isoformat()}), "
            f"not {raw!r}: "
            "reports count whole hours",
        )
    if not EARLIEST <= moment <= LATEST:
        raise InvalidParameterError(name, f"must be between {EARLIEST.year} and {LATEST.year}")
    return moment
