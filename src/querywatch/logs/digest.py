"""Per-fingerprint aggregation of log records, in memory bounded by the number of fingerprints.

A 10 GB log and a 100 MB one of the same application need the same memory: each fingerprint
keeps counters, a latency sketch (percentiles to 1%), its slowest sample and slowest plan, and
the log keeps one counter pair per minute for the charts (coarsened to wider buckets if a log
spans more than :data:`MAX_BUCKETS` of them). Past :data:`MAX_FINGERPRINTS` new fingerprints are
folded into one "other" row rather than growing without end.

Digests of several files or byte ranges merge (``digest -j N`` merges its workers' digests), and
deploy times split a digest into phases, so the report compares before and after each deploy.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from querywatch.logs.fpcache import Fingerprints
from querywatch.logs.model import LogStatement
from querywatch.sketch import LOG_GAMMA, MIN_MS, LatencySketch, bucket_key

MAX_FINGERPRINTS = 100_000
MAX_BUCKETS = 20_000
MAX_SAMPLE_CHARS = 20_000
MAX_ORPHAN_MESSAGES = 200
OTHER = "(other)"  # the row fingerprints past MAX_FINGERPRINTS fold into

MIN_KEY = bucket_key(MIN_MS)
_FINGERPRINTS: dict[str, Fingerprints] = {}


def _fingerprints(dialect: str) -> Fingerprints:
    """One shape cache per dialect and process, shared by every file a digest reads."""
    got = _FINGERPRINTS.get(dialect)
    if got is None:
        got = _FINGERPRINTS[dialect] = Fingerprints(dialect)
    return got


_PARAM_VALUE = re.compile(r"(\$\d+ = )(?:'(?:[^']|'')*'|NULL)")


def redact_params(params: str) -> str:
    """Bind parameters as logged, values replaced: ``$1 = '42'`` → ``$1 = ?``."""
    return _PARAM_VALUE.sub(r"\1?", params)


@dataclass(slots=True)
class Sample:
    """One statement as logged: the slowest run of a fingerprint, or its slowest plan."""

    duration_ms: float
    text: str
    at: float
    file: str
    line: int
    params: str | None = None
    plan: str | None = None


@dataclass(slots=True)
class FingerprintStats:
    fingerprint: str
    normalized: str
    calls: int = 0
    timed: int = 0  # calls the log gave a duration for
    total_ms: float = 0.0
    max_ms: float = 0.0
    min_ms: float | None = None
    sketch: LatencySketch = field(default_factory=LatencySketch)
    rows: int | None = None
    rows_examined: int | None = None
    lock_ms: float = 0.0  # MySQL's Lock_time, summed
    errors: int = 0
    error_example: str = ""
    lock_waits: int = 0
    lock_wait_ms: float = 0.0
    temp_files: int = 0
    temp_bytes: int = 0
    plans: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0
    slowest: Sample | None = None
    slowest_plan: Sample | None = None

    @property
    def mean_ms(self) -> float | None:
        return self.total_ms / self.timed if self.timed else None

    def quantile(self, q: float) -> float | None:
        return self.sketch.quantile(q)

    def merge(self, o: FingerprintStats) -> None:
        self.calls += o.calls
        self.timed += o.timed
        self.total_ms += o.total_ms
        self.max_ms = max(self.max_ms, o.max_ms)
        if o.min_ms is not None and (self.min_ms is None or o.min_ms < self.min_ms):
            self.min_ms = o.min_ms
        self.sketch.merge(o.sketch)
        if o.rows is not None:
            self.rows = (self.rows or 0) + o.rows
        if o.rows_examined is not None:
            self.rows_examined = (self.rows_examined or 0) + o.rows_examined
        self.lock_ms += o.lock_ms
        self.errors += o.errors
        self.error_example = self.error_example or o.error_example
        self.lock_waits += o.lock_waits
        self.lock_wait_ms += o.lock_wait_ms
        self.temp_files += o.temp_files
        self.temp_bytes += o.temp_bytes
        self.plans += o.plans
        if o.first_seen and (not self.first_seen or o.first_seen < self.first_seen):
            self.first_seen = o.first_seen
        self.last_seen = max(self.last_seen, o.last_seen)
        if o.slowest and (not self.slowest or o.slowest.duration_ms > self.slowest.duration_ms):
            self.slowest = o.slowest
        if o.slowest_plan and (
            not self.slowest_plan or o.slowest_plan.duration_ms > self.slowest_plan.duration_ms
        ):
            self.slowest_plan = o.slowest_plan


@dataclass(frozen=True, slots=True)
class Phase:
    """A stretch of the log between deploys (``label`` names what was running)."""

    label: str
    start: float | None  # None: from the log's beginning
    end: float | None  # None: to its end


@dataclass(slots=True)
class Digest:
    """Everything a digest report shows; ``consume`` is the hot loop."""

    dialect: str = "postgres"
    phases: tuple[Phase, ...] = (Phase("whole log", None, None),)
    by_phase: list[dict[str, FingerprintStats]] = field(default_factory=list)
    minute_width: int = 60
    per_minute: dict[int, list[float]] = field(default_factory=dict)  # bucket -> [calls, ms]
    records: int = 0
    statements: int = 0
    unattributed: dict[str, int] = field(default_factory=dict)  # kind -> records without text
    orphan_errors: dict[str, int] = field(default_factory=dict)  # message -> count
    first_seen: float = 0.0  # of the first new fingerprint (see ``span`` for the log's)
    window_sink: Callable[[LogStatement, str, str], None] | None = None

    def __post_init__(self) -> None:
        if not self.by_phase:
            self.by_phase = [{} for _ in self.phases]

    @property
    def span(self) -> tuple[float, float]:
        """The first and last time any fingerprint was seen (0.0 when the log had no times)."""
        firsts = [st.first_seen for ph in self.by_phase for st in ph.values() if st.first_seen]
        lasts = [st.last_seen for ph in self.by_phase for st in ph.values()]
        return (min(firsts, default=0.0), max(lasts, default=0.0))

    @property
    def fingerprints(self) -> int:
        return len({fp for phase in self.by_phase for fp in phase})

    def consume(self, records: Iterable[LogStatement], file: str = "") -> None:
        """Aggregate records (one parser's output, in order). The hot loop of a digest."""
        fps = _fingerprints(self.dialect)
        bounds = [p.start for p in self.phases[1:] if p.start is not None]
        by_phase = self.by_phase
        entries = by_phase[0]
        per_minute = self.per_minute
        sink = self.window_sink
        width = self.minute_width
        log, ceil, inv_gamma = math.log, math.ceil, 1 / LOG_GAMMA
        minute = -1
        slot: list[float] = [0.0, 0.0]
        n = statements = 0
        for rec in records:
            n += 1
            text = rec.text
            if not text:
                self._unattributed(rec)
                continue
            fp, normalized = fps(text)
            at = rec.at
            if bounds:
                entries = by_phase[bisect.bisect_right(bounds, at)]
            st = entries.get(fp)
            if st is None:
                st = self._new(entries, fp, normalized, at)
            if at > st.last_seen:
                st.last_seen = at
            elif at and (at < st.first_seen or not st.first_seen):
                st.first_seen = at
            if rec.kind != "statement":
                self._other(st, rec, file)
                if sink is not None and rec.kind == "error":
                    sink(rec, fp, normalized)
                continue
            statements += 1
            st.calls += 1
            ms = rec.duration_ms
            if ms is not None:
                st.timed += 1
                st.total_ms += ms
                if ms > st.max_ms or st.slowest is None:
                    st.max_ms = max(ms, st.max_ms)
                    st.slowest = Sample(ms, text[:MAX_SAMPLE_CHARS], at, file, rec.line, rec.params)
                if st.min_ms is None or ms < st.min_ms:
                    st.min_ms = ms
                sketch = st.sketch
                key = ceil(log(ms) * inv_gamma) if ms > MIN_MS else MIN_KEY
                buckets = sketch.buckets
                buckets[key] = buckets.get(key, 0) + 1
                sketch.count += 1
            elif st.slowest is None:
                st.slowest = Sample(0.0, text[:MAX_SAMPLE_CHARS], at, file, rec.line, rec.params)
            if rec.rows is not None:
                st.rows = (st.rows or 0) + rec.rows
                if rec.rows_examined is not None:
                    st.rows_examined = (st.rows_examined or 0) + rec.rows_examined
                if rec.lock_ms:
                    st.lock_ms += rec.lock_ms
            if at:
                m = int(at // width)
                if m != minute:
                    minute = m
                    got = per_minute.get(m)
                    if got is None:
                        got = per_minute[m] = [0.0, 0.0]
                        if len(per_minute) > MAX_BUCKETS:
                            self._coarsen()
                            width, per_minute, minute = self.minute_width, self.per_minute, -1
                            got = per_minute.setdefault(int(at // width), [0.0, 0.0])
                    slot = got
                slot[0] += 1
                if ms is not None:
                    slot[1] += ms
            if sink is not None:
                sink(rec, fp, normalized)
        self.records += n
        self.statements += statements

    def _new(
        self, entries: dict[str, FingerprintStats], fp: str, normalized: str, at: float
    ) -> FingerprintStats:
        if len(entries) >= MAX_FINGERPRINTS:
            st = entries.get(OTHER)
            if st is None:
                st = entries[OTHER] = FingerprintStats(OTHER, "(fingerprints past the limit)")
            return st
        st = entries[fp] = FingerprintStats(fp, normalized, first_seen=at, last_seen=at)
        if at and (at < self.first_seen or not self.first_seen):
            self.first_seen = at
        return st

    def _other(self, st: FingerprintStats, rec: LogStatement, file: str) -> None:
        kind = rec.kind
        if kind == "error":
            st.errors += 1
            if not st.error_example:
                st.error_example = rec.detail[:500]
        elif kind == "lock":
            if " acquired " in rec.detail:
                st.lock_wait_ms += rec.duration_ms or 0.0
            else:
                st.lock_waits += 1
        elif kind == "temp":
            st.temp_files += 1
            st.temp_bytes += rec.size or 0
        elif kind == "plan":
            st.plans += 1
            ms = rec.duration_ms or 0.0
            if st.slowest_plan is None or ms > st.slowest_plan.duration_ms:
                st.slowest_plan = Sample(
                    ms, rec.text[:MAX_SAMPLE_CHARS], rec.at, file, rec.line, plan=rec.detail
                )

    def _unattributed(self, rec: LogStatement) -> None:
        self.unattributed[rec.kind] = self.unattributed.get(rec.kind, 0) + 1
        if rec.kind == "error":
            errors = self.orphan_errors
            message = rec.detail[:200]
            if message in errors or len(errors) < MAX_ORPHAN_MESSAGES:
                errors[message] = errors.get(message, 0) + 1

    def _coarsen(self) -> None:
        """Twice as wide chart buckets, so a log over months keeps a bounded series."""
        self.minute_width *= 2
        wider: dict[int, list[float]] = {}
        for m, (calls, ms) in self.per_minute.items():
            got = wider.setdefault(m // 2, [0.0, 0.0])
            got[0] += calls
            got[1] += ms
        self.per_minute = wider

    def merge(self, other: Digest) -> None:
        """Add another digest of the same phases (another file, or a worker's byte range)."""
        for mine, theirs in zip(self.by_phase, other.by_phase, strict=True):
            for fp, st in theirs.items():
                got = mine.get(fp)
                if got is None:
                    mine[fp] = st
                else:
                    got.merge(st)
        while other.minute_width > self.minute_width:
            self._coarsen()
        ratio = self.minute_width // other.minute_width
        for m, (calls, ms) in other.per_minute.items():
            slot = self.per_minute.setdefault(m // ratio, [0.0, 0.0])
            slot[0] += calls
            slot[1] += ms
        while len(self.per_minute) > MAX_BUCKETS:
            self._coarsen()
        self.records += other.records
        self.statements += other.statements
        for k, v in other.unattributed.items():
            self.unattributed[k] = self.unattributed.get(k, 0) + v
        for k, v in other.orphan_errors.items():
            if k in self.orphan_errors or len(self.orphan_errors) < MAX_ORPHAN_MESSAGES:
                self.orphan_errors[k] = self.orphan_errors.get(k, 0) + v

    def rows(self, phase: int = 0, sort: str = "total") -> list[FingerprintStats]:
        """One phase's fingerprints, costliest first."""
        key: Callable[[FingerprintStats], tuple[float, ...]] = {
            "total": lambda s: (s.total_ms, s.calls),
            "calls": lambda s: (s.calls, s.total_ms),
            "mean": lambda s: (s.mean_ms or 0.0, s.calls),
            "max": lambda s: (s.max_ms, s.calls),
            "errors": lambda s: (s.errors, s.calls),
        }[sort]
        return sorted(self.by_phase[phase].values(), key=key, reverse=True)

    def all_rows(self, sort: str = "total") -> list[FingerprintStats]:
        """Every phase merged into one row per fingerprint."""
        if len(self.phases) == 1:
            return self.rows(0, sort)
        whole = Digest(self.dialect)
        merged = whole.by_phase[0]
        for phase in self.by_phase:
            for fp, st in phase.items():
                got = merged.get(fp)
                if got is None:
                    merged[fp] = FingerprintStats(fp, st.normalized)
                    got = merged[fp]
                    got.first_seen = st.first_seen
                got.merge(st)
        return whole.rows(0, sort)


def phases_between(deploys: Sequence[tuple[float, str]]) -> tuple[Phase, ...]:
    """Phases cut at deploy starts ``(started_at, label)``, oldest first."""
    if not deploys:
        return (Phase("whole log", None, None),)
    ordered = sorted(deploys)
    out = [Phase(f"before {ordered[0][1]}", None, ordered[0][0])]
    for i, (at, label) in enumerate(ordered):
        end = ordered[i + 1][0] if i + 1 < len(ordered) else None
        out.append(Phase(f"after {label}", at, end))
    return tuple(out)
