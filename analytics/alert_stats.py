"""The statistics of the alerts: Poisson tails and the three tests, as plain functions.

Clicks per hour are taken to be a Poisson process whose rate is the touchpoint's own recent
past; an alert fires only when what was seen would be rarer than `probability` (1 % by default)
under that rate. The tails are summed in log space from their largest term, so they hold for
means of millions as well as for means near zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_NEGLIGIBLE = 1e-17  # relative size of a term past which a tail's sum stops


@dataclass(frozen=True, slots=True)
class Finding:
    """What a test saw: the count observed, the count expected, how likely at most (drop) or at
    least (bot_spike) that count, or no click at all (silent), was, and whether it fires."""

    fires: bool
    observed: int
    expected: float
    probability: float


def _log_pmf(k: int, mean: float) -> float:
    return k * math.log(mean) - mean - math.lgamma(k + 1)


def poisson_at_most(k: int, mean: float) -> float:
    """P(X ≤ k) for X ~ Poisson(mean)."""
    if k < 0:
        return 0.0
    if mean <= 0:
        return 1.0
    if k >= mean:
        return max(0.0, 1.0 - poisson_at_least(k + 1, mean))
    # Below the mean the terms grow towards k: sum them downwards from there.
    total, term, i = 0.0, 1.0, k
    while i >= 0 and term > _NEGLIGIBLE * total:
        total += term
        term *= i / mean
        i -= 1
    return min(1.0, math.exp(_log_pmf(k, mean) + math.log(total)))


def poisson_at_least(k: int, mean: float) -> float:
    """P(X ≥ k) for X ~ Poisson(mean)."""
    if k <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    if k <= mean:
        return max(0.0, 1.0 - poisson_at_most(k - 1, mean))
    # Above the mean the terms shrink from k on: sum them upwards.
    total, term, i = 0.0, 1.0, k
    while term > _NEGLIGIBLE * total:
        total += term
        i += 1
        term *= mean / i
    return min(1.0, math.exp(_log_pmf(k, mean) + math.log(total)))


def silent_test(*, baseline_clicks: int, baseline_hours: float, hours: int,
                clicks_since: int, probability: float) -> Finding:
    """Silent: λ = `baseline_clicks` / `baseline_hours` human clicks an hour; fires when no human
    click came in the last `hours` hours (`clicks_since` is 0) and P(0 clicks in `hours`) =
    exp(-λ·hours) < `probability`."""
    rate = baseline_clicks / baseline_hours if baseline_hours > 0 else 0.0
    expected = rate * hours
    chance = math.exp(-expected)
    return Finding(clicks_since == 0 and chance < probability, clicks_since, expected, chance)


def drop_test(*, observed: int, weeks: list[int], probability: float,
              threshold: float) -> Finding:
    """Drop: the expected count is the mean of the same hours in the weeks before (`weeks`);
    fires when P(X ≤ observed | expected) < `probability` and observed ≤ `threshold` * expected
    (so that a big touchpoint's small dip, rare as it may be, is not a drop)."""
    expected = sum(weeks) / len(weeks) if weeks else 0.0
    chance = poisson_at_most(observed, expected)
    return Finding(
        chance < probability and observed <= threshold * expected, observed, expected, chance
    )


def bot_spike_test(*, observed: int, baseline_clicks: int, baseline_hours: float,
                   hours: float, probability: float, min_clicks: int, ratio: float) -> Finding:
    """Bot spike: the expected count is the baseline's bot clicks an hour * `hours`; fires when
    P(X ≥ observed | expected) < `probability`, observed ≥ `min_clicks` and observed ≥ `ratio`
    * expected."""
    rate = baseline_clicks / baseline_hours if baseline_hours > 0 else 0.0
    expected = rate * hours
    chance = poisson_at_least(observed, expected)
    fires = chance < probability and observed >= min_clicks and observed >= ratio * expected
    return Finding(fires, observed, expected, chance)
