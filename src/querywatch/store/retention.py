"""Retention: 10 s rows roll up into minute rows, and what is older than two weeks goes.

Both horizons are whole minutes, so a minute is held either as 10 s rows or as one minute row,
never both: a range read never counts the same statements twice.
"""

from __future__ import annotations

from querywatch.records import WINDOW_SECONDS
from querywatch.store import rollups
from querywatch.store.base import DEPLOY_STATE_PREFIXES, MINUTE, Retention, Tx
from querywatch.store.windows import (
    REPEAT_COLUMNS,
    REPEAT_MERGE,
    REQUEST_COLUMNS,
    REQUEST_MERGE,
    WINDOW_COLUMNS,
    WINDOW_MERGE,
)

_ROLLUP_WINDOWS = f"""
INSERT INTO windows ({WINDOW_COLUMNS})
SELECT fingerprint, window_start / {MINUTE} * {MINUTE}, {MINUTE}, SUM(calls), SUM(total_ms),
       MAX(max_ms), MIN(min_ms), SUM(rows), SUM(errors), SUM(shared_blks_hit),
       SUM(shared_blks_read), qw_sketch_agg(sketch), source, release
FROM windows WHERE resolution = {WINDOW_SECONDS} AND window_start < ? AND window_start >= ?
GROUP BY fingerprint, window_start / {MINUTE} * {MINUTE}, source, release
{WINDOW_MERGE}"""

_ROLLUP_REQUESTS = f"""
INSERT INTO request_windows ({REQUEST_COLUMNS})
SELECT route, window_start / {MINUTE} * {MINUTE}, {MINUTE}, SUM(requests), SUM(errors),
       SUM(total_ms), MAX(max_ms), SUM(db_ms), SUM(db_calls), qw_sketch_agg(sketch),
       qw_union_agg(users), qw_union_agg(failed_users), release
FROM request_windows WHERE resolution = {WINDOW_SECONDS} AND window_start < ? AND window_start >= ?
GROUP BY route, window_start / {MINUTE} * {MINUTE}, release
{REQUEST_MERGE}"""

_ROLLUP_REPEATS = f"""
INSERT INTO request_repeats ({REPEAT_COLUMNS})
SELECT route, fingerprint, window_start / {MINUTE} * {MINUTE}, {MINUTE}, SUM(requests),
       SUM(total_repeats), MAX(max_repeats), release
FROM request_repeats
WHERE resolution = {WINDOW_SECONDS} AND window_start < ? AND window_start >= ?
GROUP BY route, fingerprint, window_start / {MINUTE} * {MINUTE}, release
{REPEAT_MERGE}"""


def apply_retention(tx: Tx, now: float, retention: Retention) -> None:
    """Roll 10 s buckets older than the raw horizon into minute buckets; drop what is older
    than the minute horizon (per-deploy state of deploys older than that too)."""
    # Horizons are whole minutes, so a minute is either all 10 s rows or one minute row:
    # a range read never counts the same statements twice.
    raw = int(now - retention.raw_seconds) // MINUTE * MINUTE
    oldest = int(now - retention.minute_seconds) // MINUTE * MINUTE
    for table, rollup in (
        ("windows", _ROLLUP_WINDOWS),
        ("request_windows", _ROLLUP_REQUESTS),
        ("request_repeats", _ROLLUP_REPEATS),
    ):
        tx.run(rollup, (raw, oldest))
        tx.run(
            f"DELETE FROM {table} WHERE resolution = ? AND window_start < ?",
            (WINDOW_SECONDS, raw),
        )
        tx.run(f"DELETE FROM {table} WHERE window_start < ?", (oldest,))
    rollups.apply_retention(tx, raw, oldest)
    tx.run("DELETE FROM fingerprints WHERE last_seen < ?", (oldest,))
    tx.run("DELETE FROM call_sites WHERE fingerprint NOT IN (SELECT fingerprint FROM fingerprints)")
    for prefix in DEPLOY_STATE_PREFIXES:
        tx.run(
            "DELETE FROM state WHERE key IN "
            "(SELECT CAST(? AS TEXT) || id FROM deploys WHERE started_at < ?)",
            (prefix, oldest),
        )
