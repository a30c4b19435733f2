"""The worker's alert thread: evaluates the rules every minute and sends the queued e-mails
every few seconds, beside the ingest, so that neither a slow SMTP server nor a long evaluation
holds up clicks."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, tzinfo

from sqlalchemy.orm import Session, sessionmaker

from analytics.alerts import Evaluation, Notify, evaluate_alerts
from analytics.journeys import RetentionClock
from analytics.mail import send_due_mail
from shortener.db import utcnow
from shortener.unit_of_work import transaction

log = logging.getLogger(__name__)

EVALUATE_EVERY = 60.0  # seconds
MAIL_EVERY = 5.0


def check_alerts(sessions: sessionmaker[Session], *, zone: tzinfo, notify: Notify,
                 now: datetime | None = None) -> Evaluation:
    """One evaluation in a transaction of its own."""
    with transaction(sessions) as session:
        return evaluate_alerts(session, now=now or utcnow(), zone=zone, notify=notify)


class AlertWatch:
    """Evaluates every EVALUATE_EVERY seconds and sends mail every MAIL_EVERY, in a thread."""

    def __init__(self, sessions: sessionmaker[Session], *, zone: tzinfo, notify: Notify,
                 every: float = EVALUATE_EVERY, mail_every: float = MAIL_EVERY) -> None:
        self._sessions, self._zone, self._notify = sessions, zone, notify
        self._clock = RetentionClock(every)
        self._mail_every = mail_every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)

    def start(self) -> AlertWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def round(self, *, force: bool = False) -> None:
        """Evaluate if due (or `force`d), then send the mail due (each failure logged, tried
        again later)."""
        if self._clock.due() or force:
            try:
                found = check_alerts(self._sessions, zone=self._zone, notify=self._notify)
                if found.raised or found.resolved:
                    log.info("alerts: %d raised, %d resolved", found.raised, found.resolved)
            except Exception:
                log.exception("evaluating alerts failed; trying again in a minute")
        if self._notify.mail is not None:
            try:
                send_due_mail(self._sessions, self._notify.mail)
            except Exception:
                log.exception("sending alert mail failed; it stays queued")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.round()
            self._stop.wait(self._mail_every)
