"""Journeys through the real path: customers, each with a browser (a cookie jar) of their own,
follow short links over HTTP at times the test chooses; the funnel (closed and open), the paths,
where journeys go next and the touchpoints' moved-on figures are then the ones the test computes
itself from what it sent, by the definitions of the issue:

- closed funnel: a journey reaches stage k when it has touches at stages 1, 2, …, k at strictly
  increasing times; `continued` is stage k + 1's journeys, `drop_to_next` 1 - continued / journeys;
- open funnel: a journey is at stage k with any touch there, and continued when it has a touch
  at stage k + 1 later than its first touch at stage k;
- paths: the touchpoints in time order, consecutive touches of one touchpoint as one, with the
  journeys that follow each exactly;
- next: for the journeys that touched a touchpoint, the next different touchpoint (None: no
  further touch in the window);
- moved on: of the journeys with a touch at a touchpoint, those with a later touch at a stage
  after that touch's stage.

Only touches inside the window [from, to) count.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics.models import Click
from analytics.reports.rates import rate
from tests.user_agents import ANDROID, DESKTOP, GOOGLEBOT, IPHONE, SLACKBOT

STAGES = ("awareness", "consideration", "decision", "post-purchase", "support")
STAGE_NAMES = ("Awareness", "Consideration", "Decision", "Post purchase", "Support")
CHANNELS = {
    "flyer": "physical", "insta": "digital", "newsletter": "digital", "store": "human",
    "box": "physical", "faq": "digital", "radio": "human", "poster": "physical",
}
# slug: (touchpoint, stage, campaign)
LINKS: dict[str, tuple[str, str, str | None]] = {
    "flyer": ("flyer", "awareness", "spring"),
    "insta": ("insta", "awareness", "spring"),
    "insta-deal": ("insta", "decision", "spring"),
    "news": ("newsletter", "consideration", None),
    "news-care": ("newsletter", "post-purchase", None),
    "compare": ("store", "consideration", "spring"),
    "checkout": ("store", "decision", None),
    "box": ("box", "post-purchase", None),
    "box-help": ("box", "support", None),
    "faq": ("faq", "support", None),
    "spot": ("radio", "awareness", None),  # clicked only by people who are not followed
    "poster": ("poster", "awareness", None),  # never clicked
}
SCANNED = {"flyer", "box", "box-help"}


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """This module's app follows journeys with a cookie."""
    return make_app(journeys="cookie")


@pytest.fixture
def links(shop: Any) -> Callable[[datetime], None]:
    """`links(made)`: the touchpoints and links above, made (as if) at `made`."""

    def make(made: datetime) -> None:
        for key, channel in CHANNELS.items():
            shop.touchpoint(key, channel, created_at=made)
        for slug, (touchpoint, stage, campaign) in LINKS.items():
            shop.link(slug, touchpoint, stage, campaign, created_at=made)

    return make


# --- what the test sent, and what it makes of it --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sent:
    """A click the test sent: by whom, on which journey (None: not followed), when, where."""

    person: int
    journey: int | None
    at: datetime
    slug: str
    qr: bool
    bot: bool
    new_browser: bool = False  # the person cleared their cookies just before this click

    @property
    def touchpoint(self) -> str:
        return LINKS[self.slug][0]

    @property
    def stage(self) -> int:
        return STAGES.index(LINKS[self.slug][1])

    @property
    def campaign(self) -> str | None:
        return LINKS[self.slug][2]


Journeys = dict[int, list[Sent]]


def journeys_of(
    sent: Iterable[Sent], start: datetime, end: datetime, keep: Callable[[Sent], bool] = bool
) -> Journeys:
    """The followed clicks inside [start, end) that `keep` keeps, journey by journey, in time
    order."""
    found: Journeys = {}
    for click in sorted(sent, key=lambda c: c.at):
        if click.journey is not None and start <= click.at < end and keep(click):
            found.setdefault(click.journey, []).append(click)
    return found


def drop(continued: int | None, journeys: int) -> float | None:
    if continued is None or not journeys:
        return None
    return round(1 - continued / journeys, 4)


def closed_funnel(journeys: Journeys) -> list[tuple[str, int, int | None, float | None]]:
    reached = [0] * len(STAGES)
    for touches in journeys.values():
        # The times at which a chain of touches at stages 1..k, at strictly increasing times,
        # can end; a chain through stage k + 1 needs a touch there after one of them.
        ends: list[datetime] | None = None
        for k in range(len(STAGES)):
            ends = [
                t.at for t in touches
                if t.stage == k and (ends is None or any(end < t.at for end in ends))
            ]
            if not ends:
                break
            reached[k] += 1
    return _rows(reached, [*reached[1:], None])


def open_funnel(journeys: Journeys) -> list[tuple[str, int, int | None, float | None]]:
    at_stage = [0] * len(STAGES)
    continued: list[int | None] = [0] * (len(STAGES) - 1) + [None]
    for touches in journeys.values():
        for k in range(len(STAGES)):
            here = [t.at for t in touches if t.stage == k]
            if not here:
                continue
            at_stage[k] += 1
            went = continued[k]
            if went is not None and any(
                t.stage == k + 1 and t.at > min(here) for t in touches
            ):
                continued[k] = went + 1
    return _rows(at_stage, continued)


def _rows(
    journeys: Sequence[int], continued: Sequence[int | None]
) -> list[tuple[str, int, int | None, float | None]]:
    return [
        (STAGES[k], journeys[k], continued[k], drop(continued[k], journeys[k]))
        for k in range(len(STAGES))
    ]


def path_of(touches: Sequence[Sent]) -> tuple[str, ...]:
    path: list[str] = []
    for touch in touches:
        if not path or path[-1] != touch.touchpoint:
            path.append(touch.touchpoint)
    return tuple(path)


def paths(journeys: Journeys) -> list[tuple[list[str], int]]:
    """Most common first; among as common, in the order of their keys."""
    counted = Counter(path_of(touches) for touches in journeys.values())
    return [(list(p), n) for p, n in sorted(counted.items(), key=lambda i: (-i[1], i[0]))]


def next_after(journeys: Journeys, key: str) -> tuple[int, list[tuple[str | None, int]]]:
    counted: Counter[str | None] = Counter()
    for touches in journeys.values():
        path = path_of(touches)
        if key in path:
            i = path.index(key)
            counted[path[i + 1] if i + 1 < len(path) else None] += 1
    rows = sorted(counted.items(), key=lambda i: (-i[1], i[0] is None, i[0] or ""))
    return sum(counted.values()), rows


def moved_on(journeys: Journeys) -> dict[str, tuple[int, int]]:
    """Per touchpoint: (its journeys, those that moved on)."""
    touched: Counter[str] = Counter()
    went_on: Counter[str] = Counter()
    for touches in journeys.values():
        for key in {t.touchpoint for t in touches}:
            touched[key] += 1
            if any(
                u.at > t.at and u.stage > t.stage
                for t in touches if t.touchpoint == key
                for u in touches
            ):
                went_on[key] += 1
    return {key: (n, went_on[key]) for key, n in touched.items()}


def funnel_rows(body: Any) -> list[tuple[str, int, int | None, float | None]]:
    return [
        (r["stage"]["key"], r["journeys"], r["continued"], r["drop_to_next"]) for r in body["rows"]
    ]


def next_rows(body: Any) -> list[tuple[str | None, int]]:
    return [
        (r["touchpoint"]["key"] if r["touchpoint"] else None, r["journeys"]) for r in body["rows"]
    ]


# --- the population -------------------------------------------------------------------------------

PEOPLE = 300


def simulate(rng: random.Random, start: datetime, until: datetime) -> list[Sent]:
    """Who clicks which link in what order, at distinct whole seconds in [start, until)."""
    at_stage = {
        k: [slug for slug, (_, stage, _) in LINKS.items()
            if stage == STAGES[k] and slug not in ("spot", "poster")]
        for k in range(len(STAGES))
    }
    taken: set[datetime] = set()
    journeys = iter(range(1, 10_000))
    sent = []
    for person in range(PEOPLE):
        kind = rng.random()
        bot = kind < 0.06
        followed = kind >= 0.16  # 6 % bots, 10 % with DNT or GPC: no journey for them
        journey = next(journeys) if followed else None
        stage = 0 if rng.random() < 0.8 else rng.randrange(1, len(STAGES))
        at = start + timedelta(seconds=rng.randrange(10 * 86_400))
        previous = None
        for step in range(rng.randint(1, 7)):
            choices = at_stage[stage] + (["spot"] if stage == 0 and not followed else [])
            slug = previous if previous and rng.random() < 0.15 else rng.choice(choices)
            while at in taken:
                at += timedelta(seconds=1)
            if at >= until:
                break
            taken.add(at)
            new_browser = followed and step > 0 and rng.random() < 0.04
            if new_browser:
                journey = next(journeys)
            qr = slug in SCANNED and rng.random() < 0.8
            sent.append(Sent(person, journey, at, slug, qr, bot, new_browser))
            previous = slug
            move = rng.random()
            if move < 0.6:
                stage = min(stage + 1, len(STAGES) - 1)
            elif move < 0.7:
                stage = max(stage - 1, 0)
            at += timedelta(seconds=rng.randrange(60, 36 * 3600))
    return sorted(sent, key=lambda click: click.at)


@dataclass(frozen=True, slots=True)
class Population:
    sent: list[Sent]
    start: datetime  # the window the reports are asked for: [start, end)
    end: datetime
    window: dict[str, str]  # as its query parameters
    cookies: dict[int, str]  # journey → the cookie value its browser was given

    def journeys(self, keep: Callable[[Sent], bool] = bool) -> Journeys:
        return journeys_of(self.sent, self.start, self.end, keep)


@pytest.fixture
def population(
    app: Flask, links: Callable[[datetime], None], browser: Any, capture_clock: Any
) -> Population:
    """A few hundred people over twelve days, sent in time order, each click at the time the
    test chose; the window is seven whole days in the middle."""
    first = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first -= timedelta(days=12)
    links(first - timedelta(days=1))
    sent = simulate(random.Random(20261201), first, first + timedelta(days=11, hours=12))
    browsers: dict[int, Any] = {}
    cookies: dict[int, str] = {}
    for click in sent:
        person = browsers.get(click.person)
        if person is None:
            agents = (GOOGLEBOT, SLACKBOT) if click.bot else (IPHONE, ANDROID, DESKTOP)
            signals = {}
            if click.journey is None and not click.bot:
                signals = {"dnt": True} if click.person % 3 else {"gpc": True}
            ip = f"198.18.{click.person // 250}.{click.person % 250 + 1}"
            person = browsers[click.person] = browser(
                ip, agents[click.person % len(agents)], **signals
            )
        if click.new_browser:
            person.clear_cookies()
        capture_clock.set(click.at)
        response = person.click(click.slug, qr=click.qr)
        if click.journey is None:
            assert "Set-Cookie" not in response.headers  # bots, DNT, GPC: counted, not followed
            continue
        assert "Set-Cookie" in response.headers
        assert cookies.setdefault(click.journey, person.journey) == person.journey
    window = {"from": str((first + timedelta(days=2)).date()),
              "to": str((first + timedelta(days=8)).date())}
    return Population(sent, first + timedelta(days=2), first + timedelta(days=9), window, cookies)


def test_a_simulated_population_over_http_gets_the_figures_it_sent(
    population: Population, reports: Any, session: Session, journey_rows: Any
) -> None:
    """The issue's resolution: a few hundred people, each with a browser of their own, some
    with DNT or GPC, some bots; every figure of the journey reports is the test's own."""
    check_one_journey_per_browser_whose_touches_are_its_human_clicks(
        population, session, journey_rows
    )
    check_the_funnel(population, reports)
    check_the_paths(population, reports)
    for key in ("insta", "newsletter", "box", "radio"):
        check_next(population, reports, key)
    check_the_touchpoint_rows(population, reports)
    for order in ("most", "least"):
        check_the_ranking_by_moved_on(population, reports, order)
    check_the_filters(population, reports)
    check_the_window(population, reports)
    check_the_csv(population, reports)


def check_one_journey_per_browser_whose_touches_are_its_human_clicks(
    population: Population, session: Session, journey_rows: Any
) -> None:
    followed = [c for c in population.sent if c.journey is not None]
    stored = journey_rows.read(session)
    assert len(population.sent) > 800 and len(population.cookies) > 240
    assert journey_rows.counts(session) == (len(population.cookies), len(followed))
    assert set(stored) == {journey_rows.key_of(v) for v in population.cookies.values()}
    for journey, cookie in population.cookies.items():
        assert [(t.at, t.slug, t.via_qr) for t in stored[journey_rows.key_of(cookie)]] == [
            (c.at, c.slug, c.qr) for c in followed if c.journey == journey
        ]


def check_the_funnel(
    population: Population, reports: Any
) -> None:
    journeys = population.journeys()
    closed = reports.get("funnel", **population.window)
    assert (closed["mode"], closed["journeys"]) == ("closed", len(journeys))
    assert closed["from"] == f"{population.window['from']}T00:00:00+00:00"
    assert closed["to"] == f"{population.end.date()}T00:00:00+00:00"
    expected = closed_funnel(journeys)
    assert funnel_rows(closed) == expected
    assert [r["stage"] for r in closed["rows"]] == [
        {"key": key, "name": name, "position": i + 1}
        for i, (key, name) in enumerate(zip(STAGES, STAGE_NAMES, strict=True))
    ]
    # Figures worth checking: people at every stage, fewer at each.
    reached = [n for _, n, _, _ in expected]
    assert reached == sorted(reached, reverse=True) and reached[-1] > 0
    assert reports.get("funnel", mode="closed", **population.window) == closed

    opened = reports.get("funnel", mode="open", **population.window)
    assert (opened["mode"], opened["journeys"]) == ("open", len(journeys))
    assert funnel_rows(opened) == open_funnel(journeys)
    assert funnel_rows(opened) != expected  # people come in at later stages, and go back


def check_the_paths(
    population: Population, reports: Any
) -> None:
    journeys = population.journeys()
    expected = paths(journeys)
    assert len(expected) > 20 and any(len(p) > 3 for p, _ in expected)

    every = reports.get("paths", limit=1000, **population.window)
    assert every["journeys"] == len(journeys)
    assert [(r["path"], r["journeys"]) for r in every["rows"]] == expected
    assert sum(r["journeys"] for r in every["rows"]) == len(journeys)
    assert every["touchpoints"] == {
        key: {"key": key, "name": key.capitalize(), "channel": CHANNELS[key]}
        for key in {k for path, _ in expected for k in path}
    }
    top = reports.get("paths", **population.window)  # 20 by default
    assert [(r["path"], r["journeys"]) for r in top["rows"]] == expected[:20]
    assert set(top["touchpoints"]) == {k for r in top["rows"] for k in r["path"]}
    five = reports.get("paths", limit=5, **population.window)
    assert [(r["path"], r["journeys"]) for r in five["rows"]] == expected[:5]


def check_next(
    population: Population, reports: Any, key: str
) -> None:
    touched, expected = next_after(population.journeys(), key)

    body = reports.get("next", touchpoint=key, **population.window)

    assert body["touchpoint"] == {"key": key, "name": key.capitalize(), "channel": CHANNELS[key]}
    assert (body["journeys"], next_rows(body)) == (touched, expected)
    assert sum(n for _, n in expected) == touched
    for row in body["rows"]:
        if row["touchpoint"] is not None:
            tp = row["touchpoint"]["key"]
            assert row["touchpoint"] == {"key": tp, "name": tp.capitalize(),
                                         "channel": CHANNELS[tp]}
    if key == "radio":
        assert (touched, expected) == (0, [])  # only people who are not followed went there


def check_the_touchpoint_rows(
    population: Population, reports: Any
) -> None:
    figures = moved_on(population.journeys())
    body = reports.get("touchpoints", **population.window)

    rows = {r["touchpoint"]["key"]: r for r in body["rows"]}
    assert set(rows) == set(CHANNELS)
    for key, row in rows.items():
        journeys, went_on = figures.get(key, (0, 0))
        value, low, high = rate(went_on, journeys)
        assert (row["journeys"], row["moved_on"]) == (journeys, went_on), key
        assert (row["moved_on_rate"], row["moved_on_low"], row["moved_on_high"]) == (
            value, low, high
        ), key
    assert rows["radio"]["journeys"] == 0 and rows["radio"]["clicks"] > 0
    assert rows["poster"]["clicks"] == rows["poster"]["journeys"] == 0
    rates = [r["moved_on_rate"] for r in rows.values() if r["moved_on_rate"] is not None]
    assert any(0 < r < 1 for r in rates)
    # Clicks are counted as before, people not followed (DNT, GPC) included; bots as bots.
    inside = [c for c in population.sent if population.start <= c.at < population.end]
    for key, row in rows.items():
        clicks = [c for c in inside if c.touchpoint == key]
        assert row["human_clicks"] == sum(not c.bot for c in clicks), key
        assert row["bot_clicks"] == sum(c.bot for c in clicks), key
        assert row["scans"] == sum(c.qr and not c.bot for c in clicks), key


def check_the_ranking_by_moved_on(
    population: Population, reports: Any, order: str
) -> None:
    body = reports.get("touchpoints", order=order, by="moved_on", **population.window)

    assert (body["order"], body["by"]) == (order, "moved_on")
    rates = [r["moved_on_rate"] for r in body["rows"]]
    rated = [r for r in rates if r is not None]
    assert rates[len(rated):] == [None, None]  # radio and poster: no journey to rate
    assert {r["touchpoint"]["key"] for r in body["rows"][len(rated):]} == {"radio", "poster"}
    assert rated == sorted(rated, reverse=order == "most") and len(set(rated)) > 2
    limited = reports.get("touchpoints", order=order, by="moved_on", limit=3, **population.window)
    assert limited["rows"] == body["rows"][:3]


def check_the_filters(population: Population, reports: Any) -> None:
    window = population.window
    digital = population.journeys(lambda c: CHANNELS[c.touchpoint] == "digital")
    spring = population.journeys(lambda c: c.campaign == "spring")
    decision = population.journeys(lambda c: STAGES[c.stage] == "decision")
    for mode, model in (("closed", closed_funnel), ("open", open_funnel)):
        body = reports.get("funnel", mode=mode, channel="digital", **window)
        assert (body["journeys"], funnel_rows(body)) == (len(digital), model(digital)), mode
        body = reports.get("funnel", mode=mode, campaign="spring", **window)
        assert (body["journeys"], funnel_rows(body)) == (len(spring), model(spring)), mode
        # The stage filter keeps that stage's row, counted over every stage.
        body = reports.get("funnel", mode=mode, stage="decision", **window)
        assert funnel_rows(body) == [model(population.journeys())[2]], mode

    body = reports.get("paths", limit=1000, channel="digital", **window)
    assert [(r["path"], r["journeys"]) for r in body["rows"]] == paths(digital)
    body = reports.get("paths", limit=1000, stage="decision", **window)
    assert [(r["path"], r["journeys"]) for r in body["rows"]] == paths(decision)
    body = reports.get("next", touchpoint="insta", campaign="spring", **window)
    assert (body["journeys"], next_rows(body)) == next_after(spring, "insta")


def check_the_window(population: Population, reports: Any) -> None:
    """A journey's touches before `from` or from `to` on do not count: the same population
    asked over a longer window is another funnel."""
    start, end = population.start - timedelta(days=2), population.end + timedelta(days=2)
    longer = journeys_of(population.sent, start, end)
    window = {"from": str(start.date()), "to": str((end - timedelta(days=1)).date())}

    assert funnel_rows(reports.get("funnel", **window)) == closed_funnel(longer)
    assert closed_funnel(longer) != closed_funnel(population.journeys())
    assert funnel_rows(reports.get("funnel", mode="open", **window)) == open_funnel(longer)


def check_the_csv(population: Population, reports: Any) -> None:
    window = population.window
    for mode in ("closed", "open"):
        body = reports.get("funnel", mode=mode, **window)
        lines = reports.csv("funnel", mode=mode, **window)
        assert list(lines[0]) == [
            "stage_key", "stage_name", "position", "journeys", "continued", "drop_to_next",
        ]
        assert lines == [
            {"stage_key": r["stage"]["key"], "stage_name": r["stage"]["name"],
             "position": str(r["stage"]["position"]), "journeys": str(r["journeys"]),
             "continued": "" if r["continued"] is None else str(r["continued"]),
             "drop_to_next": "" if r["drop_to_next"] is None else str(r["drop_to_next"])}
            for r in body["rows"]
        ]
    every = reports.get("paths", limit=1000, **window)
    assert reports.csv("paths", limit=1000, **window) == [
        {"path": " > ".join(r["path"]), "journeys": str(r["journeys"])} for r in every["rows"]
    ]
    after = reports.get("next", touchpoint="newsletter", **window)
    assert reports.csv("next", touchpoint="newsletter", **window) == [
        {"touchpoint_key": r["touchpoint"]["key"] if r["touchpoint"] else "",
         "touchpoint_name": r["touchpoint"]["name"] if r["touchpoint"] else "(no further touch)",
         "channel": r["touchpoint"]["channel"] if r["touchpoint"] else "",
         "journeys": str(r["journeys"])}
        for r in after["rows"]
    ]
    assert any(r["touchpoint"] is None for r in after["rows"])
    rows = reports.get("touchpoints", **window)["rows"]
    lines = reports.csv("touchpoints", **window)
    names = ("journeys", "moved_on", "moved_on_rate", "moved_on_low", "moved_on_high")
    assert [{n: line[n] for n in names} for line in lines] == [
        {n: "" if r[n] is None else str(r[n]) for n in names} for r in rows
    ]


# --- the definitions, case by case ----------------------------------------------------------------


@pytest.fixture
def start(links: Callable[[datetime], None]) -> datetime:
    """Ten o'clock, three days ago; the links exist from the day before."""
    ten = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
    ten -= timedelta(days=3)
    links(ten - timedelta(days=1))
    return ten


@pytest.fixture
def walk(browser: Any, capture_clock: Any, start: datetime) -> Callable[..., None]:
    """`walk(slug, slug, …, gaps=(minutes, …))`: one new browser's clicks, a minute apart from
    `start` (or `at` minutes after it), unless `gaps` says otherwise (0: the same instant)."""
    people = iter(range(1, 1000))

    def go(*slugs: str, at: int = 0, gaps: Sequence[int] = ()) -> None:
        person = browser(f"192.0.2.{next(people)}", IPHONE)
        minutes = at
        for i, slug in enumerate(slugs):
            if i:
                minutes += gaps[i - 1] if i - 1 < len(gaps) else 1
            capture_clock.set(start + timedelta(minutes=minutes))
            person.click(slug)

    return go


def test_the_closed_funnel_is_stages_in_order_from_the_first_the_open_one_any_stage(
    walk: Callable[..., None], reports: Any
) -> None:
    walk("flyer", "news", "checkout")  # awareness, consideration, decision
    walk("news", "flyer", "checkout")  # consideration before awareness
    walk("flyer", "checkout")  # skips consideration
    walk("checkout")  # comes straight to decision
    walk("flyer", "flyer", "compare", "news")  # awareness twice, consideration twice
    walk("flyer", "news", gaps=[0])  # awareness and consideration at the same instant

    closed = funnel_rows(reports.get("funnel"))
    assert closed == [
        ("awareness", 5, 2, 0.6),
        ("consideration", 2, 1, 0.5),
        ("decision", 1, 0, 1.0),
        ("post-purchase", 0, 0, None),
        ("support", 0, None, None),
    ]
    opened = funnel_rows(reports.get("funnel", mode="open"))
    assert opened == [
        # The second walk's consideration came before its awareness; the last walk's at the same
        # instant: neither continued from awareness.
        ("awareness", 5, 2, 0.6),
        # Consideration, then decision later: the first two walks.
        ("consideration", 4, 2, 0.5),
        ("decision", 4, 0, 1.0),
        ("post-purchase", 0, 0, None),
        ("support", 0, None, None),
    ]
    assert reports.get("funnel")["journeys"] == 6


def test_paths_collapse_repeats_of_one_touchpoint_and_count_exact_sequences(
    walk: Callable[..., None], reports: Any
) -> None:
    walk("flyer", "flyer", "news")
    walk("flyer", "news", "news-care")  # the newsletter twice in a row, at two stages
    walk("flyer", "news", "flyer")  # back to the flyer: a path of three
    walk("insta", "compare", "checkout", "insta-deal")

    body = reports.get("paths")

    assert [(r["path"], r["journeys"]) for r in body["rows"]] == [
        (["flyer", "newsletter"], 2),
        (["flyer", "newsletter", "flyer"], 1),
        (["insta", "store", "insta"], 1),
    ]
    assert body["journeys"] == 4


def test_next_is_the_next_other_touchpoint_after_the_first_touch(
    walk: Callable[..., None], reports: Any
) -> None:
    walk("flyer", "news", "flyer", "faq")  # after the flyer: the newsletter
    walk("news", "flyer", "flyer")  # after the flyer: nothing more
    walk("flyer", "flyer", "box")  # after the flyer (twice): the box
    walk("flyer", "insta")
    walk("insta", "flyer")  # then nothing
    walk("box")  # never at the flyer

    body = reports.get("next", touchpoint="flyer")

    assert body["journeys"] == 5
    # Most journeys first; among as many, other touchpoints before "no further touch".
    assert next_rows(body) == [(None, 2), ("box", 1), ("insta", 1), ("newsletter", 1)]
    assert next_rows(reports.get("next", touchpoint="poster")) == []


def test_moved_on_is_a_later_touch_at_a_later_stage(
    walk: Callable[..., None], reports: Any
) -> None:
    walk("flyer", "news")  # the flyer moved this journey on
    walk("news", "flyer")  # the newsletter came first: awareness later is no moving on
    walk("flyer", "flyer")  # stayed
    walk("flyer", "news", gaps=[0])  # the same instant is not later
    walk("news", "news-care")  # the newsletter moved itself on: a later stage, later
    walk("insta-deal", "insta")  # decision, then back to awareness: not on

    rows = {r["touchpoint"]["key"]: r for r in reports.get("touchpoints")["rows"]}

    assert (rows["flyer"]["journeys"], rows["flyer"]["moved_on"]) == (4, 1)
    assert rows["flyer"]["moved_on_rate"] == 0.25
    assert (rows["newsletter"]["journeys"], rows["newsletter"]["moved_on"]) == (4, 1)
    assert (rows["insta"]["journeys"], rows["insta"]["moved_on"]) == (1, 0)
    assert rows["insta"]["moved_on_rate"] == 0.0
    assert (rows["box"]["journeys"], rows["box"]["moved_on"], rows["box"]["moved_on_rate"]) == (
        0, 0, None
    )
    low, high = rows["flyer"]["moved_on_low"], rows["flyer"]["moved_on_high"]
    assert 0 < low < 0.25 < high < 1


def test_from_is_in_the_window_and_to_is_not(
    walk: Callable[..., None], reports: Any, start: datetime
) -> None:
    walk("flyer", "news", gaps=[60])  # 10:00 and 11:00
    walk("flyer", "news", at=59, gaps=[1])  # 10:59 and 11:00
    walk("flyer", "news", at=60, gaps=[59])  # 11:00 and 11:59

    window = {"from": (start + timedelta(hours=1)).isoformat(),
              "to": (start + timedelta(hours=2)).isoformat()}
    closed = funnel_rows(reports.get("funnel", **window))
    opened = funnel_rows(reports.get("funnel", mode="open", **window))

    # Only the third journey has its flyer touch inside [11:00, 12:00).
    assert closed[:2] == [("awareness", 1, 1, 0.0), ("consideration", 1, 0, 1.0)]
    assert opened[:2] == [("awareness", 1, 1, 0.0), ("consideration", 3, 0, 1.0)]
    earlier = {"from": start.isoformat(), "to": (start + timedelta(hours=1)).isoformat()}
    assert funnel_rows(reports.get("funnel", **earlier))[:2] == [
        ("awareness", 2, 0, 1.0), ("consideration", 0, 0, None),
    ]


def test_without_journeys_the_reports_answer_zeros(
    reports: Any, link: dict[str, Any], shop: Any, people: Any
) -> None:
    shop.visit("spring", people.crawler)  # a bot: counted, not followed

    funnel = reports.get("funnel")
    assert funnel["journeys"] == 0
    assert [(r["journeys"], r["continued"], r["drop_to_next"]) for r in funnel["rows"]] == [
        (0, 0, None), (0, 0, None), (0, 0, None), (0, 0, None), (0, None, None),
    ]
    assert (reports.get("paths")["rows"], reports.get("paths")["journeys"]) == ([], 0)
    assert reports.get("next", touchpoint="store-flyer")["rows"] == []
    (row,) = reports.get("touchpoints", order="least")["rows"]  # no human click to rank
    assert (row["journeys"], row["moved_on"], row["moved_on_rate"]) == (0, 0, None)
    assert reports.csv("paths") == []
    far = {"from": "2020-01-01", "to": "2020-01-02"}
    assert reports.get("funnel", **far)["journeys"] == 0


# --- bad input ------------------------------------------------------------------------------------


@pytest.fixture
def one_journey(link: dict[str, Any], browser: Any) -> None:
    """The touchpoint `store-flyer` and one journey's touch there."""
    browser().click("spring")


BAD_JOURNEY_QUERIES = [
    ("funnel?mode=sideways", "mode"),
    ("funnel?mode=OPEN", "mode"),
    ("funnel?mode=closed&limit=5", "limit"),
    ("funnel?touchpoint=store-flyer", "touchpoint"),
    ("funnel?from=garbage", "from"),
    ("funnel?stage=nowhere", "stage"),
    ("funnel?channel=space", "channel"),
    ("paths?limit=0", "limit"),
    ("paths?limit=1001", "limit"),
    ("paths?limit=-1", "limit"),
    ("paths?limit=ten", "limit"),
    ("paths?mode=open", "mode"),
    ("paths?touchpoint=store-flyer", "touchpoint"),
    ("next", "touchpoint"),
    ("next?touchpoint=", "touchpoint"),
    ("next?touchpoint=%20", "touchpoint"),
    ("next?touchpoint=store-flyer&limit=3", "limit"),
    ("next?touchpoint=store-flyer&mode=open", "mode"),
    ("next?touchpoint=store-flyer&order=least", "order"),
]


@pytest.mark.usefixtures("one_journey")
@pytest.mark.parametrize(("query", "name"), BAD_JOURNEY_QUERIES)
def test_bad_parameters_are_400_naming_the_parameter_in_json_and_csv(
    reports: Any, query: str, name: str
) -> None:
    for fmt in ("json", "csv"):
        error = reports.error(f"{query}{'&' if '?' in query else '?'}format={fmt}")

        assert error["code"] == "invalid_parameter", fmt
        assert error["details"] == {"parameter": name}, fmt
        assert error["message"].startswith(f"{name}: "), fmt
        if name == "limit" and query.startswith("paths"):
            assert error["message"] == "limit: must be a whole number from 1 to 1000"


@pytest.mark.usefixtures("one_journey")
def test_next_for_an_unknown_touchpoint_is_a_404(reports: Any) -> None:
    for fmt in ("json", "csv"):
        error = reports.error("next", 404, touchpoint="no-such-touchpoint", format=fmt)
        assert error["code"] == "not_found"
        assert "no-such-touchpoint" in error["message"]
        assert reports.error("next", 404, touchpoint="x" * 500, format=fmt)["code"] == "not_found"


@pytest.mark.parametrize("path", ["funnel", "paths", "next?touchpoint=store-flyer"])
def test_journey_reports_need_an_analyst_key_or_better(
    app: Flask, headers: Callable[[str], dict[str, str]], path: str, one_journey: None
) -> None:
    client = app.test_client()
    assert client.get(f"/api/v1/reports/{path}").status_code == 401
    for role in ("analyst", "marketer", "admin"):
        assert client.get(f"/api/v1/reports/{path}", headers=headers(role)).status_code == 200


# --- the demo -------------------------------------------------------------------------------------


def test_the_demo_seeds_journeys_that_tell_a_story(
    make_app: Callable[..., Flask], reports: Any, session: Session, journey_rows: Any
) -> None:
    off = make_app()  # journeys off: the demo has its journeys all the same
    cli: FlaskCliRunner = off.test_cli_runner()
    with off.app_context():
        result = cli.invoke(args=["init", "--demo"])
    assert result.exit_code == 0, result.output
    journeys, touches = journey_rows.counts(session)
    assert 500 < journeys < touches
    humans = session.scalar(select(func.count()).select_from(Click).where(Click.is_bot.is_(False)))
    assert 0.03 < 1 - touches / humans < 0.15  # 8 % of the people send DNT: not followed

    closed = reports.get("funnel")
    reached = [r["journeys"] for r in closed["rows"]]
    assert all(a > b for a, b in pairwise(reached)) and reached[-1] > 0
    assert all(0 < r["drop_to_next"] < 1 for r in closed["rows"][:-1])
    opened = reports.get("funnel", mode="open")
    assert [r["journeys"] for r in opened["rows"]] > reached  # people come in at later stages

    top = reports.get("paths")["rows"]
    assert len(top) == 20 and any(len(r["path"]) >= 3 for r in top)
    assert top[0]["journeys"] > top[-1]["journeys"]
    after = reports.get("next", touchpoint="instagram-bio")
    assert len(after["rows"]) > 2 and after["rows"][-1]["journeys"] > 0

    rows = reports.get("touchpoints")["rows"]
    rates = [r["moved_on_rate"] for r in rows if r["moved_on_rate"] is not None]
    assert len(rates) >= 8 and any(0 < r < 1 for r in rates) and len(set(rates)) > 4
    least = reports.get("touchpoints", order="least", by="moved_on")["rows"]
    assert least[0]["moved_on_rate"] == min(rates)
    # The trade fair stand and the sales rep's card: nobody engaged with them.
    assert [r["moved_on_rate"] for r in least[-2:]] == [None] * 2
