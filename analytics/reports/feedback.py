"""Feedback: the answers to the links' one-question surveys over a window, per touchpoint or per
stage (`by`), and the latest comments.

An answer counts in the window it was given in, at the touchpoint and stage of its link then.
Each kind is figured on its own answers, with a 95 % interval (z = 1.959964):
- NPS (0-10): the % of promoters (9-10) less the % of detractors (0-6), from -100 to 100; the
  interval is 100·(p - d) ± z·100·√((p + d - (p - d)²) / n), the variance of a difference of
  two proportions of one sample, clipped to [-100, 100];
- CSAT (1-5): the % of answers 4 or 5, with its Wilson interval (`rates.rate`);
- CES (1-7): the mean score, with mean ± z·s/√n (s the sample standard deviation), clipped to
  the scale; no interval below two answers.
The filters are the other reports': the stage of the answer, its touchpoint's channel, its
link's (current) campaign. Bots never answer (the survey refuses them), so `bots` changes
nothing.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any, ClassVar, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from analytics.models import FeedbackAnswer as Answer
from analytics.reports.query import ReportQuery
from analytics.reports.rates import Z95, rate
from analytics.reports.refs import StageRef, TouchpointRef, touchpoint_refs
from analytics.reports.render import (
    ReportHead,
    StageRefOut,
    TouchpointRefOut,
    as_json,
    flat_row,
    head,
)
from analytics.reports.sql import AnySelect, stage_id
from shortener.models import SURVEY_SCALES, Link, Stage, Touchpoint
from shortener.schemas import TimeText
from shortener.touchpoints import get_touchpoint

By = Literal["touchpoint", "stage"]
DEFAULT_COMMENTS = 50
MAX_COMMENTS = 200
PROMOTER, DETRACTOR = 9, 6  # NPS: 9 and 10 promote, 0 to 6 detract
SATISFIED = 4  # CSAT: 4 and 5 are satisfied
PLACES = 2

# Scores counted per kind: {kind: {score: answers}}.
Tally = Mapping[str, Mapping[int, int]]


@dataclass(frozen=True, slots=True)
class FeedbackFigures:
    """The answers of a touchpoint, a stage or a whole window. Field order is the order of the
    JSON fields and of the CSV columns."""

    answers: int = 0
    comments: int = 0  # answers with a comment
    nps_answers: int = 0
    promoters: int = 0
    passives: int = 0
    detractors: int = 0
    nps: float | None = None  # -100 to 100, with its 95 % interval
    nps_low: float | None = None
    nps_high: float | None = None
    csat_answers: int = 0
    satisfied: int = 0
    csat: float | None = None  # % of answers 4 or 5, with its 95 % interval
    csat_low: float | None = None
    csat_high: float | None = None
    ces_answers: int = 0
    ces: float | None = None  # the mean score, with its 95 % interval (none below 2 answers)
    ces_low: float | None = None
    ces_high: float | None = None
    last_answer_at: datetime | None = None


FIGURE_COLUMNS = tuple(f.name for f in fields(FeedbackFigures))


class FeedbackFiguresOut(TypedDict):
    """`FeedbackFigures` as JSON."""

    answers: int
    comments: int
    nps_answers: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None
    nps_low: float | None
    nps_high: float | None
    csat_answers: int
    satisfied: int
    csat: float | None
    csat_low: float | None
    csat_high: float | None
    ces_answers: int
    ces: float | None
    ces_low: float | None
    ces_high: float | None
    last_answer_at: TimeText | None


def figures_json(figures: FeedbackFigures) -> FeedbackFiguresOut:
    found: FeedbackFiguresOut = as_json(figures)
    return found


def nps(scores: Mapping[int, int]) -> tuple[float | None, float | None, float | None]:
    """(NPS, low, high) of NPS answers counted by score; all None without answers."""
    n = sum(scores.values())
    if not n:
        return None, None, None
    p = sum(c for s, c in scores.items() if s >= PROMOTER) / n
    d = sum(c for s, c in scores.items() if s <= DETRACTOR) / n
    value = 100 * (p - d)
    spread = Z95 * 100 * math.sqrt(max(p + d - (p - d) ** 2, 0.0) / n)
    return (
        round(value, PLACES),
        round(max(-100.0, value - spread), PLACES),
        round(min(100.0, value + spread), PLACES),
    )


def ces(scores: Mapping[int, int]) -> tuple[float | None, float | None, float | None]:
    """(mean, low, high) of CES answers counted by score; no interval below two answers."""
    n = sum(scores.values())
    if not n:
        return None, None, None
    mean = sum(s * c for s, c in scores.items()) / n
    if n < 2:
        return round(mean, PLACES), None, None
    variance = sum(c * (s - mean) ** 2 for s, c in scores.items()) / (n - 1)
    spread = Z95 * math.sqrt(variance / n)
    low, high = SURVEY_SCALES["ces"]
    return (
        round(mean, PLACES),
        round(max(float(low), mean - spread), PLACES),
        round(min(float(high), mean + spread), PLACES),
    )


def figures_of(
    tally: Tally, *, comments: int = 0, last_answer_at: datetime | None = None
) -> FeedbackFigures:
    """The figures of answers counted by kind and score."""
    recommend = tally.get("nps", {})
    satisfaction = tally.get("csat", {})
    effort = tally.get("ces", {})
    nps_answers = sum(recommend.values())
    promoters = sum(c for s, c in recommend.items() if s >= PROMOTER)
    detractors = sum(c for s, c in recommend.items() if s <= DETRACTOR)
    csat_answers = sum(satisfaction.values())
    satisfied = sum(c for s, c in satisfaction.items() if s >= SATISFIED)
    csat, csat_low, csat_high = rate(satisfied, csat_answers, scale=100, places=PLACES)
    nps_value, nps_low, nps_high = nps(recommend)
    ces_value, ces_low, ces_high = ces(effort)
    return FeedbackFigures(
        answers=sum(sum(scores.values()) for scores in tally.values()),
        comments=comments,
        nps_answers=nps_answers,
        promoters=promoters,
        passives=nps_answers - promoters - detractors,
        detractors=detractors,
        nps=nps_value,
        nps_low=nps_low,
        nps_high=nps_high,
        csat_answers=csat_answers,
        satisfied=satisfied,
        csat=csat,
        csat_low=csat_low,
        csat_high=csat_high,
        ces_answers=sum(effort.values()),
        ces=ces_value,
        ces_low=ces_low,
        ces_high=ces_high,
        last_answer_at=last_answer_at,
    )


# --- the report ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TouchpointFeedback:
    touchpoint: TouchpointRef
    figures: FeedbackFigures


@dataclass(frozen=True, slots=True)
class StageFeedback:
    stage: StageRef
    figures: FeedbackFigures


class TouchpointFeedbackOut(FeedbackFiguresOut):
    touchpoint: TouchpointRefOut


class StageFeedbackOut(FeedbackFiguresOut):
    stage: StageRefOut


class FeedbackReportOut(ReportHead):
    by: Literal["touchpoint"]
    totals: FeedbackFiguresOut
    rows: list[TouchpointFeedbackOut]


class StageFeedbackReportOut(ReportHead):
    by: Literal["stage"]
    totals: FeedbackFiguresOut
    rows: list[StageFeedbackOut]


@dataclass(frozen=True, slots=True)
class FeedbackReport:
    """Per touchpoint (most answers first) with answers in the window."""

    kind: ClassVar[str] = "feedback"
    csv_header: ClassVar[tuple[str, ...]] = (
        "touchpoint_key", "touchpoint_name", "channel", *FIGURE_COLUMNS,
    )

    query: ReportQuery
    totals: FeedbackFigures
    rows: tuple[TouchpointFeedback, ...]

    def to_json(self) -> FeedbackReportOut:
        return {
            **head(self.query),
            "by": "touchpoint",
            "totals": figures_json(self.totals),
            "rows": [
                {"touchpoint": as_json(row.touchpoint), **figures_json(row.figures)}
                for row in self.rows
            ],
        }

    def csv_rows(self) -> Iterable[Sequence[Any]]:
        return (flat_row(row) for row in self.rows)


@dataclass(frozen=True, slots=True)
class StageFeedbackReport:
    """Per stage with answers in the window, in journey order."""

    kind: ClassVar[str] = "feedback-stages"
    csv_header: ClassVar[tuple[str, ...]] = (
        "stage_key", "stage_name", "position", *FIGURE_COLUMNS,
    )

    query: ReportQuery
    totals: FeedbackFigures
    rows: tuple[StageFeedback, ...]

    def to_json(self) -> StageFeedbackReportOut:
        return {
            **head(self.query),
            "by": "stage",
            "totals": figures_json(self.totals),
            "rows": [
                {"stage": as_json(row.stage), **figures_json(row.figures)} for row in self.rows
            ],
        }

    def csv_rows(self) -> Iterable[Sequence[Any]]:
        return (flat_row(row) for row in self.rows)


@dataclass(slots=True)
class AnswerGroup:
    """A group's answers counted by kind and score, as they are read."""

    tally: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    comments: int = 0
    last: datetime | None = None

    def figures(self) -> FeedbackFigures:
        return figures_of(self.tally, comments=self.comments, last_answer_at=self.last)


def tally_answers(session: Session, query: ReportQuery, by: By) -> dict[int, AnswerGroup]:
    """The window's answers counted per touchpoint id or stage id, kind and score."""
    if query.empty:
        return {}
    column = Answer.touchpoint_id if by == "touchpoint" else Answer.stage_id
    stmt = select(
        column, Answer.kind, Answer.score, func.count(), func.count(Answer.comment),
        func.max(Answer.answered_at),
    ).group_by(column, Answer.kind, Answer.score)
    groups: dict[int, AnswerGroup] = defaultdict(AnswerGroup)
    for key, kind, score, answers, comments, last in session.execute(
        filtered(session, stmt, query)
    ):
        group = groups[key]
        group.tally[kind][int(score)] += int(answers)
        group.comments += int(comments)
        group.last = last if group.last is None or last > group.last else group.last
    return groups


def feedback_report(
    session: Session, query: ReportQuery, *, by: By = "touchpoint"
) -> FeedbackReport | StageFeedbackReport:
    """The figures of the window's answers per touchpoint (most answers first) or per stage
    (journey order), groups without answers left out; `totals` over all of them."""
    groups = tally_answers(session, query, by)
    total = AnswerGroup()
    for group in groups.values():
        for kind, scores in group.tally.items():
            total.tally[kind].update(scores)
        total.comments += group.comments
        if group.last is not None and (total.last is None or group.last > total.last):
            total.last = group.last
    if by == "stage":
        stages = session.scalars(
            select(Stage).where(Stage.id.in_(groups)).order_by(Stage.position, Stage.id)
        )
        return StageFeedbackReport(
            query=query, totals=total.figures(),
            rows=tuple(
                StageFeedback(StageRef(s.key, s.name, s.position), groups[s.id].figures())
                for s in stages
            ),
        )
    refs = touchpoint_refs(session, set(groups))
    rows = [TouchpointFeedback(refs[tp], group.figures()) for tp, group in groups.items()]
    rows.sort(key=lambda row: (-row.figures.answers, row.touchpoint.key))
    return FeedbackReport(query=query, totals=total.figures(), rows=tuple(rows))


def filtered(session: Session, stmt: AnySelect, query: ReportQuery) -> AnySelect:
    """Narrowed to the window and the filters (and to a page's touchpoint or link)."""
    stmt = stmt.where(Answer.answered_at >= query.start, Answer.answered_at < query.end)
    if query.touchpoint_id is not None:
        stmt = stmt.where(Answer.touchpoint_id == query.touchpoint_id)
    if query.link_id is not None:
        stmt = stmt.where(Answer.link_id == query.link_id)
    if query.stage is not None:
        stmt = stmt.where(Answer.stage_id == stage_id(session, query.stage))
    if query.channel is not None:
        channel = select(Touchpoint.id).where(Touchpoint.channel == query.channel)
        stmt = stmt.where(Answer.touchpoint_id.in_(channel))
    if query.campaign is not None:
        campaign = select(Link.id).where(Link.campaign == query.campaign)
        stmt = stmt.where(Answer.link_id.in_(campaign))
    return stmt


# --- comments ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Comment:
    answered_at: datetime
    touchpoint: str  # its key
    link: str  # its slug
    kind: str
    score: int
    comment: str


class CommentOut(TypedDict):
    answered_at: TimeText
    touchpoint: str
    link: str
    kind: str
    score: int
    comment: str


class CommentListOut(ReportHead):
    touchpoint: TouchpointRefOut | None
    rows: list[CommentOut]


@dataclass(frozen=True, slots=True)
class CommentList:
    """The window's latest comments, newest first."""

    kind: ClassVar[str] = "feedback-comments"
    csv_header: ClassVar[tuple[str, ...]] = (
        "answered_at", "touchpoint_key", "link_slug", "kind", "score", "comment",
    )

    query: ReportQuery
    touchpoint: TouchpointRef | None  # the one asked for, if any
    rows: tuple[Comment, ...]

    def to_json(self) -> CommentListOut:
        return {
            **head(self.query),
            "touchpoint": as_json(self.touchpoint),
            "rows": as_json(self.rows),
        }

    def csv_rows(self) -> Iterable[Sequence[Any]]:
        return (flat_row(row) for row in self.rows)


def latest_comments(
    session: Session, query: ReportQuery, *, touchpoint: str | None = None,
    limit: int = DEFAULT_COMMENTS,
) -> CommentList:
    """The `limit` newest answers with a comment in the window, of one touchpoint (its key; an
    unknown one is a 404) or of all."""
    ref = None
    if touchpoint is not None:
        tp = get_touchpoint(session, touchpoint)
        ref = TouchpointRef(tp.key, tp.name, tp.channel)
        query = replace(query, touchpoint_id=tp.id)
    rows: list[Comment] = []
    if not query.empty:
        stmt = (
            select(Answer.answered_at, Touchpoint.key, Link.slug, Answer.kind, Answer.score,
                   Answer.comment)
            .join(Touchpoint, Touchpoint.id == Answer.touchpoint_id)
            .join(Link, Link.id == Answer.link_id)
            .where(Answer.comment.is_not(None))
            .order_by(Answer.answered_at.desc(), Answer.id.desc())
            .limit(limit)
        )
        rows = [
            Comment(at, key, slug, kind, int(score), text)
            for at, key, slug, kind, score, text in session.execute(filtered(session, stmt, query))
        ]
    return CommentList(query=query, touchpoint=ref, rows=tuple(rows))
