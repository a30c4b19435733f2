"""What a report is asked: the period and filters every report shares (`ReportQuery`), and the
one parser of a report's query string (`ReportRequest`): period, filters, order, limit, format."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from shortener.errors import InvalidParameterError
from shortener.models import Channel
from shortener.request_input import limit_param

Order = Literal["most", "least"]
Format = Literal["json", "csv"]

DEFAULT_DAYS = 30
MAX_DAYS = 400
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
HOUR = timedelta(hours=1)
# Bounds for `from` and `to` that keep the previous period a valid datetime.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """The period [start, end) in whole UTC hours, and the filters every report shares."""

    start: datetime
    end: datetime
    stage: str | None = None
    channel: str | None = None
    campaign: str | None = None
    bots: bool = False

    @classmethod
    def from_args(cls, args: Mapping[str, str], *, now: datetime) -> ReportQuery:
        """Parse `from`, `to`, `stage`, `channel`, `campaign`, `bots`; empty values count as absent.

        `to` given as a date includes that day; a date and time is rounded down to the hour and
        excluded. Without them: the 30 days up to the end of the current hour.
        """
        start = _parse_time(args, "from")
        end = _parse_time(args, "to", day_end=True)
        if end is None:
            end = floor_hour(now.astimezone(UTC)) + HOUR
        if start is None:
            start = end - timedelta(days=DEFAULT_DAYS)
        if start >= end:
            raise InvalidParameterError("from", f"must be before to ({end.isoformat()})")
        if end - start > timedelta(days=MAX_DAYS):
            raise InvalidParameterError("to", f"a report covers at most {MAX_DAYS} days")
        bots = arg(args, "bots") or "exclude"
        if bots not in ("include", "exclude"):
            raise InvalidParameterError("bots", f"must be include or exclude, not {bots!r}")
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
        )

    @property
    def previous_start(self) -> datetime:
        """Start of the period of the same length just before this one."""
        return self.start - (self.end - self.start)

    @property
    def last_day(self) -> date:
        """The last day the period touches."""
        return (self.end - timedelta(microseconds=1)).date()


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
        default_limit: int = DEFAULT_LIMIT,
        max_limit: int = MAX_LIMIT,
    ) -> ReportRequest:
        return cls(
            query=ReportQuery.from_args(args, now=now),
            order=parse_order(args),
            limit=limit_param(args, default=default_limit, maximum=max_limit),
            format=parse_format(args),
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


def _parse_time(args: Mapping[str, str], name: str, *, day_end: bool = False) -> datetime | None:
    raw = arg(args, name)
    if raw is None:
        return None
    try:
        if _DATE.fullmatch(raw):
            day = date.fromisoformat(raw)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            if day_end:
                moment += timedelta(days=1)
        else:
            moment = datetime.fromisoformat(raw)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            moment = floor_hour(moment.astimezone(UTC))
    except (ValueError, OverflowError):
        raise InvalidParameterError(
            name, f"must be a date (YYYY-MM-DD) or an ISO 8601 date and time, not {raw!r}"
        ) from None
    if not EARLIEST <= moment <= LATEST:
        raise InvalidParameterError(name, f"must be between {EARLIEST.year} and {LATEST.year}")
    return moment
