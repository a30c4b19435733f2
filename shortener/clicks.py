"""A click as the redirect captures it: the raw click, cropped, with an id made on the spot."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# A QR code encodes the short URL with this parameter: the redirect counts the click as a scan.
SCAN_PARAM = "qr"
# A click carrying this parameter is redirected but not counted (our own tests, previews, staff).
OPT_OUT_PARAM = "notrack"

# Crop what customers send before it travels anywhere: a click is small and bounded.
MAX_USER_AGENT = 512
MAX_REFERRER = 1024
MAX_LANGUAGE = 35


@dataclass(frozen=True, slots=True)
class RawClick:
    """One click as the redirect saw it; enrichment happens later, in the worker."""

    click_id: str
    at: float  # seconds since the epoch, UTC
    link_id: int
    touchpoint_id: int
    stage_id: int
    ip: str
    user_agent: str
    referrer: str
    language: str
    via_qr: bool
    # The customer's journey: the `tl_j` cookie's id, COOKIELESS for the worker to derive one
    # from the IP and user agent, or "" for none (journeys off, DNT, GPC, a bot).
    journey: str = ""
    # Before the link's `starts_at`: a proofing scan at the printer or the office, kept but left
    # out of the figures unless a report asks (`tests=include`).
    test: bool = False
    # Sent with Do Not Track or Global Privacy Control: counted without a visitor id.
    private: bool = False
    # Fetched ahead of any click (a browser's prefetch, a mail scanner's): never a person's.
    prefetch: bool = False


def new_click_id() -> str:
    """A 32-hex-digit id, time-ordered like UUIDv7, so inserts land near each other in the index.

    The 80 random bits need to be unique, not secret: `random` is seeded from the OS and reseeded
    in every forked worker, and is far cheaper per call than os.urandom on the redirect path.
    """
    millis = time.time_ns() // 1_000_000
    return f"{millis:012x}{random.getrandbits(80):020x}"


def crop_click(
    *,
    link_id: int,
    touchpoint_id: int,
    stage_id: int,
    ip: str,
    user_agent: str,
    referrer: str,
    language: str,
    via_qr: bool,
    journey: str = "",
    test: bool = False,
    private: bool = False,
    prefetch: bool = False,
) -> RawClick:
    return RawClick(
        click_id=new_click_id(),
        at=time.time(),
        link_id=link_id,
        touchpoint_id=touchpoint_id,
        stage_id=stage_id,
        ip=ip[:45],
        user_agent=user_agent[:MAX_USER_AGENT],
        referrer=referrer[:MAX_REFERRER],
        language=language[:MAX_LANGUAGE],
        via_qr=via_qr,
        journey=journey,
        test=test,
        private=private,
        prefetch=prefetch,
    )


def prefetched(environ: Mapping[str, Any]) -> bool:
    """Whether the request says it fetches ahead of a click: `Sec-Purpose: prefetch` (Chrome's
    speculation rules, and scanners copying it), `Purpose: prefetch`, `X-Moz: prefetch`
    (Firefox), `X-Purpose: preview` (Safari's link previews)."""
    return (
        "prefetch" in environ.get("HTTP_SEC_PURPOSE", "")
        or environ.get("HTTP_PURPOSE") == "prefetch"
        or environ.get("HTTP_X_MOZ") == "prefetch"
        or environ.get("HTTP_X_PURPOSE") in ("preview", "prefetch")
    )
