"""One transaction per edge: a request, a command and an ingest batch each own one unit of work.

Services flush and never commit. What they change that the link cache must forget, they record on
the session (`link_changed`); one after-commit hook, installed by the factory, publishes those
invalidations to every process, and a rollback forgets them. Commands and the worker commit through
`transaction`; a request commits at its end when its answer is a success (`finish_request`), and
rolls back when it is an error, so a refused form or a failed call leaves nothing half-written.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from flask import Flask, g, has_request_context, request
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker
from werkzeug.wrappers import Response

from shortener.db import write_session
from shortener.runtime import runtime

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CHANGED_LINKS = "touchlink.changed_links"


class LinkCache(Protocol):
    def invalidate(self, domain: str, slug: str) -> None: ...


def link_changed(session: Session, domain: str, slug: str) -> None:
    """Record that `(domain, slug)` resolves differently once this unit of work commits."""
    session.info.setdefault(_CHANGED_LINKS, set()).add((domain, slug))


def publish_changes_after_commit(sessions: sessionmaker[Session], cache: LinkCache) -> None:
    """After each commit of a session of `sessions`, make every process forget the links it
    changed; a rolled-back unit of work publishes nothing."""

    def publish(session: Session) -> None:
        for domain, slug in sorted(session.info.pop(_CHANGED_LINKS, ())):
            cache.invalidate(domain, slug)

    def forget(session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None:  # the unit of work ended; a savepoint's end is not that
            session.info.pop(_CHANGED_LINKS, None)

    event.listen(sessions, "after_commit", publish)
    event.listen(sessions, "after_transaction_end", forget)


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work that writes: committed when the block ends, rolled back if it raises."""
    with write_session(sessions) as session, session.begin():
        yield session


# --- the request's unit of work ------------------------------------------------------------------


def db_session() -> Session:
    """The request's session, opened on first use; a request that may change data gets a write
    session (see `shortener.db.write_session`)."""
    if "db_session" not in g:
        sessions = runtime().sessions
        reads_only = has_request_context() and request.method in SAFE_METHODS
        g.db_session = sessions() if reads_only else write_session(sessions)
    session: Session = g.db_session
    return session


def reading_session() -> Session:
    """The request's session, opened without the write lock even on a POST: for a view that
    only reads and hands its writes to a unit of work of their own (a sink storing an outcome),
    which on SQLite would otherwise wait in vain behind this request's lock."""
    if "db_session" not in g:
        g.db_session = runtime().sessions()
    session: Session = g.db_session
    return session


def report_session() -> Session:
    """The request's session for reports: on the reports database when there is one (a
    streaming replica, which only reads), else the request's own."""
    rt = runtime()
    if rt.report_sessions is rt.sessions:
        return db_session()
    if "report_session" not in g:
        g.report_session = rt.report_sessions()
    session: Session = g.report_session
    return session


def finish_request(response: Response) -> Response:
    """Commit the request's work when the answer is a success; roll it back on an error."""
    _close_report_session()
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        with session:
            if response.status_code < 400:
                session.commit()
            else:
                session.rollback()
    return response


def rollback_request() -> None:
    """Undo what the request has done so far (a refused form is shown again as stored)."""
    for name in ("db_session", "report_session"):
        session: Session | None = g.get(name)
        if session is not None:
            session.rollback()


def _close_report_session() -> None:
    session: Session | None = g.pop("report_session", None)
    if session is not None:
        session.close()  # it only read: nothing to commit


def _close_request_session(_exc: BaseException | None) -> None:
    _close_report_session()
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.close()


def init_app(app: Flask) -> None:
    app.after_request(finish_request)
    # A request that never reached its after_request (an error in another hook) still lets go.
    app.teardown_appcontext(_close_request_session)
