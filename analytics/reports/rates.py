"""Rates with their 95 % intervals, and changes that say when they mean nothing."""

from __future__ import annotations

import math

Z95 = 1.959964  # the standard normal quantile of 97.5 %


def wilson(successes: int, trials: int, *, z: float = Z95) -> tuple[float, float] | None:
    """The interval of the proportion `successes / trials`; None when nothing was tried.

    Wilson's interval stays inside [0, 1] and is honest for small counts and for proportions
    near 0 or 1, where the textbook `p ± z·√(p(1-p)/n)` collapses to a point.
    """
    if trials <= 0:
        return None
    k = min(max(successes, 0), trials)
    p = k / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    spread = z / (1 + z2 / trials) * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return max(0.0, centre - spread), min(1.0, centre + spread)


MIN_TO_COMPARE = 20  # human clicks each window needs before a change is worth a percentage


def rate(
    successes: int, trials: int | None, *, scale: float = 1.0, places: int = 4
) -> tuple[float | None, float | None, float | None]:
    """`successes / trials * scale` with its 95 % interval: (value, low, high); all None when
    there is nothing to divide by. The interval caps `successes` at `trials` (a visitor counted
    on two days is still one of the people reached)."""
    if not trials:
        return None, None, None
    interval = wilson(successes, trials)
    assert interval is not None
    low, high = interval
    return (
        round(successes / trials * scale, places),
        round(low * scale, places),
        round(high * scale, places),
    )


def change(
    current: int, previous: int, *, current_human: int, previous_human: int
) -> tuple[float | None, bool]:
    """The relative change from `previous` to `current` and whether it is comparable at all:
    both windows need MIN_TO_COMPARE human clicks (1 click going to 0 is no -100 % trend)."""
    comparable = min(current_human, previous_human) >= MIN_TO_COMPARE
    if not comparable or not previous:
        return None, comparable
    return round((current - previous) / previous, 4), comparable
