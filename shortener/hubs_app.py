"""The hubs' part of the app: their API, pages, public avatar and commands. Their page at the
short URL is the redirect's (`shortener.hubs_public.Hubs`)."""

from __future__ import annotations

from flask import Flask

from shortener import hubs_api, hubs_cli, hubs_pages, hubs_public


def init_app(app: Flask) -> None:
    app.register_blueprint(hubs_api.bp)
    app.register_blueprint(hubs_public.bp)
    hubs_pages.init_app(app)
    hubs_cli.init_app(app)
