"""API keys: created once, shown once, stored as a hash, checked on every API request."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from shortener import schemas
from shortener.errors import (
    AuthenticationError,
    ConflictError,
    InvalidFieldError,
    NotFoundError,
)
from shortener.models import MAX_ID, ApiKey, Role

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
        roles = ", ".join(role.value for role in Role)
        raise InvalidFieldError("role", f"must be one of {roles}") from None


class KeyName(schemas.Body):
    name: schemas.Text


def create_key(session: Session, *, name: str, role: Role) -> tuple[ApiKey, str]:
    """A new key and its raw value, which is never stored and cannot be shown again."""
    name = schemas.validate_body(KeyName, {"name": name}).name
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, role=role.value, prefix=raw[:10], key_hash=hash_key(raw))
    session.add(key)
    session.flush()
    return key, raw


def list_keys(session: Session) -> Sequence[ApiKey]:
    return session.scalars(select(ApiKey).order_by(ApiKey.id)).all()


def revoke_key(session: Session, key_id_or_prefix: str, *, now: datetime) -> ApiKey:
    """Revoke the key with this id or prefix (or the whole key, which starts with its prefix)."""
    query = select(ApiKey)
    if key_id_or_prefix.isascii() and key_id_or_prefix.isdigit():
        key_id = int(key_id_or_prefix) if len(key_id_or_prefix) <= 10 else 0
        query = query.where(ApiKey.id == (key_id if key_id <= MAX_ID else 0))
    else:
        query = query.where(ApiKey.prefix == key_id_or_prefix[:10])
    found = session.scalars(query.limit(2)).all()
    if not found:
        raise NotFoundError(f"No API key {key_id_or_prefix!r}.")
    if len(found) > 1:
        # Prefixes are short and random: two keys may share one. Never guess which to revoke.
        raise ConflictError(
            f"More than one key starts with {key_id_or_prefix[:10]!r}; revoke it by its id."
        )
    [key] = found
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
    return key


def use_due(key: ApiKey, *, now: datetime) -> bool:
    """Whether `last_used_at` is due a new stamp (at most one per LAST_USED_RESOLUTION)."""
    return key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION


def record_use(session: Session, key: ApiKey, *, now: datetime) -> None:
    """Stamp `last_used_at`, at most once per LAST_USED_RESOLUTION.

    One conditional UPDATE and nothing read before it in its transaction, so that concurrent
    requests with the same key neither wait on each other for long nor fail on SQLite.
    """
    if not use_due(key, now=now):
        return
    session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key.id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - LAST_USED_RESOLUTION),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
