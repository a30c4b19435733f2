"""The per-process services the factory builds, kept in app.extensions and read at the edges."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import Flask, current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from shortener.clicks import ClickSink
from shortener.resolver import LinkResolver
from shortener.settings import Settings

EXTENSION = "touchlink"


@dataclass(slots=True)
class Runtime:
    """The process's connections and services, built once by the factory."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: redis.Redis | None
    fast_redis: redis.Redis | None
    resolver: LinkResolver
    sink: ClickSink


def runtime(app: Flask | None = None) -> Runtime:
    rt: Runtime = (app or current_app).extensions[EXTENSION]
    return rt


def db_session() -> Session:
    """The request's session, opened on first use and closed when the request ends."""
    if "db_session" not in g:
        g.db_session = runtime().sessions()
    session: Session = g.db_session
    return session
