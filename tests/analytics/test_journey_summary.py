"""A journey's progress, extended touch batch by touch batch, summarizes it as its touches do."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from analytics.journey_rollups import Change
from analytics.journey_summary import Progress, Touch, summarize

STAGES = 5
START = datetime(2026, 11, 1, tzinfo=UTC)


def journey(rng: random.Random) -> list[Touch]:
    """Touches in time order, often several at one time, stages going on and back."""
    at, stage, touches = START, 0, []
    for _ in range(rng.randint(1, 30)):
        touches.append(Touch(at, stage, rng.randint(1, 6)))
        stage = max(0, min(STAGES - 1, stage + rng.choice((-1, 0, 1, 1, 2))))
        at += timedelta(seconds=rng.choice((0, 0, 1, 60, 3600)), microseconds=rng.choice((0, 1)))
    return touches


@pytest.mark.parametrize("seed", range(400))
def test_progress_extended_in_parts_summarizes_as_all_the_touches(seed: int) -> None:
    rng = random.Random(seed)
    touches = journey(rng)
    whole = summarize(touches, STAGES)
    assert Progress.of(touches, STAGES).summary() == whole

    # Cut where time moves on: each part comes after every touch of the one before.
    cuts = [i for i in range(1, len(touches)) if touches[i].at > touches[i - 1].at]
    parts = sorted(rng.sample(cuts, min(len(cuts), rng.randint(0, 3))))
    bounds = [0, *parts, len(touches)]
    progress = Progress.of(touches[: bounds[1]], STAGES)
    for start, end in pairwise(bounds[1:]):
        stored = Progress.loads(progress.dumps("order"), "order")
        assert stored is not None and stored.takes(touches[start:end])
        stored.extend(touches[start:end], STAGES)
        assert stored.summary() == summarize(touches[:end], STAGES)
        progress = stored
    assert progress.summary() == whole


def test_touches_at_or_before_the_last_one_are_not_taken() -> None:
    touches = [Touch(START, 0, 1), Touch(START + timedelta(hours=1), 1, 2)]
    progress = Progress.of(touches, STAGES)
    assert not progress.takes([Touch(START + timedelta(hours=1), 2, 3)])
    assert not progress.takes([Touch(START + timedelta(minutes=5), 2, 3)])
    assert progress.takes([Touch(START + timedelta(hours=1, microseconds=1), 2, 3)])


def test_progress_on_another_stage_order_is_not_used() -> None:
    stored = Progress.of([Touch(START, 0, 1)], STAGES).dumps("order-a")
    assert Progress.loads(stored, "order-b") is None
    assert Progress.loads(None, "order-a") is None
    assert Progress.loads(stored, "order-a") is not None


@pytest.mark.parametrize("stage", range(STAGES))
def test_a_journey_of_one_touch_counts_as_its_summary_does(stage: int) -> None:
    # Late in the UTC day, so that the workspace's zone puts it on the next day.
    touch = Touch(START + timedelta(hours=23, minutes=30), stage, 7)
    zone = ZoneInfo("Europe/Paris")
    lone, summarized = Change(zone), Change(zone)
    lone.add_lone(touch)
    summarized.add(summarize([touch], STAGES), 1)
    for part in ("funnel", "paths", "stops", "moved", "next"):
        assert getattr(lone, part) == getattr(summarized, part), part
