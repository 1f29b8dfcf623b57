"""One release's windows over a canary analysis, gathered per fingerprint, route and window.

The canary analysis compares two releases window by window (see ``canary_stats``), so each side
keeps, per fingerprint and per route, what it did in each 10 s bucket, next to its totals. The
*unit of traffic* both sides are scaled by is the request (from the middleware) when both sides
have requests, else the statement call: "calls per request", "database time per request".
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from querywatch.detect.baseline import sketch_samples
from querywatch.detect.canary_stats import Samples
from querywatch.records import (
    WINDOW_SECONDS,
    CallSite,
    RepeatWindow,
    RequestWindow,
    StatementWindow,
)
from querywatch.sketch import LatencySketch


@dataclass(slots=True)
class Cell:
    """One fingerprint of one release in one window."""

    calls: int = 0
    total_ms: float = 0.0
    rows: int = 0
    errors: int = 0
    sketch: LatencySketch | None = None
    exact: bool = True  # every call is in the sketch: per-call latencies are known

    @property
    def mean_ms(self) -> float:
        return self.total_ms / self.calls if self.calls else 0.0

    def samples(self, per_call: bool) -> Samples:
        """Per-call latencies (the sketch's buckets) or the window's mean as one sample."""
        if per_call and self.sketch is not None:
            return sketch_samples(self.sketch)
        return [(self.mean_ms, 1)]


@dataclass(slots=True)
class Query:
    """One fingerprint of one release over the analysed span."""

    fingerprint: str
    normalized: str
    cells: dict[int, Cell] = field(default_factory=dict)
    call_sites: dict[CallSite, None] = field(default_factory=dict)  # ordered set

    def add(self, w: StatementWindow) -> None:
        cell = self.cells.setdefault(w.window_start, Cell())
        cell.calls += w.calls
        cell.total_ms += w.total_ms
        cell.rows += w.rows
        cell.errors += w.errors
        if w.sketch is None or w.sketch.count != w.calls:
            cell.exact = False
        elif cell.exact:
            if cell.sketch is None:
                cell.sketch = LatencySketch()
            cell.sketch.merge(w.sketch)
        for site in w.call_sites:
            self.call_sites[site] = None
        if not self.normalized:
            self.normalized = w.normalized

    @property
    def calls(self) -> int:
        return sum(c.calls for c in self.cells.values())

    @property
    def total_ms(self) -> float:
        return sum(c.total_ms for c in self.cells.values())

    @property
    def rows(self) -> int:
        return sum(c.rows for c in self.cells.values())

    @property
    def errors(self) -> int:
        return sum(c.errors for c in self.cells.values())

    @property
    def mean_ms(self) -> float:
        calls = self.calls
        return self.total_ms / calls if calls else 0.0

    @property
    def rows_per_call(self) -> float:
        calls = self.calls
        return self.rows / calls if calls else 0.0

    def p95_ms(self) -> float | None:
        """The 95th percentile of the calls, when every window kept per-call latencies."""
        merged = LatencySketch()
        for cell in self.cells.values():
            if not cell.exact or cell.sketch is None:
                return None
            merged.merge(cell.sketch)
        return merged.quantile(0.95)

    def sites(self) -> set[tuple[str, str]]:
        """Call sites as (path, function): a line that moved is still the same place."""
        return {(s.path, s.function) for s in self.call_sites}


@dataclass(slots=True)
class Route:
    """One route of one release over the analysed span, with its per-window requests."""

    route: str
    requests: int = 0
    errors: int = 0
    db_calls: int = 0
    total_ms: float = 0.0
    db_ms: float = 0.0
    cells: dict[int, tuple[int, int]] = field(default_factory=dict)  # window -> requests, errors

    def add(self, w: RequestWindow) -> None:
        self.requests += w.requests
        self.errors += w.errors
        self.db_calls += w.db_calls
        self.total_ms += w.total_ms
        self.db_ms += w.db_ms
        req, err = self.cells.get(w.window_start, (0, 0))
        self.cells[w.window_start] = (req + w.requests, err + w.errors)


@dataclass(slots=True)
class Side:
    """Everything one release did over the span."""

    queries: dict[str, Query] = field(default_factory=dict)
    routes: dict[str, Route] = field(default_factory=dict)
    repeats: dict[tuple[str, str], int] = field(default_factory=dict)  # (route, fp) -> repeats
    repeat_text: dict[str, str] = field(default_factory=dict)  # fp -> normalized, from repeats
    buckets: set[int] = field(default_factory=set)

    @property
    def requests(self) -> int:
        return sum(r.requests for r in self.routes.values())

    @property
    def calls(self) -> int:
        return sum(q.calls for q in self.queries.values())

    @property
    def total_ms(self) -> float:
        return sum(q.total_ms for q in self.queries.values())

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.routes.values())


def gather(
    statements: Iterable[StatementWindow],
    requests: Iterable[RequestWindow],
    repeats: Iterable[RepeatWindow],
    since: float,
    until: float,
) -> Side:
    """One release's windows that overlap ``[since, until)``, gathered."""
    side = Side()

    def inside(ws: int) -> bool:
        return ws + WINDOW_SECONDS > since and ws < until

    for w in statements:
        if w.calls > 0 and inside(w.window_start):
            side.queries.setdefault(w.fingerprint, Query(w.fingerprint, w.normalized)).add(w)
            side.buckets.add(w.window_start)
    for r in requests:
        if r.requests > 0 and inside(r.window_start):
            side.routes.setdefault(r.route, Route(r.route)).add(r)
            side.buckets.add(r.window_start)
    for p in repeats:
        if p.requests > 0 and inside(p.window_start):
            key = (p.route, p.fingerprint)
            side.repeats[key] = side.repeats.get(key, 0) + p.total_repeats
            if p.normalized:
                side.repeat_text.setdefault(p.fingerprint, p.normalized)
    return side


def span_seconds(canary: Side, stable: Side, since: float, until: float) -> float:
    """Seconds of data in ``[since, until)``: each bucket either side has data in, clipped."""
    total = 0.0
    for ws in canary.buckets | stable.buckets:
        total += max(0.0, min(ws + WINDOW_SECONDS, until) - max(float(ws), since))
    return total


def floor_window(t: float) -> int:
    return math.floor(t / WINDOW_SECONDS) * WINDOW_SECONDS
