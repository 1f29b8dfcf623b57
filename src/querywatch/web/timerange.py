"""The time range every dashboard page shows, read from ``?since=&until=`` and kept in links.

A preset (``15m``, ``1h``, ``6h``, ``24h``, ``7d``) is relative to now, so a pasted link keeps
meaning "the last hour"; a custom range is two absolute times (ISO or epoch seconds, read by
``querywatch.timespec.parse_time``). A range that cannot be read falls back to the default and
carries the reason, which the range picker shows instead of silently drawing other data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from querywatch.errors import ConfigError
from querywatch.timespec import parse_time

if TYPE_CHECKING:
    from starlette.requests import Request

PRESETS: dict[str, float] = {
    "15m": 15 * 60.0,
    "1h": 3600.0,
    "6h": 6 * 3600.0,
    "24h": 86400.0,
    "7d": 7 * 86400.0,
}
DEFAULT_PRESET = "1h"
MAX_SPAN_S = 31 * 86400.0  # a custom range wider than a month is refused: no store keeps that much


@dataclass(frozen=True)
class TimeRange:
    """``[since, until)`` in epoch seconds; ``preset`` names a relative range, None when custom."""

    since: float
    until: float
    preset: str | None
    error: str | None = None

    @property
    def span(self) -> float:
        return self.until - self.since

    def query(self) -> dict[str, str]:
        """The query parameters that reproduce this range in a link."""
        if self.preset is not None:
            return {"since": self.preset}
        return {"since": _iso(self.since), "until": _iso(self.until)}

    def label(self) -> str:
        if self.preset is not None:
            return f"last {self.preset}"
        return f"{_iso(self.since)} – {_iso(self.until)} UTC"

    def input_value(self, which: str) -> str:
        """The value for a ``datetime-local`` input of the custom form (UTC, minutes)."""
        at = self.since if which == "since" else self.until
        return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M")


def preset_range(preset: str, now: float) -> TimeRange:
    return TimeRange(now - PRESETS[preset], now, preset)


def parse_range(since: str | None, until: str | None, *, now: float) -> TimeRange:
    """The range ``?since=&until=`` asks for; the last hour, with the reason, if unreadable."""
    since = (since or "").strip()
    until = (until or "").strip()
    if not since and not until:
        return preset_range(DEFAULT_PRESET, now)
    if since in PRESETS and not until:
        return preset_range(since, now)
    try:
        start = (
            parse_time(since, now=now, option="since") if since else now - PRESETS[DEFAULT_PRESET]
        )
        end = parse_time(until, now=now, option="until") if until else now
    except ConfigError as exc:
        return _fallback(now, str(exc))
    if end <= start:
        return _fallback(now, "the range's end must come after its start")
    if end - start > MAX_SPAN_S:
        return _fallback(now, "a custom range may span at most 31 days")
    return TimeRange(start, end, None)


def range_of(request: Request) -> TimeRange:
    """The page's range from its query string, relative to the server's clock."""
    return parse_range(
        request.query_params.get("since"), request.query_params.get("until"), now=_now(request)
    )


def _now(request: Request) -> float:
    web = getattr(request.app.state, "web", None)
    clock = getattr(web, "clock", None)
    return float(clock()) if callable(clock) else time.time()


def _fallback(now: float, reason: str) -> TimeRange:
    default = preset_range(DEFAULT_PRESET, now)
    return TimeRange(default.since, default.until, default.preset, error=reason)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S")
