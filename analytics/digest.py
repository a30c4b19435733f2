"""The weekly digest: an e-mail, to each user who asked for it, of the last seven whole days
against the seven before. The most and least engaged touchpoints, the biggest movers, and the
alerts still open.

A mover is a touchpoint whose human clicks changed the most. It is listed only where both weeks
have enough human clicks to compare (the reports' small-sample rule,
`engagement.touchpoint_report`'s `comparable`): a touchpoint going from 2 clicks to 5 is not
"+150 %".

`touchlink digest --send` (weekly, from cron) queues one mail per user who opted in and has
not had one in the last six days, so a second run in the same week sends nothing twice. The
worker sends queued mail, and retries it while SMTP is down.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics.alerts import list_alerts
from analytics.dashboard import window_label
from analytics.mail import queue_mail
from analytics.models import Alert
from analytics.reports import engagement
from analytics.reports.engagement import TouchpointRow
from analytics.reports.query import MAX_LIMIT, ReportQuery
from shortener.models import Touchpoint, User

LISTED = 5  # touchpoints in each of the most, least and movers lists
DAYS = 7
RESENT_AFTER = timedelta(days=6)  # a user gets at most one digest in this long


@dataclass(frozen=True, slots=True)
class Digest:
    subject: str
    window: str  # the seven days, as the dashboard names a window
    most: list[TouchpointRow]
    least: list[TouchpointRow]
    movers: list[TouchpointRow]  # biggest changes first, comparable weeks only
    alerts: list[tuple[Alert, Touchpoint | None]]
    human_clicks: int
    previous_human_clicks: int
    dashboard_url: str

    def text(self) -> str:
        return _render("digest.txt", self)

    def html(self) -> str:
        return _render("digest.html", self)


def build_digest(session: Session, *, now: datetime, zone: ZoneInfo, base_url: str) -> Digest:
    """The digest of the seven whole local days before `now`'s day."""
    today = now.astimezone(zone).date()
    first, last = today - timedelta(days=DAYS), today - timedelta(days=1)
    query = ReportQuery.from_args({"from": first.isoformat(), "to": last.isoformat()},
                                  now=now, zone=zone)
    everyone = engagement.touchpoint_report(session, query, limit=MAX_LIMIT).rows
    silent = engagement.touchpoint_report(session, query, order="least", limit=LISTED).rows
    active = [row for row in everyone if row.human_clicks]
    movers = sorted(
        (row for row in everyone if row.comparable and row.change),
        key=lambda row: (-abs(row.change or 0.0), row.touchpoint.key),
    )
    window = window_label(query.start, query.requested_end or query.end, query)
    return Digest(
        subject=f"[Touchlink] Your week: {window}",
        window=window,
        most=active[:LISTED],
        least=list(silent),
        movers=movers[:LISTED],
        alerts=list_alerts(session, state="open", limit=20),
        human_clicks=sum(row.human_clicks for row in everyone),
        previous_human_clicks=sum(row.previous_human_clicks for row in everyone),
        dashboard_url=f"{base_url.rstrip('/')}/dashboard?range=7d",
    )


def subscribers(session: Session, *, now: datetime, force: bool = False) -> list[User]:
    """The users who asked for the digest and have not had one in the last six days (every
    one of them with `force`)."""
    query = select(User).where(User.weekly_digest).order_by(User.email)
    if not force:
        query = query.where(
            (User.digest_sent_at.is_(None)) | (User.digest_sent_at <= now - RESENT_AFTER)
        )
    return list(session.scalars(query))


def queue_digests(session: Session, digest: Digest, *, now: datetime, force: bool = False
                  ) -> list[str]:
    """Queue the digest for each subscriber due one; their addresses."""
    text, html = digest.text(), digest.html()
    sent = []
    for user in subscribers(session, now=now, force=force):
        queue_mail(session, [user.email], digest.subject, text, html=html, now=now)
        user.digest_sent_at = now
        sent.append(user.email)
    return sent


def _render(name: str, digest: Digest) -> str:
    # The app's templates and filters, without the pages' context (no request, no user).
    return current_app.jinja_env.get_template(name).render(digest=digest)
