"""Referrer sites in people's words: `m.facebook.com`, `l.facebook.com` and `lm.facebook.com` are
all Facebook. Known sites and their kind (social, search, email) come from Snowplow's list of
referrers (the `referer-parser` package); any other host stands for itself, without `www.`."""

from __future__ import annotations

import functools

from referer_parser import REFERERS  # {domain: {"name": ..., "medium": ...}}


@functools.lru_cache(maxsize=10_000)
def referrer_site(host: str | None) -> str | None:
    """The site a referrer host belongs to: a known site's name, else the host itself."""
    if not host:
        return None
    labels = host.split(".")
    # m.facebook.com → facebook.com → com: the longest known suffix wins.
    for start in range(len(labels) - 1):
        known = REFERERS.get(".".join(labels[start:]))
        if known is not None:
            return str(known["name"])
    return host
