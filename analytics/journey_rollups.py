"""Journey rollups: each journey's summary (`analytics.journey_summary`) counted by the local days
of its first and last touch, so that the journey reports add up rows instead of walking millions
of touches.

They are kept in the ingest transaction: when a batch brings a journey new touches, its old
summary is taken away and the new one added, so a replayed batch (which brings none) changes
nothing. Each journey keeps its summary's progress (`Journey.progress`), so that touches coming
in time order, as they do, update it without reading the journey's touches again. Retention
takes a journey's summary away with it. They are cut in the workspace's time zone and on its
stages in order; when either changes (`workspace_state.journey_rollups` no longer matches),
reports walk the touches until the worker has rebuilt them from the touches.

A window holds the rows whose first and last days are both among its days; the journeys of those
days with touches outside the window, and those crossing into it from outside, are corrected
for by walking them (`analytics.reports.journey_counts`).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from itertools import groupby
from typing import Any

from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session

from analytics.journey_summary import Progress, Summary, Touch, summarize
from analytics.models import (
    JourneyFunnelDays,
    JourneyNextDays,
    JourneyPath,
    JourneyPathDays,
    JourneyStopDays,
    JourneyTouch,
    WorkspaceState,
)
from analytics.upserts import add_counts
from shortener.models import Stage

STATE = "journey_rollups"
CHUNK = 5_000  # journeys whose touches are read in one query
REBUILD_BATCH = 20_000  # journeys summarized between two writes of a rebuild
NO_NEXT = 0  # `next_touchpoint_id` of the journeys with no further touch


def stages_in_order(session: Session) -> list[Stage]:
    return list(session.scalars(select(Stage).order_by(Stage.position, Stage.id)))


def signature(zone: tzinfo, stages: Sequence[Stage]) -> str:
    """What the rollups were cut with: the zone, and the stages in order."""
    order = ",".join(str(stage.id) for stage in stages)
    return f"{_digest(order)} {getattr(zone, 'key', str(zone))}"


def current(session: Session, zone: tzinfo, stages: Sequence[Stage]) -> bool:
    found = session.get(WorkspaceState, STATE)
    return found is not None and found.value == signature(zone, stages)


def ensure(session: Session, zone: tzinfo) -> bool:
    """Rebuild the rollups if they were cut in another zone or on other stages; True if so."""
    stages = stages_in_order(session)
    if current(session, zone, stages):
        return False
    rebuild(session, zone, stages)
    return True


@dataclass(slots=True)
class Extension:
    """What a batch brings a journey: its new touches (click id, time, stage id, touchpoint id),
    its progress as stored, whether the batch starts it, and then (`fresh`) the progress of
    these touches, with which it was stored (none for a journey of one touch)."""

    touches: list[tuple[str, datetime, int, int]]
    progress: str | None
    new: bool
    fresh: Progress | None = None


def touches_added(
    session: Session, extended: dict[int, Extension], zone: tzinfo, stages: Sequence[Stage]
) -> tuple[dict[int, str | None], Change]:
    """Replace the summaries of the journeys that a batch `extended` (by id): their progress
    to store (none for a journey of one touch: its touch is read back if it goes on), and the
    change of rollup rows, which the caller applies last in its transaction (every batch
    shares those rows, and holds their locks from then to its commit). A
    journey whose new touches all come after its stored progress is updated from it; any other
    (touches arriving late, a journey of one touch going on, progress made on another stage
    order) is summarized again from all of its touches. `stages`: the stages in order."""
    order, place = stage_order(stages), {stage.id: i for i, stage in enumerate(stages)}
    if not current(session, zone, stages):
        rebuild(session, zone, stages)  # counts the new touches with the rest
        return {
            journey_id: Progress.of([touch for _, touch in stored], len(stages)).dumps(order)
            for journey_id, stored in touches_of(session, extended, stages)
        }, Change(zone)
    change, kept, walk = Change(zone), {}, set()
    for journey_id, extension in extended.items():
        if extension.new:  # stored with the progress of these touches, or none
            if extension.fresh is None:  # a journey of one touch
                _, at, stage, tp = extension.touches[0]
                change.add_lone(Touch(at, place[stage], tp))
            else:
                change.add(extension.fresh.summary(), 1)
            kept[journey_id] = extension.progress
            continue
        touches = [Touch(at, place[stage], tp) for _, at, stage, tp in sorted(
            extension.touches, key=lambda touch: (touch[1], touch[0])
        )]
        progress = Progress.loads(extension.progress, order)
        if progress is None or not progress.takes(touches):
            walk.add(journey_id)
            continue
        change.add(progress.summary(), -1)
        progress.extend(touches, len(stages))
        change.add(progress.summary(), 1)
        kept[journey_id] = progress.dumps(order)
    added = {click for journey_id in walk for click, *_ in extended[journey_id].touches}
    for journey_id, stored in touches_of(session, walk, stages):
        before = [touch for click_id, touch in stored if click_id not in added]
        if before:
            change.add(summarize(before, len(stages)), -1)
        progress = Progress.of([touch for _, touch in stored], len(stages))
        change.add(progress.summary(), 1)
        kept[journey_id] = progress.dumps(order)
    return kept, change


def journeys_leaving(session: Session, progress: dict[int, str | None], zone: tzinfo) -> None:
    """Take away the summaries of journeys about to be deleted (by id, with their progress)."""
    stages = stages_in_order(session)
    if not progress or not current(session, zone, stages):
        return
    order, change, walk = stage_order(stages), Change(zone), set()
    for journey_id, stored in progress.items():
        found = Progress.loads(stored, order)
        if found is None:
            walk.add(journey_id)
        else:
            change.add(found.summary(), -1)
    for _, stored_touches in touches_of(session, walk, stages):
        change.add(summarize([touch for _, touch in stored_touches], len(stages)), -1)
    change.apply(session)
    _drop_empty_rows(session)


def rebuild(session: Session, zone: tzinfo, stages: Sequence[Stage]) -> None:
    """Every rollup summed again from the touches, in `zone` and on `stages`."""
    for model in (JourneyFunnelDays, JourneyPathDays, JourneyStopDays, JourneyNextDays):
        session.execute(delete(model))
    session.execute(update(JourneyPath).values(journeys=0))
    change = Change(zone)
    for n, touches in enumerate(_all_touches(session, stages), start=1):
        change.add(summarize(touches, len(stages)), 1)
        if n % REBUILD_BATCH == 0:
            change.apply(session)
            change = Change(zone)
    change.apply(session)
    session.execute(delete(JourneyPath).where(JourneyPath.journeys == 0))
    session.merge(WorkspaceState(key=STATE, value=signature(zone, stages)))
    session.flush()


def touches_of(
    session: Session, journey_ids: Iterable[int], stages: Sequence[Stage]
) -> Iterator[tuple[int, list[tuple[str, Touch]]]]:
    """Each of `journey_ids` with its touches (and their click ids), in time order."""
    place = {stage.id: i for i, stage in enumerate(stages)}
    ids = sorted(journey_ids)
    for i in range(0, len(ids), CHUNK):
        rows = session.execute(
            select(
                JourneyTouch.journey_id, JourneyTouch.click_id, JourneyTouch.touched_at,
                JourneyTouch.stage_id, JourneyTouch.touchpoint_id,
            )
            .where(JourneyTouch.journey_id.in_(ids[i : i + CHUNK]))
            .order_by(JourneyTouch.journey_id, JourneyTouch.touched_at, JourneyTouch.click_id)
        )
        for journey_id, touches in groupby(rows, key=lambda row: row[0]):
            yield journey_id, [
                (click_id, Touch(at, place[stage], tp)) for _, click_id, at, stage, tp in touches
            ]


def _all_touches(session: Session, stages: Sequence[Stage]) -> Iterator[list[Touch]]:
    place = {stage.id: i for i, stage in enumerate(stages)}
    rows = session.execute(
        select(
            JourneyTouch.journey_id, JourneyTouch.touched_at, JourneyTouch.stage_id,
            JourneyTouch.touchpoint_id,
        )
        .order_by(JourneyTouch.journey_id, JourneyTouch.touched_at, JourneyTouch.click_id)
        .execution_options(yield_per=10_000)
    )
    for _, touches in groupby(rows, key=lambda row: row[0]):
        yield [Touch(at, place[stage], tp) for _, at, stage, tp in touches]


def stage_order(stages: Sequence[Stage]) -> str:
    """A short name of the stage order, kept with each journey's progress."""
    return _digest(",".join(str(stage.id) for stage in stages))[:12]


def path_key(path: Sequence[int]) -> tuple[str, str]:
    """A path's stored form (touchpoint ids, comma-separated) and the key it is found by."""
    text = ",".join(map(str, path))
    return text, _digest(text)


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=20).hexdigest()


def parse_path(text: str) -> tuple[int, ...]:
    return tuple(int(tp) for tp in text.split(",")) if text else ()


class Change:
    """Summaries added and taken away, as the changes of rollup rows they make."""

    def __init__(self, zone: tzinfo) -> None:
        self._zone = zone
        self.funnel: Counter[tuple[date, date, int, int, int]] = Counter()
        self.paths: Counter[tuple[tuple[int, ...], date, date]] = Counter()
        self.stops: Counter[tuple[date, date, int]] = Counter()
        self.moved: Counter[tuple[date, date, int]] = Counter()
        self.next: Counter[tuple[int, date, date, int]] = Counter()

    def add(self, summary: Summary, sign: int) -> None:
        first = summary.first.astimezone(self._zone).date()
        last = summary.last.astimezone(self._zone).date()
        self.funnel[(first, last, summary.depth, summary.reached, summary.continued)] += sign
        self.paths[(summary.path, first, last)] += sign
        for tp, after in summary.after.items():
            self.stops[(first, last, tp)] += sign
            if tp in summary.moved:
                self.moved[(first, last, tp)] += sign
            self.next[(tp, first, last, NO_NEXT if after is None else after)] += sign

    def add_lone(self, touch: Touch) -> None:
        """Add the summary of a journey of this one touch: `add(summarize([touch]), 1)`, with
        none of the work, for the many journeys that are seen once."""
        day = touch.at.astimezone(self._zone).date()
        self.funnel[(day, day, 1 if touch.stage == 0 else 0, 1 << touch.stage, 0)] += 1
        self.paths[((touch.touchpoint,), day, day)] += 1
        self.stops[(day, day, touch.touchpoint)] += 1
        self.next[(touch.touchpoint, day, day, NO_NEXT)] += 1

    def apply(self, session: Session) -> None:
        # Sorted, so that two workers changing the same rows lock them in one order.
        _add(session, JourneyFunnelDays, ("first_day", "last_day", "depth", "reached", "continued"),
             [(key, {"journeys": n}) for key, n in sorted(self.funnel.items()) if n])
        stops = sorted(set(self.stops) | set(self.moved))
        _add(session, JourneyStopDays, ("first_day", "last_day", "touchpoint_id"),
             [(key, {"journeys": self.stops[key], "moved_on": self.moved[key]}) for key in stops
              if self.stops[key] or self.moved[key]], counters=("journeys", "moved_on"))
        _add(session, JourneyNextDays,
             ("touchpoint_id", "first_day", "last_day", "next_touchpoint_id"),
             [(key, {"journeys": n}) for key, n in sorted(self.next.items()) if n])
        self._apply_paths(session)

    def _apply_paths(self, session: Session) -> None:
        totals: Counter[tuple[int, ...]] = Counter()
        for (path, _, _), n in self.paths.items():
            totals[path] += n
        changed = {path for (path, _, _), n in self.paths.items() if n}
        if not changed:
            return
        stored = {path: path_key(path) for path in changed}
        ids = dict(_add(session, JourneyPath, ("key",), sorted(
            ((key,), {"touchpoints": text, "journeys": totals[path]})
            for path, (text, key) in stored.items()
        ), returning=("key", "id")))
        _add(session, JourneyPathDays, ("path_id", "first_day", "last_day"), sorted(
            ((ids[stored[path][1]], first, last), {"journeys": n})
            for (path, first, last), n in self.paths.items() if n
        ))


def _add(
    session: Session, model: Any, keys: tuple[str, ...],
    rows: list[tuple[tuple[Any, ...], dict[str, Any]]], *, counters: Sequence[str] = ("journeys",),
    returning: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """Add the counts of `rows` (key values, then columns) to the stored rows of those keys;
    the `returning` columns of each."""
    if not rows:
        return []
    table: Table = model.__table__
    return add_counts(
        session, table,
        [{**dict(zip(keys, key, strict=True)), **counts} for key, counts in rows],
        keys=keys, counters=counters, returning=returning,
    )


def _drop_empty_rows(session: Session) -> None:
    """Rows whose journeys have all gone (or moved to other days) add nothing."""
    session.execute(delete(JourneyFunnelDays).where(JourneyFunnelDays.journeys == 0))
    session.execute(delete(JourneyPathDays).where(JourneyPathDays.journeys == 0))
    session.execute(
        delete(JourneyStopDays).where(JourneyStopDays.journeys == 0, JourneyStopDays.moved_on == 0)
    )
    session.execute(delete(JourneyNextDays).where(JourneyNextDays.journeys == 0))
    session.execute(delete(JourneyPath).where(JourneyPath.journeys == 0))
