"""What customers see of a hub: its page, shown at the hub's short URL instead of a redirect,
and its avatar.

The redirect counts the visit as a click of the hub's link (bots flagged, DNT honoured, the
journey cookie set, as for any click), then hands over to `Hubs.page_for`. Each button is the
short URL of its own link, so a tap on it is a click of that link, through the redirect too.

The page is the same for everyone, so it is rendered once per cached target: the link cache
(`shortener.resolver`) drops a target in every process when the hub changes, and the page goes
with it. A page for a target still cached is served when SQL is down, as its redirect would be.
The CSS is inline, allowed by its hash in the page's Content-Security-Policy: the page is one
request, and runs no script.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from dataclasses import dataclass

from flask import Blueprint, Response, render_template
from markupsafe import Markup
from sqlalchemy import select

from shortener.error_pages import render_error_page
from shortener.errors import NotFoundError
from shortener.hubs import avatar_path, find_hub_of_link
from shortener.hubs_avatar import extension
from shortener.links import short_url
from shortener.models import MAX_ID, Hub
from shortener.resolver import Target
from shortener.runtime import LinkRuntime
from shortener.unit_of_work import db_session

bp = Blueprint("hub_public", __name__)

MAX_CACHED_PAGES = 2_000
AVATAR_CACHE = "public, max-age=31536000, immutable"  # a new avatar has a new URL
GONE = "This page is no longer available. Thank you for your interest."

CSS = (
    "*{box-sizing:border-box}"
    "body{margin:0;font:16px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
    "color:#1c1c1e;background:#f4f4f6}"
    ".hub{max-width:480px;margin:0 auto;padding:32px 16px 48px;text-align:center}"
    ".avatar{width:96px;height:96px;border-radius:50%;object-fit:cover;"
    "background:#ddd;display:block;margin:0 auto 12px}"
    "h1{font-size:1.35rem;margin:0 0 6px;overflow-wrap:anywhere}"
    ".about{margin:0 0 20px;color:#555;overflow-wrap:anywhere}"
    "ul{list-style:none;margin:24px 0 0;padding:0}"
    "li{margin:0 0 12px}"
    ".button{display:block;padding:14px 16px;border-radius:12px;background:#fff;"
    "color:#1c1c1e;text-decoration:none;font-weight:600;border:1px solid #d8d8de;"
    "overflow-wrap:anywhere}"
    ".button:hover,.button:focus{border-color:#1c1c1e}"
    ".empty{color:#777}"
    "@media (prefers-color-scheme:dark){body{background:#111;color:#eee}"
    ".button{background:#1f1f22;color:#eee;border-color:#3a3a3f}"
    ".button:hover,.button:focus{border-color:#eee}.about{color:#aaa}}"
)
_CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "img-src 'self'",
        f"style-src 'sha256-{_CSS_HASH}'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # Each button's click then names the hub as its referrer; the destinations get none.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "private, no-store",  # each view counts
}


@dataclass(frozen=True, slots=True)
class _Button:
    label: str
    url: str


class Hubs:
    """The hub side of the redirect, built once per process (`redirect.Redirects`)."""

    def __init__(self, rt: LinkRuntime) -> None:
        self._rt = rt
        self._scheme = rt.settings.scheme
        # link id → (the target the page was rendered for, the page, or None: no hub)
        self._pages: dict[int, tuple[Target, str | None]] = {}
        self._lock = threading.Lock()

    def page_for(self, target: Target, *, set_cookie: str | None = None) -> Response:
        """The page of the hub whose link is `target` (already counted by the redirect), with
        the journey cookie the click set."""
        cached = self._pages.get(target.link_id)
        if cached is not None and cached[0] is target:
            page = cached[1]
        else:
            page = self._render(target)
            with self._lock:
                if len(self._pages) >= MAX_CACHED_PAGES:
                    self._pages.clear()
                self._pages[target.link_id] = (target, page)
        if page is None:
            body, status = render_error_page(410, GONE, title="This page has ended", customer=True)
            return Response(body, status, mimetype="text/html")
        response = Response(page, 200, headers=_PAGE_HEADERS, mimetype="text/html")
        if set_cookie is not None:
            response.headers["Set-Cookie"] = set_cookie
        return response

    def _render(self, target: Target) -> str | None:
        now = time.time()
        with self._rt.sessions() as session:
            hub = find_hub_of_link(session, target.link_id)
            if hub is None or hub.archived:
                return None
            buttons = [
                _Button(button.label, short_url(button.link, scheme=self._scheme))
                for button in hub.buttons
                if not button.link.archived
                and (button.link.expires_at is None or button.link.expires_at.timestamp() > now)
            ]
            return render_template(
                "hub_page.html",
                title=hub.title,
                description=hub.description,
                avatar=avatar_path(hub),
                buttons=buttons,
                css=Markup(CSS),  # noqa: S704 (our own constant, hashed in the policy)
            )


@bp.get("/links/hubs/<int:hub_id>/avatar/<digest>.<ext>")
def avatar(hub_id: int, digest: str, ext: str) -> Response:
    """The avatar under its digest, cached for good; 404 once it is replaced or the hub retired."""
    row = None
    if 0 < hub_id <= MAX_ID:
        row = db_session().execute(
            select(Hub.avatar, Hub.avatar_type, Hub.avatar_digest).where(
                Hub.id == hub_id, Hub.archived.is_(False)
            )
        ).one_or_none()
    if row is None or row.avatar is None or row.avatar_type is None:
        raise NotFoundError("There is no such picture.")
    if row.avatar_digest != digest or extension(row.avatar_type) != ext:
        raise NotFoundError("There is no such picture.")
    return Response(
        row.avatar,
        mimetype=row.avatar_type,
        headers={"Cache-Control": AVATAR_CACHE, "ETag": f'"{digest}"'},
    )
