"""Raw clicks and the rollups that reports read instead of them."""

from __future__ import annotations

import enum
from datetime import date, datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    false,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from shortener.db import Base, UTCDateTime, utcnow


class Click(Base):
    """One click as it was at click time; enriched, and never holding the raw IP.

    An append-only table written at ingest speed: keyed by the click id made at redirect time
    (time-ordered, so inserts land at the right edge of the index) with its time, indexed only
    by touchpoint and by link in time order (what a touchpoint's and a link's page read), with
    no foreign keys to check on every row; ingest checks the link exists, and links,
    touchpoints and stages are archived, never deleted. On PostgreSQL it is partitioned by month
    of `occurred_at` (analytics.partitions), and a partitioned table's key must hold the
    partition key: hence (click_id, occurred_at), on SQLite too, so that both backends hold the
    same rule. It makes ingest idempotent all the same: a replayed click carries the id and the
    time it was given at redirect time, both travelling with it in the stream.
    """

    __tablename__ = "clicks"
    # The partitions themselves are made by migration 0020 and the worker, not by the models.
    __table_args__ = (
        Index("ix_clicks_touchpoint_id_occurred_at", "touchpoint_id", "occurred_at"),
        Index("ix_clicks_link_id_occurred_at", "link_id", "occurred_at"),
        {"postgresql_partition_by": "RANGE (occurred_at)"},
    )

    click_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    link_id: Mapped[int] = mapped_column(Integer)
    touchpoint_id: Mapped[int] = mapped_column(Integer)
    stage_id: Mapped[int] = mapped_column(Integer)
    via_qr: Mapped[bool] = mapped_column(Boolean, server_default=false())
    is_bot: Mapped[bool] = mapped_column(Boolean, server_default=false())
    bot_reason: Mapped[str | None] = mapped_column(String(64))
    device: Mapped[str] = mapped_column(String(16))
    os: Mapped[str] = mapped_column(String(64))
    browser: Mapped[str] = mapped_column(String(64))
    country: Mapped[str | None] = mapped_column(String(2))
    referrer_host: Mapped[str | None] = mapped_column(String(255))
    referrer_site: Mapped[str | None] = mapped_column(String(255))  # Facebook, for m.facebook.com
    language: Mapped[str | None] = mapped_column(String(35))
    visitor_id: Mapped[str] = mapped_column(String(32))
    # Before its link's go-live (`Link.starts_at`): in no figure but those asking for tests.
    is_test: Mapped[bool] = mapped_column(Boolean, server_default=false())


class LinkHourlyStats(Base):
    """Per link per hour, keyed also by the touchpoint and stage the clicks had at click time."""

    __tablename__ = "link_hourly_stats"
    __table_args__ = (Index("ix_link_hourly_stats_hour_touchpoint_id", "hour", "touchpoint_id"),)

    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    # No foreign keys: checking three per row would double the cost of each ingest upsert.
    link_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    touchpoint_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stage_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clicks: Mapped[int] = mapped_column(Integer, default=0)  # human clicks, scans included
    scans: Mapped[int] = mapped_column(Integer, default=0)  # human scans
    bot_clicks: Mapped[int] = mapped_column(Integer, default=0)
    # Of the bot clicks, those of mail scanners (bot_reason "scanner:…").
    scanner_clicks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    test_clicks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # proofs
    visitors: Mapped[int] = mapped_column(Integer, default=0)  # first human click of the day
    first_click_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # earliest human click
    last_click_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # latest human click


class Period(enum.StrEnum):
    """The calendar periods of `touchpoint_stats`: days, weeks from Monday and months of the
    workspace's time zone (TOUCHLINK_TIMEZONE)."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    def start_of(self, day: date) -> date:
        """The first day of the period that holds `day`."""
        if self is Period.DAY:
            return day
        if self is Period.WEEK:
            return day - timedelta(days=day.weekday())
        return day.replace(day=1)

    def after(self, start: date) -> date:
        """The first day of the next period."""
        if self is Period.DAY:
            return start + timedelta(days=1)
        if self is Period.WEEK:
            return start + timedelta(days=7)
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


class TouchpointStats(Base):
    """Per touchpoint and stage (as at click time) per day, week and month: what long reports read.

    The sums of `link_hourly_stats` over the period, kept by the same ingest transaction; a report
    over 90 days reads a few rows per touchpoint instead of one per link and hour.
    """

    __tablename__ = "touchpoint_stats"
    __table_args__ = (
        CheckConstraint("period IN ('day', 'week', 'month')", name="period_known"),
        # One touchpoint's days (a chart's top lines, its own page) without the others'.
        Index("ix_touchpoint_stats_touchpoint_id", "touchpoint_id", "period", "period_start"),
    )

    period: Mapped[str] = mapped_column(String(5), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    stage_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    touchpoint_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clicks: Mapped[int] = mapped_column(Integer, default=0)  # human clicks, scans included
    scans: Mapped[int] = mapped_column(Integer, default=0)
    bot_clicks: Mapped[int] = mapped_column(Integer, default=0)
    scanner_clicks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    test_clicks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    visitors: Mapped[int] = mapped_column(Integer, default=0)
    last_click_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DimensionStats(Base):
    """Clicks per day by one dimension's value (device, OS, browser, country, referrer site and
    host, scan or click): what the breakdowns read.

    Keyed also by the stage, channel and campaign the click's link had at click time ("" for no
    campaign), so the dashboard's filters need no raw click; kept by the ingest transaction, in
    days of the workspace's time zone (`workspace_state.dimension_timezone`). A visitor counts
    where their first human click of the day on a link is, as in `link_hourly_stats`.
    """

    __tablename__ = "dimension_stats"

    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    stage_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    campaign: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)  # "" when the click had none
    clicks: Mapped[int] = mapped_column(Integer, default=0)  # human clicks, scans included
    bot_clicks: Mapped[int] = mapped_column(Integer, default=0)
    scanner_clicks: Mapped[int] = mapped_column(Integer, default=0)  # of the bot clicks
    test_clicks: Mapped[int] = mapped_column(Integer, default=0)
    visitors: Mapped[int] = mapped_column(Integer, default=0)
    first_click_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # earliest human click
    last_click_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # latest human click


class DailyVisitor(Base):
    """Which visitors clicked a link on a day: tells the ingest whether a visitor is new."""

    __tablename__ = "daily_visitors"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    link_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visitor_id: Mapped[str] = mapped_column(String(32), primary_key=True)


class VisitorSalt(Base):
    """The day's secret for visitor ids; rows older than 48 hours are deleted."""

    __tablename__ = "visitor_salts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))


class WorkspaceState(Base):
    """Facts about the stored data that settings must agree with: `rollup_timezone`, the zone
    whose days, weeks and months `touchpoint_stats` and `daily_visitors` were cut in."""

    __tablename__ = "workspace_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


# Journey ids are 64-bit on PostgreSQL; SQLite's rowid alias must be spelled INTEGER.
JourneyId = BigInteger().with_variant(Integer(), "sqlite")


class Journey(Base):
    """One customer's browser (or, cookieless, an IP and user agent), as far as it is followed:
    `key` is a keyed hash, under the installation's secret, of its journey id, never the id."""

    __tablename__ = "journeys"

    id: Mapped[int] = mapped_column(JourneyId, primary_key=True)
    key: Mapped[str] = mapped_column(String(32), unique=True)
    # Both indexed: the journey reports find the journeys crossing a window's edges by them.
    first_touch_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    last_touch_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # Human clicks seen while it is followed: until a batch takes it to
    # analytics.journeys.MAX_TOUCHES touches, all of which are kept, and no later.
    touches: Mapped[int] = mapped_column(Integer, default=0)
    # Its summary so far (analytics.journey_summary.Progress), which later touches extend;
    # none for a journey of one touch, whose touch is its summary.
    progress: Mapped[str | None] = mapped_column(Text)


class JourneyTouch(Base):
    """A human click of a journey, kept in the same ingest transaction as the click itself and
    keyed by its click id, so that a replayed batch adds no touch twice."""

    __tablename__ = "journey_touches"
    __table_args__ = (Index("ix_journey_touches_touched_at", "touched_at"),)

    click_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    journey_id: Mapped[int] = mapped_column(JourneyId, index=True)
    touched_at: Mapped[datetime] = mapped_column(UTCDateTime)
    touchpoint_id: Mapped[int] = mapped_column(Integer)
    stage_id: Mapped[int] = mapped_column(Integer)
    link_id: Mapped[int] = mapped_column(Integer)
    via_qr: Mapped[bool] = mapped_column(Boolean, server_default=false())


class JourneySalt(Base):
    """The secret of a TOUCHLINK_JOURNEY_DAYS-long period for cookieless journey ids; deleted a
    period after its end, so ids cannot be linked across periods."""

    __tablename__ = "journey_salts"

    period: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))


# --- journey rollups (analytics.journey_rollups) -------------------------------------------------
# Journeys counted by the local days of their first and last touch (`first_day`, `last_day`): a
# window whose days hold both holds the whole journey, so these rows add up to its reports.


class JourneyFunnelDays(Base):
    """Journeys by how far they went: `depth` stages in order (closed funnel), the stages
    `reached` and those `continued` from (open funnel, one bit per stage place)."""

    __tablename__ = "journey_funnel_days"

    first_day: Mapped[date] = mapped_column(Date, primary_key=True)
    last_day: Mapped[date] = mapped_column(Date, primary_key=True)
    depth: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    reached: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    continued: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    journeys: Mapped[int] = mapped_column(Integer, default=0)


class JourneyPath(Base):
    """A sequence of touchpoints journeys followed, and how many of the kept journeys follow it
    (no window holds more: the paths report reads the most followed first)."""

    __tablename__ = "journey_paths"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(40), unique=True)  # a digest of `touchpoints`
    touchpoints: Mapped[str] = mapped_column(Text)  # their ids in time order, comma-separated
    journeys: Mapped[int] = mapped_column(Integer, default=0, index=True)


class JourneyPathDays(Base):
    __tablename__ = "journey_path_days"

    path_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    first_day: Mapped[date] = mapped_column(Date, primary_key=True)
    last_day: Mapped[date] = mapped_column(Date, primary_key=True)
    journeys: Mapped[int] = mapped_column(Integer, default=0)


class JourneyStopDays(Base):
    """Journeys that touched a touchpoint, and those of them that `moved_on` to a later stage."""

    __tablename__ = "journey_stop_days"

    first_day: Mapped[date] = mapped_column(Date, primary_key=True)
    last_day: Mapped[date] = mapped_column(Date, primary_key=True)
    touchpoint_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    journeys: Mapped[int] = mapped_column(Integer, default=0)
    moved_on: Mapped[int] = mapped_column(Integer, default=0)


class JourneyNextDays(Base):
    """Journeys that touched a touchpoint by the next other touchpoint they touched (0: none)."""

    __tablename__ = "journey_next_days"

    touchpoint_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    first_day: Mapped[date] = mapped_column(Date, primary_key=True)
    last_day: Mapped[date] = mapped_column(Date, primary_key=True)
    next_touchpoint_id: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=False
    )
    journeys: Mapped[int] = mapped_column(Integer, default=0)


# --- outcomes (analytics.outcomes) ---------------------------------------------------------------


class Conversion(Base):
    """What came of a click, as a shop reported it: a signup, a lead, a sale (with its value), or
    a sale that quoted a touchpoint's coupon. Keyed by the id made when the shop's call was
    accepted, so a replayed batch stores it once; `external_id` keeps a retried webhook from
    counting one sale twice."""

    __tablename__ = "conversions"
    __table_args__ = (
        Index("ix_conversions_touchpoint_id_occurred_at", "touchpoint_id", "occurred_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    event: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # Millionths of the currency's unit: exact sums on every backend (SQLite has no decimal).
    value_micros: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    click_id: Mapped[str | None] = mapped_column(String(32), index=True)  # the converting click
    clicked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    link_id: Mapped[int | None] = mapped_column(Integer)  # None for a coupon
    coupon: Mapped[str | None] = mapped_column(String(40))
    touchpoint_id: Mapped[int] = mapped_column(Integer)  # the link's, or the coupon's
    stage_id: Mapped[int | None] = mapped_column(Integer)  # the link's; None for a coupon


class FeedbackAnswer(Base):
    """One customer's answer to a link's one-question survey. `once` is a keyed hash of the link
    and the journey (or, without one, the day's visitor), unique: one answer each."""

    __tablename__ = "feedback_answers"
    __table_args__ = (
        Index("ix_feedback_answers_touchpoint_id_answered_at", "touchpoint_id", "answered_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    once: Mapped[str] = mapped_column(String(32), unique=True)
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    link_id: Mapped[int] = mapped_column(Integer)
    touchpoint_id: Mapped[int] = mapped_column(Integer)
    stage_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))  # nps, csat or ces
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)


class SharedReport(Base):
    """A dashboard view for people without an account (analytics.shares): its window and filters
    are fixed here; its link carries only the id and a signature of (id, nonce) under the
    installation's secret, so a link cannot be guessed, altered, or outlive its row."""

    __tablename__ = "shared_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    view: Mapped[str] = mapped_column(Text)  # the view's query string: window and filters
    nonce: Mapped[str] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(320))  # the admin's e-mail, as it was
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# --- alerts (analytics.alerts) -------------------------------------------------------------------


class AlertRule(Base):
    """What to watch: a kind of alert (silent, drop, bot_spike) for one touchpoint, or for every
    touchpoint when `touchpoint_id` is None, with its parameters (JSON, defaults filled in)."""

    __tablename__ = "alert_rules"
    __table_args__ = (
        CheckConstraint("kind IN ('silent', 'drop', 'bot_spike')", name="kind_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    touchpoint_id: Mapped[int | None] = mapped_column(ForeignKey("touchpoints.id"))
    parameters: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )


class Alert(Base):
    """An alert raised once and resolved once, with the figures that explain it.

    `open_key` names what it is about (`rule:3:touchpoint:7`, `webhook:5`) while it is open and
    is emptied when it is resolved: unique, so that one thing has one open alert at a time,
    even with two workers evaluating at once (NULLs never collide, on SQLite and PostgreSQL).
    `rule_id` has no foreign key: a deleted rule's alerts stay in the history.
    """

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_raised_at", "raised_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))  # a rule's kind, or webhook_disabled
    rule_id: Mapped[int | None] = mapped_column(Integer, index=True)
    touchpoint_id: Mapped[int | None] = mapped_column(Integer)
    webhook_id: Mapped[int | None] = mapped_column(Integer)
    open_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The period the test looked at, and what it found there.
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    observed: Mapped[int | None] = mapped_column(Integer)
    expected: Mapped[float | None] = mapped_column(Float)
    probability: Mapped[float | None] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text)
    resolution: Mapped[str | None] = mapped_column(Text)  # why it was resolved


class OutboxMail(Base):
    """An e-mail waiting to be sent by the worker (analytics.mail), written in the transaction
    that made it; kept, and tried again later, for as long as SMTP fails."""

    __tablename__ = "outbox_mails"
    __table_args__ = (Index("ix_outbox_mails_due", "sent_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recipients: Mapped[str] = mapped_column(Text)  # comma-separated
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)  # the same, as HTML, when it has one
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
