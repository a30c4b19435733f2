"""The journey map: engagement of each touchpoint at each stage, read from the rollups as the
touchpoint report reads them; a stage that no touchpoint serves shows as a gap. The same map
coloured by feedback gives each cell the NPS of the answers given there (`nps_map`)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, ClassVar

from sqlalchemy import func, select, union_all
from sqlalchemy.orm import Session

from analytics.models import FeedbackAnswer
from analytics.reports import feedback
from analytics.reports.query import ReportQuery
from analytics.reports.refs import StageRef, TouchpointRef
from analytics.reports.render import as_json, head
from analytics.reports.sql import (
    AnySelect,
    link_live_in,
    piece_rows,
    plan,
    run_report,
    stage_id,
    touchpoint_existed_in,
)
from shortener.models import Link, Stage, Touchpoint

MAP_FIGURES = ("stage_id", "human", "bots", "visitors")


@dataclass(frozen=True, slots=True)
class MapCell:
    clicks: int
    visitors: int
    links: int  # links of the touchpoint at the stage live in the window


@dataclass(frozen=True, slots=True)
class MapRow:
    touchpoint: TouchpointRef
    archived: bool
    cells: tuple[MapCell, ...]  # one per stage, in journey order

    @property
    def clicks(self) -> int:
        return sum(cell.clicks for cell in self.cells)


@dataclass(frozen=True, slots=True)
class JourneyMap:
    kind: ClassVar[str] = "journey-map"
    csv_header: ClassVar[tuple[str, ...]] = (
        "touchpoint_key", "touchpoint_name", "channel", "stage_key", "stage_name", "clicks",
        "visitors", "links",
    )

    query: ReportQuery
    stages: tuple[StageRef, ...]
    rows: tuple[MapRow, ...]  # most clicks first (the first `limit` when asked)
    # Keys of the stages no touchpoint serves: no live link there, and no click.
    gaps: frozenset[str] = frozenset()
    listed: int = 0  # the touchpoints of the map, those past the limit included


    @property
    def busiest(self) -> int:
        return max((cell.clicks for row in self.rows for cell in row.cells), default=0)

    def to_json(self) -> dict[str, Any]:
        return {
            **head(self.query),
            "stages": as_json(self.stages),
            "gaps": sorted(self.gaps),
            "rows": as_json(self.rows),
        }

    def csv_rows(self) -> Iterable[Sequence[Any]]:
        for row in self.rows:
            tp = row.touchpoint
            for stage, cell in zip(self.stages, row.cells, strict=True):
                yield (
                    tp.key, tp.name, tp.channel, stage.key, stage.name, cell.clicks,
                    cell.visitors, cell.links,
                )


@lru_cache(maxsize=128)
def _map_statement(query: ReportQuery, stage: int | None, open_end: bool) -> AnySelect:
    """Clicks (as counted) and visitors per touchpoint and stage, from the runs of rollup rows
    that make up the window (days, weeks and months where they can)."""
    pieces = plan(query, with_previous=False, open_end=open_end)
    rows = union_all(*(piece_rows(p, query, stage, MAP_FIGURES) for p in pieces)).subquery()
    counted = rows.c.human + rows.c.bots if query.bots else rows.c.human
    return select(
        rows.c.touchpoint_id, rows.c.stage_id, func.sum(counted), func.sum(rows.c.visitors)
    ).group_by(rows.c.touchpoint_id, rows.c.stage_id)


def journey_map(
    session: Session, query: ReportQuery, *, limit: int | None = None
) -> JourneyMap:
    """Clicks and visitors of every touchpoint of the window at every stage (of the `limit`
    touchpoints with most clicks, when given), with its links there live in the window.

    The stage filter keeps that stage's column; the channel and campaign filters choose the
    touchpoints (with a campaign: those with a link in it live in the window, or clicks through
    one). A touchpoint is a row when it existed in the window or had clicks in it, archived or not.
    """
    stage_rows = _stages(session, query)
    stages = tuple(StageRef(s.key, s.name, s.position) for s in stage_rows)
    if query.empty:
        return JourneyMap(query=query, stages=stages, rows=())
    only = stage_id(session, query.stage) if query.stage is not None else None
    figures: dict[tuple[int, int], tuple[int, int]] = {
        (tp, st): (int(c or 0), int(v or 0))
        for tp, st, c, v in run_report(session, query, partial(_map_statement, query, only))
    }
    live = select(Link.touchpoint_id, Link.stage_id, func.count()).where(link_live_in(query))
    if query.campaign is not None:
        live = live.where(Link.campaign == query.campaign)
    link_counts: dict[tuple[int, int], int] = {
        (tp, st): int(n)
        for tp, st, n in session.execute(live.group_by(Link.touchpoint_id, Link.stage_id))
    }
    ids = [stage.id for stage in stage_rows]
    totals: dict[int, int] = defaultdict(int)
    for (tp, st), (c, _) in figures.items():
        if st in ids:
            totals[tp] += c
    involved = {tp for tp, _ in figures} | {tp for tp, _ in link_counts}
    wanted = select(
        Touchpoint.id, Touchpoint.key, Touchpoint.name, Touchpoint.channel, Touchpoint.archived,
        touchpoint_existed_in(query),
    )
    if query.channel is not None:
        wanted = wanted.where(Touchpoint.channel == query.channel)
    touchpoints = [
        tp for tp in session.execute(wanted)
        # Those that existed in the window, or had clicks in it anyway; with a campaign, of
        # those it involves.
        if (tp[-1] or totals.get(tp.id)) and (query.campaign is None or tp.id in involved)
    ]
    listed = {tp.id for tp in touchpoints}
    served = {
        st for (tp, st) in (figures.keys() | link_counts.keys())
        if tp in listed and (figures.get((tp, st), (0, 0))[0] or link_counts.get((tp, st)))
    }
    touchpoints.sort(key=lambda tp: (-totals.get(tp.id, 0), tp.key))
    rows = tuple(
        MapRow(
            TouchpointRef(tp.key, tp.name, tp.channel),
            tp.archived,
            tuple(
                MapCell(*figures.get((tp.id, st), (0, 0)), link_counts.get((tp.id, st), 0))
                for st in ids
            ),
        )
        for tp in touchpoints[:limit]
    )
    gaps = frozenset(stage.key for stage in stage_rows if stage.id not in served)
    return JourneyMap(query, stages, rows, gaps, len(touchpoints))


def _stages(session: Session, query: ReportQuery) -> Sequence[Stage]:
    wanted = select(Stage).order_by(Stage.position, Stage.id)
    if query.stage is not None:
        wanted = wanted.where(Stage.key == query.stage)
    return session.scalars(wanted).all()


# --- coloured by NPS -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NpsCell:
    answers: int  # NPS answers given at the touchpoint and stage in the window
    nps: float | None
    nps_low: float | None
    nps_high: float | None


@dataclass(frozen=True, slots=True)
class NpsMap:
    """The journey map's touchpoints and stages, each cell the NPS of its answers."""

    kind: ClassVar[str] = "journey-map-nps"
    csv_header: ClassVar[tuple[str, ...]] = (
        "touchpoint_key", "touchpoint_name", "channel", "stage_key", "stage_name", "answers",
        "nps", "nps_low", "nps_high",
    )

    query: ReportQuery
    base: JourneyMap
    cells: Mapping[tuple[str, str], NpsCell]  # by touchpoint key and stage key

    def cell(self, touchpoint: str, stage: str) -> NpsCell | None:
        return self.cells.get((touchpoint, stage))

    def to_json(self) -> dict[str, Any]:
        return {
            **head(self.query),
            "stages": as_json(self.base.stages),
            "rows": [
                {"touchpoint": as_json(row.touchpoint),
                 "cells": [as_json(self.cell(row.touchpoint.key, stage.key))
                           for stage in self.base.stages]}
                for row in self.base.rows
            ],
        }

    def csv_rows(self) -> Iterable[Sequence[Any]]:
        for row in self.base.rows:
            tp = row.touchpoint
            for stage in self.base.stages:
                cell = self.cell(tp.key, stage.key) or NpsCell(0, None, None, None)
                yield (tp.key, tp.name, tp.channel, stage.key, stage.name, cell.answers,
                       cell.nps, cell.nps_low, cell.nps_high)


def nps_map(session: Session, query: ReportQuery, base: JourneyMap | None = None) -> NpsMap:
    """The NPS of each touchpoint at each stage over the window (the feedback report's figure
    and interval, `analytics.reports.feedback.nps`), on the journey map's rows (`base`, or the
    window's)."""
    base = base or journey_map(session, query)
    cells: dict[tuple[str, str], NpsCell] = {}
    if not query.empty:
        stmt = (
            select(Touchpoint.key, Stage.key, FeedbackAnswer.score, func.count())
            .join(Touchpoint, Touchpoint.id == FeedbackAnswer.touchpoint_id)
            .join(Stage, Stage.id == FeedbackAnswer.stage_id)
            .where(FeedbackAnswer.kind == "nps")
            .group_by(Touchpoint.key, Stage.key, FeedbackAnswer.score)
        )
        scores: dict[tuple[str, str], Counter[int]] = defaultdict(Counter)
        for tp, st, score, n in session.execute(feedback.filtered(session, stmt, query)):
            scores[(tp, st)][int(score)] += int(n)
        for place, counted in scores.items():
            cells[place] = NpsCell(sum(counted.values()), *feedback.nps(counted))
    return NpsMap(query=query, base=base, cells=cells)
