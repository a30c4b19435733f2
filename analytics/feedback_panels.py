"""The feedback the pages show: the dashboard's panel (each touchpoint's NPS, CSAT and CES with
their 95 % intervals drawn, over `analytics.reports.feedback`), its journey map coloured by NPS
(`map=nps`), and a touchpoint page's figures and latest comments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from markupsafe import Markup
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from analytics import charts
from analytics.reports import feedback
from analytics.reports.feedback import FeedbackFigures
from analytics.reports.journey_map import JourneyMap, nps_map
from analytics.reports.query import ReportQuery
from shortener.errors import InvalidParameterError
from shortener.models import SURVEY_SCALES, Link
from shortener.touchpoints import get_touchpoint

MapBy = Literal["clicks", "nps"]
COMMENTS_SHOWN = 5  # on a touchpoint's page; the API and the CSV have more


def parse_map(args: Mapping[str, str]) -> MapBy:
    """What the journey map is coloured by (`map`): clicks (the default) or NPS."""
    raw = (args.get("map") or "").strip() or "clicks"
    if raw == "clicks":
        return "clicks"
    if raw == "nps":
        return "nps"
    raise InvalidParameterError("map", f"must be clicks or nps, not {raw!r}")


@dataclass(frozen=True, slots=True)
class Drawn:
    """A group's figures, each drawn on its own scale with its interval."""

    figures: FeedbackFigures
    nps: Markup
    csat: Markup
    ces: Markup


def draw(figures: FeedbackFigures) -> Drawn:
    low, high = SURVEY_SCALES["ces"]
    return Drawn(
        figures,
        nps=charts.scale_bar(
            figures.nps, figures.nps_low, figures.nps_high, bottom=-100, top=100, zero=0,
            label=_label("NPS", figures.nps, figures.nps_low, figures.nps_high),
        ),
        csat=charts.scale_bar(
            figures.csat, figures.csat_low, figures.csat_high, bottom=0, top=100,
            label=_label("Satisfied %", figures.csat, figures.csat_low, figures.csat_high),
        ),
        ces=charts.scale_bar(
            figures.ces, figures.ces_low, figures.ces_high, bottom=low, top=high,
            label=_label("Mean effort score", figures.ces, figures.ces_low, figures.ces_high),
        ),
    )


def _label(name: str, value: float | None, low: float | None, high: float | None) -> str:
    if value is None:
        return ""
    if low is None or high is None:
        return f"{name} {value:g}: too few answers for an interval"
    return f"{name} {value:g}, 95 % interval {low:g} to {high:g}"


def surveys_asked(session: Session) -> bool:
    """Some live link asks a survey."""
    asking = exists().where(Link.survey_kind.is_not(None), Link.archived.is_(False))
    return bool(session.scalar(select(asking)))


def feedback_panel(
    session: Session, query: ReportQuery, *, map_by: MapBy, jmap: JourneyMap
) -> dict[str, Any]:
    """The dashboard's feedback: each touchpoint with answers in the window, drawn, and the
    journey map by NPS when asked; `feedback` is None (the page says how to ask) when no link
    asks a survey and none was answered in the window."""
    report = feedback.feedback_report(session, query)
    asked = report.rows != () or surveys_asked(session)
    return {
        "feedback": report if asked else None,
        "feedback_rows": [(row, draw(row.figures)) for row in report.rows],
        "feedback_totals": draw(report.totals),
        "nps_map": nps_map(session, query, jmap) if map_by == "nps" and asked else None,
        "nps_level": charts.nps_level,
    }


def touchpoint_feedback(session: Session, query: ReportQuery, key: str) -> dict[str, Any] | None:
    """A touchpoint page's feedback: its figures, drawn, and its latest comments; None when no
    link of it asks a survey and it has no answer in the window."""
    touchpoint = get_touchpoint(session, key)
    own = replace(query, touchpoint_id=touchpoint.id)
    figures = feedback.feedback_report(session, own).totals
    asks = session.scalar(select(exists().where(
        Link.touchpoint_id == touchpoint.id, Link.survey_kind.is_not(None),
        Link.archived.is_(False),
    )))
    if not figures.answers and not asks:
        return None
    comments = feedback.latest_comments(session, query, touchpoint=key, limit=COMMENTS_SHOWN)
    return {"drawn": draw(figures), "comments": comments.rows}
