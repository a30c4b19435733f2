"""Webhooks end to end: made over the API, fed by link changes in the same transaction, sent
by the worker's sender to a real local receiver that checks each signature with the
`standardwebhooks` package, retried after a 500, disabled after 50 failures in a row, and never
sent to a private address unless the operator allows it."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from analytics.runtime import runtime
from analytics.webhook_delivery import DISABLE_AFTER, deliver_due
from shortener import webhooks
from shortener.db import utcnow
from shortener.models import WebhookDelivery
from shortener.unit_of_work import transaction
from tests.conftest import AuthActions
from tests.user_agents import GOOGLEBOT, IPHONE

Headers = dict[str, str]


class Receiver:
    """A local HTTP receiver: answers each POST with the next status of `answers` (then 200)
    and keeps what it was sent (header names in lower case, as `standardwebhooks` reads them)."""

    def __init__(self) -> None:
        self.answers: list[int] = []
        self.received: list[tuple[dict[str, str], bytes, int]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                status = receiver.answers.pop(0) if receiver.answers else 200
                receiver.received.append(
                    ({k.lower(): v for k, v in self.headers.items()}, body, status)
                )
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/touchlink?from=test"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


@pytest.fixture
def private_app(make_app: Any) -> Flask:
    app: Flask = make_app(webhook_allow_private=True)
    return app


def add_webhook(client: FlaskClient, admin: Headers, url: str, events: list[str]) -> Any:
    return client.post("/api/v1/webhooks", json={"url": url, "events": events}, headers=admin)


def send(app: Flask, **kwargs: Any) -> int:
    rt = runtime(app)
    return deliver_due(rt.sessions, secret_key=rt.settings.secret_key,
                       allow_private=rt.settings.webhook_allow_private, **kwargs)


def make_link(client: FlaskClient, marketer: Headers, slug: str) -> Any:
    response = client.post("/api/v1/links", headers=marketer, json={
        "url": f"https://shop.example.com/{slug}", "touchpoint": "store-flyer",
        "stage": "awareness", "slug": slug,
    })
    assert response.status_code == 201, response.json
    return response.json


def test_link_events_arrive_signed_and_a_500_is_retried(
    private_app: Flask, receiver: Receiver, touchpoint: Any, headers: Any
) -> None:
    client, admin, marketer = private_app.test_client(), headers("admin"), headers("marketer")
    response = add_webhook(client, admin, receiver.url, ["link.created", "link.updated"])
    assert response.status_code == 201, response.json
    made = response.json
    assert made["secret"].startswith("whsec_") and made["events"] == ["link.created",
                                                                       "link.updated"]
    # Shown once: never again, in the list or the webhook's own page.
    listed = client.get("/api/v1/webhooks", headers=admin).json["items"]
    assert [item["id"] for item in listed] == [made["id"]] and "secret" not in listed[0]
    assert made["secret"] not in json.dumps(listed)

    link = make_link(client, marketer, "spring")
    patched = client.patch(f"/api/v1/links/{link['id']}", headers=marketer,
                           json={"url": "https://shop.example.com/summer"})
    assert patched.status_code == 200, patched.json

    receiver.answers = [500]  # the first delivery fails once
    assert send(private_app) == 2
    assert [status for *_, status in receiver.received] == [500, 200]
    assert send(private_app) == 0  # the failed one waits before its next try
    assert send(private_app, now=utcnow() + timedelta(seconds=6)) == 1

    verifier = Verifier(made["secret"])
    events = []
    for sent_headers, body, status in receiver.received:
        events.append((verifier.verify(body, sent_headers), status, sent_headers["webhook-id"]))
    assert [(e["type"], e["data"]["slug"], e["data"]["destination"], status)
            for e, status, _ in events] == [
        ("link.created", "spring", "https://shop.example.com/spring", 500),
        ("link.updated", "spring", "https://shop.example.com/summer", 200),
        ("link.created", "spring", "https://shop.example.com/spring", 200),
    ]
    assert events[0][2] == events[2][2]  # a retry keeps its webhook-id, so receivers dedupe
    assert events[0][0]["data"]["id"] == link["id"]
    assert events[0][0]["data"]["touchpoint"] == "store-flyer"

    shown = client.get(f"/api/v1/webhooks/{made['id']}", headers=admin).json
    by_event = {d["event"]: d for d in shown["deliveries"]}
    assert by_event["link.created"]["attempts"] == 2
    assert by_event["link.created"]["status"] == "delivered"
    assert by_event["link.updated"]["attempts"] == 1
    assert shown["failures_in_a_row"] == 0 and shown["active"]

    assert client.delete(f"/api/v1/links/{link['id']}", headers=marketer).status_code == 200
    assert send(private_app) == 1
    archived = verifier.verify(receiver.received[-1][1], receiver.received[-1][0])
    assert (archived["type"], archived["data"]["archived"]) == ("link.updated", True)


def test_a_forged_signature_is_refused_by_the_receivers_check(
    private_app: Flask, receiver: Receiver, touchpoint: Any, headers: Any
) -> None:
    client = private_app.test_client()
    made = add_webhook(client, headers("admin"), receiver.url, ["link.created"]).json
    make_link(client, headers("marketer"), "flyer")
    assert send(private_app) == 1
    lower, body, _ = receiver.received[0]
    with pytest.raises(WebhookVerificationError):
        Verifier(made["secret"]).verify(body.replace(b"flyer", b"fl1er"), lower)
    other = add_webhook(client, headers("admin"), receiver.url, ["link.created"]).json
    with pytest.raises(WebhookVerificationError):
        Verifier(other["secret"]).verify(body, lower)


def test_a_webhook_failing_fifty_times_in_a_row_is_disabled(
    private_app: Flask, receiver: Receiver, touchpoint: Any, headers: Any
) -> None:
    client = private_app.test_client()
    made = add_webhook(client, headers("admin"), receiver.url, ["link.created"]).json
    for n in range(DISABLE_AFTER + 2):
        make_link(client, headers("marketer"), f"code-{n}")
    receiver.answers = [503] * (DISABLE_AFTER + 5)
    send(private_app)  # one round: 50 deliveries
    assert len(receiver.received) == DISABLE_AFTER
    shown = client.get(f"/api/v1/webhooks/{made['id']}", headers=headers("admin")).json
    assert not shown["active"] and "50 failed deliveries in a row" in shown["disabled_reason"]
    assert "503" in shown["disabled_reason"]
    # Disabled: nothing more is sent, even once the retries are due.
    assert send(private_app, now=utcnow() + timedelta(hours=1)) == 0
    assert len(receiver.received) == DISABLE_AFTER


def test_deliveries_are_written_only_for_the_events_wanted(
    private_app: Flask, receiver: Receiver, touchpoint: Any, headers: Any
) -> None:
    client = private_app.test_client()
    add_webhook(client, headers("admin"), receiver.url, ["link.updated"])
    make_link(client, headers("marketer"), "quiet")
    rt = runtime(private_app)
    with rt.sessions() as session:
        assert session.scalars(select(WebhookDelivery)).all() == []
    assert send(private_app) == 0 and receiver.received == []


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9/hook", "http://10.1.2.3/hook", "http://169.254.169.254/latest/meta-data",
    "http://[::1]/hook", "http://localhost/hook", "http://[::ffff:127.0.0.1]/hook",
])
def test_private_addresses_are_refused_unless_allowed(
    client: FlaskClient, admin: Headers, url: str
) -> None:
    response = add_webhook(client, admin, url, ["link.created"])
    assert response.status_code == 422, response.json
    error = response.json["error"]
    assert error["code"] == "invalid_url" and "TOUCHLINK_WEBHOOK_ALLOW_PRIVATE" in error["message"]


@pytest.mark.parametrize(("body", "field"), [
    ({"url": "ftp://hooks.example.com/x", "events": ["clicks"]}, "url"),
    ({"url": "http://go.test/hook", "events": ["clicks"]}, "url"),  # ourselves
    ({"url": "https://hooks.invalid/x", "events": ["clicks"]}, "url"),  # no such host
    ({"url": "https://hooks.example.com/x", "events": ["link.deleted"]}, "events"),
    ({"url": "https://hooks.example.com/x", "events": []}, "events"),
    ({"url": "https://hooks.example.com/x"}, "events"),
    ({"events": ["clicks"]}, "url"),
])
def test_bad_webhooks_get_a_clear_error(
    private_app: Flask, headers: Any, body: dict[str, Any], field: str
) -> None:
    response = private_app.test_client().post("/api/v1/webhooks", json=body,
                                              headers=headers("admin"))
    assert response.status_code == 422, response.json
    assert response.json["error"]["details"]["field"] == field


def test_only_admins_manage_webhooks(client: FlaskClient, marketer: Headers, analyst: Headers
                                     ) -> None:
    for who in (marketer, analyst):
        assert client.get("/api/v1/webhooks", headers=who).status_code == 403
        assert client.post("/api/v1/webhooks", headers=who,
                           json={"url": "https://x.example", "events": ["clicks"]}
                           ).status_code == 403
    assert client.get("/api/v1/webhooks").status_code == 401


def test_a_deleted_webhook_gets_nothing_more(
    private_app: Flask, receiver: Receiver, touchpoint: Any, headers: Any
) -> None:
    client = private_app.test_client()
    made = add_webhook(client, headers("admin"), receiver.url, ["link.created"]).json
    make_link(client, headers("marketer"), "gone")
    deleted = client.delete(f"/api/v1/webhooks/{made['id']}", headers=headers("admin"))
    assert deleted.status_code == 204
    assert send(private_app) == 0 and receiver.received == []
    missing = client.get(f"/api/v1/webhooks/{made['id']}", headers=headers("admin"))
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"


def test_a_name_resolving_to_a_private_address_at_delivery_is_not_called(
    app: Flask, receiver: Receiver, touchpoint: Any, headers: Any
) -> None:
    """Allowed when made (here: by the operator's setting), refused when sent (the setting
    off, as after a name is rebound to a private address): checked again at delivery."""
    permissive = runtime(app)
    with permissive.sessions.begin() as session:
        data = webhooks.WebhookInput(receiver.url.replace("127.0.0.1", "localhost"),
                                     ("link.created",))
        webhooks.add_webhook(session, data, secret_key=permissive.settings.secret_key)
    make_link(app.test_client(), headers("marketer"), "rebound")
    assert send(app) == 1
    assert receiver.received == []
    with permissive.sessions() as session:
        delivery = session.scalars(select(WebhookDelivery)).one()
        assert delivery.status == "pending" and delivery.attempts == 1
        assert "private or reserved address" in (delivery.last_error or "")


def clicks_sent(receiver: Receiver, secret: str) -> list[list[dict[str, Any]]]:
    verifier = Verifier(secret)
    return [
        verifier.verify(body, sent)["data"]["clicks"]
        for sent, body, _ in receiver.received
    ]


def test_clicks_go_out_in_batches_at_most_once_a_second(
    private_app: Flask, receiver: Receiver, touchpoint: Any, headers: Any, clicks: Any
) -> None:
    client = private_app.test_client()
    made = add_webhook(client, headers("admin"), receiver.url, ["clicks"]).json
    link = make_link(client, headers("marketer"), "busy")
    clicks.send(client, "busy", 3)
    clicks.send(client, "busy", 2, qr=True)
    clicks.send(client, "busy", 1, agent=GOOGLEBOT)
    started = utcnow()
    assert send(private_app, now=started) == 1
    [first] = clicks_sent(receiver, made["secret"])
    assert len(first) == 6
    assert sorted((c["scan"], c["bot"]) for c in first) == [
        (False, False)] * 3 + [(False, True)] + [(True, False)] * 2
    assert {(c["link_id"], c["touchpoint"], c["stage"]) for c in first} == {
        (link["id"], "store-flyer", "awareness")
    }
    assert sorted(c["device"] for c in first) == ["bot"] + ["desktop"] * 5
    assert all(set(c) == {"at", "link_id", "touchpoint", "stage", "scan", "country", "device",
                          "bot", "test"} for c in first)  # no IP, no visitor id

    clicks.send(client, "busy", 4)
    # Within the second: the new clicks wait; a second later they go, those four alone.
    assert send(private_app, now=started + timedelta(milliseconds=500)) == 0
    assert send(private_app, now=started + timedelta(seconds=1)) == 1
    assert [len(batch) for batch in clicks_sent(receiver, made["secret"])] == [6, 4]


def test_a_burst_of_clicks_is_cut_into_deliveries_of_a_thousand(
    private_app: Flask, receiver: Receiver, touchpoint: Any, headers: Any, ingest: Any
) -> None:
    client = private_app.test_client()
    made = add_webhook(client, headers("admin"), receiver.url, ["clicks"]).json
    make_link(client, headers("marketer"), "viral")
    store = ingest.into(private_app)
    raw = [store.make("viral", utcnow(), ip=f"203.0.113.{i % 200}", agent=IPHONE)
           for i in range(1_500)]
    assert store.raw(raw, batch=1_500) == 1_500
    started = utcnow()
    for second in range(3):
        send(private_app, now=started + timedelta(seconds=second))
    sent = clicks_sent(receiver, made["secret"])
    assert [len(batch) for batch in sent] == [1_000, 500]
    # Every click once, in the order they happened.
    assert sorted(c["at"] for batch in sent for c in batch) == [c["at"] for batch in sent
                                                                for c in batch]


PAGE = "/links/webhooks"


def test_an_admin_adds_a_webhook_on_the_page_sees_its_deliveries_and_removes_it(
    private_app: Flask, pages: Any, receiver: Receiver, touchpoint: Any, headers: Any
) -> None:
    browser = AuthActions(private_app, pages).client("admin")
    added = pages.post_form(browser, PAGE, {"url": receiver.url, "events": ["link.created"]})
    assert added.status_code == 201, pages.text(added)[:500]
    secret = re.search(r"data-secret>(whsec_[A-Za-z0-9+/=]+)<", pages.text(added))
    assert secret is not None
    api = private_app.test_client().get("/api/v1/webhooks", headers=headers("admin")).json
    [webhook] = api["items"]
    assert (webhook["url"], webhook["events"]) == (receiver.url, ["link.created"])
    assert secret.group(1) not in pages.text(browser.get(PAGE))  # shown that once

    make_link(private_app.test_client(), headers("marketer"), "paged")
    assert send(private_app) == 1
    Verifier(secret.group(1)).verify(receiver.received[0][1], receiver.received[0][0])
    page = pages.text(browser.get(PAGE))
    assert "link.created" in page and ">delivered<" in page

    removed = pages.post_form(browser, f"{PAGE}/{webhook['id']}/remove", {}, form_page=PAGE)
    assert removed.status_code == 302
    assert private_app.test_client().get("/api/v1/webhooks",
                                         headers=headers("admin")).json["items"] == []


def test_a_disabled_webhook_is_enabled_again_from_the_page(
    private_app: Flask, pages: Any, receiver: Receiver, touchpoint: Any, headers: Any
) -> None:
    browser = AuthActions(private_app, pages).client("admin")
    pages.post_form(browser, PAGE, {"url": receiver.url, "events": ["link.created"]})
    [webhook] = private_app.test_client().get("/api/v1/webhooks",
                                              headers=headers("admin")).json["items"]
    assert "Enable again" not in pages.text(browser.get(PAGE))  # active: nothing to enable
    # Its failures, as the delivery path leaves them after 50 in a row (tested above).
    with transaction(runtime(private_app).sessions) as session:
        stored = webhooks.find_webhook(session, webhook["id"])
        stored.active, stored.failures_in_a_row = False, DISABLE_AFTER
        stored.disabled_reason = "disabled after 50 failed deliveries in a row"
    make_link(private_app.test_client(), headers("marketer"), "unheard")
    assert send(private_app) == 0  # disabled: nothing is kept for it, nothing goes out
    assert "Enable again" in pages.text(browser.get(PAGE))

    enabled = pages.post_form(browser, f"{PAGE}/{webhook['id']}/enable", {}, form_page=PAGE)

    assert enabled.status_code == 302
    after = private_app.test_client().get(f"/api/v1/webhooks/{webhook['id']}",
                                          headers=headers("admin")).json
    assert (after["active"], after["failures_in_a_row"], after["disabled_reason"]) == (
        True, 0, None)
    assert "Enable again" not in pages.text(browser.get(PAGE))
    make_link(private_app.test_client(), headers("marketer"), "heard")
    assert send(private_app) == 1
    assert [json.loads(body)["data"]["slug"] for _, body, _ in receiver.received] == ["heard"]


def test_the_page_shows_every_refusal_and_keeps_others_out(
    private_app: Flask, pages: Any
) -> None:
    people = AuthActions(private_app, pages)
    browser = people.client("admin")
    refused = pages.post_form(browser, PAGE, {"url": "ftp://hooks.example.com/x"})
    assert refused.status_code == 422
    assert pages.field_error(refused, "url") and pages.field_error(refused, "events")
    assert people.client("marketer").get(PAGE).status_code == 403


@pytest.mark.commits
def test_touchlink_worker_sends_the_deliveries_due(
    private_app: Flask, receiver: Receiver, touchpoint: Any, headers: Any, workers: Any,
    worker_env: Any, settings: Any,
) -> None:
    client = private_app.test_client()
    made = add_webhook(client, headers("admin"), receiver.url, ["link.created"]).json
    make_link(client, headers("marketer"), "by-worker")
    env = worker_env(TOUCHLINK_SECRET_KEY=settings.secret_key,
                     TOUCHLINK_WEBHOOK_ALLOW_PRIVATE="true")
    code, output = workers.run("--drain", "--consumer", "hooks", env=env)
    assert code == 0, output
    [(sent, body, status)] = receiver.received
    event = Verifier(made["secret"]).verify(body, sent)
    assert (event["type"], event["data"]["slug"], status) == ("link.created", "by-worker", 200)


def test_a_conversion_stored_is_announced_once(
    private_app: Flask, receiver: Receiver, headers: Any
) -> None:
    api, marketer, tracker = private_app.test_client(), headers("marketer"), headers("tracker")
    made = add_webhook(api, headers("admin"), receiver.url, ["conversion.created"]).json
    tp = {"key": "flyer", "name": "Flyer", "channel": "physical"}
    assert api.post("/api/v1/touchpoints", json=tp, headers=marketer).status_code == 201
    link = {"url": "https://shop.example.com/", "touchpoint": "flyer", "stage": "awareness",
            "slug": "flyer", "track_conversions": True}
    made_link = api.post("/api/v1/links", json=link, headers=marketer).json
    location = api.get("/flyer").headers["Location"]
    token = dict(parse_qsl(urlsplit(location).query))["tl_click"]
    sale = {"click_id": token, "event": "sale", "value": "12.5", "currency": "EUR",
            "external_id": "A-1"}
    first = api.post("/api/v1/conversions", json=sale, headers=tracker)
    assert first.status_code == 202, first.json
    # The shop retries its call: a duplicate, which is not announced again.
    assert api.post("/api/v1/conversions", json=sale, headers=tracker).status_code == 200
    assert send(private_app) == 1
    [(sent, body, _)] = receiver.received
    event = Verifier(made["secret"]).verify(body, sent)
    assert event["type"] == "conversion.created"
    assert {k: event["data"][k] for k in ("id", "event", "value", "currency", "touchpoint",
                                          "link_id", "external_id")} == {
        "id": first.json["id"], "event": "sale", "value": "12.5", "currency": "EUR",
        "touchpoint": "flyer", "link_id": made_link["id"], "external_id": "A-1",
    }
