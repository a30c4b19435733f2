"""`touchlink report touchpoints|stages`: the reports in a terminal, or as CSV or JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

import click
from flask.cli import AppGroup

from analytics.reports import engagement
from analytics.reports.engagement import StageReport, TouchpointReport
from analytics.reports.query import DEFAULT_LIMIT, MAX_LIMIT, ReportQuery
from analytics.reports.render import Report, to_csv
from shortener.db import utcnow
from shortener.errors import InvalidParameterError
from shortener.models import Channel
from shortener.runtime import runtime

report_cli = AppGroup("report", help="Engagement reports: touchpoints and stages.")

F = TypeVar("F", bound=Callable[..., Any])

NONE = "—"
MAX_NAME = 32


def period_options(command: F) -> F:
    """The options both reports share: the period and the filters."""
    options = (
        click.option("--from", "start", metavar="DATE",
                     help="First day (YYYY-MM-DD) or hour (ISO 8601); default: 30 days ago."),
        click.option("--to", "end", metavar="DATE",
                     help="Last day, included (YYYY-MM-DD), or hour, excluded; default: now."),
        click.option("--channel", type=click.Choice([c.value for c in Channel])),
        click.option("--campaign", help="Only the links of this campaign."),
        click.option("--bots", is_flag=True, help="Count bot clicks too."),
        click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]),
                     default="table", show_default=True),
    )
    for option in reversed(options):
        command = option(command)
    return command


@report_cli.command("touchpoints")
@click.option("--least", is_flag=True, help="Least engaged first (touchpoints without clicks too).")
@click.option("--stage", help="Only clicks at this stage (a stage key).")
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), default=DEFAULT_LIMIT,
              show_default=True)
@period_options
def touchpoints_command(
    least: bool,
    stage: str | None,
    limit: int,
    start: str | None,
    end: str | None,
    channel: str | None,
    campaign: str | None,
    bots: bool,
    fmt: str,
) -> None:
    """Engagement per touchpoint: clicks, scans, visitors, share and change."""
    args = {"from": start, "to": end, "stage": stage, "channel": channel, "campaign": campaign}
    with _as_usage_errors(), runtime().sessions() as session:
        report = engagement.touchpoint_report(
            session, _query(args, bots), order="least" if least else "most", limit=limit
        )
    _emit(report, fmt, _touchpoint_table)


@report_cli.command("stages")
@period_options
def stages_command(
    start: str | None,
    end: str | None,
    channel: str | None,
    campaign: str | None,
    bots: bool,
    fmt: str,
) -> None:
    """Clicks and visitors per stage, in journey order, with the drop to the next stage."""
    args = {"from": start, "to": end, "channel": channel, "campaign": campaign}
    with _as_usage_errors(), runtime().sessions() as session:
        report = engagement.stage_report(session, _query(args, bots))
    _emit(report, fmt, _stage_table)


def _query(args: dict[str, str | None], bots: bool) -> ReportQuery:
    given = {name: value for name, value in args.items() if value is not None}
    given["bots"] = "include" if bots else "exclude"
    return ReportQuery.from_args(given, now=utcnow())


@contextmanager
def _as_usage_errors() -> Iterator[None]:
    try:
        yield
    except InvalidParameterError as exc:
        reason = exc.message.removeprefix(f"{exc.name}: ")
        raise click.BadParameter(reason, param_hint=f"'--{exc.name}'") from None


def _emit(report: Report, fmt: str, table: Callable[[Any], list[str]]) -> None:
    if fmt == "csv":
        click.echo(to_csv(report), nl=False)
    elif fmt == "json":
        click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        click.echo("\n".join(table(report)))


# --- tables ------------------------------------------------------------------------------------


def _touchpoint_table(report: TouchpointReport) -> list[str]:
    query = report.query
    title = (
        f"Touchpoints, {report.order} engaged first: {_period(query.start, query.end)}, "
        f"{_whose(query)}"
    )
    header = ["TOUCHPOINT", "NAME", "CHANNEL", "CLICKS", "SCANS", "VISITORS", "LINKS", "SHARE",
              "PREVIOUS", "CHANGE", "ENGAGEMENT", "LAST CLICK"]
    rows = [
        [r.touchpoint.key, _crop(r.touchpoint.name), r.touchpoint.channel, str(r.clicks),
         str(r.scans), str(r.visitors), str(r.links), _percent(r.share), str(r.previous_clicks),
         _percent(r.change, sign=True), _percent(r.engagement_rate, places=2),
         _time(r.last_click_at)]
        for r in report.rows
    ]
    if not rows:
        return [title, "No touchpoints match."]
    return [title, "", *_columns(header, rows, numeric=range(3, 11))]


def _stage_table(report: StageReport) -> list[str]:
    query = report.query
    title = f"Journey stages: {_period(query.start, query.end)}, {_whose(query)}"
    header = ["#", "STAGE", "NAME", "CLICKS", "SCANS", "VISITORS", "TOUCHPOINTS", "DROP TO NEXT"]
    rows = [
        [str(r.stage.position), r.stage.key, _crop(r.stage.name), str(r.clicks), str(r.scans),
         str(r.visitors), str(r.touchpoints), _percent(r.drop_to_next)]
        for r in report.rows
    ]
    if not rows:
        return [title, "No stages: run `touchlink init` to create the stage model."]
    return [title, "", *_columns(header, rows, numeric=(0, 3, 4, 5, 6, 7))]


def _columns(
    header: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int]
) -> list[str]:
    """Aligned lines: numbers to the right, text to the left."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(header), *(line(row) for row in rows)]


def _period(start: datetime, end: datetime) -> str:
    if start.hour == end.hour == 0:
        return f"{start:%Y-%m-%d} to {end - timedelta(days=1):%Y-%m-%d}"
    return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"


def _whose(query: ReportQuery) -> str:
    return "bots included" if query.bots else "humans only"


def _percent(value: float | None, *, sign: bool = False, places: int = 1) -> str:
    if value is None:
        return NONE
    return f"{value:{'+' if sign else ''}.{places}%}"


def _time(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else NONE


def _crop(text: str) -> str:
    return text if len(text) <= MAX_NAME else text[: MAX_NAME - 1] + "…"
