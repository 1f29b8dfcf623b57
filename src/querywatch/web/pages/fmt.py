"""How figures read on the pages (passed to every template as ``f``): UTC times, durations,
milliseconds and rates with sensible precision. Plain text out; the templates escape it."""

from __future__ import annotations

import time

from querywatch.timefmt import duration as _duration


def stamp(ts: float | None) -> str:
    """``2026-12-05 14:03:07``, UTC (the footer says so)."""
    return "–" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def clock(ts: float | None) -> str:
    return "–" if ts is None else time.strftime("%H:%M:%S", time.gmtime(ts))


def iso(ts: float) -> str:
    """For ``<time datetime=…>``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def duration(seconds: float | None) -> str:
    return "–" if seconds is None else _duration(max(seconds, 0.0))


def ms(value: float | None) -> str:
    """Milliseconds: ``0.42 ms``, ``12.3 ms``, ``1,234 ms``."""
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f} ms"
    if abs(value) >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def num(value: float | None, unit: str = "") -> str:
    """A count or rate: ``1,234``, ``12.3``, ``0.05``; with ``unit`` after a space."""
    if value is None:
        return "–"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 1:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2g}"
    return f"{text} {unit}".strip()


def ratio(value: float | None) -> str:
    """``×3.2`` (``new`` when there was nothing before)."""
    if value is None:
        return "–"
    if value == float("inf"):
        return "new"
    return f"×{value:.1f}" if value < 100 else f"×{value:,.0f}"


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def short(commit: str | None) -> str:
    return (commit or "")[:10] or "–"


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")
