"""The public redirect: resolve the slug (cached), hand the click to the sink, answer 30x; a link
that asks a survey shows its question to people instead (`shortener.survey`).

This is the hot path: for a cached link it makes no network round trip at all, reads the WSGI
environ directly, and answers with a Location worked out when the link was cached whenever the
click carries no query string of its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request

from shortener.clicks import OPT_OUT_PARAM, SCAN_PARAM, RawClick, crop_click
from shortener.error_pages import render_error_page
from shortener.outcomes import CLICK_PARAM
from shortener.runtime import LinkRuntime, runtime
from shortener.slugs import looks_like_slug
from shortener.survey import Surveys
from shortener.urls import build_location, normalise_host

log = logging.getLogger(__name__)

NO_LINK = "There is no link at this address."
# no-store: a browser that caches the redirect skips us on the next click, which goes uncounted.
_CACHE_CONTROL = "private, no-store"


class _Redirect(Response):
    """A body-less redirect whose Location is already ASCII (destinations are stored in that
    form and what we append is URL-encoded), so werkzeug's per-response IRI pass is skipped."""

    def get_wsgi_headers(self, environ: Any) -> Any:
        return self.headers


def make_follow(rt: LinkRuntime) -> Callable[[str], Response | tuple[str, int]]:
    settings = rt.settings
    resolver = rt.resolver
    journeys = rt.journeys
    tokens = rt.click_tokens
    surveys = Surveys(rt)
    default_domain = settings.short_host

    def follow(slug: str) -> Response | tuple[str, int]:
        if not looks_like_slug(slug):
            # Never a link, and never worth a cache entry or a query (PostgreSQL refuses NUL).
            return render_error_page(404, NO_LINK, title="Link not found")
        environ = request.environ
        domain = default_domain
        if settings.short_domains:
            domain = _branded_domain(environ.get("HTTP_HOST", ""), settings.short_domains, domain)
        target = resolver.resolve(domain, slug)
        if target is None:
            return render_error_page(404, NO_LINK, title="Link not found")
        if not target.is_live(time.time()):
            return render_error_page(410, "This link has been retired by its owner.")
        if not target.safe:
            log.error("link %s has an unsafe destination; refusing to redirect", target.link_id)
            return render_error_page(410, "This link has been retired by its owner.")

        via_qr = counted = False
        location = target.location
        forwarded: list[tuple[str, str]] = []
        if environ.get("QUERY_STRING"):
            args = request.args
            # Only `qr=1` marks a scan; any other `qr` is the customer's own, forwarded as is.
            via_qr = "1" in args.getlist(SCAN_PARAM)
            counted = OPT_OUT_PARAM not in args
            forwarded = [
                (k, v)
                for k, v in args.items(multi=True)
                if k != OPT_OUT_PARAM and not (k == SCAN_PARAM and v == "1")
            ]
            if forwarded:
                location = build_location(target.destination, forwarded, target.utm_params)
        else:
            counted = True
        set_cookie = None
        click: RawClick | None = None
        if counted and environ["REQUEST_METHOD"] == "GET":
            journey, set_cookie = journeys.journey(environ)
            click = crop_click(
                link_id=target.link_id,
                touchpoint_id=target.touchpoint_id,
                stage_id=target.stage_id,
                ip=environ.get("REMOTE_ADDR") or "",
                user_agent=environ.get("HTTP_USER_AGENT", ""),
                referrer=environ.get("HTTP_REFERER", ""),
                language=environ.get("HTTP_ACCEPT_LANGUAGE", ""),
                via_qr=via_qr,
                journey=journey,
            )
            rt.sink.emit(click)
            if target.track_conversions:
                # Like a UTM parameter: never overrides a tl_click the URL already carries.
                token = tokens.sign(click.click_id, target.link_id)
                params = {**(target.utm_params or {}), CLICK_PARAM: token}
                location = build_location(target.destination, forwarded, params)
        elif environ["REQUEST_METHOD"] == "POST" and target.survey_kind is None:
            return _no_form()
        if target.survey_kind is not None:
            # Counted as above; the survey page (or the plain redirect, for bots) answers.
            page = surveys.respond(
                target, environ, forwarded=forwarded, set_cookie=set_cookie, click=click
            )
            if page is not None:
                return page
        response = _Redirect if location.isascii() else Response
        headers = {"Location": location, "Cache-Control": _CACHE_CONTROL, "Content-Length": "0"}
        if set_cookie is not None:
            headers["Set-Cookie"] = set_cookie
        return response(status=target.redirect_status, headers=headers)

    return follow


def _no_form() -> Response:
    """A POST to a link that asks nothing."""
    page, status = render_error_page(405, "This link takes no answers.")
    return Response(page, status, headers={"Allow": "GET, HEAD"}, mimetype="text/html")


def _branded_domain(host: str, branded: tuple[str, ...], default: str) -> str:
    try:
        name = normalise_host(host)
    except ValueError:
        return default  # a Host header no browser would send
    return name if name in branded else default


def init_app(app: Flask) -> None:
    # Registered last, so /api/… and /static/… win over a slug of the same name. POST takes a
    # survey's answer.
    app.add_url_rule(
        "/<slug>", "redirect", make_follow(runtime(app)), methods=["GET", "HEAD", "POST"]
    )
