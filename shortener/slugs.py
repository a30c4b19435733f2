"""Slug rules: which custom slugs are allowed, and how random slugs are drawn."""

from __future__ import annotations

import re
import secrets

from shortener.errors import InvalidSlugError

SLUG_MAX_LENGTH = 64
RANDOM_SLUG_LENGTH = 8  # 32**8: about 10**12 slugs

# Look-alikes (0/O/o, 1/l/I) are left out so a slug read off a poster or said aloud is typed right;
# and one case only, since slugs that differ only in case are one slug.
ALPHABET = "23456789abcdefghijkmnpqrstuvwxyz"

# Lowercase; a slug is reserved whatever its case. These would shadow one of our routes or could
# pass for an official page of the service.
RESERVED_SLUGS: frozenset[str] = frozenset(
    {
        "about",
        "account",
        "accounts",
        "admin",
        "analytics",
        "api",
        "app",
        "assets",
        "auth",
        "clicks",
        "dashboard",
        "delete",
        "docs",
        "domains",
        "edit",
        "favicon",
        "health",
        "healthz",
        "help",
        "keys",
        "links",
        "livez",
        "login",
        "logout",
        "metrics",
        "new",
        "oauth",
        "openapi",
        "ping",
        "privacy",
        "qr",
        "readyz",
        "register",
        "reports",
        "robots",
        "security",
        "settings",
        "signin",
        "signout",
        "signup",
        "sitemap",
        "stages",
        "static",
        "status",
        "support",
        "terms",
        "touchlink",
        "touchpoints",
        "users",
        "www",
    }
)

_SLUG_PATTERN = re.compile(r"[A-Za-z0-9_-]+")


def validate_slug(slug: str) -> str:
    """Return `slug` unchanged, or raise InvalidSlugError saying why it cannot be used."""
    if not isinstance(slug, str) or not slug:
        raise InvalidSlugError("slug", "must be a non-empty string.")
    if len(slug) > SLUG_MAX_LENGTH:
        raise InvalidSlugError(
            "slug", f"must be at most {SLUG_MAX_LENGTH} characters long, not {len(slug)}."
        )
    if not _SLUG_PATTERN.fullmatch(slug):
        raise InvalidSlugError("slug", "may contain only letters A-Z and a-z, digits, '-' and '_'.")
    if slug.lower() in RESERVED_SLUGS:
        raise InvalidSlugError("slug", f"'{slug}' is reserved; choose another slug.")
    return slug


def slug_key(slug: str) -> str:
    """What a slug is found and kept unique by: letter case aside."""
    return slug.lower()


def looks_like_slug(text: str) -> bool:
    """Tell whether `text` could be a slug at all (reserved or not), before asking any store."""
    return len(text) <= SLUG_MAX_LENGTH and _SLUG_PATTERN.fullmatch(text) is not None


def random_slug(length: int = RANDOM_SLUG_LENGTH) -> str:
    """Draw an unguessable slug from ALPHABET; never a reserved word."""
    if not 1 <= length <= SLUG_MAX_LENGTH:
        raise ValueError(f"length must be between 1 and {SLUG_MAX_LENGTH}, not {length}")
    while True:
        slug = "".join(secrets.choice(ALPHABET) for _ in range(length))
        # Reserved words such as "metrics" can be spelled from ALPHABET, so a hit is redrawn rather
        # than trusted to be impossible.
        if slug.lower() not in RESERVED_SLUGS:
            return validate_slug(slug)
