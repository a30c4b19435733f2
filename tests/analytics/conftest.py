"""Fixtures of the report tests: touchpoints, links and visits made through the API and the
redirect (`shop`, `journey`), and raw clicks at chosen times stored through the ingest the worker
uses (`ingest`), with one enricher for the whole session."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from analytics.enrich import Enricher, make_enricher
from analytics.ingest import store_clicks
from analytics.runtime import runtime
from shortener.clicks import RawClick, new_click_id
from shortener.db import utcnow
from shortener.models import Link
from shortener.unit_of_work import transaction
from tests.user_agents import ANDROID, DESKTOP, GOOGLEBOT, IPHONE, SLACKBOT

Visitor = tuple[str, str]  # an IP address and a user agent

# The people of the `journey`.
ANNA: Visitor = ("203.0.113.7", IPHONE)
BEN: Visitor = ("203.0.113.8", ANDROID)
CLARA: Visitor = ("198.51.100.4", DESKTOP)
DAVID: Visitor = ("198.51.100.5", IPHONE)
CRAWLER: Visitor = ("66.249.66.1", GOOGLEBOT)
SLACK: Visitor = ("3.210.10.1", SLACKBOT)


class Shop:
    """A marketer's touchpoints and links, made through the API, and customers' visits, made
    through the redirect (a click is in SQL when its redirect returns)."""

    def __init__(self, client: FlaskClient, marketer: dict[str, str]) -> None:
        self._client = client
        self._marketer = marketer

    def touchpoint(self, key: str, channel: str, **extra: Any) -> dict[str, Any]:
        data = {"key": key, "name": key.replace("-", " ").capitalize(), "channel": channel,
                **extra}
        response = self._client.post("/api/v1/touchpoints", json=data, headers=self._marketer)
        assert response.status_code == 201, response.json
        return response.json  # type: ignore[return-value]

    def link(
        self, slug: str, touchpoint: str, stage: str, campaign: str | None = None
    ) -> dict[str, Any]:
        data = {"url": f"https://shop.example.com/{slug}", "touchpoint": touchpoint,
                "stage": stage, "slug": slug, "campaign": campaign}
        response = self._client.post("/api/v1/links", json=data, headers=self._marketer)
        assert response.status_code == 201, response.json
        return response.json  # type: ignore[return-value]

    def archive(self, touchpoint: str) -> None:
        response = self._client.delete(
            f"/api/v1/touchpoints/{touchpoint}", headers=self._marketer
        )
        assert response.status_code == 200, response.json

    def visit(self, slug: str, visitor: Visitor, *, qr: bool = False) -> None:
        ip, agent = visitor
        response = self._client.get(
            f"/{slug}?qr=1" if qr else f"/{slug}",
            headers={"User-Agent": agent},
            environ_base={"REMOTE_ADDR": ip},
        )
        assert response.status_code == 302


@pytest.fixture
def shop(client: FlaskClient, marketer: dict[str, str]) -> Shop:
    return Shop(client, marketer)


@pytest.fixture
def journey(shop: Shop, link: dict[str, Any]) -> None:
    """Four live touchpoints (one without clicks) and an archived one, on top of the `link` fixture.

    store-flyer  spring     awareness      spring-launch  Anna, Anna (scan), Ben (scan); 2 Googlebot
    insta-bio    bio        awareness                     Anna, Clara, David; 1 Slackbot
                 bio-offer  decision       spring-launch  Anna
    help-desk    faq        consideration                 Ben
    packaging    box        post-purchase                 (nothing)
    old-poster   poster     awareness                     Clara, then the touchpoint is archived
    """
    shop.touchpoint("insta-bio", "digital")
    shop.touchpoint("help-desk", "human")
    shop.touchpoint("packaging", "physical", exposure=10_000)
    shop.touchpoint("old-poster", "physical")
    shop.link("bio", "insta-bio", "awareness")
    shop.link("bio-offer", "insta-bio", "decision", "spring-launch")
    shop.link("faq", "help-desk", "consideration")
    shop.link("box", "packaging", "post-purchase")
    shop.link("poster", "old-poster", "awareness")

    shop.visit("spring", ANNA)
    shop.visit("spring", ANNA, qr=True)
    shop.visit("spring", BEN, qr=True)
    shop.visit("spring", CRAWLER)
    shop.visit("spring", CRAWLER)
    for visitor in (ANNA, CLARA, DAVID, SLACK):
        shop.visit("bio", visitor)
    shop.visit("bio-offer", ANNA)
    shop.visit("faq", BEN)
    shop.visit("poster", CLARA)
    shop.archive("old-poster")


@pytest.fixture(scope="session")
def enricher() -> Enricher:
    return make_enricher()


class Ingest:
    """Raw clicks stored through `store_clicks`, in transactions of their own as a worker's
    batches are: to give clicks times that a redirect cannot."""

    def __init__(self, app: Flask, enricher: Enricher) -> None:
        self._app = app
        self._enricher = enricher

    def raw(self, clicks: Sequence[RawClick], *, batch: int = 100) -> int:
        """Store `clicks` in batches of `batch`; the number of clicks inserted (not stored yet)."""
        inserted = 0
        for i in range(0, len(clicks), batch):
            with transaction(runtime(self._app).sessions) as session:
                result = store_clicks(session, clicks[i : i + batch], self._enricher, now=utcnow())
            assert not result.rejected
            inserted += result.inserted
        return inserted

    def click(
        self,
        slug: str,
        at: str,
        *,
        ip: str,
        agent: str,
        qr: bool = False,
        referrer: str = "",
        language: str = "",
        times: int = 1,
    ) -> None:
        """`times` clicks on the link `slug` at `at` (ISO 8601)."""
        with runtime(self._app).sessions() as session:
            link = session.scalars(select(Link).where(Link.slug == slug)).one()
        clicks = [
            RawClick(
                click_id=new_click_id(),
                at=datetime.fromisoformat(at).timestamp(),
                link_id=link.id,
                touchpoint_id=link.touchpoint_id,
                stage_id=link.stage_id,
                ip=ip,
                user_agent=agent,
                referrer=referrer,
                language=language,
                via_qr=qr,
            )
            for _ in range(times)
        ]
        assert self.raw(clicks) == times


@pytest.fixture
def ingest(app: Flask, enricher: Enricher) -> Ingest:
    return Ingest(app, enricher)
