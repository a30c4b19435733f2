"""The link side's part of the app: its views, pages, hooks and commands, over a runtime built by
the composition root (`wsgi.create_app`)."""

from __future__ import annotations

from flask import Flask

from shortener import (
    account_pages,
    api,
    cli,
    csrf,
    domains_api,
    domains_cli,
    domains_pages,
    error_pages,
    hubs_app,
    import_cli,
    import_pages,
    openapi,
    pages,
    print_cli,
    print_pages,
    redirect,
    security_headers,
    signin,
    template_filters,
    unit_of_work,
    webhooks_api,
    webhooks_pages,
)
from shortener.cookie_sessions import LazySessionInterface
from shortener.input_guard import BoundedIntegerConverter, CheckedRequest
from shortener.runtime import EXTENSION, LinkRuntime


def init_app(app: Flask, rt: LinkRuntime) -> None:
    settings = rt.settings
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        JSON_SORT_KEYS=False,
    )
    app.extensions[EXTENSION] = rt
    app.request_class = CheckedRequest  # no NUL or lone surrogate in any parameter or field
    app.url_map.converters["int"] = BoundedIntegerConverter  # before any route takes one
    app.session_interface = LazySessionInterface()
    unit_of_work.init_app(app)
    error_pages.init_app(app)
    template_filters.init_app(app)
    csrf.init_app(app)
    security_headers.init_app(app)
    signin.init_app(app)
    account_pages.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(openapi.bp)
    domains_api.init_app(app)
    webhooks_api.init_app(app)
    webhooks_pages.init_app(app)
    domains_pages.init_app(app)
    pages.init_app(app)
    print_pages.init_app(app)
    hubs_app.init_app(app)
    import_pages.init_app(app)
    redirect.init_app(app)
    cli.init_app(app)
    import_cli.init_app(app)
    domains_cli.init_app(app)
    print_cli.init_app(app)
