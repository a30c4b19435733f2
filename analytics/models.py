"""Raw clicks and the rollups that reports read instead of them."""

from __future__ import annotations

import enum
from datetime import date, datetime, timedelta

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    Index,
    Integer,
    LargeBinary,
    String,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from shortener.db import Base, UTCDateTime


class Click(Base):
    """One click as it was at click time; enriched, and never holding the raw IP.

    An append-only table written at ingest speed: keyed by the click id made at redirect time
    (time-ordered, so inserts land at the right edge of the index; unique, which is what makes
    ingest idempotent), with no other index and no foreign keys to check on every row; ingest
    checks the link exists, and links, touchpoints and stages are archived, never deleted.
    """

    __tablename__ = "clicks"

    click_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
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
    )

    period: Mapped[str] = mapped_column(String(5), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    stage_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    touchpoint_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clicks: Mapped[int] = mapped_column(Integer, default=0)  # human clicks, scans included
    scans: Mapped[int] = mapped_column(Integer, default=0)
    bot_clicks: Mapped[int] = mapped_column(Integer, default=0)
    visitors: Mapped[int] = mapped_column(Integer, default=0)
    last_click_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


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
