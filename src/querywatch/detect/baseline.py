"""Per-fingerprint and per-route baselines: what "normal" looked like over a span of time.

A baseline is built from stored windows, and it is volume-aware:

* Consecutive windows of a key are pooled into *evidence chunks* until a chunk holds at least
  ``min_chunk_calls`` calls. A busy query yields one chunk per 10 s window; a query called twice
  a minute yields one chunk per few minutes. A quiet window is therefore never an anomaly on its
  own (its two calls are pooled with the next ones), and a low-traffic key needs a longer span
  before it has as many chunks as a busy one: it is judged later, not more loosely.
* Rates (calls per second, database time per second) are per second *of data*: a bucket in which
  no key at all has a window is a gap (the agent was down, a poll was missed) and is not counted
  as a quiet period. The current, unfinished bucket counts for the part that has elapsed.
* When every window of a key carries a latency sketch whose count matches its calls (in-app
  capture), the sketches are merged: the detectors then test per-call latencies. Otherwise (e.g.
  pg_stat_statements, which only has totals per poll) the chunk means are the samples.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from querywatch.detect.model import PhaseStats
from querywatch.detect.stats import MAD_TO_SIGMA, mad, median, percentile
from querywatch.records import WINDOW_SECONDS, RequestWindow, StatementWindow
from querywatch.sketch import RELATIVE_ACCURACY, LatencySketch

HIGH_PERCENTILE = 95.0


@dataclass(frozen=True, slots=True)
class Point:
    """One window of one key, reduced to what baselines need (statements and routes alike)."""

    key: str
    window_start: int
    calls: int
    total_ms: float
    sketch: LatencySketch | None
    label: str = ""  # normalized text (statements) or route
    rows: int = 0  # rows returned or affected (statements); 0 for routes
    blocks: int = 0  # shared buffers hit + read (pg_stat_statements); 0 when unknown


@dataclass(frozen=True, slots=True)
class KeyBaseline:
    """One key (fingerprint or route) over ``[start, end)``."""

    key: str
    label: str
    start: float
    end: float
    covered_s: float  # seconds of data in the span (gaps excluded), shared by all keys
    windows: int  # windows in which the key was called
    calls: int
    total_ms: float
    chunk_means: tuple[float, ...]  # mean latency of each evidence chunk, in time order
    chunk_calls: tuple[int, ...]
    sketch: LatencySketch | None  # merged per-call latencies, when every window had them
    rows: int = 0
    blocks: int = 0  # shared buffers hit + read; 0 when the source does not count them

    @property
    def mean_ms(self) -> float:
        return self.total_ms / self.calls if self.calls else 0.0

    @property
    def rows_per_call(self) -> float:
        return self.rows / self.calls if self.calls else 0.0

    @property
    def blocks_per_call(self) -> float:
        """Buffers a call touched: how much work its plan does (0 when unknown)."""
        return self.blocks / self.calls if self.calls else 0.0

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.covered_s if self.covered_s > 0 else 0.0

    @property
    def db_ms_per_s(self) -> float:
        return self.total_ms / self.covered_s if self.covered_s > 0 else 0.0

    @property
    def chunks(self) -> int:
        return len(self.chunk_means)

    @property
    def median_ms(self) -> float | None:
        """Median of the chunk means: the typical latency, untouched by a few bad minutes."""
        return median(self.chunk_means) if self.chunk_means else None

    @property
    def high_ms(self) -> float | None:
        """95th percentile of the chunk means: how slow a normal bad moment gets."""
        return percentile(self.chunk_means, HIGH_PERCENTILE) if self.chunk_means else None

    @property
    def mad_ms(self) -> float | None:
        """Median absolute deviation of the chunk means (unscaled)."""
        return mad(self.chunk_means) if self.chunk_means else None

    def spread_ms(self, floor: float) -> float:
        """A robust standard deviation of the chunk means, never below ``floor`` × median.

        The floor keeps a very steady query (MAD near zero) from turning a 5% wobble into
        "many deviations away".
        """
        med = self.median_ms or 0.0
        return max((self.mad_ms or 0.0) * MAD_TO_SIGMA, floor * med)

    @property
    def p95_ms(self) -> float | None:
        return self.sketch.quantile(0.95) if self.sketch is not None else None

    def ready(self, min_chunks: int, min_calls: int) -> bool:
        """Enough evidence to judge: ``min_chunks`` evidence chunks and ``min_calls`` calls."""
        return self.chunks >= min_chunks and self.calls >= min_calls

    def samples(self) -> list[tuple[float, int]]:
        """Weighted samples for the rank test: per-call buckets if known, else chunk means."""
        if self.sketch is not None:
            return sketch_samples(self.sketch)
        return [(m, 1) for m in self.chunk_means]

    def phase_stats(self) -> PhaseStats:
        return PhaseStats(
            calls=self.calls,
            calls_per_s=self.calls_per_s,
            mean_ms=self.mean_ms,
            p95_ms=self.p95_ms,
            db_ms_per_s=self.db_ms_per_s,
        )


def sketch_samples(sketch: LatencySketch) -> list[tuple[float, int]]:
    """A sketch as weighted samples: each bucket's representative value and its count.

    The representative is the value ``LatencySketch.quantile`` reports for the bucket, so equal
    buckets on both sides of a test are exact ties.
    """
    gamma = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
    return [(2 * gamma**key / (gamma + 1), n) for key, n in sorted(sketch.buckets.items()) if n]


def coverage(
    window_starts: Iterable[int], start: float, end: float, now: float | None = None
) -> float:
    """Seconds of data in ``[start, end)``: one window length per bucket that has any data.

    ``now`` trims the unfinished bucket to the part already elapsed.
    """
    seen = {ws for ws in window_starts if start <= ws < end}
    total = 0.0
    for ws in seen:
        length = float(WINDOW_SECONDS)
        if now is not None and ws + WINDOW_SECONDS > now:
            length = max(1.0, now - ws)
        total += length
    return total


def statement_points(windows: Iterable[StatementWindow]) -> list[Point]:
    return [
        Point(
            w.fingerprint,
            w.window_start,
            w.calls,
            w.total_ms,
            w.sketch,
            w.normalized,
            w.rows,
            w.shared_blks_hit + w.shared_blks_read,
        )
        for w in windows
        if w.calls > 0
    ]


def request_points(windows: Iterable[RequestWindow]) -> list[Point]:
    return [
        Point(w.route, w.window_start, w.requests, w.total_ms, w.sketch, w.route)
        for w in windows
        if w.requests > 0
    ]


def build_baselines(
    points: Sequence[Point],
    start: float,
    end: float,
    *,
    min_chunk_calls: int,
    covered_s: float | None = None,
    now: float | None = None,
) -> dict[str, KeyBaseline]:
    """Baselines of every key with windows in ``[start, end)``.

    ``covered_s`` is the seconds of data in the span; by default the buckets in which any of
    ``points`` has a window (pass it when the points are a subset of what was captured).
    """
    inside = [p for p in points if start <= p.window_start < end]
    if covered_s is None:
        covered_s = coverage((p.window_start for p in inside), start, end, now)
    by_key: dict[str, list[Point]] = {}
    for p in sorted(inside, key=lambda p: p.window_start):
        by_key.setdefault(p.key, []).append(p)
    return {
        key: _baseline(key, pts, start, end, covered_s, min_chunk_calls)
        for key, pts in by_key.items()
    }


def _baseline(
    key: str, points: list[Point], start: float, end: float, covered_s: float, min_chunk_calls: int
) -> KeyBaseline:
    means: list[float] = []
    chunk_calls: list[int] = []
    calls_acc, total_acc = 0, 0.0
    for p in points:
        calls_acc += p.calls
        total_acc += p.total_ms
        if calls_acc >= min_chunk_calls:
            means.append(total_acc / calls_acc)
            chunk_calls.append(calls_acc)
            calls_acc, total_acc = 0, 0.0
    # A trailing partial chunk is not evidence; its calls still count in the totals.
    sketch: LatencySketch | None = LatencySketch()
    for p in points:
        if sketch is None:
            break
        if p.sketch is None or p.sketch.count != p.calls:
            sketch = None
        else:
            sketch.merge(p.sketch)
    return KeyBaseline(
        key=key,
        label=points[0].label,
        start=start,
        end=end,
        covered_s=covered_s,
        windows=len(points),
        calls=sum(p.calls for p in points),
        total_ms=sum(p.total_ms for p in points),
        chunk_means=tuple(means),
        chunk_calls=tuple(chunk_calls),
        sketch=sketch,
        rows=sum(p.rows for p in points),
        # Known only when every window counted buffers: a partial count is no per-call figure.
        blocks=sum(p.blocks for p in points) if all(p.blocks for p in points) else 0,
    )


def fingerprint_baselines(
    windows: Sequence[StatementWindow],
    start: float,
    end: float,
    *,
    min_chunk_calls: int = 5,
    now: float | None = None,
) -> dict[str, KeyBaseline]:
    """Per-fingerprint baselines over ``[start, end)`` (e.g. the 30 minutes before a deploy)."""
    return build_baselines(
        statement_points(windows), start, end, min_chunk_calls=min_chunk_calls, now=now
    )


def route_baselines(
    windows: Sequence[RequestWindow],
    start: float,
    end: float,
    *,
    min_chunk_calls: int = 5,
    now: float | None = None,
) -> dict[str, KeyBaseline]:
    """Per-route baselines (requests as calls, request time as latency) over ``[start, end)``."""
    return build_baselines(
        request_points(windows), start, end, min_chunk_calls=min_chunk_calls, now=now
    )
