"""The feedback report and the pages that show it, through the real path: customers answer the
survey links' forms (`POST /{slug}`), the answers are stored, and the report (JSON and CSV),
the dashboard's panel, the journey map by NPS and a touchpoint's page give the figures this test
works out itself from the scores it sent: NPS with its interval, CSAT % with its Wilson
interval, CES mean with mean ± z·s/√n."""

from __future__ import annotations

import csv
import html
import io
import math
import re
import statistics
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from analytics.outcome_ingest import store_outcomes
from analytics.runtime import runtime
from shortener.clicks import new_click_id
from shortener.db import utcnow
from shortener.models import Link
from shortener.outcomes import AnswerEvent
from shortener.unit_of_work import transaction
from tests.documented import Documented
from tests.user_agents import IPHONE

Z = 1.959964
DASH = "\u2013"  # between the bounds of an interval, as shown
_HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)">')

# The scores each survey link gets, one visitor each, in this order.
FLYER_NPS = [10, 10, 9, 9, 9, 8, 7, 6, 4, 0]  # store-flyer, awareness, spring-launch
DESK_CSAT = [5, 4, 4, 3, 1, 5]  # help-desk, support
DESK_CES = [7, 6, 6, 5, 2]  # help-desk, support
BIO_NPS = [3, 2, 10]  # insta-bio, consideration
FLYER_COMMENTS = {1: "Loved the flyer", 8: '=HYPERLINK("http://x")', 9: "<b>Never</b> again"}


def expected_nps(scores: Sequence[int]) -> tuple[float, float, float]:
    n = len(scores)
    p = sum(1 for s in scores if s >= 9) / n
    d = sum(1 for s in scores if s <= 6) / n
    value = 100 * (p - d)
    half = Z * 100 * math.sqrt((p + d - (p - d) ** 2) / n)
    return round(value, 2), round(max(-100, value - half), 2), round(min(100, value + half), 2)


def expected_csat(scores: Sequence[int]) -> tuple[float, float, float]:
    n, k = len(scores), sum(1 for s in scores if s >= 4)
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    spread = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return (
        round(100 * p, 2), round(100 * max(0, centre - spread), 2),
        round(100 * min(1, centre + spread), 2),
    )


def expected_ces(scores: Sequence[int]) -> tuple[float, float | None, float | None]:
    mean = statistics.mean(scores)
    if len(scores) < 2:
        return round(mean, 2), None, None
    half = Z * statistics.stdev(scores) / math.sqrt(len(scores))
    return round(mean, 2), round(max(1, mean - half), 2), round(min(7, mean + half), 2)


def figures(row: dict[str, Any], kind: str) -> tuple[Any, Any, Any]:
    return row[kind], row[f"{kind}_low"], row[f"{kind}_high"]


def close(found: tuple[Any, ...], expected: tuple[Any, ...]) -> bool:
    return all(
        (a is None and b is None) or (a is not None and b is not None and abs(a - b) < 0.006)
        for a, b in zip(found, expected, strict=True)
    )


class Answers:
    """Customers answering the survey links through their forms, one address each."""

    def __init__(self, app: Flask) -> None:
        self._app = app
        self._visitors = 0

    def send(
        self, slug: str, scores: Sequence[int], comments: dict[int, str] | None = None
    ) -> None:
        for i, score in enumerate(scores):
            self._visitors += 1
            client = self._app.test_client()
            environ = {"REMOTE_ADDR": f"198.51.100.{self._visitors}"}
            headers = {"User-Agent": IPHONE}
            page = client.get(f"/{slug}", headers=headers, environ_base=environ)
            assert page.status_code == 200, page.get_data(as_text=True)[:500]
            form = dict(_HIDDEN.findall(page.get_data(as_text=True)))
            form |= {"score": str(score), "comment": (comments or {}).get(i, "")}
            sent = client.post(f"/{slug}", data=form, headers=headers, environ_base=environ)
            assert sent.status_code == 200, sent.get_data(as_text=True)[:500]

    def at(self, slug: str, when: datetime, kind: str, score: int) -> None:
        """An answer given at `when`, stored by the ingest the worker uses (a form cannot be
        sent in the past)."""
        rt = runtime(self._app)
        with transaction(rt.sessions) as session:
            link = session.scalars(select(Link).where(Link.slug == slug)).one()
            answer = AnswerEvent(
                id=new_click_id(), at=when.timestamp(), link_id=link.id,
                touchpoint_id=link.touchpoint_id, stage_id=link.stage_id, kind=kind,
                score=score, comment="", ip="192.0.2.99", user_agent=IPHONE,
            )
            result = store_outcomes(session, [answer], now=utcnow(), zone=rt.settings.zone)
        assert result.answers == 1


@pytest.fixture
def answers(app: Flask) -> Answers:
    return Answers(app)


@pytest.fixture
def surveys(shop: Any, touchpoint: dict[str, Any]) -> None:
    """Survey links at three touchpoints, with no answer yet."""
    shop.touchpoint("help-desk", "human")
    shop.touchpoint("insta-bio", "digital")
    shop.link("flyer-nps", "store-flyer", "awareness", "spring-launch", survey={"kind": "nps"})
    shop.link("desk-csat", "help-desk", "support", survey={"kind": "csat"})
    shop.link("desk-ces", "help-desk", "support", survey={"kind": "ces"})
    shop.link("bio-nps", "insta-bio", "consideration", survey={"kind": "nps"})


@pytest.fixture
def answered(surveys: None, answers: Answers) -> None:
    answers.send("flyer-nps", FLYER_NPS, FLYER_COMMENTS)
    answers.send("desk-csat", DESK_CSAT, {0: "Quick and kind"})
    answers.send("desk-ces", DESK_CES)
    answers.send("bio-nps", BIO_NPS)


# --- the report -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("answered")
def test_the_figures_are_those_of_the_scores_sent(reports: Any) -> None:
    report = reports.get("feedback")

    rows = {row["touchpoint"]["key"]: row for row in report["rows"]}
    assert [row["touchpoint"]["key"] for row in report["rows"]] == [
        "help-desk", "store-flyer", "insta-bio"
    ]  # most answers first
    flyer, desk, bio = rows["store-flyer"], rows["help-desk"], rows["insta-bio"]
    assert (flyer["answers"], flyer["promoters"], flyer["passives"], flyer["detractors"]) == (
        10, 5, 2, 3
    )
    assert flyer["nps"] == 20.0
    assert close(figures(flyer, "nps"), expected_nps(FLYER_NPS))
    assert close(figures(bio, "nps"), expected_nps(BIO_NPS))
    assert (desk["answers"], desk["csat_answers"], desk["satisfied"], desk["ces_answers"]) == (
        11, 6, 4, 5
    )
    assert close(figures(desk, "csat"), expected_csat(DESK_CSAT))
    assert close(figures(desk, "ces"), expected_ces(DESK_CES))
    assert (flyer["csat"], flyer["ces"], desk["nps"]) == (None, None, None)
    assert (flyer["comments"], desk["comments"], bio["comments"]) == (3, 1, 0)
    totals = report["totals"]
    assert totals["answers"] == 24
    assert close(figures(totals, "nps"), expected_nps(FLYER_NPS + BIO_NPS))


def test_small_samples_get_what_they_can_bear(
    surveys: None, answers: Answers, reports: Any
) -> None:
    answers.send("desk-ces", [5])
    answers.send("flyer-nps", [10])

    rows = {row["touchpoint"]["key"]: row for row in reports.get("feedback")["rows"]}

    # One effort score: a mean, no interval; one promoter: +100, with nothing to widen it.
    assert figures(rows["help-desk"], "ces") == (5.0, None, None)
    assert figures(rows["store-flyer"], "nps") == (100.0, 100.0, 100.0)
    assert reports.get("feedback", stage="decision")["rows"] == []


@pytest.mark.usefixtures("answered")
def test_by_stage_the_rows_are_the_stages_with_answers_in_journey_order(reports: Any) -> None:
    report = reports.get("feedback", by="stage")

    assert report["by"] == "stage"
    assert [row["stage"]["key"] for row in report["rows"]] == [
        "awareness", "consideration", "support"
    ]
    rows = {row["stage"]["key"]: row for row in report["rows"]}
    assert close(figures(rows["awareness"], "nps"), expected_nps(FLYER_NPS))
    assert close(figures(rows["consideration"], "nps"), expected_nps(BIO_NPS))
    assert close(figures(rows["support"], "csat"), expected_csat(DESK_CSAT))
    assert rows["support"]["answers"] == 11


@pytest.mark.usefixtures("answered")
def test_the_csv_has_the_figures_of_the_json(reports: Any) -> None:
    rows = {row["touchpoint_key"]: row for row in reports.csv("feedback")}
    stages = reports.csv("feedback", by="stage")

    desk = rows["help-desk"]
    assert (desk["touchpoint_name"], desk["channel"], desk["answers"]) == (
        "Help desk", "human", "11"
    )
    csat, _, high = expected_csat(DESK_CSAT)
    assert abs(float(desk["csat"]) - csat) < 0.006
    assert abs(float(desk["csat_high"]) - high) < 0.006
    assert rows["store-flyer"]["nps"] == "20.0" and rows["store-flyer"]["ces"] == ""
    assert [row["stage_key"] for row in stages] == ["awareness", "consideration", "support"]
    assert list(stages[0])[:4] == ["stage_key", "stage_name", "position", "answers"]


@pytest.mark.usefixtures("answered")
@pytest.mark.parametrize(
    ("filters", "keys"),
    [
        ({"stage": "support"}, ["help-desk"]),
        ({"channel": "digital"}, ["insta-bio"]),
        ({"campaign": "spring-launch"}, ["store-flyer"]),
        ({"channel": "hybrid"}, []),
    ],
)
def test_the_filters_keep_the_answers_they_name(
    reports: Any, filters: dict[str, str], keys: list[str]
) -> None:
    report = reports.get("feedback", **filters)

    assert [row["touchpoint"]["key"] for row in report["rows"]] == keys
    assert report["filters"] == {"stage": None, "channel": None, "campaign": None, **filters}
    assert report["totals"]["answers"] == sum(row["answers"] for row in report["rows"])


def test_an_answer_counts_in_the_window_it_was_given_in(
    surveys: None, answers: Answers, reports: Any
) -> None:
    answers.at("flyer-nps", datetime.fromisoformat("2026-11-03T10:30:00+00:00"), "nps", 9)
    answers.at("flyer-nps", datetime.fromisoformat("2026-11-05T10:30:00+00:00"), "nps", 2)

    on_the_3rd = reports.get("feedback", **{"from": "2026-11-03", "to": "2026-11-03"})
    both = reports.get("feedback", **{"from": "2026-11-01", "to": "2026-11-06"})
    hours = reports.get(
        "feedback", **{"from": "2026-11-03T11:00:00+00:00", "to": "2026-11-05T10:00:00+00:00"}
    )

    assert [row["nps"] for row in on_the_3rd["rows"]] == [100.0]
    assert [row["answers"] for row in both["rows"]] == [2]
    assert hours["rows"] == []


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("feedback?order=least", "order"),
        ("feedback?limit=5", "limit"),
        ("feedback?touchpoint=store-flyer", "touchpoint"),
        ("feedback?by=link", "by"),
        ("feedback?stage=nowhere", "stage"),
        ("feedback/comments?by=stage", "by"),
        ("feedback/comments?limit=0", "limit"),
        ("feedback/comments?limit=201", "limit"),
    ],
)
def test_an_unknown_parameter_or_value_is_a_400_naming_it(
    surveys: None, reports: Any, path: str, parameter: str
) -> None:
    error = reports.error(path)

    assert error["code"] == "invalid_parameter"
    assert error["details"] == {"parameter": parameter}


@pytest.mark.usefixtures("answered")
def test_the_feedback_answers_as_the_document_says(
    app: Flask, client: FlaskClient, analyst: dict[str, str]
) -> None:
    reports = Documented(app, client, analyst)
    for by in ("touchpoint", "stage"):
        assert reports.get("feedback", by=by)["rows"], by
    assert reports.get("feedback", stage="decision")["rows"] == []
    assert reports.get("feedback/comments")["rows"]
    assert reports.get("feedback/comments", touchpoint="store-flyer", limit="1")["touchpoint"]
    assert reports.get("feedback/comments", format="csv").startswith("answered_at,")
    refused = reports.get("feedback/comments", touchpoint="nowhere")
    assert refused["error"]["code"] == "not_found"


@pytest.mark.usefixtures("answered")
def test_the_comments_are_the_newest_first_with_their_score_and_link(reports: Any) -> None:
    found = reports.get("feedback/comments", touchpoint="store-flyer")
    everyone = reports.get("feedback/comments", limit=2)

    assert found["touchpoint"] == {"key": "store-flyer", "name": "Store flyer",
                                   "channel": "physical"}
    assert [(c["score"], c["comment"]) for c in found["rows"]] == [
        (FLYER_NPS[i], FLYER_COMMENTS[i]) for i in sorted(FLYER_COMMENTS, reverse=True)
    ]
    assert {c["kind"] for c in found["rows"]} == {"nps"}
    assert {c["link"] for c in found["rows"]} == {"flyer-nps"}
    assert [c["comment"] for c in everyone["rows"]] == ["Quick and kind", "<b>Never</b> again"]
    assert reports.error("feedback/comments", 404, touchpoint="nobody")["code"] == "not_found"


@pytest.mark.usefixtures("answered")
def test_a_comment_that_looks_like_a_formula_is_defused_in_csv(reports: Any) -> None:
    body = reports.csv_text("feedback/comments", touchpoint="store-flyer")

    rows = list(csv.DictReader(io.StringIO(body)))
    assert rows[0].keys() == {
        "answered_at", "touchpoint_key", "link_slug", "kind", "score", "comment"
    }
    assert [row["comment"] for row in rows][1] == "'=HYPERLINK(\"http://x\")"


# --- the pages ------------------------------------------------------------------------------------


@pytest.fixture
def analyst_client(auth: Any) -> FlaskClient:
    client: FlaskClient = auth.client("analyst")
    return client


@pytest.fixture
def dashboard(analyst_client: FlaskClient) -> Callable[..., str]:
    def get(query: str = "", status: int = 200) -> str:
        response = analyst_client.get(f"/dashboard?{query}")
        assert response.status_code == status, response.get_data(as_text=True)[:2000]
        return response.get_data(as_text=True)

    return get


def _section(page: str, title: str) -> str:
    start = page.index(f">{title}</h2>")
    return page[start:page.find("</section>", start)]


def _row(section: str, key: str) -> dict[str, str]:
    """The figures of the row of touchpoint `key`, as a person reads them."""
    found = re.search(rf'<tr data-touchpoint="{key}">(.*?)</tr>', section, re.S)
    assert found is not None, section[:3000]
    cells = re.findall(r'data-figure="(\w+)">(.*?)</td>', found.group(1), re.S)
    return {name: _read(value) for name, value in cells}


def _read(fragment: str) -> str:
    fragment = re.sub(r"<svg.*?</svg>", " ", fragment, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


@pytest.mark.usefixtures("answered")
def test_the_dashboard_panel_shows_each_touchpoints_figures_with_intervals(
    dashboard: Callable[..., str],
) -> None:
    panel = _section(dashboard(), "Feedback")

    nps, low, high = expected_nps(FLYER_NPS)
    assert _row(panel, "store-flyer") == {
        "answers": "10", "nps": f"{nps:.1f} {low:.1f}{DASH}{high:.1f}", "csat": "—", "ces": "—",
        "comments": "3",
    }
    csat, csat_low, csat_high = expected_csat(DESK_CSAT)
    ces, ces_low, ces_high = expected_ces(DESK_CES)
    assert ces_low is not None and ces_high is not None
    desk = _row(panel, "help-desk")
    assert desk["csat"] == f"{csat:.1f} % {csat_low:.1f}{DASH}{csat_high:.1f}"
    assert desk["ces"] == f"{ces:.2f} {ces_low:.2f}{DASH}{ces_high:.2f}"
    # store-flyer's NPS, help-desk's CSAT and CES, insta-bio's NPS, and all three of the totals
    assert panel.count('<svg class="range-bar"') == 1 + 2 + 1 + 3
    assert _row(panel, "")["answers"] == "24"  # all touchpoints


def test_without_a_survey_the_panel_is_a_one_line_hint(
    dashboard: Callable[..., str], link: dict[str, Any]
) -> None:
    page = dashboard()

    assert ">Feedback</h2>" not in page
    assert 'id="feedback-hint"' in page and "no link asks a survey yet" in page
    assert ">NPS</a>" not in page  # no map by NPS to offer


def test_a_survey_without_answers_yet_says_so(
    dashboard: Callable[..., str], surveys: None
) -> None:
    assert "No answers in this window yet." in _section(dashboard(), "Feedback")


@pytest.mark.usefixtures("answered")
def test_the_panel_downloads_as_the_reports_csv(
    analyst_client: FlaskClient, dashboard: Callable[..., str], reports: Any
) -> None:
    page = dashboard("range=7d&channel=human")
    found = re.search(r'href="(/dashboard\?[^"]*format=csv&amp;table=feedback[^"]*)"', page)
    assert found is not None

    response = analyst_client.get(html.unescape(found.group(1)))

    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [row["touchpoint_key"] for row in rows] == ["help-desk"]
    api = reports.csv("feedback", channel="human")
    assert [row["csat"] for row in rows] == [row["csat"] for row in api]


@pytest.mark.usefixtures("answered")
def test_the_journey_map_by_nps_colours_each_cell_with_its_answers(
    dashboard: Callable[..., str], analyst_client: FlaskClient
) -> None:
    section = _section(dashboard("map=nps"), "Journey map")

    flyer = re.search(r'<td class="cell nps-(\d)" data-nps="([^"]+)" title="Store flyer at '
                      r'Awareness: NPS ([^ ]+) from 10 answers', section)
    bio = re.search(r'<td class="cell nps-(\d)" data-nps="([^"]+)" title="Insta bio at '
                    r'Consideration', section)
    assert flyer is not None and bio is not None
    assert (flyer.group(1), float(flyer.group(2))) == ("3", expected_nps(FLYER_NPS)[0])
    assert (bio.group(1), float(bio.group(2))) == ("1", expected_nps(BIO_NPS)[0])
    assert f'title="Help desk at Support: no NPS answer">{DASH}</td>' in section
    assert re.search(r'<a href="[^"]*map=nps[^"]*" aria-current="true">NPS</a>', section)

    body = analyst_client.get("/dashboard?map=nps&format=csv&table=map").get_data(as_text=True)
    rows = {(r["touchpoint_key"], r["stage_key"]): r for r in csv.DictReader(io.StringIO(body))}
    assert rows[("store-flyer", "awareness")]["answers"] == "10"
    assert rows[("help-desk", "support")]["nps"] == ""


def test_an_unknown_map_is_a_400_on_the_default_window(dashboard: Callable[..., str]) -> None:
    page = dashboard("map=heat", status=400)

    assert "map: must be clicks or nps, not &#39;heat&#39;" in page


@pytest.mark.usefixtures("answered")
def test_a_touchpoints_page_shows_its_feedback_and_latest_comments_escaped(
    analyst_client: FlaskClient,
) -> None:
    response = analyst_client.get("/dashboard/touchpoints/store-flyer?range=7d")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    section = _section(page, "Feedback")
    nps, low, high = expected_nps(FLYER_NPS)
    assert _row(section, "store-flyer")["nps"] == f"{nps:.1f} {low:.1f}{DASH}{high:.1f}"
    shown = re.findall(r"<blockquote>(.*?)</blockquote>", section, re.S)
    assert shown == [
        "&lt;b&gt;Never&lt;/b&gt; again", "=HYPERLINK(&#34;http://x&#34;)", "Loved the flyer"
    ]
    comments = analyst_client.get(
        "/dashboard/touchpoints/store-flyer?range=7d&format=csv&table=comments"
    )
    assert comments.mimetype == "text/csv" and "Loved the flyer" in comments.get_data(as_text=True)


def test_a_touchpoint_that_asks_nothing_shows_no_feedback(
    analyst_client: FlaskClient, link: dict[str, Any]
) -> None:
    page = analyst_client.get("/dashboard/touchpoints/store-flyer").get_data(as_text=True)

    assert ">Figures</h2>" in page and ">Feedback</h2>" not in page
