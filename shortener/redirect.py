"""The public redirect: resolve the slug (cached), hand the click to the sink, answer 30x."""

from __future__ import annotations

import logging
import time

from flask import Flask, request
from werkzeug.wrappers import Response

from shortener.clicks import OPT_OUT_PARAM, SCAN_PARAM, crop_click
from shortener.pages import render_error_page
from shortener.runtime import runtime
from shortener.slugs import looks_like_slug
from shortener.urls import build_location, is_safe_redirect_target, normalise_host

log = logging.getLogger(__name__)

_MARKERS = (SCAN_PARAM, OPT_OUT_PARAM)


def follow(slug: str) -> Response | tuple[str, int]:
    rt = runtime()
    if not looks_like_slug(slug):
        # Never a link, and never worth a cache entry or a query (PostgreSQL refuses NUL outright).
        return render_error_page(404, "There is no link at this address.")
    domain = _link_domain(request.host)
    target = rt.resolver.resolve(domain, slug)
    if target is None:
        return render_error_page(404, "There is no link at this address.")
    if not target.is_live(time.time()):
        return render_error_page(410, "This link has been retired by its owner.")
    if not is_safe_redirect_target(target.destination):
        # Stored destinations were validated on the way in; this guards rows written by hand.
        log.error("link %s has an unsafe destination; refusing to redirect", target.link_id)
        return render_error_page(410, "This link has been retired by its owner.")

    args = request.args
    forwarded = [(k, v) for k, v in args.items(multi=True) if k not in _MARKERS] if args else []
    utm = None
    if target.utm:
        utm = {"utm_source": target.touchpoint_key, "utm_medium": target.channel}
        if target.campaign:
            utm["utm_campaign"] = target.campaign
    location = build_location(target.destination, forwarded, utm)

    if request.method == "GET" and OPT_OUT_PARAM not in args:
        headers = request.headers
        rt.sink.emit(
            crop_click(
                link_id=target.link_id,
                touchpoint_id=target.touchpoint_id,
                stage_id=target.stage_id,
                ip=request.remote_addr or "",
                user_agent=headers.get("User-Agent", ""),
                referrer=headers.get("Referer", ""),
                language=headers.get("Accept-Language", ""),
                via_qr=SCAN_PARAM in args,
            )
        )
    # no-store: a browser that caches the redirect skips us on the next click, which goes uncounted.
    return Response(
        status=target.redirect_status,
        headers={"Location": location, "Cache-Control": "private, no-store"},
    )


def _link_domain(host: str) -> str:
    settings = runtime().settings
    if settings.short_domains:
        try:
            name = normalise_host(host)
        except ValueError:
            return settings.short_host  # a Host header no browser would send
        if name in settings.short_domains:
            return name
    return settings.short_host


def init_app(app: Flask) -> None:
    # Registered last, so /api/… and /static/… win over a slug of the same name.
    app.add_url_rule("/<slug>", "redirect", follow, methods=["GET", "HEAD"])
