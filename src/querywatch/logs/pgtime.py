"""PostgreSQL log times (``2024-05-01 12:00:00.123 UTC``) to epoch seconds, fast.

A log holds millions of lines but few distinct seconds, so the part up to the seconds is parsed
once (``datetime`` with the zone) and cached; the fraction is added to it. Zones are what
PostgreSQL prints for ``log_timezone``: ``UTC``/``GMT``, a numeric offset (``+03``, ``-05:30``),
or an abbreviation; an abbreviation the zone database does not know (``CEST``) is read in the
zone given with ``--timezone``, else as UTC, and counted so the report can say so.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_OFFSET = re.compile(r"^([+-])(\d\d):?(\d\d)?$")
_CACHE_LIMIT = 100_000


class PgTimes:
    """Parse log times; one instance per parser (it holds the cache and the zone fallback)."""

    def __init__(self, fallback: str | None = None) -> None:
        self._cache: dict[str, float] = {}
        self._zones: dict[str, tzinfo] = {"UTC": UTC, "GMT": UTC, "Z": UTC, "": UTC}
        self._fallback: tzinfo = UTC
        if fallback:
            try:
                self._fallback = ZoneInfo(fallback)
            except (ZoneInfoNotFoundError, ValueError):
                from querywatch.logs.model import LogFormatError

                msg = f"unknown time zone {fallback!r}: use a name like Europe/Paris or UTC"
                raise LogFormatError(msg) from None
        self.unknown_zones: set[str] = set()

    def epoch(self, text: str) -> float:
        """Seconds since the epoch of a PostgreSQL time; 0.0 when it cannot be read."""
        dot = text.find(".", 19, 20)
        if dot < 0:
            key, frac = text, 0.0
        else:
            space = text.find(" ", dot)
            if space < 0:
                key, frac = text[:dot], float(text[dot:])
            else:
                key, frac = text[:dot] + text[space:], float(text[dot:space])
        base = self._cache.get(key)
        if base is None:
            base = self._parse(key)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = base
        return base + frac

    def _parse(self, key: str) -> float:
        stamp, _, zone = key.partition(" ")[2].partition(" ")
        day = key[:10]
        try:
            naive = datetime.fromisoformat(f"{day} {stamp}")
        except ValueError:
            if key.replace(".", "", 1).isdigit():  # %n: epoch seconds
                return float(key)
            return 0.0
        return naive.replace(tzinfo=self._zone(zone)).timestamp()

    def _zone(self, name: str) -> tzinfo:
        tz = self._zones.get(name)
        if tz is not None:
            return tz
        m = _OFFSET.match(name)
        if m:
            minutes = int(m[2]) * 60 + int(m[3] or 0)
            tz = timezone(timedelta(minutes=-minutes if m[1] == "-" else minutes))
        else:
            try:
                tz = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                self.unknown_zones.add(name)
                tz = self._fallback
        self._zones[name] = tz
        return tz
