"""The public redirect: resolve the slug (cached), hand the click to the sink, answer 30x; a link
that asks a survey shows its question to people instead (`shortener.survey`).

This is the hot path: for a cached link it makes no network round trip at all, reads the WSGI
environ directly, and answers with a Location worked out when the link was cached whenever the
click carries no query string of its own.

A plain redirect (GET or HEAD of a live link that asks no survey) is answered in front of Flask,
by `Redirects.wsgi`: Flask's request context, URL matching and hooks cost a bare Flask app more
than the redirect's own work, and on a redirect they do nothing but add the header every response
carries (`security_headers.EVERY_RESPONSE`). Anything else takes the Flask view, which shares the
same steps: another route's path, a signed-in user's session cookie (Flask refreshes it), a
404 or 410 page, a survey, POST, an error. So does every request of an app whose hooks or
request signals are not the ones above: their effect on the redirect would be skipped.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, request, signals
from werkzeug.http import HTTP_STATUS_CODES

from shortener import csrf, security_headers, unit_of_work
from shortener.clicks import OPT_OUT_PARAM, SCAN_PARAM, RawClick, crop_click, prefetched
from shortener.error_pages import render_error_page
from shortener.hubs_public import Hubs
from shortener.outcomes import CLICK_PARAM
from shortener.resolver import Target
from shortener.runtime import LinkRuntime, runtime
from shortener.slugs import looks_like_slug
from shortener.survey import Surveys
from shortener.urls import build_location

log = logging.getLogger(__name__)

NO_LINK = "There is no link at this address: check it for a typing mistake."
# no-store: a browser that caches the redirect skips us on the next click, which goes uncounted.
_CACHE_CONTROL = "private, no-store"
_CONTENT_TYPE = "text/html; charset=utf-8"  # what werkzeug gives a response without a body
RETIRED = "What this link or code led to is no longer available. Thank you for your interest."

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# The app's hooks whose whole effect on a plain redirect the path in front of Flask reproduces:
# the CSRF check passes GET and HEAD, the request opens no database session to finish or close,
# the security headers add EVERY_RESPONSE, and the print kit lifts the body limit of its own
# upload endpoints only. An app with any other hook sends every request through Flask.
_KNOWN_HOOKS = frozenset(
    {
        *(
            f"{hook.__module__}.{hook.__qualname__}"
            for hook in (
                csrf.check_csrf,
                security_headers.add_security_headers,
                unit_of_work.finish_request,
            )
        ),
        "shortener.unit_of_work._close_request_session",
        "shortener.print_pages._allow_logo_uploads",
    }
)
_CONVERTER = re.compile(r"<[^>]*>")
_REQUEST_SIGNALS = (
    signals.request_started,
    signals.request_finished,
    signals.request_tearing_down,
    signals.got_request_exception,
    signals.appcontext_pushed,
    signals.appcontext_popped,
    signals.appcontext_tearing_down,
)


class _Redirect(Response):
    """A body-less redirect whose Location is already ASCII (destinations are stored in that
    form and what we append is URL-encoded), so werkzeug's per-response IRI pass is skipped."""

    def get_wsgi_headers(self, environ: Any) -> Any:
        return self.headers


@dataclass(frozen=True, slots=True)
class _Plan:
    """A live, safe link to send the request on to, and what the request's query makes of it."""

    target: Target
    location: str
    forwarded: list[tuple[str, str]] = field(default_factory=list)
    via_qr: bool = False
    counted: bool = True


@dataclass(frozen=True, slots=True)
class _Refused:
    """No redirect: 404 (never a link), or 410 (retired, or an unsafe destination)."""

    status: int
    unsafe_link: int | None = None
    fallback: str | None = None  # where the domain sends unknown slugs, or the link once retired


class Redirects:
    """The redirect of one app: the Flask view (`follow`) and the path in front of Flask for
    plain redirects (`wsgi`), over the same steps: `plan`, then `click`."""

    def __init__(self, rt: LinkRuntime) -> None:
        self._rt = rt
        self._resolver = rt.resolver
        self._journeys = rt.journeys
        self._tokens = rt.click_tokens
        self._surveys = Surveys(rt)
        self._hubs = Hubs(rt)
        self._domains = rt.domains

    def plan(
        self, environ: Mapping[str, Any], slug: str, args: Callable[[], Any]
    ) -> _Plan | _Refused:
        """Where `slug` sends this request, with no side effect but the link cache's; `args`
        gives the request's query parameters (a MultiDict), asked only when there is a query."""
        if not looks_like_slug(slug):
            # Never a link, and never worth a cache entry or a query (PostgreSQL refuses NUL).
            return _Refused(404)
        # Each domain serves its own links only; a Host that is none of ours, none at all.
        served = self._domains.find(environ.get("HTTP_HOST", ""))
        if served is None:
            return _Refused(404)
        target = self._resolver.resolve(served.host, slug)
        if target is None:
            return _Refused(404, fallback=served.fallback_url)
        if not target.is_live(time.time()):
            return _Refused(410, fallback=target.fallback_url)
        if not target.safe:
            return _Refused(410, unsafe_link=target.link_id)
        if not environ.get("QUERY_STRING"):
            return _Plan(target, target.location)
        query = args()
        # Only `qr=1` marks a scan; any other `qr` is the customer's own, forwarded as is.
        forwarded = [
            (k, v)
            for k, v in query.items(multi=True)
            if k != OPT_OUT_PARAM and not (k == SCAN_PARAM and v == "1")
        ]
        location = target.location
        if forwarded:
            location = build_location(target.destination, forwarded, target.utm_params)
        return _Plan(
            target,
            location,
            forwarded,
            via_qr="1" in query.getlist(SCAN_PARAM),
            counted=OPT_OUT_PARAM not in query,
        )

    def click(
        self, plan: _Plan, environ: Mapping[str, Any]
    ) -> tuple[RawClick | None, str, str | None]:
        """The click a counted GET makes (None otherwise), the Location to answer with, and the
        journey cookie to set; the click is not emitted yet."""
        if not plan.counted or environ["REQUEST_METHOD"] != "GET":
            return None, plan.location, None
        target = plan.target
        prefetch = prefetched(environ)
        # A fetch ahead of any click is no one's journey: no cookie for it.
        journey, set_cookie = ("", None) if prefetch else self._journeys.journey(environ)
        before_go_live = target.starts_at is not None and time.time() < target.starts_at
        click = crop_click(
            link_id=target.link_id,
            touchpoint_id=target.touchpoint_id,
            stage_id=target.stage_id,
            ip=environ.get("REMOTE_ADDR") or "",
            user_agent=environ.get("HTTP_USER_AGENT", ""),
            referrer=environ.get("HTTP_REFERER", ""),
            language=environ.get("HTTP_ACCEPT_LANGUAGE", ""),
            via_qr=plan.via_qr,
            journey="" if before_go_live else journey,
            test=before_go_live,
            private=self._journeys.private(environ),
            prefetch=prefetch,
        )
        location = plan.location
        if target.track_conversions:
            # Like a UTM parameter: never overrides a tl_click the URL already carries.
            token = self._tokens.sign(click.click_id, target.link_id)
            params = {**(target.utm_params or {}), CLICK_PARAM: token}
            location = build_location(target.destination, plan.forwarded, params)
        return click, location, set_cookie

    def follow(self, slug: str) -> Response | tuple[str, int]:
        """The Flask view: every request to /<slug> that the path in front of Flask left."""
        environ = request.environ
        plan = self.plan(environ, slug, lambda: request.args)
        if isinstance(plan, _Refused):
            if plan.fallback is not None:
                headers = {"Location": plan.fallback, "Cache-Control": _CACHE_CONTROL}
                return Response(status=302, headers=headers)
            if plan.status == 404:
                return render_error_page(404, NO_LINK, title="Link not found", customer=True)
            if plan.unsafe_link is not None:
                log.error(
                    "link %s has an unsafe destination; refusing to redirect", plan.unsafe_link
                )
            return render_error_page(410, RETIRED, title="This link has ended", customer=True)
        target = plan.target
        if environ["REQUEST_METHOD"] == "POST" and target.survey_kind is None:
            return _no_form()  # never counted: only a GET is
        click, location, set_cookie = self.click(plan, environ)
        if click is not None:
            self._rt.sink.emit(click)
        if target.hub:
            return self._hubs.page_for(target, set_cookie=set_cookie)  # counted as above
        if target.survey_kind is not None:
            # Counted as above; the survey page (or the plain redirect, for bots) answers.
            page = self._surveys.respond(
                target, environ, forwarded=plan.forwarded, set_cookie=set_cookie, click=click
            )
            if page is not None:
                return page
        response = _Redirect if location.isascii() else Response
        headers = {"Location": location, "Cache-Control": _CACHE_CONTROL, "Content-Length": "0"}
        if set_cookie is not None:
            headers["Set-Cookie"] = set_cookie
        return response(status=target.redirect_status, headers=headers)

    def wsgi(self, app: Flask, flask_app: WSGIApp) -> WSGIApp:
        """`flask_app` (the app's WSGI callable) with plain redirects answered in front of it."""
        # Worked out once Flask has served a request: from then on no route or hook can be added.
        taken: frozenset[str] | None = None
        session_cookie = ""
        request_class = app.request_class

        def answer(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            nonlocal taken, session_cookie
            if taken is None:
                response = flask_app(environ, start_response)
                taken = _settled(app)
                session_cookie = f"{app.config['SESSION_COOKIE_NAME']}="
                return response
            method = environ.get("REQUEST_METHOD")
            if method != "GET" and method != "HEAD":
                return flask_app(environ, start_response)
            path: str = environ.get("PATH_INFO", "")
            slug = path[1:]
            cookies = environ.get("HTTP_COOKIE")
            if (
                not path.startswith("/")
                or slug in taken
                or not looks_like_slug(slug)
                or (cookies is not None and session_cookie in cookies)
                or any(signal.receivers for signal in _REQUEST_SIGNALS)
            ):
                return flask_app(environ, start_response)
            try:
                plan = self.plan(environ, slug, lambda: request_class(environ).args)
                if (
                    isinstance(plan, _Refused)
                    or plan.target.survey_kind is not None
                    or plan.target.hub
                    or not plan.target.location.isascii()
                ):
                    return flask_app(environ, start_response)  # a page, a survey, an IRI
                click, location, set_cookie = self.click(plan, environ)
            except Exception:
                return flask_app(environ, start_response)  # nothing done yet: Flask answers
            headers = [
                ("Location", location),
                ("Cache-Control", _CACHE_CONTROL),
                ("Content-Length", "0"),
            ]
            if set_cookie is not None:
                headers.append(("Set-Cookie", set_cookie))
            headers.append(("Content-Type", _CONTENT_TYPE))
            headers.extend(security_headers.EVERY_RESPONSE)
            if click is not None:
                self._rt.sink.emit(click)
            status = plan.target.redirect_status
            start_response(f"{status} {HTTP_STATUS_CODES[status].upper()}", headers)
            return []

        return answer


def _settled(app: Flask) -> frozenset[str]:
    """The first path segments the view must leave to Flask: those of every other route that
    could match a one-segment path. With an unknown hook, or another route that matches one
    segment by a pattern, everything goes to Flask (a set no slug escapes)."""
    hooks = [
        *app.before_request_funcs.get(None, ()),
        *app.after_request_funcs.get(None, ()),
        *app.teardown_request_funcs.get(None, ()),
        *app.teardown_appcontext_funcs,
        *app.url_value_preprocessors.get(None, ()),
    ]
    everything = _Everything()
    if any(f"{hook.__module__}.{hook.__qualname__}" not in _KNOWN_HOOKS for hook in hooks):
        return everything
    if app.url_map.host_matching or app.subdomain_matching or app.config.get("SERVER_NAME"):
        return everything  # routes that depend on the host
    taken = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "redirect":
            continue
        first, slash, _ = rule.rule.removesuffix("/").removeprefix("/").partition("/")
        if not slash:  # one segment (or "/foo/", which "/foo" is redirected to)
            if "<" in first:
                if looks_like_slug(_CONVERTER.sub("", first) or "x"):
                    return everything  # a pattern that may match a slug
                continue  # its fixed text has a character no slug has (`/<name>.json`)
            taken.add(first)
        elif "<" not in first:
            taken.add(first)  # not needed by werkzeug's matching, but never a doubt
    return frozenset(taken)


class _Everything(frozenset[str]):
    """Contains every string."""

    def __contains__(self, item: object) -> bool:
        return True


def make_follow(rt: LinkRuntime) -> Callable[[str], Response | tuple[str, int]]:
    return Redirects(rt).follow


def _no_form() -> Response:
    """A POST to a link that asks nothing."""
    page, status = render_error_page(405, "This link takes no answers.")
    return Response(page, status, headers={"Allow": "GET, HEAD"}, mimetype="text/html")


def init_app(app: Flask) -> None:
    redirects = Redirects(runtime(app))
    # Registered last, so /api/… and /static/… win over a slug of the same name. POST takes a
    # survey's answer.
    app.add_url_rule("/<slug>", "redirect", redirects.follow, methods=["GET", "HEAD", "POST"])
    app.wsgi_app = redirects.wsgi(app, app.wsgi_app)  # type: ignore[method-assign,assignment]
