"""The per-process services the factory builds, kept in app.extensions and read at the edges."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, g, has_request_context, request
from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from shortener.clicks import ClickSink
from shortener.db import write_session
from shortener.resolver import LinkResolver
from shortener.settings import Settings

EXTENSION = "touchlink"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(slots=True)
class Runtime:
    """The process's connections and services, built once by the factory."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: Redis | None
    fast_redis: Redis | None
    resolver: LinkResolver
    sink: ClickSink


def runtime(app: Flask | None = None) -> Runtime:
    rt: Runtime = (app or current_app).extensions[EXTENSION]
    return rt


def db_session() -> Session:
    """The request's session, opened on first use and closed when the request ends.

    A request that may change data gets a write session (see `shortener.db.write_session`).
    """
    if "db_session" not in g:
        sessions = runtime().sessions
        reads_only = has_request_context() and request.method in SAFE_METHODS
        g.db_session = sessions() if reads_only else write_session(sessions)
    session: Session = g.db_session
    return session
