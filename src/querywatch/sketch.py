"""A mergeable latency sketch (log-bucketed, DDSketch-style) for percentiles.

Each bucket covers values within ±1% of each other, so any quantile is known to 1% relative error,
and two sketches merge by adding bucket counts: 10-second windows roll up into minutes exactly.
"""

from __future__ import annotations

import json
import math

RELATIVE_ACCURACY = 0.01
_GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
LOG_GAMMA = math.log(_GAMMA)
MIN_MS = 1e-3  # below a microsecond everything shares one bucket


def bucket_key(ms: float) -> int:
    """The bucket holding ``ms``; public so hot paths can inline the bucket update."""
    return math.ceil(math.log(ms if ms > MIN_MS else MIN_MS) / LOG_GAMMA)


class LatencySketch:
    __slots__ = ("buckets", "count")

    def __init__(self, buckets: dict[int, int] | None = None) -> None:
        self.buckets: dict[int, int] = buckets if buckets is not None else {}
        self.count = sum(self.buckets.values())

    def add(self, ms: float) -> None:
        key = bucket_key(ms)
        buckets = self.buckets
        buckets[key] = buckets.get(key, 0) + 1
        self.count += 1

    def merge(self, other: LatencySketch) -> None:
        buckets = self.buckets
        for key, n in other.buckets.items():
            buckets[key] = buckets.get(key, 0) + n
        self.count += other.count

    def quantile(self, q: float) -> float | None:
        """The value at quantile ``q`` (0..1), or None when the sketch is empty."""
        if not self.count:
            return None
        rank = q * (self.count - 1)
        seen = 0
        for key in sorted(self.buckets):
            seen += self.buckets[key]
            if seen > rank:
                return 2 * _GAMMA**key / (_GAMMA + 1)
        return None  # unreachable: counts add up to self.count

    def to_json(self) -> str:
        return json.dumps(self.buckets, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> LatencySketch:
        return cls({int(k): int(v) for k, v in json.loads(text).items()})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LatencySketch) and self.buckets == other.buckets

    def __repr__(self) -> str:
        return f"LatencySketch(count={self.count}, p50={self.quantile(0.5)})"
