"""The journeys on the analytics pages, through the real path: customers' browsers, each with a
cookie jar of its own, follow short links (the redirect sets `tl_j`) → touches → the dashboard's
funnel of journeys (closed and open), its paths and the moved-on rates, and a touchpoint's
journeys and where they went next; every figure checked against what the test itself sent. Some
customers ask not to be tracked, and bots click too: counted, never followed.
"""

from __future__ import annotations

import csv
import html
import io
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape

from tests.user_agents import ANDROID, DESKTOP, GOOGLEBOT, IPHONE

STAGES = ("awareness", "consideration", "decision", "post-purchase", "support")
STAGE_NAMES = ("Awareness", "Consideration", "Decision", "Post purchase", "Support")
# Touchpoints (key, channel, name) and their links (slug, stage); one name is HTML.
TOUCHPOINTS = (
    ("flyer", "physical", "Store flyer"),
    ("insta", "digital", 'Insta <bio> & "co"'),
    ("news", "digital", "Newsletter"),
    ("desk", "human", "Help desk"),
    ("box", "physical", "Packaging"),
    ("silent", "physical", "Silent poster"),
)
LINKS = (
    ("fly-a", "flyer", "awareness"),
    ("ig-a", "insta", "awareness"),
    ("ig-c", "insta", "consideration"),
    ("news-c", "news", "consideration"),
    ("news-d", "news", "decision"),
    ("desk-d", "desk", "decision"),
    ("desk-p", "desk", "post-purchase"),
    ("box-p", "box", "post-purchase"),
    ("box-s", "box", "support"),
    ("quiet", "silent", "awareness"),  # nobody follows it
)
NAMES = {key: name for key, _, name in TOUCHPOINTS}
FOLLOWED = 48  # customers whose journeys are followed
Touch = tuple[str, int]  # (touchpoint key, the stage's place in the journey)


@pytest.fixture
def app(make_app: Any) -> Flask:
    made: Flask = make_app(journeys="cookie")
    return made


@pytest.fixture
def analyst_client(auth: Any) -> FlaskClient:
    client: FlaskClient = auth.client("analyst")
    return client


@pytest.fixture
def page(analyst_client: FlaskClient, pages: Any) -> Callable[[str], str]:
    """`page(path)`: a page's HTML, asserting it answered 200."""

    def get(path: str) -> str:
        response = analyst_client.get(path)
        assert response.status_code == 200, pages.text(response)[:2000]
        text: str = pages.text(response)
        return text

    return get


@pytest.fixture
def csv_of(analyst_client: FlaskClient) -> Callable[[str], list[dict[str, str]]]:
    """`csv_of(path)`: a CSV download, one dict per line."""

    def get(path: str) -> list[dict[str, str]]:
        response = analyst_client.get(path)
        assert response.status_code == 200, response.get_data(as_text=True)[:1000]
        assert response.mimetype == "text/csv"
        return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))

    return get


@dataclass
class Customer:
    """A browser of its own (its own cookie jar), an address and a user agent."""

    client: FlaskClient
    ip: str
    agent: str
    headers: dict[str, str] = field(default_factory=dict)

    def follow(self, slug: str, *, qr: bool = False) -> str | None:
        """Follow the short link `slug`; the Set-Cookie the redirect answered with, if any."""
        response = self.client.get(
            f"/{slug}?qr=1" if qr else f"/{slug}",
            headers={"User-Agent": self.agent, **self.headers},
            environ_base={"REMOTE_ADDR": self.ip},
        )
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return response.headers.get("Set-Cookie")


@pytest.fixture
def customer(app: Flask) -> Callable[..., Customer]:
    """`customer(n, dnt=False, gpc=False, agent=IPHONE)`: a new customer's browser."""

    def make(n: int, *, dnt: bool = False, gpc: bool = False, agent: str = IPHONE) -> Customer:
        headers = {**({"DNT": "1"} if dnt else {}), **({"Sec-GPC": "1"} if gpc else {})}
        return Customer(app.test_client(), f"198.51.{n // 250}.{n % 250 + 1}", agent, headers)

    return make


@pytest.fixture
def workspace(shop: Any) -> None:
    """The touchpoints and links of TOUCHPOINTS and LINKS, made through the API."""
    for key, channel, name in TOUCHPOINTS:
        shop.touchpoint(key, channel, name=name)
    for slug, touchpoint, stage in LINKS:
        shop.link(slug, touchpoint, stage)


@dataclass(frozen=True, slots=True)
class Sent:
    journeys: list[list[Touch]]  # the followed customers' touches, in the order sent


def _route(rng: random.Random) -> list[tuple[str, int]]:
    """A customer's links in order, with their stages' places: most begin at awareness, and
    they go on, skip a stage, step back, look again or stop."""
    at_stage = {i: [slug for slug, _, s in LINKS if s == stage and slug != "quiet"]
                for i, stage in enumerate(STAGES)}
    stage = 0 if rng.random() < 0.75 else rng.randrange(1, 4)
    route = [(rng.choice(at_stage[stage]), stage)]
    while len(route) < 6:
        move = rng.random()
        if move < 0.15:
            break
        if move < 0.25:
            route.append(route[-1])  # the same link again
            continue
        step = 1 if move < 0.8 else 2 if move < 0.9 else -1
        stage = min(max(stage + step, 0), len(STAGES) - 1)
        route.append((rng.choice(at_stage[stage]), stage))
    return route


@pytest.fixture
def sent(workspace: None, customer: Callable[..., Customer]) -> Sent:
    """FOLLOWED customers on their routes, and others who are counted but never followed:
    browsers sending DNT or Sec-GPC, and Googlebot."""
    rng = random.Random(10)
    touchpoint_of = {slug: touchpoint for slug, touchpoint, _ in LINKS}
    journeys = []
    for n in range(FOLLOWED):
        browser = customer(n, agent=(IPHONE, ANDROID, DESKTOP)[n % 3])
        route = _route(rng)
        for i, (slug, _) in enumerate(route):
            cookie = browser.follow(slug, qr=slug.startswith(("fly", "box")))
            assert cookie is not None and cookie.startswith("tl_j="), (n, i)
        journeys.append([(touchpoint_of[slug], stage) for slug, stage in route])
    for n, signals in enumerate(({"dnt": True},) * 4 + ({"gpc": True},) * 2, start=FOLLOWED):
        private = customer(n, **signals)
        for slug in ("fly-a", "ig-c", "news-d", "box-s"):
            assert private.follow(slug) is None
    bot = customer(99, agent=GOOGLEBOT)
    for slug in ("fly-a", "ig-a", "ig-c"):
        assert bot.follow(slug) is None
    return Sent(journeys)


# --- what the test expects, from what it sent ---------------------------------------------------


def _closed(journeys: Sequence[Sequence[Touch]]) -> list[int]:
    """Journeys at each stage: touches at stages 1, 2, …, k in order (each sent after the one
    before)."""
    reached = [0] * len(STAGES)
    for touches in journeys:
        depth = 0
        for _, stage in touches:
            if stage == depth:
                depth += 1
        for k in range(min(depth, len(STAGES))):
            reached[k] += 1
    return reached


def _open(journeys: Sequence[Sequence[Touch]]) -> tuple[list[int], list[int]]:
    """Journeys with a touch at each stage, and those with a touch at the next stage after
    their first touch here."""
    reached, continued = [0] * len(STAGES), [0] * len(STAGES)
    for touches in journeys:
        stages = [stage for _, stage in touches]
        for k in set(stages):
            reached[k] += 1
            if k + 1 in stages[stages.index(k) + 1:]:
                continued[k] += 1
    return reached, continued


def _paths(journeys: Sequence[Sequence[Touch]]) -> Counter[tuple[str, ...]]:
    counted: Counter[tuple[str, ...]] = Counter()
    for touches in journeys:
        path: list[str] = []
        for touchpoint, _ in touches:
            if not path or path[-1] != touchpoint:
                path.append(touchpoint)
        counted[tuple(path)] += 1
    return counted


def _ranked(counted: Counter[tuple[str, ...]]) -> list[tuple[tuple[str, ...], int]]:
    """Most journeys first; ties in the order of their keys."""
    return sorted(counted.items(), key=lambda item: (-item[1], list(item[0])))


def _moved_on(journeys: Sequence[Sequence[Touch]]) -> dict[str, tuple[int, int]]:
    """Per touchpoint: (journeys with a touch there, those with a later touch at a later
    stage than one of them)."""
    touched: Counter[str] = Counter()
    moved: Counter[str] = Counter()
    for touches in journeys:
        here = {touchpoint for touchpoint, _ in touches}
        touched.update(here)
        moved.update(
            tp for tp in here
            if any(t == tp and any(later > s for _, later in touches[i + 1:])
                   for i, (t, s) in enumerate(touches))
        )
    return {tp: (touched[tp], moved[tp]) for tp in touched}


def _next(journeys: Sequence[Sequence[Touch]], key: str) -> Counter[str | None]:
    """For the journeys that touched `key`: the next other touchpoint after their first touch
    there (None: none)."""
    counted: Counter[str | None] = Counter()
    for touches in journeys:
        keys = [touchpoint for touchpoint, _ in touches]
        if key in keys:
            after = [tp for tp in keys[keys.index(key) + 1:] if tp != key]
            counted[after[0] if after else None] += 1
    return counted


def _rate(successes: int, trials: int) -> tuple[float, float, float]:
    """The share and its 95 % Wilson interval, to 4 places, as the reports give it."""
    z = 1.959964
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    spread = z / (1 + z * z / trials) * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials**2))
    low, high = max(0.0, centre - spread), min(1.0, centre + spread)
    return round(p, 4), round(low, 4), round(high, 4)


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%" if value >= 1 else f"{value * 100:.1f}%"


# --- reading the pages ----------------------------------------------------------------------------


def _section(text: str, title: str) -> str:
    start = text.index(f">{title}</h2>")
    return text[start:text.index("</section>", start)]


def _text(fragment: str) -> str:
    fragment = re.sub(r"<svg.*?</svg>", " ", fragment, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _funnel(text: str) -> dict[str, dict[str, str]]:
    """The funnel's stages: per stage key, its figures by `data-figure`."""
    steps = re.findall(r'<li class="stage-step funnel-step" data-stage="([^"]+)">(.*?)</li>',
                       _section(text, "Funnel of journeys"), re.S)
    return {
        stage: {name: _text(value) for name, value in
                re.findall(r'data-figure="(\w+)"[^>]*>(.*?)</span>', body, re.S)}
        for stage, body in steps
    }


def _expected_funnel(reached: list[int], continued: list[int]) -> dict[str, dict[str, str]]:
    shown = {}
    for k, stage in enumerate(STAGES):
        figures = {"journeys": str(reached[k])}
        if k + 1 < len(STAGES) and reached[k]:
            figures["continued"] = str(continued[k])
            figures["drop_to_next"] = _percent(round(1 - continued[k] / reached[k], 4))
        shown[stage] = figures
    return shown


def _cell(section: str, name: str, figure: str) -> str:
    """The figure of the row whose link reads `name`."""
    for row in re.findall(r"<tr[^>]*>.*?</tr>", section, re.S):
        if f">{escape(name)}</a>" in row:
            found = re.search(rf'data-figure="{figure}">(.*?)</td>', row, re.S)
            assert found is not None, (name, figure)
            return _text(found.group(1))
    raise AssertionError(f"no row for {name!r}")


# --- the funnel -----------------------------------------------------------------------------------


def test_the_funnel_counts_the_journeys_sent_closed_by_default_and_open_on_demand(
    sent: Sent, page: Callable[[str], str], csv_of: Callable[[str], list[dict[str, str]]]
) -> None:
    closed = _closed(sent.journeys)
    reached, continued = _open(sent.journeys)
    assert closed[0] > closed[1] > closed[2] > 0 and reached[3] > closed[3]  # a real test

    by_default, opened = page("/dashboard"), page("/dashboard?funnel=open")

    assert _funnel(by_default) == _expected_funnel(closed, [*closed[1:], 0])
    assert _funnel(page("/dashboard?funnel=closed")) == _funnel(by_default)
    assert _funnel(opened) == _expected_funnel(reached, continued)
    for text in (by_default, opened):
        funnel = _section(text, "Funnel of journeys")
        assert re.search(rf'data-figure="journeys">{FOLLOWED}</span> journeys touched', funnel)
        said = _text(funnel)  # both modes, in words
        assert "Closed a journey counts at a stage when it went through every stage before it" in (
            said
        )
        assert "Open a journey counts at every stage it touched, wherever it began" in said
        assert '<svg class="stage-bar funnel-bar"' in funnel
        assert "Visitors by stage" not in text.split("Funnel of journeys")[0]
    assert 'class="current"><dt>Closed</dt>' in by_default
    assert 'class="current"><dt>Open</dt>' in opened
    assert f"<title>Awareness: {closed[0]} journeys, {closed[1]} continued to Consideration" in (
        by_default
    )

    for mode, (journeys, went_on) in (("closed", (closed, [*closed[1:], 0])),
                                      ("open", (reached, continued))):
        rows = csv_of(f"/dashboard?funnel={mode}&format=csv&table=funnel")
        assert [row["stage_key"] for row in rows] == list(STAGES)
        for k, row in enumerate(rows):
            last = k + 1 == len(STAGES)
            assert int(row["journeys"]) == journeys[k]
            assert row["continued"] == ("" if last else str(went_on[k]))
            drop = None if last or not journeys[k] else round(1 - went_on[k] / journeys[k], 4)
            assert row["drop_to_next"] == ("" if drop is None else str(drop))


@pytest.mark.usefixtures("sent")
def test_the_funnel_toggle_keeps_the_window_and_the_filters(page: Callable[[str], str]) -> None:
    text = page("/dashboard?range=7d&channel=digital&bots=include")
    opened = page("/dashboard?range=7d&channel=digital&funnel=open")

    funnel = _section(text, "Funnel of journeys")
    here = "/dashboard?range=7d&amp;channel=digital&amp;bots=include&amp;interval=day&amp;" \
        "group_by=touchpoint"
    assert f'href="{here}" aria-current="true">Closed</a>' in funnel
    assert f'href="{here}&amp;funnel=open">Open</a>' in funnel
    # Open, the window's form, the presets and the chart's controls carry it on.
    assert '<input type="hidden" name="funnel" value="open">' in opened
    assert 'href="/dashboard?range=30d&amp;channel=digital&amp;interval=day&amp;' \
        'group_by=touchpoint&amp;funnel=open">30 days</a>' in opened
    assert 'href="/dashboard?range=7d&amp;channel=digital&amp;interval=day&amp;group_by=' \
        'touchpoint&amp;funnel=open&amp;format=csv&amp;table=funnel" download>' in opened
    assert 'name="funnel" value="open">' in _section(opened, "Clicks over time")
    # Not to the drill-down pages, which have no funnel.
    assert "/dashboard/touchpoints/news?range=7d&amp;channel=digital\"" in opened


def test_the_funnel_keeps_the_touches_of_the_channel_filter(
    sent: Sent, page: Callable[[str], str]
) -> None:
    digital = {key for key, channel, _ in TOUCHPOINTS if channel == "digital"}
    kept = [[t for t in touches if t[0] in digital] for touches in sent.journeys]
    kept = [touches for touches in kept if touches]

    shown = _funnel(page("/dashboard?channel=digital&funnel=open"))

    assert shown == _expected_funnel(*_open(kept))


def test_an_unknown_funnel_mode_is_a_400_naming_it(
    analyst_client: FlaskClient, pages: Any
) -> None:
    for query in ("funnel=sideways", "funnel=OPEN", "format=csv&table=funnel&funnel=x"):
        response = analyst_client.get(f"/dashboard?{query}")

        assert response.status_code == 400
        flash = re.search(r'<div class="flash flash-error" role="alert">([^<]*)</div>',
                          pages.text(response))
        assert flash is not None
        assert html.unescape(flash.group(1)).startswith("funnel: must be closed or open")


# --- paths ----------------------------------------------------------------------------------------


def test_the_paths_panel_draws_and_lists_the_most_common_paths(
    sent: Sent, page: Callable[[str], str], csv_of: Callable[[str], list[dict[str, str]]]
) -> None:
    counted = _paths(sent.journeys)
    top = _ranked(counted)[:10]
    assert any(len(path) > 2 for path, _ in top) and len(counted) > 10

    text = page("/dashboard")
    paths = _section(text, "Paths")
    assert " style=" not in text and "<style" not in text  # the CSP allows no inline style

    listed = re.findall(r'<tr data-path="([^"]+)">.*?data-figure="journeys">(\d+)</td>', paths,
                        re.S)
    assert [(html.unescape(p), int(n)) for p, n in listed] == [
        (" > ".join(path), n) for path, n in top
    ]
    # The flow: a node per touchpoint at each step, a band per way on, sized by journeys.
    flow = re.search(r'<svg class="flow-chart".*?</svg>', paths, re.S)
    assert flow is not None
    first = Counter[str]()
    ways = Counter[tuple[str, str]]()
    for path, n in top:
        first[path[0]] += n
        if len(path) > 1:
            ways[(path[0], path[1])] += n
    for key, n in first.items():
        name = str(escape(NAMES[key]))
        assert re.search(rf"<title>{re.escape(name)}, step 1: {n} journeys?[,<]", flow.group(0))
    for (a, b), n in ways.items():
        tip = f"{NAMES[a]} \u2192 {NAMES[b]}, steps 1\u20132: {n} journey"
        assert f"<title>{escape(tip)}" in flow.group(0)
    assert "&lt;bio&gt; &amp; &#34;co&#34;" in flow.group(0) and "<bio>" not in paths

    rows = csv_of("/dashboard?format=csv&table=paths")
    assert {tuple(row["path"].split(" > ")): int(row["journeys"]) for row in rows} == counted
    assert [int(row["journeys"]) for row in rows] == sorted(counted.values(), reverse=True)


# --- moved on -------------------------------------------------------------------------------------


def test_the_tables_rate_each_touchpoint_by_the_journeys_it_moved_on(
    sent: Sent, page: Callable[[str], str], csv_of: Callable[[str], list[dict[str, str]]]
) -> None:
    expected = _moved_on(sent.journeys)

    text = page("/dashboard")

    tables = "".join(_section(text, f"{which} engaged touchpoints") for which in ("Most", "Least"))
    assert ">Moved on</th>" in tables
    for key, name in NAMES.items():
        cell = _cell(tables, name, "moved_on")
        if key not in expected:
            assert cell == "\u2014"  # nobody followed it
            continue
        rate, low, high = _rate(expected[key][1], expected[key][0])
        assert cell == f"{_percent(rate)} {_percent(low)}\u2013{_percent(high)}", key
    rows = {row["touchpoint_key"]: row for row in csv_of("/dashboard?format=csv&table=most")}
    for key, (journeys, moved) in expected.items():
        row = rows[key]
        assert (int(row["journeys"]), int(row["moved_on"])) == (journeys, moved), key
        assert (float(row["moved_on_rate"]), float(row["moved_on_low"]),
                float(row["moved_on_high"])) == _rate(moved, journeys)


# --- a touchpoint's page --------------------------------------------------------------------------


def test_a_touchpoints_page_shows_its_journeys_and_where_they_went_next(
    sent: Sent, page: Callable[[str], str], csv_of: Callable[[str], list[dict[str, str]]]
) -> None:
    journeys, moved = _moved_on(sent.journeys)["news"]
    following = _next(sent.journeys, "news")
    assert None in following and len(following) > 2

    text = page("/dashboard/touchpoints/news")

    figures = _section(text, "Figures")
    journeys_row = re.search(r'<tr data-figure="journeys">.*?current">(.*?)</td>', figures, re.S)
    moved_row = re.search(r'<tr data-figure="moved_on">.*?current">(.*?)</td>\s*'
                          r'<td class="num previous">(.*?)</td>', figures, re.S)
    assert journeys_row is not None and moved_row is not None
    assert _text(journeys_row.group(1)) == str(journeys)
    rate, low, high = _rate(moved, journeys)
    assert _text(moved_row.group(1)) == f"{_percent(rate)} {_percent(low)}\u2013{_percent(high)}"
    assert _text(moved_row.group(2)) == "\u2014"  # no journey in the window before
    assert f"{moved} of them touched a later stage afterwards" in figures

    after = _section(text, "Where journeys go next")
    assert re.search(rf'data-figure="journeys">{journeys}</span> journeys that touched', after)
    shown = dict(re.findall(r'<tr data-next="([^"]*)">.*?data-figure="journeys">(\d+)</td>',
                            after, re.S))
    assert {key or None: int(n) for key, n in shown.items()} == following
    assert "No further touch in this window" in after
    rows = csv_of("/dashboard/touchpoints/news?format=csv&table=next")
    assert {row["touchpoint_key"] or None: int(row["journeys"]) for row in rows} == following


# --- without journeys -----------------------------------------------------------------------------


@pytest.fixture
def analyst_of(auth: Any) -> Callable[[Flask], FlaskClient]:
    """`analyst_of(app)`: a client of another app (other settings, the same database), signed
    in as a new analyst."""
    numbers = iter(range(1, 100))

    def sign_in(other: Flask) -> FlaskClient:
        email = f"other-analyst{next(numbers)}@example.com"
        auth.add_user(email, "analyst")
        client = other.test_client()
        assert auth.sign_in(client, email).status_code == 302
        return client

    return sign_in


def test_with_journeys_off_the_page_says_how_to_turn_them_on_and_keeps_visitors_by_stage(
    make_app: Any, analyst_of: Callable[[Flask], FlaskClient], pages: Any, shop: Any
) -> None:
    off = make_app()  # TOUCHLINK_JOURNEYS=off, the default
    shop.touchpoint("flyer", "physical", name="Store flyer")
    shop.link("fly-a", "flyer", "awareness")
    assert Customer(off.test_client(), "198.51.100.1", IPHONE).follow("fly-a") is None

    text = pages.text(analyst_of(off).get("/dashboard"))

    said = _text(_section(text, "Journeys are off"))
    assert "TOUCHLINK_JOURNEYS=cookie" in said and "TOUCHLINK_JOURNEYS=cookieless" in said
    assert "docs/journeys.md" in said and "consent" in said
    stages = _section(text, "Visitors by stage")
    assert "totals of different people" in stages and "funnel" not in stages.lower()
    assert re.search(r'<span class="strong">Awareness</span>.*?<div class="stage-figures">\s*'
                     r'<div><span class="strong">1</span>', stages, re.S)
    assert "Funnel of journeys" not in text and ">Paths</h2>" not in text
    assert ">Moved on</th>" not in text


def test_with_journeys_on_and_none_yet_the_page_says_so(
    workspace: None, customer: Callable[..., Customer], page: Callable[[str], str]
) -> None:
    private = customer(1, dnt=True)
    for slug in ("fly-a", "news-c"):
        assert private.follow(slug) is None  # counted, not followed

    text = page("/dashboard")

    note = _section(text, "No journeys in this window")
    assert "Journeys are on (<code>TOUCHLINK_JOURNEYS=cookie</code>)" in note
    assert "no journey touched a touchpoint in this window yet" in _text(note)
    assert "Visitors by stage" in text and "Funnel of journeys" not in text
    assert _cell(_section(text, "Most engaged touchpoints"), "Store flyer", "moved_on") == (
        "—"
    )
    touchpoint = page("/dashboard/touchpoints/flyer")
    assert "No journey touched it in this window." in _section(touchpoint, "Where journeys go next")


def test_journeys_kept_from_when_they_were_on_still_show_and_the_page_says_so(
    workspace: None, customer: Callable[..., Customer], make_app: Any,
    analyst_of: Callable[[Flask], FlaskClient], pages: Any,
) -> None:
    for n, route in enumerate((("fly-a", "news-c"), ("ig-a",))):
        browser = customer(n)
        for slug in route:
            browser.follow(slug)

    text = pages.text(analyst_of(make_app()).get("/dashboard?funnel=open"))

    assert _funnel(text)["awareness"] == {"journeys": "2", "continued": "1",
                                          "drop_to_next": "50.0%"}
    assert "TOUCHLINK_JOURNEYS is off: these journeys were recorded while it was on" in _text(
        _section(text, "Funnel of journeys")
    )
    assert "Journeys are off" not in text
