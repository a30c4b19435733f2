"""E-mail over SMTP, from an outbox the worker empties, never from a request.

A mail is queued (`queue_mail`) in the transaction that has something to say, so it is sent
only if that was stored; the worker claims due mails under a lease (two workers never send one
twice at once), sends each, and marks it sent. When SMTP fails the mail stays queued and is
tried again 30 s, 1 min, 2 min, … (at most an hour) later, for as long as it takes: an alert
is never lost to an SMTP outage. Without TOUCHLINK_SMTP_HOST nothing is queued.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from analytics.models import OutboxMail
from shortener.db import utcnow
from shortener.models import Role, User
from shortener.settings import Settings
from shortener.unit_of_work import transaction

log = logging.getLogger(__name__)

ROUND = 20  # mails claimed at once
LEASE = timedelta(minutes=5)
TIMEOUT = 20.0  # seconds for each SMTP exchange
FIRST_RETRY = 30.0  # seconds; doubled at each failure
LONGEST_WAIT = 3600.0


@dataclass(frozen=True, slots=True)
class MailSettings:
    """How to reach the SMTP server, and who gets alerts by default."""

    host: str
    port: int
    sender: str
    user: str | None = None
    password: str | None = None
    starttls: bool = True
    recipients: tuple[str, ...] = ()  # TOUCHLINK_ALERT_EMAILS; none: the admin users

    @classmethod
    def of(cls, settings: Settings) -> MailSettings | None:
        """The settings' SMTP server, or None when TOUCHLINK_SMTP_HOST is not set."""
        if not settings.smtp_host or not settings.smtp_from:
            return None
        return cls(
            settings.smtp_host, settings.smtp_port, settings.smtp_from, settings.smtp_user,
            settings.smtp_password, settings.smtp_starttls, settings.alert_emails,
        )


def alert_recipients(session: Session, mail: MailSettings) -> list[str]:
    """TOUCHLINK_ALERT_EMAILS, or else every admin user's address."""
    if mail.recipients:
        return list(mail.recipients)
    return list(session.scalars(select(User.email).where(User.role == Role.ADMIN.value)
                                .order_by(User.email)))


def queue_mail(session: Session, recipients: list[str], subject: str, body: str, *,
               now: datetime, html: str | None = None) -> OutboxMail | None:
    """Queue a mail (plain text, and `html` as its alternative when given) in the caller's
    transaction; None when there is nobody to send it to."""
    if not recipients:
        return None
    mail = OutboxMail(recipients=",".join(recipients), subject=subject[:255], body=body,
                      html=html, created_at=now, next_attempt_at=now)
    session.add(mail)
    return mail


def send_due_mail(sessions: sessionmaker[Session], mail: MailSettings, *,
                  now: datetime | None = None) -> int:
    """Send the mails due now; how many were sent (failures stay queued)."""
    now = now or utcnow()
    claimed = _claim(sessions, now)
    sent = 0
    for mail_id, recipients, subject, body, html in claimed:
        error = None
        try:
            send_mail(mail, recipients.split(","), subject, body, html=html)
        except (OSError, smtplib.SMTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("sending mail %d failed (%s); it stays queued", mail_id, error)
        _record(sessions, mail_id, error, now)
        sent += error is None
    return sent


def send_mail(mail: MailSettings, recipients: list[str], subject: str, body: str, *,
              html: str | None = None) -> None:
    """One mail over SMTP, plain text (with `html` as its alternative); STARTTLS unless turned
    off, then login when a user is set. Raises OSError or SMTPException when the server cannot
    take it."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = mail.sender, ", ".join(recipients), subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=mail.sender.rpartition("@")[2])
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    with smtplib.SMTP(mail.host, mail.port, timeout=TIMEOUT) as smtp:
        if mail.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if mail.user and mail.password is not None:
            smtp.login(mail.user, mail.password)
        smtp.send_message(message, from_addr=mail.sender, to_addrs=recipients)


def _claim(sessions: sessionmaker[Session], now: datetime
           ) -> list[tuple[int, str, str, str, str | None]]:
    with transaction(sessions) as session:
        due = session.scalars(
            select(OutboxMail)
            .where(OutboxMail.sent_at.is_(None), OutboxMail.next_attempt_at <= now)
            .order_by(OutboxMail.id)
            .limit(ROUND)
            .with_for_update(skip_locked=True)
        ).all()
        for mail in due:
            mail.next_attempt_at = now + LEASE
        return [(m.id, m.recipients, m.subject, m.body, m.html) for m in due]


def _record(sessions: sessionmaker[Session], mail_id: int, error: str | None, now: datetime
            ) -> None:
    with transaction(sessions) as session:
        mail = session.get(OutboxMail, mail_id)
        if mail is None:
            return
        mail.attempts += 1
        if error is None:
            mail.sent_at, mail.last_error = now, None
            return
        mail.last_error = error[:500]
        wait = min(FIRST_RETRY * 2 ** (mail.attempts - 1), LONGEST_WAIT)
        mail.next_attempt_at = now + timedelta(seconds=wait)
