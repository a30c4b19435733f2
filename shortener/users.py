"""People who sign in to the pages: an email, a role and a password stored as an Argon2id hash.

The JSON API never accepts a user's session; it takes API keys only (see `shortener.keys`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shortener.db import add_unique
from shortener.errors import ConflictError, InvalidFieldError, NotFoundError, SignInError
from shortener.models import MAX_ID, USER_ROLES, Role, User

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
MAX_EMAIL_LENGTH = 254

# OWASP's baseline for Argon2id (19 MiB, two passes, one lane): about 0.1 s per sign-in on a
# small server, which keeps a stolen table expensive to crack without making sign-in slow.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

# Deliberately loose: the address is an identifier, not something we send mail to.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def normalise_email(raw: str) -> str:
    """The stored form of an address: trimmed and lowercased; InvalidFieldError if not one."""
    email = raw.strip().lower()
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(email):
        raise InvalidFieldError("email", "must be an email address like ana@example.com")
    return email


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidFieldError(
            "password", f"must be at least {MIN_PASSWORD_LENGTH} characters long"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidFieldError(
            "password", f"must be at most {MAX_PASSWORD_LENGTH} characters long"
        )
    return password


def create_user(session: Session, *, email: str, role: Role, password: str) -> User:
    """Add a user; an address already in use (in any letter case) is a 409."""
    if role not in USER_ROLES:
        raise InvalidFieldError("role", "tracker is a role for API keys, not for people")
    address = normalise_email(email)
    user = User(email=address, role=role.value, password_hash=HASHER.hash(check_password(password)))
    add_unique(
        session,
        user,
        lambda: ConflictError(
            f"A user with the email address {address} exists already.", details={"field": "email"}
        ),
    )
    return user


def set_password(session: Session, email: str, password: str) -> User:
    """Replace a user's password; every session signed in with the old one ends."""
    user = find_user(session, email)
    user.password_hash = HASHER.hash(check_password(password))
    session.flush()
    return user


def list_users(session: Session) -> Sequence[User]:
    return session.scalars(select(User).order_by(User.id)).all()


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def find_user(session: Session, email: str) -> User:
    user = session.scalars(select(User).where(User.email == email.strip().lower())).one_or_none()
    if user is None:
        raise NotFoundError(f"No user with the email address {email.strip()}.")
    return user


def get_user(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id) if 0 < user_id <= MAX_ID else None


def authenticate_user(session: Session, email: str, password: str, *, now: datetime) -> User:
    """The user these credentials belong to, or SignInError; stamps the time of the sign-in.

    An unknown address costs the same hash as a wrong password, so response times do not tell
    which addresses have an account. A hash made with weaker parameters is upgraded in place.
    """
    address = email.strip().lower()
    user = None
    if len(address) <= MAX_EMAIL_LENGTH and len(password) <= MAX_PASSWORD_LENGTH:
        user = session.scalars(select(User).where(User.email == address)).one_or_none()
    stored = user.password_hash if user is not None else _decoy_hash()
    try:
        HASHER.verify(stored, password[:MAX_PASSWORD_LENGTH])
    except (VerificationError, InvalidHashError):
        raise SignInError() from None
    if user is None:
        raise SignInError()
    if HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = HASHER.hash(password)
    user.last_signed_in_at = now
    session.flush()
    return user


def session_token(user: User) -> str:
    """What a signed-in session remembers of the password: a new password ends old sessions."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:32]


_decoy: list[str] = []


def _decoy_hash() -> str:
    if not _decoy:
        _decoy.append(HASHER.hash("decoy password that matches no one"))
    return _decoy[0]
