"""One-question surveys at a touchpoint: a survey link shows its question to a person instead of
redirecting, and takes the answer back on the same address.

The visit is counted as the redirect counts a click (`shortener.redirect` emits it, and sets the
journey cookie, before it hands over); bots and link previews get the plain redirect, and so
does HEAD. The form is anonymous, so instead of the session's CSRF token it carries one of its
own: an HMAC of the link and the time the form was issued, good for a day, so that only our
forms, and only fresh ones, are taken. An answer is safe (in Redis, the spool or SQL) when the
customer is thanked or forwarded; ingest keeps one per journey, or per visitor and day, at each
link.
"""

from __future__ import annotations

import hmac
import re
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Response, render_template, request

from shortener.clicks import MAX_USER_AGENT, RawClick, new_click_id
from shortener.error_pages import render_error_page
from shortener.journey_cookie import COOKIE, COOKIELESS
from shortener.models import SURVEY_SCALES
from shortener.outcomes import CLICK_PARAM, AnswerEvent
from shortener.resolver import Target
from shortener.runtime import LinkRuntime
from shortener.security_headers import CONTENT_SECURITY_POLICY
from shortener.urls import build_location

MAX_COMMENT = 500
FORM_MAX_AGE = 86_400  # seconds: a form older than a day is refused
CLOCK_SKEW = 60  # seconds a form may seem to come from the future (processes' clocks differ)
ISSUED_FIELD = "t"  # the signed time the form was issued
CLICK_FIELD = "c"  # the visit's `tl_click`, for a link that forwards and tracks conversions

QUESTIONS = {
    "nps": "How likely are you to recommend us to a friend or colleague?",
    "csat": "How satisfied are you with your experience?",
    "ces": "How easy was it to do what you came to do?",
}
ENDS = {  # the words at each end of a scale
    "nps": ("Not at all likely", "Extremely likely"),
    "csat": ("Very dissatisfied", "Very satisfied"),
    "ces": ("Very difficult", "Very easy"),
}
STALE = "This form is more than a day old, or it is not one of ours: please answer again."
_FORM_TOKEN = re.compile(r"([0-9a-f]{1,12})\.([0-9a-f]{32})")
_PAGE_HEADERS = {
    # The redirect's endpoint skips the site's page headers (a bare 30x stays lean): this is a
    # page, so it carries them itself, and is never cached (each visit counts).
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "same-origin",
    "Cache-Control": "private, no-store",
}


class FormTokens:
    """Signs the forms we issue: `<issue time, hex>.<HMAC of the link id and that time>`, under a
    key derived from the installation's secret."""

    def __init__(self, secret_key: str) -> None:
        self._key = hmac.digest(secret_key.encode(), b"touchlink survey forms", "sha256")

    def issue(self, link_id: int, now: float) -> str:
        issued = f"{int(now):x}"
        return f"{issued}.{self._signature(link_id, issued)}"

    def check(self, token: str, link_id: int, now: float) -> bool:
        """The token is ours, for this link, and was issued within the last day."""
        match = _FORM_TOKEN.fullmatch(token)
        if match is None:
            return False
        issued, signature = match.groups()
        if not hmac.compare_digest(signature, self._signature(link_id, issued)):
            return False
        return -CLOCK_SKEW <= now - int(issued, 16) <= FORM_MAX_AGE

    def _signature(self, link_id: int, issued: str) -> str:
        return hmac.digest(self._key, f"{link_id}.{issued}".encode(), "sha256")[:16].hex()


def clean_comment(text: str) -> str:
    """A comment as it is kept: line breaks as `\\n`, tabs as spaces, no other control
    character, no surrounding blanks."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    return "".join(c for c in text if c == "\n" or unicodedata.category(c) != "Cc").strip()


@dataclass(frozen=True, slots=True)
class Answer:
    """A submitted answer, checked against the survey's scale: the score and the comment, or the
    messages that say what is wrong, by field."""

    score: int | None
    comment: str
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_form(cls, form: Mapping[str, str], kind: str) -> Answer:
        low, high = SURVEY_SCALES[kind]
        errors = {}
        raw = (form.get("score") or "").strip()
        score = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 2 else None
        if score is None or not low <= score <= high:
            errors["score"] = f"Choose a score from {low} to {high}."
            score = None
        comment = clean_comment(form.get("comment") or "")
        if len(comment) > MAX_COMMENT:
            errors["comment"] = (
                f"Your comment has {len(comment):,} characters: {MAX_COMMENT} at most, please."
            )
        return cls(score, comment, errors)


Page = Response | tuple[str, int]


class Surveys:
    """The survey side of the redirect, built once per process (`redirect.make_follow`)."""

    def __init__(self, rt: LinkRuntime) -> None:
        self._rt = rt
        self._forms = FormTokens(rt.settings.secret_key)

    def respond(
        self,
        target: Target,
        environ: Mapping[str, Any],
        *,
        forwarded: Sequence[tuple[str, str]],
        set_cookie: str | None,
        click: RawClick | None,
    ) -> Page | None:
        """A survey link's answer to this request; None where the plain redirect answers: HEAD,
        and the GET of a bot or a link preview. `click` is the visit as counted (None when it
        was not: `notrack`), `set_cookie` its journey cookie."""
        method = environ["REQUEST_METHOD"]
        if method == "HEAD":
            return None
        bot = self._rt.is_bot(environ.get("HTTP_USER_AGENT", ""))
        if method != "POST":
            if bot:
                return None
            tl_click = None
            if click is not None and target.track_conversions:
                tl_click = self._rt.click_tokens.sign(click.click_id, target.link_id)
            return self._form(target, tl_click=tl_click, set_cookie=set_cookie)
        if bot:
            return render_error_page(403, "Answers are taken from people's browsers only.")
        return self._answer(target, environ, forwarded)

    def _answer(
        self, target: Target, environ: Mapping[str, Any], forwarded: Sequence[tuple[str, str]]
    ) -> Page:
        form = request.form
        tl_click = self._tl_click(target, form.get(CLICK_FIELD, ""))
        if not self._forms.check(form.get(ISSUED_FIELD, ""), target.link_id, time.time()):
            return self._form(
                target, values=form, errors={"_form": STALE}, tl_click=tl_click, status=400
            )
        kind = target.survey_kind or "nps"
        answer = Answer.from_form(form, kind)
        if answer.score is None or answer.errors:
            return self._form(
                target, values=form, errors=answer.errors, tl_click=tl_click, status=422
            )
        self._rt.sink.record(
            AnswerEvent(
                id=new_click_id(),
                at=time.time(),
                link_id=target.link_id,
                touchpoint_id=target.touchpoint_id,
                stage_id=target.stage_id,
                kind=kind,
                score=answer.score,
                comment=answer.comment,
                ip=(environ.get("REMOTE_ADDR") or "")[:45],
                user_agent=environ.get("HTTP_USER_AGENT", "")[:MAX_USER_AGENT],
                journey=self._journey(environ),
            )
        )
        if target.survey_then != "forward":
            return self._page("survey.html", thanked=True, kind=kind)
        params = dict(target.utm_params or {})
        if tl_click is not None:
            params[CLICK_PARAM] = tl_click
        location = build_location(target.destination, forwarded, params)
        return Response(
            status=303, headers={"Location": location, "Cache-Control": "private, no-store"}
        )

    def _journey(self, environ: Mapping[str, Any]) -> str:
        """The answer's journey as a click's would be: the browser's own cookie id, COOKIELESS,
        or none (journeys off, DNT, GPC). Never a fresh id: a browser that keeps no cookie would
        answer as a new journey each time; it answers once per day as a visitor instead."""
        journey, _ = self._rt.journeys.journey(environ)
        if journey in ("", COOKIELESS) or request.cookies.get(COOKIE) == journey:
            return journey
        return ""

    def _tl_click(self, target: Target, sent: str) -> str | None:
        """The visit's `tl_click` the form carried back, when it is ours and of this link."""
        if not target.track_conversions or not sent:
            return None
        found = self._rt.click_tokens.verify(sent)
        return sent if found is not None and found.link_id == target.link_id else None

    def _form(
        self,
        target: Target,
        *,
        values: Mapping[str, str] | None = None,
        errors: dict[str, str] | None = None,
        tl_click: str | None = None,
        set_cookie: str | None = None,
        status: int = 200,
    ) -> Response:
        kind = target.survey_kind or "nps"
        low, high = SURVEY_SCALES[kind]
        response = self._page(
            "survey.html",
            status=status,
            kind=kind,
            question=target.survey_question or QUESTIONS[kind],
            scores=range(low, high + 1),
            ends=ENDS[kind],
            token=self._forms.issue(target.link_id, time.time()),
            tl_click=tl_click,
            values=values or {},
            errors=errors or {},
            max_comment=MAX_COMMENT,
        )
        if set_cookie is not None:
            response.headers["Set-Cookie"] = set_cookie
        return response

    @staticmethod
    def _page(template: str, *, status: int = 200, **context: Any) -> Response:
        page = render_template(template, **context)
        return Response(page, status, headers=_PAGE_HEADERS, mimetype="text/html")
