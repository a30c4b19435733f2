"""The long-lived parts of a process, built once by the composition root (`wsgi.create_app`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from shortener.journey_cookie import JourneyCapture
from shortener.outcomes import ClickTokens
from shortener.ports import ClickFigures, ClickSink
from shortener.redis_client import Client
from shortener.resolver import LinkResolver
from shortener.settings import Settings
from shortener.signin_limiter import SignInLimiter

if TYPE_CHECKING:
    from shortener.domains import DomainMap  # which imports the unit of work, which imports us

EXTENSION = "touchlink"


@dataclass(frozen=True, slots=True)
class LinkRuntime:
    """What the link side needs: settings, the database, Redis, the link cache and the ports the
    click side implements for it. Frozen: nothing is swapped in after construction."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    report_sessions: sessionmaker[Session]  # the reports' reads: a replica's, or `sessions`
    redis: Client | None  # for work off the redirect path
    fast_redis: Client | None  # the redirect's, with short timeouts
    resolver: LinkResolver
    domains: DomainMap  # the redirect's: which domain a request's Host names
    signin_limiter: SignInLimiter
    journeys: JourneyCapture
    is_bot: Callable[[str], bool]  # the click side's (cached) reading of a user agent
    click_tokens: ClickTokens
    sink: ClickSink
    figures: ClickFigures

    def own_hosts(self) -> tuple[str, ...]:
        """Our own hosts, configured and added as domains: a destination pointing at one would
        loop through the redirect."""
        return (*self.settings.own_hosts, *self.domains.hostnames())

    def close(self) -> None:
        """Hand on queued clicks and let go of the connections (the engine is the caller's)."""
        self.sink.close()
        self.resolver.close()
        if self.report_sessions is not self.sessions:
            self.report_sessions.kw["bind"].dispose()
        for client in (self.redis, self.fast_redis):
            if client is not None:
                client.close()


def runtime(app: Flask | None = None) -> LinkRuntime:
    rt: LinkRuntime = (app or current_app).extensions[EXTENSION]
    return rt
