"""`dimension_stats`: the daily clicks per value of each breakdown dimension, kept by ingest.

Each stored click adds one to a row per dimension, keyed also by its stage and by the channel
and campaign its touchpoint and link had at click time, so that the dashboard's breakdowns
(and their filters) sum a few hundred rows per day instead of reading the raw clicks. When the
workspace's time zone changes, the rows are cut again from the raw clicks still kept.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, delete, select, text
from sqlalchemy.orm import Session

from analytics.models import Click, DimensionStats, WorkspaceState
from analytics.scanners import SCANNER
from analytics.upserts import add_counts
from shortener.models import Link, Touchpoint

DIMENSION_TIMEZONE = "dimension_timezone"
COUNTERS = ["clicks", "bot_clicks", "scanner_clicks", "test_clicks", "visitors"]

# A dimension's value in a stored click row; "" where the click had none.
VALUES: dict[str, Callable[[dict[str, Any]], str]] = {
    "device": lambda row: row["device"],
    "os": lambda row: row["os"],
    "browser": lambda row: row["browser"],
    "country": lambda row: row["country"] or "",
    "referrer": lambda row: row["referrer_site"] or "",
    "referrer_host": lambda row: row["referrer_host"] or "",
    "source": lambda row: "scan" if row["via_qr"] else "click",
}
# The same, in SQL over the clicks table (for the rebuild).
SQL_VALUES = {
    "device": "device",
    "os": "os",
    "browser": "browser",
    "country": "coalesce(country, '')",
    "referrer": "coalesce(referrer_site, '')",
    "referrer_host": "coalesce(referrer_host, '')",
    "source": "CASE WHEN via_qr THEN 'scan' ELSE 'click' END",
}


class LinkLabels:
    """The campaign of each link and the channel of each touchpoint of a batch, read afresh for
    every batch: both can be edited while a worker runs."""

    def __init__(self, campaigns: dict[int, str], channels: dict[int, str]) -> None:
        self.campaigns = campaigns  # of the links that exist ("" for none)
        self.channels = channels

    @classmethod
    def read(
        cls, session: Session, link_ids: Collection[int], touchpoint_ids: Collection[int]
    ) -> LinkLabels:
        campaigns = {
            link_id: campaign or ""
            for link_id, campaign in session.execute(
                select(Link.id, Link.campaign).where(Link.id.in_(link_ids))
            )
        }
        channels = {
            touchpoint_id: channel
            for touchpoint_id, channel in session.execute(
                select(Touchpoint.id, Touchpoint.channel).where(Touchpoint.id.in_(touchpoint_ids))
            )
        }
        return cls(campaigns, channels)


def add_dimension_counts(
    session: Session,
    rows: list[dict[str, Any]],
    first_visits: Collection[str],
    labels: LinkLabels,
    zone: tzinfo,
) -> None:
    """Add the stored click `rows` to `dimension_stats`; `first_visits` are the click ids that
    were a visitor's first human click of the day on their link."""
    totals: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, 0, 0, 0, 0, None, None])
    days: dict[int, Any] = {}
    for row in rows:
        at: datetime = row["occurred_at"]
        hour = int(at.timestamp()) // 3600
        day = days.get(hour)
        if day is None:
            day = days[hour] = at.astimezone(zone).date()
        # Counted as the rollups count: a bot first, then a proofing scan, then a person.
        bot, test = row["is_bot"], not row["is_bot"] and row["is_test"]
        human = not bot and not test
        scanner = bot and row["bot_reason"].startswith(SCANNER)
        visit = human and row["click_id"] in first_visits
        scope = (
            day, row["stage_id"], labels.channels.get(row["touchpoint_id"], ""),
            labels.campaigns.get(row["link_id"], ""),
        )
        for dimension, value_of in VALUES.items():
            counts = totals[(dimension, *scope, value_of(row))]
            counts[0] += human
            counts[1] += bot
            counts[2] += scanner
            counts[3] += test
            counts[4] += visit
            if human:
                counts[5] = at if counts[5] is None or at < counts[5] else counts[5]
                counts[6] = at if counts[6] is None or at > counts[6] else counts[6]
    keys = ["dimension", "day", "stage_id", "channel", "campaign", "value"]
    # Sorted, so that two workers updating the same rows take their locks in the same order.
    values = [
        {
            **dict(zip(keys, key, strict=True)),
            **dict(zip(COUNTERS, counts[:5], strict=True)),
            "first_click_at": counts[5],
            "last_click_at": counts[6],
        }
        for key, counts in sorted(totals.items(), key=lambda item: item[0])
    ]
    add_counts(
        session, _table(), values, keys=keys, counters=COUNTERS, latest="last_click_at",
        earliest="first_click_at",
    )


def ensure_dimension_zone(session: Session, zone: ZoneInfo) -> bool:
    """Make `dimension_stats` the days of `zone`; True when they had to be cut again."""
    found = session.get(WorkspaceState, DIMENSION_TIMEZONE)
    if found is not None and found.value == zone.key:
        return False
    rebuild_dimension_stats(session, zone)
    session.merge(WorkspaceState(key=DIMENSION_TIMEZONE, value=zone.key))
    session.flush()
    return True


def rebuild_dimension_stats(session: Session, zone: ZoneInfo) -> None:
    """`dimension_stats` counted again from the raw clicks kept, in the days of `zone` (a
    visitor's first click of the day in time order)."""
    session.execute(delete(DimensionStats))
    if session.get_bind().dialect.name == "postgresql":
        for dimension in VALUES:
            session.execute(text(rebuild_sql("clicks", dimension)), {"zone": zone.key})
        session.flush()
        return
    clicks = session.execute(
        select(Click.__table__).order_by(Click.occurred_at, Click.click_id)
        .execution_options(yield_per=10_000)
    ).mappings()
    rows = [dict(row) for row in clicks]
    if not rows:
        return
    labels = LinkLabels.read(
        session, {r["link_id"] for r in rows}, {r["touchpoint_id"] for r in rows}
    )
    seen: set[tuple[Any, ...]] = set()
    firsts = set()
    for row in rows:
        if row["is_bot"] or row["is_test"] or not row["visitor_id"]:
            continue
        visit = (row["occurred_at"].astimezone(zone).date(), row["link_id"], row["visitor_id"])
        if visit not in seen:
            seen.add(visit)
            firsts.add(row["click_id"])
    add_dimension_counts(session, rows, firsts, labels, zone)
    session.flush()


def rebuild_sql(source: str, dimension: str, zone: str = ":zone") -> str:
    """One dimension's rows of `dimension_stats` from the clicks in `source`, on PostgreSQL, in
    the days of `zone` (an SQL expression: by default the `:zone` parameter)."""
    # The dimension, the source table and the value expressions are our own constants.
    return f"""
INSERT INTO dimension_stats (dimension, day, stage_id, channel, campaign, value, clicks,
                             bot_clicks, scanner_clicks, test_clicks, visitors, first_click_at,
                             last_click_at)
SELECT '{dimension}', day, c.stage_id, coalesce(t.channel, ''), coalesce(l.campaign, ''),
       value, count(*) FILTER (WHERE human), count(*) FILTER (WHERE is_bot),
       count(*) FILTER (WHERE is_bot AND left(bot_reason, 8) = 'scanner:'),
       count(*) FILTER (WHERE is_test AND NOT is_bot), count(*) FILTER (WHERE first_visit),
       min(occurred_at) FILTER (WHERE human), max(occurred_at) FILTER (WHERE human)
FROM (SELECT stage_id, link_id, touchpoint_id, is_bot, is_test, bot_reason, occurred_at,
             NOT is_bot AND NOT is_test AS human,
             CAST(occurred_at AT TIME ZONE {zone} AS date) AS day,
             {SQL_VALUES[dimension]} AS value,
             NOT is_bot AND NOT is_test AND visitor_id <> '' AND row_number() OVER (
                 PARTITION BY CAST(occurred_at AT TIME ZONE {zone} AS date), link_id, visitor_id,
                              is_bot OR is_test
                 ORDER BY occurred_at, click_id) = 1 AS first_visit
      FROM {source}) AS c
LEFT JOIN links AS l ON l.id = c.link_id
LEFT JOIN touchpoints AS t ON t.id = c.touchpoint_id
GROUP BY 2, 3, 4, 5, 6
ORDER BY 2, 3, 4, 5, 6
"""  # noqa: S608


def _table() -> Table:
    table: Table = DimensionStats.__table__  # type: ignore[assignment]
    return table
