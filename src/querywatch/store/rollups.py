"""Rollups for the dashboard: per-bucket totals and per-fingerprint slots of 5 min to a day.

A week of windows at 10,000 fingerprints is tens of millions of rows; summing them for one page
takes minutes. So every write also merges its windows into two small tables, in the same
transaction and with the same upsert-merge as the windows themselves:

* ``bucket_totals``: calls, database time and errors of every fingerprint together, per 10 s
  bucket and source (retention rolls them into minute rows with the windows): the overview's
  "database time per second" over any range is a few thousand rows.
* ``fingerprint_rollups``: per fingerprint and source, per slot of each grain in
  :data:`GRAINS` (calls, time, max, rows, errors). The 5 min grain is kept as long as the 10 s
  windows, the others as long as the minute windows. Latency sketches: writes merge them into
  the 5 min slots only (merging sketches is most of a write's cost); when retention drops an
  hour's 5 min slots it merges their sketches into that hour's slot, so a week's percentiles
  read hourly sketches before the 5 min grain and 5 min ones after.

Retention cuts each grain at a slot boundary and records, in state :data:`FROM_KEY`, from when
each grain's slots are whole; a reader uses a grain only from there (before it, finer grains or
the windows themselves). A store migrated to these tables gets them filled from its windows
(:func:`rebuild_rollups`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from querywatch.records import WINDOW_SECONDS, StatementWindow
from querywatch.sketch import LatencySketch
from querywatch.store.base import MINUTE, Tx

FINE = 300
HOUR = 3600
GRAINS: tuple[int, ...] = (FINE, HOUR, 6 * HOUR, 24 * HOUR)
FROM_KEY = "rollups:from"

_TOTAL_MERGE = """
ON CONFLICT (window_start, resolution, source) DO UPDATE SET
  calls = bucket_totals.calls + excluded.calls,
  total_ms = bucket_totals.total_ms + excluded.total_ms,
  errors = bucket_totals.errors + excluded.errors
"""
_INSERT_TOTAL = (
    "INSERT INTO bucket_totals (window_start, resolution, source, calls, total_ms, errors) "
    "VALUES (?, ?, ?, ?, ?, ?)" + _TOTAL_MERGE
)
_SLOT_COLUMNS = (
    "fingerprint, grain, slot_start, source, calls, total_ms, max_ms, rows, errors, sketch"
)
_SLOT_MERGE = """
ON CONFLICT (fingerprint, grain, slot_start, source) DO UPDATE SET
  calls = fingerprint_rollups.calls + excluded.calls,
  total_ms = fingerprint_rollups.total_ms + excluded.total_ms,
  max_ms = CASE WHEN excluded.max_ms > fingerprint_rollups.max_ms
                THEN excluded.max_ms ELSE fingerprint_rollups.max_ms END,
  rows = fingerprint_rollups.rows + excluded.rows,
  errors = fingerprint_rollups.errors + excluded.errors,
  sketch = qw_merge_sketch(fingerprint_rollups.sketch, excluded.sketch)
"""
_INSERT_SLOT = (
    f"INSERT INTO fingerprint_rollups ({_SLOT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    + _SLOT_MERGE
)

_TOTALS_TABLE = """CREATE TABLE IF NOT EXISTS bucket_totals (
    window_start BIGINT NOT NULL,
    resolution INTEGER NOT NULL,
    source TEXT NOT NULL,
    calls BIGINT NOT NULL,
    total_ms DOUBLE PRECISION NOT NULL,
    errors BIGINT NOT NULL,
    PRIMARY KEY (window_start, resolution, source))"""
_SLOTS_TABLE = """CREATE TABLE IF NOT EXISTS fingerprint_rollups (
    fingerprint TEXT NOT NULL,
    grain INTEGER NOT NULL,
    slot_start BIGINT NOT NULL,
    source TEXT NOT NULL,
    calls BIGINT NOT NULL,
    total_ms DOUBLE PRECISION NOT NULL,
    max_ms DOUBLE PRECISION NOT NULL,
    rows BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    sketch TEXT,
    PRIMARY KEY (fingerprint, grain, slot_start, source))"""
# Ranking every fingerprint over a few slots reads this index alone (it holds what is summed).
_SLOTS_INDEX = (
    "CREATE INDEX IF NOT EXISTS fingerprint_rollups_by_slot ON fingerprint_rollups "
    "(grain, slot_start, fingerprint, source, calls, total_ms)"
)
#: SQLite keeps both tables clustered by their key (a range of slots is read in one sweep);
#: PostgreSQL has no such tables and gets the same DDL without it.
SQLITE_DDL = (_TOTALS_TABLE + " WITHOUT ROWID", _SLOTS_TABLE + " WITHOUT ROWID", _SLOTS_INDEX)
POSTGRES_DDL = (_TOTALS_TABLE, _SLOTS_TABLE, _SLOTS_INDEX)


def add_windows(tx: Tx, windows: Sequence[StatementWindow]) -> None:
    """Merge a batch of 10 s windows into the totals and every grain's slots."""
    totals: dict[tuple[int, str], list[float]] = {}
    slots: dict[tuple[str, int, int, str], _Slot] = {}
    for w in windows:
        t = totals.setdefault((w.window_start, w.source), [0, 0.0, 0])
        t[0] += w.calls
        t[1] += w.total_ms
        t[2] += w.errors
        for grain in GRAINS:
            key = (w.fingerprint, grain, w.window_start // grain * grain, w.source)
            slot = slots.get(key)
            if slot is None:
                slots[key] = _Slot(w, grain == FINE)
            else:
                slot.add(w)
    # Sorted keys give every writer the same lock order (see windows._fingerprint_rows).
    tx.run_many(
        _INSERT_TOTAL,
        [
            (start, WINDOW_SECONDS, source, int(c), total, int(e))
            for (start, source), (c, total, e) in sorted(totals.items())
        ],
    )
    tx.run_many(_INSERT_SLOT, [(*key, *slots[key].row()) for key in sorted(slots)])


class _Slot:
    """One slot's figures while a batch is folded in (a sketch is copied before it is merged:
    the window's own belongs to the caller)."""

    __slots__ = ("_copied", "_sketched", "calls", "errors", "max_ms", "rows", "sketch", "total_ms")

    def __init__(self, w: StatementWindow, sketched: bool) -> None:
        self.calls, self.total_ms, self.max_ms = w.calls, w.total_ms, w.max_ms
        self.rows, self.errors = w.rows, w.errors
        self._sketched = sketched
        self.sketch = w.sketch if sketched else None
        self._copied = False

    def add(self, w: StatementWindow) -> None:
        self.calls += w.calls
        self.total_ms += w.total_ms
        self.max_ms = max(self.max_ms, w.max_ms)
        self.rows += w.rows
        self.errors += w.errors
        if not self._sketched or w.sketch is None:
            return
        if self.sketch is None:
            self.sketch = w.sketch
            return
        if not self._copied:
            copy = LatencySketch()
            copy.merge(self.sketch)
            self.sketch, self._copied = copy, True
        self.sketch.merge(w.sketch)

    def row(self) -> tuple[object, ...]:
        sketch = self.sketch.to_json() if self.sketch is not None else None
        return (self.calls, self.total_ms, self.max_ms, self.rows, self.errors, sketch)


_ROLLUP_TOTALS = f"""
INSERT INTO bucket_totals (window_start, resolution, source, calls, total_ms, errors)
SELECT window_start / {MINUTE} * {MINUTE}, {MINUTE}, source, SUM(calls), SUM(total_ms), SUM(errors)
FROM bucket_totals WHERE resolution = {WINDOW_SECONDS} AND window_start < ? AND window_start >= ?
GROUP BY window_start / {MINUTE} * {MINUTE}, source
{_TOTAL_MERGE}"""


_HOUR_SKETCHES = f"""
UPDATE fingerprint_rollups SET sketch = (
  SELECT qw_sketch_agg(f.sketch) FROM fingerprint_rollups f
  WHERE f.fingerprint = fingerprint_rollups.fingerprint AND f.grain = {FINE}
    AND f.slot_start >= fingerprint_rollups.slot_start
    AND f.slot_start < fingerprint_rollups.slot_start + {HOUR}
    AND f.source = fingerprint_rollups.source)
WHERE grain = {HOUR} AND slot_start >= ? AND slot_start < ?"""


def apply_retention(tx: Tx, raw: int, oldest: int) -> None:
    """Follow the windows' retention: totals older than ``raw`` become minute rows, everything
    older than ``oldest`` goes. The 5 min slots of the hours before ``raw`` go, their sketches
    merged into those hours' slots first; each grain is cut at a slot boundary, recorded in
    state."""
    tx.run(_ROLLUP_TOTALS, (raw, oldest))
    tx.run(
        "DELETE FROM bucket_totals WHERE resolution = ? AND window_start < ?",
        (WINDOW_SECONDS, raw),
    )
    tx.run("DELETE FROM bucket_totals WHERE window_start < ?", (oldest,))
    before = whole_from(tx)
    fine_cut = raw // HOUR * HOUR
    first = before.get(FINE)
    if first is None:
        rows = tx.rows("SELECT MIN(slot_start) FROM fingerprint_rollups WHERE grain = ?", (FINE,))
        first = int(rows[0][0]) // HOUR * HOUR if rows[0][0] is not None else fine_cut
    if first < fine_cut:
        tx.run(_HOUR_SKETCHES, (first, fine_cut))
    cuts = {FINE: max(fine_cut, before.get(FINE, fine_cut))}
    for grain in GRAINS[1:]:
        cuts[grain] = _ceil(oldest, grain)
    for grain, cut in cuts.items():
        tx.run("DELETE FROM fingerprint_rollups WHERE grain = ? AND slot_start < ?", (grain, cut))
    _set_from(tx, cuts)


def rebuild_rollups(tx: Tx) -> None:
    """Fill both tables from the windows (a store migrated to them, or one filled in bulk).

    The coarse grains are made from every window; the 5 min grain only from the 10 s windows of
    the hours after the last minute row, where it is whole; the hours before it get their
    sketches.
    """
    tx.run("DELETE FROM bucket_totals")
    tx.run("DELETE FROM fingerprint_rollups")
    tx.run(
        "INSERT INTO bucket_totals (window_start, resolution, source, calls, total_ms, errors) "
        "SELECT window_start, resolution, source, SUM(calls), SUM(total_ms), SUM(errors) "
        "FROM windows GROUP BY window_start, resolution, source"
    )
    last_minute = tx.rows("SELECT MAX(window_start) FROM windows WHERE resolution = ?", (MINUTE,))
    fine_from = None if last_minute[0][0] is None else _ceil(int(last_minute[0][0]) + MINUTE, HOUR)
    for grain in GRAINS:
        where = ""
        params: list[object] = []
        sketch = "NULL"
        if grain == FINE:
            where = " WHERE resolution = ? AND window_start >= ?"
            params = [WINDOW_SECONDS, fine_from if fine_from is not None else -(2**62)]
            sketch = "qw_sketch_agg(sketch)"
        elif grain == HOUR and fine_from is not None:
            sketch = f"qw_sketch_agg(CASE WHEN window_start < {fine_from} THEN sketch END)"
        tx.run(
            f"INSERT INTO fingerprint_rollups ({_SLOT_COLUMNS}) "
            f"SELECT fingerprint, {grain}, window_start / {grain} * {grain}, source, SUM(calls), "
            f"SUM(total_ms), MAX(max_ms), SUM(rows), SUM(errors), {sketch} "
            f"FROM windows{where} GROUP BY fingerprint, window_start / {grain} * {grain}, source",
            params,
        )
    _set_from(tx, {} if fine_from is None else {FINE: fine_from})


def whole_from(tx: Tx) -> dict[int, int]:
    """Per grain, the first slot start from which its slots are whole (absent: all of them)."""
    rows = tx.rows("SELECT value FROM state WHERE key = ?", (FROM_KEY,))
    if not rows:
        return {}
    try:
        return {int(g): int(v) for g, v in json.loads(rows[0][0]).items()}
    except (ValueError, TypeError, AttributeError):
        return {}  # unreadable: the next retention writes it again


def _set_from(tx: Tx, value: dict[int, int]) -> None:
    tx.run(
        "INSERT INTO state (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (FROM_KEY, json.dumps({str(g): v for g, v in sorted(value.items())})),
    )


def _ceil(t: float, grain: int) -> int:
    return math.ceil(t / grain) * grain
