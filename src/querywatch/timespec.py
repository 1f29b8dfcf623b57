"""Parse the time arguments users type: `10m`, `2h`, `1d`, `30s`, an ISO time, or epoch seconds."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from querywatch.errors import ConfigError

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.I)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str, *, now: float, option: str = "--since") -> float:
    """An absolute epoch time; relative forms count back from ``now``. ``nan``, ``inf`` and
    numbers too large for a float (``1e400``) are refused: no time compares sensibly with them."""
    if m := _RELATIVE.match(text):
        return _finite(now - float(m.group(1)) * _UNIT_SECONDS[m.group(2).lower()], text, option)
    try:
        return _finite(float(text), text, option)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"cannot read {text!r} as a time: use 30s, 10m, 2h, 1d, an ISO time or epoch seconds",
            source=option,
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _finite(value: float, text: str, option: str) -> float:
    if not math.isfinite(value):
        raise ConfigError(
            f"cannot read {text[:60]!r} as a time: it is not a finite number of seconds",
            source=option,
        )
    return value
