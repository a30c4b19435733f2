"""Fetches made ahead of any click (a browser's prefetch, a mail scanner opening every link of an
email) are stored as bots (`scanner:prefetch`), whatever user agent they carry."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from analytics.models import Click
from shortener.runtime import runtime
from tests.user_agents import IPHONE


@pytest.mark.parametrize("sent", [
    {"Sec-Purpose": "prefetch"},
    {"Sec-Purpose": "prefetch;prerender"},
    {"Purpose": "prefetch"},
    {"X-Moz": "prefetch"},
    {"X-Purpose": "preview"},
])
def test_a_prefetch_with_a_browsers_user_agent_is_a_scanners_not_a_persons(
    client: FlaskClient, link: dict[str, Any], analyst: dict[str, str], app: Flask,
    sent: dict[str, str],
) -> None:
    fetched = client.get("/spring", headers={"User-Agent": IPHONE, **sent})
    clicked = client.get("/spring", headers={"User-Agent": IPHONE})

    assert fetched.status_code == clicked.status_code == 302
    assert fetched.headers["Location"] == clicked.headers["Location"]  # it still gets there
    with runtime(app).sessions() as session:
        stored = session.execute(
            select(Click.is_bot, Click.bot_reason).order_by(Click.click_id)
        ).all()
    assert [tuple(row) for row in stored] == [(True, "scanner:prefetch"), (False, None)]
    figures = client.get(f"/api/v1/reports/links/{link['id']}", headers=analyst).get_json()
    assert (figures["figures"]["human_clicks"], figures["figures"]["bot_clicks"]) == (1, 1)
