"""Stages, touchpoints, links and API keys."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from shortener.db import Base, UTCDateTime, utcnow
from shortener.slugs import slug_key


class Channel(enum.StrEnum):
    DIGITAL = "digital"
    PHYSICAL = "physical"
    HUMAN = "human"
    HYBRID = "hybrid"


class Role(enum.StrEnum):
    # A tracker key only posts outcomes (a shop's conversions); people are never trackers.
    TRACKER = "tracker"
    ANALYST = "analyst"
    MARKETER = "marketer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


USER_ROLES = (Role.ANALYST, Role.MARKETER, Role.ADMIN)
REDIRECT_STATUSES = (301, 302, 307, 308)
# One-question surveys a link can ask (`analytics.feedback`): their scales.
SURVEY_SCALES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
SURVEY_THEN = ("thanks", "forward")
# Ids are INTEGER columns; a larger number in a URL or cursor cannot name a row.
MAX_ID = 2**31 - 1


class Stage(Base):
    __tablename__ = "stages"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )


class Touchpoint(Base):
    __tablename__ = "touchpoints"
    __table_args__ = (
        CheckConstraint(
            "channel IN ('digital', 'physical', 'human', 'hybrid')", name="channel_known"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str | None] = mapped_column(String(64))
    archived: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    placements: Mapped[list[Placement]] = relationship(
        back_populates="touchpoint", order_by="Placement.starts_on"
    )
    coupons: Mapped[list[Coupon]] = relationship(
        back_populates="touchpoint", order_by="Coupon.code", cascade="all, delete-orphan"
    )

    @property
    def exposure(self) -> int | None:
        """People reached, all placements together; None when no placement is recorded."""
        return sum(p.count for p in self.placements) if self.placements else None


class Placement(Base):
    """A dated count of people a touchpoint reached: 2,000 flyers handed out in a week, 5,000
    emails sent on a day."""

    __tablename__ = "placements"
    __table_args__ = (
        CheckConstraint("count > 0", name="count_positive"),
        CheckConstraint("ends_on IS NULL OR ends_on >= starts_on", name="ends_after_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    touchpoint_id: Mapped[int] = mapped_column(ForeignKey("touchpoints.id"), index=True)
    count: Mapped[int] = mapped_column(Integer)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )

    touchpoint: Mapped[Touchpoint] = relationship(back_populates="placements")


class Domain(Base):
    """A host that serves short links, each only its own (`Link.domain` is its `host`); new links
    go on the default one unless they name another."""

    __tablename__ = "domains"

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(255), unique=True)  # as in short URLs: go.brand.com
    # What a request's Host is matched against: lower case, no trailing dot, no port.
    hostname: Mapped[str] = mapped_column(String(255), unique=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    fallback_url: Mapped[str | None] = mapped_column(Text)  # where unknown slugs go (else 404)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )


class Link(Base):
    __tablename__ = "links"
    __table_args__ = (
        # A code typed in capitals from a poster is the same code: one slug per letter case.
        UniqueConstraint("domain", "slug_key"),
        CheckConstraint("redirect_status IN (301, 302, 307, 308)", name="redirect_status_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    domain: Mapped[str] = mapped_column(String(255))
    slug: Mapped[str] = mapped_column(String(64))  # as its owner wrote it
    slug_key: Mapped[str] = mapped_column(String(64))  # in lower case: what resolution finds
    destination: Mapped[str] = mapped_column(Text)
    # Where an archived or expired link sends its customers instead of the 410 page.
    fallback_url: Mapped[str | None] = mapped_column(Text)
    touchpoint_id: Mapped[int] = mapped_column(ForeignKey("touchpoints.id"), index=True)
    stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id"), index=True)
    campaign: Mapped[str | None] = mapped_column(String(200), index=True)
    title: Mapped[str | None] = mapped_column(String(300))
    redirect_status: Mapped[int] = mapped_column(Integer, default=302, server_default="302")
    utm: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Go-live: clicks before it are proofing scans, flagged `test` (shortener.clicks.RawClick).
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The redirect adds `tl_click` (the click id, signed) for the shop to post conversions with.
    track_conversions: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # A one-question survey shown at the link instead of the redirect (None: a plain link).
    survey_kind: Mapped[str | None] = mapped_column(String(8))
    survey_question: Mapped[str | None] = mapped_column(String(300))
    survey_then: Mapped[str | None] = mapped_column(String(8))  # thanks or forward
    archived: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now(), onupdate=utcnow
    )

    touchpoint: Mapped[Touchpoint] = relationship(lazy="joined", innerjoin=True)
    stage: Mapped[Stage] = relationship(lazy="joined", innerjoin=True)

    @validates("slug")
    def _keep_slug_key(self, _: str, slug: str) -> str:
        self.slug_key = slug_key(slug)
        return slug


class SlugHistory(Base):
    """A slug a link gave up: codes already printed with it still lead to the link, and no other
    link may take it."""

    __tablename__ = "slug_history"
    __table_args__ = (UniqueConstraint("domain", "slug_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    domain: Mapped[str] = mapped_column(String(255))
    slug: Mapped[str] = mapped_column(String(64))
    slug_key: Mapped[str] = mapped_column(String(64))
    link_id: Mapped[int] = mapped_column(ForeignKey("links.id"), index=True)
    retired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Coupon(Base):
    """A code printed on a touchpoint (a flyer's `LYON10`): a sale that quotes it is the
    touchpoint's, with no click at all. Stored upper-cased; unique across touchpoints."""

    __tablename__ = "coupons"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    touchpoint_id: Mapped[int] = mapped_column(ForeignKey("touchpoints.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )

    touchpoint: Mapped[Touchpoint] = relationship(back_populates="coupons")


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint(
            "role IN ('admin', 'marketer', 'analyst', 'tracker')", name="role_known"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class User(Base):
    """A person who signs in to the pages; the API takes keys only."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'marketer', 'analyst')", name="role_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lowercased
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )
    last_signed_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The weekly digest e-mail (analytics.digest), for those who ask for it on their account page.
    weekly_digest: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    digest_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UserSession(Base):
    """A signed-in browser: its cookie holds a random token, this row its SHA-256, so that
    signing out ends the session on the server, for every copy of the cookie."""

    __tablename__ = "user_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Hub(Base):
    """A link-in-bio page at a touchpoint (`shortener.hubs`): its own link, whose short URL
    shows the page (a view of it is a click of that link), and ordered buttons."""

    __tablename__ = "hubs"

    id: Mapped[int] = mapped_column(primary_key=True)
    touchpoint_id: Mapped[int] = mapped_column(ForeignKey("touchpoints.id"), index=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("links.id"), unique=True)
    title: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(String(300))
    # The avatar as served: re-encoded, so no metadata of the uploaded file is published.
    avatar: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    avatar_type: Mapped[str | None] = mapped_column(String(16))  # image/png, image/jpeg, …
    avatar_digest: Mapped[str | None] = mapped_column(String(16))  # names it in its URL
    archived: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now(), onupdate=utcnow
    )

    touchpoint: Mapped[Touchpoint] = relationship(lazy="joined", innerjoin=True)
    link: Mapped[Link] = relationship(lazy="joined", innerjoin=True)
    buttons: Mapped[list[HubButton]] = relationship(
        back_populates="hub", order_by="HubButton.position", cascade="all, delete-orphan"
    )


class HubButton(Base):
    """One button of a hub: a label over a tracked link of the hub's touchpoint, whose stage
    and destination are the link's."""

    __tablename__ = "hub_buttons"

    id: Mapped[int] = mapped_column(primary_key=True)
    hub_id: Mapped[int] = mapped_column(ForeignKey("hubs.id"), index=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("links.id"), unique=True)
    position: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )

    hub: Mapped[Hub] = relationship(back_populates="buttons")
    link: Mapped[Link] = relationship(lazy="joined", innerjoin=True)


class Webhook(Base):
    """A receiver of signed event deliveries (shortener.webhooks). Its signing secret is never
    stored: it is derived from the installation's secret and `secret_salt` when needed."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[str] = mapped_column(String(255))  # the event types wanted, comma-separated
    secret_salt: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    failures_in_a_row: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    clicks_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the last clicks packed
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )


class WebhookClicks(Base):
    """Stored clicks waiting to be packed into a `clicks` delivery of one webhook: written in
    the ingest transaction, so that each click is announced once (analytics.webhook_clicks)."""

    __tablename__ = "webhook_clicks"

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), index=True
    )
    clicks: Mapped[int] = mapped_column(Integer)  # how many `payload` holds
    payload: Mapped[str] = mapped_column(Text)  # a JSON array of clicks


class WebhookDelivery(Base):
    """One event for one webhook, written in the transaction that made the event and sent by
    the worker: `pending` until it answers 2xx (`delivered`) or 24 hours of retries pass
    (`failed`)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(40), unique=True)  # the webhook-id header
    event: Mapped[str] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text)  # the JSON body, signed as sent
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
    )
