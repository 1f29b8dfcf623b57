"""OpenTelemetry spans in, windows out: the source behind `querywatch serve`'s ``/v1/traces``.

A service traced with OpenTelemetry already carries every statement in its database client spans
(``db.query.text`` or ``db.statement``, with ``db.system.name`` or ``db.system``). Each such span
is one call: fingerprinted in the dialect its system names, timed by its start and end, an error
when its status is. ``service.version`` (a resource attribute) is the release, ``code.*`` the
call site. A SERVER (or CONSUMER: a job) span is a request: its ``http.route`` (else its name) is
the route, and the database spans below it give the route's database time and its N+1 repeats.
The windows are the ones in-app capture writes (:mod:`querywatch.records`), under source "otlp".

Spans of one trace need not arrive together: an exporter sends in batches, and a request that
runs a thousand statements fills several before its own SERVER span ends. So the receiver keeps
bounded memories, least recently used dropped first: the last :data:`RECENT_SPANS` spans and the
request each belongs to (a child arriving later finds its route); statements still waiting for
an ancestor span (claimed when it arrives), and finished requests' calls per fingerprint (a late
child still counts toward their repeats), :data:`MEMORY_ENTRIES` fingerprint counts each. Past
those bounds a statement is still counted in its window; only its route is lost. Worst case the
memories hold a few tens of megabytes; a service whose traces arrive whole uses far less.

A database span with a database span below it (an ORM's span over the driver's, when both are
instrumented) is one statement seen twice: the inner one counts, the outer one is skipped.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from querywatch.capture.aggregate import MAX_SITES, UNPARSED_FINGERPRINT
from querywatch.capture.otlp_read import SpanFacts, SpanKey, read_spans, refusal_message
from querywatch.config import DEFAULT_SLO_MS
from querywatch.records import CallSite, RepeatWindow, RequestWindow, StatementWindow, window_start
from querywatch.sketch import LatencySketch, bucket_key
from querywatch.sql import Fingerprint, fingerprint
from querywatch.store import windows
from querywatch.store.base import Store, Tx

if TYPE_CHECKING:
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

SOURCE = "otlp"
RECENT_SPANS = 10_000
"""Spans remembered with the request they belong to (and spans with a database span below)."""
MEMORY_ENTRIES = 50_000
"""Fingerprint counts kept for statements waiting for their request, and for finished requests
(a request weighs one plus its distinct fingerprints)."""
RECENT_BATCHES = 1000  # digests of recent batches: an exporter's retry of one is not counted twice
MAX_COUNTED_FINGERPRINTS = 256  # per request, for its repeats (its time and calls count past it)
MAX_HOPS = 256  # parent links followed from one span

K = TypeVar("K")
V = TypeVar("V")
FpKey = tuple[str, str, str]
"""(dialect, fingerprint id, normalized text)."""


@dataclass(slots=True)
class _Tally:
    """One request's statements so far: database time, calls, and calls per fingerprint."""

    db_ns: int = 0
    calls: int = 0
    counts: dict[FpKey, int] = field(default_factory=dict)

    def add(self, fp: FpKey, duration_ns: int) -> None:
        self.db_ns += duration_ns
        self.calls += 1
        self._count(fp, 1)

    def merge(self, other: _Tally) -> None:
        self.db_ns += other.db_ns
        self.calls += other.calls
        for fp, n in other.counts.items():
            self._count(fp, n)

    def weight(self) -> int:
        return 1 + len(self.counts)

    def _count(self, fp: FpKey, n: int) -> None:
        if fp in self.counts or len(self.counts) < MAX_COUNTED_FINGERPRINTS:
            self.counts[fp] = self.counts.get(fp, 0) + n


@dataclass(slots=True)
class _Done:
    """A request finished in an earlier batch, for children that arrive after it."""

    route: str
    release: str
    window: int
    counts: dict[FpKey, int]

    def weight(self) -> int:
        return 1 + len(self.counts)


@dataclass(slots=True)
class Batch:
    """The windows one export turns into, written in one transaction (:func:`write_batch`)."""

    statements: list[StatementWindow] = field(default_factory=list)
    requests: list[RequestWindow] = field(default_factory=list)
    repeats: list[RepeatWindow] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Received:
    """What became of one export: spans taken, spans refused and why (OTLP's partial success)."""

    accepted: int
    rejected: int = 0
    message: str = ""
    statements: int = 0  # database spans counted
    duplicate: bool = False  # the same batch again (an exporter's retry): not counted twice


class SpanReceiver:
    """Turns OTLP span batches into windows, remembering recent spans across batches.

    Thread-safe: one export at a time is planned, written (``write``) and only then remembered,
    so a write that fails (the store down: the exporter retries) changes nothing.
    """

    def __init__(
        self,
        *,
        repeat_threshold: int = 5,
        slo_ms: float = DEFAULT_SLO_MS,
        recent: int = RECENT_SPANS,
        entries: int = MEMORY_ENTRIES,
    ) -> None:
        self.repeat_threshold = repeat_threshold
        self.slo_ns = int(slo_ms * 1e6)
        self._lock = threading.Lock()
        self._known: _Memory[SpanKey, SpanKey | None] = _Memory(recent)
        self._db_parents: _Memory[SpanKey, None] = _Memory(recent)
        self._waiting: _Memory[SpanKey, _Tally] = _Memory(entries, _Tally.weight)
        self._done: _Memory[SpanKey, _Done] = _Memory(entries, _Done.weight)
        self._batches: _Memory[bytes, None] = _Memory(RECENT_BATCHES)

    def receive(
        self,
        resource_spans: Iterable[ResourceSpans],
        write: Callable[[Batch], None],
        *,
        body: bytes | None = None,
        now_ns: int,
    ) -> Received:
        """Read one export's spans, ``write`` their windows, then remember them.

        ``body``: the decoded request's bytes, to recognise an exporter's retry of a batch that
        was already written (its reply lost). ``write`` raising leaves the receiver unchanged.
        """
        digest = hashlib.blake2b(body, digest_size=16).digest() if body is not None else None
        spans, refused = read_spans(resource_spans, now_ns)
        rejected = sum(refused.values())
        with self._lock:
            if digest is not None and digest in self._batches:
                return Received(len(spans), rejected, refusal_message(refused), duplicate=True)
            plan = _Plan(self, spans)
            write(plan.batch())
            plan.commit()
            if digest is not None:
                self._batches.put(digest, None)
        return Received(len(spans), rejected, refusal_message(refused), plan.statements)


class _Plan:
    """One batch worked out against the receiver's memories, without changing them."""

    def __init__(self, receiver: SpanReceiver, spans: list[SpanFacts]) -> None:
        self.r = receiver
        self.spans = spans
        self.index = {s.key: s for s in spans}
        self.anchors: dict[SpanKey, SpanKey | None] = {}
        self.tallies: dict[SpanKey, _Tally] = {}
        self.claimed: list[SpanKey] = []
        self.late: dict[SpanKey, _Tally] = {}
        self.finished: dict[SpanKey, _Tally] = {}  # requests this batch ends, by span
        self.statements = 0
        self._windows: dict[tuple[int, str, str, str], _StatementAgg] = {}
        self._requests: dict[tuple[str, int, str], _RequestAgg] = {}
        self._repeats: dict[tuple[str, int, str, FpKey], list[int]] = {}
        self._plan()

    def _plan(self) -> None:
        r = self.r
        layered = {s.parent for s in self.spans if s.statement is not None and s.parent}
        for s in self.spans:
            if s.statement is None or s.key in layered or s.key in r._db_parents:
                continue
            fp = self._count_statement(s)
            anchor = self.anchor(s.key)
            if anchor is not None:
                self.tallies.setdefault(anchor, _Tally()).add(fp, s.duration_ns)
        for key in self.index.keys() & r._waiting.items.keys():  # statements that waited
            self.claimed.append(key)
            anchor = self.anchor(key)
            if anchor is not None:
                self.tallies.setdefault(anchor, _Tally()).merge(r._waiting.items[key])
        for s in self.spans:
            if s.route is not None and s.key not in r._done:
                self._count_request(s, self.tallies.pop(s.key, _Tally()))
        for key in [k for k in self.tallies if k in r._done]:
            self.late[key] = tally = self.tallies.pop(key)
            self._count_late(r._done.items[key], tally)

    def anchor(self, key: SpanKey) -> SpanKey | None:
        """The request span ``key`` belongs to (this batch's or a recent one's), else the
        nearest ancestor not seen yet (to wait for), else None (a trace without a request)."""
        known = self.r._known
        path: list[SpanKey] = []
        found: SpanKey | None = None
        at = key
        for _ in range(MAX_HOPS):
            if at in self.anchors:
                found = self.anchors[at]
                break
            span = self.index.get(at)
            if span is None:  # from an earlier batch, or not seen yet
                if at not in known.items:
                    found = at  # wait for it
                    break
                nxt = known.items[at]
                if nxt is None or nxt == at:
                    found = nxt
                    break
                at = nxt
                continue
            if span.route is not None:
                found = at
                break
            path.append(at)
            if span.parent is None:
                break  # a trace without a request (a script, a cron job)
            at = span.parent
        for k in path:  # a loop of parent links (not a tree) ends here too: None
            self.anchors[k] = found
        return found

    def _count_statement(self, s: SpanFacts) -> FpKey:
        assert s.statement is not None
        try:
            fp = fingerprint(s.statement, s.dialect)
        except Exception:  # never store the literals of a statement that cannot be read
            fp = Fingerprint(UNPARSED_FINGERPRINT, "-- querywatch: statement could not be parsed")
        self.statements += 1
        key = (window_start(s.end_ns / 1e9), s.dialect, fp.id, s.release)
        agg = self._windows.get(key)
        if agg is None:
            agg = self._windows[key] = _StatementAgg(fp.normalized)
        agg.add(s)
        return (s.dialect, fp.id, fp.normalized)

    def _count_request(self, s: SpanFacts, tally: _Tally) -> None:
        assert s.route is not None
        start = window_start(s.end_ns / 1e9)
        agg = self._request(s.route, start, s.release)
        agg.add(s, tally, failed=s.error or s.duration_ns > self.r.slo_ns)
        self.finished[s.key] = tally
        for fp, n in tally.counts.items():
            if n >= self.r.repeat_threshold:
                self._repeat(s.route, start, s.release, fp, 1, n, n)

    def _count_late(self, done: _Done, tally: _Tally) -> None:
        """Statements of a request finished in an earlier batch: its database time, and its
        repeats as they cross (or go on past) the threshold."""
        agg = self._request(done.route, done.window, done.release)
        agg.db_ns += tally.db_ns
        agg.db_calls += tally.calls
        threshold = self.r.repeat_threshold
        for fp, n in tally.counts.items():
            before = done.counts.get(fp, 0)
            after = before + n
            if before >= threshold:
                self._repeat(done.route, done.window, done.release, fp, 0, n, after)
            elif after >= threshold:
                self._repeat(done.route, done.window, done.release, fp, 1, after, after)

    def _request(self, route: str, start: int, release: str) -> _RequestAgg:
        agg = self._requests.get((route, start, release))
        if agg is None:
            agg = self._requests[(route, start, release)] = _RequestAgg()
        return agg

    def _repeat(
        self, route: str, start: int, release: str, fp: FpKey, requests: int, total: int, top: int
    ) -> None:
        row = self._repeats.setdefault((route, start, release, fp), [0, 0, 0])
        row[0] += requests
        row[1] += total
        row[2] = max(row[2], top)

    def batch(self) -> Batch:
        statements = [
            a.window(fp_id, start, dialect, release)
            for (start, dialect, fp_id, release), a in self._windows.items()
        ]
        requests = [
            a.window(route, start, release) for (route, start, release), a in self._requests.items()
        ]
        repeats = [
            RepeatWindow(route, fp[1], start, n, total, top, fp[2], fp[0], release)
            for (route, start, release, fp), (n, total, top) in self._repeats.items()
        ]
        return Batch(statements, requests, repeats)

    def commit(self) -> None:
        """Remember this batch: its spans' requests, finished requests, statements still
        waiting for an ancestor, and which spans have a database span below them."""
        r = self.r
        for key in self.claimed:
            r._waiting.pop(key)
        for key, tally in self.tallies.items():
            waiting = r._waiting.pop(key)
            if waiting is not None:
                tally.merge(waiting)
            r._waiting.put(key, tally)
        for key, tally in self.late.items():
            done = r._done.pop(key)
            if done is not None:
                for fp, n in tally.counts.items():
                    done.counts[fp] = done.counts.get(fp, 0) + n
                r._done.put(key, done)
        for s in self.spans:
            if s.statement is not None:
                if s.parent is not None:
                    r._db_parents.put(s.parent, None)
                continue
            r._known.put(s.key, self.anchor(s.key))
            ended = self.finished.get(s.key)
            if s.route is not None and ended is not None:
                start = window_start(s.end_ns / 1e9)
                r._done.put(s.key, _Done(s.route, s.release, start, dict(ended.counts)))


class _StatementAgg:
    __slots__ = ("buckets", "errors", "max_ns", "min_ns", "normalized", "rows", "sites", "total_ns")

    def __init__(self, normalized: str) -> None:
        self.normalized = normalized
        self.total_ns = self.max_ns = self.rows = self.errors = 0
        self.min_ns: int | None = None
        self.buckets: Counter[int] = Counter()
        self.sites: dict[CallSite, None] = {}

    def add(self, s: SpanFacts) -> None:
        d = s.duration_ns
        self.total_ns += d
        self.max_ns = max(self.max_ns, d)
        self.min_ns = d if self.min_ns is None else min(self.min_ns, d)
        self.rows += s.rows
        self.errors += s.error
        self.buckets[bucket_key(d / 1e6)] += 1
        if s.site is not None and len(self.sites) < MAX_SITES:
            self.sites[s.site] = None

    def window(self, fp_id: str, start: int, dialect: str, release: str) -> StatementWindow:
        return StatementWindow(
            fingerprint=fp_id,
            normalized=self.normalized,
            window_start=start,
            calls=self.buckets.total(),
            total_ms=self.total_ns / 1e6,
            max_ms=self.max_ns / 1e6,
            dialect=dialect,
            source=SOURCE,
            min_ms=None if self.min_ns is None else self.min_ns / 1e6,
            rows=self.rows,
            errors=self.errors,
            sketch=LatencySketch(dict(self.buckets)),
            call_sites=tuple(self.sites),
            release=release,
        )


class _RequestAgg:
    __slots__ = (
        "buckets",
        "db_calls",
        "db_ns",
        "errors",
        "failed",
        "max_ns",
        "requests",
        "total_ns",
        "users",
    )

    def __init__(self) -> None:
        self.requests = self.errors = self.total_ns = self.max_ns = self.db_ns = self.db_calls = 0
        self.buckets: Counter[int] = Counter()
        self.users: set[str] = set()
        self.failed: set[str] = set()

    def add(self, s: SpanFacts, tally: _Tally, *, failed: bool) -> None:
        self.requests += 1
        self.errors += s.error
        self.total_ns += s.duration_ns
        self.max_ns = max(self.max_ns, s.duration_ns)
        self.db_ns += tally.db_ns
        self.db_calls += tally.calls
        self.buckets[bucket_key(s.duration_ns / 1e6)] += 1
        if s.user is not None:
            self.users.add(s.user)
            if failed:
                self.failed.add(s.user)

    def window(self, route: str, start: int, release: str) -> RequestWindow:
        """The window; one that only adds late statements' time has no requests, no sketch."""
        return RequestWindow(
            route=route,
            window_start=start,
            requests=self.requests,
            errors=self.errors,
            total_ms=self.total_ns / 1e6,
            max_ms=self.max_ns / 1e6,
            db_ms=self.db_ns / 1e6,
            db_calls=self.db_calls,
            sketch=LatencySketch(dict(self.buckets)) if self.requests else None,
            users=frozenset(self.users),
            failed_users=frozenset(self.failed),
            release=release,
        )


def write_batch(store: Store, batch: Batch) -> None:
    """Write one export's windows in one transaction: an export lands whole or not at all (so
    the exporter's retry after a failure never counts a statement twice)."""

    def write(tx: Tx) -> None:
        if batch.statements:
            windows.write_windows(tx, batch.statements)
        if batch.requests:
            windows.write_requests(tx, batch.requests)
        if batch.repeats:
            windows.write_repeats(tx, batch.repeats)

    if batch.statements or batch.requests or batch.repeats:
        store.transaction(write)


class _Memory(Generic[K, V]):
    """A map that drops its least recently stored entries past ``limit`` in total weight."""

    def __init__(self, limit: int, weight: Callable[[V], int] | None = None) -> None:
        self.limit = limit
        self.weight = weight
        self.items: OrderedDict[K, V] = OrderedDict()
        self.size = 0

    def __contains__(self, key: K) -> bool:
        return key in self.items

    def put(self, key: K, value: V) -> None:
        self.pop(key)
        self.items[key] = value
        self.size += self._weigh(value)
        while self.size > self.limit and self.items:
            _, dropped = self.items.popitem(last=False)
            self.size -= self._weigh(dropped)

    def pop(self, key: K) -> V | None:
        if key not in self.items:
            return None
        value = self.items.pop(key)
        self.size -= self._weigh(value)
        return value

    def _weigh(self, value: V) -> int:
        return 1 if self.weight is None else self.weight(value)
