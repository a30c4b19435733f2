"""The dashboard's journey panels: the funnel of journeys and the flow of their most common
paths, drawn from the journey reports."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from sqlalchemy.orm import Session

from analytics import charts
from analytics.reports import journeys
from analytics.reports.query import ReportQuery
from shortener import stages
from shortener.runtime import runtime

PATHS_SHOWN = 10  # the most common paths drawn and listed; the CSV has them all
FLOW_STEPS = 5  # the steps of a path the flow draws


@dataclass(frozen=True, slots=True)
class FunnelStep:
    row: journeys.FunnelRow
    next_name: str | None  # the stage after this one, None for the last
    band: Any  # the SVG bar


def journey_panels(session: Session, query: ReportQuery, *, mode: journeys.Mode) -> dict[str, Any]:
    """The funnel of journeys (closed or open) and their paths, when the window has journey
    touches (journeys on, or kept from when they were, or the demo's); else neither, and the page
    says how to turn journeys on, or that none has come yet."""
    context: dict[str, Any] = {
        "recording": runtime().settings.journeys,  # off, cookie or cookieless
        "touched": journeys.journeys_touched(session, query),
        "people": None,
        "paths": None,
    }
    if not context["touched"]:
        return context
    people = journeys.funnel(session, query, mode=mode)
    order = stages.list_stages(session)  # every stage: a stage filter keeps one row
    following = {a.key: b.name for a, b in pairwise(order)}
    widest = max((row.journeys for row in people.rows), default=0) or 1
    steps = []
    for row in people.rows:
        name, after = row.stage.name, following.get(row.stage.key)
        label = f"{name}: {row.journeys:,} journeys"
        if after is not None:
            label += f", {row.continued or 0:,} continued to {after}"
        band = charts.funnel_bar(
            row.journeys / widest, (row.continued or 0) / widest, label=label
        )
        steps.append(FunnelStep(row, after, band))
    found = journeys.paths(session, query, limit=PATHS_SHOWN)
    names = {key: ref.name for key, ref in found.touchpoints.items()}
    flow = charts.path_flow(
        [(row.path, row.journeys) for row in found.rows], names, steps=FLOW_STEPS,
        label=f"The {len(found.rows)} most common paths of journeys, step by step",
    )
    longest = max((len(row.path) for row in found.rows), default=0)
    context.update(
        people=people, funnel_steps=steps, paths=found, flow=flow, flow_cut=longest > FLOW_STEPS
    )
    return context
