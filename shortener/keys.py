"""API keys: created once, shown once, stored as a hash, checked on every API request."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from shortener.errors import AuthenticationError, InvalidFieldError, NotFoundError
from shortener.models import ApiKey, Role

KEY_PREFIX = "tl_"
# Writing last_used_at on every request would turn each read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_key(raw: str) -> str:
    # Keys are 256-bit random tokens, not passwords: a fast hash is enough and keeps lookups cheap.
    return hashlib.sha256(raw.encode()).hexdigest()


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidFieldError("role", f"must be one of {', '.join(r.value for r in Role)}") from None


def create_key(session: Session, *, name: str, role: Role) -> tuple[ApiKey, str]:
    """A new key and its raw value, which is never stored and cannot be shown again."""
    if not name.strip():
        raise InvalidFieldError("name", "must not be blank")
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name.strip(), role=role.value, prefix=raw[:10], key_hash=hash_key(raw))
    session.add(key)
    session.flush()
    return key, raw


def list_keys(session: Session) -> Sequence[ApiKey]:
    return session.scalars(select(ApiKey).order_by(ApiKey.id)).all()


def revoke_key(session: Session, key_id_or_prefix: str, *, now: datetime) -> ApiKey:
    query = select(ApiKey)
    if key_id_or_prefix.isdigit():
        query = query.where(ApiKey.id == int(key_id_or_prefix))
    else:
        query = query.where(ApiKey.prefix == key_id_or_prefix[:10])
    key = session.scalars(query).first()
    if key is None:
        raise NotFoundError(f"No API key {key_id_or_prefix!r}.")
    if key.revoked_at is None:
        key.revoked_at = now
        session.flush()
    return key


def authenticate(session: Session, authorization: str | None, *, now: datetime) -> ApiKey:
    """The key behind an `Authorization: Bearer …` header, or a 401."""
    scheme, _, raw = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise AuthenticationError("Send an API key as 'Authorization: Bearer <key>'.")
    key = session.scalars(select(ApiKey).where(ApiKey.key_hash == hash_key(raw.strip()))).first()
    if key is None or key.revoked_at is not None:
        raise AuthenticationError("This API key is not valid or has been revoked.")
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        key.last_used_at = now
        session.flush()
    return key
