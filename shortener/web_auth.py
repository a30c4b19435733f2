"""Signing in to the pages: cookie sessions, CSRF tokens, sign-in rate limits, security headers.

A session cookie authorises the pages only. The JSON API under /api/ reads bearer keys and never
looks at the session, so a browser that is signed in cannot be made to call it (no CSRF there).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

import redis
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import BadRequest, Forbidden
from werkzeug.wrappers import Response as BaseResponse

from shortener import users
from shortener.db import utcnow
from shortener.models import Role, User
from shortener.runtime import SAFE_METHODS, db_session, runtime

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

F = TypeVar("F", bound=Callable[..., Any])

SESSION_LIFETIME = timedelta(hours=12)
CSRF_FIELD = "csrf_token"
MAX_FAILURES = 5
FAILURE_WINDOW = 15 * 60  # seconds
LIMITER = "touchlink.signin_limiter"
NAV = "touchlink.nav"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "img-src 'self' data:",
        "style-src 'self'",
        "script-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


# --- who is signed in ----------------------------------------------------------------------------


def current_user() -> User | None:
    """The signed-in user of this request, if the session still matches their password."""
    if "user" not in g:
        g.user = None
        user_id = session.get("user_id")
        if isinstance(user_id, int):
            user = users.get_user(db_session(), user_id)
            token = session.get("auth")
            if (
                user is not None
                and isinstance(token, str)
                and hmac.compare_digest(token, users.session_token(user))
            ):
                g.user = user
    found: User | None = g.user
    return found


def signed_in(role: Role = Role.ANALYST) -> Callable[[F], F]:
    """A page for users whose role reaches `role`; others are sent to sign in, or refused."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                return redirect(url_for("auth.sign_in", next=_here()))
            if not Role(user.role).allows(role):
                raise Forbidden(
                    f"This page is for the {role.value} role and above; "
                    f"you are signed in as {user.role}."
                )
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def _here() -> str:
    query = request.query_string.decode("ascii", "replace")
    return f"{request.path}?{query}" if query else request.path


def safe_next(target: str | None) -> str | None:
    """A place on this site to go back to after signing in; None for anything off-site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


# --- the navigation, contributed by each package --------------------------------------------------


@dataclass(frozen=True, slots=True)
class NavItem:
    position: int
    endpoint: str
    label: str
    role: Role
    section: str  # the endpoints whose pages highlight this item start with this


def add_nav_item(
    app: Flask, endpoint: str, label: str, *, role: Role, position: int, section: str = ""
) -> None:
    """Put a page in the top navigation, for users whose role reaches `role`."""
    items: list[NavItem] = app.extensions.setdefault(NAV, [])
    items.append(NavItem(position, endpoint, label, role, section or endpoint))
    items.sort(key=lambda item: item.position)


def nav_items(user: User | None) -> list[NavItem]:
    if user is None:
        return []
    items: list[NavItem] = current_app.extensions.get(NAV, [])
    return [item for item in items if Role(user.role).allows(item.role)]


def landing_page(user: User) -> str:
    """Where a user goes after signing in: the first page of the navigation they may see."""
    items = nav_items(user)
    return url_for(items[0].endpoint) if items else url_for("auth.sign_in")


# --- CSRF --------------------------------------------------------------------------------------


def csrf_token() -> str:
    """The session's token, which every form sends back in a hidden field."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def _check_csrf() -> None:
    if request.method in SAFE_METHODS or request.path.startswith("/api/"):
        return
    if request.endpoint is None or request.endpoint == "static":
        return  # a 404 or 405 is answered as such
    sent = request.form.get(CSRF_FIELD, "")
    expected = session.get("csrf")
    if not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
        raise BadRequest(
            "This form has expired or did not come from this site. "
            "Go back, reload the page and send it again."
        )


# --- sign-in rate limit ---------------------------------------------------------------------------


class SignInLimiter:
    """Counts failed sign-ins per email address and per client IP over a window.

    In Redis when one is configured, so every web process sees the same counts; otherwise in this
    process's memory. A Redis that does not answer falls back to memory rather than lock people out.
    """

    def __init__(self, client: redis.Redis | None, *, limit: int, window: int) -> None:
        self._redis = client
        self.limit = limit
        self.window = window
        self._lock = threading.Lock()
        self._memory: dict[str, deque[float]] = {}

    def retry_after(self, keys: list[str]) -> int:
        """Seconds until another attempt is allowed for all of `keys`; 0 when allowed now."""
        wait = 0.0
        for key in keys:
            wait = max(wait, self._wait(key))
        return math.ceil(wait)

    def record_failure(self, keys: list[str]) -> None:
        for key in keys:
            self._add(key)

    def forget(self, key: str) -> None:
        if self._redis is not None:
            try:
                self._redis.delete(_redis_key(key))
                return
            except redis.RedisError as exc:
                log.warning("sign-in limiter: Redis unavailable (%s); using memory", exc)
        with self._lock:
            self._memory.pop(key, None)

    def _wait(self, key: str) -> float:
        if self._redis is not None:
            try:
                pipe = self._redis.pipeline(transaction=False)
                pipe.get(_redis_key(key))
                pipe.ttl(_redis_key(key))
                count, ttl = pipe.execute()
                return float(max(ttl, 1)) if count is not None and int(count) >= self.limit else 0
            except redis.RedisError as exc:
                log.warning("sign-in limiter: Redis unavailable (%s); using memory", exc)
        now = time.monotonic()
        with self._lock:
            times = self._recent(key, now)
            if len(times) < self.limit:
                return 0
            return times[-self.limit] + self.window - now

    def _add(self, key: str) -> None:
        if self._redis is not None:
            try:
                pipe = self._redis.pipeline(transaction=True)
                pipe.incr(_redis_key(key))
                # The window starts at the first failure; later failures do not extend it.
                pipe.expire(_redis_key(key), self.window, nx=True)
                pipe.execute()
                return
            except redis.RedisError as exc:
                log.warning("sign-in limiter: Redis unavailable (%s); using memory", exc)
        now = time.monotonic()
        with self._lock:
            times = self._recent(key, now)
            times.append(now)
            self._memory[key] = times

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._memory.get(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            self._memory.pop(key, None)
        return times


def _redis_key(key: str) -> str:
    # Hashed: neither addresses nor IPs are stored in Redis in the clear.
    return "touchlink:signin:" + hashlib.sha256(key.encode()).hexdigest()[:40]


def _limit_keys(email: str) -> list[str]:
    return [f"email:{email.strip().lower()[:320]}", f"ip:{request.remote_addr or ''}"]


def _limiter() -> SignInLimiter:
    limiter: SignInLimiter = current_app.extensions[LIMITER]
    return limiter


# --- views ---------------------------------------------------------------------------------------


@bp.route("/signin", methods=["GET", "POST"])
def sign_in() -> Any:
    next_page = safe_next(request.values.get("next"))
    user = current_user()
    if request.method == "GET":
        if user is not None:
            return redirect(next_page or landing_page(user))
        return render_template("signin.html", next=next_page, email="")
    email = request.form.get("email", "")
    password = request.form.get("password", "")
    keys = _limit_keys(email)
    wait = _limiter().retry_after(keys)
    if wait:
        minutes = max(1, math.ceil(wait / 60))
        message = (
            "Too many failed sign-in attempts. "
            f"Wait {minutes} minute{'s' if minutes > 1 else ''} and try again."
        )
        page = render_template("signin.html", next=next_page, email=email, error=message)
        return page, 429, {"Retry-After": str(wait)}
    db = db_session()
    try:
        user = users.authenticate_user(db, email, password, now=utcnow())
    except users.SignInError as exc:
        db.rollback()
        _limiter().record_failure(keys)
        page = render_template("signin.html", next=next_page, email=email, error=exc.message)
        return page, 401
    db.commit()
    _limiter().forget(keys[0])
    session.clear()  # nothing from before signing in carries over, the CSRF token included
    session.permanent = True
    session["user_id"] = user.id
    session["auth"] = users.session_token(user)
    return redirect(next_page or landing_page(user))


@bp.post("/signout")
def sign_out() -> BaseResponse:
    session.clear()
    return redirect(url_for("auth.sign_in"))


@bp.get("/")
def home() -> BaseResponse:
    user = current_user()
    return redirect(landing_page(user) if user is not None else url_for("auth.sign_in"))


# --- wiring ---------------------------------------------------------------------------------------


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.endpoint == "redirect" and response.status_code < 400:
        return response  # a bare 30x: kept as lean as it is
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("Referrer-Policy", "same-origin")
    if "user" in g and g.user is not None and "Cache-Control" not in headers:
        headers["Cache-Control"] = "private, no-store"  # pages of signed-in users stay private
    return response


def _template_globals() -> dict[str, Any]:
    try:
        user = current_user()
    except SQLAlchemyError:
        user = None  # an error page must still render while the database is away
    return {"current_user": user, "nav_items": nav_items(user), "csrf_token": csrf_token}


def init_app(app: Flask) -> None:
    app.config.update(
        SESSION_COOKIE_NAME="touchlink_session",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    app.extensions[LIMITER] = SignInLimiter(
        runtime(app).redis, limit=MAX_FAILURES, window=FAILURE_WINDOW
    )
    app.before_request(_check_csrf)
    app.after_request(_security_headers)
    app.context_processor(_template_globals)
    app.register_blueprint(bp)
