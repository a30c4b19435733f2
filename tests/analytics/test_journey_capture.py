"""What the redirect does for a click's journey (TOUCHLINK_JOURNEYS): the `tl_j` cookie it sets,
keeps or replaces with `cookie`, none with `cookieless` (the worker derives the journey from the
address and user agent, under a salt per TOUCHLINK_JOURNEY_DAYS period), and never a journey for
a bot, a link preview, a request that says DNT or GPC, or one that is not counted."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from analytics.models import Click, Journey
from tests.user_agents import ANDROID, GOOGLEBOT, IPHONE, SLACKBOT

JOURNEY_ID = re.compile(r"[0-9a-f]{32}")
FACEBOOK_PREVIEW = "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """This module's app follows journeys with a cookie."""
    return make_app(journeys="cookie")


@pytest.fixture
def spring(link: dict[str, Any]) -> str:
    """The slug of the `link` fixture (the touchpoint store-flyer, at awareness)."""
    return str(link["slug"])


def journey_cookie(response: TestResponse) -> tuple[str, list[str]] | None:
    """The `tl_j` cookie a response sets: its value and its attributes; None without one."""
    headers = response.headers.getlist("Set-Cookie")
    if not headers:
        return None
    (header,) = headers
    first, *attributes = [part.strip() for part in header.split(";")]
    name, _, value = first.partition("=")
    assert name == "tl_j", header
    return value, attributes


def counted(session: Session) -> tuple[int, int]:
    """(human clicks, bot clicks) stored."""
    session.expire_all()
    humans, bots = session.execute(
        select(func.count().filter(Click.is_bot.is_(False)), func.count().filter(Click.is_bot))
    ).one()
    return int(humans), int(bots)


# --- cookie ---------------------------------------------------------------------------------------


def test_a_counted_click_sets_a_first_party_journey_cookie(
    browser: Any, spring: str, session: Session, journey_rows: Any
) -> None:
    response = browser().click(spring)

    found = journey_cookie(response)
    assert found is not None
    value, attributes = found
    assert JOURNEY_ID.fullmatch(value)  # 128 random bits
    assert attributes == ["Max-Age=2592000", "Path=/", "HttpOnly", "SameSite=Lax"]  # 30 days
    assert response.headers["Location"].startswith("https://shop.example.com/spring?ref=flyer")
    assert response.headers["Cache-Control"] == "private, no-store"
    assert counted(session) == (1, 0)
    assert set(journey_rows.read(session)) == {journey_rows.key_of(value)}


def test_max_age_is_the_journey_days(
    make_app: Callable[..., Flask], make_flyer: Callable[[Flask], None], browser: Any
) -> None:
    week = make_app(journeys="cookie", journey_days=7)
    make_flyer(week)

    found = journey_cookie(browser(app=week).click("flyer"))

    assert found is not None
    assert found[1][0] == f"Max-Age={7 * 86_400}"


def test_the_cookie_is_secure_on_https_only(browser: Any, spring: str) -> None:
    plain = journey_cookie(browser().click(spring))
    secure = journey_cookie(browser(https=True).click(spring))

    assert plain is not None and "Secure" not in plain[1]
    assert secure is not None
    assert secure[1] == ["Max-Age=2592000", "Path=/", "HttpOnly", "SameSite=Lax", "Secure"]


def test_behind_a_proxy_the_forwarded_scheme_decides_secure(
    make_app: Callable[..., Flask], make_flyer: Callable[[Flask], None]
) -> None:
    proxied = make_app(journeys="cookie", proxy_hops=1)
    make_flyer(proxied)
    client = proxied.test_client()

    response = client.get("/flyer", headers={"User-Agent": IPHONE, "X-Forwarded-Proto": "https"})

    found = journey_cookie(response)
    assert found is not None and found[1][-1] == "Secure"


def test_each_click_refreshes_the_cookie_with_the_same_id(
    browser: Any, spring: str, shop: Any, session: Session, journey_rows: Any
) -> None:
    shop.link("faq", "store-flyer", "consideration")
    anna = browser()
    sent = [journey_cookie(anna.click(slug)) for slug in (spring, "faq", spring)]

    values = {found[0] for found in sent if found is not None}
    assert len(sent) == 3 and len(values) == 1
    assert all(found is not None and found[1][0] == "Max-Age=2592000" for found in sent)
    (value,) = values
    assert anna.journey == value
    stored = journey_rows.read(session)
    assert list(stored) == [journey_rows.key_of(value)]
    assert [(t.slug, t.stage) for t in stored[journey_rows.key_of(value)]] == [
        ("spring", "awareness"), ("faq", "consideration"), ("spring", "awareness"),
    ]


def test_a_well_formed_cookie_is_kept(
    app: Flask, spring: str, session: Session, journey_rows: Any
) -> None:
    client = app.test_client(use_cookies=False)  # sends the Cookie header the test gives
    journey = "0123456789abcdef0123456789abcdef"

    response = client.get(
        f"/{spring}", headers={"User-Agent": IPHONE, "Cookie": f"theme=dark; tl_j={journey}"}
    )

    found = journey_cookie(response)
    assert found is not None and found[0] == journey
    assert list(journey_rows.read(session)) == [journey_rows.key_of(journey)]


VALID = "0123456789abcdef0123456789abcdef"
BAD_COOKIES = {
    "short": "tl_j=abc123",
    "too long": f"tl_j={VALID}{VALID}",
    "one digit too many": f"tl_j={VALID}0",
    "upper case": f"tl_j={VALID.upper()}",
    "not hexadecimal": f"tl_j={'g' * 32}",
    "quoted": f'tl_j="{VALID}"',
    "empty": "tl_j=",
    "repeated": f"tl_j={VALID}; tl_j={VALID}",
    "two ids": f"tl_j={VALID}; tl_j={'f' * 32}",
    "latin-1": f"tl_j={'é' * 32}",
    "huge": f"tl_j={'a' * 8000}",
    "punctuation": "tl_j=../../etc/passwd%00;",
}


@pytest.mark.parametrize("cookie", list(BAD_COOKIES.values()), ids=list(BAD_COOKIES))
def test_a_malformed_cookie_is_replaced_by_a_fresh_id_never_an_error(
    app: Flask, spring: str, session: Session, journey_rows: Any, cookie: str
) -> None:
    client = app.test_client(use_cookies=False)

    response = client.get(f"/{spring}", headers={"User-Agent": IPHONE, "Cookie": cookie})

    assert response.status_code == 302
    found = journey_cookie(response)
    assert found is not None
    fresh = found[0]
    assert JOURNEY_ID.fullmatch(fresh) and fresh not in cookie
    assert list(journey_rows.read(session)) == [journey_rows.key_of(fresh)]
    # Two requests with the same bad cookie are two fresh journeys: nothing of it is kept.
    again = journey_cookie(
        client.get(f"/{spring}", headers={"User-Agent": IPHONE, "Cookie": cookie})
    )
    assert again is not None and again[0] != fresh


PREVIEWS = {
    "crawler": GOOGLEBOT,
    "slack": SLACKBOT,
    "facebook": FACEBOOK_PREVIEW,
    "whatsapp": "WhatsApp/2.23.20.0",
    "twitter": "Twitterbot/1.0",
    "discord": "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "no user agent": "",
    "curl": "curl/8.5.0",
}


@pytest.mark.parametrize("agent", list(PREVIEWS.values()), ids=list(PREVIEWS))
def test_bots_and_link_previews_get_no_cookie_and_no_journey(
    browser: Any, spring: str, session: Session, journey_rows: Any, agent: str
) -> None:
    bot = browser("66.249.66.1", agent)

    responses = [bot.click(spring), bot.click(spring, qr=True)]

    assert [journey_cookie(r) for r in responses] == [None, None]
    assert counted(session) == (0, 2)  # still counted, as bots
    assert journey_rows.counts(session) == (0, 0)


@pytest.mark.parametrize(
    "signals", [{"dnt": True}, {"gpc": True}, {"dnt": True, "gpc": True}],
    ids=["dnt", "gpc", "both"],
)
def test_do_not_track_and_gpc_are_counted_without_a_journey(
    browser: Any, spring: str, session: Session, journey_rows: Any, signals: dict[str, bool]
) -> None:
    private = browser(**signals)

    responses = [private.click(spring), private.click(spring, qr=True)]

    assert [journey_cookie(r) for r in responses] == [None, None]
    assert private.journey is None
    assert counted(session) == (2, 0)
    assert journey_rows.counts(session) == (0, 0)


def test_only_a_signal_of_one_asks_not_to_be_followed(
    app: Flask, spring: str, session: Session
) -> None:
    client = app.test_client()
    for headers in ({"DNT": "0"}, {"Sec-GPC": "0"}, {"DNT": "yes"}):
        response = client.get(f"/{spring}", headers={"User-Agent": IPHONE, **headers})
        assert journey_cookie(response) is not None, headers
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Journey)) == 1  # one cookie jar


def test_a_request_carrying_a_cookie_with_dnt_is_not_followed(
    app: Flask, spring: str, session: Session, journey_rows: Any
) -> None:
    client = app.test_client(use_cookies=False)

    response = client.get(
        f"/{spring}", headers={"User-Agent": IPHONE, "DNT": "1", "Cookie": f"tl_j={VALID}"}
    )

    assert journey_cookie(response) is None
    assert counted(session) == (1, 0)
    assert journey_rows.counts(session) == (0, 0)


def test_notrack_is_neither_counted_nor_followed(
    browser: Any, spring: str, session: Session, journey_rows: Any
) -> None:
    anna = browser()

    response = anna.client.get(f"/{spring}?notrack=1", headers=anna.headers)

    assert response.status_code == 302
    assert journey_cookie(response) is None
    assert counted(session) == (0, 0)
    assert journey_rows.counts(session) == (0, 0)


def test_head_sets_nothing(browser: Any, spring: str, session: Session, journey_rows: Any) -> None:
    response = browser().click(spring, method="HEAD")

    assert journey_cookie(response) is None
    assert counted(session) == (0, 0)
    assert journey_rows.counts(session) == (0, 0)


def test_unknown_and_retired_links_set_no_cookie(app: Flask, spring: str) -> None:
    client = app.test_client()
    for path in ("/no-such-link", "/%00"):
        response = client.get(path, headers={"User-Agent": IPHONE})
        assert response.status_code == 404
        assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize("mode", ["off", "cookieless"])
def test_without_cookie_mode_no_cookie_is_set_or_refreshed(
    make_app: Callable[..., Flask], make_flyer: Callable[[Flask], None], mode: str
) -> None:
    other = make_app(journeys=mode)
    make_flyer(other)
    client = other.test_client(use_cookies=False)

    for cookie in ("", f"tl_j={VALID}"):
        headers = {"User-Agent": IPHONE, **({"Cookie": cookie} if cookie else {})}
        response = client.get("/flyer", headers=headers)
        assert response.status_code == 302
        assert "Set-Cookie" not in response.headers


def test_journeys_off_keeps_no_journey_at_all(
    make_app: Callable[..., Flask], make_flyer: Callable[[Flask], None], browser: Any,
    session: Session, journey_rows: Any,
) -> None:
    off = make_app()
    make_flyer(off)
    anna = browser(app=off)

    responses = [anna.click("flyer"), anna.click("flyer")]

    assert [journey_cookie(r) for r in responses] == [None, None]
    assert counted(session) == (2, 0)
    assert journey_rows.counts(session) == (0, 0)


# --- cookieless -----------------------------------------------------------------------------------


@pytest.fixture
def cookieless(make_app: Callable[..., Flask], make_flyer: Callable[[Flask], None]) -> Flask:
    """An app deriving journeys from the address and user agent, with a salt a day."""
    app = make_app(journeys="cookieless", journey_days=1)
    make_flyer(app)
    return app


def test_cookieless_journeys_are_one_per_address_and_user_agent(
    cookieless: Flask, browser: Any, session: Session, journey_rows: Any
) -> None:
    visits = [
        ("203.0.113.7", IPHONE, 3),  # Anna's phone: one journey
        ("203.0.113.7", ANDROID, 2),  # another phone behind the same address: another
        ("198.51.100.4", IPHONE, 1),  # the same phone model elsewhere: another
    ]
    responses = []
    for ip, agent, times in visits:
        for _ in range(times):
            # A browser of its own each time: no cookie could tie these clicks together.
            responses.append(browser(ip, agent, app=cookieless).click("flyer"))
    browser("203.0.113.7", IPHONE, app=cookieless, dnt=True).click("flyer")
    browser("66.249.66.1", GOOGLEBOT, app=cookieless).click("flyer")

    assert all("Set-Cookie" not in r.headers for r in responses)
    stored = journey_rows.read(session)
    assert sorted(len(touches) for touches in stored.values()) == [1, 2, 3]
    assert counted(session) == (7, 1)  # the DNT click counted, not followed; the bot a bot
    # The stored keys are keyed hashes: no address or user agent is in them.
    assert all(JOURNEY_ID.fullmatch(key) for key in stored)


def test_cookieless_journeys_end_when_the_salt_period_does(
    cookieless: Flask, browser: Any, capture_clock: Any, session: Session, journey_rows: Any
) -> None:
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
    anna = browser("203.0.113.7", IPHONE, app=cookieless)
    # TOUCHLINK_JOURNEY_DAYS=1: a period is a day of the workspace (UTC here).
    for moment in (day + timedelta(hours=1), day + timedelta(hours=23, minutes=59)):
        capture_clock.set(moment)
        anna.click("flyer")
    capture_clock.set(day + timedelta(days=1, minutes=1))
    anna.click("flyer")

    stored = journey_rows.read(session)
    assert sorted(
        [t.at for t in touches] for touches in stored.values()
    ) == [
        [day + timedelta(hours=1), day + timedelta(hours=23, minutes=59)],
        [day + timedelta(days=1, minutes=1)],
    ]
