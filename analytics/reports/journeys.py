"""Journeys: a funnel of people, the paths they take, where they go next, and which touchpoints
move them on. Only the touches inside the window count; what each journey says is defined once,
in `analytics.journey_summary`, and counted in `analytics.reports.journey_counts` (from the
journey rollups, or by walking the touches).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from sqlalchemy import exists, select
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from analytics.journey_rollups import stages_in_order
from analytics.journey_summary import stages_of
from analytics.models import JourneyTouch
from analytics.reports import journey_counts
from analytics.reports.query import ReportQuery
from analytics.reports.rates import rate
from analytics.reports.refs import StageRef, TouchpointRef, touchpoint_refs
from analytics.reports.render import ReportHead, StageRefOut, TouchpointRefOut, as_json, head
from analytics.reports.sql import stage_id as find_stage_id
from shortener.errors import InvalidParameterError, NotFoundError
from shortener.models import Touchpoint

Mode = Literal["closed", "open"]
MODES: tuple[Mode, ...] = ("closed", "open")
DEFAULT_PATHS = 20
MAX_PATHS = 1000


def journeys_touched(session: Session, query: ReportQuery) -> bool:
    """Whether any journey touched anything in the window (journeys on, or demo journeys)."""
    if query.empty:
        return False
    window = (JourneyTouch.touched_at >= query.start, JourneyTouch.touched_at < query.end)
    return bool(session.scalar(select(exists().where(*window))))


# --- the funnel ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FunnelRow:
    stage: StageRef
    journeys: int
    continued: int | None  # None on the last stage
    drop_to_next: float | None  # 1 - continued / journeys; None without journeys, and last


class FunnelRowOut(TypedDict):
    stage: StageRefOut
    journeys: int
    continued: int | None
    drop_to_next: float | None


class FunnelReportOut(ReportHead):
    mode: Mode
    journeys: int
    rows: list[FunnelRowOut]


@dataclass(frozen=True, slots=True)
class FunnelReport:
    kind: ClassVar[str] = "funnel"
    csv_header: ClassVar[tuple[str, ...]] = (
        "stage_key", "stage_name", "position", "journeys", "continued", "drop_to_next",
    )

    query: ReportQuery
    mode: Mode
    journeys: int  # journeys with a touch in the window
    rows: tuple[FunnelRow, ...]

    def to_json(self) -> FunnelReportOut:
        return {
            **head(self.query), "mode": self.mode, "journeys": self.journeys,
            "rows": as_json(self.rows),
        }

    def csv_rows(self) -> Iterable[Sequence[Any]]:
        for row in self.rows:
            stage = row.stage
            yield (stage.key, stage.name, stage.position, row.journeys, row.continued,
                   row.drop_to_next)


def funnel(session: Session, query: ReportQuery, *, mode: Mode = "closed") -> FunnelReport:
    """The journeys at each stage, in journey order, and those that went on to the next."""
    stages = stages_in_order(session)
    count = len(stages)
    reached = [0] * count  # journeys counted at each stage
    continued = [0] * count
    counts = journey_counts.funnel_counts(session, query, stages)
    for (depth, at, went), n in counts.items():
        if mode == "closed":
            for k in range(depth):
                reached[k] += n
        else:
            for k in stages_of(at):
                reached[k] += n
            for k in stages_of(went):
                continued[k] += n
    if mode == "closed":
        continued = [*reached[1:], 0]
    journeys = sum(counts.values())
    # With a stage filter, that stage's row alone, counted over every stage.
    wanted = find_stage_id(session, query.stage) if query.stage is not None else None
    rows = []
    for k, stage in enumerate(stages):
        if wanted is not None and stage.id != wanted:
            continue
        final = k == count - 1
        went_on = None if final else continued[k]
        rows.append(
            FunnelRow(
                stage=StageRef(stage.key, stage.name, stage.position),
                journeys=reached[k],
                continued=went_on,
                drop_to_next=None
                if final or not reached[k]
                else round(1 - continued[k] / reached[k], 4),
            )
        )
    return FunnelReport(query=query, mode=mode, journeys=journeys, rows=tuple(rows))


# --- paths ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PathRow:
    path: tuple[str, ...]  # touchpoint keys, in time order
    journeys: int


class PathRowOut(TypedDict):
    path: list[str]
    journeys: int


class PathReportOut(ReportHead):
    journeys: int
    rows: list[PathRowOut]
    touchpoints: dict[str, TouchpointRefOut]


@dataclass(frozen=True, slots=True)
class PathReport:
    kind: ClassVar[str] = "paths"
    csv_header: ClassVar[tuple[str, ...]] = ("path", "journeys")

    query: ReportQuery
    journeys: int
    rows: tuple[PathRow, ...]  # most common first
    touchpoints: dict[str, TouchpointRef]  # the touchpoints the rows name

    def to_json(self) -> PathReportOut:
        return {
            **head(self.query),
            "journeys": self.journeys,
            "rows": [{"path": list(row.path), "journeys": row.journeys} for row in self.rows],
            "touchpoints": {key: as_json(ref) for key, ref in self.touchpoints.items()},
        }

    def csv_rows(self) -> Iterable[Sequence[Any]]:
        return ((" > ".join(row.path), row.journeys) for row in self.rows)


def paths(session: Session, query: ReportQuery, *, limit: int = DEFAULT_PATHS) -> PathReport:
    """The most common sequences of touchpoints, each with the journeys that follow it exactly."""
    if not 1 <= limit <= MAX_PATHS:
        raise InvalidParameterError("limit", f"must be a whole number from 1 to {MAX_PATHS}")
    journeys, counted = journey_counts.path_counts(
        session, query, stages_in_order(session), limit=limit
    )
    refs = touchpoint_refs(session, {tp for path in counted for tp in path})
    ranked = heapq.nsmallest(
        limit, counted.items(), key=lambda item: (-item[1], [refs[tp].key for tp in item[0]])
    )
    rows = tuple(PathRow(tuple(refs[tp].key for tp in path), n) for path, n in ranked)
    named = {refs[tp].key: refs[tp] for path, _ in ranked for tp in path}
    return PathReport(query=query, journeys=journeys, rows=rows, touchpoints=named)


# --- next ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NextRow:
    touchpoint: TouchpointRef | None  # None: no further touch in the window
    journeys: int


class NextRowOut(TypedDict):
    touchpoint: TouchpointRefOut | None  # None: no further touch in the window
    journeys: int


class NextReportOut(ReportHead):
    touchpoint: TouchpointRefOut
    journeys: int
    rows: list[NextRowOut]


@dataclass(frozen=True, slots=True)
class NextReport:
    kind: ClassVar[str] = "next"
    csv_header: ClassVar[tuple[str, ...]] = (
        "touchpoint_key", "touchpoint_name", "channel", "journeys",
    )

    query: ReportQuery
    after: TouchpointRef
    journeys: int  # journeys that touched `after` in the window
    rows: tuple[NextRow, ...]  # most journeys first

    def to_json(self) -> NextReportOut:
        return {
            **head(self.query),
            "touchpoint": as_json(self.after),
            "journeys": self.journeys,
            "rows": as_json(self.rows),
        }

    def csv_rows(self) -> Iterable[Sequence[Any]]:
        for row in self.rows:
            ref = row.touchpoint
            yield (ref.key if ref else "", ref.name if ref else "(no further touch)",
                   ref.channel if ref else "", row.journeys)


def next_touchpoints(session: Session, query: ReportQuery, key: str) -> NextReport:
    """For the journeys that touched `key`: where their next touch at another touchpoint was."""
    after = session.scalars(select(Touchpoint).where(Touchpoint.key == key[:64])).one_or_none()
    if after is None:
        raise NotFoundError(f"No touchpoint with key '{key}'.")
    counted = journey_counts.next_counts(session, query, stages_in_order(session), after.id)
    refs = touchpoint_refs(session, {tp for tp in counted if tp is not None})
    rows = sorted(
        (NextRow(refs[tp] if tp is not None else None, n) for tp, n in counted.items()),
        key=lambda row: (-row.journeys, row.touchpoint is None,
                         row.touchpoint.key if row.touchpoint else ""),
    )
    return NextReport(
        query=query,
        after=TouchpointRef(after.key, after.name, after.channel),
        journeys=sum(counted.values()),
        rows=tuple(rows),
    )


# --- which touchpoints move people on ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MovedOn:
    journeys: int  # journeys with a touch at the touchpoint
    moved_on: int  # of those, with a later touch at a later stage
    rate: float | None
    low: float | None
    high: float | None


def moved_on(session: Session, query: ReportQuery) -> dict[int, MovedOn]:
    """Per touchpoint id: its journeys in the window and those that moved on from it (every
    stage's touches count: moving on is going to a later one)."""
    touched, went_on = journey_counts.stop_counts(session, query, stages_in_order(session))
    return {
        tp: MovedOn(n, went_on[tp], *rate(went_on[tp], n))
        for tp, n in touched.items()
    }
