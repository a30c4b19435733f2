"""touchpoint_stats: kept by ingest as the sums of the hourly rows, so that reports that read it
give the hourly rows' answer over any period, whatever its edges."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, MetaData, Table, event, func, insert, inspect, or_, select
from sqlalchemy.orm import ORMExecuteState, Session

import migrations
from analytics.enrich import Enricher
from analytics.ingest import store_clicks
from analytics.models import Click, LinkHourlyStats, Period, TouchpointStats, WorkspaceState
from analytics.reports.engagement import touchpoint_report
from analytics.reports.periods import HOURS, Piece, plan_pieces
from analytics.reports.query import ReportQuery
from analytics.reports.stages import stage_report
from shortener.clicks import RawClick
from shortener.db import utcnow
from shortener.models import Link, Placement, Stage, Touchpoint
from tests.user_agents import ANDROID, DESKTOP, GOOGLEBOT, IPHONE, SLACKBOT

FIRST = datetime(2026, 1, 10, 5, tzinfo=UTC)
LAST = datetime(2026, 4, 20, 20, tzinfo=UTC)
HOUR = timedelta(hours=1)
FIGURES = ("clicks", "scans", "bot_clicks", "visitors", "last_click_at")

# (slug, touchpoint, stage); `poster` is archived once its clicks are in, `box` is never clicked.
LINKS = [
    ("flyer-a", "store-flyer", "awareness"),
    ("flyer-d", "store-flyer", "decision"),
    ("bio-a", "insta-bio", "awareness"),
    ("bio-c", "insta-bio", "consideration"),
    ("faq", "help-desk", "support"),
    ("box", "packaging", "post-purchase"),
    ("poster", "old-poster", "awareness"),
]


def raw_clicks(links: list[Link], count: int, seed: int) -> list[RawClick]:
    """`count` clicks between FIRST and LAST in time order: a dozen people who come back, bots,
    scans; the busiest link gets most."""
    rng = random.Random(seed)
    agents = [IPHONE, ANDROID, DESKTOP] * 6 + [GOOGLEBOT, SLACKBOT]
    people = [(f"198.51.100.{n}", rng.choice(agents)) for n in range(12)]
    span = (LAST - FIRST).total_seconds()
    times = sorted(FIRST.timestamp() + rng.random() * span for _ in range(count))
    clicks = []
    for i, at in enumerate(times):
        link = links[min(int(rng.paretovariate(1.0)), len(links)) - 1]
        ip, agent = rng.choice(people)
        clicks.append(
            RawClick(
                click_id=f"{int(at * 1000):012x}{seed:08x}{i:012x}",
                at=at,
                link_id=link.id,
                touchpoint_id=link.touchpoint_id,
                stage_id=link.stage_id,
                ip=ip,
                user_agent=agent,
                referrer="",
                language="",
                via_qr=rng.random() < 0.15,
            )
        )
    return clicks


MADE = FIRST - timedelta(days=20)
# `help-desk` is made in the middle of the clicks (before its first, its link too); `old-poster`
# is archived in the middle of them (its clicks after that are kept, as a late batch's would be).
MADE_LATE = datetime(2026, 2, 20, 12, tzinfo=UTC)
ARCHIVED = datetime(2026, 3, 15, 6, tzinfo=UTC)


@pytest.fixture
def workspace(shop: Any, ingest: Any, session: Session) -> list[RawClick]:
    """The links above with 600 clicks over three months and a half; the clicks ingested."""
    shop.touchpoint("store-flyer", "physical", exposure=500, created_at=MADE)
    for key, channel in [("insta-bio", "digital"), ("help-desk", "human"),
                         ("packaging", "physical"), ("old-poster", "physical")]:
        shop.touchpoint(key, channel, created_at=MADE_LATE if key == "help-desk" else MADE)
    for slug, touchpoint, stage in LINKS:
        shop.link(slug, touchpoint, stage, created_at=MADE_LATE if slug == "faq" else MADE)
    links = list(session.scalars(select(Link).where(Link.slug != "box").order_by(Link.id)))
    clicks = [
        c for c in raw_clicks(links, 620, seed=1)
        if c.link_id != _id(links, "faq") or c.at >= MADE_LATE.timestamp()
    ]
    assert ingest.raw(clicks) == len(clicks) > 580
    shop.archive("old-poster", at=ARCHIVED)
    return clicks


def _id(links: list[Link], slug: str) -> int:
    return next(link.id for link in links if link.slug == slug)


def hourly_rows(session: Session) -> list[LinkHourlyStats]:
    return list(session.scalars(select(LinkHourlyStats)))


def sums_by_period(rows: list[LinkHourlyStats]) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """touchpoint_stats as it must be: the hourly rows summed per period, stage and touchpoint."""
    sums: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, 0, 0, 0, None])
    for row in rows:
        for period in Period:
            day = row.hour.astimezone(UTC).date()
            key = (period.value, period.start_of(day), row.stage_id, row.touchpoint_id)
            total = sums[key]
            for i, name in enumerate(FIGURES[:4]):
                total[i] += getattr(row, name)
            if row.last_click_at is not None and (total[4] is None or row.last_click_at > total[4]):
                total[4] = row.last_click_at
    return {key: tuple(value) for key, value in sums.items()}


def stored_periods(session: Session) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    # Column by column: the migration tests read tables as older revisions made them.
    keys = (TouchpointStats.period, TouchpointStats.period_start, TouchpointStats.stage_id,
            TouchpointStats.touchpoint_id)
    figures = [getattr(TouchpointStats, name) for name in FIGURES]
    return {tuple(row[:4]): tuple(row[4:]) for row in session.execute(select(*keys, *figures))}


# --- ingest ------------------------------------------------------------------------------------


def test_ingest_keeps_every_period_the_sum_of_its_hours(
    session: Session, workspace: list[RawClick]
) -> None:
    rows = hourly_rows(session)
    assert len({row.hour.date() for row in rows}) > 60  # days, weeks and months of them
    expected = sums_by_period(rows)
    assert stored_periods(session) == expected
    assert {period for period, *_ in expected} == {"day", "week", "month"}


def test_a_batch_stored_again_changes_no_period(
    session: Session, workspace: list[RawClick], ingest: Any
) -> None:
    before = stored_periods(session)
    assert ingest.raw(workspace[250:400], batch=150) == 0
    session.expire_all()
    assert stored_periods(session) == before


def first_and_last(session: Session) -> dict[tuple[Any, ...], tuple[Any, Any]]:
    session.expire_all()
    return {
        (row.hour, row.link_id, row.touchpoint_id, row.stage_id): (
            row.first_click_at, row.last_click_at
        )
        for row in hourly_rows(session)
    }


def test_ingest_keeps_the_first_and_the_last_human_click_of_each_hour(
    session: Session, workspace: list[RawClick], ingest: Any
) -> None:
    expected: dict[tuple[Any, ...], tuple[Any, Any]] = {}
    for click in session.scalars(select(Click).order_by(Click.occurred_at)):
        hour = click.occurred_at.replace(minute=0, second=0, microsecond=0)
        key = (hour, click.link_id, click.touchpoint_id, click.stage_id)
        first, last = expected.get(key, (None, None))
        if not click.is_bot:  # bots are counted, but no first or last click
            first, last = first or click.occurred_at, click.occurred_at
        expected[key] = (first, last)
    assert first_and_last(session) == expected
    assert any(first is None for first, _ in expected.values())  # hours of bots alone
    assert sum(1 for first, last in expected.values() if first and first < last) > 10

    assert ingest.raw(workspace[100:300]) == 0  # a batch replayed
    assert first_and_last(session) == expected


# --- plans ---------------------------------------------------------------------------------------


def coverage(pieces: tuple[Piece, ...], at: datetime) -> tuple[int, int]:
    inside = [p for p in pieces if p.start <= at < p.end]
    return sum(p.current for p in inside), sum(p.previous for p in inside)


def bounds_of(piece: Piece) -> bool:
    """Whether a piece starts and ends on bounds of its level."""
    if piece.level == HOURS:
        return True
    period = Period(piece.level)
    start, end = piece.start.date(), piece.end.date()
    aligned = piece.start.hour == piece.end.hour == 0
    return aligned and period.start_of(start) == start and period.start_of(end) == end


def periods_to_plan() -> Iterator[tuple[datetime, datetime, datetime]]:
    rng = random.Random(5)
    for _ in range(300):
        start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=rng.randrange(24 * 500))
        length = timedelta(hours=rng.choice([1, 5, 23, 24, 49, 24 * 7, 24 * 31, 24 * 90, 9_600]))
        yield start - length, start, start + length


@pytest.mark.parametrize("open_end", [False, True])
def test_a_plan_adds_up_to_each_period_exactly(open_end: bool) -> None:
    for previous_start, start, end in periods_to_plan():
        pieces = plan_pieces(previous_start, start, end, open_end=open_end)
        assert all(bounds_of(p) for p in pieces)
        hours = {p.start for p in pieces} | {p.end for p in pieces} | {previous_start, start, end}
        for at in sorted(hours):
            for moment in (at - HOUR, at):
                expected = (int(start <= moment < end), int(previous_start <= moment < start))
                if open_end and moment >= end:
                    expected = (coverage(pieces, moment)[0], 0)  # nothing is stored there
                assert coverage(pieces, moment) == expected, (previous_start, start, end, moment)
        if not open_end:
            # Past the end, a run would hold clicks whose latest time hides the period's.
            assert all(p.end <= end for p in pieces if p.current > 0)


def test_hours_are_read_only_inside_the_days_that_hold_the_bounds() -> None:
    for previous_start, start, end in periods_to_plan():
        days = {t.date() for t in (previous_start, start, end)}
        for piece in plan_pieces(previous_start, start, end):
            if piece.level == HOURS:
                assert {piece.start.date(), (piece.end - HOUR).date()} <= days


def test_a_long_period_reads_months_not_days() -> None:
    end = datetime(2026, 11, 23, 11, tzinfo=UTC)
    pieces = plan_pieces(end - timedelta(days=180), end - timedelta(days=90), end, open_end=True)
    assert {p.level for p in pieces} == {"hour", "day", "week", "month"}
    assert len(pieces) <= 12
    days = sum((p.end - p.start for p in pieces if p.level == "day"), timedelta())
    assert days <= timedelta(days=8)


# --- reports against the hourly rows -------------------------------------------------------------


def existed(touchpoint: Touchpoint, query: ReportQuery) -> bool:
    """Made before the window ended and not archived before it began."""
    archived = touchpoint.archived_at
    return touchpoint.created_at < query.end and (archived is None or archived > query.start)


def hourly_answer(
    session: Session, rows: list[LinkHourlyStats], query: ReportQuery
) -> dict[str, tuple[Any, ...]]:
    """The touchpoint report's figures summed from the hourly rows, listing the touchpoints
    that existed in the window or had clicks in it (with a stage: those with a link there live
    in it, or clicks there in either window)."""
    stage_id = session.scalar(select(Stage.id).where(Stage.key == query.stage))
    touchpoints = {t.id: t for t in session.scalars(select(Touchpoint))}
    # counted, scans, visitors, previous counted, latest human click, clicks now, clicks either
    sums: dict[int, list[Any]] = {tp: [0, 0, 0, 0, None, 0, 0] for tp in touchpoints}
    for row in rows:
        if stage_id not in (None, row.stage_id):
            continue
        counted = row.clicks + (row.bot_clicks if query.bots else 0)
        total = sums[row.touchpoint_id]
        if query.start <= row.hour < query.end:
            total[0] += counted
            total[1] += row.scans
            total[2] += row.visitors
            if row.last_click_at is not None and (total[4] is None or row.last_click_at > total[4]):
                total[4] = row.last_click_at
            total[5] += row.clicks + row.bot_clicks
            total[6] += row.clicks + row.bot_clicks
        elif query.previous_start <= row.hour < query.previous_end:
            total[3] += counted
            total[6] += row.clicks + row.bot_clicks
    with_links = set(
        session.scalars(
            select(Link.touchpoint_id).where(
                Link.stage_id == stage_id,
                Link.created_at < query.end,
                or_(Link.archived_at.is_(None), Link.archived_at > query.start),
            )
        )
    )
    return ranked({
        touchpoints[tp].key: tuple(total[:5])
        for tp, total in sums.items()
        if (existed(touchpoints[tp], query) or total[5])
        and (stage_id is None or tp in with_links or total[6])
    })


def ranked(answer: dict[str, tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
    """A window without a click ranks nothing as the most engaged."""
    return answer if any(figures[0] for figures in answer.values()) else {}


def stage_answer(
    session: Session, rows: list[LinkHourlyStats], query: ReportQuery
) -> list[tuple[str, int, int, int, int]]:
    per_touchpoint: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in rows:  # archived touchpoints too: their clicks happened
        if query.start <= row.hour < query.end:
            total = per_touchpoint[(row.stage_id, row.touchpoint_id)]
            total[0] += row.clicks + (row.bot_clicks if query.bots else 0)
            total[1] += row.scans
            total[2] += row.visitors
    answer = []
    for stage in session.scalars(select(Stage).order_by(Stage.position, Stage.id)):
        mine = [t for (s, _), t in per_touchpoint.items() if s == stage.id]
        answer.append((
            stage.key,
            sum(t[0] for t in mine),
            sum(t[1] for t in mine),
            sum(t[2] for t in mine),
            sum(1 for t in mine if t[0] > 0),
        ))
    return answer


def periods_to_report() -> list[ReportQuery]:
    rng = random.Random(11)
    queries = [
        ReportQuery(datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
        ReportQuery(datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC), bots=True),
        # Up to an hour after every click: whole periods past the end are read.
        ReportQuery(LAST - timedelta(days=90) + HOUR, LAST + HOUR),
        ReportQuery(LAST - timedelta(days=30) + HOUR, LAST + HOUR, stage="awareness"),
    ]
    for _ in range(36):
        start = FIRST - timedelta(days=5) + timedelta(hours=rng.randrange(24 * 105))
        length = timedelta(hours=rng.choice([1, 3, 20, 24, 53, 24 * 7, 24 * 13, 24 * 30, 24 * 45]))
        queries.append(
            ReportQuery(
                start,
                start + length,
                stage=rng.choice([None, None, "awareness", "consideration"]),
                bots=rng.random() < 0.3,
            )
        )
    return queries


def test_touchpoint_reports_give_the_hourly_rows_answer_over_any_period(
    session: Session, workspace: list[RawClick]
) -> None:
    rows = hourly_rows(session)
    checked = 0
    for query in periods_to_report():
        report = touchpoint_report(session, query, limit=1000)
        got = {
            r.touchpoint.key: (r.clicks, r.scans, r.visitors, r.previous_clicks, r.last_click_at)
            for r in report.rows
        }
        assert got == hourly_answer(session, rows, query), query
        checked += sum(1 for figures in got.values() if figures[0])
    assert checked > 40  # most periods had clicks to compare


def test_stage_reports_give_the_hourly_rows_answer_over_any_period(
    session: Session, workspace: list[RawClick]
) -> None:
    rows = hourly_rows(session)
    for query in periods_to_report():
        if query.stage is not None:
            continue
        report = stage_report(session, query)
        got = [(r.stage.key, r.clicks, r.scans, r.visitors, r.touchpoints) for r in report.rows]
        assert got == stage_answer(session, rows, query), query


def raw_answer(session: Session, query: ReportQuery) -> dict[str, tuple[Any, ...]]:
    """The same figures from the raw clicks: a visitor of a link counts on the day, in the hour
    of their first human click of that day."""
    touchpoints = {t.id: t for t in session.scalars(select(Touchpoint))}
    sums: dict[int, list[Any]] = {tp: [0, 0, 0, 0, None, 0] for tp in touchpoints}
    first: dict[tuple[Any, ...], Click] = {}
    for click in session.scalars(select(Click).order_by(Click.occurred_at, Click.click_id)):
        counted = query.bots or not click.is_bot
        total = sums[click.touchpoint_id]
        if query.start <= click.occurred_at < query.end:
            total[0] += counted
            total[1] += click.via_qr and not click.is_bot
            if not click.is_bot:
                total[4] = click.occurred_at
            total[5] += 1
        elif query.previous_start <= click.occurred_at < query.previous_end:
            total[3] += counted
        if not click.is_bot:
            first.setdefault((click.occurred_at.date(), click.link_id, click.visitor_id), click)
    for click in first.values():
        if query.start <= click.occurred_at < query.end:
            sums[click.touchpoint_id][2] += 1
    return ranked({
        touchpoints[tp].key: tuple(total[:5])
        for tp, total in sums.items()
        if existed(touchpoints[tp], query) or total[5]
    })


def test_touchpoint_reports_give_the_raw_clicks_answer_over_any_period(
    session: Session, workspace: list[RawClick]
) -> None:
    for query in periods_to_report():
        if query.stage is not None:
            continue
        report = touchpoint_report(session, query, limit=1000)
        got = {
            r.touchpoint.key: (r.clicks, r.scans, r.visitors, r.previous_clicks, r.last_click_at)
            for r in report.rows
        }
        assert got == raw_answer(session, query), query


def test_a_click_stored_past_the_end_while_a_report_runs_is_left_out(
    session: Session, workspace: list[RawClick], enricher: Enricher
) -> None:
    query = ReportQuery(LAST - timedelta(days=40) + HOUR, LAST + HOUR)
    expected = touchpoint_report(session, query, limit=1000)
    faq = list(session.scalars(select(Link).where(Link.slug == "faq")))
    pending = [[_moved(c, LAST + 2 * HOUR) for c in raw_clicks(faq, 3, seed=2)]]

    def store_late_clicks(state: ORMExecuteState) -> None:
        # The report's statement (the first to read touchpoints) runs after its check that
        # nothing is stored past the end: the clicks arrive in between.
        if pending and state.is_select and Touchpoint.__mapper__ in state.all_mappers:
            assert store_clicks(session, pending.pop(), enricher, now=utcnow()).inserted == 3

    event.listen(session, "do_orm_execute", store_late_clicks)
    try:
        assert touchpoint_report(session, query, limit=1000) == expected
    finally:
        event.remove(session, "do_orm_execute", store_late_clicks)
    assert not pending
    stored_late = select(func.sum(LinkHourlyStats.clicks + LinkHourlyStats.bot_clicks)).where(
        LinkHourlyStats.hour >= query.end
    )
    assert session.scalar(stored_late) == 3


def _moved(click: RawClick, at: datetime) -> RawClick:
    return RawClick(
        click_id=click.click_id,
        at=at.timestamp(),
        link_id=click.link_id,
        touchpoint_id=click.touchpoint_id,
        stage_id=click.stage_id,
        ip=click.ip,
        user_agent=click.user_agent,
        referrer=click.referrer,
        language=click.language,
        via_qr=click.via_qr,
    )


# --- the migrations -------------------------------------------------------------------------------




def tables(bind: Engine) -> dict[str, Table]:
    """The tables as the database has them now (at an old revision: not as the models say)."""
    metadata = MetaData()
    metadata.reflect(bind)
    return dict(metadata.tables)


HOURLY_0002 = ("hour", "link_id", "touchpoint_id", "stage_id", *FIGURES[:4], "last_click_at")


def test_migration_0002_fills_the_periods_from_the_hourly_rows_already_stored(
    scratch: Engine,
) -> None:
    migrations.upgrade(scratch, "0001")
    rng = random.Random(3)
    values = []
    for i in range(400):
        hour = datetime(2025, 12, 20, tzinfo=UTC) + timedelta(hours=rng.randrange(24 * 80))
        clicks = rng.randrange(4)
        values.append({
            "hour": hour, "link_id": i, "touchpoint_id": rng.randrange(1, 4),
            "stage_id": rng.randrange(1, 3), "clicks": clicks, "scans": min(clicks, 1),
            "bot_clicks": rng.randrange(2) if clicks else 1, "visitors": clicks // 2,
            "last_click_at": hour + timedelta(minutes=rng.randrange(60)) if clicks else None,
        })
    # The table as 0001 made it: today's model has columns added since.
    hourly_0001 = Table("link_hourly_stats", MetaData(), autoload_with=scratch)
    with scratch.begin() as conn:
        conn.execute(insert(hourly_0001), values)
    migrations.upgrade(scratch, "0002")
    with Session(scratch) as session:
        columns = [LinkHourlyStats.__table__.c[name] for name in HOURLY_0002]
        rows = list(session.execute(select(*columns)))
        assert stored_periods(session) == sums_by_period(rows)  # type: ignore[arg-type]
        assert len(stored_periods(session)) > 3 * 5
    command.downgrade(migrations.alembic_config(scratch), "0001")
    assert "touchpoint_stats" not in inspect(scratch).get_table_names()


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_).replace(tzinfo=UTC)


# (click id, time, link, touchpoint, stage, bot, scan, referrer host)
CLICKS_0003 = [
    ("c1", "2026-03-03 10:15", 1, 1, 1, False, False, "m.facebook.com"),
    ("c2", "2026-03-03 10:40", 1, 1, 1, False, True, "l.facebook.com"),
    ("c3", "2026-03-03 10:05", 1, 1, 1, True, False, None),  # a bot before the first human
    ("c4", "2026-03-03 11:20", 1, 1, 1, False, False, "example.org"),
    ("c5", "2026-03-04 09:00", 2, 3, 1, False, False, None),
    ("c6", "2026-03-04 09:30", 3, 2, 2, True, False, "google.com"),
]


def test_migration_0004_moves_exposure_into_placements_and_fills_the_new_columns(
    scratch: Engine,
) -> None:
    migrations.upgrade(scratch, "0003")
    old = tables(scratch)
    made = {1: at("2026-01-05 12:00"), 2: at("2026-01-06 00:00"), 3: at("2026-01-02 10:00")}
    with scratch.begin() as conn:
        conn.execute(insert(old["stages"]), [
            {"id": 1, "key": "awareness", "name": "Awareness", "position": 1},
            {"id": 2, "key": "decision", "name": "Decision", "position": 2},
        ])
        conn.execute(insert(old["touchpoints"]), [
            {"id": 1, "key": "flyer", "name": "Flyer", "channel": "physical", "exposure": 500,
             "archived": False, "created_at": made[1]},
            {"id": 2, "key": "bio", "name": "Bio", "channel": "digital", "exposure": None,
             "archived": False, "created_at": made[2]},
            {"id": 3, "key": "old", "name": "Old poster", "channel": "physical",
             "exposure": 2000, "archived": True, "created_at": made[3]},
        ])
        conn.execute(insert(old["links"]), [
            {"id": i, "domain": "go.test", "slug": slug, "destination": "https://shop.test/",
             "touchpoint_id": tp, "stage_id": stage, "archived": archived,
             "created_at": made[tp], "updated_at": updated}
            for i, slug, tp, stage, archived, updated in [
                (1, "spring", 1, 1, False, made[1]),
                (2, "poster", 3, 1, True, at("2026-02-01 08:00")),
                (3, "bio", 2, 2, False, made[2]),
            ]
        ])
        conn.execute(insert(old["clicks"]), [
            {"click_id": cid, "occurred_at": at(when), "link_id": link, "touchpoint_id": tp,
             "stage_id": stage, "is_bot": bot, "via_qr": qr, "device": "mobile", "os": "iOS",
             "browser": "Mobile Safari", "referrer_host": host, "visitor_id": cid * 16}
            for cid, when, link, tp, stage, bot, qr, host in CLICKS_0003
        ])
        conn.execute(insert(old["link_hourly_stats"]), [
            {"hour": at(hour), "link_id": link, "touchpoint_id": tp, "stage_id": stage,
             "clicks": clicks, "scans": scans, "bot_clicks": bots, "visitors": visitors,
             "last_click_at": at(last) if last else None}
            for hour, link, tp, stage, clicks, scans, bots, visitors, last in [
                ("2026-03-03 10:00", 1, 1, 1, 2, 1, 1, 2, "2026-03-03 10:40"),
                ("2026-03-03 11:00", 1, 1, 1, 1, 0, 0, 1, "2026-03-03 11:20"),
                ("2026-03-04 09:00", 2, 3, 1, 1, 0, 0, 1, "2026-03-04 09:00"),
                ("2026-03-04 09:00", 3, 2, 2, 0, 0, 1, 0, None),
            ]
        ])

    migrations.upgrade(scratch)

    assert "exposure" not in {c["name"] for c in inspect(scratch).get_columns("touchpoints")}
    with Session(scratch) as session:
        placements = session.scalars(select(Placement).order_by(Placement.touchpoint_id)).all()
        assert [(p.touchpoint_id, p.count, p.starts_on, p.ends_on, p.created_at)
                for p in placements] == [
            (1, 500, date(2026, 1, 5), None, made[1]),  # the UTC day it was made
            (3, 2000, date(2026, 1, 2), None, made[3]),
        ]
        touchpoints = {t.key: t for t in session.scalars(select(Touchpoint))}
        assert {k: t.exposure for k, t in touchpoints.items()} == {
            "flyer": 500, "bio": None, "old": 2000,
        }
        assert touchpoints["flyer"].archived_at is None
        assert touchpoints["old"].archived_at is not None  # when is not known: at the migration
        links = {link.slug: link.archived_at for link in session.scalars(select(Link))}
        assert links == {"spring": None, "poster": at("2026-02-01 08:00"), "bio": None}
        hourly = {
            (row.hour, row.link_id): (row.first_click_at, row.last_click_at)
            for row in session.scalars(select(LinkHourlyStats))
        }
        assert hourly == {
            (at("2026-03-03 10:00"), 1): (at("2026-03-03 10:15"), at("2026-03-03 10:40")),
            (at("2026-03-03 11:00"), 1): (at("2026-03-03 11:20"), at("2026-03-03 11:20")),
            (at("2026-03-04 09:00"), 2): (at("2026-03-04 09:00"), at("2026-03-04 09:00")),
            (at("2026-03-04 09:00"), 3): (None, None),  # bots only: no human click
        }
        sites = dict(session.execute(select(Click.click_id, Click.referrer_site)).all())
        assert sites == {
            "c1": "Facebook", "c2": "Facebook", "c3": None, "c4": "example.org", "c5": None,
            "c6": "Google",
        }
        state = session.get(WorkspaceState, "rollup_timezone")
        assert state is not None and state.value == "UTC"

    command.downgrade(migrations.alembic_config(scratch), "0003")
    restored = tables(scratch)
    assert "placements" not in restored and "workspace_state" not in restored
    with scratch.connect() as conn:
        exposure = conn.execute(
            select(restored["touchpoints"].c.key, restored["touchpoints"].c.exposure)
        ).all()
    assert dict(exposure) == {"flyer": 500, "bio": None, "old": 2000}
    assert "first_click_at" not in restored["link_hourly_stats"].c
    assert "referrer_site" not in restored["clicks"].c
    migrations.upgrade(scratch)  # and up again
    with Session(scratch) as session:
        assert session.scalar(select(func.sum(Placement.count))) == 2500


def test_days_weeks_and_months_start_where_the_calendar_says() -> None:
    assert Period.DAY.start_of(date(2026, 3, 1)) == date(2026, 3, 1)
    assert Period.WEEK.start_of(date(2026, 3, 1)) == date(2026, 2, 23)  # a Sunday: from Monday
    assert Period.MONTH.start_of(date(2026, 3, 31)) == date(2026, 3, 1)
    assert Period.WEEK.after(date(2026, 2, 23)) == date(2026, 3, 2)
    assert Period.MONTH.after(date(2026, 12, 1)) == date(2027, 1, 1)
    assert Period.MONTH.after(date(2026, 1, 1)) == date(2026, 2, 1)
