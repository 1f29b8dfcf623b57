"""Reading the rollups (:mod:`querywatch.store.rollups`): what the dashboard's pages ask for.

A range is cut into the coarsest whole slots that fit inside it, finer slots towards its edges
and the windows themselves for what is left (:func:`plan`), so one fingerprint's figures over a
week are a few hundred rows and still exact. Ranking every fingerprint cannot afford the exact
edges (they are most of the windows table's rows): it ranks over whole slots that cover the
range (:func:`coarse_rank`, a few slots of one grain), then takes the exact figures of the
leaders. Like the windows' reads, each fingerprint's figures come from one source, the one with
the most calls in the range.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from querywatch.errors import StoreError
from querywatch.records import CallSite
from querywatch.sketch import LatencySketch
from querywatch.store.base import Tx
from querywatch.store.rollups import FINE, GRAINS, HOUR, whole_from
from querywatch.store.window_reads import _call_sites, _one_source_each

Part = tuple[int | None, int, int]
"""A piece of a range: the grain its slots come from (``None``: the windows), ``[lo, hi)``."""
RankKey = Literal["total", "calls"]
MAX_COARSE_SLOTS = 8  # a ranking reads at most about this many slots of every fingerprint
_CHUNK = 500


@dataclass(slots=True)
class Figures:
    """One fingerprint (one source) summed over a range or a chart bucket."""

    fingerprint: str
    source: str = ""
    calls: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0
    rows: int = 0
    errors: int = 0
    sketch: LatencySketch | None = None

    @property
    def mean_ms(self) -> float:
        return self.total_ms / self.calls if self.calls else 0.0

    @property
    def rows_per_call(self) -> float:
        return self.rows / self.calls if self.calls else 0.0

    @property
    def p95_ms(self) -> float | None:
        return self.sketch.quantile(0.95) if self.sketch is not None else None

    def add(
        self, calls: int, total: float, mx: float, rows: int, errors: int, sk: str | None
    ) -> None:
        self.calls += int(calls)
        self.total_ms += float(total)
        self.max_ms = max(self.max_ms, float(mx))
        self.rows += int(rows)
        self.errors += int(errors)
        if sk is not None:
            other = LatencySketch.from_json(sk)
            if self.sketch is None:
                self.sketch = other
            else:
                self.sketch.merge(other)


def plan(
    since: float,
    until: float,
    grains: Iterable[int],
    whole: dict[int, int],
    before: dict[int, int] | None = None,
) -> list[Part]:
    """``[since, until)`` as whole slots of the coarsest grain that fits, finer grains towards
    the edges, the windows for the rest; a grain is used only where its slots are whole (from
    ``whole[g]``, and before ``before[g]`` when given)."""
    ordered = sorted(grains, reverse=True)
    limits = before or {}

    def cut(lo: int, hi: int, gs: list[int]) -> list[Part]:
        if lo >= hi:
            return []
        for i, g in enumerate(gs):
            a = max(_ceil(lo, g), whole.get(g, -(2**62)))
            b = min(hi // g * g, limits.get(g, 2**62))
            if a < b:
                return [*cut(lo, a, gs[i + 1 :]), (g, a, b), *cut(b, hi, gs[i + 1 :])]
        return [(None, lo, hi)]

    # A window belongs to the range when its (whole-second) start does: since <= start < until.
    return cut(math.ceil(since), math.ceil(until), ordered)


def figures(
    tx: Tx, fingerprints: Sequence[str], since: float, until: float, *, sketches: bool = False
) -> dict[str, Figures]:
    """Exact figures of each fingerprint over ``[since, until)``, one source each (with their
    merged latency sketches: read from the grains that keep them)."""
    parts = _plan(tx, since, until, GRAINS, sketches)
    found: dict[tuple[str, str], Figures] = {}
    for fp, source, _start, *values in _read(tx, fingerprints, parts, sketches):
        f = found.get((fp, source))
        if f is None:
            f = found[fp, source] = Figures(fp, source)
        f.add(*values)
    return _one_each(found)


def series(
    tx: Tx, fingerprints: Sequence[str], since: float, until: float, step: int
) -> dict[str, dict[int, Figures]]:
    """Per fingerprint, its figures per ``step``-second bucket (bucket starts are multiples of
    ``step``), from the source with the most calls over the range; buckets without calls absent.
    """
    found = series_by_source(tx, fingerprints, since, until, step)
    calls = ((fp, src, sum(f.calls for f in bs.values())) for (fp, src), bs in found.items())
    return {fp: found[fp, src] for fp, src in _one_source_each(calls).items()}


def series_by_source(
    tx: Tx,
    fingerprints: Sequence[str],
    since: float,
    until: float,
    step: int,
    *,
    sketches: bool = False,
) -> dict[tuple[str, str], dict[int, Figures]]:
    """As :func:`series`, for every source apart: ``{(fingerprint, source): {bucket: …}}`` (a
    page may take latencies from the source that has them and counts from the fuller one)."""
    parts = _plan(tx, since, until, [g for g in GRAINS if step % g == 0], sketches)
    found: dict[tuple[str, str], dict[int, Figures]] = {}
    for fp, source, start, *values in _read(tx, fingerprints, parts, sketches):
        by_bucket = found.setdefault((fp, source), {})
        b = int(start) // step * step
        f = by_bucket.get(b)
        if f is None:
            f = by_bucket[b] = Figures(fp, source)
        f.add(*values)
    return found


def totals(
    tx: Tx, since: float, until: float, step: int
) -> tuple[str | None, dict[int, tuple[int, float, int, int]]]:
    """Every fingerprint together per ``step`` bucket: ``{bucket: (calls, total_ms, errors,
    seconds of data)}``, from the source with the most calls over the range (named first).

    Seconds of data count the 10 s (or minute) buckets that had any window, so a rate per second
    of data does not read an agent that was down as a quiet database.
    """
    expr = f"window_start / {int(step)} * {int(step)}"
    rows = tx.rows(
        f"SELECT {expr}, source, SUM(calls), SUM(total_ms), SUM(errors), SUM(resolution) "
        f"FROM bucket_totals WHERE window_start >= ? AND window_start < ? GROUP BY {expr}, source",
        (math.ceil(since), math.ceil(until)),
    )
    if not rows:
        return None, {}
    by_source: dict[str, int] = {}
    for _, source, calls, *_ in rows:
        by_source[source] = by_source.get(source, 0) + int(calls)
    source = max(by_source, key=lambda s: (by_source[s], s))
    return source, {
        int(b): (int(c), float(t), int(e), int(s)) for b, src, c, t, e, s in rows if src == source
    }


def coarse_rank(
    tx: Tx, since: float, until: float, limit: int, key: RankKey = "total"
) -> list[str]:
    """The ``limit`` fingerprints with the most database time (or calls) over whole slots that
    cover ``[since, until)``: candidates for :func:`top`, which then takes exact figures."""
    grain, lo, hi = _covering(tx, since, until)
    column = "SUM(calls)" if key == "calls" else "SUM(total_ms)"
    rows = tx.rows(
        f"SELECT fingerprint, {column} FROM fingerprint_rollups "
        "WHERE grain = ? AND slot_start >= ? AND slot_start < ? "
        f"GROUP BY fingerprint ORDER BY {column} DESC, fingerprint LIMIT ?",
        (grain, lo, hi, limit),
    )
    return [str(r[0]) for r in rows]


def top(tx: Tx, since: float, until: float, limit: int, key: RankKey = "total") -> list[Figures]:
    """The ``limit`` fingerprints with the most database time (or calls) over the range, with
    exact figures and, where the source has them, merged latency sketches.

    Candidates come from :func:`coarse_rank` (three times as many as asked): a fingerprint whose
    cost lies only in the few minutes the covering slots add could displace a real one from the
    candidates, never from the exact figures shown.
    """
    candidates = coarse_rank(tx, since, until, 3 * limit + 10, key)
    exact = figures(tx, candidates, since, until)
    ranked = sorted(exact.values(), key=lambda f: f.fingerprint)
    ranked.sort(key=lambda f: f.calls if key == "calls" else f.total_ms, reverse=True)
    chosen = [f for f in ranked if f.calls > 0][:limit]
    with_sketches = figures(tx, [f.fingerprint for f in chosen], since, until, sketches=True)
    return [with_sketches.get(f.fingerprint, f) for f in chosen]


def whole_grain(tx: Tx, since: float) -> int:
    """The finest grain whose slots are whole from ``since`` on."""
    whole = whole_from(tx)
    return next((g for g in GRAINS if whole.get(g, -(2**62)) <= int(since) // g * g), GRAINS[-1])


def slot_totals(
    tx: Tx, grain: int, lo: int, hi: int, *, min_total_ms: float = 0.0
) -> dict[str, tuple[int, float]]:
    """``{fingerprint: (calls, total_ms)}`` over the ``grain`` slots starting in ``[lo, hi)``
    (a deploy's before or after, in whole slots), read from the slot index alone; only
    fingerprints with at least ``min_total_ms``. One source each (the most calls)."""
    return _best_source(
        tx.each(
            "SELECT fingerprint, source, SUM(calls), SUM(total_ms) FROM fingerprint_rollups "
            "WHERE grain = ? AND slot_start >= ? AND slot_start < ? GROUP BY fingerprint, source "
            "HAVING SUM(total_ms) >= ?",
            (grain, lo, hi, min_total_ms),
        )
    )


def heavy_in_slots(tx: Tx, grain: int, lo: int, hi: int, min_total_ms: float) -> list[str]:
    """Every fingerprint whose ``grain`` slots in ``[lo, hi)`` may add up to ``min_total_ms``:
    one of its slots holds at least that share of it (read from the slot index, no summing)."""
    slots = max((hi - lo) // grain, 1)
    rows = tx.rows(
        "SELECT DISTINCT fingerprint FROM fingerprint_rollups "
        "WHERE grain = ? AND slot_start >= ? AND slot_start < ? AND total_ms >= ?",
        (grain, lo, hi, min_total_ms / slots),
    )
    return [str(r[0]) for r in rows]


def slot_figures(
    tx: Tx, fingerprints: Sequence[str], grain: int, lo: int, hi: int
) -> dict[str, tuple[int, float]]:
    """As :func:`slot_totals` for the given fingerprints only (each read by its key)."""
    out: dict[str, tuple[int, float]] = {}
    for chunk in _chunks(fingerprints):
        marks = ", ".join("?" * len(chunk))
        out.update(
            _best_source(
                tx.rows(
                    "SELECT fingerprint, source, SUM(calls), SUM(total_ms) "
                    f"FROM fingerprint_rollups WHERE fingerprint IN ({marks}) AND grain = ? "
                    "AND slot_start >= ? AND slot_start < ? GROUP BY fingerprint, source",
                    [*chunk, grain, lo, hi],
                )
            )
        )
    return out


def _best_source(rows: Iterable[tuple[Any, ...]]) -> dict[str, tuple[int, float]]:
    """Per fingerprint, the (calls, total) of its source with the most calls (ties: the greater
    name, as :func:`window_reads._one_source_each`)."""
    best: dict[str, tuple[int, str, float]] = {}
    for fp, source, calls, total in rows:
        seen = best.get(fp)
        if seen is None or (int(calls), source) > seen[:2]:
            best[fp] = (int(calls), source, float(total))
    return {fp: (c, t) for fp, (c, _, t) in best.items()}


def first_seen_between(tx: Tx, since: float, until: float) -> list[str]:
    """Fingerprints first seen in ``[since, until)``: born with a deploy."""
    rows = tx.rows(
        "SELECT fingerprint FROM fingerprints WHERE first_seen >= ? AND first_seen < ?",
        (since, until),
    )
    return [str(r[0]) for r in rows]


def texts(tx: Tx, fingerprints: Sequence[str]) -> dict[str, tuple[str, str, float, float]]:
    """``{fingerprint: (normalized, dialect, first_seen, last_seen)}`` of the known ones."""
    out: dict[str, tuple[str, str, float, float]] = {}
    for chunk in _chunks(fingerprints):
        marks = ", ".join("?" * len(chunk))
        for fp, norm, dialect, first, last in tx.rows(
            "SELECT fingerprint, normalized, dialect, first_seen, last_seen FROM fingerprints "
            f"WHERE fingerprint IN ({marks})",
            chunk,
        ):
            out[fp] = (norm, dialect, float(first), float(last))
    return out


def call_sites(tx: Tx, fingerprints: Sequence[str]) -> dict[str, tuple[CallSite, ...]]:
    """The call sites kept for each fingerprint (at most ``MAX_CALL_SITES`` each)."""
    return _call_sites(tx, list(fingerprints))


def check_rollups(tx: Tx, where: str) -> None:
    """Refuse, with what to do, a store older than the rollups (opened read-only, unmigrated)."""
    version = tx.rows("SELECT MAX(version) FROM schema_version")[0][0]
    if int(version or 0) < 8:
        raise StoreError(
            f"the store at {where} predates the dashboard's rollups (schema {version}): run a "
            "command that writes to it (`querywatch watch`, or `querywatch serve` without a "
            "read-only store) once to upgrade it"
        )


def _plan(tx: Tx, since: float, until: float, grains: Sequence[int], sketches: bool) -> list[Part]:
    """:func:`plan` over the grains that keep what is read: for sketches, the 5 min slots where
    they are whole and the hourly ones before them (retention merged their sketches in)."""
    whole = whole_from(tx)
    if not sketches:
        return plan(since, until, grains, whole)
    kept = [g for g in grains if g in (FINE, HOUR)]
    fine_from = whole.get(FINE)
    if fine_from is None:  # every 5 min slot is whole: hourly sketches were never needed
        return plan(since, until, [g for g in kept if g == FINE], whole)
    return plan(since, until, kept, whole, {HOUR: fine_from})


def _covering(tx: Tx, since: float, until: float) -> tuple[int, int, int]:
    """The finest grain whose whole slots cover the range in at most MAX_COARSE_SLOTS."""
    whole = whole_from(tx)
    usable = [g for g in GRAINS if whole.get(g, -(2**62)) <= int(since) // g * g]
    if not usable:  # older than every grain keeps: the coarsest, from where it is whole
        g = GRAINS[-1]
        return g, whole.get(g, 0), _ceil(until, g)
    for g in usable:
        lo, hi = int(since) // g * g, _ceil(until, g)
        if (hi - lo) // g <= MAX_COARSE_SLOTS:
            return g, lo, hi
    g = usable[-1]
    return g, int(since) // g * g, _ceil(until, g)


def _read(
    tx: Tx, fingerprints: Sequence[str], parts: Sequence[Part], sketches: bool
) -> Iterable[tuple[Any, ...]]:
    """Rows ``(fingerprint, source, start, calls, total, max, rows, errors, sketch)`` of the
    fingerprints over every part, from the slots or the windows."""
    sketch = "sketch" if sketches else "NULL"
    for chunk in _chunks(fingerprints):
        marks = ", ".join("?" * len(chunk))
        for grain, lo, hi in parts:
            if grain is None:
                yield from tx.rows(
                    "SELECT fingerprint, source, window_start, calls, total_ms, max_ms, rows, "
                    f"errors, {sketch} FROM windows WHERE fingerprint IN ({marks}) "
                    "AND window_start >= ? AND window_start < ?",
                    [*chunk, lo, hi],
                )
            else:
                yield from tx.rows(
                    "SELECT fingerprint, source, slot_start, calls, total_ms, max_ms, rows, "
                    f"errors, {sketch} FROM fingerprint_rollups WHERE fingerprint IN ({marks}) "
                    "AND grain = ? AND slot_start >= ? AND slot_start < ?",
                    [*chunk, grain, lo, hi],
                )


def _one_each(found: dict[tuple[str, str], Figures]) -> dict[str, Figures]:
    chosen = _one_source_each((fp, src, f.calls) for (fp, src), f in found.items())
    return {fp: found[fp, src] for fp, src in chosen.items()}


def _chunks(items: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield list(items[start : start + _CHUNK])


def _ceil(t: float, grain: int) -> int:
    return math.ceil(t / grain) * grain
