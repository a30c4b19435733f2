"""Raw clicks → enriched rows and rollups, in the caller's transaction, each click at most once."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import Table, delete
from sqlalchemy.orm import Session

from analytics import journeys as journey_store
from analytics.dimension_rollups import LinkLabels, add_dimension_counts
from analytics.enrich import Enricher
from analytics.journeys import JourneyKeys
from analytics.models import (
    Click,
    DailyVisitor,
    LinkHourlyStats,
    Period,
    TouchpointStats,
    VisitorSalt,
)
from analytics.scanners import SCANNER
from analytics.upserts import add_counts, insert_new, salts_of
from analytics.webhook_clicks import queue_clicks
from shortener.clicks import RawClick
from shortener.journey_cookie import COOKIELESS

SALT_RETENTION = timedelta(hours=48)
COUNTERS = ["clicks", "scans", "bot_clicks", "visitors", "test_clicks", "scanner_clicks"]


@dataclass(slots=True)
class StoreResult:
    inserted: int = 0
    duplicates: int = 0
    touches: int = 0  # journey touches among the clicks inserted
    # The rows of the clicks inserted, as stored (private fields too: they stay in the process).
    stored: list[dict[str, Any]] = field(default_factory=list)
    enrich_seconds: float = 0.0
    # Clicks that can never be stored (their link is gone): the caller dead-letters them.
    rejected: list[RawClick] = field(default_factory=list)


def store_clicks(
    session: Session,
    clicks: Sequence[RawClick],
    enricher: Enricher,
    *,
    now: datetime,
    zone: tzinfo = UTC,
    journeys: JourneyKeys | None = None,
    bursts: Collection[str] = (),
) -> StoreResult:
    """Insert the clicks not stored yet and add only those to the rollups; flushes, never commits.

    Replaying a batch (a worker killed between commit and acknowledgement) inserts nothing and
    changes no rollup: the unique click id decides, in the same transaction as the rollups.
    Days (of visitor ids, daily visitors and `touchpoint_stats`) are those of `zone`, the
    workspace's time zone. With `journeys`, the new human clicks that carry a journey become its
    touches. `bursts` are the ids of clicks found in a burst (analytics.scanners.BurstWatch).
    """
    result = StoreResult()
    if not clicks:
        return result
    labels = LinkLabels.read(
        session, {c.link_id for c in clicks}, {c.touchpoint_id for c in clicks}
    )
    salts = visitor_salts(session, {_day(c.at, zone) for c in clicks}, now=now, zone=zone)
    journey_salts: dict[int, bytes] = {}
    if journeys is not None and any(c.journey == COOKIELESS for c in clicks):
        days = {_day(c.at, zone) for c in clicks if c.journey == COOKIELESS}
        journey_salts = journey_store.salts(
            session, journeys, days, today=now.astimezone(zone).date()
        )
    journey_keys: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for click in clicks:
        if click.link_id not in labels.campaigns:
            result.rejected.append(click)
            continue
        day = _day(click.at, zone)
        info = enricher.enrich(click.ip, click.user_agent, click.referrer, salts[day])
        visitor_id = "" if click.private else info.visitor_id  # asked not to be recognised
        is_bot, bot_reason = info.is_bot, info.bot_reason
        scanner = _scanner(click, info.scanner, bursts)
        if scanner is not None:  # whatever the user agent says: scanners often copy a browser's
            is_bot, bot_reason = True, scanner
        if journeys is not None and click.journey and not is_bot and not click.test:
            journey_keys[click.click_id] = journeys.key(
                click.journey, ip=click.ip, user_agent=click.user_agent, salts=journey_salts,
                day=day,
            )
        rows.append(
            {
                "click_id": click.click_id,
                "occurred_at": datetime.fromtimestamp(click.at, UTC),
                "link_id": click.link_id,
                "touchpoint_id": click.touchpoint_id,
                "stage_id": click.stage_id,
                "via_qr": click.via_qr,
                "is_bot": is_bot,
                "bot_reason": bot_reason,
                "device": info.device,
                "os": info.os[:64],
                "browser": info.browser[:64],
                "country": info.country,
                "referrer_host": info.referrer_host[:255] if info.referrer_host else None,
                "referrer_site": info.referrer_site[:255] if info.referrer_site else None,
                "language": _first_language(click.language),
                "visitor_id": visitor_id,
                "is_test": click.test,
            }
        )
    result.enrich_seconds = time.perf_counter() - started
    if not rows:
        return result

    inserted = insert_new(
        session, _table(Click), rows, keys=["click_id", "occurred_at"], returning=["click_id"]
    )
    new_ids = {click_id for (click_id,) in inserted}
    result.inserted = len(new_ids)
    result.duplicates = len(rows) - len(new_ids)
    fresh = [row for row in rows if row["click_id"] in new_ids]
    result.stored = fresh
    if fresh:
        recorded = journey_store.record_touches(session, fresh, journey_keys, zone)
        result.touches = recorded.touches
        # Last, the rollups: every batch shares their rows, and holds their locks from the
        # first upsert to the commit, so a batch in flight behind this one waits that long.
        _add_to_rollups(session, fresh, labels, zone)
        if recorded.change is not None:
            recorded.change.apply(session)
        queue_clicks(session, fresh)  # for the webhooks that want them
    return result


def _scanner(click: RawClick, operator: str | None, bursts: Collection[str]) -> str | None:
    """The bot_reason of a mail scanner's fetch, by the strongest evidence, or None."""
    if operator is not None:
        return SCANNER + operator
    if click.click_id in bursts:
        return SCANNER + "burst"
    if click.prefetch:
        return SCANNER + "prefetch"
    return None


def _add_to_rollups(
    session: Session, rows: list[dict[str, Any]], labels: LinkLabels, zone: tzinfo
) -> None:
    humans = [
        row for row in rows if not row["is_bot"] and not row["is_test"] and row["visitor_id"]
    ]
    new_visitors = _first_visits(session, humans, zone)
    totals: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * len(COUNTERS))
    latest: dict[tuple[Any, ...], datetime] = {}
    earliest: dict[tuple[Any, ...], datetime] = {}
    first_visits: set[str] = set()
    for row in rows:
        at = row["occurred_at"]
        hour = at.replace(minute=0, second=0, microsecond=0)
        key = (hour, row["link_id"], row["touchpoint_id"], row["stage_id"])
        counts = totals[key]
        if row["is_bot"]:
            counts[2] += 1
            counts[5] += row["bot_reason"].startswith(SCANNER)
            continue
        if row["is_test"]:  # a person's proofing scan, before go-live: counted apart
            counts[4] += 1
            continue
        if key not in latest or at > latest[key]:
            latest[key] = at
        if key not in earliest or at < earliest[key]:
            earliest[key] = at
        counts[0] += 1
        counts[1] += row["via_qr"]
        visit = (at.astimezone(zone).date(), row["link_id"], row["visitor_id"])
        if visit in new_visitors:
            new_visitors.discard(visit)  # counted once, on the visitor's first click of the day
            counts[3] += 1
            first_visits.add(row["click_id"])
    # Sorted, so that two workers updating the same rows take their locks in the same order.
    values = [
        {
            "hour": k[0],
            "link_id": k[1],
            "touchpoint_id": k[2],
            "stage_id": k[3],
            "clicks": c[0],
            "scans": c[1],
            "bot_clicks": c[2],
            "visitors": c[3],
            "test_clicks": c[4],
            "scanner_clicks": c[5],
            "first_click_at": earliest.get(k),
            "last_click_at": latest.get(k),
        }
        for k, c in sorted(totals.items(), key=lambda item: item[0])
    ]
    add_counts(
        session,
        _table(LinkHourlyStats),
        values,
        keys=["hour", "link_id", "touchpoint_id", "stage_id"],
        counters=COUNTERS,
        latest="last_click_at",
        earliest="first_click_at",
    )
    add_counts(
        session,
        _table(TouchpointStats),
        _touchpoint_periods(totals, latest, zone),
        keys=["period", "period_start", "stage_id", "touchpoint_id"],
        counters=COUNTERS,
        latest="last_click_at",
    )
    add_dimension_counts(session, rows, first_visits, labels, zone)


def _touchpoint_periods(
    totals: dict[tuple[Any, ...], list[int]],
    latest: dict[tuple[Any, ...], datetime],
    zone: tzinfo,
) -> list[dict[str, Any]]:
    """The batch's hourly totals summed per period, stage and touchpoint: one upsert row each."""
    starts: dict[date, list[tuple[str, date]]] = {}
    sums: dict[tuple[Any, ...], list[Any]] = {}
    for key, counts in totals.items():
        hour, _, touchpoint_id, stage_id = key
        day = hour.astimezone(zone).date()
        periods = starts.get(day)
        if periods is None:
            periods = starts[day] = [(p.value, p.start_of(day)) for p in Period]
        at = latest.get(key)
        for period, start in periods:
            period_key = (period, start, stage_id, touchpoint_id)
            total = sums.get(period_key)
            if total is None:
                sums[period_key] = [*counts, at]
                continue
            for i, count in enumerate(counts):
                total[i] += count
            if at is not None and (total[-1] is None or at > total[-1]):
                total[-1] = at
    return [
        {
            "period": k[0],
            "period_start": k[1],
            "stage_id": k[2],
            "touchpoint_id": k[3],
            **dict(zip(COUNTERS, c[:-1], strict=True)),
            "last_click_at": c[-1],
        }
        for k, c in sorted(sums.items(), key=lambda item: item[0])
    ]


def _first_visits(
    session: Session, humans: list[dict[str, Any]], zone: tzinfo
) -> set[tuple[date, int, str]]:
    """Which (day, link, visitor) triples are seen for the first time, recording them."""
    if not humans:
        return set()
    keys = {
        (row["occurred_at"].astimezone(zone).date(), row["link_id"], row["visitor_id"])
        for row in humans
    }
    columns = ["day", "link_id", "visitor_id"]
    inserted = insert_new(
        session,
        _table(DailyVisitor),
        [dict(zip(columns, key, strict=True)) for key in sorted(keys)],
        keys=columns,
        returning=columns,
    )
    return {(d, link, v) for d, link, v in inserted}


def visitor_salts(
    session: Session, days: set[date], *, now: datetime, zone: tzinfo
) -> dict[date, bytes]:
    """Each day's visitor salt, created on first use; salts older than 48 hours are deleted,
    but for days this batch still has clicks of (a backlog after an outage), whose visitors
    must keep one id however many batches their clicks arrive in."""
    oldest = (now - SALT_RETENTION).astimezone(zone).date()
    session.execute(
        delete(VisitorSalt).where(VisitorSalt.day < oldest, VisitorSalt.day.not_in(days))
    )
    return salts_of(session, VisitorSalt.day, days)


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


def _day(at: float, zone: tzinfo) -> date:
    return datetime.fromtimestamp(at, zone).date()


def _first_language(header: str) -> str | None:
    first = header.split(",", 1)[0].split(";", 1)[0].strip()
    return first[:35] or None
