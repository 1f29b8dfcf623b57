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

import math
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


def statement_point(w: StatementWindow) -> Point:
    return Point(
        w.fingerprint,
        w.window_start,
        w.calls,
        w.total_ms,
        w.sketch,
        w.normalized,
        w.rows,
        w.shared_blks_hit + w.shared_blks_read,
    )


def statement_points(windows: Iterable[StatementWindow]) -> list[Point]:
    return [statement_point(w) for w in windows if w.calls > 0]


def request_points(windows: Iterable[RequestWindow]) -> list[Point]:
    return [
        Point(w.route, w.window_start, w.requests, w.total_ms, w.sketch, w.route)
        for w in windows
        if w.requests > 0
    ]


class _KeyAcc:
    """One key's running figures: what :class:`KeyBaseline` needs, without its windows."""

    __slots__ = (
        "blocks",
        "blocks_known",
        "calls",
        "calls_acc",
        "chunk_calls",
        "label",
        "last_start",
        "means",
        "rows",
        "sketch",
        "total_acc",
        "total_ms",
        "windows",
    )

    def __init__(self, label: str, sketch: LatencySketch | None) -> None:
        self.label = label
        self.last_start = -math.inf
        self.windows = 0
        self.calls = 0
        self.total_ms = 0.0
        self.rows = 0
        self.blocks = 0
        self.blocks_known = True
        self.means: list[float] = []
        self.chunk_calls: list[int] = []
        self.calls_acc = 0
        self.total_acc = 0.0
        self.sketch = sketch

    def copy(self) -> _KeyAcc:
        twin = _KeyAcc.__new__(_KeyAcc)
        for name in self.__slots__:
            setattr(twin, name, getattr(self, name))
        twin.means = list(self.means)
        twin.chunk_calls = list(self.chunk_calls)
        if self.sketch is not None:
            twin.sketch = LatencySketch(dict(self.sketch.buckets))
        return twin


class BaselineBuilder:
    """Baselines of every key with windows in ``[start, end)``, built one window at a time.

    Detection reads half an hour of windows of every fingerprint after each poll: fed from the
    store's cursor, this keeps per key only running sums, the chunk means and one merged sketch,
    never the windows themselves. Windows must come in time order per key (the store's order);
    the result equals :func:`build_baselines` over the same windows.
    """

    def __init__(
        self,
        start: float,
        end: float,
        *,
        min_chunk_calls: int,
        covered_s: float | None = None,
        now: float | None = None,
        texts: dict[str, str] | None = None,
    ) -> None:
        """``texts`` shares one copy of each label between builders fed the same windows."""
        self.start = start
        self.end = end
        self.min_chunk_calls = min_chunk_calls
        self.covered_s = covered_s
        self.now = now
        self._texts: dict[str, str] = {} if texts is None else texts
        self._keys: dict[str, _KeyAcc] = {}
        self._starts: set[int] = set()

    def add(
        self,
        key: str,
        window_start: int,
        calls: int,
        total_ms: float,
        sketch: LatencySketch | None,
        label: str = "",
        rows: int = 0,
        blocks: int = 0,
    ) -> None:
        """One window of one key (ignored outside the span). Same meaning as :class:`Point`."""
        if not self.start <= window_start < self.end:
            return
        acc = self._keys.get(key)
        if acc is None:
            label = self._texts.setdefault(label, label)
            acc = self._keys[key] = _KeyAcc(label, LatencySketch())
        elif window_start < acc.last_start:
            raise ValueError(
                f"windows of {key!r} out of time order: {window_start} after {acc.last_start}"
            )
        acc.last_start = window_start
        self._starts.add(window_start)
        acc.windows += 1
        acc.calls += calls
        acc.total_ms += total_ms
        acc.rows += rows
        acc.blocks += blocks
        if not blocks:
            acc.blocks_known = False
        acc.calls_acc += calls
        acc.total_acc += total_ms
        if acc.calls_acc >= self.min_chunk_calls:
            acc.means.append(acc.total_acc / acc.calls_acc)
            acc.chunk_calls.append(acc.calls_acc)
            acc.calls_acc, acc.total_acc = 0, 0.0
        # A trailing partial chunk is not evidence; its calls still count in the totals.
        if acc.sketch is not None:
            if sketch is None or sketch.count != calls:
                acc.sketch = None  # per-call latencies only when every window had them
            else:
                acc.sketch.merge(sketch)

    def extend(self, end: float) -> None:
        """Move the span's end later, to keep feeding windows (still in time order per key).

        Baselines taken before share their merged sketches with the builder: take them again
        after feeding it."""
        if end < self.end:
            raise ValueError(f"a span ends later, not earlier: {end} < {self.end}")
        self.end = end

    def branch(self, end: float, now: float | None) -> BaselineBuilder:
        """A copy to be fed on up to ``end`` (the windows still being written), this one left
        as it is to be fed later; ``now`` trims the unfinished bucket, as in the constructor."""
        if end < self.end:
            raise ValueError(f"a branch ends later, not earlier: {end} < {self.end}")
        twin = BaselineBuilder(
            self.start,
            end,
            min_chunk_calls=self.min_chunk_calls,
            covered_s=self.covered_s,
            now=now,
            texts=self._texts,
        )
        twin._keys = {key: acc.copy() for key, acc in self._keys.items()}
        twin._starts = set(self._starts)
        return twin

    def add_point(self, p: Point) -> None:
        self.add(p.key, p.window_start, p.calls, p.total_ms, p.sketch, p.label, p.rows, p.blocks)

    def add_statement(self, w: StatementWindow) -> None:
        """A statement window, as :func:`statement_point` reduces it (none without calls),
        without a point per window: this runs for every window a pass reads."""
        if w.calls > 0:
            self.add(
                w.fingerprint,
                w.window_start,
                w.calls,
                w.total_ms,
                w.sketch,
                w.normalized,
                w.rows,
                w.shared_blks_hit + w.shared_blks_read,
            )

    def add_request(self, w: RequestWindow) -> None:
        """A request window, as :func:`request_points` reduces it (none without requests)."""
        if w.requests > 0:
            self.add(w.route, w.window_start, w.requests, w.total_ms, w.sketch, w.route)

    def baselines(self) -> dict[str, KeyBaseline]:
        covered_s = self.covered_s
        if covered_s is None:
            covered_s = coverage(self._starts, self.start, self.end, self.now)
        return {
            key: KeyBaseline(
                key=key,
                label=acc.label,
                start=self.start,
                end=self.end,
                covered_s=covered_s,
                windows=acc.windows,
                calls=acc.calls,
                total_ms=acc.total_ms,
                chunk_means=tuple(acc.means),
                chunk_calls=tuple(acc.chunk_calls),
                sketch=acc.sketch,
                rows=acc.rows,
                # Known only when every window counted buffers: a partial count is no per-call
                # figure.
                blocks=acc.blocks if acc.blocks_known else 0,
            )
            for key, acc in self._keys.items()
        }


def build_baselines(
    points: Iterable[Point],
    start: float,
    end: float,
    *,
    min_chunk_calls: int,
    covered_s: float | None = None,
    now: float | None = None,
) -> dict[str, KeyBaseline]:
    """Baselines of every key with windows in ``[start, end)``, from points in any order.

    ``covered_s`` is the seconds of data in the span; by default the buckets in which any of
    ``points`` has a window (pass it when the points are a subset of what was captured). Reads
    too large to hold feed a :class:`BaselineBuilder` from the store's cursor instead.
    """
    builder = BaselineBuilder(
        start, end, min_chunk_calls=min_chunk_calls, covered_s=covered_s, now=now
    )
    for p in sorted(points, key=lambda p: p.window_start):
        builder.add_point(p)
    return builder.baselines()


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
