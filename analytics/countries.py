"""Countries by name (the API keeps the ISO code): `FR` is France."""

from __future__ import annotations

import functools

import pycountry


@functools.lru_cache(maxsize=512)
def country_name(code: str) -> str:
    """The common English name of an ISO 3166 alpha-2 code; the code itself if unknown."""
    found = pycountry.countries.get(alpha_2=code)
    if found is None:
        return code
    return str(getattr(found, "common_name", None) or found.name)
