"""The stage model through the API: listed in journey order, appended to, reordered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from shortener.models import Stage

ErrorCheck = Callable[..., dict[str, Any]]
LinkMaker = Callable[..., dict[str, Any]]

STAGES = "/api/v1/stages"
CLASSIC = ["awareness", "consideration", "decision", "post-purchase", "support"]


def _keys(client: FlaskClient, headers: dict[str, str]) -> list[str]:
    response = client.get(STAGES, headers=headers)
    assert response.status_code == 200
    return [stage["key"] for stage in response.get_json()["items"]]


def test_stages_are_listed_in_journey_order(
    client: FlaskClient, analyst: dict[str, str]
) -> None:
    items = client.get(STAGES, headers=analyst).get_json()["items"]

    assert items == [
        {"key": "awareness", "name": "Awareness", "position": 1},
        {"key": "consideration", "name": "Consideration", "position": 2},
        {"key": "decision", "name": "Decision", "position": 3},
        {"key": "post-purchase", "name": "Post purchase", "position": 4},
        {"key": "support", "name": "Support", "position": 5},
    ]


def test_a_new_stage_is_appended_to_the_journey(
    client: FlaskClient, admin: dict[str, str], session: Session
) -> None:
    response = client.post(STAGES, json={"key": "loyalty", "name": "Loyal customers"},
                           headers=admin)

    assert response.status_code == 201
    assert response.get_json() == {"key": "loyalty", "name": "Loyal customers", "position": 6}
    assert _keys(client, admin) == [*CLASSIC, "loyalty"]
    row = session.scalars(select(Stage).where(Stage.key == "loyalty")).one()
    assert (row.name, row.position) == ("Loyal customers", 6)


def test_a_stage_without_a_name_is_named_after_its_key(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    response = client.post(STAGES, json={"key": "win-back"}, headers=admin)

    assert response.get_json()["name"] == "Win back"


def test_a_new_stage_can_tag_links_at_once(
    client: FlaskClient, admin: dict[str, str], new_link: LinkMaker
) -> None:
    client.post(STAGES, json={"key": "advocacy"}, headers=admin)

    assert new_link(stage="advocacy")["stage"] == "advocacy"


def test_a_duplicate_stage_key_is_a_409(
    client: FlaskClient, admin: dict[str, str], expect_error: ErrorCheck
) -> None:
    response = client.post(STAGES, json={"key": "decision"}, headers=admin)

    error = expect_error(response, 409, "conflict")
    assert "decision" in error["message"]
    assert _keys(client, admin) == CLASSIC


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "key"),
        ({"key": "Loyalty"}, "key"),
        ({"key": "loyal ty"}, "key"),
        ({"key": 7}, "key"),
        ({"key": "x" * 65}, "key"),
        ({"key": "loyalty", "name": 7}, "name"),
        ({"key": "loyalty", "name": "x" * 201}, "name"),
        ({"key": "loyalty", "position": 1}, "position"),
    ],
)
def test_a_bad_stage_is_a_422_naming_the_field(
    client: FlaskClient,
    admin: dict[str, str],
    expect_error: ErrorCheck,
    body: dict[str, Any],
    field: str,
) -> None:
    expect_error(client.post(STAGES, json=body, headers=admin), 422, field=field)
    assert _keys(client, admin) == CLASSIC


def test_stages_are_reordered_by_naming_every_key(
    client: FlaskClient, admin: dict[str, str], session: Session
) -> None:
    order = ["support", "awareness", "decision", "consideration", "post-purchase"]

    response = client.put(f"{STAGES}/order", json={"keys": order}, headers=admin)

    assert response.status_code == 200
    assert response.get_json()["items"] == [
        {"key": key, "name": key.replace("-", " ").capitalize(), "position": n}
        for n, key in enumerate(order, start=1)
    ]
    assert _keys(client, admin) == order
    positions = {stage.key: stage.position for stage in session.scalars(select(Stage))}
    assert positions == {key: n for n, key in enumerate(order, start=1)}


def test_the_new_order_may_be_sent_as_a_bare_list(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    order = list(reversed(CLASSIC))

    assert client.put(f"{STAGES}/order", json=order, headers=admin).status_code == 200
    assert _keys(client, admin) == order


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"keys": CLASSIC[:-1]}, "keys"),
        ({"keys": [*CLASSIC, "loyalty"]}, "keys"),
        ({"keys": [*CLASSIC[:-1], "awareness"]}, "keys"),
        ({"keys": [*CLASSIC, "support"]}, "keys"),
        ({"keys": "awareness"}, "keys"),
        ({"keys": [1, 2, 3, 4, 5]}, "keys.0"),
        ({"keys": None}, "keys"),
        ({}, "keys"),
        ({"order": CLASSIC}, "order"),
        ({"keys": CLASSIC, "extra": True}, "extra"),
        ([*CLASSIC[:-1], None], "keys.4"),
        ("awareness", "keys"),
    ],
)
def test_a_bad_order_is_a_422_naming_the_field_and_changes_nothing(
    client: FlaskClient, admin: dict[str, str], expect_error: ErrorCheck, body: Any, field: str
) -> None:
    response = client.put(f"{STAGES}/order", json=body, headers=admin)

    expect_error(response, 422, field=field)
    assert _keys(client, admin) == CLASSIC
