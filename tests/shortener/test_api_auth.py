"""API keys and roles at the edge of every API request."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics.runtime import Runtime
from shortener.db import utcnow
from shortener.keys import revoke_key
from shortener.models import ApiKey
from shortener.unit_of_work import transaction

ErrorCheck = Callable[..., dict[str, Any]]
Bearer = Callable[[str], dict[str, str]]

NEW_LINK = {"url": "https://example.com/", "touchpoint": "store-flyer", "stage": "awareness"}


def _key_row(session: Session, raw: str) -> ApiKey:
    # Reloaded, not rolled back: the test's session shares the test's transaction with the app,
    # and rolling it back would undo what the requests wrote since.
    session.expire_all()
    return session.scalars(select(ApiKey).where(ApiKey.prefix == raw[:10])).one()


@pytest.mark.parametrize(
    "sent",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer    "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Token tl_abc"},
        {"Authorization": "Bearer tl_not-a-key-we-issued"},
        {"Authorization": "Bearer tl_\u00e9\u00e8"},
    ],
    ids=["none", "empty", "scheme-only", "blank", "basic", "token", "unknown", "latin-1"],
)
def test_a_request_without_a_valid_key_is_a_401(
    client: FlaskClient, expect_error: ErrorCheck, sent: dict[str, str]
) -> None:
    for method, path in (("GET", "/api/v1/links"), ("POST", "/api/v1/links"),
                         ("GET", "/api/v1/stages"), ("DELETE", "/api/v1/touchpoints/x")):
        response = client.open(path, method=method, json=NEW_LINK, headers=sent)

        expect_error(response, 401, "unauthenticated")
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_the_key_is_checked_before_the_body(
    client: FlaskClient, expect_error: ErrorCheck
) -> None:
    response = client.post("/api/v1/links", data="not json", content_type="application/json")

    expect_error(response, 401, "unauthenticated")


def test_a_revoked_key_is_a_401(
    client: FlaskClient,
    rt: Runtime,
    make_key: Callable[[str], str],
    bearer: Bearer,
    touchpoint: dict[str, Any],
    expect_error: ErrorCheck,
) -> None:
    raw = make_key("admin")
    assert client.get("/api/v1/links", headers=bearer(raw)).status_code == 200

    with transaction(rt.sessions) as session:
        revoke_key(session, raw[:10], now=utcnow())

    for method, path in (("GET", "/api/v1/links"), ("POST", "/api/v1/links")):
        response = client.open(path, method=method, json=NEW_LINK, headers=bearer(raw))
        expect_error(response, 401, "unauthenticated")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/links", NEW_LINK),
        ("PATCH", "/api/v1/links/{link}", {"campaign": "x"}),
        ("DELETE", "/api/v1/links/{link}", None),
        ("POST", "/api/v1/touchpoints", {"key": "tp", "name": "TP", "channel": "digital"}),
        ("PATCH", "/api/v1/touchpoints/store-flyer", {"name": "x"}),
        ("DELETE", "/api/v1/touchpoints/store-flyer", None),
        ("POST", "/api/v1/stages", {"key": "loyalty"}),
        ("PUT", "/api/v1/stages/order", {"keys": []}),
    ],
)
def test_an_analyst_key_cannot_change_anything(
    client: FlaskClient,
    analyst: dict[str, str],
    link: dict[str, Any],
    expect_error: ErrorCheck,
    method: str,
    path: str,
    body: Any,
) -> None:
    response = client.open(path.format(link=link["id"]), method=method, json=body,
                           headers=analyst)

    error = expect_error(response, 403, "forbidden")
    assert "analyst" in error["message"]
    assert client.get(f"/api/v1/links/{link['id']}", headers=analyst).get_json() == link


def test_an_analyst_can_read_links_touchpoints_stages_and_qr_codes(
    client: FlaskClient, analyst: dict[str, str], link: dict[str, Any]
) -> None:
    links = client.get("/api/v1/links", headers=analyst)
    assert links.status_code == 200
    assert [item["id"] for item in links.get_json()["items"]] == [link["id"]]

    touchpoints = client.get("/api/v1/touchpoints", headers=analyst)
    assert touchpoints.status_code == 200
    assert [tp["key"] for tp in touchpoints.get_json()["items"]] == ["store-flyer"]

    assert client.get("/api/v1/touchpoints/store-flyer", headers=analyst).status_code == 200
    assert client.get("/api/v1/stages", headers=analyst).status_code == 200
    assert client.get(f"/api/v1/links/{link['id']}", headers=analyst).status_code == 200
    assert client.get(f"/api/v1/links/{link['id']}/qr.svg", headers=analyst).status_code == 200


def test_a_marketer_cannot_change_the_stage_model(
    client: FlaskClient, marketer: dict[str, str], expect_error: ErrorCheck
) -> None:
    expect_error(client.post("/api/v1/stages", json={"key": "loyalty"}, headers=marketer),
                 403, "forbidden")
    order = ["support", "post-purchase", "decision", "consideration", "awareness"]
    expect_error(client.put("/api/v1/stages/order", json={"keys": order}, headers=marketer),
                 403, "forbidden")
    stages = client.get("/api/v1/stages", headers=marketer).get_json()["items"]
    assert stages[0]["key"] == "awareness"


def test_an_admin_can_change_the_stage_model_and_do_what_a_marketer_does(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    assert client.post("/api/v1/stages", json={"key": "loyalty"}, headers=admin).status_code == 201
    response = client.post(
        "/api/v1/touchpoints",
        json={"key": "poster", "name": "Poster", "channel": "physical"},
        headers=admin,
    )
    assert response.status_code == 201
    link = client.post(
        "/api/v1/links", json={**NEW_LINK, "touchpoint": "poster", "stage": "loyalty"},
        headers=admin,
    )
    assert link.status_code == 201


def test_a_key_records_when_it_was_last_used(
    client: FlaskClient, make_key: Callable[[str], str], bearer: Bearer, session: Session
) -> None:
    raw = make_key("analyst")
    assert _key_row(session, raw).last_used_at is None

    before = datetime.now(UTC)
    assert client.get("/api/v1/links", headers=bearer(raw)).status_code == 200

    used = _key_row(session, raw).last_used_at
    assert used is not None
    assert before - timedelta(seconds=1) <= used <= datetime.now(UTC)


def test_last_use_is_recorded_even_when_the_request_fails(
    client: FlaskClient, make_key: Callable[[str], str], bearer: Bearer, session: Session
) -> None:
    raw = make_key("marketer")

    response = client.post("/api/v1/links", json={"url": 5}, headers=bearer(raw))

    assert response.status_code == 422
    assert _key_row(session, raw).last_used_at is not None


def test_last_use_is_written_at_most_once_a_minute(
    client: FlaskClient,
    make_key: Callable[[str], str],
    bearer: Bearer,
    rt: Runtime,
    session: Session,
) -> None:
    raw = make_key("analyst")
    client.get("/api/v1/stages", headers=bearer(raw))
    first = _key_row(session, raw).last_used_at
    assert first is not None

    client.get("/api/v1/stages", headers=bearer(raw))
    assert _key_row(session, raw).last_used_at == first

    long_ago = datetime.now(UTC) - timedelta(hours=1)
    with transaction(rt.sessions) as writer:
        writer.scalars(select(ApiKey).where(ApiKey.prefix == raw[:10])).one().last_used_at = (
            long_ago
        )
    client.get("/api/v1/stages", headers=bearer(raw))
    refreshed = _key_row(session, raw).last_used_at
    assert refreshed is not None and refreshed > long_ago + timedelta(minutes=59)


@pytest.mark.commits  # the requests race from threads, each on a connection of its own
def test_concurrent_requests_with_a_fresh_key_all_succeed(
    app: Flask, make_key: Callable[[str], str], bearer: Bearer, touchpoint: dict[str, Any]
) -> None:
    fresh = bearer(make_key("marketer"))  # never used: every racer finds its last use due
    racers = 8
    barrier = threading.Barrier(racers)
    statuses: list[int] = []

    def request(n: int) -> None:
        client = app.test_client()
        barrier.wait()
        if n % 2:
            response = client.get("/api/v1/links", headers=fresh)
        else:
            response = client.post("/api/v1/links", json=NEW_LINK, headers=fresh)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=request, args=(n,)) for n in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(statuses) == [200] * (racers // 2) + [201] * (racers // 2)


def test_unknown_api_paths_and_methods_answer_json(
    client: FlaskClient, analyst: dict[str, str], expect_error: ErrorCheck
) -> None:
    expect_error(client.get("/api/v1/nothing", headers=analyst), 404)
    response = client.put("/api/v1/links", headers=analyst)
    expect_error(response, 405)
    assert "POST" in response.headers["Allow"]
