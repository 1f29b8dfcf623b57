"""Writing windows: statement, request and N+1 repeat windows merge into the store as they land.

Merging happens in the upsert itself (``INSERT … ON CONFLICT DO UPDATE``), so a write never reads
first and concurrent writers (many agents on one PostgreSQL) cannot lose each other's counts. The
same merge clauses roll 10 s rows into minute rows (:mod:`querywatch.store.retention`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from querywatch.records import WINDOW_SECONDS, RepeatWindow, RequestWindow, StatementWindow
from querywatch.store import rollups
from querywatch.store.base import MAX_CALL_SITES, Tx

# Merging happens in the upsert itself, so a write never reads first and concurrent writers (many
# agents on one PostgreSQL) cannot lose each other's counts. The same SET clause merges 10 s rows
# into minute rows during retention. Windows are keyed by source too: processes capturing in-app
# add up (they saw different calls), while pg_stat_statements and in-app capture of one database
# (the same calls, seen twice) stay apart, and readers take one source per fingerprint. And by
# release: a canary and the stable release serving in the same 10 s stay two rows, compared apart.
WINDOW_COLUMNS = (
    "fingerprint, window_start, resolution, calls, total_ms, max_ms, min_ms, rows, errors, "
    "shared_blks_hit, shared_blks_read, sketch, source, release"
)
WINDOW_MERGE = """
ON CONFLICT (fingerprint, window_start, resolution, source, release) DO UPDATE SET
  calls = windows.calls + excluded.calls,
  total_ms = windows.total_ms + excluded.total_ms,
  max_ms = CASE WHEN excluded.max_ms > windows.max_ms THEN excluded.max_ms ELSE windows.max_ms END,
  min_ms = CASE WHEN windows.min_ms IS NULL OR excluded.min_ms < windows.min_ms
                THEN excluded.min_ms ELSE windows.min_ms END,
  rows = windows.rows + excluded.rows,
  errors = windows.errors + excluded.errors,
  shared_blks_hit = windows.shared_blks_hit + excluded.shared_blks_hit,
  shared_blks_read = windows.shared_blks_read + excluded.shared_blks_read,
  sketch = qw_merge_sketch(windows.sketch, excluded.sketch)
"""
_INSERT_WINDOW = (
    f"INSERT INTO windows ({WINDOW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    + WINDOW_MERGE
)
_UPSERT_FINGERPRINT = """
INSERT INTO fingerprints (fingerprint, normalized, dialect, first_seen, last_seen)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (fingerprint) DO UPDATE SET
  first_seen = CASE WHEN excluded.first_seen < fingerprints.first_seen
                    THEN excluded.first_seen ELSE fingerprints.first_seen END,
  last_seen = CASE WHEN excluded.last_seen > fingerprints.last_seen
                   THEN excluded.last_seen ELSE fingerprints.last_seen END
"""
_INSERT_CALL_SITE = """
INSERT INTO call_sites (fingerprint, path, line, function)
SELECT ?, ?, ?, ? WHERE (SELECT COUNT(*) FROM call_sites WHERE fingerprint = ?) < ?
ON CONFLICT (fingerprint, path, line, function) DO NOTHING
"""

REQUEST_COLUMNS = (
    "route, window_start, resolution, requests, errors, total_ms, max_ms, db_ms, db_calls, "
    "sketch, users, failed_users, release"
)
REQUEST_MERGE = """
ON CONFLICT (route, window_start, resolution, release) DO UPDATE SET
  requests = request_windows.requests + excluded.requests,
  errors = request_windows.errors + excluded.errors,
  total_ms = request_windows.total_ms + excluded.total_ms,
  max_ms = CASE WHEN excluded.max_ms > request_windows.max_ms
                THEN excluded.max_ms ELSE request_windows.max_ms END,
  db_ms = request_windows.db_ms + excluded.db_ms,
  db_calls = request_windows.db_calls + excluded.db_calls,
  sketch = qw_merge_sketch(request_windows.sketch, excluded.sketch),
  users = qw_union_json(request_windows.users, excluded.users),
  failed_users = qw_union_json(request_windows.failed_users, excluded.failed_users)
"""
_INSERT_REQUEST = (
    f"INSERT INTO request_windows ({REQUEST_COLUMNS}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" + REQUEST_MERGE
)
REPEAT_COLUMNS = (
    "route, fingerprint, window_start, resolution, requests, total_repeats, max_repeats, release"
)
REPEAT_MERGE = """
ON CONFLICT (route, fingerprint, window_start, resolution, release) DO UPDATE SET
  requests = request_repeats.requests + excluded.requests,
  total_repeats = request_repeats.total_repeats + excluded.total_repeats,
  max_repeats = CASE WHEN excluded.max_repeats > request_repeats.max_repeats
                     THEN excluded.max_repeats ELSE request_repeats.max_repeats END
"""
_INSERT_REPEAT = (
    f"INSERT INTO request_repeats ({REPEAT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)" + REPEAT_MERGE
)


def write_windows(tx: Tx, windows: Sequence[StatementWindow]) -> None:
    """Merge statement windows in, with their fingerprints' text and call sites, and into the
    dashboard's rollups (:mod:`querywatch.store.rollups`)."""
    fingerprints = _fingerprint_rows(windows)
    sites = {(w.fingerprint, s.path, s.line, s.function) for w in windows for s in w.call_sites}
    site_rows = [(*s, s[0], MAX_CALL_SITES) for s in sorted(sites)]
    ordered = sorted(windows, key=lambda w: (w.fingerprint, w.window_start, w.source, w.release))
    tx.run_many(_UPSERT_FINGERPRINT, fingerprints)
    # Rows are made as the driver sends them, never all held at once; made anew if the
    # transaction runs again (PostgreSQL reconnects once).
    tx.run_many(_INSERT_WINDOW, (_window_row(w) for w in ordered))
    if site_rows:
        tx.run_many(_INSERT_CALL_SITE, site_rows)
    rollups.add_windows(tx, windows)


def write_requests(tx: Tx, windows: Sequence[RequestWindow]) -> None:
    """Merge request windows in (same route and bucket: counts add, user sets union)."""
    rows = [
        (
            w.route,
            w.window_start,
            WINDOW_SECONDS,
            w.requests,
            w.errors,
            w.total_ms,
            w.max_ms,
            w.db_ms,
            w.db_calls,
            w.sketch.to_json() if w.sketch is not None else None,
            json.dumps(sorted(w.users)),
            json.dumps(sorted(w.failed_users)),
            w.release,
        )
        for w in sorted(windows, key=lambda w: (w.route, w.window_start, w.release))
    ]
    tx.run_many(_INSERT_REQUEST, rows)


def write_repeats(tx: Tx, windows: Sequence[RepeatWindow]) -> None:
    """Merge repeat windows in; also records each fingerprint's text, so a repeat row can be read
    on its own."""
    rows = [
        (
            w.route,
            w.fingerprint,
            w.window_start,
            WINDOW_SECONDS,
            w.requests,
            w.total_repeats,
            w.max_repeats,
            w.release,
        )
        for w in sorted(windows, key=lambda w: (w.route, w.fingerprint, w.window_start, w.release))
    ]
    tx.run_many(_UPSERT_FINGERPRINT, _fingerprint_rows(windows))
    tx.run_many(_INSERT_REPEAT, rows)


def _window_row(w: StatementWindow) -> tuple[object, ...]:
    return (
        w.fingerprint,
        w.window_start,
        WINDOW_SECONDS,
        w.calls,
        w.total_ms,
        w.max_ms,
        w.min_ms,
        w.rows,
        w.errors,
        w.shared_blks_hit,
        w.shared_blks_read,
        w.sketch.to_json() if w.sketch is not None else None,
        w.source,
        w.release,
    )


def _fingerprint_rows(
    windows: Sequence[StatementWindow] | Sequence[RepeatWindow],
) -> list[tuple[str, str, str, int, int]]:
    """One upsert row per fingerprint: text, dialect, first and last window of the batch.

    Sorted keys give every writer the same lock order, so two agents cannot deadlock.
    """
    seen: dict[str, tuple[str, str, int, int]] = {}
    for w in windows:
        normalized, dialect, first, last = seen.get(
            w.fingerprint, (w.normalized, w.dialect, w.window_start, w.window_start)
        )
        seen[w.fingerprint] = (
            normalized,
            dialect,
            min(first, w.window_start),
            max(last, w.window_start),
        )
    return [(fp, *seen[fp]) for fp in sorted(seen)]
