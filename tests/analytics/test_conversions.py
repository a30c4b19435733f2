"""Conversions through the real path. A shop of its own (a local HTTP server) reads `tl_click`
from the redirect's destination, takes orders, and posts them to the API with a tracker key,
retrying some; the worker stores each once; and the touchpoint, stage, conversion and
attribution reports give the figures the test works out itself from what it sent."""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jsonschema
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from analytics.runtime import runtime
from analytics.stream import ClickStream
from analytics.worker import IngestWorker
from shortener.openapi import document
from tests.analytics.conftest import BrowserMaker, CaptureClock
from tests.user_agents import ANDROID, DESKTOP, IPHONE

Headers = dict[str, str]
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


# --- the shop ------------------------------------------------------------------------------------


class _ShopHandler(BaseHTTPRequestHandler):
    server: Shop

    def do_GET(self) -> None:
        """A landing page: keeps the `tl_click` it was sent with in a cart, as a shop's session
        would, and answers the cart's number."""
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        with self.server.lock:
            self.server.carts.append(query.get("tl_click"))
            self.server.landed.append(query)
            cart = len(self.server.carts) - 1
        self._answer(200, str(cart))

    def do_POST(self) -> None:
        """The checkout: an order of the cart, queued for the shop's webhook to Touchlink."""
        length = int(self.headers.get("Content-Length", "0"))
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        with self.server.lock:
            order: dict[str, Any] = {
                "event": form["event"], "occurred_at": form["at"],
                "external_id": f"order-{len(self.server.outbox) + 1}",
            }
            click = self.server.carts[int(form["cart"])] if form.get("cart") else None
            if click is not None:
                order["click_id"] = click
            if form.get("coupon"):
                order["coupon"] = form["coupon"]
            if form.get("value"):
                order |= {"value": form["value"], "currency": form["currency"]}
            self.server.outbox.append(order)
        self._answer(201, order["external_id"])

    def _answer(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Shop(ThreadingHTTPServer):
    """A shop on 127.0.0.2 (links may not point at Touchlink's own host)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.2", 0), _ShopHandler)
        self.lock = threading.Lock()
        self.carts: list[str | None] = []
        self.landed: list[dict[str, str]] = []
        self.outbox: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.2:{self.server_address[1]}"

    def visit(self, location: str) -> int:
        """A customer arriving from the redirect: the cart the landing page opened."""
        assert location.startswith(self.url), location
        with urllib.request.urlopen(location, timeout=5) as answer:  # noqa: S310 (our shop)
            return int(answer.read())

    def checkout(self, **form: str) -> None:
        data = urllib.parse.urlencode(form).encode()
        checkout = f"{self.url}/checkout"
        with urllib.request.urlopen(checkout, data=data, timeout=5) as answer:  # noqa: S310
            assert answer.status == 201

    def deliver(
        self, post: Callable[[dict[str, Any]], Any], *, retry: set[int]
    ) -> list[list[tuple[int, str]]]:
        """Post every order (the shop's webhook); orders numbered in `retry` are posted again,
        as after an answer lost on the way back. The (status, id) answers of each order."""
        answers = []
        for number, order in enumerate(self.outbox, start=1):
            tries = []
            for _ in range(2 if number in retry else 1):
                response = post(order)
                tries.append((response.status_code, response.json["id"]))
            answers.append(tries)
        return answers


@pytest.fixture
def store() -> Iterator[Shop]:
    shop = Shop()
    thread = threading.Thread(target=shop.serve_forever, daemon=True)
    thread.start()
    try:
        yield shop
    finally:
        shop.shutdown()
        shop.server_close()


# --- what the test sends, and works out ----------------------------------------------------------


@dataclass
class Sale:
    touchpoint: str  # the converting click's, or the coupon's
    event: str
    at: datetime
    value: Decimal | None
    currency: str | None
    touches: list[tuple[datetime, str]] = field(default_factory=list)  # of its journey, or none


def shares(model: str, ages: list[timedelta]) -> list[float]:
    n = len(ages)
    if model == "last":
        return [0.0] * (n - 1) + [1.0]
    if model == "first":
        return [1.0] + [0.0] * (n - 1)
    if model == "linear" or (model == "position" and n <= 2):
        return [1 / n] * n
    if model == "position":
        return [0.4] + [0.2 / (n - 2)] * (n - 2) + [0.4]
    weights = [0.5 ** (age / timedelta(days=7)) for age in ages]
    return [w / sum(weights) for w in weights]


def credited(sales: list[Sale], model: str, event: str | None = None) -> dict[str, Any]:
    conversions: dict[str, float] = defaultdict(float)
    revenue: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for sale in sales:
        if event is not None and sale.event != event:
            continue
        touches = [(at, tp) for at, tp in sale.touches if sale.at - at <= 30 * DAY]
        touches = touches or [(sale.at, sale.touchpoint)]
        for (_, tp), share in zip(
            touches, shares(model, [sale.at - at for at, _ in touches]), strict=True
        ):
            conversions[tp] += share
            if share and sale.value is not None and sale.currency is not None:
                revenue[tp][sale.currency] += sale.value * Decimal(share)
    return {tp: (n, dict(revenue[tp])) for tp, n in conversions.items() if n > 1e-12}


# --- the workspace -------------------------------------------------------------------------------


TOUCHPOINTS = [  # key, channel, stage of its link
    ("insta", "digital", "awareness"),
    ("flyer", "physical", "awareness"),
    ("email", "digital", "consideration"),
    ("faq", "digital", "decision"),
]


@pytest.fixture
def web(make_app: Callable[..., Flask], redis_url: str, redis_client: redis.Redis) -> Flask:
    """Production wiring with journeys followed by cookie: clicks and conversions go to the
    Redis stream, the worker stores them."""
    return make_app(redis_url=redis_url, journeys="cookie")


def workspace(api: FlaskClient, marketer: Headers, shop: Shop) -> None:
    for key, channel, stage in TOUCHPOINTS:
        body: dict[str, Any] = {"key": key, "name": key.title(), "channel": channel}
        assert api.post("/api/v1/touchpoints", json=body, headers=marketer).status_code == 201
        link = {"url": f"{shop.url}/landing", "touchpoint": key, "stage": stage, "slug": key,
                "track_conversions": True}
        response = api.post("/api/v1/links", json=link, headers=marketer)
        assert response.status_code == 201 and response.json["track_conversions"] is True
    coupons = api.patch("/api/v1/touchpoints/flyer", json={"coupons": ["lyon10"]},
                      headers=marketer)
    assert coupons.status_code == 200 and coupons.json["coupons"] == ["LYON10"]


def drain(app: Flask) -> None:
    rt = runtime(app)
    rt.sink.flush()  # type: ignore[attr-defined]
    assert rt.redis is not None
    worker = IngestWorker(
        ClickStream(rt.redis, rt.settings.stream, consumer="w1"), rt.sessions, rt.enricher,
        rt.metrics, zone=rt.settings.zone, journeys=rt.journey_keys,
    )
    stats = worker.run(drain=True).totals
    assert stats.dead_lettered == 0


def test_a_shops_sales_reach_every_report_once_and_attribution_shares_them_out(
    web: Flask, store: Shop, browser: BrowserMaker, capture_clock: CaptureClock,
    headers: Callable[[str], Headers],
) -> None:
    api = web.test_client()
    workspace(api, headers("marketer"), store)
    tracker, analyst = headers("tracker"), headers("analyst")
    base = datetime.now(UTC).replace(microsecond=0) - 20 * DAY
    anna = browser("203.0.113.7", IPHONE, app=web)
    ben = browser("203.0.113.8", ANDROID, app=web)
    cleo = browser("203.0.113.9", DESKTOP, app=web, dnt=True)  # followed by no journey
    dan = browser("198.51.100.4", IPHONE, app=web)
    journeys: dict[Any, list[tuple[datetime, str]]] = defaultdict(list)
    sales: list[Sale] = []

    def click(person: Any, slug: str, at: datetime, *, qr: bool = False) -> int:
        capture_clock.set(at)
        location = person.click(slug, qr=qr).headers["Location"]
        if person is not cleo:
            journeys[person].append((at, slug))
        return store.visit(location)

    def buy(person: Any, cart: int | None, slug: str, at: datetime, event: str,
            value: str = "", currency: str = "", coupon: str = "") -> None:
        store.checkout(cart="" if cart is None else str(cart), at=at.isoformat(), event=event,
                       value=value, currency=currency, coupon=coupon)
        touches = [] if person is None else [(t, tp) for t, tp in journeys[person] if t <= at]
        sales.append(Sale(slug, event, at, Decimal(value) if value else None, currency or None,
                          touches))

    click(anna, "insta", base)
    signup_cart = click(ben, "flyer", base + DAY, qr=True)
    buy(ben, signup_cart, "flyer", base + DAY + timedelta(minutes=10), "signup")
    click(anna, "email", base + 2 * DAY)
    dan_cart = click(dan, "insta", base + 2 * DAY + HOUR)
    buy(dan, dan_cart, "insta", base + 2 * DAY + HOUR + timedelta(minutes=5), "lead")
    cleo_cart = click(cleo, "faq", base + 3 * DAY)
    buy(None, cleo_cart, "faq", base + 3 * DAY + HOUR, "sale", "25.50", "USD")
    ben_cart = click(ben, "email", base + 4 * DAY)
    buy(ben, ben_cart, "email", base + 4 * DAY + 2 * HOUR, "sale", "40", "EUR")
    anna_cart = click(anna, "faq", base + 5 * DAY)
    buy(anna, anna_cart, "faq", base + 5 * DAY + HOUR, "sale", "100.00", "EUR")
    buy(None, None, "flyer", base + 6 * DAY, "sale", "60.00", "EUR", coupon="lyon10")  # the till

    # The destination got its UTM parameters, and the click id signed, on every visit.
    assert all(q["utm_source"] in {"insta", "flyer", "email", "faq"} for q in store.landed)
    assert all(q["tl_click"].count(".") == 2 for q in store.landed)
    answers = store.deliver(
        lambda order: api.post("/api/v1/conversions", json=order, headers=tracker), retry={2, 5}
    )
    assert [[status for status, _ in tries] for tries in answers] == [
        [202], [202, 200], [202], [202], [202, 200], [202],
    ]
    assert all(len({ident for _, ident in tries}) == 1 for tries in answers)  # the first's id
    drain(web)
    # A webhook retried after the worker stored the sale is still one sale.
    late = api.post("/api/v1/conversions", json=store.outbox[0], headers=tracker)
    assert (late.status_code, late.json["id"]) == (200, answers[0][0][1])
    drain(web)

    window = {"from": (base - DAY).date().isoformat(), "to": datetime.now(UTC).date().isoformat()}
    rows = {r["touchpoint"]["key"]: r for r in api.get(
        "/api/v1/reports/touchpoints", query_string=window, headers=analyst).json["rows"]}
    expected_counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    expected_revenue: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for sale in sales:
        expected_counts[sale.touchpoint][sale.event] += 1
        if sale.value is not None and sale.currency:
            expected_revenue[sale.touchpoint][sale.currency] += sale.value
    for key, row in rows.items():
        assert row["conversions"] == dict(expected_counts[key]), key
        assert {c: Decimal(v) for c, v in row["revenue"].items()} == dict(
            expected_revenue[key]
        ), key
        total = sum(expected_counts[key].values())
        assert row["conversion_rate"] == round(total / row["visitors"], 4), key
    assert rows["faq"]["revenue"] == {"EUR": "100.00", "USD": "25.50"}

    stages = {r["stage"]["key"]: r["conversions"] for r in api.get(
        "/api/v1/reports/stages", query_string=window, headers=analyst).json["rows"]}
    assert stages["awareness"] == {"lead": 1, "signup": 1}  # the coupon's sale has no stage
    assert stages["consideration"] == {"sale": 1} and stages["decision"] == {"sale": 2}

    report = api.get("/api/v1/reports/conversions", query_string=window, headers=analyst).json
    assert report["conversions"] == {"lead": 1, "sale": 4, "signup": 1}
    assert report["revenue"] == {"EUR": "200.00", "USD": "25.50"}
    medians = {r["touchpoint"]["key"]: r["median_seconds_to_convert"] for r in report["rows"]}
    assert medians == {"faq": 3600.0, "email": 7200.0, "flyer": 600.0, "insta": 300.0}
    assert sum(sum(counts) for counts in report["series"].values()) == 6

    for model in ("last", "first", "linear", "position", "time_decay"):
        for event in (None, "sale"):
            query = {**window, "model": model, **({"event": event} if event else {})}
            body = api.get("/api/v1/reports/attribution", query_string=query,
                           headers=analyst).json
            expected = credited(sales, model, event)
            got = {r["touchpoint"]["key"]: r for r in body["rows"]}
            assert set(got) == set(expected), (model, event)
            for key, (conversions, revenue) in expected.items():
                assert got[key]["conversions"] == pytest.approx(conversions, abs=2e-6), key
                assert {c: Decimal(v) for c, v in got[key]["revenue"].items()} == {
                    c: pytest.approx(v, abs=Decimal("0.00001")) for c, v in revenue.items()
                }, (model, key)
            # Every conversion is shared out whole, and so is its value.
            assert sum(r["conversions"] for r in body["rows"]) == pytest.approx(
                body["conversions"], abs=1e-9
            )
            eur = sum(Decimal(r["revenue"].get("EUR", "0")) for r in body["rows"])
            assert eur == Decimal("200.00")
    first = api.get("/api/v1/reports/attribution", query_string={**window, "model": "first",
                                                                  "event": "sale"},
                    headers=analyst).json
    # Anna's sale came at the FAQ, but her journey began on Instagram.
    assert {r["touchpoint"]["key"]: r["conversions"] for r in first["rows"]} == {
        "insta": 1.0, "flyer": 2.0, "faq": 1.0,
    }
    assert first["with_journey"] == 2  # Anna's and Ben's; Cleo asked not to be followed


# --- bad input -----------------------------------------------------------------------------------


@pytest.fixture
def tracked(app: Flask, headers: Callable[[str], Headers]) -> dict[str, Any]:
    """The embedded app (no Redis: outcomes go straight to SQL) with a tracked link and a
    coupon, a tracker key, and a click's tl_click."""
    api, marketer = app.test_client(), headers("marketer")
    tp = {"key": "flyer", "name": "Flyer", "channel": "physical", "coupons": ["LYON10"]}
    assert api.post("/api/v1/touchpoints", json=tp, headers=marketer).status_code == 201
    link = {"url": "https://shop.example.com/", "touchpoint": "flyer", "stage": "awareness",
            "slug": "flyer", "track_conversions": True}
    assert api.post("/api/v1/links", json=link, headers=marketer).status_code == 201
    location = api.get("/flyer").headers["Location"]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    return {"api": api, "tracker": headers("tracker"), "analyst": headers("analyst"),
            "token": query["tl_click"], "location": location}


def test_the_cli_prints_the_same_conversions_and_credits_as_the_api(
    app: Flask, tracked: dict[str, Any]
) -> None:
    api, tracker, analyst = tracked["api"], tracked["tracker"], tracked["analyst"]
    for order in (
        {"click_id": tracked["token"], "event": "sale", "value": "19.99", "currency": "EUR"},
        {"coupon": "lyon10", "event": "sale", "value": "5", "currency": "EUR"},
    ):
        assert api.post("/api/v1/conversions", json=order, headers=tracker).status_code == 202
    cli = app.test_cli_runner()

    table = cli.invoke(args=["report", "conversions"])
    assert table.exit_code == 0, table.output
    assert "flyer" in table.output and "sale 2" in table.output
    assert "Revenue: EUR 24.99." in table.output
    for model in ("first", "time_decay"):
        printed = cli.invoke(args=["report", "attribution", "--model", model, "--format", "json"])
        assert printed.exit_code == 0, printed.output
        asked = api.get("/api/v1/reports/attribution", query_string={"model": model},
                        headers=analyst).json
        assert json.loads(printed.output)["rows"] == asked["rows"] == [{
            "touchpoint": {"key": "flyer", "name": "Flyer", "channel": "physical"},
            "conversions": 2.0, "revenue": {"EUR": "24.99"},
        }]
    wrong = cli.invoke(args=["report", "attribution", "--model", "magic"])
    assert wrong.exit_code == 2 and "magic" in wrong.output


def test_tl_click_never_overrides_one_the_url_already_has(tracked: dict[str, Any]) -> None:
    api = tracked["api"]
    assert "utm_source=flyer" in tracked["location"]
    again = api.get("/flyer?tl_click=theirs").headers["Location"]
    assert again.count("tl_click=") == 1 and "tl_click=theirs" in again
    assert "tl_click" not in api.get("/flyer?notrack=1").headers["Location"]  # no click, no id


def test_a_conversion_posted_embedded_is_stored_at_once_and_counted_once(
    tracked: dict[str, Any],
) -> None:
    api, tracker, analyst = tracked["api"], tracked["tracker"], tracked["analyst"]
    sale = {"click_id": tracked["token"], "event": "sale", "value": 12.5, "currency": "eur",
            "external_id": "A-1"}
    first = api.post("/api/v1/conversions", json=sale, headers=tracker)
    again = api.post("/api/v1/conversions", json=sale, headers=tracker)
    assert (first.status_code, first.json["result"]) == (202, "accepted")
    assert (again.status_code, again.json["result"], again.json["id"]) == (
        200, "duplicate", first.json["id"],
    )
    report = api.get("/api/v1/reports/conversions", headers=analyst).json
    assert (report["conversions"], report["revenue"]) == ({"sale": 1}, {"EUR": "12.50"})


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"click_id": "0" * 32 + ".1." + "0" * 16}, 422, "invalid_field", "click_id"),
        ({"click_id": "forged"}, 422, "invalid_field", "click_id"),
        ({"click_id": None, "coupon": "NOPE"}, 422, "invalid_field", "coupon"),
        ({"coupon": "LYON10"}, 422, "invalid_field", "click_id"),  # both
        ({"event": "Big Sale!"}, 422, "invalid_field", "event"),
        ({"event": None}, 422, "invalid_field", "event"),
        ({"value": -1, "currency": "EUR"}, 422, "invalid_field", "value"),
        ({"value": "12.1234567", "currency": "EUR"}, 422, "invalid_field", "value"),
        ({"value": "lots", "currency": "EUR"}, 422, "invalid_field", "value"),
        ({"value": 10}, 422, "invalid_field", "currency"),
        ({"value": 10, "currency": "EURO"}, 422, "invalid_field", "currency"),
        ({"value": 10, "currency": "XYZ"}, 422, "invalid_field", "currency"),
        ({"currency": "EUR"}, 422, "invalid_field", "currency"),
        ({"occurred_at": "2001-01-01T00:00:00Z"}, 422, "invalid_field", "occurred_at"),
        ({"occurred_at": "2999-01-01T00:00:00Z"}, 422, "invalid_field", "occurred_at"),
        ({"occurred_at": "yesterday"}, 422, "invalid_field", "occurred_at"),
        ({"external_id": ""}, 422, "invalid_field", "external_id"),
        ({"colour": "red"}, 422, "invalid_field", "colour"),
    ],
)
def test_bad_conversions_get_a_clear_error_and_store_nothing(
    tracked: dict[str, Any], change: dict[str, Any], status: int, code: str, field: str
) -> None:
    api = tracked["api"]
    sale = {"click_id": tracked["token"], "event": "sale", **change}
    sale = {k: v for k, v in sale.items() if v is not None}
    response = api.post("/api/v1/conversions", json=sale, headers=tracked["tracker"])
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code
    assert response.json["error"]["details"]["field"] == field
    report = api.get("/api/v1/reports/conversions", headers=tracked["analyst"]).json
    assert report["conversions"] == {}


def test_a_click_older_than_the_window_is_outside_it(
    tracked: dict[str, Any], capture_clock: CaptureClock
) -> None:
    api = tracked["api"]
    capture_clock.set(datetime.now(UTC) - timedelta(days=31))
    location = api.get("/flyer").headers["Location"]
    token = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))["tl_click"]
    response = api.post("/api/v1/conversions", json={"click_id": token, "event": "sale"},
                        headers=tracked["tracker"])
    assert (response.status_code, response.json["error"]["code"]) == (422, "outside_window")
    inside = api.post(
        "/api/v1/conversions",
        json={"click_id": token, "event": "sale",
              "occurred_at": (datetime.now(UTC) - timedelta(days=2)).isoformat()},
        headers=tracked["tracker"],
    )
    assert inside.status_code == 202  # the sale of the time it happened, inside the window


def test_what_a_tracker_key_may_and_may_not_do(tracked: dict[str, Any]) -> None:
    api, tracker = tracked["api"], tracked["tracker"]
    assert api.get("/api/v1/reports/touchpoints", headers=tracker).status_code == 403
    assert api.get("/api/v1/links", headers=tracker).status_code == 403
    assert api.post("/api/v1/conversions", json={"coupon": "LYON10", "event": "lead"}
                    ).status_code == 401
    not_json = api.post("/api/v1/conversions", data="sale", headers=tracker)
    assert (not_json.status_code, not_json.json["error"]["code"]) == (400, "bad_request")
    unknown = api.get("/api/v1/reports/attribution", query_string={"model": "magic"},
                      headers=tracked["analyst"])
    assert (unknown.status_code, unknown.json["error"]["details"]["parameter"]) == (400, "model")


def test_bulk_conversions_answer_each_row(tracked: dict[str, Any]) -> None:
    api, tracker = tracked["api"], tracked["tracker"]
    csv_body = (
        "coupon,event,value,currency,external_id,occurred_at\n"
        "LYON10,sale,30.00,EUR,till-1,\n"
        "LYON10,sale,30.00,EURO,till-2,\n"
        "LYON10,sale,30.00,EUR,till-1,\n"
        "NOPE,sale,,,,\n"
    )
    response = api.post("/api/v1/conversions/bulk", data=csv_body, content_type="text/csv",
                        headers=tracker)
    assert response.status_code == 200
    body = response.json
    assert [r["status"] for r in body["results"]] == [202, 422, 200, 422]
    assert body["results"][2]["id"] == body["results"][0]["id"]
    assert body["results"][1]["error"]["details"]["field"] == "currency"
    assert (body["accepted"], body["duplicates"], body["refused"]) == (1, 1, 2)
    listed = api.post("/api/v1/conversions/bulk", json=[{"coupon": "LYON10", "event": "lead"}],
                      headers=tracker)
    assert [r["status"] for r in listed.json["results"]] == [202]
    report = api.get("/api/v1/reports/conversions", headers=tracked["analyst"]).json
    assert report["conversions"] == {"lead": 1, "sale": 1}
    assert report["revenue"] == {"EUR": "30.00"}


def test_the_demo_has_sales_signups_and_coupon_sales_to_attribute(
    app: Flask, analyst: Headers
) -> None:
    with app.app_context():
        assert app.test_cli_runner().invoke(args=["init", "--demo"]).exit_code == 0
    api = app.test_client()
    report = api.get("/api/v1/reports/conversions", headers=analyst).json
    assert report["conversions"]["sale"] > 20 and report["conversions"]["signup"] > 5
    assert Decimal(report["revenue"]["EUR"]) > 1000
    by_touchpoint = {r["touchpoint"]["key"]: r for r in report["rows"]}
    assert by_touchpoint["store-flyer-paris"]["median_seconds_to_convert"] is None  # coupons
    linear = api.get("/api/v1/reports/attribution", query_string={"model": "linear"},
                     headers=analyst).json
    assert linear["with_journey"] > 0
    assert sum(r["conversions"] for r in linear["rows"]) == pytest.approx(linear["conversions"])
    # Journeys share the sales out to where they began: awareness touchpoints get credit too.
    assert {r["touchpoint"]["key"] for r in linear["rows"]} >= {"facebook-ads", "instagram-bio"}
    # The click & collect counter asks its visitors one question; some have answered.
    feedback = api.get("/api/v1/reports/feedback", headers=analyst).json
    (counter,) = [r for r in feedback["rows"] if r["touchpoint"]["key"] == "click-and-collect"]
    assert counter["answers"] > 10


def test_the_dashboard_credits_conversions_by_the_model_chosen(
    tracked: dict[str, Any], auth: Any
) -> None:
    api, tracker = tracked["api"], tracked["tracker"]
    page = auth.client("analyst")
    empty = page.get("/dashboard").get_data(as_text=True)
    assert "No conversions in this window." in empty
    # Journeys are off here: each sale is its own touchpoint's whole, whatever the model.
    for order in (
        {"click_id": tracked["token"], "event": "sale", "value": "10", "currency": "EUR"},
        {"coupon": "LYON10", "event": "sale", "value": "2.50", "currency": "EUR"},
    ):
        assert api.post("/api/v1/conversions", json=order, headers=tracker).status_code == 202
    for model, name in (("", "last touch"), ("position", "position"), ("time_decay", "time decay")):
        shown = page.get(f"/dashboard?model={model}").get_data(as_text=True)
        assert f"Credited by <strong>{name}</strong>" in shown, model
        row = re.search(r'<tr data-touchpoint="flyer">(.*?)</tr>', shown, re.S)
        assert row is not None
        assert 'data-figure="credited">2.00<' in row.group(1)
        assert "EUR 12.50" in row.group(1) and "2 sale" in row.group(1)
    csv_text = page.get("/dashboard?model=first&format=csv&table=attribution").get_data(
        as_text=True
    )
    assert csv_text.splitlines()[1] == "flyer,Flyer,physical,2.0,EUR 12.50"
    wrong = page.get("/dashboard?model=magic")
    assert wrong.status_code == 400 and "model" in wrong.get_data(as_text=True)


def test_the_answers_are_those_the_document_describes(app: Flask, tracked: dict[str, Any]) -> None:
    api, tracker, analyst = tracked["api"], tracked["tracker"], tracked["analyst"]
    spec = document(app)

    def check(path: str, method: str, status: int, body: Any) -> None:
        content = spec["paths"][path][method]["responses"][str(status)]["content"]
        schema = {**content["application/json"]["schema"], "components": spec["components"]}
        jsonschema.Draft202012Validator(schema).validate(body)

    sale = {"click_id": tracked["token"], "event": "sale", "value": "10", "currency": "EUR",
            "external_id": "A-1"}
    for status in (202, 200):  # accepted, then a duplicate
        posted = api.post("/api/v1/conversions", json=sale, headers=tracker)
        assert posted.status_code == status
        check("/api/v1/conversions", "post", status, posted.json)
    refused = api.post("/api/v1/conversions", json={"event": 5}, headers=tracker)
    assert refused.status_code == 422
    check("/api/v1/conversions", "post", 422, refused.json)
    rows = [{"coupon": "LYON10", "event": "lead"}, {"coupon": "NOPE", "event": "lead"}, sale]
    bulk = api.post("/api/v1/conversions/bulk", json={"rows": rows}, headers=tracker)
    assert [r["status"] for r in bulk.json["results"]] == [202, 422, 200]
    check("/api/v1/conversions/bulk", "post", 200, bulk.json)
    asked = (("conversions", {"interval": "hour"}), ("attribution", {"model": "linear"}))
    for path, query in asked:
        report = api.get(f"/api/v1/reports/{path}", query_string=query, headers=analyst)
        assert report.status_code == 200 and report.json["rows"]
        check(f"/api/v1/reports/{path}", "get", 200, report.json)
