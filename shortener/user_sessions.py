"""Signed-in sessions kept on the server: the cookie carries a random token, SQL its SHA-256
(a stolen database opens no session), so that signing out ends the session for every copy of
the cookie, and each lasts a fixed time however often the cookie is replayed."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shortener.models import User, UserSession


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def open_session(session: Session, user: User, *, now: datetime, lifetime: timedelta) -> str:
    """A new session of `user`: the token for the cookie. Sessions past their time go."""
    session.execute(delete(UserSession).where(UserSession.expires_at <= now))
    token = secrets.token_urlsafe(32)
    session.add(UserSession(token_hash=_hash(token), user_id=user.id, expires_at=now + lifetime))
    session.flush()
    return token


def user_id_of(session: Session, token: str, *, now: datetime) -> int | None:
    """The user whose live session `token` opens, if any."""
    return session.scalar(
        select(UserSession.user_id).where(
            UserSession.token_hash == _hash(token), UserSession.expires_at > now
        )
    )


def close_session(session: Session, token: str) -> None:
    session.execute(delete(UserSession).where(UserSession.token_hash == _hash(token)))
