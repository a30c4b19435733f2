"""Flask's signed-cookie sessions, without their cost on requests that carry no cookie.

Flask opens a session for every request, building a fresh signing serializer each time: about a
fifth of the cost of answering a bare redirect. A customer following a short link sends no
session cookie, so the session opens empty without any signing work, and the serializer is
built once per process for the requests that do carry one.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface


class LazySessionInterface(SecureCookieSessionInterface):
    def __init__(self) -> None:
        self._serializer: Any = None
        self._secret: Any = None

    def get_signing_serializer(self, app: Flask) -> Any:
        if self._serializer is None or self._secret != app.secret_key:
            self._serializer = super().get_signing_serializer(app)
            self._secret = app.secret_key
        return self._serializer

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if "HTTP_COOKIE" not in request.environ:
            return self.session_class()
        return super().open_session(app, request)
