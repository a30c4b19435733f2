"""The journey rollups against the journeys' own touches.

Journeys stored batch by batch (a journey extended by later batches, one batch replayed) keep
rollups equal to the ones rebuilt from the touches; and every journey report read from them,
over windows of whole days, of hours cut mid-day at either end, before and after the data,
answers exactly what walking the touches answers. Retention, a change of stage order and a
change of time zone keep them so.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from analytics import journey_rollups
from analytics.journeys import forget_journeys
from analytics.models import (
    Journey,
    JourneyFunnelDays,
    JourneyNextDays,
    JourneyPath,
    JourneyPathDays,
    JourneyStopDays,
    WorkspaceState,
)
from analytics.runtime import runtime
from shortener.clicks import RawClick
from shortener.db import utcnow
from shortener.unit_of_work import transaction
from tests.user_agents import ANDROID, DESKTOP, IPHONE

STAGES = ("awareness", "consideration", "decision", "post-purchase", "support")
# slug: (touchpoint, stage); touchpoints at several stages, as on real workspaces
LINKS = {
    "ad": ("ads", "awareness"), "ad-deal": ("ads", "decision"),
    "blog": ("blog", "awareness"), "blog-guide": ("blog", "consideration"),
    "mail": ("mail", "consideration"), "mail-care": ("mail", "post-purchase"),
    "shop": ("shop", "decision"), "box": ("box", "post-purchase"), "faq": ("faq", "support"),
}
CHANNELS = {"ads": "digital", "blog": "digital", "mail": "digital", "shop": "human",
            "box": "physical", "faq": "digital"}


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(journeys="cookie")


@pytest.fixture
def stored(shop: Any, ingest: Any) -> list[RawClick]:
    """About 140 journeys over the last 20 days, stored in batches of 60 in no order of time
    (so that many journeys are extended by a later batch, often with earlier touches), one
    batch stored twice; the clicks stored."""
    return population(shop, ingest, shuffled=True)


def population(shop: Any, ingest: Any, *, shuffled: bool) -> list[RawClick]:
    made = utcnow() - timedelta(days=30)
    for key, channel in CHANNELS.items():
        shop.touchpoint(key, channel, created_at=made)
    for slug, (touchpoint, stage) in LINKS.items():
        shop.link(slug, touchpoint, stage, created_at=made)
    rng = random.Random(10)
    now = utcnow()
    by_stage = {stage: [s for s, (_, st) in LINKS.items() if st == stage] for stage in STAGES}
    clicks = []
    for person in range(140):
        journey = f"{rng.getrandbits(128):032x}"
        at = now - timedelta(days=20) + timedelta(hours=rng.uniform(0, 20 * 24))
        place = 0
        for _ in range(rng.choice((1, 1, 2, 3, 4, 6, 9))):
            if at >= now:
                break
            slug = rng.choice(by_stage[STAGES[place]])
            agent = (ANDROID, IPHONE, DESKTOP)[person % 3]
            clicks.append(ingest.make(slug, at, ip=f"10.1.{person % 250}.{person // 250 + 1}",
                                      agent=agent, journey=journey))
            # On, back, or the same stage again; some touches at the very same second.
            place = max(0, min(len(STAGES) - 1, place + rng.choice((-1, 0, 1, 1, 2))))
            at += timedelta(hours=rng.choice((0, 0.0, 1, 5, 20, 30, 70)))
    clicks.sort(key=lambda c: c.at)
    if shuffled:
        rng.shuffle(clicks)
    assert ingest.raw(clicks, batch=60) == len(clicks)
    assert ingest.raw(clicks[:60], batch=60) == 0  # a replayed batch adds nothing
    return clicks


def rollup_rows(session: Session) -> dict[str, set[tuple[Any, ...]]]:
    """Every rollup row that counts something, paths by their touchpoints."""
    paths = dict(session.execute(select(JourneyPath.id, JourneyPath.touchpoints)).all())
    return {
        "funnel": {r for r in session.execute(select(
            JourneyFunnelDays.first_day, JourneyFunnelDays.last_day, JourneyFunnelDays.depth,
            JourneyFunnelDays.reached, JourneyFunnelDays.continued, JourneyFunnelDays.journeys,
        ).where(JourneyFunnelDays.journeys != 0))},
        "paths": {(paths[p], f, last, n) for p, f, last, n in session.execute(select(
            JourneyPathDays.path_id, JourneyPathDays.first_day, JourneyPathDays.last_day,
            JourneyPathDays.journeys,
        ).where(JourneyPathDays.journeys != 0))},
        "path totals": {r for r in session.execute(
            select(JourneyPath.touchpoints, JourneyPath.journeys).where(JourneyPath.journeys != 0)
        )},
        "stops": {r for r in session.execute(select(
            JourneyStopDays.first_day, JourneyStopDays.last_day, JourneyStopDays.touchpoint_id,
            JourneyStopDays.journeys, JourneyStopDays.moved_on,
        ).where(JourneyStopDays.journeys != 0))},
        "next": {r for r in session.execute(select(
            JourneyNextDays.touchpoint_id, JourneyNextDays.first_day, JourneyNextDays.last_day,
            JourneyNextDays.next_touchpoint_id, JourneyNextDays.journeys,
        ).where(JourneyNextDays.journeys != 0))},
    }


def rebuilt(app: Flask) -> dict[str, set[tuple[Any, ...]]]:
    with transaction(runtime(app).sessions) as session:
        journey_rollups.rebuild(session, runtime(app).settings.zone,
                                journey_rollups.stages_in_order(session))
        return rollup_rows(session)


def windows(now: datetime) -> list[dict[str, str]]:
    """Whole days, hours cut mid-day at one end or both, one hour, before and after the data."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    day = (hour - timedelta(days=20)).date()

    def span(start: datetime, end: datetime) -> dict[str, str]:
        return {"from": start.isoformat(), "to": end.isoformat()}

    return [
        {"from": day.isoformat()},
        {"from": str(day + timedelta(days=5)), "to": str(day + timedelta(days=12))},
        span(hour - timedelta(days=15, hours=7), hour - timedelta(days=4, hours=13)),
        span(hour - timedelta(days=9, hours=3), hour + timedelta(hours=1)),
        span(hour - timedelta(days=25), hour - timedelta(days=10, hours=2)),
        span(hour - timedelta(days=6, hours=5), hour - timedelta(days=6, hours=4)),
        span(hour - timedelta(days=60), hour - timedelta(days=40)),
        {"from": day.isoformat(), "channel": "digital"},
        {"from": day.isoformat(), "stage": "decision"},
    ]


def answers(reports: Any, app: Flask) -> list[Any]:
    """Every journey report over every window, as the API answers them."""
    found = []
    for window in windows(utcnow()):
        found.append(reports.get("funnel", **window))
        found.append(reports.get("funnel", mode="open", **window))
        for limit in (1, 3, 100):
            found.append(reports.get("paths", limit=limit, **window))
        for touchpoint in CHANNELS:
            found.append(reports.get("next", touchpoint=touchpoint, **window))
        if "stage" not in window:
            found.append(reports.get("touchpoints", by="moved_on", limit=100, **window))
    return found


def walked(reports: Any, app: Flask) -> list[Any]:
    """The same answers, walking the touches (the rollups' state forgotten, as after a change
    of stages), then the rollups made current again."""
    with transaction(runtime(app).sessions) as session:
        session.execute(delete(WorkspaceState).where(WorkspaceState.key == journey_rollups.STATE))
    found = answers(reports, app)
    with transaction(runtime(app).sessions) as session:
        assert journey_rollups.ensure(session, runtime(app).settings.zone)
    return found


def test_rollups_kept_batch_by_batch_are_those_rebuilt_and_answer_as_the_walk(
    stored: list[RawClick], app: Flask, reports: Any, session: Session
) -> None:
    kept = rollup_rows(session)
    assert sum(row[-1] for row in kept["funnel"]) == session.query(Journey).count() > 100
    assert kept == rebuilt(app)
    from_rollups = answers(reports, app)
    assert sum(answer.get("journeys", 0) for answer in from_rollups) > 1000  # not all empty
    assert from_rollups == walked(reports, app)


def test_touches_in_time_order_extend_each_journey_from_its_progress(
    shop: Any, ingest: Any, app: Flask, reports: Any, session: Session
) -> None:
    population(shop, ingest, shuffled=False)
    # A journey of one touch keeps none: its touch says it all.
    kept_none = select(func.min(Journey.touches), func.max(Journey.touches)).where(
        Journey.progress.is_(None)
    )
    assert session.execute(kept_none).one() == (1, 1)
    kept = rollup_rows(session)
    assert sum(row[-1] for row in kept["funnel"]) == session.query(Journey).count() > 100
    assert kept == rebuilt(app)
    assert answers(reports, app) == walked(reports, app)


def test_retention_takes_the_forgotten_journeys_out_of_the_rollups(
    stored: list[RawClick], app: Flask, reports: Any
) -> None:
    rt = runtime(app)
    with transaction(rt.sessions) as session:
        before = session.query(Journey).count()
        gone = forget_journeys(session, now=utcnow(), retention_days=8, zone=rt.settings.zone)
        left = session.query(Journey).count()
        assert 0 < gone < before and left == before - gone
        kept = rollup_rows(session)
        assert sum(row[-1] for row in kept["funnel"]) == left
    assert kept == rebuilt(app)
    assert answers(reports, app) == walked(reports, app)


def test_a_new_stage_order_is_walked_until_the_rollups_are_cut_on_it(
    stored: list[RawClick], app: Flask, reports: Any, client: Any, admin: dict[str, str]
) -> None:
    order = ["consideration", "awareness", "decision", "support", "post-purchase"]
    response = client.put("/api/v1/stages/order", json={"keys": order}, headers=admin)
    assert response.status_code == 200, response.json
    rt = runtime(app)
    with rt.sessions() as session:
        assert not journey_rollups.current(
            session, rt.settings.zone, journey_rollups.stages_in_order(session)
        )
    on_new_order = answers(reports, app)
    assert [row["stage"]["key"] for row in on_new_order[0]["rows"]] == order
    with transaction(rt.sessions) as session:
        assert journey_rollups.ensure(session, rt.settings.zone)
    assert answers(reports, app) == on_new_order


def test_another_time_zone_cuts_the_rollups_in_its_days(
    stored: list[RawClick], make_app: Callable[..., Flask], reports: Any, ingest: Any
) -> None:
    tokyo = make_app(journeys="cookie", timezone="Asia/Tokyo")
    rt = runtime(tokyo)
    in_tokyo = reports.on(tokyo)
    walked_there = answers(in_tokyo, tokyo)  # the rollups are cut in UTC: walked
    # The next batch, stored by a worker of the Tokyo app, cuts them in Tokyo's days.
    extra = [ingest.make("faq", utcnow() - timedelta(hours=2), ip="10.9.9.9", agent=DESKTOP,
                         journey="f" * 32)]
    assert ingest.into(tokyo).raw(extra) == 1
    with rt.sessions() as session:
        assert journey_rollups.current(
            session, rt.settings.zone, journey_rollups.stages_in_order(session)
        )
    now_there = answers(in_tokyo, tokyo)
    assert now_there != walked_there  # the new journey counts
    assert now_there == walked(in_tokyo, tokyo)
