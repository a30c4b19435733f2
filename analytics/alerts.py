"""Alerts: evaluated by the worker every minute, raised once, resolved once.

Each rule is tested for its touchpoint, or for every live touchpoint (analytics.alert_stats
says how); a finding that fires raises an alert unless one is open for that rule and
touchpoint, and an open alert is resolved when its touchpoint recovers (silent: a human click;
drop and bot_spike: the test no longer fires, with a margin). A raise and a resolve each write
the webhook event (`alert.raised`, `alert.resolved`) and queue the e-mail in the same
transaction.

Evaluating twice changes nothing, and two workers evaluating at once raise and resolve each
alert once: the unique `open_key` stops a second raise, and a resolve updates only a row that
is still open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from analytics import alert_stats
from analytics.alert_figures import BASELINE_DAYS, BASELINE_WEEKS, HOUR, Figures, floor_hour
from analytics.alert_figures import weeks_before as same_hours_before
from analytics.alert_rules import KINDS, list_rules, parameters_of
from analytics.mail import MailSettings, alert_recipients, queue_mail
from analytics.models import Alert, AlertRule
from shortener import schemas
from shortener.models import Touchpoint, Webhook
from shortener.webhooks import emit

WEBHOOK_DISABLED = "webhook_disabled"
MAX_LISTED = 500


@dataclass(frozen=True, slots=True)
class Notify:
    """Where a raise or a resolve is told besides webhooks: e-mail (None: no SMTP), with links
    to the dashboard at `base_url`."""

    mail: MailSettings | None
    base_url: str = ""


@dataclass(slots=True)
class Evaluation:
    raised: int = 0
    resolved: int = 0


@dataclass(frozen=True, slots=True)
class _Test:
    finding: alert_stats.Finding
    start: datetime
    end: datetime
    message: str


def evaluate_alerts(session: Session, *, now: datetime, zone: tzinfo, notify: Notify
                    ) -> Evaluation:
    """Test every rule on its touchpoints at `now`: raise what fires, resolve what recovered;
    flushes, never commits."""
    result = Evaluation()
    live = {tp.id: tp for tp in session.scalars(select(Touchpoint).where(~Touchpoint.archived))}
    is_open = {a.open_key: a for a in session.scalars(select(Alert).where(
        Alert.open_key.is_not(None)))}
    figures = Figures(session, now=now, zone=zone)
    for rule in list_rules(session):
        watched = [rule.touchpoint_id] if rule.touchpoint_id is not None else sorted(live)
        for touchpoint_id in watched:
            touchpoint = live.get(touchpoint_id)
            if touchpoint is None:
                continue
            key = f"rule:{rule.id}:touchpoint:{touchpoint_id}"
            alert = is_open.pop(key, None)
            if alert is None:
                test = run_test(rule, touchpoint, figures)
                if test.finding.fires and raise_alert(
                    session, _alert(rule, touchpoint, key, test, now), touchpoint, notify, now
                ):
                    result.raised += 1
            elif (why := recovered(rule, alert, touchpoint, figures)) and resolve_alert(
                session, alert, why, touchpoint, notify, now
            ):
                result.resolved += 1
    # What is left open lost its rule, its touchpoint, or (a webhook's) its reason.
    webhooks = {w.id: w for w in session.scalars(select(Webhook))}
    for alert in is_open.values():
        why = _moot(alert, webhooks)
        if why and resolve_alert(session, alert, why, _touchpoint(session, alert), notify, now):
            result.resolved += 1
    return result


def run_test(rule: AlertRule, touchpoint: Touchpoint, figures: Figures, *,
             parameters: dict[str, Any] | None = None) -> _Test:
    """The rule's test on the touchpoint at the figures' `now` (with other `parameters`)."""
    p, now, tp = parameters or parameters_of(rule), figures.now, touchpoint.id
    if rule.kind == "silent":
        start = now - timedelta(hours=p["hours"])
        last = figures.last_human_click(start).get(tp)
        finding = alert_stats.silent_test(
            baseline_clicks=figures.baseline("clicks").get(tp, 0),
            baseline_hours=figures.baseline_hours, hours=p["hours"],
            clicks_since=int(last is not None and last > start), probability=p["probability"],
        )
        rate = finding.expected / p["hours"]
        message = (
            f"{touchpoint.name} has had no human click for {p['hours']} hours; at its rate of "
            f"the last {BASELINE_DAYS} days ({rate:.2f} an hour, {finding.expected:.1f} "
            f"expected in {p['hours']} hours) that happens with probability "
            f"{finding.probability:.2g}."
        )
        return _Test(finding, start, now, message)
    if rule.kind == "drop":
        end = floor_hour(now)
        start = end - timedelta(hours=24)
        weeks = [figures.hourly("clicks", a, b).get(tp, 0)
                 for a, b in same_hours_before(start, end, BASELINE_WEEKS, figures.zone)]
        finding = alert_stats.drop_test(
            observed=figures.hourly("clicks", start, end).get(tp, 0), weeks=weeks,
            probability=p["probability"], threshold=p["threshold"],
        )
        message = (
            f"{touchpoint.name} had {finding.observed} human clicks in the last 24 hours, "
            f"against {finding.expected:.1f} expected from the same hours of the "
            f"{BASELINE_WEEKS} weeks before (probability of so few: {finding.probability:.2g})."
        )
        return _Test(finding, start, end, message)
    start = floor_hour(now) - HOUR
    finding = alert_stats.bot_spike_test(
        observed=figures.hourly("bot_clicks", start, floor_hour(now) + HOUR).get(tp, 0),
        baseline_clicks=figures.baseline("bot_clicks").get(tp, 0),
        baseline_hours=figures.baseline_hours, hours=(now - start) / HOUR,
        probability=p["probability"], min_clicks=p["min_clicks"], ratio=p["ratio"],
    )
    message = (
        f"{touchpoint.name} had {finding.observed} bot clicks since {start:%H:%M} UTC, against "
        f"{finding.expected:.1f} expected from the last {BASELINE_DAYS} days (probability of "
        f"so many: {finding.probability:.2g})."
    )
    return _Test(finding, start, now, message)


def recovered(rule: AlertRule, alert: Alert, touchpoint: Touchpoint, figures: Figures
              ) -> str | None:
    """Why the open alert of the rule is over, or None while it holds."""
    if rule.kind == "silent":
        since = alert.window_start or alert.raised_at
        last = figures.last_human_click(since).get(touchpoint.id)
        if last is not None and last > since:
            return f"a human click at {last.isoformat(timespec='seconds')}"
        return None
    if run_test(rule, touchpoint, figures, parameters=recovery_bar(rule)).finding.fires:
        return None
    return "the test no longer fires, with a margin"


def recovery_bar(rule: AlertRule) -> dict[str, Any]:
    """The rule's parameters loosened, for an open alert to be resolved only once the test would
    not fire even so: ten times the probability (at most 0.5), and a fifth more room on the drop's
    threshold and the spike's ratio and minimum. A figure hovering at the bar then stays raised,
    rather than raising and resolving in turn."""
    p = dict(parameters_of(rule))
    p["probability"] = min(p["probability"] * 10, 0.5)
    if rule.kind == "drop":
        p["threshold"] = min(p["threshold"] * 1.2, 1.0)
    elif rule.kind == "bot_spike":
        p["ratio"] = max(p["ratio"] / 1.2, 1.0)
        p["min_clicks"] = max(int(p["min_clicks"] * 0.8), 1)
    return p


def raise_alert(session: Session, alert: Alert, touchpoint: Touchpoint | None, notify: Notify,
                now: datetime) -> bool:
    """Store the alert, its webhook event and its mail; False when one is open already."""
    try:
        with session.begin_nested():
            session.add(alert)
    except IntegrityError:
        return False  # another worker raised it first
    emit(session, "alert.raised", alert_json(alert, touchpoint), now=now)
    _queue(session, alert, touchpoint, notify, now, raised=True)
    return True


def resolve_alert(session: Session, alert: Alert, why: str, touchpoint: Touchpoint | None,
                  notify: Notify, now: datetime) -> bool:
    """Resolve the alert if it is still open (with its event and mail); whether it was."""
    done = session.execute(
        update(Alert).where(Alert.id == alert.id, Alert.resolved_at.is_(None))
        .values(resolved_at=now, open_key=None, resolution=why)
        .execution_options(synchronize_session="fetch")
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        return False
    session.refresh(alert)
    emit(session, "alert.resolved", alert_json(alert, touchpoint), now=now)
    _queue(session, alert, touchpoint, notify, now, raised=False)
    return True


def raise_webhook_disabled(session: Session, webhook: Webhook, notify: Notify, now: datetime
                           ) -> bool:
    """The alert of a webhook disabled after its failures (analytics.webhook_delivery)."""
    alert = Alert(
        kind=WEBHOOK_DISABLED, webhook_id=webhook.id, open_key=f"webhook:{webhook.id}",
        raised_at=now, message=f"The webhook {webhook.id} ({webhook.url}) was "
        f"{webhook.disabled_reason or 'disabled'}.",
    )
    return raise_alert(session, alert, None, notify, now)


def _alert(rule: AlertRule, touchpoint: Touchpoint, key: str, test: _Test, now: datetime
           ) -> Alert:
    f = test.finding
    return Alert(
        kind=rule.kind, rule_id=rule.id, touchpoint_id=touchpoint.id, open_key=key,
        raised_at=now, window_start=test.start, window_end=test.end, observed=f.observed,
        expected=f.expected, probability=f.probability, message=test.message,
    )


def _moot(alert: Alert, webhooks: dict[int, Webhook]) -> str | None:
    if alert.kind == WEBHOOK_DISABLED:
        webhook = webhooks.get(alert.webhook_id or 0)
        if webhook is None:
            return "the webhook was deleted"
        return "the webhook is active again" if webhook.active else None
    if alert.kind in KINDS:
        return "its rule was deleted, or its touchpoint archived"
    return None


def _touchpoint(session: Session, alert: Alert) -> Touchpoint | None:
    return None if alert.touchpoint_id is None else session.get(Touchpoint, alert.touchpoint_id)


def _queue(session: Session, alert: Alert, touchpoint: Touchpoint | None, notify: Notify,
           now: datetime, *, raised: bool) -> None:
    if notify.mail is None:
        return
    about = touchpoint.name if touchpoint is not None else f"webhook {alert.webhook_id}"
    subject = f"[Touchlink] {'Alert' if raised else 'Resolved'}: {alert.kind} on {about}"
    lines = [alert.message, ""]
    if not raised:
        lines = [f"Resolved at {now.isoformat(timespec='seconds')}: {alert.resolution}.", "",
                 "The alert was:", *lines]
    if alert.probability is not None:
        lines.append(f"Observed {alert.observed}, expected {alert.expected:.1f}, probability "
                     f"{alert.probability:.2g}.")
    lines.append(f"Raised at {alert.raised_at.isoformat(timespec='seconds')}.")
    if notify.base_url:
        lines.append(f"Open alerts: {notify.base_url}/dashboard#alerts")
    queue_mail(session, alert_recipients(session, notify.mail), subject, "\n".join(lines),
               now=now)


# --- reading ---------------------------------------------------------------------------------


def list_alerts(session: Session, *, state: str = "all", limit: int = 100
                ) -> list[tuple[Alert, Touchpoint | None]]:
    """Alerts newest first (`state`: open, resolved or all), each with its touchpoint."""
    query = select(Alert, Touchpoint).outerjoin(Touchpoint, Touchpoint.id == Alert.touchpoint_id)
    if state == "open":
        query = query.where(Alert.resolved_at.is_(None))
    elif state == "resolved":
        query = query.where(Alert.resolved_at.is_not(None))
    rows = session.execute(query.order_by(Alert.raised_at.desc(), Alert.id.desc()).limit(limit))
    return [(alert, touchpoint) for alert, touchpoint in rows]


class AlertTouchpoint(TypedDict):
    key: str
    name: str
    channel: str


AlertWindow = TypedDict("AlertWindow", {
    "from": schemas.TimeText | None, "to": schemas.TimeText | None,
})


class AlertOut(TypedDict):
    """An alert of a rule (`rule`, `touchpoint`, and the test's figures) or of a webhook
    disabled (`webhook`)."""

    id: int
    kind: str  # a rule's kind, or webhook_disabled
    rule: int | None
    touchpoint: AlertTouchpoint | None
    webhook: int | None
    open: bool
    raised_at: schemas.TimeText
    resolved_at: schemas.TimeText | None
    window: AlertWindow  # the period the test looked at
    observed: int | None
    expected: float | None
    probability: float | None
    message: str
    resolution: str | None  # why it was resolved


def alert_json(alert: Alert, touchpoint: Touchpoint | None) -> AlertOut:
    def moment(at: datetime | None) -> str | None:
        return None if at is None else at.isoformat()

    return {
        "id": alert.id, "kind": alert.kind, "rule": alert.rule_id,
        "touchpoint": None if touchpoint is None else {
            "key": touchpoint.key, "name": touchpoint.name, "channel": touchpoint.channel},
        "webhook": alert.webhook_id, "open": alert.resolved_at is None,
        "raised_at": alert.raised_at.isoformat(), "resolved_at": moment(alert.resolved_at),
        "window": {"from": moment(alert.window_start), "to": moment(alert.window_end)},
        "observed": alert.observed, "expected": alert.expected,
        "probability": alert.probability, "message": alert.message,
        "resolution": alert.resolution,
    }
