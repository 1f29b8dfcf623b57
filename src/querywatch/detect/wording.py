"""How figures read in a detection's sentence: short SQL, latencies, ratios and rates.

Shared by the detectors (regression, victims) so every summary writes a figure the same way.
"""

from __future__ import annotations

import math

SUMMARY_SQL_CHARS = 90


def short_sql(sql: str, limit: int = SUMMARY_SQL_CHARS) -> str:
    """The statement on one line, cut to ``limit`` characters with an ellipsis."""
    text = " ".join(sql.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def ms(v: float) -> str:
    """A latency for a sentence: two significant figures below 10 ms, whole numbers above."""
    if v >= 10:
        return f"{v:,.0f}"
    if v >= 1:
        return f"{v:.1f}"
    if v >= 0.01:
        return f"{v:.2f}"
    return f"{v:.3f}"


def times(ratio: float) -> str:
    """A ratio as ``7.7x`` / ``40x`` / ``∞x``."""
    if math.isinf(ratio):
        return "∞x"
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


def rate(v: float) -> str:
    """Calls (or rows) per second or per call: whole numbers from 10, one decimal below."""
    return f"{v:,.0f}" if v >= 10 else f"{v:.1f}"
