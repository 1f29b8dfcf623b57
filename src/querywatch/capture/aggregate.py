"""In-process aggregation: per 10 s window and fingerprint (statements) or route (requests).

This is the hot path of in-app capture. Work done right after a thread wakes from a network wait
runs on cold caches and costs several times what it costs in a tight loop, so a statement does as
little as possible on the application thread: a text-keyed dict lookup (the fingerprint), a
countdown for call-site sampling, the request's db-time and fingerprint list when a request is
active, and one ``list.append`` of a small tuple. The aggregation (window, bucket maths, min/max,
sketch) runs in batches on the Recorder's flusher thread (``Aggregator.absorb``), where caches are
warm and the per-record cost is a fraction of the inline one.

Memory is bounded: raw records wait in ``pending``; at ``pending_wake`` the flusher is woken to
aggregate them, and an application thread that finds ``pending_max`` records waiting aggregates
them itself (so counts stay exact; that statement pays for the batch). At most
``max_fingerprints`` distinct fingerprints and ``max_routes`` routes per window (per flush);
statements beyond the cap are counted into one ``other`` fingerprint per dialect
(``OTHER_FINGERPRINT``), requests into the ``OTHER_ROUTE`` route, at most ``max_users`` user keys
are kept per route and window and ``max_repeat_keys`` (route, fingerprint) repeat rows per window.
Statement texts (the fingerprint cache) are bounded too.

Releases cost the statement path nothing: a fingerprint's state is per release (the channel's, set
once by ``instrument(release=...)``, the Recorder or ``QUERYWATCH_RELEASE``), so a statement's
release rides on the state it already looks up. Only a request whose release differs from the
channel's (a load balancer's header) swaps in that release's state, one dict lookup.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from math import ceil, log
from time import perf_counter_ns

from querywatch.capture.callsite import find_call_site
from querywatch.capture.context import FOLD_AT, TRACKING, current_request
from querywatch.records import (
    WINDOW_SECONDS,
    CallSite,
    RepeatWindow,
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
MAX_RELEASES = 16  # other releases' states remembered per fingerprint state (a header's values)
PENDING_WAKE = 4096
PENDING_MAX = 65_536
_WINDOW_NS = WINDOW_SECONDS * 1_000_000_000

FingerprintFn = Callable[[str, str], Fingerprint]


class FingerprintState:
    """One fingerprint of one release over the process lifetime: its call-site sampling counter
    and known sites. Windows are keyed by the state, so each release's calls add up apart."""

    __slots__ = (
        "countdown",
        "dialect",
        "id",
        "normalized",
        "release",
        "releases",
        "sampled",
        "sites",
    )

    def __init__(self, id: str, normalized: str, dialect: str, release: str = "") -> None:
        self.id = id
        self.normalized = normalized
        self.dialect = dialect
        self.release = release
        self.countdown = 1  # calls until the next call-site sample
        self.sampled = 0
        self.sites: dict[CallSite, None] = {}
        #: The same fingerprint's state for other releases, found without the lock.
        self.releases: dict[str, FingerprintState] = {}


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


class _Window:
    """Everything aggregated for one 10 s bucket."""

    __slots__ = ("repeats", "requests", "statements")

    def __init__(self) -> None:
        self.statements: dict[FingerprintState, _StatementAgg] = {}
        self.requests: dict[tuple[str, str], _RequestAgg] = {}  # (route, release)
        # (route, release, fingerprint) -> [requests, total repeats, max repeats]
        self.repeats: dict[tuple[str, str, FingerprintState], list[int]] = {}


Raw = tuple["FingerprintState", int, int, int, int]
"""One statement as the hot path leaves it: fingerprint, t0, t1 (perf_counter_ns), rows, errors."""


class Aggregator:
    """Windows of statement and request aggregates, drained by the Recorder's flusher thread."""

    def __init__(
        self,
        *,
        max_fingerprints: int = 2000,
        max_routes: int = 500,
        max_users: int = 10_000,
        max_repeat_keys: int = 2000,
        sample_first: int = 5,
        sample_every: int = 100,
        repeat_threshold: int = 5,
        pending_wake: int = PENDING_WAKE,
        pending_max: int = PENDING_MAX,
        release: str = "",
    ) -> None:
        self.release = release
        """The release statements and requests are recorded under unless told otherwise."""
        self.max_fingerprints = max_fingerprints
        self.max_routes = max_routes
        self.max_users = max_users
        self.max_repeat_keys = max_repeat_keys
        self.sample_first = sample_first
        self.sample_every = sample_every
        self.repeat_threshold = repeat_threshold
        self.pending_wake = pending_wake
        self.pending_max = max(pending_max, pending_wake)
        self.lock = threading.Lock()
        self.pending: list[Raw] = []
        """Raw statements not aggregated yet. Appended to without a lock (atomic under the GIL);
        only ``absorb`` (holding ``lock``) removes from the front, so nothing is lost."""
        self.wake: Callable[[], None] | None = None
        """Asks the flusher thread to ``absorb`` soon (set by the Recorder)."""
        self._woken = False
        self._windows: dict[int, _Window] = {}
        self._fingerprints: dict[tuple[str, str, str], FingerprintState] = {}
        self._channels: dict[tuple[str, str], StatementChannel] = {}
        # What the caps and failures cost, for tests and for the agent's own metrics.
        self.overflow_calls = 0
        self.overflow_requests = 0
        self.dropped_users = 0
        self.dropped_repeats = 0
        self.inline_absorbs = 0  # times an application thread found pending_max and aggregated
        self.internal_errors = 0

    def channel(
        self,
        dialect: str,
        fingerprint_fn: FingerprintFn = fingerprint,
        release: str | None = None,
    ) -> StatementChannel:
        """The statement recorder for one dialect and release (shared by every connection of
        that dialect and release); ``release=None`` takes the aggregator's."""
        release = self.release if release is None else release
        with self.lock:
            ch = self._channels.get((dialect, release))
            if ch is None:
                ch = StatementChannel(self, dialect, fingerprint_fn, release)
                self._channels[(dialect, release)] = ch
            return ch

    def fingerprint_state(
        self, fp: Fingerprint, dialect: str, release: str = ""
    ) -> FingerprintState:
        """The one state of a fingerprint, dialect and release. Caller holds the lock."""
        key = (dialect, fp.id, release)
        state = self._fingerprints.get(key)
        if state is None:
            if len(self._fingerprints) >= 10 * self.max_fingerprints:
                self._fingerprints.clear()  # bounded; sites are re-learnt by sampling
            state = FingerprintState(fp.id, fp.normalized, dialect, release)
            self._fingerprints[key] = state
        return state

    def for_release(self, state: FingerprintState, release: str) -> FingerprintState:
        """``state``'s fingerprint in another release (a request served by that release)."""
        other = state.releases.get(release)
        if other is None:
            with self.lock:
                other = self.fingerprint_state(
                    Fingerprint(state.id, state.normalized), state.dialect, release
                )
                if len(state.releases) >= MAX_RELEASES:
                    state.releases.clear()
                state.releases[release] = other
        return other

    def _window(self, start: int) -> _Window:
        win = self._windows.get(start)
        if win is None:
            win = self._windows[start] = _Window()
        return win

    # -- statements -----------------------------------------------------------------------------

    def notice_pending(self, n: int) -> None:
        """Called by the hot path once ``pending`` reaches ``pending_wake`` records."""
        if n >= self.pending_max:
            self.inline_absorbs += 1
            self.absorb()
        elif not self._woken:
            self._woken = True
            wake = self.wake
            if wake is not None:
                wake()

    def absorb(self) -> None:
        """Aggregate the pending raw statements into their windows (flusher thread, batched)."""
        with self.lock:
            self._woken = False
            pending = self.pending
            n = len(pending)
            if not n:
                return
            batch = pending[:n]
            del pending[:n]  # records appended meanwhile sit past n and stay
            self._absorb(batch)

    def _absorb(self, batch: list[Raw]) -> None:
        """The aggregation the hot path used to do per statement. Caller holds the lock."""
        # perf_counter_ns -> epoch ns; read once per batch (drift over seconds is negligible).
        offset = time.time_ns() - perf_counter_ns()
        lo = hi = 0
        stmts: dict[FingerprintState, _StatementAgg] = {}
        minimum = MIN_MS
        log_gamma = LOG_GAMMA
        for fp, t0, t1, rows, errors in batch:
            if not lo <= t1 < hi:
                epoch = (t1 + offset) // _WINDOW_NS * _WINDOW_NS
                lo = epoch - offset
                hi = lo + _WINDOW_NS
                stmts = self._window(epoch // 1_000_000_000).statements
            a = stmts.get(fp)
            if a is None:
                a = self._new_statement(stmts, fp)
            d = t1 - t0
            a.total_ns += d
            if d > a.max_ns:
                a.max_ns = d
            if d < a.min_ns:
                a.min_ns = d
            if rows > 0:
                a.rows += rows
            if errors:
                a.errors += errors
            ms = d / 1e6
            key = ceil(log(ms if ms > minimum else minimum) / log_gamma)  # bucket_key, inlined
            b = a.buckets
            b[key] = b.get(key, 0) + 1

    def _new_statement(
        self, stmts: dict[FingerprintState, _StatementAgg], fp: FingerprintState
    ) -> _StatementAgg:
        """The aggregate for a fingerprint new to this window, or the ``other`` one past the cap."""
        if len(stmts) >= self.max_fingerprints:
            self.overflow_calls += 1
            other = Fingerprint(OTHER_FINGERPRINT, OTHER_NORMALIZED)
            fp = self.fingerprint_state(other, fp.dialect, fp.release)
            agg = stmts.get(fp)
            if agg is not None:
                return agg
        agg = stmts[fp] = _StatementAgg()
        return agg

    # -- requests -------------------------------------------------------------------------------

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
        repeats: Mapping[FingerprintState, int] | None = None,
        release: str | None = None,
    ) -> None:
        """Account one finished HTTP request (called by the middleware; never raises).

        ``repeats``: fingerprints this request ran at least ``repeat_threshold`` times, with
        their counts (the N+1 signal). ``release``: the release that served it (``None``: the
        aggregator's).
        """
        try:
            if release is None:
                release = self.release
            d = t1 - t0
            key = bucket_key(d / 1e6)
            start = window_start(time.time())
            with self.lock:
                win = self._window(start)
                reqs = win.requests
                agg = reqs.get((route, release))
                if agg is None:
                    if len(reqs) >= self.max_routes:
                        self.overflow_requests += 1
                        route = OTHER_ROUTE
                        agg = reqs.get((route, release))
                    if agg is None:
                        agg = reqs[(route, release)] = _RequestAgg()
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
                if repeats:
                    self._add_repeats(win, route, release, repeats)
        except Exception:
            self.internal_errors += 1

    def _add_repeats(
        self, win: _Window, route: str, release: str, repeats: Mapping[FingerprintState, int]
    ) -> None:
        rep = win.repeats
        for fp, n in repeats.items():
            r = rep.get((route, release, fp))
            if r is None:
                if len(rep) >= self.max_repeat_keys:
                    self.dropped_repeats += 1
                    continue
                r = rep[(route, release, fp)] = [0, 0, 0]
            r[0] += 1
            r[1] += n
            if n > r[2]:
                r[2] = n

    # -- draining -------------------------------------------------------------------------------

    def drain(self) -> tuple[list[StatementWindow], list[RequestWindow], list[RepeatWindow]]:
        """Take everything recorded so far (pending raw statements included) as records."""
        with self.lock:
            self._woken = False
            pending = self.pending
            n = len(pending)
            if n:
                batch = pending[:n]
                del pending[:n]
                self._absorb(batch)
            taken = self._windows
            self._windows = {}
        windows: dict[tuple[int, str, str, str], StatementWindow] = {}
        requests: list[RequestWindow] = []
        repeats: dict[tuple[int, str, str, str, str], RepeatWindow] = {}
        for start in sorted(taken):
            win = taken[start]
            for fp, a in win.statements.items():
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
                    release=fp.release,
                )
                key = (start, fp.dialect, fp.id, fp.release)
                if key in windows:  # the fingerprint registry was reset mid-window
                    _merge(windows[key], w)
                else:
                    windows[key] = w
            for (route, release), r in win.requests.items():
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
                        release=release,
                    )
                )
            for (route, release, fp), (nreq, total, mx) in win.repeats.items():
                rkey = (start, route, release, fp.dialect, fp.id)
                known = repeats.get(rkey)
                if known is not None:  # the fingerprint registry was reset mid-window
                    known.requests += nreq
                    known.total_repeats += total
                    known.max_repeats = max(known.max_repeats, mx)
                    continue
                repeats[rkey] = RepeatWindow(
                    route=route,
                    fingerprint=fp.id,
                    window_start=start,
                    requests=nreq,
                    total_repeats=total,
                    max_repeats=mx,
                    normalized=fp.normalized,
                    dialect=fp.dialect,
                    release=release,
                )
        return list(windows.values()), requests, list(repeats.values())


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
    """Records statements of one dialect and release; ``record`` is the whole per-statement cost."""

    __slots__ = ("_agg", "_fingerprint", "_pending", "_texts", "_wake_at", "dialect", "release")

    def __init__(
        self, agg: Aggregator, dialect: str, fingerprint_fn: FingerprintFn, release: str = ""
    ) -> None:
        self._agg = agg
        self._pending = agg.pending
        self._wake_at = agg.pending_wake
        self.dialect = dialect
        self.release = release
        self._fingerprint = fingerprint_fn
        self._texts: dict[object, FingerprintState] = {}

    def record(self, sql: object, t0: int, t1: int, rows: int, errors: int) -> None:
        """Account one statement run from ``t0`` to ``t1`` (perf_counter_ns). Never raises.

        Runs right after the driver returns, usually on caches a network wait left cold, so it
        only finds the fingerprint (of the channel's release, or of the request's when that
        differs), samples the call site when due, feeds the current request and appends a tuple;
        the flusher thread does the rest in batches (``absorb``).
        """
        try:
            fp = self._texts.get(sql)
            if fp is None:
                fp = self._intern(sql)
            req = current_request.get() if TRACKING.on else None
            if req is not None:
                release = req.release
                if release is not None and release != fp.release:
                    other = fp.releases.get(release)
                    fp = other if other is not None else self._agg.for_release(fp, release)
            c = fp.countdown - 1
            fp.countdown = c
            if c <= 0:
                self._sample(fp)
            raw = (fp, t0, t1, rows, errors)
            if req is not None:
                raws = req.raws
                raws.append(raw)
                if len(raws) >= FOLD_AT:
                    req.fold()
            pending = self._pending
            pending.append(raw)
            if len(pending) >= self._wake_at:
                self._agg.notice_pending(len(pending))
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
            state = agg.fingerprint_state(fp, self.dialect, self.release)
        texts = self._texts
        if len(texts) >= MAX_TEXTS:
            texts.clear()
        texts[sql] = state
        return state
