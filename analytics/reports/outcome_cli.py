"""`touchlink report conversions|attribution`: what came of the clicks, in a terminal, or as CSV
or JSON (the same reports as the API's)."""

from __future__ import annotations

import click

from analytics.reports import attribution, conversions
from analytics.reports.attribution import AttributionReport
from analytics.reports.cli import (
    as_usage_errors,
    columns,
    crop,
    emit,
    period_options,
    report_cli,
    report_query,
    stage_option,
    window_text,
)
from analytics.reports.conversions import ConversionReport
from shortener.runtime import runtime

NONE = "—"


@report_cli.command("conversions")
@click.option("--event", metavar="NAME", help="Only this event (sale, signup, lead, …).")
@stage_option("Only conversions of clicks at this stage (a stage key).")
@period_options
def conversions_command(
    event: str | None, stage: str | None, start: str | None, end: str | None,
    channel: str | None, campaign: str | None, bots: bool, fmt: str,
) -> None:
    """Conversions and revenue per touchpoint, with the median time from click to conversion."""
    args = {"from": start, "to": end, "stage": stage, "channel": channel, "campaign": campaign}
    with as_usage_errors(), runtime().report_sessions() as session:
        report = conversions.conversion_report(
            session, report_query(args, bots), event=event, interval="day"
        )
    emit(report, fmt, _conversion_table)


@report_cli.command("attribution")
@click.option("--model", type=click.Choice(attribution.MODELS), default="last",
              show_default=True, help="How a conversion's credit is shared along its journey.")
@click.option("--event", metavar="NAME", help="Only this event (sale, signup, lead, …).")
@click.option("--lookback-days", type=click.IntRange(1, attribution.MAX_LOOKBACK_DAYS),
              default=attribution.DEFAULT_LOOKBACK_DAYS, show_default=True)
@stage_option("Only conversions of clicks at this stage (a stage key).")
@period_options
def attribution_command(
    model: attribution.Model, event: str | None, lookback_days: int, stage: str | None,
    start: str | None, end: str | None, channel: str | None, campaign: str | None, bots: bool,
    fmt: str,
) -> None:
    """Each conversion's credit shared among the touchpoints of its journey."""
    args = {"from": start, "to": end, "stage": stage, "channel": channel, "campaign": campaign}
    with as_usage_errors(), runtime().report_sessions() as session:
        report = attribution.attribution(
            session, report_query(args, bots), event=event, model=model,
            lookback_days=lookback_days,
        )
    emit(report, fmt, _attribution_table)


def _conversion_table(report: ConversionReport) -> list[str]:
    total = sum(report.totals.conversions.values())
    title = f"Conversions: {window_text(report.query)}, {total} in all"
    if not report.rows:
        return [title, "No conversions in this window."]
    header = ["TOUCHPOINT", "NAME", "CONVERSIONS", "BY EVENT", "REVENUE", "MEDIAN TO CONVERT"]
    rows = [
        [r.touchpoint.key, crop(r.touchpoint.name), str(sum(r.conversions.values())),
         ", ".join(f"{event} {n}" for event, n in r.conversions.items()),
         ", ".join(f"{currency} {v}" for currency, v in r.revenue.items()) or NONE,
         _duration(r.median_seconds_to_convert)]
        for r in report.rows
    ]
    revenue = ", ".join(f"{c} {v}" for c, v in report.totals.revenue.items()) or "none"
    return [title, "", *columns(header, rows, numeric=(2, 5)), "", f"Revenue: {revenue}."]


def _attribution_table(report: AttributionReport) -> list[str]:
    title = (f"Attribution ({report.model}, {report.lookback_days}-day lookback"
             f"{', ' + report.event if report.event else ''}): {window_text(report.query)}, "
             f"{report.conversions} conversions, {report.with_journey} along a journey")
    if not report.rows:
        return [title, "No conversions in this window."]
    header = ["TOUCHPOINT", "NAME", "CREDITED", "REVENUE"]
    rows = [
        [r.touchpoint.key, crop(r.touchpoint.name), f"{r.conversions:.2f}",
         ", ".join(f"{currency} {v}" for currency, v in r.revenue.items()) or NONE]
        for r in report.rows
    ]
    return [title, "", *columns(header, rows, numeric=(2,))]


def _duration(seconds: float | None) -> str:
    """`3.5 h`, `2.0 d`, `12 min`: a median delay in the unit it reads best in."""
    if seconds is None:
        return NONE
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86_400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"
