"""The journey of a click, as the redirect decides it (TOUCHLINK_JOURNEYS).

`cookie`: a first-party cookie `tl_j` on the short domain holds a random 128-bit id (32 hex
digits), set by the redirect itself (no round trip) and refreshed by each click. `cookieless`:
the worker derives the id from the IP and user agent under a rotating salt. Either way, no
journey for a request that says DNT: 1 or Sec-GPC: 1, and no cookie for a bot or a link preview;
those clicks are still counted, without a journey. SQL only ever sees a keyed hash of the id.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

COOKIE = "tl_j"
COOKIELESS = "*"  # the click's journey is the worker's to derive
MODES = ("off", "cookie", "cookieless")
_ID = re.compile(r"[0-9a-f]{32}")


class _FreshIds:
    """Unguessable 128-bit ids: a BLAKE2b keyed by 256 bits from the OS, over a counter. The key
    is drawn again in every forked process, so workers never repeat each other's ids; and unlike
    os.urandom per id there is no system call on the redirect path (one releases the GIL, and
    the request thread then queues behind the process's other threads to take it back)."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._key = os.urandom(32)
        self._counter = itertools.count()

    def __call__(self) -> str:
        n = next(self._counter)  # atomic: two threads never get the same number
        return hashlib.blake2b(n.to_bytes(16, "little"), key=self._key, digest_size=16).hexdigest()


fresh_id = _FreshIds()


def private(environ: Mapping[str, Any]) -> bool:
    """The customer asked not to be followed: Do Not Track, or Global Privacy Control."""
    return environ.get("HTTP_DNT") == "1" or environ.get("HTTP_SEC_GPC") == "1"


def cookie_journey(environ: Mapping[str, Any]) -> str:
    """The journey id of the request's `tl_j` cookie; a fresh one when there is none, or when it
    is malformed, too long or repeated (whatever a client sends, never an error)."""
    header: str = environ.get("HTTP_COOKIE", "")
    found = [
        value
        for name, _, value in (part.strip().partition("=") for part in header.split(";"))
        if name == COOKIE
    ]
    if len(found) == 1 and _ID.fullmatch(found[0]):
        return found[0]
    return fresh_id()


class JourneyCapture:
    """What the redirect adds to a counted click for its journey: the id to send on, and the
    cookie to set. Built once per process from the settings; `is_bot` is the click side's
    (cached) reading of a user agent."""

    def __init__(
        self, mode: str, *, days: int, is_bot: Callable[[str], bool], honour_signals: bool = True
    ) -> None:
        self.mode = mode
        self._is_bot = is_bot
        self.honour_signals = honour_signals  # TOUCHLINK_PRIVACY_SIGNALS=count
        self._attributes = f"; Max-Age={days * 86_400}; Path=/; HttpOnly; SameSite=Lax"

    def journey(self, environ: Mapping[str, Any]) -> tuple[str, str | None]:
        """(the click's journey, the Set-Cookie header value or None)."""
        if self.mode == "off" or self.private(environ):
            return "", None
        if self.mode == "cookieless":
            return COOKIELESS, None
        if self._is_bot(environ.get("HTTP_USER_AGENT", "")):
            return "", None
        journey = cookie_journey(environ)
        secure = "; Secure" if environ.get("wsgi.url_scheme") == "https" else ""
        return journey, f"{COOKIE}={journey}{self._attributes}{secure}"

    def private(self, environ: Mapping[str, Any]) -> bool:
        """Whether this click is to be counted without a visitor id or a journey."""
        return self.honour_signals and private(environ)
