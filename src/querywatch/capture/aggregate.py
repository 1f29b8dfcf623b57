"""In-process aggregation: per 10 s window and fingerprint (statements) or route (requests).

This is the hot path of in-app capture. A statement costs a text-keyed dict lookup, a sampled call
site, one uncontended lock and a few integer updates; the latency sketch's bucket key is computed
inline (same formula as ``LatencySketch.add``) so nothing is allocated per statement once a
fingerprint has been seen in the window.

Memory is bounded: at most ``max_fingerprints`` distinct fingerprints and ``max_routes`` routes per
window (per flush); statements beyond the cap are counted into one ``other`` fingerprint per dialect
(``OTHER_FINGERPRINT``), requests into the ``OTHER_ROUTE`` route, and at most ``max_users`` user
keys are kept per route and window. Statement texts (the fingerprint cache) are bounded too.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from math import ceil, log

from querywatch.capture.callsite import find_call_site
from querywatch.capture.context import current_request
from querywatch.records import (
    WINDOW_SECONDS,
    CallSite,
    RequestWindow,
    StatementWindow,
    window_start,
)
from querywatch.sketch import LOG_GAMMA, MIN_MS, LatencySketch, bucket_key
from querywatch.sql import Fingerprint, fingerprint

SOURCE = "app"
OTHER_FINGERPRINT = "other"
OTHER_NORMALIZED = "-- querywatch: statements beyond the per-window fingerprint cap"
OTHER_ROUTE = "<other>"
UNPARSED_FINGERPRINT = "unparsed"
MAX_TEXTS = 20_000
MAX_SITES = 8  # per fingerprint

FingerprintFn = Callable[[str, str], Fingerprint]


class FingerprintState:
    """One fingerprint over the process lifetime: its call-site sampling counter and known sites."""

    __slots__ = ("countdown", "dialect", "id", "normalized", "sampled", "sites")

    def __init__(self, id: str, normalized: str, dialect: str) -> None:
        self.id = id
        self.normalized = normalized
        self.dialect = dialect
        self.countdown = 1  # calls until the next call-site sample
        self.sampled = 0
        self.sites: dict[CallSite, None] = {}


class _StatementAgg:
    """Calls are not counted separately: they are the sum of the sketch's bucket counts."""

    __slots__ = ("buckets", "errors", "max_ns", "min_ns", "rows", "total_ns")

    def __init__(self) -> None:
        self.total_ns = 0
        self.max_ns = 0
        self.min_ns = sys.maxsize
        self.rows = 0
        self.errors = 0
        self.buckets: dict[int, int] = {}


class _RequestAgg:
    __slots__ = (
        "buckets",
        "db_calls",
        "db_ns",
        "errors",
        "failed_users",
        "max_ns",
        "requests",
        "total_ns",
        "users",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.total_ns = 0
        self.max_ns = 0
        self.db_ns = 0
        self.db_calls = 0
        self.buckets: dict[int, int] = {}
        self.users: set[str] = set()
        self.failed_users: set[str] = set()


class Aggregator:
    """Windows of statement and request aggregates, drained by the Recorder's flusher thread."""

    def __init__(
        self,
        *,
        max_fingerprints: int = 2000,
        max_routes: int = 500,
        max_users: int = 10_000,
        sample_first: int = 5,
        sample_every: int = 100,
    ) -> None:
        self.max_fingerprints = max_fingerprints
        self.max_routes = max_routes
        self.max_users = max_users
        self.sample_first = sample_first
        self.sample_every = sample_every
        self.lock = threading.Lock()
        self.until_ns = 0  # perf_counter_ns at which the current window ends
        self.window = 0  # current window start (epoch seconds)
        self.statements: dict[FingerprintState, _StatementAgg] = {}
        self.requests: dict[str, _RequestAgg] = {}
        self._closed: list[
            tuple[int, dict[FingerprintState, _StatementAgg], dict[str, _RequestAgg]]
        ] = []
        self._fingerprints: dict[tuple[str, str], FingerprintState] = {}
        self._channels: dict[str, StatementChannel] = {}
        # What the caps and failures cost, for tests and for the agent's own metrics.
        self.overflow_calls = 0
        self.overflow_requests = 0
        self.dropped_users = 0
        self.internal_errors = 0

    def channel(
        self, dialect: str, fingerprint_fn: FingerprintFn = fingerprint
    ) -> StatementChannel:
        """The statement recorder for one dialect (shared by every connection of that dialect)."""
        with self.lock:
            ch = self._channels.get(dialect)
            if ch is None:
                ch = self._channels[dialect] = StatementChannel(self, dialect, fingerprint_fn)
            return ch

    def fingerprint_state(self, fp: Fingerprint, dialect: str) -> FingerprintState:
        key = (dialect, fp.id)
        state = self._fingerprints.get(key)
        if state is None:
            if len(self._fingerprints) >= 10 * self.max_fingerprints:
                self._fingerprints.clear()  # bounded; sites are re-learnt by sampling
            state = FingerprintState(fp.id, fp.normalized, dialect)
            self._fingerprints[key] = state
        return state

    def roll(self, now_ns: int) -> None:
        """Start a new window if wall-clock time left the current one. Caller holds the lock."""
        wall = time.time()
        start = window_start(wall)
        if start != self.window:
            if self.statements or self.requests:
                self._closed.append((self.window, self.statements, self.requests))
            self.window = start
            self.statements = {}
            self.requests = {}
        self.until_ns = now_ns + int((start + WINDOW_SECONDS - wall) * 1e9)

    def overflow_statement(self, fp: FingerprintState) -> _StatementAgg:
        """The aggregate for a fingerprint new to this window, or the ``other`` one past the cap."""
        win = self.statements
        if len(win) >= self.max_fingerprints:
            self.overflow_calls += 1
            other = Fingerprint(OTHER_FINGERPRINT, OTHER_NORMALIZED)
            fp = self.fingerprint_state(other, fp.dialect)
            agg = win.get(fp)
            if agg is not None:
                return agg
        agg = win[fp] = _StatementAgg()
        return agg

    def record_request(
        self,
        route: str,
        t0: int,
        t1: int,
        error: bool,
        db_ns: int,
        db_calls: int,
        user: str | None,
        failed: bool,
    ) -> None:
        """Account one finished HTTP request (called by the middleware; never raises)."""
        try:
            d = t1 - t0
            key = bucket_key(d / 1e6)
            with self.lock:
                if t1 >= self.until_ns:
                    self.roll(t1)
                win = self.requests
                agg = win.get(route)
                if agg is None:
                    if len(win) >= self.max_routes:
                        self.overflow_requests += 1
                        route = OTHER_ROUTE
                        agg = win.get(route)
                    if agg is None:
                        agg = win[route] = _RequestAgg()
                agg.requests += 1
                agg.total_ns += d
                if d > agg.max_ns:
                    agg.max_ns = d
                agg.db_ns += db_ns
                agg.db_calls += db_calls
                b = agg.buckets
                b[key] = b.get(key, 0) + 1
                if error:
                    agg.errors += 1
                if user is not None:
                    if user in agg.users or len(agg.users) < self.max_users:
                        agg.users.add(user)
                        if failed:
                            agg.failed_users.add(user)
                    else:
                        self.dropped_users += 1
        except Exception:
            self.internal_errors += 1

    def drain(self) -> tuple[list[StatementWindow], list[RequestWindow]]:
        """Take everything aggregated so far (closed windows and the open one) as records."""
        with self.lock:
            taken = self._closed
            if self.statements or self.requests:
                taken.append((self.window, self.statements, self.requests))
            self._closed = []
            self.statements = {}
            self.requests = {}
        windows: dict[tuple[int, str, str], StatementWindow] = {}
        requests: list[RequestWindow] = []
        for start, stmts, reqs in taken:
            for fp, a in stmts.items():
                w = StatementWindow(
                    fingerprint=fp.id,
                    normalized=fp.normalized,
                    window_start=start,
                    calls=sum(a.buckets.values()),
                    total_ms=a.total_ns / 1e6,
                    max_ms=a.max_ns / 1e6,
                    dialect=fp.dialect,
                    source=SOURCE,
                    min_ms=a.min_ns / 1e6,
                    rows=a.rows,
                    errors=a.errors,
                    sketch=LatencySketch(dict(a.buckets)),
                    call_sites=tuple(fp.sites),
                )
                key = (start, fp.dialect, fp.id)
                if key in windows:  # the fingerprint registry was reset mid-window
                    _merge(windows[key], w)
                else:
                    windows[key] = w
            for route, r in reqs.items():
                requests.append(
                    RequestWindow(
                        route=route,
                        window_start=start,
                        requests=r.requests,
                        errors=r.errors,
                        total_ms=r.total_ns / 1e6,
                        max_ms=r.max_ns / 1e6,
                        db_ms=r.db_ns / 1e6,
                        db_calls=r.db_calls,
                        sketch=LatencySketch(dict(r.buckets)),
                        users=frozenset(r.users),
                        failed_users=frozenset(r.failed_users),
                    )
                )
        return list(windows.values()), requests


def _merge(into: StatementWindow, w: StatementWindow) -> None:
    into.calls += w.calls
    into.total_ms += w.total_ms
    into.max_ms = max(into.max_ms, w.max_ms)
    into.min_ms = min(x for x in (into.min_ms, w.min_ms) if x is not None)
    into.rows += w.rows
    into.errors += w.errors
    if into.sketch is not None and w.sketch is not None:
        into.sketch.merge(w.sketch)
    into.call_sites = tuple(dict.fromkeys(into.call_sites + w.call_sites))


class StatementChannel:
    """Records statements of one dialect; ``record`` is the whole per-statement cost."""

    __slots__ = ("_agg", "_fingerprint", "_texts", "dialect")

    def __init__(self, agg: Aggregator, dialect: str, fingerprint_fn: FingerprintFn) -> None:
        self._agg = agg
        self.dialect = dialect
        self._fingerprint = fingerprint_fn
        self._texts: dict[object, FingerprintState] = {}

    def record(self, sql: object, t0: int, t1: int, rows: int, errors: int) -> None:
        """Account one statement run from ``t0`` to ``t1`` (perf_counter_ns). Never raises."""
        try:
            fp = self._texts.get(sql)
            if fp is None:
                fp = self._intern(sql)
            c = fp.countdown - 1
            fp.countdown = c
            if c <= 0:
                self._sample(fp)
            d = t1 - t0
            req = current_request.get()
            if req is not None:
                req.db_ns += d
                req.db_calls += 1
            ms = d / 1e6
            key = ceil(log(ms if ms > MIN_MS else MIN_MS) / LOG_GAMMA)  # bucket_key, inlined
            agg = self._agg
            lock = agg.lock
            lock.acquire()
            try:
                if t1 >= agg.until_ns:
                    agg.roll(t1)
                a = agg.statements.get(fp)
                if a is None:
                    a = agg.overflow_statement(fp)
                a.total_ns += d
                if d > a.max_ns:
                    a.max_ns = d
                if d < a.min_ns:
                    a.min_ns = d
                if rows > 0:
                    a.rows += rows
                if errors:
                    a.errors += errors
                b = a.buckets
                b[key] = b.get(key, 0) + 1
            finally:
                lock.release()
        except Exception:
            self._agg.internal_errors += 1

    def _sample(self, fp: FingerprintState) -> None:
        """Walk the stack for the call site: a fingerprint's first calls, then one in N."""
        agg = self._agg
        fp.sampled += 1
        fp.countdown = 1 if fp.sampled < agg.sample_first else agg.sample_every
        site = find_call_site(sys._getframe(2))
        sites = fp.sites
        if site is not None and site not in sites and len(sites) < MAX_SITES:
            sites[site] = None

    def _intern(self, sql: object) -> FingerprintState:
        text = sql if isinstance(sql, str) else str(sql)
        try:
            fp = self._fingerprint(text, self.dialect)
        except Exception:
            # Never let an odd statement break the application, and never store its literals.
            fp = Fingerprint(UNPARSED_FINGERPRINT, "-- querywatch: statement could not be parsed")
        agg = self._agg
        with agg.lock:
            state = agg.fingerprint_state(fp, self.dialect)
        texts = self._texts
        if len(texts) >= MAX_TEXTS:
            texts.clear()
        texts[sql] = state
        return state
