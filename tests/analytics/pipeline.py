"""Helpers of the pipeline tests: links, real redirects, worker environments, stored totals."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics.models import Click, LinkHourlyStats
from shortener.keys import create_key
from shortener.models import Role
from shortener.runtime import runtime
from shortener.settings import Settings
from tests.conftest import REDIS_URL

BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
SLACK = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"


def click_many(
    client: FlaskClient, slug: str, count: int, *, agent: str = BROWSER, qr: bool = False
) -> None:
    path = f"/{slug}?qr=1" if qr else f"/{slug}"
    for i in range(count):
        response = client.get(
            path,
            headers={"User-Agent": agent},
            environ_base={"REMOTE_ADDR": f"198.51.100.{i % 250}"},
        )
        assert response.status_code == 302


def stored(session: Session) -> tuple[int, int]:
    """(clicks rows, human clicks + bot clicks in the rollups)."""
    session.expire_all()
    rows = session.scalar(select(func.count()).select_from(Click)) or 0
    rolled = session.execute(
        select(func.coalesce(func.sum(LinkHourlyStats.clicks + LinkHourlyStats.bot_clicks), 0))
    ).scalar_one()
    return rows, int(rolled)


def worker_env(settings: Settings, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "TOUCHLINK_DATABASE_URL": settings.database_url,
        "TOUCHLINK_REDIS_URL": REDIS_URL,
        "TOUCHLINK_INSTANCE_PATH": str(tmp_path / "instance"),
        "TOUCHLINK_BASE_URL": settings.base_url,
        "TOUCHLINK_BATCH_SIZE": "100",
        **extra,
    }


def make_link(app: Flask) -> None:

    with runtime(app).sessions.begin() as session:
        _, raw = create_key(session, name="t", role=Role.MARKETER)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {raw}"}
    assert (
        client.post(
            "/api/v1/touchpoints",
            headers=headers,
            json={"key": "flyer", "name": "Flyer", "channel": "physical"},
        ).status_code
        == 201
    )
    assert (
        client.post(
            "/api/v1/links",
            headers=headers,
            json={
                "url": "https://shop.example.com/",
                "touchpoint": "flyer",
                "stage": "awareness",
                "slug": "flyer",
            },
        ).status_code
        == 201
    )
