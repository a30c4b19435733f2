"""What one journey's touches say, the one definition that the journey reports and their rollups
share: a report walking the window's touches and the rollups kept at ingest count the same
journeys because both summarize them here.

- closed funnel: a journey reaches stage k when it has touches at stages 1, 2, …, k at strictly
  increasing times (the earliest touch at each stage after the one before: taking the earliest
  can only leave more room for the next);
- open funnel: a journey is at stage k with any touch there, and continued when it has a touch at
  stage k + 1 later than its first touch at stage k;
- path: the touchpoints in time order, consecutive touches of one touchpoint as one;
- next: after a journey's first touch at a touchpoint, its next touch at another one;
- moved on: a journey with a touch at a touchpoint and a later touch at a later stage.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import groupby

import orjson


@dataclass(frozen=True, slots=True)
class Touch:
    at: datetime
    stage: int  # the stage's place in the journey, 0 for the first
    touchpoint: int  # its id


@dataclass(frozen=True, slots=True)
class Summary:
    first: datetime
    last: datetime
    depth: int  # closed funnel: the stages reached in order
    reached: int  # open funnel: bit k set with a touch at stage k
    continued: int  # open funnel: bit k set when it went on from stage k to k + 1
    path: tuple[int, ...]
    after: dict[int, int | None]  # each touchpoint touched → the next other one (None: none)
    moved: frozenset[int]  # the touchpoints it moved on from


def summarize(touches: Sequence[Touch], stages: int) -> Summary:
    """The summary of a journey's touches, in time order (ties in a fixed order), on `stages`
    stages. A report needing one part of it asks the function of that part, below."""
    depth, reached, continued = funnel_of(touches, stages)
    return Summary(
        first=touches[0].at,
        last=touches[-1].at,
        depth=depth,
        reached=reached,
        continued=continued,
        path=path_of(touches),
        after=after_of(touches),
        moved=moved_of(touches),
    )


def funnel_of(touches: Sequence[Touch], stages: int) -> tuple[int, int, int]:
    """(closed depth, open stages reached, open stages continued from)."""
    return (
        _depth(touches, stages),
        _bits(touch.stage for touch in touches),
        _continued(touches, stages),
    )


def stages_of(bits: int) -> list[int]:
    """The stage places whose bits are set."""
    return [k for k in range(bits.bit_length()) if bits >> k & 1]


def _depth(touches: Sequence[Touch], stages: int) -> int:
    depth, last = 0, None
    for touch in touches:
        if touch.stage == depth and (last is None or touch.at > last):
            depth, last = depth + 1, touch.at
            if depth == stages:
                break
    return depth


def _bits(places: Iterable[int]) -> int:
    bits = 0
    for place in places:
        bits |= 1 << place
    return bits


def _continued(touches: Sequence[Touch], stages: int) -> int:
    first: dict[int, datetime] = {}
    latest: dict[int, datetime] = {}
    for touch in touches:
        first.setdefault(touch.stage, touch.at)
        latest[touch.stage] = touch.at
    return _bits(
        k for k, at in first.items() if k + 1 < stages and latest.get(k + 1, at) > at
    )


def path_of(touches: Sequence[Touch]) -> tuple[int, ...]:
    return tuple(touchpoint for touchpoint, _ in groupby(t.touchpoint for t in touches))


def after_of(touches: Sequence[Touch]) -> dict[int, int | None]:
    after: dict[int, int | None] = {}
    waiting = None  # the touchpoint first touched last, until another one is
    for touch in touches:
        if waiting is not None and touch.touchpoint != waiting:
            after[waiting] = touch.touchpoint
            waiting = None
        if touch.touchpoint not in after:
            after[touch.touchpoint] = None
            waiting = touch.touchpoint
    return after


def moved_of(touches: Sequence[Touch], starts: Sequence[bool] | None = None) -> frozenset[int]:
    """The touchpoints with a touch followed by a later touch at a later stage; with `starts`
    (one flag per touch), only the flagged touches count as the touch moved on from."""
    # The lowest stage each touchpoint was touched at strictly before the touches at hand.
    lowest: dict[int, int] = {}
    moved: set[int] = set()
    for _, same_time in groupby(range(len(touches)), key=lambda i: touches[i].at):
        now = list(same_time)
        for i in now:
            moved.update(tp for tp, stage in lowest.items() if stage < touches[i].stage)
        for i in now:
            if starts is None or starts[i]:
                touch = touches[i]
                tp = touch.touchpoint
                lowest[tp] = min(touch.stage, lowest.get(tp, touch.stage))
    return frozenset(moved)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def micros(at: datetime) -> int:
    return (at - EPOCH) // _MICROSECOND


@dataclass(slots=True)
class Progress:
    """A journey's summary kept as it goes, so that touches coming after all of its touches
    update it without the earlier touches being read again: `extend` then `summary` give what
    `summarize` gives over every touch (a test holds them to it). Times in microseconds.
    """

    first: int
    last: int
    depth: int = 0
    chain: int | None = None  # closed funnel: the time of its last step
    firsts: dict[int, int] = field(default_factory=dict)  # stage place → its first touch's time
    continued: int = 0
    path: list[int] = field(default_factory=list)
    after: dict[int, int | None] = field(default_factory=dict)
    waiting: int | None = None  # the touchpoint first touched last, until another one is
    lowest: dict[int, int] = field(default_factory=dict)  # touchpoint not moved on → its stage
    moved: set[int] = field(default_factory=set)

    @classmethod
    def of(cls, touches: Sequence[Touch], stages: int) -> Progress:
        at = micros(touches[0].at)
        progress = cls(first=at, last=at)
        progress.extend(touches, stages)
        return progress

    def takes(self, touches: Sequence[Touch]) -> bool:
        """Whether `touches` (in time order) all come after every touch summarized so far."""
        return micros(touches[0].at) > self.last

    def extend(self, touches: Sequence[Touch], stages: int) -> None:
        """Add touches in time order, none earlier than the last one summarized."""
        # The touchpoints not moved on, by their lowest stage: a touch at a later stage moves
        # whole groups on, without going through every touchpoint at each touch.
        waiting: dict[int, set[int]] = {}
        for tp, stage in self.lowest.items():
            waiting.setdefault(stage, set()).add(tp)
        for at, same_time in groupby(touches, key=lambda touch: micros(touch.at)):
            now = list(same_time)
            top = max(touch.stage for touch in now)
            for stage in [stage for stage in waiting if stage < top]:
                for tp in waiting.pop(stage):
                    self.moved.add(tp)
                    del self.lowest[tp]
            for touch in now:
                self._take(touch, at, stages, waiting)
            self.last = at

    def _take(self, touch: Touch, at: int, stages: int, waiting: dict[int, set[int]]) -> None:
        stage, tp = touch.stage, touch.touchpoint
        if stage == self.depth < stages and (self.chain is None or at > self.chain):
            self.depth, self.chain = self.depth + 1, at
        self.firsts.setdefault(stage, at)
        if stage and self.firsts.get(stage - 1, at) < at:
            self.continued |= 1 << (stage - 1)
        if not self.path or self.path[-1] != tp:
            self.path.append(tp)
        if self.waiting is not None and tp != self.waiting:
            self.after[self.waiting] = tp
            self.waiting = None
        if tp not in self.after:
            self.after[tp] = None
            self.waiting = tp
        if tp not in self.moved:
            lowest = self.lowest.get(tp)
            if lowest is None or stage < lowest:
                if lowest is not None:
                    waiting[lowest].discard(tp)
                self.lowest[tp] = stage
                waiting.setdefault(stage, set()).add(tp)

    def summary(self) -> Summary:
        return Summary(
            first=EPOCH + self.first * _MICROSECOND,
            last=EPOCH + self.last * _MICROSECOND,
            depth=self.depth,
            reached=_bits(self.firsts),
            continued=self.continued,
            path=tuple(self.path),
            after=dict(self.after),
            moved=frozenset(self.moved),
        )

    def dumps(self, order: str) -> str:
        """Its stored form; `order` names the stage order its stage places are in."""
        return orjson.dumps([
            order, self.first, self.last, self.depth, self.chain, list(self.firsts.items()),
            self.continued, self.path, list(self.after.items()), self.waiting,
            list(self.lowest.items()), sorted(self.moved),
        ]).decode()

    @classmethod
    def loads(cls, text: str | None, order: str) -> Progress | None:
        """The progress stored as `text`, or None when there is none on the stage `order`."""
        if not text:
            return None
        stored = orjson.loads(text)
        if stored[0] != order:
            return None
        _, first, last, depth, chain, firsts, continued, path, after, waiting, lowest, moved = (
            stored
        )
        return cls(first, last, depth, chain, dict(firsts), continued, path, dict(after),
                   waiting, dict(lowest), set(moved))
