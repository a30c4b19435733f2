"""Outcomes as the web side takes them: a conversion a shop reports, an answer a customer gives
to a link's survey. Like clicks they travel to SQL through the sink (Redis and the worker, or
the embedded writer) and are stored once, by the id made here.

A link that tracks conversions hands the shop `tl_click`: the click id, the link id and a keyed
signature, so that a forged or mistyped value is refused at once, without a lookup, even while
the click itself is still on its way to SQL; and the click's time is in its id, so a click too
old to convert is refused the same way.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from shortener.keyed_hash import KeyedHash

CLICK_PARAM = "tl_click"
_TOKEN = re.compile(r"([0-9a-f]{32})\.([0-9a-f]{1,8})\.([0-9a-f]{16})")


@dataclass(frozen=True, slots=True)
class ConversionEvent:
    """A conversion accepted by the API: of a click (`click_id`, `link_id`) or of a coupon
    (`touchpoint_id`). `value_micros` is the value in millionths of `currency`'s unit."""

    id: str
    event: str
    occurred_at: float  # seconds since the epoch, UTC
    click_id: str | None = None
    link_id: int | None = None
    clicked_at: float | None = None
    coupon: str | None = None
    touchpoint_id: int | None = None
    value_micros: int | None = None
    currency: str | None = None
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class AnswerEvent:
    """A customer's answer to a link's survey. The IP and user agent, like a click's, go no
    further than ingest, which turns them (or the journey) into the key that allows one answer
    each."""

    id: str
    at: float
    link_id: int
    touchpoint_id: int
    stage_id: int
    kind: str  # nps, csat or ces
    score: int
    comment: str
    ip: str
    user_agent: str
    journey: str = ""  # as a click's: the cookie's id, COOKIELESS, or ""


Outcome = ConversionEvent | AnswerEvent


@dataclass(frozen=True, slots=True)
class ClickRef:
    """What a valid `tl_click` says: the click, its link, and when it happened."""

    click_id: str
    link_id: int
    clicked_at: float


class ClickTokens:
    """Signs and checks `tl_click` values under a key derived from the installation's secret."""

    def __init__(self, secret_key: str) -> None:
        self._key = KeyedHash(hmac.digest(secret_key.encode(), b"touchlink click tokens", "sha256"))

    def sign(self, click_id: str, link_id: int) -> str:
        body = f"{click_id}.{link_id:x}"
        return f"{body}.{self._signature(body)}"

    def verify(self, token: str) -> ClickRef | None:
        """The click a token names, or None when it is not one of ours."""
        match = _TOKEN.fullmatch(token.strip().lower())
        if match is None:
            return None
        click_id, link, signature = match.groups()
        if not hmac.compare_digest(signature, self._signature(f"{click_id}.{link}")):
            return None
        return ClickRef(click_id, int(link, 16), int(click_id[:12], 16) / 1000)

    def _signature(self, body: str) -> str:
        return self._key.digest(body.encode())[:8].hex()
