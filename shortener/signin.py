"""Signing in to the pages: who is signed in, the pages that need it, and the sign-in views.

A session cookie authorises the pages only. The JSON API under /api/ reads bearer keys and never
looks at the session, so a browser that is signed in cannot be made to call it (no CSRF there).
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Blueprint, Flask, g, redirect, render_template, request, session, url_for
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response as BaseResponse

from shortener import user_sessions, users
from shortener.csrf import csrf_token
from shortener.db import utcnow
from shortener.errors import PermissionDeniedError, SignInError
from shortener.models import Role, User
from shortener.nav import landing_page, nav_items
from shortener.runtime import runtime
from shortener.unit_of_work import db_session

bp = Blueprint("auth", __name__)

F = TypeVar("F", bound=Callable[..., Any])

SESSION_LIFETIME = timedelta(hours=12)


def current_user() -> User | None:
    """The signed-in user of this request, if the session still matches their password."""
    if "user" not in g:
        g.user = None
        user_id, sid = session.get("user_id"), session.get("sid")
        if (
            isinstance(user_id, int)
            and isinstance(sid, str)
            and user_sessions.user_id_of(db_session(), sid, now=utcnow()) == user_id
        ):
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
                raise PermissionDeniedError(
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
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in target):
        return None  # CR and LF would split the Location header; a tab hides a scheme
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def _limit_keys(email: str) -> list[str]:
    return [f"email:{email.strip().lower()[:320]}", f"ip:{request.remote_addr or ''}"]


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
    limiter = runtime().signin_limiter
    wait = limiter.retry_after(keys)
    if wait:
        minutes = max(1, math.ceil(wait / 60))
        message = (
            "Too many failed sign-in attempts. "
            f"Wait {minutes} minute{'s' if minutes > 1 else ''} and try again."
        )
        page = render_template("signin.html", next=next_page, email=email, error=message)
        return page, 429, {"Retry-After": str(wait)}
    try:
        user = users.authenticate_user(db_session(), email, password, now=utcnow())
    except SignInError as exc:
        limiter.record_failure(keys)
        page = render_template("signin.html", next=next_page, email=email, error=exc.message)
        return page, exc.status
    limiter.forget(keys[0])
    session.clear()  # nothing from before signing in carries over, the CSRF token included
    session.permanent = True
    session["user_id"] = user.id
    session["auth"] = users.session_token(user)
    session["sid"] = user_sessions.open_session(
        db_session(), user, now=utcnow(), lifetime=SESSION_LIFETIME
    )
    return redirect(next_page or landing_page(user))


@bp.post("/signout")
def sign_out() -> BaseResponse:
    sid = session.get("sid")
    if isinstance(sid, str):
        user_sessions.close_session(db_session(), sid)  # a copy of the cookie opens nothing now
    session.clear()
    return redirect(url_for("auth.sign_in"))


@bp.get("/")
def home() -> BaseResponse:
    user = current_user()
    return redirect(landing_page(user) if user is not None else url_for("auth.sign_in"))


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
    app.context_processor(_template_globals)
    app.register_blueprint(bp)
