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
from sqlalchemy import Engine, event, func, insert, inspect, select, text
from sqlalchemy.orm import ORMExecuteState, Session

import migrations
from analytics.enrich import Enricher
from analytics.ingest import store_clicks
from analytics.models import Click, LinkHourlyStats, Period, TouchpointStats
from analytics.reports.engagement import stage_report, touchpoint_report
from analytics.reports.periods import HOURS, Piece, plan_pieces
from analytics.reports.query import ReportQuery
from shortener.clicks import RawClick
from shortener.db import make_engine, utcnow
from shortener.models import Link, Stage, Touchpoint
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


@pytest.fixture
def workspace(shop: Any, ingest: Any, session: Session) -> list[RawClick]:
    """The links above with 600 clicks over three months and a half; the clicks ingested."""
    shop.touchpoint("store-flyer", "physical", exposure=500)
    for key, channel in [("insta-bio", "digital"), ("help-desk", "human"),
                         ("packaging", "physical"), ("old-poster", "physical")]:
        shop.touchpoint(key, channel)
    for slug, touchpoint, stage in LINKS:
        shop.link(slug, touchpoint, stage)
    links = list(session.scalars(select(Link).where(Link.slug != "box").order_by(Link.id)))
    clicks = raw_clicks(links, 600, seed=1)
    assert ingest.raw(clicks) == 600
    shop.archive("old-poster")
    return clicks


def hourly_rows(session: Session) -> list[LinkHourlyStats]:
    return list(session.scalars(select(LinkHourlyStats)))


def sums_by_period(rows: list[LinkHourlyStats]) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """touchpoint_stats as it must be: the hourly rows summed per period, stage and touchpoint."""
    sums: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, 0, 0, 0, None])
    for row in rows:
        for period in Period:
            key = (period.value, period.start_of(row.hour.date()), row.stage_id, row.touchpoint_id)
            total = sums[key]
            for i, name in enumerate(FIGURES[:4]):
                total[i] += getattr(row, name)
            if row.last_click_at is not None and (total[4] is None or row.last_click_at > total[4]):
                total[4] = row.last_click_at
    return {key: tuple(value) for key, value in sums.items()}


def stored_periods(session: Session) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    return {
        (s.period, s.period_start, s.stage_id, s.touchpoint_id): tuple(
            getattr(s, name) for name in FIGURES
        )
        for s in session.scalars(select(TouchpointStats))
    }


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


def hourly_answer(
    session: Session, rows: list[LinkHourlyStats], query: ReportQuery
) -> dict[str, tuple[Any, ...]]:
    """The touchpoint report's figures summed from the hourly rows, as the reports once did."""
    stage_id = session.scalar(select(Stage.id).where(Stage.key == query.stage))
    touchpoints = session.scalars(select(Touchpoint).where(Touchpoint.archived.is_(False)))
    live = {t.id: t.key for t in touchpoints}
    sums: dict[int, list[Any]] = {tp: [0, 0, 0, 0, None, 0] for tp in live}
    for row in rows:
        if row.touchpoint_id not in live or stage_id not in (None, row.stage_id):
            continue
        counted = row.clicks + (row.bot_clicks if query.bots else 0)
        total = sums[row.touchpoint_id]
        if query.start <= row.hour < query.end:
            total[0] += counted
            total[1] += row.scans
            total[2] += row.visitors
            if row.last_click_at is not None and (total[4] is None or row.last_click_at > total[4]):
                total[4] = row.last_click_at
            total[5] += 1
        elif query.previous_start <= row.hour < query.start:
            total[3] += counted
            total[5] += 1
    with_links = set(
        session.scalars(
            select(Link.touchpoint_id).where(Link.archived.is_(False), Link.stage_id == stage_id)
        )
    )
    return {
        live[tp]: tuple(total[:5])
        for tp, total in sums.items()
        if stage_id is None or tp in with_links or total[5]
    }


def stage_answer(
    session: Session, rows: list[LinkHourlyStats], query: ReportQuery
) -> list[tuple[str, int, int, int, int]]:
    live = set(session.scalars(select(Touchpoint.id).where(Touchpoint.archived.is_(False))))
    per_touchpoint: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in rows:
        if row.touchpoint_id in live and query.start <= row.hour < query.end:
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
    live = {
        t.id: t.key
        for t in session.scalars(select(Touchpoint).where(Touchpoint.archived.is_(False)))
    }
    sums: dict[int, list[Any]] = {tp: [0, 0, 0, 0, None] for tp in live}
    first: dict[tuple[Any, ...], Click] = {}
    for click in session.scalars(select(Click).order_by(Click.occurred_at, Click.click_id)):
        if click.touchpoint_id not in live:
            continue
        counted = query.bots or not click.is_bot
        total = sums[click.touchpoint_id]
        if query.start <= click.occurred_at < query.end:
            total[0] += counted
            total[1] += click.via_qr and not click.is_bot
            if not click.is_bot:
                total[4] = click.occurred_at
        elif query.previous_start <= click.occurred_at < query.start:
            total[3] += counted
        if not click.is_bot:
            first.setdefault((click.occurred_at.date(), click.link_id, click.visitor_id), click)
    for click in first.values():
        if query.start <= click.occurred_at < query.end:
            sums[click.touchpoint_id][2] += 1
    return {live[tp]: tuple(total) for tp, total in sums.items()}


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


# --- the migration -------------------------------------------------------------------------------


@pytest.fixture
def scratch(engine: Engine, tmp_path: Any) -> Iterator[Engine]:
    """An empty database of the same kind as `engine`, for migrating step by step."""
    if engine.dialect.name == "sqlite":
        scratch = make_engine(f"sqlite:///{tmp_path / 'scratch.db'}")
        yield scratch
        scratch.dispose()
        return
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS rollups_scratch CASCADE"))
        conn.execute(text("CREATE SCHEMA rollups_scratch"))
    url = engine.url.render_as_string(hide_password=False)
    scratch = make_engine(url, connect_args={"options": "-csearch_path=rollups_scratch"})
    yield scratch
    scratch.dispose()
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA rollups_scratch CASCADE"))


def test_the_migration_fills_the_periods_from_the_hourly_rows_already_stored(
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
    with scratch.begin() as conn:
        conn.execute(insert(LinkHourlyStats), values)
    migrations.upgrade(scratch, "0002")
    with Session(scratch) as session:
        assert stored_periods(session) == sums_by_period(hourly_rows(session))
        assert len(stored_periods(session)) > 3 * 5
    command.downgrade(migrations.alembic_config(scratch), "0001")
    assert "touchpoint_stats" not in inspect(scratch).get_table_names()


def test_days_weeks_and_months_start_where_the_calendar_says() -> None:
    assert Period.DAY.start_of(date(2026, 3, 1)) == date(2026, 3, 1)
    assert Period.WEEK.start_of(date(2026, 3, 1)) == date(2026, 2, 23)  # a Sunday: from Monday
    assert Period.MONTH.start_of(date(2026, 3, 31)) == date(2026, 3, 1)
    assert Period.WEEK.after(date(2026, 2, 23)) == date(2026, 3, 2)
    assert Period.MONTH.after(date(2026, 12, 1)) == date(2027, 1, 1)
    assert Period.MONTH.after(date(2026, 1, 1)) == date(2026, 2, 1)
