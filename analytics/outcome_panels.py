"""The dashboard's outcomes panel: conversions and revenue per touchpoint, credited by the
attribution model the analyst picks (`model=` on the dashboard), beside what each touchpoint's
own clicks converted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from analytics import charts
from analytics.reports import attribution, conversions
from analytics.reports.attribution import AttributionRow, Model
from analytics.reports.query import ReportQuery
from analytics.reports.refs import touchpoint_refs

SHOWN = 10  # touchpoints listed; the CSV has them all
MODEL_NAMES = {
    "last": "Last touch", "first": "First touch", "linear": "Linear", "position": "Position",
    "time_decay": "Time decay",
}
MODEL_NOTES = {
    "last": "all of a conversion's credit to the last touch before it",
    "first": "all of it to the first touch of the journey",
    "linear": "equal shares to every touch of the journey",
    "position": "40 % to the first touch, 40 % to the last, 20 % shared by those between",
    "time_decay": "more to recent touches: a touch a week older counts half as much",
}


@dataclass(frozen=True, slots=True)
class OutcomeLine:
    row: AttributionRow
    own: conversions.Outcomes  # what the touchpoint's own clicks (or coupon) converted
    bar: Any  # the SVG bar of its credit


def outcome_panel(session: Session, query: ReportQuery, *, model: Model) -> dict[str, Any]:
    """What the panel shows; `outcomes` is None when the window has no conversion."""
    credited = attribution.attribution(
        session, query, event=None, model=model,
        lookback_days=attribution.DEFAULT_LOOKBACK_DAYS,
    )
    if not credited.conversions:
        return {"outcomes": None, "model": model, "model_names": MODEL_NAMES}
    own = conversions.outcomes_by(session, query, "touchpoint")
    by_key = _by_key(session, own)
    top = max((row.conversions for row in credited.rows), default=0.0) or 1.0
    lines = [
        OutcomeLine(
            row, by_key.get(row.touchpoint.key, conversions.NO_OUTCOMES),
            charts.bar(row.conversions / top),
        )
        for row in credited.rows[:SHOWN]
    ]
    totals = conversions.Outcomes()
    for found in own.values():
        totals = _plus(totals, found)
    return {
        "outcomes": credited, "outcome_lines": lines, "outcome_totals": totals,
        "outcomes_cut": len(credited.rows) > SHOWN, "model": model,
        "model_names": MODEL_NAMES, "model_note": MODEL_NOTES[model],
    }


def _by_key(session: Session, found: dict[Any, conversions.Outcomes]) -> dict[str, Any]:
    refs = touchpoint_refs(session, {tp for tp in found if tp is not None})
    return {refs[tp].key: outcomes for tp, outcomes in found.items() if tp in refs}


def _plus(a: conversions.Outcomes, b: conversions.Outcomes) -> conversions.Outcomes:
    events = dict(a.conversions)
    for event, n in b.conversions.items():
        events[event] = events.get(event, 0) + n
    revenue = dict(a.revenue_micros)
    for currency, micros in b.revenue_micros.items():
        revenue[currency] = revenue.get(currency, 0) + micros
    return conversions.Outcomes(dict(sorted(events.items())), revenue)
