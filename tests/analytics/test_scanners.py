"""Mail scanners and prefetchers are stored as bots with a `scanner:` reason, whatever user agent
they carry, and counted apart as `scanner_clicks`: fetches made ahead of any click
(`scanner:prefetch`), fetches from a scanner operator's network (`scanner:<operator>`), and bursts
of one touchpoint's links from one network (`scanner:burst`, found by the ingest worker)."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from analytics.models import Click
from analytics.scanners import BURST_SECONDS, BurstWatch
from analytics.stream import ClickStream
from analytics.worker import IngestWorker
from shortener.clicks import RawClick
from shortener.runtime import runtime
from tests.conftest import AppMaker
from tests.user_agents import ANDROID, IPHONE


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


# What scanners sent when they opened a link of an email, as recorded at a redirect: the address
# they came from and their headers (a browser's user agent, no referrer).
EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0"
)
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
RECORDED = {
    "microsoft": ("40.107.22.74", {  # Safe Links, from Exchange Online Protection
        "User-Agent": EDGE, "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
        "Accept-Language": "en-US", "Accept-Encoding": "gzip, deflate, br",
    }),
    "proofpoint": ("148.163.150.29", {  # URL Defense
        "User-Agent": "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
        "Accept": "*/*", "Accept-Encoding": "gzip, deflate",
    }),
    "mimecast": ("205.139.110.61", {  # URL Protect
        "User-Agent": CHROME, "Accept": "text/html,*/*", "Accept-Language": "en-GB,en;q=0.9",
    }),
    "barracuda": ("64.235.150.18", {  # Link Protection
        "User-Agent": CHROME, "Accept": "*/*", "Connection": "close",
    }),
}


@pytest.mark.parametrize("operator", sorted(RECORDED))
def test_a_scanner_operators_fetch_is_a_scanners_and_counted_apart(
    client: FlaskClient, link: dict[str, Any], analyst: dict[str, str], app: Flask,
    operator: str,
) -> None:
    ip, headers = RECORDED[operator]
    scanned = client.get("/spring", headers=headers, environ_base={"REMOTE_ADDR": ip})
    client.get("/spring", headers=headers, environ_base={"REMOTE_ADDR": "198.51.100.20"})

    assert scanned.status_code == 302  # it still gets there
    with runtime(app).sessions() as session:
        stored = session.execute(
            select(Click.is_bot, Click.bot_reason).order_by(Click.click_id)
        ).all()
    assert [tuple(row) for row in stored] == [(True, f"scanner:{operator}"), (False, None)]
    row = client.get(
        "/api/v1/reports/touchpoints", headers=analyst
    ).get_json()["rows"][0]
    assert (row["human_clicks"], row["bot_clicks"], row["scanner_clicks"]) == (1, 1, 1)


def test_a_prefetch_is_counted_with_the_scanners(
    client: FlaskClient, link: dict[str, Any], analyst: dict[str, str],
) -> None:
    client.get("/spring", headers={"User-Agent": IPHONE, "Sec-Purpose": "prefetch"})
    client.get("/spring", headers={"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"})

    figures = client.get(f"/api/v1/reports/links/{link['id']}", headers=analyst).get_json()
    assert (figures["figures"]["bot_clicks"], figures["figures"]["scanner_clicks"]) == (2, 1)


# --- bursts ----------------------------------------------------------------------------------


@pytest.fixture
def newsletter(client: FlaskClient, marketer: dict[str, str]) -> list[str]:
    """An email touchpoint with three links: the slugs."""
    assert client.post("/api/v1/touchpoints", json={
        "key": "newsletter", "name": "March newsletter", "channel": "digital",
    }, headers=marketer).status_code == 201
    slugs = ["nl-shop", "nl-story", "nl-faq"]
    for slug in slugs:
        assert client.post("/api/v1/links", json={
            "url": f"https://shop.example.com/{slug}", "touchpoint": "newsletter",
            "stage": "consideration", "slug": slug,
        }, headers=marketer).status_code == 201
    return slugs


def test_a_burst_of_one_touchpoints_links_from_one_network_is_a_scanners(
    make_app: AppMaker, redis_client: redis.Redis, redis_url: str, newsletter: list[str],
    analyst: dict[str, str],
) -> None:
    web = make_app(redis_url=redis_url)
    shop, story, faq = newsletter

    def open_(slug: str, ip: str, agent: str, **headers: str) -> None:
        response = web.test_client().get(
            f"/{slug}", headers={"User-Agent": agent, **headers}, environ_base={"REMOTE_ADDR": ip}
        )
        assert response.status_code == 302

    # A scanner opens every link of the email within a second, from two addresses of one /24.
    for slug, ip in ((shop, "203.0.113.10"), (story, "203.0.113.11"), (faq, "203.0.113.10")):
        open_(slug, ip, CHROME)
    # People: one on the same network with another browser, one opening two links, one tapping
    # through from a page that links all three (each tap sends it as the referrer).
    open_(shop, "203.0.113.12", IPHONE)
    open_(shop, "198.51.100.7", ANDROID)
    open_(story, "198.51.100.7", ANDROID)
    for slug in newsletter:
        open_(slug, "192.0.2.40", IPHONE, Referer="https://go.test/hub")
    rt = runtime(web)
    assert rt.redis is not None
    rt.sink.flush()  # type: ignore[attr-defined]
    IngestWorker(
        ClickStream(rt.redis, rt.settings.stream, consumer="w1"), rt.sessions, rt.enricher,
        rt.metrics, zone=rt.settings.zone,
    ).run(drain=True)

    with rt.sessions() as session:
        reasons = session.execute(select(Click.bot_reason, Click.is_bot)).all()
    assert sorted((r or "", bot) for r, bot in reasons) == [("", False)] * 6 + [
        ("scanner:burst", True)
    ] * 3
    row = web.test_client().get(
        "/api/v1/reports/touchpoints/newsletter", headers=analyst
    ).get_json()["figures"]
    assert (row["human_clicks"], row["bot_clicks"], row["scanner_clicks"]) == (6, 3, 3)


def _click(n: int, at: float, link_id: int, *, touchpoint_id: int = 7,
           referrer: str = "") -> RawClick:
    return RawClick(
        click_id=f"{n:032x}", at=at, link_id=link_id, touchpoint_id=touchpoint_id, stage_id=1,
        ip="203.0.113.9", user_agent=CHROME, referrer=referrer, language="", via_qr=False,
    )


def test_a_burst_is_held_until_it_would_be_over_and_only_a_span_of_three_seconds_counts() -> None:
    watch: BurstWatch[int] = BurstWatch(grace=1.0)
    t = 1_000.0
    clicks = [
        _click(1, t, 1), _click(2, t + 0.5, 2), _click(3, t + 1.0, 3),  # a burst
        _click(4, t + 20, 1), _click(5, t + 22, 2), _click(6, t + 25, 3),  # never 3 in 3 s
    ]
    passing = watch.hold(
        [(n, c) for n, c in enumerate(clicks, 1)]
        + [(7, _click(7, t, 1, referrer="https://go.test/hub")),
           (8, _click(8, t, 9, touchpoint_id=8))],  # touchpoint 8 has fewer links
        touchpoints={7},
    )

    assert passing == [7, 8]
    assert watch.release(t + 0.9) == ([], set())
    first, bursts = watch.release(t + BURST_SECONDS + 1.0)  # the first click is due
    assert (first, bursts) == ([1], {f"{1:032x}"})
    rest, bursts = watch.release(t + 30)
    assert (sorted(rest), bursts) == ([2, 3, 4, 5, 6], {f"{2:032x}", f"{3:032x}"})
    assert len(watch) == 0 and watch.next_due() is None


def test_clicks_held_by_a_worker_that_stops_short_stay_on_the_stream(
    make_app: AppMaker, redis_client: redis.Redis, redis_url: str, newsletter: list[str],
) -> None:
    web = make_app(redis_url=redis_url)
    for slug in newsletter:
        web.test_client().get(f"/{slug}", headers={"User-Agent": CHROME},
                              environ_base={"REMOTE_ADDR": "203.0.113.10"})
    rt = runtime(web)
    assert rt.redis is not None
    rt.sink.flush()  # type: ignore[attr-defined]
    stream = ClickStream(rt.redis, rt.settings.stream, consumer="w1")
    first = IngestWorker(stream, rt.sessions, rt.enricher, rt.metrics)
    first.stream.ensure_group()
    # What the worker's loop does with one read, before the burst would be over; then it dies.
    first._process(first._read_batch(0))
    assert len(first._bursts) == 3 and stream.pending() == 3

    restarted = ClickStream(rt.redis, rt.settings.stream, consumer="w1")  # reads its own first
    IngestWorker(restarted, rt.sessions, rt.enricher, rt.metrics).run(drain=True)

    with rt.sessions() as session:
        assert sorted(session.scalars(select(Click.bot_reason))) == ["scanner:burst"] * 3
    assert restarted.pending() == 0
