"""Confidence of a detection: how far past its thresholds each figure is, combined into one score.

Shared by the deploy, new-fingerprint and unannounced detectors so a 0.5 means the same
everywhere: every threshold just cleared.
"""

from __future__ import annotations

import math


def g_high(value: float, threshold: float, power: float = 1.0) -> float:
    """A confidence factor for "value above threshold": 0.5 at the threshold, → 1 far above."""
    if value <= 0 or math.isinf(threshold):
        return 0.0
    if math.isinf(value):
        return 1.0
    return min(1.0, max(0.0, 1.0 - 0.5 * math.pow(threshold / value, power)))


def g_low(value: float, threshold: float, power: float = 1.0) -> float:
    """A confidence factor for "value below threshold": 0.5 at the threshold, → 1 near zero."""
    if threshold <= 0:
        return 0.0
    return min(1.0, max(0.0, 1.0 - 0.5 * math.pow(max(value, 0.0) / threshold, power)))


def combine(factors: dict[str, tuple[float, float]]) -> float:
    """Weighted geometric mean of factors ``{name: (g, weight)}``, each g in 0..1.

    A detection that just clears every threshold scores 0.5; one far past all of them nears 1;
    one weak factor pulls the whole down (a geometric mean), without zeroing it.
    """
    total = sum(w for _, w in factors.values())
    if total <= 0:
        return 0.0
    log_sum = 0.0
    for g, w in factors.values():
        if g <= 0:
            return 0.0
        log_sum += w * math.log(g)
    return round(math.exp(log_sum / total), 4)
