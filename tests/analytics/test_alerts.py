"""Alerts end to end: rules made over the API, clicks stored through the real ingest at times the
test sets, evaluation raising exactly when the Poisson test says so (the test works the
probability out from what it sent) and once, resolving when the touchpoint recovers; the alerts
listed by the API and the dashboard, told to a real local webhook receiver (signature checked)
and a real local SMTP server (aiosmtpd), which may be down for a while without a mail lost."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook as Verifier

from analytics import alert_stats
from analytics.alert_figures import weeks_before
from analytics.alert_watch import check_alerts
from analytics.alerts import Evaluation, Notify, raise_alert
from analytics.mail import MailSettings, send_due_mail
from analytics.models import Alert, OutboxMail
from analytics.runtime import runtime
from analytics.webhook_delivery import DISABLE_AFTER, deliver_due
from shortener.db import make_sessionmaker
from shortener.models import WebhookDelivery
from shortener.settings import Settings, SettingsError
from tests.analytics.conftest import Ingest
from tests.analytics.smtp import Inbox, free_port
from tests.conftest import AuthActions
from tests.faults import wait_until
from tests.user_agents import GOOGLEBOT, IPHONE

Headers = dict[str, str]

# A Wednesday, half past noon (UTC, the tests' workspace zone): the hour 12:00 is under way.
NOW = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)
TODAY = NOW.replace(hour=0, minute=0)
BASELINE_HOURS = 28 * 24


def evaluate(app: Flask, now: datetime) -> Evaluation:
    rt = runtime(app)
    notify = Notify(MailSettings.of(rt.settings), rt.settings.base_url)
    return check_alerts(rt.sessions, zone=rt.settings.zone, notify=notify, now=now)


def add_rule(client: FlaskClient, admin: Headers, kind: str, **parameters: Any) -> Any:
    response = client.post("/api/v1/alerts/rules", headers=admin,
                           json={"kind": kind, "touchpoint": "store-flyer",
                                 "parameters": parameters})
    assert response.status_code == 201, response.json
    return response.json


def listed(client: FlaskClient, analyst: Headers, **args: str) -> list[Any]:
    response = client.get("/api/v1/alerts", headers=analyst, query_string=args)
    assert response.status_code == 200, response.json
    items: list[Any] = response.json["items"]
    return items


def spread(ingest: Ingest, count: int, *, agent: str = IPHONE) -> None:
    """`count` clicks on /spring over the 28 days before today, in the mornings (00:00 to
    11:59), so that none is in the 24 hours before NOW."""
    clicks = [
        ingest.make("spring", TODAY - timedelta(days=28 - i % 28, hours=-(i % 12)),
                    ip=f"198.51.100.{i % 250}", agent=agent)
        for i in range(count)
    ]
    assert ingest.raw(clicks) == count


def poisson_at_most(k: int, mean: float) -> float:
    return sum(math.exp(-mean) * mean**i / math.factorial(i) for i in range(k + 1))


# --- silent -------------------------------------------------------------------------------------


@pytest.mark.parametrize("baseline", [140, 120])
def test_silent_is_raised_exactly_when_no_click_is_unlikely_and_resolved_by_the_next_click(
    app: Flask, client: FlaskClient, admin: Headers, analyst: Headers, link: Any,
    ingest: Ingest, baseline: int,
) -> None:
    add_rule(client, admin, "silent", hours=24)
    spread(ingest, baseline)
    chance = math.exp(-baseline / BASELINE_HOURS * 24)  # P(0 clicks in 24 h)
    fires = chance < 0.01
    assert fires == (baseline == 140)  # 0.0067 and 0.0138

    assert evaluate(app, NOW) == Evaluation(raised=int(fires))
    assert evaluate(app, NOW + timedelta(minutes=1)) == Evaluation()  # raised once
    found = listed(client, analyst)
    if not fires:
        assert found == []
        return
    [alert] = found
    assert (alert["kind"], alert["touchpoint"]["key"], alert["open"]) == (
        "silent", "store-flyer", True)
    assert alert["observed"] == 0
    assert alert["expected"] == pytest.approx(baseline / BASELINE_HOURS * 24)
    assert alert["probability"] == pytest.approx(chance)
    assert alert["window"]["from"] == (NOW - timedelta(hours=24)).isoformat()

    ingest.click("spring", NOW + timedelta(minutes=10), ip="203.0.113.9", agent=IPHONE)
    assert evaluate(app, NOW + timedelta(minutes=11)) == Evaluation(resolved=1)
    assert evaluate(app, NOW + timedelta(minutes=12)) == Evaluation()
    [resolved] = listed(client, analyst)
    assert resolved["id"] == alert["id"] and not resolved["open"]
    assert resolved["resolved_at"] == (NOW + timedelta(minutes=11)).isoformat()
    assert "human click" in resolved["resolution"]
    assert listed(client, analyst, state="open") == []


def test_a_bot_click_does_not_end_a_silence(
    app: Flask, client: FlaskClient, admin: Headers, analyst: Headers, link: Any,
    ingest: Ingest,
) -> None:
    add_rule(client, admin, "silent", hours=24)
    spread(ingest, 200)
    ingest.click("spring", NOW - timedelta(hours=1), ip="66.249.66.1", agent=GOOGLEBOT)
    assert evaluate(app, NOW) == Evaluation(raised=1)
    ingest.click("spring", NOW + timedelta(minutes=5), ip="66.249.66.1", agent=GOOGLEBOT)
    assert evaluate(app, NOW + timedelta(minutes=6)) == Evaluation()
    assert [a["open"] for a in listed(client, analyst)] == [True]


# --- drop ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("observed", [5, 12])
def test_drop_compares_the_last_day_with_the_same_hours_of_four_weeks(
    app: Flask, client: FlaskClient, admin: Headers, analyst: Headers, link: Any,
    ingest: Ingest, observed: int,
) -> None:
    add_rule(client, admin, "drop")
    hour = NOW.replace(minute=0)  # the last 24 h are the whole hours before this one
    weekly = [18, 20, 22, 20]
    clicks = []
    for week, count in enumerate(weekly, start=1):
        start = hour - timedelta(days=7 * week, hours=24)
        clicks += [ingest.make("spring", start + timedelta(minutes=20 * i), ip="203.0.113.5",
                               agent=IPHONE) for i in range(count)]
        # Outside the same hours: counts for no week.
        clicks.append(ingest.make("spring", start - timedelta(minutes=1), ip="203.0.113.5",
                                  agent=IPHONE))
    clicks += [ingest.make("spring", hour - timedelta(hours=23, minutes=-i), ip="203.0.113.6",
                           agent=IPHONE) for i in range(observed)]
    clicks.append(ingest.make("spring", hour + timedelta(minutes=10), ip="203.0.113.6",
                              agent=IPHONE))  # the hour under way is not in the last 24 h
    ingest.raw(clicks)
    expected = sum(weekly) / 4
    chance = poisson_at_most(observed, expected)
    fires = chance < 0.01 and observed <= 0.5 * expected
    assert fires == (observed == 5)  # 7.2e-5; 12 is 0.039

    assert evaluate(app, NOW) == Evaluation(raised=int(fires))
    assert evaluate(app, NOW) == Evaluation()
    if not fires:
        assert listed(client, analyst) == []
        return
    [alert] = listed(client, analyst)
    assert (alert["kind"], alert["observed"]) == ("drop", observed)
    assert alert["expected"] == pytest.approx(expected)
    assert alert["probability"] == pytest.approx(chance)
    assert alert["window"] == {"from": (hour - timedelta(hours=24)).isoformat(),
                               "to": hour.isoformat()}

    # Some clicks come back: the test no longer fires, but the alert is resolved only past a
    # margin (ten times the probability, a fifth more room on the threshold).
    ingest.click("spring", hour - timedelta(hours=2), ip="203.0.113.7", agent=IPHONE, times=6)
    hovering = observed + 6
    assert not (poisson_at_most(hovering, expected) < 0.01 and hovering <= 0.5 * expected)
    assert poisson_at_most(hovering, expected) < 0.1 and hovering <= 0.6 * expected
    assert evaluate(app, NOW + timedelta(minutes=1)) == Evaluation()
    assert [a["open"] for a in listed(client, analyst)] == [True]
    # The clicks come back: past the margin, the alert is resolved.
    ingest.click("spring", hour - timedelta(hours=2), ip="203.0.113.7", agent=IPHONE, times=4)
    assert poisson_at_most(hovering + 4, expected) >= 0.1
    assert evaluate(app, NOW + timedelta(minutes=2)) == Evaluation(resolved=1)
    assert [a["open"] for a in listed(client, analyst)] == [False]


# --- bot spike ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bots", [25, 15])
def test_bot_spike_needs_a_rare_count_and_a_minimum(
    app: Flask, client: FlaskClient, admin: Headers, analyst: Headers, link: Any,
    ingest: Ingest, bots: int,
) -> None:
    add_rule(client, admin, "bot_spike")
    spread(ingest, 28, agent=GOOGLEBOT)  # one bot click a day
    ingest.click("spring", NOW - timedelta(minutes=5), ip="66.249.66.1", agent=GOOGLEBOT,
                 times=bots)
    # The window: the hour before the one under way, and that one so far (1.5 hours).
    expected = 28 / BASELINE_HOURS * 1.5
    chance = sum(math.exp(-expected) * expected**i / math.factorial(i)
                 for i in range(bots, bots + 100))  # P(X >= bots)
    assert chance < 1e-20  # rare either way: the minimum of 20 decides
    fires = bots >= 20

    assert evaluate(app, NOW) == Evaluation(raised=int(fires))
    assert evaluate(app, NOW) == Evaluation()
    if not fires:
        assert listed(client, analyst) == []
        return
    [alert] = listed(client, analyst)
    assert (alert["kind"], alert["observed"]) == ("bot_spike", bots)
    assert alert["expected"] == pytest.approx(expected)
    assert "25 bot clicks" in alert["message"]
    # Two hours on, the spike has left the window.
    assert evaluate(app, NOW + timedelta(hours=2)) == Evaluation(resolved=1)


# --- one open alert at a time ---------------------------------------------------------------


def test_a_second_raise_of_an_open_alert_is_refused_by_the_database(
    app: Flask, client: FlaskClient, admin: Headers, link: Any, ingest: Ingest,
) -> None:
    add_rule(client, admin, "silent", hours=24)
    spread(ingest, 200)
    assert evaluate(app, NOW) == Evaluation(raised=1)
    rt = runtime(app)
    with rt.sessions() as session:
        first = session.scalars(select(Alert)).one()
        twin = Alert(kind="silent", rule_id=first.rule_id, touchpoint_id=first.touchpoint_id,
                     open_key=first.open_key, raised_at=NOW, message="again")
        # As a second worker evaluating at the same time would try.
        assert not raise_alert(session, twin, None, Notify(None), NOW)
        assert session.scalar(select(func.count()).select_from(Alert)) == 1


# --- the API ------------------------------------------------------------------------------------


def test_rules_are_made_read_and_deleted_over_the_api(
    app: Flask, client: FlaskClient, admin: Headers, analyst: Headers, marketer: Headers,
    link: Any, ingest: Ingest,
) -> None:
    made = client.post("/api/v1/alerts/rules", headers=admin, json={"kind": "silent"}).json
    assert (made["kind"], made["touchpoint"]) == ("silent", None)  # every touchpoint
    assert made["parameters"] == {"hours": 6, "probability": 0.01}
    drop = add_rule(client, admin, "drop", threshold=0.3)
    assert drop["parameters"] == {"threshold": 0.3, "probability": 0.01}
    assert drop["touchpoint"] == "store-flyer"
    spike = client.post("/api/v1/alerts/rules", headers=admin, json={"kind": "bot_spike"}).json
    assert spike["parameters"] == {"min_clicks": 20, "ratio": 3.0, "probability": 0.01}

    rules = client.get("/api/v1/alerts/rules", headers=analyst).json["items"]
    assert [r["id"] for r in rules] == [made["id"], drop["id"], spike["id"]]

    again = client.post("/api/v1/alerts/rules", headers=admin, json={"kind": "silent"})
    assert again.status_code == 409 and again.json["error"]["code"] == "rule_exists"
    for who, status in ((analyst, 403), (marketer, 403), ({}, 401)):
        assert client.post("/api/v1/alerts/rules", headers=who,
                           json={"kind": "drop"}).status_code == status
        assert client.delete(f"/api/v1/alerts/rules/{made['id']}",
                             headers=who).status_code == status
    assert client.get("/api/v1/alerts", headers=marketer).status_code == 200  # reaches analyst

    # Deleted, its open alert is resolved by the next evaluation and stays in the history.
    for rule in (drop, spike):
        gone = client.delete(f"/api/v1/alerts/rules/{rule['id']}", headers=admin)
        assert gone.status_code == 204
    day = client.post("/api/v1/alerts/rules", headers=admin,
                      json={"kind": "silent", "parameters": {"hours": 24}}).json
    spread(ingest, 200)  # silent for 6 hours: likely enough; for 24: not
    assert evaluate(app, NOW).raised == 1
    assert client.delete(f"/api/v1/alerts/rules/{day['id']}", headers=admin).status_code == 204
    assert evaluate(app, NOW) == Evaluation(resolved=1)
    [alert] = listed(client, analyst)
    assert alert["rule"] == day["id"] and "rule was deleted" in alert["resolution"]
    missing = client.delete(f"/api/v1/alerts/rules/{day['id']}", headers=admin)
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"kind": "loud"}, 422, "kind"),
    ({}, 422, "kind"),
    ({"kind": "silent", "touchpoint": "nowhere"}, 422, "touchpoint"),
    ({"kind": "silent", "touchpoint": 7}, 422, "touchpoint"),
    ({"kind": "silent", "parameters": {"hours": 0}}, 422, "parameters.hours"),
    ({"kind": "silent", "parameters": {"hours": "6"}}, 422, "parameters.hours"),
    ({"kind": "silent", "parameters": {"threshold": 0.5}}, 422, "parameters.threshold"),
    ({"kind": "drop", "parameters": {"threshold": 1.5}}, 422, "parameters.threshold"),
    ({"kind": "drop", "parameters": {"probability": 0}}, 422, "parameters.probability"),
    ({"kind": "bot_spike", "parameters": {"ratio": True}}, 422, "parameters.ratio"),
    ({"kind": "drop", "parameters": [1]}, 422, "parameters"),
    ({"kind": "drop", "colour": "red"}, 422, "colour"),
])
def test_bad_rules_get_a_clear_error(
    client: FlaskClient, admin: Headers, touchpoint: Any, body: Any, status: int, field: str
) -> None:
    response = client.post("/api/v1/alerts/rules", headers=admin, json=body)
    assert response.status_code == status, response.json
    error = response.json["error"]
    assert error["details"]["field"] == field, error
    assert error["message"]


@pytest.mark.parametrize("query", [
    {"state": "closed"}, {"limit": "0"}, {"limit": "many"}, {"limit": "501"}, {"order": "new"},
])
def test_bad_alert_queries_are_a_400(client: FlaskClient, analyst: Headers,
                                     query: dict[str, str]) -> None:
    response = client.get("/api/v1/alerts", headers=analyst, query_string=query)
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "invalid_parameter"


def test_a_malformed_rule_body_is_a_400(client: FlaskClient, admin: Headers) -> None:
    response = client.post("/api/v1/alerts/rules", headers=admin, data="{kind",
                           content_type="application/json")
    assert response.status_code == 400 and response.json["error"]["code"] == "bad_request"


def test_the_dashboard_lists_open_alerts(
    app: Flask, client: FlaskClient, admin: Headers, link: Any, ingest: Ingest,
    auth: AuthActions,
) -> None:
    add_rule(client, admin, "silent", hours=24)
    page = auth.client("analyst")
    assert "No open alerts: 1 alert rule watching" in page.get("/dashboard").get_data(
        as_text=True)
    spread(ingest, 200)
    evaluate(app, NOW)
    shown = page.get("/dashboard").get_data(as_text=True)
    assert 'data-kind="silent"' in shown and "Open alerts" in shown
    assert "Store flyer has had no human click for 24 hours" in shown


def test_alerts_check_on_the_command_line(app: Flask, client: FlaskClient, admin: Headers,
                                          link: Any) -> None:
    add_rule(client, admin, "silent")
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["alerts", "check"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "0 raised, 0 resolved." in result.output  # no clicks: no silence is unlikely


# --- webhooks -----------------------------------------------------------------------------------


class Receiver:
    """A local HTTP receiver answering each POST with the next of `answers` (then 200)."""

    def __init__(self) -> None:
        self.answers: list[int] = []
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.answers.pop(0) if receiver.answers else 200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def make_receiver() -> Iterator[Callable[[], Receiver]]:
    made: list[Receiver] = []

    def make() -> Receiver:
        made.append(Receiver())
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def send_webhooks(app: Flask) -> int:
    rt = runtime(app)
    return deliver_due(rt.sessions, secret_key=rt.settings.secret_key, allow_private=True)


def test_alert_raised_reaches_a_webhook_signed(
    make_app: Callable[..., Flask], make_receiver: Callable[[], Receiver], admin: Headers,
    link: Any, ingest: Ingest,
) -> None:
    app = make_app(webhook_allow_private=True)
    client, receiver = app.test_client(), make_receiver()
    hook = client.post("/api/v1/webhooks", headers=admin, json={
        "url": receiver.url, "events": ["alert.raised", "alert.resolved"]}).json
    add_rule(client, admin, "silent", hours=24)
    spread(ingest, 200)
    assert evaluate(app, NOW).raised == 1
    ingest.click("spring", NOW + timedelta(minutes=1), ip="203.0.113.9", agent=IPHONE)
    assert evaluate(app, NOW + timedelta(minutes=2)).resolved == 1
    assert send_webhooks(app) == 2
    wait_until(lambda: len(receiver.received) == 2, timeout=10, what="both deliveries")
    verifier = Verifier(hook["secret"])
    events = [verifier.verify(body, headers) for headers, body in receiver.received]
    assert [e["type"] for e in events] == ["alert.raised", "alert.resolved"]
    raised = events[0]["data"]
    assert (raised["kind"], raised["touchpoint"]["key"], raised["open"]) == (
        "silent", "store-flyer", True)
    assert raised["probability"] == pytest.approx(math.exp(-200 / BASELINE_HOURS * 24))
    assert events[1]["data"]["id"] == raised["id"] and not events[1]["data"]["open"]


def test_a_webhook_disabled_after_fifty_failures_raises_an_alert(
    make_app: Callable[..., Flask], make_receiver: Callable[[], Receiver], admin: Headers,
    analyst: Headers, marketer: Headers, touchpoint: Any,
) -> None:
    app = make_app(webhook_allow_private=True)
    client, failing, watching = app.test_client(), make_receiver(), make_receiver()
    broken = client.post("/api/v1/webhooks", headers=admin, json={
        "url": failing.url, "events": ["link.created"]}).json
    client.post("/api/v1/webhooks", headers=admin, json={
        "url": watching.url, "events": ["alert.raised"]})
    for n in range(DISABLE_AFTER):
        assert client.post("/api/v1/links", headers=marketer, json={
            "url": f"https://shop.example.com/{n}", "touchpoint": "store-flyer",
            "stage": "awareness", "slug": f"code-{n}"}).status_code == 201
    failing.answers = [503] * DISABLE_AFTER
    assert send_webhooks(app) == DISABLE_AFTER

    [alert] = listed(client, analyst, state="open")
    assert (alert["kind"], alert["webhook"], alert["touchpoint"]) == (
        "webhook_disabled", broken["id"], None)
    assert "50 failed deliveries in a row" in alert["message"]
    assert send_webhooks(app) == 1  # the alert, to the webhook that wants it
    wait_until(lambda: len(watching.received) == 1, timeout=10, what="the delivery")
    sent = watching.received[0][1]
    assert b'"alert.raised"' in sent and b'"webhook_disabled"' in sent

    # Enabled again (its receiver mended), it is sent to afresh, and the alert ends.
    enabled = client.post(f"/api/v1/webhooks/{broken['id']}/enable", headers=admin)
    assert enabled.status_code == 200, enabled.json
    assert (enabled.json["active"], enabled.json["failures_in_a_row"]) == (True, 0)
    assert evaluate(app, NOW).resolved == 1
    [ended] = listed(client, analyst)
    assert ended["resolution"] == "the webhook is active again"
    assert client.post("/api/v1/webhooks/999999/enable", headers=admin).status_code == 404
    assert client.post(f"/api/v1/webhooks/{broken['id']}/enable",
                       headers=analyst).status_code == 403
    with runtime(app).sessions() as session:
        assert session.scalar(select(func.count()).select_from(WebhookDelivery).where(
            WebhookDelivery.event == "alert.raised")) == 1


# --- e-mail ---------------------------------------------------------------------------------------


def smtp_app(make_app: Callable[..., Flask], port: int, **changes: Any) -> Flask:
    return make_app(smtp_host="127.0.0.1", smtp_port=port, smtp_from="touchlink@go.test",
                    smtp_starttls=False, **changes)


def test_alert_mail_waits_while_smtp_is_down_and_is_sent_once_it_is_up(
    make_app: Callable[..., Flask], admin: Headers, link: Any, ingest: Ingest,
) -> None:
    port = free_port()
    app = smtp_app(make_app, port, alert_emails=("ops@example.com", "cmo@example.com"))
    rt = runtime(app)
    mail = MailSettings.of(rt.settings)
    assert mail is not None
    add_rule(app.test_client(), admin, "silent", hours=24)
    spread(ingest, 200)
    assert evaluate(app, NOW).raised == 1

    # Nobody listens on the port: the mail stays queued, with why.
    assert send_due_mail(rt.sessions, mail, now=NOW) == 0
    with rt.sessions() as session:
        queued = session.scalars(select(OutboxMail)).one()
        assert queued.sent_at is None and queued.attempts == 1
        assert "ConnectionRefusedError" in (queued.last_error or "")
    assert send_due_mail(rt.sessions, mail, now=NOW + timedelta(seconds=10)) == 0  # waits

    inbox = Inbox()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    try:
        assert send_due_mail(rt.sessions, mail, now=NOW + timedelta(seconds=31)) == 1
        wait_until(lambda: len(inbox.messages) == 1, timeout=10, what="the mail")
        assert send_due_mail(rt.sessions, mail, now=NOW + timedelta(hours=2)) == 0  # once
    finally:
        server.stop()
    envelope = inbox.messages[0]
    assert envelope.rcpt_tos == ["ops@example.com", "cmo@example.com"]
    message = message_from_bytes(envelope.content)
    assert message["Subject"] == "[Touchlink] Alert: silent on Store flyer"
    assert message["From"] == "touchlink@go.test"
    text = message.get_payload(decode=True).decode()
    assert "Store flyer has had no human click for 24 hours" in text
    assert "http://go.test/dashboard#alerts" in text


def test_alert_mail_goes_to_the_admins_unless_addresses_are_set(
    make_app: Callable[..., Flask], admin: Headers, link: Any, ingest: Ingest,
    pages: Any,
) -> None:
    app = smtp_app(make_app, free_port())
    people = AuthActions(app, pages)
    people.add_user("boss@example.com", "admin")
    people.add_user("ana@example.com", "analyst")
    add_rule(app.test_client(), admin, "silent", hours=24)
    spread(ingest, 200)
    assert evaluate(app, NOW).raised == 1
    with runtime(app).sessions() as session:
        assert session.scalars(select(OutboxMail.recipients)).all() == ["boss@example.com"]


def test_without_smtp_no_mail_is_queued(
    app: Flask, client: FlaskClient, admin: Headers, link: Any, ingest: Ingest,
) -> None:
    add_rule(client, admin, "silent", hours=24)
    spread(ingest, 200)
    assert evaluate(app, NOW).raised == 1
    with runtime(app).sessions() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMail)) == 0


def test_the_weeks_before_keep_the_workspace_hours_across_summer_time() -> None:
    paris = ZoneInfo("Europe/Paris")  # summer time ended on Sunday, October 25, 2026
    end = datetime(2026, 11, 2, 11, tzinfo=UTC)  # noon in Paris
    weeks = weeks_before(end - timedelta(hours=24), end, 4, paris)
    assert [e for _, e in weeks] == [
        datetime(2026, 10, 26, 11, tzinfo=UTC),  # noon, winter time
        datetime(2026, 10, 19, 10, tzinfo=UTC),  # noon, summer time
        datetime(2026, 10, 12, 10, tzinfo=UTC),
        datetime(2026, 10, 5, 10, tzinfo=UTC),
    ]
    # Noon to noon, each: the change itself fell before noon on the 25th.
    assert weeks[0][0] == datetime(2026, 10, 25, 11, tzinfo=UTC)
    assert weeks[1][0] == datetime(2026, 10, 18, 10, tzinfo=UTC)


@pytest.mark.parametrize(("environ", "bad"), [
    ({"TOUCHLINK_SMTP_HOST": "mail.example.com"}, "TOUCHLINK_SMTP_FROM"),
    ({"TOUCHLINK_SMTP_HOST": "mail.example.com", "TOUCHLINK_SMTP_FROM": "touchlink"},
     "TOUCHLINK_SMTP_FROM"),
    ({"TOUCHLINK_SMTP_USER": "touchlink"}, "TOUCHLINK_SMTP_PASSWORD"),
    ({"TOUCHLINK_SMTP_PORT": "0"}, "TOUCHLINK_SMTP_PORT"),
    ({"TOUCHLINK_ALERT_EMAILS": "ops@example.com, not an address"}, "TOUCHLINK_ALERT_EMAILS"),
])
def test_bad_mail_settings_are_named(tmp_path: Any, environ: dict[str, str], bad: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"TOUCHLINK_INSTANCE_PATH": str(tmp_path), **environ})
    assert bad in refused.value.problems


def test_mail_settings_from_the_environment(tmp_path: Any) -> None:
    settings = Settings.from_env({
        "TOUCHLINK_INSTANCE_PATH": str(tmp_path), "TOUCHLINK_SMTP_HOST": "mail.example.com",
        "TOUCHLINK_SMTP_FROM": "touchlink@example.com", "TOUCHLINK_SMTP_USER": "tl",
        "TOUCHLINK_SMTP_PASSWORD": "s3cret",
        "TOUCHLINK_ALERT_EMAILS": "a@example.com, b@example.com",
    })
    assert MailSettings.of(settings) == MailSettings(
        "mail.example.com", 587, "touchlink@example.com", "tl", "s3cret", True,
        ("a@example.com", "b@example.com"),
    )
    assert "s3cret" not in repr(settings)
    assert MailSettings.of(Settings.from_env({"TOUCHLINK_INSTANCE_PATH": str(tmp_path)})) is None


@pytest.mark.commits
def test_the_worker_evaluates_the_alerts_and_mails_them(
    app: Flask, client: FlaskClient, admin: Headers, link: Any, ingest: Ingest,
    workers: Any, worker_env: Callable[..., dict[str, str]], session: Any,
) -> None:
    add_rule(client, admin, "silent", hours=24)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    # 200 clicks in the 28 days before today, none since the day before yesterday.
    ingest.raw([
        ingest.make("spring", today - timedelta(days=2 + i % 27, hours=-(i % 12)),
                    ip=f"198.51.100.{i % 250}", agent=IPHONE)
        for i in range(200)
    ])
    port, inbox = free_port(), Inbox()
    env = {name: value for name, value in worker_env().items() if name != "TOUCHLINK_REDIS_URL"}
    env.update({
        "TOUCHLINK_SMTP_HOST": "127.0.0.1", "TOUCHLINK_SMTP_PORT": str(port),
        "TOUCHLINK_SMTP_FROM": "touchlink@go.test", "TOUCHLINK_SMTP_STARTTLS": "false",
        "TOUCHLINK_ALERT_EMAILS": "ops@example.com",
    })
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    try:
        code, output = workers.run("--drain", env=env)
        assert code == 0, output
        wait_until(lambda: len(inbox.messages) == 1, timeout=10, what="the mail")
    finally:
        server.stop()
    assert "Alert: silent on Store flyer" in inbox.messages[0].content.decode()
    session.expire_all()
    alert = session.scalars(select(Alert)).one()
    assert alert.kind == "silent" and alert.resolved_at is None
    assert alert.probability == pytest.approx(math.exp(-200 / BASELINE_HOURS * 24))


@pytest.mark.commits
def test_two_workers_evaluating_at_once_raise_an_alert_once(
    app: Flask, client: FlaskClient, admin: Headers, link: Any, ingest: Ingest, engine: Any,
    session: Any,
) -> None:
    add_rule(client, admin, "silent", hours=24)
    spread(ingest, 200)
    start, found = threading.Barrier(2), []

    def worker() -> None:
        sessions = make_sessionmaker(engine)
        start.wait()
        found.append(check_alerts(sessions, zone=UTC, notify=Notify(None), now=NOW))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(e.raised for e in found) == [0, 1]
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Alert)) == 1


# --- the page ------------------------------------------------------------------------------------


def test_admins_manage_rules_on_the_alerts_page_and_analysts_read_it(
    app: Flask, link: Any, ingest: Ingest, auth: AuthActions, pages: Any,
) -> None:
    boss, reader = auth.client("admin"), auth.client("analyst")
    added = pages.post_form(boss, "/dashboard/alerts/rules", {
        "kind": "silent", "touchpoint": "store-flyer", "silent.hours": "24",
        "drop.probability": "0.3",  # another kind's field: not the rule's
    }, form_page="/dashboard/alerts")
    assert added.status_code == 302, pages.text(added)[:2000]
    refused = pages.post_form(boss, "/dashboard/alerts/rules", {
        "kind": "drop", "drop.threshold": "2"}, form_page="/dashboard/alerts")
    assert refused.status_code == 422
    assert "at most 1" in pages.field_error(refused, "drop.threshold")

    spread(ingest, 200)
    evaluate(app, NOW)
    shown = pages.text(reader.get("/dashboard/alerts"))
    assert 'data-kind="silent"' in shown and "no human click for 24 hours" in shown
    assert "hours 24 · probability 0.01" in shown
    assert "Add a rule" not in shown  # analysts read only
    assert reader.post("/dashboard/alerts/rules", data={"kind": "drop"}).status_code in (400, 403)

    with runtime(app).sessions() as session:
        rule_id = session.scalars(select(Alert.rule_id)).one()
    removed = pages.post_form(boss, f"/dashboard/alerts/rules/{rule_id}/remove", {},
                              form_page="/dashboard/alerts")
    assert removed.status_code == 302
    assert "No rule yet" in pages.text(boss.get("/dashboard/alerts"))


@pytest.mark.parametrize(("k", "mean"), [
    (0, 0.1), (0, 5.0), (3, 10.0), (10, 10.0), (15, 10.0), (40, 20.0), (100, 150.0),
])
def test_the_poisson_tails_match_the_sum_of_their_terms(k: int, mean: float) -> None:
    assert alert_stats.poisson_at_most(k, mean) == pytest.approx(poisson_at_most(k, mean))
    assert alert_stats.poisson_at_least(k + 1, mean) == pytest.approx(
        1 - poisson_at_most(k, mean), abs=1e-12)


def test_the_poisson_tails_hold_for_large_means() -> None:
    # 9,700 against 10,000 expected is three standard deviations below: about 0.13 %.
    low = alert_stats.poisson_at_most(9_700, 10_000)
    assert 0.0011 < low < 0.0015
    assert alert_stats.poisson_at_most(9_700, 10_000) + alert_stats.poisson_at_least(
        9_701, 10_000) == pytest.approx(1)
    assert alert_stats.poisson_at_least(2_000_000, 1_000_000) == 0.0
    assert alert_stats.poisson_at_most(0, 0) == 1.0 and alert_stats.poisson_at_least(1, 0) == 0.0
