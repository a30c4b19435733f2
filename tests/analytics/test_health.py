"""/healthz tells whether SQL and Redis answer and how far ingest is behind; /metrics counts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from analytics.runtime import runtime
from tests.faults import free_port
from tests.user_agents import GOOGLEBOT, IPHONE


def test_embedded_default_is_ok_with_sql_alone(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["status"] == "ok"
    assert response.json["checks"]["sql"]["ok"] is True
    assert "redis" not in response.json["checks"]


def test_with_redis_it_reports_the_ingest_backlog(
    redis_app: Flask, make_flyer: Callable[[Flask], None], clicks: Any
) -> None:
    make_flyer(redis_app)
    client = redis_app.test_client()
    clicks.send(client, "flyer", 12)
    runtime(redis_app).sink.flush()  # type: ignore[attr-defined]
    body = client.get("/healthz").json
    assert body["status"] == "ok"
    assert body["checks"]["redis"]["stream_length"] == 12
    assert body["checks"]["spool"] == {"clicks": 0}


def test_redis_down_is_degraded_not_failing_and_clicks_are_spooled(
    make_app: Callable[..., Flask], make_flyer: Callable[[Flask], None], clicks: Any
) -> None:
    app = make_app(redis_url=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    make_flyer(app)
    client = app.test_client()
    clicks.send(client, "flyer", 3)
    runtime(app).sink.flush()  # type: ignore[attr-defined]
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["status"] == "degraded"
    assert set(response.json["problems"]) == {"redis", "spool"}
    assert response.json["checks"]["spool"] == {"clicks": 3}


def _sample(client: FlaskClient, name: str) -> float:
    """The value of a counter as /metrics shows it."""
    text = client.get("/metrics").get_data(as_text=True)
    line = next(x for x in text.splitlines() if x.startswith(f"{name} "))
    return float(line.split()[-1])


def test_metrics_count_the_apps_own_captured_and_stored_clicks(
    client: FlaskClient, link: dict[str, object], make_app: Callable[..., Flask], clicks: Any
) -> None:
    assert _sample(client, "touchlink_clicks_captured_total") == 0

    clicks.send(client, "spring", 4)

    assert _sample(client, "touchlink_clicks_captured_total") == 4
    # The embedded default stores them itself (in the request, on a test's connection).
    assert _sample(client, "touchlink_clicks_ingested_total") == 4
    # Each runtime has a registry of its own: another app counts nothing of these.
    assert _sample(make_app().test_client(), "touchlink_clicks_captured_total") == 0


def test_healthz_says_how_journeys_are_followed_and_how_many_are_kept(
    make_app: Callable[..., Flask], make_flyer: Callable[[Flask], None], client: FlaskClient
) -> None:
    assert client.get("/healthz").json["checks"]["journeys"] == {
        "mode": "off", "journeys": 0, "touches": 0, "approximate": False,
    }
    followed = make_app(journeys="cookie")
    make_flyer(followed)
    browsers = [followed.test_client() for _ in range(2)]
    for browser in (*browsers, browsers[0]):
        response = browser.get("/flyer", headers={"User-Agent": IPHONE})
        assert response.status_code == 302
    followed.test_client().get("/flyer", headers={"User-Agent": IPHONE, "DNT": "1"})

    body = followed.test_client().get("/healthz").json

    assert body["status"] == "ok"
    assert body["checks"]["journeys"] == {
        "mode": "cookie", "journeys": 2, "touches": 3, "approximate": False,
    }
    assert make_app(journeys="cookieless").test_client().get("/healthz").json["checks"][
        "journeys"
    ] == {
        "mode": "cookieless", "journeys": 2, "touches": 3, "approximate": False,
    }  # what SQL keeps, whatever the mode


def test_metrics_count_journey_touches_and_journeys_forgotten(
    make_app: Callable[..., Flask], make_flyer: Callable[[Flask], None]
) -> None:
    followed = make_app(journeys="cookie")
    make_flyer(followed)
    browser = followed.test_client()
    for agent in (IPHONE, IPHONE, GOOGLEBOT):
        assert browser.get("/flyer", headers={"User-Agent": agent}).status_code == 302

    client = followed.test_client()
    assert _sample(client, "touchlink_clicks_ingested_total") == 3
    assert _sample(client, "touchlink_journey_touches_total") == 2  # the bot is no touch
    assert _sample(client, "touchlink_journeys_forgotten_total") == 0
