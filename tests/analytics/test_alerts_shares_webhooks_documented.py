"""The alerts', shares' and webhooks' real answers, each validated against the OpenAPI document's
schema of its response: what the document says they send is what they send."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from analytics.models import Alert
from shortener.db import utcnow
from shortener.models import Touchpoint
from shortener.openapi import document
from shortener.runtime import runtime
from shortener.unit_of_work import transaction
from tests.documented import checked

Headers = dict[str, str]


@pytest.fixture
def check(app: Flask) -> Any:
    """`check(path, method, response)`: the response's JSON valid against the document's schema
    of its status (its references point into the document's components, carried along)."""
    spec = document(app)

    def validate(path: str, method: str, response: Any) -> Any:
        return checked(spec, path, method, response)

    return validate


def test_webhook_answers_match_the_document(
    make_app: Any, headers: Any, touchpoint: Any, check: Any
) -> None:
    client = make_app(webhook_allow_private=True).test_client()
    admin, marketer = headers("admin"), headers("marketer")
    made = check("/api/v1/webhooks", "post", client.post(
        "/api/v1/webhooks", headers=admin,
        json={"url": "http://127.0.0.1:9/hook", "events": ["link.created", "clicks"]},
    ))
    assert made["secret"].startswith("whsec_")
    created = client.post("/api/v1/links", headers=marketer, json={
        "url": "https://shop.example.com/", "touchpoint": "store-flyer", "stage": "awareness",
    })
    assert created.status_code == 201, created.json  # a delivery waits for the webhook

    path = "/api/v1/webhooks/{webhook_id}"
    listed = check("/api/v1/webhooks", "get", client.get("/api/v1/webhooks", headers=admin))
    assert [len(item["deliveries"]) for item in listed["items"]] == [1]
    check(path, "get", client.get(f"/api/v1/webhooks/{made['id']}", headers=admin))
    check(path + "/enable", "post",
          client.post(f"/api/v1/webhooks/{made['id']}/enable", headers=admin))
    check("/api/v1/webhooks", "post", client.post(
        "/api/v1/webhooks", headers=admin, json={"url": "http://127.0.0.1:9/hook", "events": []}
    ))
    check(path, "delete", client.delete(f"/api/v1/webhooks/{made['id']}", headers=admin))
    check(path, "get", client.get(f"/api/v1/webhooks/{made['id']}", headers=admin))


def test_share_answers_match_the_document(
    client: FlaskClient, admin: Headers, check: Any
) -> None:
    made = check("/api/v1/shares", "post", client.post(
        "/api/v1/shares", headers=admin, json={"name": "For the agency", "view": "range=30d"}
    ))
    check("/api/v1/shares/{share_id}", "delete",
          client.delete(f"/api/v1/shares/{made['id']}", headers=admin))
    listed = check("/api/v1/shares", "get", client.get("/api/v1/shares", headers=admin))
    assert listed["items"][0]["revoked_at"] is not None
    check("/api/v1/shares", "post",
          client.post("/api/v1/shares", headers=admin, json={"name": "x", "view": 7}))


def test_alert_answers_match_the_document(
    app: Flask, client: FlaskClient, admin: Headers, analyst: Headers, touchpoint: Any,
    check: Any,
) -> None:
    rule = check("/api/v1/alerts/rules", "post", client.post(
        "/api/v1/alerts/rules", headers=admin,
        json={"kind": "drop", "touchpoint": "store-flyer", "parameters": {"threshold": 0.3}},
    ))
    check("/api/v1/alerts/rules", "post", client.post(
        "/api/v1/alerts/rules", headers=admin,
        json={"kind": "drop", "touchpoint": "store-flyer", "parameters": {"threshold": 0.3}},
    ))  # the same twice: a 409
    now = utcnow()
    with transaction(runtime(app).sessions) as session:
        flyer = session.scalar(select(Touchpoint.id).where(Touchpoint.key == "store-flyer"))
        session.add_all([
            Alert(kind="drop", rule_id=rule["id"], touchpoint_id=flyer,
                  raised_at=now, window_start=now - timedelta(hours=24), window_end=now,
                  observed=2, expected=30.5, probability=0.001, message="Fewer clicks."),
            Alert(kind="webhook_disabled", webhook_id=4, raised_at=now, resolved_at=now,
                  message="The webhook 4 was disabled.", resolution="it was deleted"),
        ])
    alerts = check("/api/v1/alerts", "get", client.get("/api/v1/alerts", headers=analyst))
    assert {alert["kind"] for alert in alerts["items"]} == {"drop", "webhook_disabled"}
    check("/api/v1/alerts", "get",
          client.get("/api/v1/alerts?state=closed", headers=analyst))
    check("/api/v1/alerts/rules", "get", client.get("/api/v1/alerts/rules", headers=analyst))
    check("/api/v1/alerts/rules/{rule_id}", "delete",
          client.delete(f"/api/v1/alerts/rules/{rule['id']}", headers=admin))
