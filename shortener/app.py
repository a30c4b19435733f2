"""The link side's application factory and the per-process services it keeps in app.extensions."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import redis
from flask import Flask, current_app, g, request
from werkzeug.exceptions import HTTPException

from shortener import api, cli, marketer, pages, redirect, web_auth
from shortener.clicks import ClickSink
from shortener.db import make_engine, make_sessionmaker
from shortener.errors import DomainError, error_body
from shortener.pages import render_error_page
from shortener.resolver import LinkResolver
from shortener.runtime import EXTENSION, Runtime
from shortener.sessions import LazySessionInterface
from shortener.settings import Settings

MAX_BODY = 1024 * 1024

# The redirect path must not hang on a sick Redis: it gives up after this and falls back.
HOT_PATH_REDIS_TIMEOUT = 0.05


def create_app(
    settings: Settings,
    *,
    make_sink: Callable[[Runtime], ClickSink],
    bind: Any = None,
) -> Flask:
    """Build the app; `bind` (an Engine or Connection) replaces the configured database in tests."""
    app = Flask("shortener", instance_relative_config=True)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=MAX_BODY,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        JSON_SORT_KEYS=False,
    )
    logging.getLogger("shortener").setLevel(settings.log_level)
    logging.getLogger("analytics").setLevel(settings.log_level)

    engine = bind.engine if bind is not None else make_engine(settings.database_url)
    sessions = make_sessionmaker(bind if bind is not None else engine)
    client = fast = None
    if settings.redis_url:
        client = redis.Redis.from_url(
            settings.redis_url, socket_connect_timeout=2, socket_timeout=5
        )
        fast = redis.Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=HOT_PATH_REDIS_TIMEOUT,
            socket_timeout=HOT_PATH_REDIS_TIMEOUT,
        )
    resolver = LinkResolver(
        sessions,
        fast,
        subscriber=redis.Redis.from_url(settings.redis_url) if settings.redis_url else None,
        ttl=settings.cache_ttl,
    )
    rt = Runtime(settings, engine, sessions, client, fast, resolver, sink=_NoSink())
    app.extensions[EXTENSION] = rt
    rt.sink = make_sink(rt)

    app.session_interface = LazySessionInterface()
    app.teardown_appcontext(_close_session)
    _register_error_handlers(app)
    app.register_blueprint(api.bp)
    pages.init_app(app)
    web_auth.init_app(app)
    marketer.init_app(app)
    redirect.init_app(app)
    cli.init_app(app)
    return app


class _NoSink:
    def emit(self, click: object) -> None:
        raise RuntimeError("no click sink wired in yet")

    def close(self) -> None:
        pass


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError) -> tuple[Any, int, dict[str, str]]:
        if _wants_json():
            return exc.to_json(), exc.status, exc.headers()
        page, status = render_error_page(exc.status, exc.message)
        return page, status, exc.headers()

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        if not _wants_json():
            return render_error_page(status, exc.description or "")
        code = (exc.name or "error").lower().replace(" ", "_")
        if status == 413:
            message = f"The request body is larger than {MAX_BODY // 1024} KiB."
        else:
            message = exc.description or exc.name
        response = exc.get_response()  # keeps headers such as Allow on a 405
        response.set_data(current_app.json.dumps(error_body(code, message)))
        response.mimetype = "application/json"
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if _wants_json():
            return error_body("internal_error", "Something went wrong."), 500
        return render_error_page(500, "Something went wrong.")
