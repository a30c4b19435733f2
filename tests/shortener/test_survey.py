"""One-question surveys at a touchpoint, through the real path: a person opens a survey link (the
visit counted as a click), answers through the form (`POST /{slug}`), the answer is stored once
per journey or per visitor and day, and the feedback report, the pages and the link form show
it. Bots get the plain redirect, stale or forged forms are refused, and what customers type is
escaped wherever it is shown."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from analytics.models import Click, FeedbackAnswer
from analytics.runtime import runtime
from analytics.stream import ClickStream
from analytics.worker import IngestWorker
from shortener.journey_cookie import COOKIE
from shortener.models import Link
from shortener.outcomes import CLICK_PARAM
from shortener.settings import Settings
from shortener.survey import FormTokens
from tests.user_agents import ANDROID, GOOGLEBOT, IPHONE, SLACKBOT

DESTINATION = "https://shop.example.com/thanks"
_HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)">')


class Customer:
    """A person's browser: a client of its own (so a cookie jar of its own), an address, a user
    agent, and Do Not Track when asked."""

    def __init__(self, app: Flask, ip: str, agent: str, *, dnt: bool = False) -> None:
        self.client = app.test_client()
        self.ip = ip
        self.headers = {"User-Agent": agent, **({"DNT": "1"} if dnt else {})}

    def open(self, path: str, method: str = "GET") -> TestResponse:
        return self.client.open(
            f"/{path}", method=method, headers=self.headers, environ_base={"REMOTE_ADDR": self.ip}
        )

    def send(self, path: str, form: dict[str, str]) -> TestResponse:
        return self.client.post(
            f"/{path}", data=form, headers=self.headers, environ_base={"REMOTE_ADDR": self.ip}
        )

    def answer(
        self, path: str, score: int | str, comment: str = "", **fields: str
    ) -> TestResponse:
        """Open the survey at `path`, choose `score`, write `comment` and send the form with its
        hidden fields (`fields` replace them)."""
        page = self.open(path)
        assert page.status_code == 200, page.get_data(as_text=True)[:500]
        form = {**hidden_fields(page), "score": str(score), "comment": comment, **fields}
        return self.send(path, form)

    @property
    def journey(self) -> str | None:
        cookie = self.client.get_cookie(COOKIE, domain="go.test")
        return None if cookie is None else cookie.value


def hidden_fields(page: TestResponse) -> dict[str, str]:
    found = _HIDDEN.findall(page.get_data(as_text=True))
    return {name: html.unescape(value) for name, value in found}


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def shown_error(response: TestResponse, field: str) -> str:
    pattern = rf'<p class="survey-error" id="{field}-error"[^>]*>([^<]*)</p>'
    found = re.search(pattern, text(response))
    assert found is not None, text(response)[:3000]
    return html.unescape(found.group(1))


CustomerMaker = Callable[..., Customer]


@pytest.fixture
def customer(app: Flask) -> CustomerMaker:
    """`customer(ip, agent, app=, dnt=)`: a new browser on the test's app (or `app`)."""

    def make(
        ip: str = "203.0.113.7", agent: str = IPHONE, *, app: Flask = app, dnt: bool = False
    ) -> Customer:
        return Customer(app, ip, agent, dnt=dnt)

    return make


@pytest.fixture
def survey(new_link: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """`survey(kind, slug=, then=, question=, **link fields)`: a link of the store flyer at
    awareness (campaign spring-launch) that asks a survey."""

    def make(kind: str = "nps", slug: str = "ask", **fields: Any) -> dict[str, Any]:
        asked = {name: fields.pop(name) for name in ("then", "question") if name in fields}
        return new_link(
            url=DESTINATION, slug=slug, campaign="spring-launch",
            survey={"kind": kind, **asked}, **fields,
        )

    return make


def stored_answers(session: Session) -> list[FeedbackAnswer]:
    session.expire_all()
    return list(session.scalars(select(FeedbackAnswer).order_by(FeedbackAnswer.answered_at)))


def stored_clicks(session: Session, link_id: int) -> list[Click]:
    session.expire_all()
    return list(session.scalars(select(Click).where(Click.link_id == link_id)))


# --- the page -------------------------------------------------------------------------------------


def test_a_person_gets_the_question_with_its_scale_and_the_visit_counts_as_a_click(
    survey: Any, customer: CustomerMaker, session: Session
) -> None:
    link = survey("nps")

    page = customer().open("ask?qr=1")

    assert page.status_code == 200
    assert page.mimetype == "text/html"
    shown = text(page)
    assert "How likely are you to recommend us to a friend or colleague?" in shown
    assert re.findall(r'type="radio" id="score-(\d+)" name="score"', shown) == [
        str(score) for score in range(11)
    ]
    assert "Not at all likely" in shown and "Extremely likely" in shown
    assert '<textarea id="comment" name="comment" rows="4" maxlength="500"' in shown
    assert set(hidden_fields(page)) == {"t"}
    # A page under the site's policy (no inline code), never cached, so each visit counts.
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "private, no-store"
    assert "<script" not in shown and "style=" not in shown
    [click] = stored_clicks(session, link["id"])
    assert (click.via_qr, click.is_bot) == (True, False)


@pytest.mark.parametrize(
    ("kind", "scores", "question", "ends"),
    [
        ("csat", range(1, 6), "How satisfied are you with your experience?",
         ("Very dissatisfied", "Very satisfied")),
        ("ces", range(1, 8), "How easy was it to do what you came to do?",
         ("Very difficult", "Very easy")),
    ],
)
def test_each_kind_has_its_scale_and_its_own_question(
    survey: Any, customer: CustomerMaker, kind: str, scores: range, question: str,
    ends: tuple[str, str],
) -> None:
    survey(kind)
    survey(kind, slug="own", question="How was the <b>fitting room</b>?")

    shown = text(customer().open("ask"))
    own = text(customer().open("own"))

    assert question in shown
    assert re.findall(r'id="score-(\d+)"', shown) == [str(s) for s in scores]
    assert all(end in shown for end in ends)
    assert "How was the &lt;b&gt;fitting room&lt;/b&gt;?" in own


@pytest.mark.parametrize("agent", [GOOGLEBOT, SLACKBOT, ""])
def test_a_bot_or_a_link_preview_gets_the_plain_redirect_counted_as_a_bot(
    survey: Any, customer: CustomerMaker, session: Session, agent: str
) -> None:
    link = survey("nps")

    response = customer("66.249.66.1", agent).open("ask")

    assert response.status_code == 302
    assert response.headers["Location"] == (
        f"{DESTINATION}?utm_source=store-flyer&utm_medium=physical&utm_campaign=spring-launch"
    )
    assert [click.is_bot for click in stored_clicks(session, link["id"])] == [True]


def test_head_redirects_and_notrack_shows_the_form_neither_counted(
    survey: Any, customer: CustomerMaker, session: Session
) -> None:
    link = survey("nps")
    person = customer()

    head = person.open("ask", method="HEAD")
    page = person.open("ask?notrack=1")

    assert head.status_code == 302
    assert page.status_code == 200 and 'name="score"' in text(page)
    assert stored_clicks(session, link["id"]) == []


def test_a_post_to_a_link_without_a_survey_is_a_405(
    new_link: Any, customer: CustomerMaker, session: Session
) -> None:
    link = new_link(slug="plain")

    response = customer().send("plain", {"score": "9"})

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert stored_clicks(session, link["id"]) == [] and stored_answers(session) == []


# --- the answer ---------------------------------------------------------------------------------


def test_an_answer_is_stored_and_counted_in_the_feedback_report(
    survey: Any, customer: CustomerMaker, session: Session, client: FlaskClient,
    analyst: dict[str, str],
) -> None:
    link = survey("nps")

    response = customer().answer("ask", 9, "  Lovely shop,\r\nfriendly staff  ")

    assert response.status_code == 200
    assert "Thank you!" in text(response)
    [answer] = stored_answers(session)
    assert (answer.link_id, answer.kind, answer.score, answer.comment) == (
        link["id"], "nps", 9, "Lovely shop,\nfriendly staff"
    )
    report = client.get("/api/v1/reports/feedback", headers=analyst).get_json()
    [row] = report["rows"]
    assert row["touchpoint"]["key"] == "store-flyer"
    assert (row["answers"], row["promoters"], row["nps"], row["comments"]) == (1, 1, 100.0, 1)
    comments = client.get(
        "/api/v1/reports/feedback/comments?touchpoint=store-flyer", headers=analyst
    ).get_json()
    assert [(c["link"], c["score"], c["comment"]) for c in comments["rows"]] == [
        ("ask", 9, "Lovely shop,\nfriendly staff")
    ]


def test_an_answer_travels_through_redis_and_the_worker(
    survey: Any, make_app: Callable[..., Flask], redis_client: redis.Redis, redis_url: str,
    customer: CustomerMaker, session: Session,
) -> None:
    survey("csat")
    web = make_app(redis_url=redis_url)
    rt = runtime(web)

    assert customer(app=web).answer("ask", 4, "ok").status_code == 200
    assert stored_answers(session) == []  # in the stream, not in SQL yet
    assert rt.redis is not None
    worker = IngestWorker(
        ClickStream(rt.redis, rt.settings.stream, consumer="w1"), rt.sessions, rt.enricher,
        rt.metrics, zone=rt.settings.zone, journeys=rt.journey_keys,
    )
    worker.run(drain=True)

    assert [(a.kind, a.score, a.comment) for a in stored_answers(session)] == [("csat", 4, "ok")]


def test_then_forward_sends_the_customer_on_with_utm_parameters(
    survey: Any, customer: CustomerMaker, session: Session
) -> None:
    survey("ces", then="forward")

    response = customer().answer("ask?lang=fr&qr=1", 6)

    assert response.status_code == 303
    assert response.headers["Location"] == (
        f"{DESTINATION}?lang=fr&utm_source=store-flyer&utm_medium=physical"
        "&utm_campaign=spring-launch"
    )
    assert [(a.kind, a.score) for a in stored_answers(session)] == [("ces", 6)]


def test_forwarding_from_a_link_that_tracks_conversions_hands_on_the_visits_click(
    survey: Any, customer: CustomerMaker, session: Session, app: Flask
) -> None:
    link = survey("nps", then="forward", track_conversions=True)

    response = customer().answer("ask", 10)

    assert response.status_code == 303
    query = dict(parse_qsl(urlsplit(response.headers["Location"]).query))
    found = runtime(app).click_tokens.verify(query[CLICK_PARAM])
    [click] = stored_clicks(session, link["id"])
    assert found is not None and (found.click_id, found.link_id) == (click.click_id, link["id"])


@pytest.mark.parametrize(
    ("score", "comment", "field", "message"),
    [
        ("", "", "score", "Choose a score from 0 to 10."),
        ("11", "", "score", "Choose a score from 0 to 10."),
        ("-1", "", "score", "Choose a score from 0 to 10."),
        ("7.5", "", "score", "Choose a score from 0 to 10."),
        ("nine", "", "score", "Choose a score from 0 to 10."),
        ("9", "x" * 501, "comment", "Your comment has 501 characters: 500 at most, please."),
    ],
)
def test_a_bad_answer_is_shown_again_with_its_message_and_nothing_is_stored(
    survey: Any, customer: CustomerMaker, session: Session, score: str, comment: str,
    field: str, message: str,
) -> None:
    survey("nps")

    response = customer().answer("ask", score, comment)

    assert response.status_code == 422
    assert shown_error(response, field) == message
    assert 'name="score"' in text(response)  # the form again, to answer once more
    assert stored_answers(session) == []


def test_a_comment_of_500_characters_is_taken_and_control_characters_are_dropped(
    survey: Any, customer: CustomerMaker, session: Session
) -> None:
    survey("csat")
    person = customer()

    assert person.answer("ask", 5, "\x1b " + "é" * 499 + "\x07x \t").status_code == 200

    [answer] = stored_answers(session)
    assert answer.comment == "é" * 499 + "x"


def test_a_refused_form_keeps_what_was_typed_escaped(
    survey: Any, customer: CustomerMaker
) -> None:
    survey("nps")

    response = customer().answer("ask", "", "<script>alert('x')</script>")

    assert response.status_code == 422
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</textarea>" in text(response)
    assert "<script>alert" not in text(response)


@pytest.mark.parametrize("forged", ["stale", "other-link", "signature", "missing", "not-hex"])
def test_a_stale_or_forged_form_is_refused(
    survey: Any, customer: CustomerMaker, session: Session, settings: Settings, forged: str
) -> None:
    link = survey("nps")
    other = survey("nps", slug="other")
    tokens = FormTokens(settings.secret_key)
    good = tokens.issue(link["id"], time.time())
    token = {
        "stale": tokens.issue(link["id"], time.time() - 86_400 - 120),
        "other-link": tokens.issue(other["id"], time.time()),
        "signature": good[:-1] + ("1" if good.endswith("0") else "0"),
        "missing": "",
        "not-hex": "é" + good[1:],
    }[forged]

    response = customer().answer("ask", 9, t=token)

    assert response.status_code == 400
    assert "more than a day old, or it is not one of ours" in text(response)
    assert hidden_fields(response)["t"] != token  # a fresh form, to answer again
    assert stored_answers(session) == []


def test_a_form_of_a_day_less_a_minute_is_still_taken(
    survey: Any, customer: CustomerMaker, session: Session, settings: Settings
) -> None:
    link = survey("nps")
    token = FormTokens(settings.secret_key).issue(link["id"], time.time() - 86_400 + 60)

    assert customer().answer("ask", 3, t=token).status_code == 200
    assert [a.score for a in stored_answers(session)] == [3]


def test_a_bots_answer_is_refused_and_nothing_is_recorded(
    survey: Any, customer: CustomerMaker, session: Session
) -> None:
    survey("nps")
    form = hidden_fields(customer().open("ask"))

    response = customer("66.249.66.1", GOOGLEBOT).send("ask", {**form, "score": "10"})

    assert response.status_code == 403
    assert stored_answers(session) == []


def test_a_signed_in_browser_answers_without_the_sessions_csrf_token(
    survey: Any, auth: Any, session: Session
) -> None:
    survey("nps")
    signed_in: FlaskClient = auth.client("marketer")
    headers = {"User-Agent": IPHONE}
    form = hidden_fields(signed_in.get("/ask", headers=headers))

    response = signed_in.post("/ask", data={**form, "score": "8"}, headers=headers)

    assert response.status_code == 200
    assert [a.score for a in stored_answers(session)] == [8]


# --- one answer each ------------------------------------------------------------------------------


def test_one_answer_per_journey_and_each_browser_its_own(
    survey: Any, make_app: Callable[..., Flask], customer: CustomerMaker, session: Session
) -> None:
    survey("nps")
    web = make_app(journeys="cookie")
    anna, annas_laptop = customer(app=web), customer(app=web)

    assert anna.answer("ask", 9).status_code == 200
    assert anna.journey is not None
    assert anna.answer("ask", 2, "changed my mind").status_code == 200  # thanked all the same
    assert [a.score for a in stored_answers(session)] == [9]

    # The same address and browser, another cookie jar: another journey, another answer.
    assert annas_laptop.answer("ask", 7).status_code == 200
    assert sorted(a.score for a in stored_answers(session)) == [7, 9]


def test_under_do_not_track_a_visitor_answers_once_a_day(
    survey: Any, make_app: Callable[..., Flask], customer: CustomerMaker, session: Session
) -> None:
    survey("nps")
    web = make_app(journeys="cookie")
    ben = customer("203.0.113.8", ANDROID, app=web, dnt=True)

    first = ben.answer("ask", 10)
    second = ben.answer("ask", 0)
    other = customer("203.0.113.9", ANDROID, app=web, dnt=True).answer("ask", 6)

    assert [r.status_code for r in (first, second, other)] == [200, 200, 200]
    assert "Set-Cookie" not in first.headers and ben.journey is None
    assert sorted(a.score for a in stored_answers(session)) == [6, 10]


def test_without_journeys_a_visitor_answers_once_a_day_at_each_link(
    survey: Any, customer: CustomerMaker, session: Session
) -> None:
    survey("nps")
    survey("nps", slug="other")
    person = customer()

    for path, score in (("ask", 8), ("ask", 9), ("other", 4)):
        assert person.answer(path, score).status_code == 200

    assert sorted(a.score for a in stored_answers(session)) == [4, 8]


# --- the pages ------------------------------------------------------------------------------------


def test_a_comment_is_escaped_on_the_touchpoints_page(
    survey: Any, customer: CustomerMaker, auth: Any
) -> None:
    survey("nps")
    customer().answer("ask", 3, '<img src=x onerror="alert(1)"> & so on')

    page = text(auth.client("analyst").get("/dashboard/touchpoints/store-flyer"))

    assert "<img src=x" not in page
    escaped = "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; &amp; so on"
    assert f"<blockquote>{escaped}</blockquote>" in page


SURVEY_FORM = {
    "url": DESTINATION, "touchpoint": "store-flyer", "stage": "awareness", "slug": "ask",
    "campaign": "", "title": "", "utm": "on", "redirect_status": "302", "expires_at": "",
    "track_conversions": "on", "survey_kind": "csat", "survey_question": "How was your fitting?",
    "survey_then": "forward",
}


def test_a_marketer_gives_a_link_a_survey_on_the_form_and_its_page_says_so(
    auth: Any, pages: Any, touchpoint: dict[str, Any], session: Session, customer: CustomerMaker
) -> None:
    marketer: FlaskClient = auth.client("marketer")

    created = pages.post_form(marketer, "/links/new", SURVEY_FORM)

    assert created.status_code == 302, pages.text(created)[:2000]
    link = session.scalars(select(Link).where(Link.slug == "ask")).one()
    assert (link.track_conversions, link.survey_kind, link.survey_question, link.survey_then) == (
        True, "csat", "How was your fitting?", "forward"
    )
    shown = pages.text(marketer.get(created.headers["Location"]))
    assert "asks “How was your fitting?”, then goes on to the destination" in shown
    assert "tracked" in shown
    assert "How was your fitting?" in text(customer().open("ask"))
    edit = pages.text(marketer.get(f"/links/{link.id}/edit"))
    assert '<option value="csat" selected>' in edit and 'name="track_conversions" checked' in edit

    saved = pages.post_form(
        marketer, f"/links/{link.id}/edit", {**SURVEY_FORM, "survey_kind": ""},
        form_page=f"/links/{link.id}/edit",
    )

    assert saved.status_code == 302
    assert "none: redirects at once" in pages.text(marketer.get(f"/links/{link.id}"))
    assert customer().open("ask").status_code == 302  # the cached link was forgotten


def test_a_refused_survey_field_is_shown_next_to_itself(
    auth: Any, pages: Any, touchpoint: dict[str, Any]
) -> None:
    marketer: FlaskClient = auth.client("marketer")

    response = pages.post_form(
        marketer, "/links/new", {**SURVEY_FORM, "survey_question": "?" * 301}
    )

    assert response.status_code == 422
    assert pages.field_error(response, "survey_question") == "Must be at most 300 characters"
