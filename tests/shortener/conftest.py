"""Fixtures for the link side's API tests: links made through the API, an id that no link has, and
one check of the JSON error shape that every failure must have, and a marketer signed in to the
pages. Keys of every role (`marketer`, `analyst`, `admin`) come from tests/conftest.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from shortener.models import Link
from shortener.runtime import runtime
from shortener.unit_of_work import link_changed, transaction

ErrorCheck = Callable[..., dict[str, Any]]
LinkMaker = Callable[..., dict[str, Any]]


@pytest.fixture
def marketer_client(auth: Any) -> FlaskClient:
    """A browser signed in through the form as a new marketer, for the pages' tests."""
    client: FlaskClient = auth.client("marketer")
    return client


@pytest.fixture
def expect_error() -> ErrorCheck:
    """Assert a JSON error of `status` (and `code`) that names `field` or `parameter`."""

    def check(
        response: TestResponse,
        status: int,
        code: str | None = None,
        *,
        field: str | None = None,
        parameter: str | None = None,
    ) -> dict[str, Any]:
        assert response.status_code == status, response.get_data(as_text=True)[:500]
        assert response.mimetype == "application/json"
        body = response.get_json()
        assert set(body) == {"error"}
        error: dict[str, Any] = body["error"]
        assert set(error) == {"code", "message", "details"}
        assert isinstance(error["code"], str) and error["code"]
        assert isinstance(error["message"], str) and error["message"]
        assert isinstance(error["details"], dict)
        if code is not None:
            assert error["code"] == code, error
        if field is not None:
            assert error["details"].get("field") == field, error
            assert field in error["message"]
        if parameter is not None:
            assert error["details"].get("parameter") == parameter, error
            assert parameter in error["message"]
        return error

    return check


@pytest.fixture
def new_link(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any]
) -> LinkMaker:
    """Create a link through the API (defaults: the store flyer, awareness) and return its JSON."""

    def create(**fields: Any) -> dict[str, Any]:
        body = {
            "url": "https://shop.example.com/",
            "touchpoint": touchpoint["key"],
            "stage": "awareness",
            **fields,
        }
        response = client.post("/api/v1/links", json=body, headers=marketer)
        assert response.status_code == 201, response.get_json()
        created: dict[str, Any] = response.get_json()
        return created

    return create


@pytest.fixture
def unknown_link_id(session: Session) -> int:
    """An id no link has. Ids are not reset between tests (each test's rows are rolled back, and
    PostgreSQL keeps its sequences), so no literal number is sure to be free."""
    return (session.scalar(select(func.max(Link.id))) or 0) + 1


@pytest.fixture
def expire_link(app: Flask) -> Callable[[int], None]:
    """Let a link's expiry pass: a link cannot be made already expired (a typo, refused)."""

    def expire(link_id: int) -> None:
        with transaction(runtime(app).sessions) as session:
            link = session.get(Link, link_id)
            assert link is not None
            link.expires_at = datetime.now(UTC) - timedelta(minutes=1)
            link_changed(session, link.domain, link.slug)

    return expire
