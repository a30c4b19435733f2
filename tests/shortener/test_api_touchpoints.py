"""The touchpoints API through the real path: HTTP request → rows → response → redirect."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shortener.db import utcnow
from shortener.models import Placement, Touchpoint

ErrorCheck = Callable[..., dict[str, Any]]
LinkMaker = Callable[..., dict[str, Any]]

TOUCHPOINTS = "/api/v1/touchpoints"


def _create(client: FlaskClient, headers: dict[str, str], **fields: Any) -> Any:
    body = {"key": "newsletter", "name": "Monthly newsletter", "channel": "digital", **fields}
    return client.post(TOUCHPOINTS, json={k: v for k, v in body.items() if v is not ...},
                       headers=headers)


def test_creating_a_touchpoint_answers_201_with_the_documented_shape(
    client: FlaskClient, marketer: dict[str, str], session: Session
) -> None:
    response = _create(client, marketer, kind="email", exposure=12_000)

    assert response.status_code == 201
    body = response.get_json()
    assert {"key", "name", "channel", "kind", "exposure"} <= set(body)
    assert (body["key"], body["name"], body["channel"], body["kind"], body["exposure"]) == (
        "newsletter", "Monthly newsletter", "digital", "email", 12_000
    )
    row = session.scalars(select(Touchpoint).where(Touchpoint.key == "newsletter")).one()
    assert (row.name, row.channel, row.kind, row.exposure, row.archived) == (
        "Monthly newsletter", "digital", "email", 12_000, False
    )


def test_kind_and_exposure_are_optional(client: FlaskClient, marketer: dict[str, str]) -> None:
    body = _create(client, marketer, channel="human").get_json()

    assert (body["kind"], body["exposure"]) == (None, None)


def test_touchpoints_are_listed_by_key_and_filtered_by_channel(
    client: FlaskClient, marketer: dict[str, str], analyst: dict[str, str]
) -> None:
    for key, channel in (("sales-rep", "human"), ("flyer", "physical"), ("ads", "digital"),
                         ("collect", "hybrid"), ("banner", "digital")):
        assert _create(client, marketer, key=key, channel=channel).status_code == 201

    everything = client.get(TOUCHPOINTS, headers=analyst).get_json()["items"]
    digital = client.get(f"{TOUCHPOINTS}?channel=digital", headers=analyst).get_json()["items"]

    assert [tp["key"] for tp in everything] == ["ads", "banner", "collect", "flyer", "sales-rep"]
    assert [tp["key"] for tp in digital] == ["ads", "banner"]


def test_an_unknown_channel_filter_is_a_400(
    client: FlaskClient, analyst: dict[str, str], expect_error: ErrorCheck
) -> None:
    expect_error(client.get(f"{TOUCHPOINTS}?channel=email", headers=analyst), 400,
                 parameter="channel")


def test_a_touchpoint_is_read_back_by_key(
    client: FlaskClient, analyst: dict[str, str], touchpoint: dict[str, Any]
) -> None:
    response = client.get(f"{TOUCHPOINTS}/store-flyer", headers=analyst)

    assert response.status_code == 200
    assert response.get_json() == touchpoint


@pytest.mark.parametrize("key", ["nobody", "Store-Flyer", "store%20flyer", "x" * 65, "st%00re"])
def test_an_unknown_touchpoint_is_a_json_404(
    client: FlaskClient,
    marketer: dict[str, str],
    touchpoint: dict[str, Any],
    expect_error: ErrorCheck,
    key: str,
) -> None:
    expect_error(client.get(f"{TOUCHPOINTS}/{key}", headers=marketer), 404, "not_found")
    expect_error(client.patch(f"{TOUCHPOINTS}/{key}", json={"name": "x"}, headers=marketer),
                 404, "not_found")
    expect_error(client.delete(f"{TOUCHPOINTS}/{key}", headers=marketer), 404, "not_found")


def test_patching_a_touchpoint_changes_only_the_fields_given(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any], session: Session
) -> None:
    response = client.patch(
        f"{TOUCHPOINTS}/store-flyer",
        json={"name": "Store flyer, Paris", "kind": "advertising"},
        headers=marketer,
    )

    assert response.status_code == 200
    body = response.get_json()
    assert (body["key"], body["name"], body["channel"], body["kind"], body["exposure"]) == (
        "store-flyer", "Store flyer, Paris", "physical", "advertising", 500
    )
    row = session.scalars(select(Touchpoint).where(Touchpoint.key == "store-flyer")).one()
    assert (row.name, row.kind, row.exposure) == ("Store flyer, Paris", "advertising", 500)


def test_renaming_the_key_or_channel_retags_its_links_at_once(
    client: FlaskClient, marketer: dict[str, str], link: dict[str, Any]
) -> None:
    assert "utm_source=store-flyer&utm_medium=physical" in client.get("/spring").location

    response = client.patch(
        f"{TOUCHPOINTS}/store-flyer", json={"key": "flyer-paris", "channel": "hybrid"},
        headers=marketer,
    )

    assert response.status_code == 200
    assert "utm_source=flyer-paris&utm_medium=hybrid" in client.get("/spring").location
    assert client.get(f"/api/v1/links/{link['id']}", headers=marketer).get_json()[
        "touchpoint"
    ] == "flyer-paris"
    assert client.get(f"{TOUCHPOINTS}/store-flyer", headers=marketer).status_code == 404


def test_renaming_to_a_taken_key_is_a_409_and_changes_nothing(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any],
    expect_error: ErrorCheck, session: Session,
) -> None:
    assert _create(client, marketer).status_code == 201

    response = client.patch(f"{TOUCHPOINTS}/newsletter",
                            json={"key": "store-flyer", "name": "Renamed"}, headers=marketer)

    expect_error(response, 409, "conflict", field="key")
    row = session.scalars(select(Touchpoint).where(Touchpoint.name == "Monthly newsletter")).one()
    assert row.key == "newsletter"


def test_a_duplicate_key_is_a_409(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any],
    expect_error: ErrorCheck, session: Session,
) -> None:
    error = expect_error(_create(client, marketer, key="store-flyer"), 409, "conflict",
                         field="key")

    assert "store-flyer" in error["message"]
    assert session.scalar(select(func.count()).select_from(Touchpoint)) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("channel", "email"),
        ("channel", "Digital"),
        ("channel", 5),
        ("channel", None),
        ("channel", ...),
        ("exposure", 0),
        ("exposure", -5),
        ("exposure", "100"),
        ("exposure", 1.5),
        ("exposure", True),
        ("exposure", 2_000_000_001),
        ("key", "Store Flyer"),
        ("key", "-flyer"),
        ("key", "flyer/paris"),
        ("key", "x" * 65),
        ("key", ""),
        ("key", ...),
        ("name", ...),
        ("name", "   "),
        ("name", "x" * 201),
        ("name", "tab\there"),
        ("kind", 3),
        ("archived", True),
        ("colour", "red"),
    ],
)
def test_bad_touchpoint_input_is_a_422_naming_the_field(
    client: FlaskClient,
    marketer: dict[str, str],
    expect_error: ErrorCheck,
    session: Session,
    field: str,
    value: Any,
) -> None:
    expect_error(_create(client, marketer, **{field: value}), 422, field=field)
    assert session.scalar(select(func.count()).select_from(Touchpoint)) == 0


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"channel": "email"}, "channel"),
        ({"exposure": 0}, "exposure"),
        ({"exposure": 1000}, "exposure"),  # exposure is the placements' (see below)
        ({"exposure": None}, "exposure"),
        ({"key": None}, "key"),
        ({"name": None}, "name"),
        ({"channel": None}, "channel"),
        ({"archived": None}, "archived"),
        ({"id": 3}, "id"),
    ],
)
def test_a_bad_touchpoint_patch_is_a_422_naming_the_field(
    client: FlaskClient,
    marketer: dict[str, str],
    touchpoint: dict[str, Any],
    expect_error: ErrorCheck,
    patch: dict[str, Any],
    field: str,
) -> None:
    response = client.patch(f"{TOUCHPOINTS}/store-flyer", json=patch, headers=marketer)

    expect_error(response, 422, field=field)
    assert client.get(f"{TOUCHPOINTS}/store-flyer", headers=marketer).get_json() == touchpoint


def test_deleting_a_touchpoint_archives_it(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any], session: Session
) -> None:
    response = client.delete(f"{TOUCHPOINTS}/store-flyer", headers=marketer)

    assert response.status_code == 200
    assert response.get_json()["archived"] is True
    row = session.scalars(select(Touchpoint).where(Touchpoint.key == "store-flyer")).one()
    assert row.archived is True
    assert client.get(TOUCHPOINTS, headers=marketer).get_json()["items"] == []
    listed = client.get(f"{TOUCHPOINTS}?archived=include", headers=marketer).get_json()["items"]
    assert [tp["key"] for tp in listed] == ["store-flyer"]
    assert client.get(f"{TOUCHPOINTS}/store-flyer", headers=marketer).get_json()["archived"]


def test_an_archived_touchpoint_cannot_get_new_links(
    client: FlaskClient, marketer: dict[str, str], link: dict[str, Any], expect_error: ErrorCheck
) -> None:
    assert _create(client, marketer).status_code == 201
    client.delete(f"{TOUCHPOINTS}/newsletter", headers=marketer)

    created = client.post(
        "/api/v1/links",
        json={"url": "https://example.com/", "touchpoint": "newsletter", "stage": "awareness"},
        headers=marketer,
    )
    moved = client.patch(f"/api/v1/links/{link['id']}", json={"touchpoint": "newsletter"},
                         headers=marketer)

    error = expect_error(created, 422, "unknown_reference", field="touchpoint")
    assert "archived" in error["message"]
    expect_error(moved, 422, "unknown_reference", field="touchpoint")


def test_a_restored_touchpoint_can_get_links_again(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any],
    new_link: LinkMaker,
) -> None:
    client.delete(f"{TOUCHPOINTS}/store-flyer", headers=marketer)

    response = client.patch(f"{TOUCHPOINTS}/store-flyer", json={"archived": False},
                            headers=marketer)

    assert response.status_code == 200
    assert new_link()["touchpoint"] == "store-flyer"


# --- exposure: dated placements ------------------------------------------------------------------

EXPOSURES = f"{TOUCHPOINTS}/store-flyer/exposures"


def test_exposure_given_on_creation_is_a_first_placement_dated_today_in_the_workspace(
    make_app: Callable[..., Flask], marketer: dict[str, str], session: Session
) -> None:
    zone = ZoneInfo("Asia/Tokyo")  # nine hours ahead: its day is not always the UTC one
    client = make_app(timezone="Asia/Tokyo").test_client()
    before = utcnow().astimezone(zone).date()
    created = _create(client, marketer, exposure=12_000).get_json()
    after = utcnow().astimezone(zone).date()

    listed = client.get(f"{TOUCHPOINTS}/newsletter/exposures", headers=marketer).get_json()

    (first,) = listed["items"]
    assert (first["count"], first["to"], first["note"]) == (12_000, None, None)
    assert first["from"] in {str(before), str(after)}
    assert created["exposure"] == 12_000
    assert session.scalar(select(func.count()).select_from(Placement)) == 1


def test_placements_are_added_listed_and_summed_into_the_exposure(
    client: FlaskClient, marketer: dict[str, str], analyst: dict[str, str],
    touchpoint: dict[str, Any], session: Session,
) -> None:
    today = utcnow().date()  # the `touchpoint` fixture's 500 are dated today
    week = {"count": 2000, "from": str(today - timedelta(days=28)),
            "to": str(today - timedelta(days=22)), "note": "Flyers handed out in a week"}
    response = client.post(EXPOSURES, json=week, headers=marketer)
    emails = client.post(EXPOSURES, json={"count": 5000, "from": str(today - timedelta(days=21))},
                         headers=marketer)

    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"id", "count", "from", "to", "note", "created_at"}
    assert {k: body[k] for k in ("count", "from", "to", "note")} == week
    assert abs(datetime.fromisoformat(body["created_at"]) - utcnow()) < timedelta(minutes=1)
    assert (emails.status_code, emails.get_json()["to"], emails.get_json()["note"]) == (
        201, None, None
    )
    listed = client.get(EXPOSURES, headers=analyst).get_json()["items"]
    assert [(p["id"], p["count"], p["from"]) for p in listed] == [
        (body["id"], 2000, week["from"]),
        (emails.get_json()["id"], 5000, str(today - timedelta(days=21))),
        (listed[2]["id"], 500, listed[2]["from"]),
    ]
    assert listed[2]["from"] in {str(today), str(today - timedelta(days=1))}  # made just now
    assert client.get(f"{TOUCHPOINTS}/store-flyer", headers=analyst).get_json()["exposure"] == 7500
    assert session.scalar(select(func.sum(Placement.count))) == 7500


def test_a_deleted_placement_leaves_the_exposure(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any], session: Session
) -> None:
    (first,) = client.get(EXPOSURES, headers=marketer).get_json()["items"]

    response = client.delete(f"{EXPOSURES}/{first['id']}", headers=marketer)

    assert response.status_code == 200
    assert response.get_json() == first
    assert client.get(EXPOSURES, headers=marketer).get_json()["items"] == []
    assert client.get(f"{TOUCHPOINTS}/store-flyer", headers=marketer).get_json()[
        "exposure"
    ] is None  # no placement: nothing is known of its reach
    assert session.scalar(select(func.count()).select_from(Placement)) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"count": 0, "from": "2026-11-03"}, "count"),
        ({"count": -5, "from": "2026-11-03"}, "count"),
        ({"count": "100", "from": "2026-11-03"}, "count"),
        ({"count": 1.5, "from": "2026-11-03"}, "count"),
        ({"count": True, "from": "2026-11-03"}, "count"),
        ({"count": None, "from": "2026-11-03"}, "count"),
        ({"from": "2026-11-03"}, "count"),
        ({"count": 2_000_000_001, "from": "2026-11-03"}, "count"),
        ({"count": 100}, "from"),
        ({"count": 100, "from": None}, "from"),
        ({"count": 100, "from": "2026-13-01"}, "from"),
        ({"count": 100, "from": "2026-02-30"}, "from"),
        ({"count": 100, "from": "03/11/2026"}, "from"),
        ({"count": 100, "from": "2026-11-03T10:00"}, "from"),
        ({"count": 100, "from": 20261103}, "from"),
        ({"count": 100, "from": "0001-01-01"}, "from"),
        ({"count": 100, "from": "2026-11-03", "to": "2026-11-02"}, "to"),
        ({"count": 100, "from": "2026-11-03", "to": "next week"}, "to"),
        ({"count": 100, "from": "2026-11-03", "note": "x" * 201}, "note"),
        ({"count": 100, "from": "2026-11-03", "note": 5}, "note"),
        ({"count": 100, "from": "2026-11-03", "people": 100}, "people"),
        ({"count": 100, "from": "2026-11-03", "exposure": 100}, "exposure"),
    ],
)
def test_a_bad_placement_is_a_422_naming_the_field_and_adds_nothing(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any],
    expect_error: ErrorCheck, session: Session, body: dict[str, Any], field: str,
) -> None:
    expect_error(client.post(EXPOSURES, json=body, headers=marketer), 422, field=field)

    assert session.scalar(select(func.count()).select_from(Placement)) == 1  # the fixture's
    assert client.get(f"{TOUCHPOINTS}/store-flyer", headers=marketer).get_json()[
        "exposure"
    ] == 500


def test_a_placement_on_the_day_it_began_and_ended_is_fine(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any]
) -> None:
    one_day = {"count": 5000, "from": "2026-11-10", "to": "2026-11-10"}

    assert client.post(EXPOSURES, json=one_day, headers=marketer).status_code == 201


def test_a_body_that_is_not_an_object_is_a_400(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any],
    expect_error: ErrorCheck,
) -> None:
    expect_error(client.post(EXPOSURES, json=[5000], headers=marketer), 400)


def test_placements_of_an_unknown_touchpoint_are_404s(
    client: FlaskClient, marketer: dict[str, str], expect_error: ErrorCheck
) -> None:
    path = f"{TOUCHPOINTS}/nobody/exposures"
    body = {"count": 100, "from": "2026-11-03"}

    expect_error(client.get(path, headers=marketer), 404, "not_found")
    expect_error(client.post(path, json=body, headers=marketer), 404, "not_found")
    expect_error(client.delete(f"{path}/1", headers=marketer), 404, "not_found")


def test_deleting_a_placement_that_is_not_the_touchpoints_is_a_404(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any],
    expect_error: ErrorCheck, session: Session,
) -> None:
    assert _create(client, marketer, exposure=300).status_code == 201
    (theirs,) = client.get(f"{TOUCHPOINTS}/newsletter/exposures", headers=marketer).get_json()[
        "items"
    ]

    expect_error(client.delete(f"{EXPOSURES}/{theirs['id']}", headers=marketer), 404, "not_found")
    expect_error(client.delete(f"{EXPOSURES}/{theirs['id'] + 1000}", headers=marketer), 404,
                 "not_found")
    expect_error(client.delete(f"{EXPOSURES}/99999999999", headers=marketer), 404, "not_found")
    assert session.scalar(select(func.count()).select_from(Placement)) == 2


def test_analysts_read_placements_and_marketers_make_them(
    client: FlaskClient, analyst: dict[str, str], touchpoint: dict[str, Any],
    expect_error: ErrorCheck,
) -> None:
    body = {"count": 100, "from": "2026-11-03"}
    (first,) = client.get(EXPOSURES, headers=analyst).get_json()["items"]

    expect_error(client.post(EXPOSURES, json=body, headers=analyst), 403, "forbidden")
    expect_error(client.delete(f"{EXPOSURES}/{first['id']}", headers=analyst), 403, "forbidden")
    expect_error(client.get(EXPOSURES), 401, "unauthenticated")


def test_patching_the_exposure_points_at_the_placements(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any],
    expect_error: ErrorCheck,
) -> None:
    response = client.patch(f"{TOUCHPOINTS}/store-flyer", json={"exposure": 2000},
                            headers=marketer)

    error = expect_error(response, 422, field="exposure")
    assert "POST /api/v1/touchpoints/store-flyer/exposures" in error["message"]
