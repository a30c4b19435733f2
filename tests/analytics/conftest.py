"""Fixtures of the report tests: touchpoints, links, placements and visits made through the API
and the redirect (`shop`, `journey`), visitors to send (`people`), raw clicks at chosen times
stored through the ingest the worker uses, in the app's time zone (`ingest`, `ingest.into(app)`),
with one enricher for the whole session, and the reports API asked as an analyst (`reports`,
`reports.on(app)`). For journeys: customers' browsers, each with a cookie jar of its own
(`browser`), the time the redirect stamps on the clicks it captures (`capture_clock`), and what
SQL keeps of journeys (`journey_rows`).

Reports list a touchpoint only in the windows it existed in, and count a link only in the windows
it was live in: a test of a window in the past makes its touchpoints and links before it
(`created_at=`), as a marketer would have, and archives them at a chosen time (`at=`).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qsl

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from analytics.enrich import Enricher, make_enricher
from analytics.ingest import store_clicks
from analytics.models import Journey, JourneyTouch
from analytics.runtime import runtime
from shortener.clicks import RawClick, new_click_id
from shortener.db import utcnow
from shortener.journey_cookie import COOKIE
from shortener.models import Link, Placement, Stage, Touchpoint
from shortener.unit_of_work import link_changed, transaction
from tests.user_agents import ANDROID, DESKTOP, GOOGLEBOT, IPHONE, SLACKBOT

Visitor = tuple[str, str]  # an IP address and a user agent
# When, who, and (a third item) whether it was a scan.
TimedVisit = tuple[str | datetime, Visitor] | tuple[str | datetime, Visitor, bool]

# The people of the `journey`.
ANNA: Visitor = ("203.0.113.7", IPHONE)
BEN: Visitor = ("203.0.113.8", ANDROID)
CLARA: Visitor = ("198.51.100.4", DESKTOP)
DAVID: Visitor = ("198.51.100.5", IPHONE)
CRAWLER: Visitor = ("66.249.66.1", GOOGLEBOT)
SLACK: Visitor = ("3.210.10.1", SLACKBOT)


@dataclass(frozen=True, slots=True)
class People:
    """Visitors for tests to send: an IP address and a user agent each."""

    anna: Visitor = ANNA
    ben: Visitor = BEN
    clara: Visitor = CLARA
    david: Visitor = DAVID
    crawler: Visitor = CRAWLER  # Googlebot
    slack: Visitor = SLACK  # a link preview


@pytest.fixture(scope="session")
def people() -> People:
    return People()


def _moment(at: str | datetime) -> datetime:
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    assert moment.tzinfo is not None, f"{at!r} needs an offset"
    return moment


class Shop:
    """A marketer's touchpoints, links and placements, made through the API, and customers'
    visits, made through the redirect (a click is in SQL when its redirect returns).

    `created_at=` and `at=` move a row's creation or archiving into the past after the API made
    it, as if it had been made then; a touchpoint's exposure given on creation is then dated on
    that day too (the API dates it on the day it is made)."""

    def __init__(self, app: Flask, client: FlaskClient, marketer: dict[str, str]) -> None:
        self._app = app
        self._client = client
        self._marketer = marketer

    def touchpoint(
        self, key: str, channel: str, *, created_at: str | datetime | None = None, **extra: Any
    ) -> dict[str, Any]:
        data = {"key": key, "name": key.replace("-", " ").capitalize(), "channel": channel,
                **extra}
        response = self._client.post("/api/v1/touchpoints", json=data, headers=self._marketer)
        assert response.status_code == 201, response.json
        body: dict[str, Any] = response.json  # type: ignore[assignment]
        if created_at is not None:
            moment = _moment(created_at)
            day = moment.astimezone(runtime(self._app).settings.zone).date()
            with transaction(runtime(self._app).sessions) as session:
                found = session.scalars(select(Touchpoint).where(Touchpoint.key == key)).one()
                found.created_at = moment
                session.execute(
                    update(Placement)
                    .where(Placement.touchpoint_id == found.id)
                    .values(starts_on=day, created_at=moment)
                )
            body["created_at"] = moment.isoformat()
        return body

    def link(
        self,
        slug: str,
        touchpoint: str,
        stage: str,
        campaign: str | None = None,
        *,
        created_at: str | datetime | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        # An expiry of the past is history, written to the row: the API refuses it as a typo.
        expires_at = extra.pop("expires_at", None)
        data = {"url": f"https://shop.example.com/{slug}", "touchpoint": touchpoint,
                "stage": stage, "slug": slug, "campaign": campaign, **extra}
        response = self._client.post("/api/v1/links", json=data, headers=self._marketer)
        assert response.status_code == 201, response.json
        body: dict[str, Any] = response.json  # type: ignore[assignment]
        written: dict[str, datetime] = {}
        if created_at is not None:
            written["created_at"] = _moment(created_at)
        if expires_at is not None:
            written["expires_at"] = _moment(expires_at)
        if written:
            with transaction(runtime(self._app).sessions) as session:
                session.execute(update(Link).where(Link.id == body["id"]).values(**written))
                link_changed(session, body["domain"], slug)
            body.update((name, moment.isoformat()) for name, moment in written.items())
        return body

    def archive(self, touchpoint: str, *, at: str | datetime | None = None) -> None:
        response = self._client.delete(
            f"/api/v1/touchpoints/{touchpoint}", headers=self._marketer
        )
        assert response.status_code == 200, response.json
        if at is not None:
            with transaction(runtime(self._app).sessions) as session:
                session.execute(
                    update(Touchpoint)
                    .where(Touchpoint.key == touchpoint)
                    .values(archived_at=_moment(at))
                )

    def archive_link(self, link_id: int, *, at: str | datetime | None = None) -> None:
        response = self._client.delete(f"/api/v1/links/{link_id}", headers=self._marketer)
        assert response.status_code == 200, response.json
        if at is not None:
            with transaction(runtime(self._app).sessions) as session:
                session.execute(
                    update(Link).where(Link.id == link_id).values(archived_at=_moment(at))
                )

    def place(
        self, touchpoint: str, count: int, start: str, end: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """A placement: `count` people reached from the day `start` (to the day `end`)."""
        data = {"count": count, "from": start, **({"to": end} if end else {}), **extra}
        response = self._client.post(
            f"/api/v1/touchpoints/{touchpoint}/exposures", json=data, headers=self._marketer
        )
        assert response.status_code == 201, response.json
        return response.json  # type: ignore[return-value]

    def visit(
        self, slug: str, visitor: Visitor, *, qr: bool = False, referrer: str | None = None
    ) -> None:
        ip, agent = visitor
        headers = {"User-Agent": agent, **({"Referer": referrer} if referrer else {})}
        response = self._client.get(
            f"/{slug}?qr=1" if qr else f"/{slug}",
            headers=headers,
            environ_base={"REMOTE_ADDR": ip},
        )
        assert response.status_code == 302


@pytest.fixture
def shop(app: Flask, client: FlaskClient, marketer: dict[str, str]) -> Shop:
    return Shop(app, client, marketer)


@pytest.fixture
def journey(shop: Shop, link: dict[str, Any]) -> None:
    """Four live touchpoints (one without clicks) and an archived one, on top of the `link` fixture.

    store-flyer  spring     awareness      spring-launch  Anna, Anna (scan), Ben (scan); 2 Googlebot
    insta-bio    bio        awareness                     Anna, Clara, David; 1 Slackbot
                 bio-offer  decision       spring-launch  Anna
    help-desk    faq        consideration                 Ben
    packaging    box        post-purchase                 (nothing)
    old-poster   poster     awareness                     Clara, then the touchpoint is archived

    store-flyer reached 500 people (the `touchpoint` fixture's exposure), packaging 10,000.
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
    batches are, with the days of the app's time zone and its journey keys: to give clicks
    times that a redirect cannot (`journey=` gives a click the journey a cookie would)."""

    def __init__(self, app: Flask, enricher: Enricher) -> None:
        self._app = app
        self._enricher = enricher

    def into(self, app: Flask) -> Ingest:
        """The same, as the worker of another app (another time zone) would store them."""
        return Ingest(app, self._enricher)

    def raw(self, clicks: Sequence[RawClick], *, batch: int = 100) -> int:
        """Store `clicks` in batches of `batch`; the number of clicks inserted (not stored yet)."""
        rt = runtime(self._app)
        inserted = 0
        for i in range(0, len(clicks), batch):
            with transaction(rt.sessions) as session:
                result = store_clicks(
                    session, clicks[i : i + batch], self._enricher, now=utcnow(),
                    zone=rt.settings.zone, journeys=rt.journey_keys,
                )
            assert not result.rejected
            inserted += result.inserted
        return inserted

    def click(
        self,
        slug: str,
        at: str | datetime,
        *,
        ip: str,
        agent: str,
        qr: bool = False,
        referrer: str = "",
        language: str = "",
        times: int = 1,
        journey: str = "",
    ) -> None:
        """`times` clicks on the link `slug` at `at` (ISO 8601 with an offset, or aware), in
        one batch."""
        clicks = [
            self._raw(slug, at, ip=ip, agent=agent, qr=qr, referrer=referrer, language=language,
                      journey=journey)
            for _ in range(times)
        ]
        assert self.raw(clicks) == times

    def visits(self, slug: str, *clicks: TimedVisit) -> None:
        """Clicks on `slug` at chosen times by visitors (a third item saying a scan), in one
        batch: visitor ids are made under the salt of each day, and a salt older than two days
        is replaced by the next batch (the worker stores clicks as they come)."""
        batch = [
            self._raw(slug, at, ip=ip, agent=agent, qr=bool(scan and scan[0]))
            for at, (ip, agent), *scan in clicks
        ]
        assert self.raw(batch, batch=max(1, len(batch))) == len(batch)

    def make(self, slug: str, at: str | datetime, *, ip: str, agent: str, qr: bool = False,
             journey: str = "") -> RawClick:
        """A raw click on `slug` at `at`, as the redirect would capture it, not stored yet."""
        return self._raw(slug, at, ip=ip, agent=agent, qr=qr, journey=journey)

    def _raw(self, slug: str, at: str | datetime, *, ip: str, agent: str, qr: bool,
             referrer: str = "", language: str = "", journey: str = "") -> RawClick:
        with runtime(self._app).sessions() as session:
            link = session.scalars(select(Link).where(Link.slug == slug)).one()
        return RawClick(
            click_id=new_click_id(),
            at=_moment(at).timestamp(),
            link_id=link.id,
            touchpoint_id=link.touchpoint_id,
            stage_id=link.stage_id,
            ip=ip,
            user_agent=agent,
            referrer=referrer,
            language=language,
            via_qr=qr,
            journey=journey,
        )


@pytest.fixture
def ingest(app: Flask, enricher: Enricher) -> Ingest:
    return Ingest(app, enricher)


class Reports:
    """The reports API asked with an analyst's key, as JSON or CSV, and its refusals."""

    PREFIX = "/api/v1/reports/"

    def __init__(self, client: FlaskClient, key: dict[str, str]) -> None:
        self._client = client
        self._key = key

    def on(self, app: Flask) -> Reports:
        """The same questions asked of another app (another time zone) over the same rows."""
        return Reports(app.test_client(), self._key)

    def _ask(self, path: str, params: dict[str, Any]) -> TestResponse:
        path, _, query = path.partition("?")
        args = MultiDict(parse_qsl(query, keep_blank_values=True))
        for name, value in params.items():
            args[name] = value
        return self._client.get(self.PREFIX + path, query_string=args, headers=self._key)

    def get(self, path: str, **params: Any) -> Any:
        """The report as JSON; `path` may carry a query string of its own."""
        response = self._ask(path, params)
        assert response.status_code == 200, response.get_data(as_text=True)[:1000]
        assert response.mimetype == "application/json"
        return response.get_json()

    def csv(self, path: str, **params: Any) -> list[dict[str, str]]:
        """The report as CSV, one dict per line."""
        return list(csv.DictReader(io.StringIO(self.csv_text(path, **params))))

    def csv_text(self, path: str, **params: Any) -> str:
        response = self._ask(path, {**params, "format": "csv"})
        assert response.status_code == 200, response.get_data(as_text=True)[:1000]
        assert response.mimetype == "text/csv"
        assert response.headers["Content-Disposition"].startswith("attachment; filename=")
        return response.get_data(as_text=True)

    def error(self, path: str, status: int = 400, **params: Any) -> dict[str, Any]:
        """A refusal in the one JSON error shape; its `error` object."""
        response = self._ask(path, params)
        assert response.status_code == status, response.get_data(as_text=True)[:1000]
        assert response.mimetype == "application/json"
        error: dict[str, Any] = response.get_json()["error"]
        assert set(error) == {"code", "message", "details"}
        return error


@pytest.fixture
def reports(client: FlaskClient, analyst: dict[str, str]) -> Reports:
    return Reports(client, analyst)


# --- journeys ------------------------------------------------------------------------------------


class CaptureClock:
    """The clock the redirect stamps the clicks it captures with (`shortener.clicks`), set by
    the test: after `set(moment)`, every click captured is at `moment` until the next `set`.
    The rest of the app keeps the real time (a link is live now, as it is)."""

    def __init__(self) -> None:
        self._at: float | None = None

    def set(self, moment: str | datetime) -> None:
        self._at = _moment(moment).timestamp()

    def time(self) -> float:
        return time.time() if self._at is None else self._at

    def time_ns(self) -> int:
        return time.time_ns() if self._at is None else round(self._at * 1_000_000) * 1000


@pytest.fixture
def capture_clock(monkeypatch: pytest.MonkeyPatch) -> CaptureClock:
    clock = CaptureClock()
    monkeypatch.setattr("shortener.clicks.time", clock)
    return clock


class Browser:
    """A customer's browser: a test client of its own (so a cookie jar of its own), an address,
    a user agent, and the privacy signals it sends (DNT: 1, Sec-GPC: 1)."""

    def __init__(
        self, app: Flask, ip: str, agent: str, *, dnt: bool = False, gpc: bool = False,
        https: bool = False,
    ) -> None:
        self._app = app
        self.client = app.test_client()
        self.ip = ip
        self.headers = {"User-Agent": agent}
        if dnt:
            self.headers["DNT"] = "1"
        if gpc:
            self.headers["Sec-GPC"] = "1"
        self._host = runtime(app).settings.short_host  # its links are served there only
        self._base_url = f"https://{self._host}/" if https else f"http://{self._host}/"

    def click(self, slug: str, *, qr: bool = False, method: str = "GET") -> TestResponse:
        """Follow the short link `slug` (a scan with `qr`); the redirect's response."""
        response = self.client.open(
            f"/{slug}?qr=1" if qr else f"/{slug}",
            method=method,
            headers=self.headers,
            base_url=self._base_url,
            environ_base={"REMOTE_ADDR": self.ip},
        )
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return response

    @property
    def journey(self) -> str | None:
        """The journey id the browser's `tl_j` cookie holds, if it has one."""
        cookie = self.client.get_cookie(COOKIE, domain=self._host)
        return None if cookie is None else cookie.value

    def clear_cookies(self) -> None:
        """As a customer who clears their cookies (or opens a private window) would."""
        self.client = self._app.test_client()


BrowserMaker = Callable[..., Browser]


@pytest.fixture
def browser(app: Flask) -> BrowserMaker:
    """`browser(ip, agent, dnt=, gpc=, https=, app=)`: a new browser on the test's app (or
    `app`)."""
    default = app

    def make(
        ip: str = ANNA[0], agent: str = ANNA[1], *, app: Flask | None = None, **signals: bool
    ) -> Browser:
        return Browser(app or default, ip, agent, **signals)

    return make


@dataclass(frozen=True, slots=True)
class StoredTouch:
    at: datetime
    touchpoint: str  # keys
    stage: str
    slug: str
    via_qr: bool


class JourneyRows:
    """What SQL keeps of journeys: each journey's stored key with its touches in time order, and
    the key a journey id is stored under."""

    def __init__(self, app: Flask) -> None:
        self._app = app

    @staticmethod
    def read(session: Session) -> dict[str, list[StoredTouch]]:
        session.expire_all()
        rows = session.execute(
            select(
                Journey.key, JourneyTouch.touched_at, Touchpoint.key, Stage.key, Link.slug,
                JourneyTouch.via_qr,
            )
            .join(Journey, Journey.id == JourneyTouch.journey_id)
            .join(Touchpoint, Touchpoint.id == JourneyTouch.touchpoint_id)
            .join(Stage, Stage.id == JourneyTouch.stage_id)
            .join(Link, Link.id == JourneyTouch.link_id)
            .order_by(Journey.key, JourneyTouch.touched_at, JourneyTouch.click_id)
        )
        found: dict[str, list[StoredTouch]] = {}
        for key, at, touchpoint, stage, slug, via_qr in rows:
            found.setdefault(key, []).append(
                StoredTouch(at.astimezone(UTC), touchpoint, stage, slug, bool(via_qr))
            )
        return found

    @staticmethod
    def counts(session: Session) -> tuple[int, int]:
        """(journeys, touches) kept."""
        session.expire_all()
        journeys = session.scalar(select(func.count()).select_from(Journey)) or 0
        touches = session.scalar(select(func.count()).select_from(JourneyTouch)) or 0
        return int(journeys), int(touches)

    def key_of(self, journey_id: str) -> str:
        """The key a cookie's journey id is stored under in this installation."""
        keys = runtime(self._app).journey_keys
        return keys.key(journey_id, ip="", user_agent="", salts={}, day=date.today())


@pytest.fixture
def journey_rows(app: Flask) -> JourneyRows:
    return JourneyRows(app)


@pytest.fixture
def followed(
    make_app: Callable[..., Flask], journey: None, browser: BrowserMaker
) -> None:
    """On top of the `journey`, four people whose journeys are followed (a cookie each), in this
    order:

    Anna   spring (store-flyer, awareness), faq (help-desk, consideration), bio-offer (insta-bio,
           decision)
    Ben    bio (insta-bio, awareness) twice
    Clara  bio, faq, box (packaging, post-purchase)
    David  spring twice

    store-flyer: 2 journeys, Anna's moved on; help-desk: 2, both moved on; insta-bio: 3, Clara's
    moved on (Anna's touch there was her last); packaging: 1, not moved on; old-poster: none.
    """
    app = make_app(journeys="cookie")
    walks = {
        "anna": ("spring", "faq", "bio-offer"), "ben": ("bio", "bio"),
        "clara": ("bio", "faq", "box"), "david": ("spring", "spring"),
    }
    for i, slugs in enumerate(walks.values()):
        person = browser(f"192.0.2.{i + 1}", IPHONE, app=app)
        for slug in slugs:
            person.click(slug)
