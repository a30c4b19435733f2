"""What a report is asked: the window and filters every report shares (`ReportQuery`), read from
the query-string model every report's own extends (`WindowArgs`, `ReportArgs`).

A window is `[from, to)` in whole hours. Days are cut in the workspace's time zone: `from` and
`to` given as dates are local midnights (`to` includes its day). A window reaching past the
present is cut at the end of the current hour; the window it is compared with has the requested
length and starts one such length earlier, cut at the same offset: for a requested `[F, T)` cut
at `N`, `[F - (T - F), F - (T - F) + (N - F))`, so "today so far" is compared with the same
hours of yesterday.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from annotated_types import GroupedMetadata
from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from shortener import schemas
from shortener.errors import InvalidParameterError
from shortener.models import Channel

Order = Literal["most", "least"]
RankBy = Literal["clicks", "per_1k_reached", "moved_on"]
Format = Literal["json", "csv"]
Inclusion = Literal["include", "exclude"]

DEFAULT_DAYS = 30
MAX_DAYS = 400
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
HOUR = timedelta(hours=1)
# Bounds for `from` and `to` that keep the previous period a valid datetime.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)

UTC_ZONE = ZoneInfo("UTC")

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_BOUND_FORM = "a date (YYYY-MM-DD) or an ISO 8601 date and time"


# --- the query string ----------------------------------------------------------------------------


def _bound(raw: str) -> date | datetime:
    """A `from` or `to` as written: a date, or a date and time (with or without an offset)."""
    if _DATE.fullmatch(raw):
        return date.fromisoformat(raw)
    return datetime.fromisoformat(raw)


def _check_bound(value: str) -> str:
    value = value.strip()
    try:
        _bound(value)
    except ValueError:
        raise ValueError(f"must be {_BOUND_FORM}, not {value!r}") from None
    return value


# Kept as written: what it means takes the workspace's time zone (`ReportQuery.of`).
Bound = Annotated[str, Field(max_length=40), AfterValidator(_check_bound)]


@dataclass(frozen=True, slots=True)
class Limit(GroupedMetadata):
    """How many rows: a whole number from 1 to `maximum`, in plain digits (not `1_000`):
    `Annotated[int, Limit(1000)]`."""

    maximum: int

    def __iter__(self) -> Iterator[Any]:
        maximum = self.maximum

        def check(value: Any) -> Any:
            raw = value.strip() if isinstance(value, str) else value
            # Nine digits at most: never a number too large to hold.
            if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 9:
                raw = int(raw)
            if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= maximum:
                raise ValueError(f"must be a whole number from 1 to {maximum}")
            return raw

        yield BeforeValidator(check)
        yield WithJsonSchema({"type": "integer", "minimum": 1, "maximum": maximum})


class WindowArgs(schemas.Query):
    """The window and the filters every report takes; read by `ReportQuery.of`."""

    from_: Bound | None = Field(
        default=None, alias="from",
        description="a local date, or a whole hour (ISO 8601; without an offset, local time);"
        f" {DEFAULT_DAYS} days before `to` when absent",
    )
    to: Bound | None = Field(
        default=None,
        description="a local date (included), or a whole hour (excluded); the end of the"
        " current hour when absent",
    )
    stage: schemas.Key | None = None
    channel: Channel | None = None
    campaign: schemas.Text | None = None
    bots: Inclusion = "exclude"
    tests: Inclusion = Field(
        default="exclude", description="proofing scans before a link's go-live"
    )


class ReportArgs(WindowArgs):
    """What every report's query string takes: the window, the filters and the format."""

    format: Format = Field(default="json", description="csv: the rows as a CSV download")


# What ReportQuery.from_args reads of a query string (the others are its caller's).
_WINDOW = frozenset(field.alias or name for name, field in WindowArgs.model_fields.items())


# --- the query -----------------------------------------------------------------------------------


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
        """The query of `from`, `to`, `stage`, `channel`, `campaign`, `bots` and `tests` in
        `args` (other parameters are the caller's); empty values count as absent."""
        window = {name: value for name, value in args.items() if name in _WINDOW}
        return cls.of(schemas.validate_query(WindowArgs, window), now=now, zone=zone)

    @classmethod
    def of(cls, args: WindowArgs, *, now: datetime, zone: ZoneInfo = UTC_ZONE) -> ReportQuery:
        """The query a report's parameters ask, at `now`.

        `from` and `to` are dates (local days; `to` includes its day) or whole-hour instants
        (without an offset, local time), `to` excluded. Without them: the 30 days up to the end
        of the current hour.
        """
        present = floor_hour(now.astimezone(UTC)) + HOUR
        start = _moment(args.from_, "from", zone)
        requested = _moment(args.to, "to", zone, day_end=True)
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
        return cls(
            start=start,
            end=end,
            stage=args.stage,
            channel=args.channel.value if args.channel else None,
            campaign=args.campaign,
            bots=args.bots == "include",
            tests=args.tests == "include",
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

    @property
    def whole_days(self) -> bool:
        """The window is whole local days, the last one perhaps cut at the present (after
        which nothing is stored yet): what the daily rollups answer alone."""
        end = self.requested_end or self.end
        return all(self.local(t).time() == time(0) for t in (self.start, end))

    @property
    def end_day(self) -> date:
        """The local day after the window's last, for whole days (the present's cut aside)."""
        return self.local(self.requested_end or self.end).date()


def check_known(args: Mapping[str, str], known: Collection[str]) -> None:
    """A 400 naming the first parameter that is not one of `known` (a misspelt filter would
    otherwise answer for everything)."""
    for name in args:
        if name not in known:
            raise InvalidParameterError(
                name, f"is not a parameter of this report (it takes: {', '.join(sorted(known))})"
            )


def check_limit(value: int, maximum: int = MAX_LIMIT) -> None:
    if not 1 <= value <= maximum:
        raise InvalidParameterError("limit", f"must be a whole number from 1 to {maximum}")


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """When a local day begins, in UTC (its first hour where midnight does not exist)."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def _moment(
    raw: str | None, name: str, zone: ZoneInfo, *, day_end: bool = False
) -> datetime | None:
    """The instant a bound (a checked `Bound`) names: a date's local midnight (with `day_end`,
    the next day's), or a whole hour, in `zone` when written without an offset."""
    if raw is None:
        return None
    written = _bound(raw)
    try:
        if isinstance(written, datetime):
            local = written if written.tzinfo else written.replace(tzinfo=zone)
            moment = local.astimezone(UTC)
        else:
            moment = day_start(written + timedelta(days=1) if day_end else written, zone)
    except OverflowError:
        raise _out_of_range(name) from None
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
        raise _out_of_range(name)
    return moment


def _out_of_range(name: str) -> InvalidParameterError:
    return InvalidParameterError(name, f"must be between {EARLIEST.year} and {LATEST.year}")
