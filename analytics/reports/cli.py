"""`touchlink report touchpoints|stages|funnel|paths|next`: the reports in a terminal, or as CSV
or JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

import click
from flask.cli import AppGroup

from analytics.reports import engagement, journeys, stages
from analytics.reports.engagement import TouchpointReport
from analytics.reports.journeys import FunnelReport, Mode, NextReport, PathReport
from analytics.reports.query import DEFAULT_LIMIT, MAX_LIMIT, RankBy, ReportQuery
from analytics.reports.render import Report, to_csv
from analytics.reports.stages import StageReport
from shortener.db import utcnow
from shortener.errors import InvalidParameterError, NotFoundError
from shortener.models import Channel
from shortener.runtime import runtime

report_cli = AppGroup(
    "report", help="Engagement reports: touchpoints and stages; journeys: funnel, paths, next."
)

F = TypeVar("F", bound=Callable[..., Any])

NONE = "—"
MAX_NAME = 32
FUNNEL_NOTES = {
    "closed": "Closed: journeys with touches at stages 1..k, in order; CONTINUED: those at the "
              "next stage too.",
    "open": "Open: journeys with any touch at the stage; CONTINUED: those with a later touch at "
            "the next one.",
}


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


def stage_option(text: str) -> Callable[[F], F]:
    return click.option("--stage", metavar="KEY", help=text)


ONLY_TOUCHES_AT = "Only the journeys' touches at this stage (a stage key)."


@report_cli.command("touchpoints")
@click.option("--least", is_flag=True, help="Least engaged first (touchpoints without clicks too).")
@click.option("--by", "rank_by", type=click.Choice(["clicks", "per_1k_reached", "moved_on"]),
              default="clicks", show_default=True,
              help="Rank by clicks, by visitors per 1,000 people reached, or by the share of "
                   "journeys moved on to a later stage.")
@stage_option("Only clicks at this stage (a stage key).")
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), default=DEFAULT_LIMIT,
              show_default=True)
@period_options
def touchpoints_command(
    least: bool,
    rank_by: RankBy,
    stage: str | None,
    limit: int,
    start: str | None,
    end: str | None,
    channel: str | None,
    campaign: str | None,
    bots: bool,
    fmt: str,
) -> None:
    """Engagement per touchpoint: clicks, scans, visitors, share, change, per 1,000 reached."""
    args = {"from": start, "to": end, "stage": stage, "channel": channel, "campaign": campaign}
    with as_usage_errors(), runtime().report_sessions() as session:
        report = engagement.touchpoint_report(
            session,
            report_query(args, bots),
            order="least" if least else "most",
            by=rank_by,
            limit=limit,
        )
    emit(report, fmt, _touchpoint_table)


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
    """Visitors by stage, in journey order, with the next stage's visitors as a ratio."""
    args = {"from": start, "to": end, "channel": channel, "campaign": campaign}
    with as_usage_errors(), runtime().report_sessions() as session:
        report = stages.stage_report(session, report_query(args, bots))
    emit(report, fmt, _stage_table)


@report_cli.command("funnel")
@click.option("--mode", type=click.Choice(journeys.MODES), default="closed", show_default=True,
              help="closed: touches at stages 1..k in order; open: any touch at the stage.")
@stage_option("Only this stage's row (counted over every stage).")
@period_options
def funnel_command(
    mode: Mode,
    stage: str | None,
    start: str | None,
    end: str | None,
    channel: str | None,
    campaign: str | None,
    bots: bool,
    fmt: str,
) -> None:
    """Journeys at each stage, in journey order, and those that went on to the next."""
    args = {"from": start, "to": end, "stage": stage, "channel": channel, "campaign": campaign}
    with as_usage_errors(), runtime().report_sessions() as session:
        report = journeys.funnel(session, report_query(args, bots), mode=mode)
    emit(report, fmt, _funnel_table)


@report_cli.command("paths")
@click.option("--limit", type=click.IntRange(1, journeys.MAX_PATHS),
              default=journeys.DEFAULT_PATHS, show_default=True)
@stage_option(ONLY_TOUCHES_AT)
@period_options
def paths_command(
    limit: int,
    stage: str | None,
    start: str | None,
    end: str | None,
    channel: str | None,
    campaign: str | None,
    bots: bool,
    fmt: str,
) -> None:
    """The most common sequences of touchpoints, with the journeys that follow each exactly."""
    args = {"from": start, "to": end, "stage": stage, "channel": channel, "campaign": campaign}
    with as_usage_errors(), runtime().report_sessions() as session:
        report = journeys.paths(session, report_query(args, bots), limit=limit)
    emit(report, fmt, _path_table)


@report_cli.command("next")
@click.argument("touchpoint_key")
@stage_option(ONLY_TOUCHES_AT)
@period_options
def next_command(
    touchpoint_key: str,
    stage: str | None,
    start: str | None,
    end: str | None,
    channel: str | None,
    campaign: str | None,
    bots: bool,
    fmt: str,
) -> None:
    """For the journeys that touched TOUCHPOINT_KEY: the next other touchpoint they touched."""
    args = {"from": start, "to": end, "stage": stage, "channel": channel, "campaign": campaign}
    with as_usage_errors(), runtime().report_sessions() as session:
        query = report_query(args, bots)
        report = journeys.next_touchpoints(session, query, touchpoint_key.strip())
    emit(report, fmt, _next_table)


def report_query(args: dict[str, str | None], bots: bool) -> ReportQuery:
    given = {name: value for name, value in args.items() if value is not None}
    given["bots"] = "include" if bots else "exclude"
    return ReportQuery.from_args(given, now=utcnow(), zone=runtime().settings.zone)


@contextmanager
def as_usage_errors() -> Iterator[None]:
    try:
        yield
    except InvalidParameterError as exc:
        reason = exc.message.removeprefix(f"{exc.name}: ")
        raise click.BadParameter(reason, param_hint=f"'--{exc.name}'") from None
    except NotFoundError as exc:  # not a usage error: the command was right, the key is unknown
        raise click.ClickException(exc.message) from None


def emit(report: Report, fmt: str, table: Callable[[Any], list[str]]) -> None:
    if fmt == "csv":
        click.echo(to_csv(report), nl=False)
    elif fmt == "json":
        click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        click.echo("\n".join(table(report)))


# --- tables ------------------------------------------------------------------------------------


def _touchpoint_table(report: TouchpointReport) -> list[str]:
    query = report.query
    ranked = {"per_1k_reached": "by visitors per 1,000 reached",
              "moved_on": "by share of journeys moved on"}.get(report.by, "")
    followed = any(r.journeys for r in report.rows)
    scanned = any(r.scanner_clicks for r in report.rows)  # of the bots, mail scanners
    title = (
        f"Touchpoints, {report.order} engaged first{' ' + ranked if ranked else ''}: "
        f"{window_text(query)}, {_whose(query)}"
    )
    header = ["TOUCHPOINT", "NAME", "CHANNEL", "CLICKS", "HUMAN", "BOTS",
              *(["MAIL SCANNERS"] if scanned else []), "SCANS", "VISITORS",
              "LINKS", "SHARE", "PREVIOUS", "CHANGE", "PER 1K REACHED",
              *(["JOURNEYS", "MOVED ON"] if followed else []), "LAST CLICK"]
    rows = [
        [r.touchpoint.key + (" (archived)" if r.archived else ""), crop(r.touchpoint.name),
         r.touchpoint.channel, str(r.clicks), str(r.human_clicks), str(r.bot_clicks),
         *([str(r.scanner_clicks)] if scanned else []),
         str(r.scans), str(r.visitors), str(r.links), _percent(r.share), str(r.previous_clicks),
         _percent(r.change, sign=True) if r.comparable else "too few",
         _per_1k(r.per_1k_reached, r.per_1k_reached_low, r.per_1k_reached_high),
         *([str(r.journeys), _share(r.moved_on_rate, r.moved_on_low, r.moved_on_high)]
           if followed else []),
         _time(r.last_click_at, query)]
        for r in report.rows
    ]
    if report.empty and not rows:
        return [title, "No clicks in this window: nothing to rank."]
    if not rows:
        return [title, "No touchpoints match."]
    lines = [title, "", *columns(header, rows, numeric=range(3, len(header) - 1))]
    if report.by == "per_1k_reached" and report.without_reach:
        lines.append(f"{report.without_reach} without exposure, listed last.")
    if report.by == "moved_on" and not followed:
        lines += ["", *_no_journeys("listed by clicks")]
    elif report.by == "moved_on" and (unrated := sum(r.moved_on_rate is None for r in report.rows)):
        lines.append(f"{unrated} without journeys, listed last.")
    return lines


def _stage_table(report: StageReport) -> list[str]:
    query = report.query
    title = f"Visitors by stage: {window_text(query)}, {_whose(query)}"
    header = ["#", "STAGE", "NAME", "CLICKS", "HUMAN", "BOTS", "SCANS", "VISITORS",
              "TOUCHPOINTS", "NEXT/THIS"]
    rows = [
        [str(r.stage.position), r.stage.key, crop(r.stage.name), str(r.clicks),
         str(r.human_clicks), str(r.bot_clicks), str(r.scans), str(r.visitors),
         str(r.touchpoints), _ratio(r.next_stage_ratio)]
        for r in report.rows
    ]
    if not rows:
        return [title, "No stages: run `touchlink init` to create the stage model."]
    return [
        title, "", *columns(header, rows, numeric=(0, 3, 4, 5, 6, 7, 8, 9)), "",
        "NEXT/THIS: the next stage's visitors over this stage's (totals, not the same people).",
    ]


def _funnel_table(report: FunnelReport) -> list[str]:
    title = f"Funnel ({report.mode}): {window_text(report.query)}, {report.journeys} journeys"
    if not report.journeys:
        return [title, *_no_journeys()]
    header = ["#", "STAGE", "NAME", "JOURNEYS", "CONTINUED", "DROP TO NEXT"]
    rows = [
        [str(r.stage.position), r.stage.key, crop(r.stage.name), str(r.journeys),
         NONE if r.continued is None else str(r.continued), _percent(r.drop_to_next)]
        for r in report.rows
    ]
    return [title, "", *columns(header, rows, numeric=(0, 3, 4, 5)), "",
            FUNNEL_NOTES[report.mode]]


def _path_table(report: PathReport) -> list[str]:
    title = f"Paths, most followed first: {window_text(report.query)}, {report.journeys} journeys"
    if not report.journeys:
        return [title, *_no_journeys()]
    rows = [[str(r.journeys), _percent(r.journeys / report.journeys), " > ".join(r.path)]
            for r in report.rows]
    return [title, "", *columns(["JOURNEYS", "SHARE", "PATH"], rows, numeric=(0, 1))]


def _next_table(report: NextReport) -> list[str]:
    title = (f"Next after {report.after.key}: {window_text(report.query)}, "
             f"{report.journeys} journeys touched it")
    if not report.journeys:
        return [title, *_no_journeys()]
    rows = [
        [tp.key if tp else "(no further touch)", crop(tp.name) if tp else NONE,
         tp.channel if tp else NONE, str(r.journeys), _percent(r.journeys / report.journeys)]
        for r in report.rows
        for tp in [r.touchpoint]
    ]
    header = ["TOUCHPOINT", "NAME", "CHANNEL", "JOURNEYS", "SHARE"]
    return [title, "", *columns(header, rows, numeric=(3, 4))]


def _no_journeys(then: str = "") -> list[str]:
    """That the window has no journeys, and how to follow them when they are off."""
    lines = [f"No journeys in this window{': ' + then if then else ''}."]
    if runtime().settings.journeys == "off":
        lines.append("Journeys are off: set TOUCHLINK_JOURNEYS=cookie or cookieless to follow "
                     "them (see docs/journeys.md).")
    return lines


def columns(
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


def window_text(query: ReportQuery) -> str:
    """`2026-11-03 to 2026-11-09` for whole local days, else the hours, in the workspace's zone."""
    start, end = query.local(query.start), query.local(query.end)
    zone = query.zone.key
    if start.hour == end.hour == 0 and not query.empty:
        return f"{start:%Y-%m-%d} to {query.last_day:%Y-%m-%d} ({zone})"
    return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} {zone}"


def _whose(query: ReportQuery) -> str:
    return "bots included" if query.bots else "humans only"


def _percent(value: float | None, *, sign: bool = False, places: int = 1) -> str:
    if value is None:
        return NONE
    return f"{value:{'+' if sign else ''}.{places}%}"


def _time(moment: datetime | None, query: ReportQuery) -> str:
    return f"{query.local(moment):%Y-%m-%d %H:%M}" if moment else NONE


def _per_1k(value: float | None, low: float | None, high: float | None) -> str:
    """`17.0 (12.1-23.4)`: the rate with its 95 % interval; no exposure, no rate."""
    if value is None or low is None or high is None:
        return NONE
    return f"{value:.1f} ({low:.1f}-{high:.1f})"


def _share(value: float | None, low: float | None, high: float | None) -> str:
    """`42.0% (30.1-54.9%)`: a share with its 95 % interval; nothing to divide, no share."""
    if value is None or low is None or high is None:
        return NONE
    return f"{value:.1%} ({low * 100:.1f}-{high:.1%})"


def _ratio(value: float | None) -> str:
    return NONE if value is None else f"{value:.2f}"


def crop(text: str) -> str:
    return text if len(text) <= MAX_NAME else text[: MAX_NAME - 1] + "…"
