"""CSRF tokens: every form of the pages sends back the session's token in a hidden field.

The JSON API under /api/ takes bearer keys and never a session, so it needs none; nor does a
survey's answer (`shortener.survey`): customers have no session, and its form carries a signed
token of its own.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, request, session

from shortener.errors import CsrfError
from shortener.unit_of_work import SAFE_METHODS

CSRF_FIELD = "csrf_token"
# Endpoints whose forms are checked by a token of their own rather than the session's.
OWN_TOKENS = frozenset({"redirect"})


def csrf_token() -> str:
    """The session's token, which every form sends back in a hidden field."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    if request.method in SAFE_METHODS or request.path.startswith("/api/"):
        return
    if request.endpoint is None or request.endpoint == "static":
        return  # a 404 or 405 is answered as such
    if request.endpoint in OWN_TOKENS:
        return
    sent = request.form.get(CSRF_FIELD, "")
    expected = session.get("csrf")
    if not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
        raise CsrfError()


def init_app(app: Flask) -> None:
    app.before_request(check_csrf)
