"""How every report is answered: one JSON head, one CSV renderer, one response for either.

A report is a frozen dataclass with a `kind`, its `query`, a `csv_header`, `csv_rows()` and
`to_json()`; the API, the dashboard's downloads and the CLI all render through here, so that the
same question gets the same answer in each.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields, is_dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol

from flask import Response
from typing_extensions import TypedDict

from analytics.reports.query import Format, Inclusion, ReportQuery
from shortener.schemas import TimeText

# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class Report(Protocol):
    csv_header: ClassVar[tuple[str, ...]]

    @property
    def kind(self) -> str:
        """What the report is of (`touchpoints`, `device`, …), which names its CSV file."""

    @property
    def query(self) -> ReportQuery: ...

    def csv_rows(self) -> Iterable[Sequence[Any]]: ...

    def to_json(self) -> Mapping[str, Any]: ...


class Filters(TypedDict):
    stage: str | None
    channel: str | None
    campaign: str | None


# What every JSON report starts with (`head`); each report's own shape extends it.
ReportHead = TypedDict("ReportHead", {
    "from": TimeText,
    "to": TimeText,
    "previous_from": TimeText,
    "previous_to": TimeText,
    "timezone": str,
    "bots": Inclusion,
    "tests": Inclusion,
    "filters": Filters,
})


class TouchpointRefOut(TypedDict):
    """A touchpoint as the rows name it (`refs.TouchpointRef`)."""

    key: str
    name: str
    channel: str


class StageRefOut(TypedDict):
    """A stage as the rows name it (`refs.StageRef`)."""

    key: str
    name: str
    position: int


def head(query: ReportQuery) -> ReportHead:
    """What every JSON report starts with: the window used (cut at the end of the current hour)
    and the one it is compared with, in the workspace's time zone, and the filters applied."""
    return {
        "from": query.local(query.start).isoformat(),
        "to": query.local(query.end).isoformat(),
        "previous_from": query.local(query.previous_start).isoformat(),
        "previous_to": query.local(query.previous_end).isoformat(),
        "timezone": query.zone.key,
        "bots": "include" if query.bots else "exclude",
        "tests": "include" if query.tests else "exclude",
        "filters": {"stage": query.stage, "channel": query.channel, "campaign": query.campaign},
    }


def as_json(value: Any) -> Any:
    """A result dataclass (rows, references) as JSON values, fields in their declared order."""
    if is_dataclass(value):
        return {f.name: as_json(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [as_json(v) for v in value]
    return value


def flat_row(row: Any) -> list[Any]:
    """A row's values in field order, a nested touchpoint or stage spread out in place."""
    values: list[Any] = []
    for f in fields(row):
        value = getattr(row, f.name)
        values.extend(flat_row(value) if is_dataclass(value) else [value])
    return values


def to_csv(report: Report) -> str:
    """The report as CSV: its header, then one line per row."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(report.csv_header)
    writer.writerows([csv_cell(value) for value in row] for row in report.csv_rows())
    return out.getvalue()


def csv_cell(value: Any) -> str:
    """A CSV cell; text that a spreadsheet would run as a formula is quoted with an apostrophe
    (touchpoint, campaign and referrer names come from users and customers)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):  # conversions by event, revenue by currency: `sale 2; lead 1`
        value = "; ".join(f"{key} {count}" for key, count in value.items())
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA_START) else value
    return str(value)


def csv_filename(report: Report) -> str:
    """`touchpoints-2026-10-24-2026-11-23.csv`: the first and the last day the report covers."""
    query = report.query
    return f"{report.kind}-{query.first_day}-{query.last_day}.csv"


def csv_response(report: Report) -> Response:
    disposition = f'attachment; filename="{csv_filename(report)}"'
    headers = {"Content-Disposition": disposition}
    return Response(to_csv(report), mimetype="text/csv", headers=headers)


def respond(report: Report, fmt: Format) -> Any:
    """The report as JSON, or with format=csv as a CSV download."""
    return report.to_json() if fmt == "json" else csv_response(report)
