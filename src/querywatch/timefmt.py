"""How querywatch writes times and durations, in one place so every output agrees.

Text that travels (CI logs, errors, postmortems, alerts) carries UTC and says so; what an on-call
engineer reads at their own terminal is local time with its zone; live lines show a short clock.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

__all__ = ["clock", "duration", "local_stamp", "rfc3339", "utc_stamp"]


def utc_stamp(ts: float) -> str:
    """``2026-12-05 21:30:09 UTC``: unambiguous whatever the reader's zone."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def local_stamp(ts: float) -> str:
    """``2026-12-05 22:30:09 CET``: read against the engineer's own clock."""
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(ts))


def clock(ts: float) -> str:
    """``22:30:09`` in local time, for live lines that sit beside the terminal's clock."""
    return time.strftime("%H:%M:%S", time.localtime(ts))


def rfc3339(ts: float) -> str:
    """UTC with milliseconds and a ``Z``: what Alertmanager and most webhook consumers parse."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def duration(seconds: float) -> str:
    """``2h 30m``, ``1m 35s``, ``12s``: whole seconds, the two largest units (negative reads 0s)."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
