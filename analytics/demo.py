"""A month of synthetic clicks for the demo workspace, stored through the real ingest path.

Traffic is shaped like real journeys: people meet an awareness touchpoint (as often as DAILY
says), and some go on, hours or days later, to a touchpoint of the next stage, fewer at each
stage; a few come straight to a later stage (customers already). Each person's browser is one
journey (a few send Do Not Track: counted, not followed). Scans on the physical touchpoints,
phones more than desktops, a few bots and link-preview fetchers, a slow rise through the month,
and two touchpoints nobody engaged with (they must show as such). The same seed gives the same
clicks.
"""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics.enrich import Enricher
from analytics.ingest import store_clicks
from analytics.journeys import JourneyKeys
from analytics.models import Click
from analytics.outcome_ingest import store_outcomes
from shortener.clicks import RawClick
from shortener.models import Link
from shortener.outcomes import AnswerEvent, ConversionEvent, Outcome

DAYS = 30
DAY = timedelta(days=1)

# Mean human clicks per day at the end of the month, per demo slug; those left out get none.
DAILY: dict[str, float] = {
    "fb-spring": 30, "insta": 22, "flyer-paris": 6, "window": 3,  # awareness
    "fb-compare": 9, "news-nov": 7,  # consideration (the trade fair card: nothing)
    "banner": 5, "collect": 3,  # decision (the sales rep's card: nothing)
    "thanks": 2.5, "box": 2, "news-care": 1.2,  # post-purchase (the collect survey: nothing)
    "faq": 1.5, "box-help": 0.8,  # support
}
STAGES = ("awareness", "consideration", "decision", "post-purchase", "support")
# Of the people at a stage, the share who go on to the next one (the key), and after how long.
GO_ON = {"consideration": 0.3, "decision": 0.5, "post-purchase": 0.7, "support": 0.35}
MEAN_DELAY_DAYS = 1.5
# People who come straight to a later stage, per day, as a share of its links' DAILY means.
DIRECT = 0.25
DO_NOT_TRACK = 0.08  # the share of people whose browser says DNT: no journey for them
# What a click of a stage's links leads to (event, chance), and what baskets cost (EUR).
SALES = {"decision": ("sale", 0.35), "consideration": ("signup", 0.12)}
BASKETS = ("19.90", "34.50", "49.00", "89.00", "129.00", "249.00")
SURVEY_SLUG = "collect-survey"
NPS_SCORES = (1, 1, 1, 2, 2, 3, 4, 8, 14, 16, 12)  # weights of 0..10: more promoters than not
COMMENTS = (
    "Quick and friendly.", "Had to wait twenty minutes.", "Parking was a nightmare.",
    "Great, will use it again!", "The counter was hard to find.",
)
# Share of clicks that come from the printed QR code.
SCANS: dict[str, float] = {
    "flyer-paris": 0.92, "window": 0.97, "box": 0.95, "box-help": 0.9, "collect": 0.4, "faq": 0.2,
}
REFERRERS: dict[str, tuple[str, ...]] = {
    "insta": ("https://l.instagram.com/", "https://www.instagram.com/"),
    "fb-spring": ("https://m.facebook.com/", "https://lm.facebook.com/", "https://www.facebook.com/"),
    "fb-compare": ("https://m.facebook.com/", "https://www.facebook.com/"),
    "news-nov": ("https://mail.google.com/", "", "https://outlook.live.com/"),
    "news-care": ("https://mail.google.com/", ""),
    "thanks": ("", "https://mail.google.com/"),
    "banner": ("https://www.example.com/",),
    "faq": ("https://help.example.com/",),
}
PHONES = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 Instagram 330.0.0.0 (iPhone14,5; iOS 17_5; fr_FR)",
)
DESKTOPS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
)
TABLETS = (
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1",
)
BOTS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "WhatsApp/2.23.20.0",
)
BOT_SHARE = 0.04
# First octets of address blocks in the countries the demo shop sells to, weighted.
NETWORKS: tuple[tuple[str, int], ...] = (
    ("90", 30), ("86.200", 8), ("2", 10), ("109.190", 6),  # France
    ("79.200", 6), ("84.150", 4),  # Germany
    ("81.130", 5), ("92.40", 3),  # United Kingdom
    ("83.40", 4), ("151.40", 3), ("81.240", 3), ("178.197", 2),  # Spain, Italy, Belgium, Swiss
    ("73", 4),  # United States
)
LANGUAGES = ("fr-FR,fr;q=0.9,en;q=0.8", "en-GB,en;q=0.9", "de-DE,de;q=0.9", "en-US,en;q=0.9")
# Relative traffic per hour of the day (UTC), lunch and evening peaks.
HOURS = (1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 9, 11, 10, 8, 8, 8, 9, 11, 13, 13, 10, 6, 3)


@dataclass(frozen=True, slots=True)
class Visitor:
    ip: str
    user_agent: str
    language: str
    journey: str = ""  # the browser's journey cookie; "" when it says Do Not Track


def seed_demo_clicks(
    session: Session,
    enricher: Enricher,
    *,
    now: datetime,
    zone: tzinfo = UTC,
    journeys: JourneyKeys | None = None,
    days: int = DAYS,
    seed: int = 7,
) -> int:
    """Store `days` of synthetic clicks on the demo links, with their journeys; none when clicks
    exist already.

    Returns how many were stored. Flushes, never commits.
    """
    if session.scalar(select(func.count()).select_from(Click)):
        return 0
    found = {
        link.slug: link
        for link in session.scalars(select(Link).where(Link.slug.in_(list(DAILY))))
    }
    if not found:
        return 0
    rng = random.Random(seed)
    people = _visitors(rng, 2500)
    # Whole hours, as the reports count: the window the dashboard opens on holds every click.
    start = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1, days=-days)
    first_day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    clicks = [
        click
        for day_index in range(days + 1)
        for click in _day_of_clicks(
            rng, found, people, first_day + timedelta(days=day_index), day_index / days, now
        )
        if start.timestamp() <= click.at < now.timestamp()
    ]
    clicks.sort(key=lambda click: click.at)
    stored = 0
    for day_index in range(days + 1):
        day = first_day + timedelta(days=day_index)
        that_day = [c for c in clicks if day.timestamp() <= c.at < (day + DAY).timestamp()]
        if not that_day:
            continue
        # Each day is ingested as it would have been that day, visitor salts included.
        result = store_clicks(
            session, that_day, enricher, now=min(now, day + DAY), zone=zone,
            journeys=journeys,
        )
        stored += result.inserted
    # The survey link draws no clicks of its own here: it is found apart.
    survey = session.scalars(select(Link).where(Link.slug == SURVEY_SLUG)).one_or_none()
    outcomes = _outcomes(rng, clicks, found, survey, now=now)
    store_outcomes(session, outcomes, now=now, zone=zone, journeys=journeys)
    return stored


def _outcomes(
    rng: random.Random, clicks: Sequence[RawClick], links: dict[str, Link], survey: Link | None,
    *, now: datetime,
) -> list[Outcome]:
    """What came of the demo's clicks: sales a few hours after a decision-stage click, signups
    after the newsletter's, sales at the till with the flyer's coupon, and the click & collect
    counter's one-question survey answered by some of its visitors."""
    by_id = {link.id: link for link in links.values()}
    found: list[Outcome] = []
    for click in clicks:
        link = by_id[click.link_id]
        kind = SALES.get(link.stage.key) if click.language else None  # bots buy nothing
        if kind is None or rng.random() >= kind[1]:
            continue
        at = click.at + rng.uniform(0.1, 6) * 3600
        if at >= now.timestamp():
            continue
        value = rng.choice(BASKETS) if kind[0] == "sale" else None
        found.append(ConversionEvent(
            id=secrets.token_hex(16), event=kind[0], occurred_at=at, click_id=click.click_id,
            link_id=click.link_id, clicked_at=click.at,
            value_micros=None if value is None else int(Decimal(value) * 1_000_000),
            currency=None if value is None else "EUR",
        ))
    flyer = links.get("flyer-paris")
    if flyer is not None:
        for day in range(DAYS):
            for _ in range(_poisson(rng, 0.8)):
                at = now.timestamp() - (day + rng.random()) * 86_400
                found.append(ConversionEvent(
                    id=secrets.token_hex(16), event="sale", occurred_at=at, coupon="PARIS10",
                    touchpoint_id=flyer.touchpoint_id, currency="EUR",
                    value_micros=int(Decimal(rng.choice(BASKETS)) * 1_000_000),
                ))
    if survey is not None:
        for day in range(DAYS):
            for _ in range(_poisson(rng, 1.5)):
                score = rng.choices(range(11), NPS_SCORES)[0]
                found.append(AnswerEvent(
                    id=secrets.token_hex(16), at=now.timestamp() - (day + rng.random()) * 86_400,
                    link_id=survey.id, touchpoint_id=survey.touchpoint_id,
                    stage_id=survey.stage_id, kind="nps", score=score,
                    comment=rng.choice(COMMENTS) if rng.random() < 0.3 else "",
                    ip=f"192.0.2.{rng.randrange(1, 255)}", user_agent=rng.choice(PHONES),
                    journey=secrets.token_hex(16),
                ))
    return found


def _day_of_clicks(
    rng: random.Random,
    links: dict[str, Link],
    people: Sequence[Visitor],
    day: datetime,
    progress: float,
    now: datetime,
) -> list[RawClick]:
    """The clicks of the people who meet the brand on `day`, their later ones included."""
    # A rise through the month (the spring launch), quieter weekends for the digital touchpoints.
    growth = 0.55 + 0.45 * progress
    weekend = day.weekday() >= 5
    at_stage = {
        stage: [(slug, DAILY[slug]) for slug, link in links.items() if link.stage.key == stage]
        for stage in STAGES
    }
    clicks = []
    for stage_index, stage in enumerate(STAGES):
        share = 1.0 if stage_index == 0 else DIRECT
        for slug, mean in at_stage[stage]:
            factor = growth * share * (0.7 if weekend and slug not in SCANS else 1.0)
            for _ in range(_poisson(rng, mean * factor)):
                at = day + timedelta(hours=_hour(rng), minutes=rng.random() * 60)
                person = rng.choice(people)
                clicks += _journey(rng, links, at_stage, person, slug, stage_index, at)
            if rng.random() < BOT_SHARE * mean:
                at = day + timedelta(seconds=rng.random() * 86_400)
                clicks.append(_click(rng, links[slug], at, _bot(rng)))
    return [click for click in clicks if click.at < now.timestamp()]


def _journey(
    rng: random.Random,
    links: dict[str, Link],
    at_stage: dict[str, list[tuple[str, float]]],
    person: Visitor,
    slug: str,
    stage_index: int,
    at: datetime,
) -> list[RawClick]:
    """A person's clicks from `slug` on: at each later stage they may go on to, a link of it."""
    clicks = [_click(rng, links[slug], at, person)]
    if rng.random() < 0.08:  # looked again a little later
        clicks.append(_click(rng, links[slug], at + timedelta(minutes=rng.random() * 90), person))
    for stage in STAGES[stage_index + 1 :]:
        choices = at_stage[stage]
        if not choices or rng.random() >= GO_ON[stage]:
            break
        at += timedelta(days=rng.expovariate(1 / MEAN_DELAY_DAYS))
        chosen = rng.choices([s for s, _ in choices], [w for _, w in choices])[0]
        clicks.append(_click(rng, links[chosen], at, person))
    return clicks


def _bot(rng: random.Random) -> Visitor:
    return Visitor(f"66.249.{rng.randrange(64, 96)}.{rng.randrange(1, 255)}", rng.choice(BOTS), "")


def _click(rng: random.Random, link: Link, at: datetime, visitor: Visitor) -> RawClick:
    bot = visitor.language == ""
    scan = not bot and rng.random() < SCANS.get(link.slug, 0.0)
    referrer = "" if scan or bot else rng.choice(REFERRERS.get(link.slug, ("",)))
    return RawClick(
        click_id=f"{int(at.timestamp() * 1000):012x}{secrets.token_hex(10)}",
        at=at.astimezone(UTC).timestamp(),
        link_id=link.id,
        touchpoint_id=link.touchpoint_id,
        stage_id=link.stage_id,
        ip=visitor.ip,
        user_agent=visitor.user_agent,
        referrer=referrer,
        language=visitor.language,
        via_qr=scan,
        journey=visitor.journey,
    )


def _visitors(rng: random.Random, count: int) -> list[Visitor]:
    networks = [prefix for prefix, _ in NETWORKS]
    weights = [weight for _, weight in NETWORKS]
    people = []
    for _ in range(count):
        prefix = rng.choices(networks, weights)[0]
        octets = prefix.split(".")
        while len(octets) < 4:
            octets.append(str(rng.randrange(1, 255)))
        kind = rng.random()
        agents = PHONES if kind < 0.68 else DESKTOPS if kind < 0.95 else TABLETS
        journey = "" if rng.random() < DO_NOT_TRACK else f"{rng.getrandbits(128):032x}"
        people.append(
            Visitor(".".join(octets), rng.choice(agents), rng.choice(LANGUAGES), journey)
        )
    return people


def _hour(rng: random.Random) -> int:
    return rng.choices(range(24), HOURS)[0]


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method: the means here are small)."""
    if mean <= 0:
        return 0
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
