"""The one storage interface, and the SQL both backends share.

SQLite (embedded default) and PostgreSQL (shared) implement :class:`Store`. Their SQL is the same
(``?`` placeholders, upserts, the ``qw_*`` merge functions each backend provides), so all of it
lives in :class:`SqlStore`; a backend only supplies a connection and :meth:`SqlStore._run`, which
runs one function inside one transaction.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from querywatch.errors import StoreError
from querywatch.records import (
    WINDOW_SECONDS,
    CallSite,
    DeployMarker,
    FingerprintSummary,
    RepeatWindow,
    RequestWindow,
    StatementWindow,
)
from querywatch.sketch import LatencySketch
from querywatch.store.migrations import check_readable, migrate

SortKey = Literal["total", "mean", "calls", "p95"]
MINUTE = 60
MAX_CALL_SITES = 20  # per fingerprint: enough to find the code, bounded for hot shared helpers

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Retention:
    """How long each resolution is kept: 10 s buckets for a day, 1 min buckets for two weeks."""

    raw_seconds: int = 24 * 3600
    minute_seconds: int = 14 * 24 * 3600


#: State kept per deploy, under ``prefix + deploy id`` (the schema snapshot taken at its start,
#: the plans kept before it): it goes with the 1-minute windows' horizon, counted from the
#: deploy's start, since by then no detection compares against that deploy any more.
DEPLOY_STATE_PREFIXES = ("schema:", "plans:before:")


class Store(Protocol):
    """Everything querywatch keeps. Writes are batched and transactional: a batch lands whole."""

    def write_windows(self, windows: Sequence[StatementWindow]) -> None:
        """Merge statement windows in (same fingerprint and bucket: counts add, sketches merge)."""

    def write_requests(self, windows: Sequence[RequestWindow]) -> None:
        """Merge request windows in (same route and bucket: counts add, user sets union)."""

    def top(
        self,
        since: float | None = None,
        until: float | None = None,
        sort: SortKey = "total",
        limit: int = 20,
    ) -> list[FingerprintSummary]:
        """Fingerprints ranked over [since, until), with call sites and percentiles when known.

        Each fingerprint's figures come from one source, the one that saw most of its calls in
        the range (named in ``source``): two sources watching one database never add up.
        """

    def statement_windows(
        self,
        fingerprint: str | None = None,
        since: float | None = None,
        until: float | None = None,
        source: str | None = None,
    ) -> list[StatementWindow]:
        """Stored windows in time order, optionally for one fingerprint.

        Without ``source``, each fingerprint's windows come from one source, the one that saw
        most of its calls in the range, so summing them never counts a call twice.
        """

    def request_windows(
        self, route: str | None = None, since: float | None = None, until: float | None = None
    ) -> list[RequestWindow]:
        """Stored request windows in time order, optionally for one route."""

    def get_state(self, key: str) -> str | None:
        """A small piece of agent state (e.g. the poller's last snapshot), so a restart resumes."""

    def set_state(self, key: str, value: str) -> None: ...

    def update_state(self, key: str, change: Callable[[str | None], str]) -> str:
        """Read, change and write one state value in one transaction that no other writer of
        the same key (another process included) can interleave with; returns the new value.
        An exception in ``change`` writes nothing."""

    def apply_retention(self, now: float, retention: Retention = Retention()) -> None:
        """Roll 10 s buckets older than the raw horizon into 1 min buckets; drop what is too old
        (per-deploy state of deploys older than that too; the markers themselves stay)."""

    def record_deploy(self, marker: DeployMarker) -> None:
        """Record a deploy, or update the one with the same id (e.g. to set ``finished_at``).

        Fields given as ``None`` keep what is stored, so a finish need not repeat the commit or
        author; ``rollback`` once recorded stays set. Deploy markers are never expired.
        """

    def deploys(
        self,
        since: float | None = None,
        until: float | None = None,
        environment: str | None = None,
    ) -> list[DeployMarker]:
        """Deploys that started in [since, until), in start order, optionally in one environment."""

    def latest_deploy(self, environment: str | None = None) -> DeployMarker | None:
        """The deploy that started last (optionally in one environment), or ``None`` if none."""

    def write_repeats(self, windows: Sequence[RepeatWindow]) -> None:
        """Merge N+1 repeat windows in (same route, fingerprint and bucket: requests and repeats
        add, the max is the max of both)."""

    def repeat_windows(
        self,
        route: str | None = None,
        fingerprint: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[RepeatWindow]:
        """Stored repeat windows in time order, optionally for one route and/or fingerprint."""

    def transaction(self, fn: Callable[[Tx], T], *, write: bool = True) -> T:
        """Run ``fn`` in one transaction: committed if it returns, rolled back if it raises.

        How higher layers keep their own tables (incidents) with the store's SQL and guarantees;
        ``write=False`` for reads (a read-only store refuses writes).
        """

    def close(self) -> None: ...


class Tx(Protocol):
    """One open transaction, as the shared SQL sees it (``?`` placeholders on every backend)."""

    def run(self, sql: str, params: Sequence[object] = ()) -> None: ...

    def run_many(self, sql: str, rows: Iterable[Sequence[object]]) -> None: ...

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]: ...

    def each(self, sql: str, params: Sequence[object] = ()) -> Iterator[tuple[Any, ...]]:
        """The rows one at a time (for reads too large to hold twice), inside the transaction."""


# Merging happens in the upsert itself, so a write never reads first and concurrent writers (many
# agents on one PostgreSQL) cannot lose each other's counts. The same SET clause merges 10 s rows
# into minute rows during retention. Windows are keyed by source too: processes capturing in-app
# add up (they saw different calls), while pg_stat_statements and in-app capture of one database
# (the same calls, seen twice) stay apart, and readers take one source per fingerprint.
_WINDOW_COLUMNS = (
    "fingerprint, window_start, resolution, calls, total_ms, max_ms, min_ms, rows, errors, "
    "shared_blks_hit, shared_blks_read, sketch, source"
)
_WINDOW_MERGE = """
ON CONFLICT (fingerprint, window_start, resolution, source) DO UPDATE SET
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
    f"INSERT INTO windows ({_WINDOW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    + _WINDOW_MERGE
)
_ROLLUP_WINDOWS = f"""
INSERT INTO windows ({_WINDOW_COLUMNS})
SELECT fingerprint, window_start / {MINUTE} * {MINUTE}, {MINUTE}, SUM(calls), SUM(total_ms),
       MAX(max_ms), MIN(min_ms), SUM(rows), SUM(errors), SUM(shared_blks_hit),
       SUM(shared_blks_read), qw_sketch_agg(sketch), source
FROM windows WHERE resolution = {WINDOW_SECONDS} AND window_start < ? AND window_start >= ?
GROUP BY fingerprint, window_start / {MINUTE} * {MINUTE}, source
{_WINDOW_MERGE}"""

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

_REQUEST_COLUMNS = (
    "route, window_start, resolution, requests, errors, total_ms, max_ms, db_ms, db_calls, "
    "sketch, users, failed_users"
)
_REQUEST_MERGE = """
ON CONFLICT (route, window_start, resolution) DO UPDATE SET
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
    f"INSERT INTO request_windows ({_REQUEST_COLUMNS}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" + _REQUEST_MERGE
)
_ROLLUP_REQUESTS = f"""
INSERT INTO request_windows ({_REQUEST_COLUMNS})
SELECT route, window_start / {MINUTE} * {MINUTE}, {MINUTE}, SUM(requests), SUM(errors),
       SUM(total_ms), MAX(max_ms), SUM(db_ms), SUM(db_calls), qw_sketch_agg(sketch),
       qw_union_agg(users), qw_union_agg(failed_users)
FROM request_windows WHERE resolution = {WINDOW_SECONDS} AND window_start < ? AND window_start >= ?
GROUP BY route, window_start / {MINUTE} * {MINUTE}
{_REQUEST_MERGE}"""

# A repeated id updates the marker: required fields take the new values, a NULL keeps what is
# stored (a finish need not know the commit or author), and a rollback stays one.
_DEPLOY_COLUMNS = (
    'id, version, "commit", environment, started_at, finished_at, author, previous_version, '
    '"rollback", migration, schema_change'
)
_UPSERT_DEPLOY = f"""
INSERT INTO deploys ({_DEPLOY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
  version = excluded.version,
  "commit" = COALESCE(excluded."commit", deploys."commit"),
  environment = excluded.environment,
  started_at = excluded.started_at,
  finished_at = COALESCE(excluded.finished_at, deploys.finished_at),
  author = COALESCE(excluded.author, deploys.author),
  previous_version = COALESCE(excluded.previous_version, deploys.previous_version),
  "rollback" = deploys."rollback" OR excluded."rollback",
  migration = COALESCE(excluded.migration, deploys.migration),
  schema_change = COALESCE(excluded.schema_change, deploys.schema_change)
"""

_REPEAT_COLUMNS = (
    "route, fingerprint, window_start, resolution, requests, total_repeats, max_repeats"
)
_REPEAT_MERGE = """
ON CONFLICT (route, fingerprint, window_start, resolution) DO UPDATE SET
  requests = request_repeats.requests + excluded.requests,
  total_repeats = request_repeats.total_repeats + excluded.total_repeats,
  max_repeats = CASE WHEN excluded.max_repeats > request_repeats.max_repeats
                     THEN excluded.max_repeats ELSE request_repeats.max_repeats END
"""
_INSERT_REPEAT = (
    f"INSERT INTO request_repeats ({_REPEAT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)" + _REPEAT_MERGE
)
_ROLLUP_REPEATS = f"""
INSERT INTO request_repeats ({_REPEAT_COLUMNS})
SELECT route, fingerprint, window_start / {MINUTE} * {MINUTE}, {MINUTE}, SUM(requests),
       SUM(total_repeats), MAX(max_repeats)
FROM request_repeats
WHERE resolution = {WINDOW_SECONDS} AND window_start < ? AND window_start >= ?
GROUP BY route, fingerprint, window_start / {MINUTE} * {MINUTE}
{_REPEAT_MERGE}"""

_UPSERT_STATE = (
    "INSERT INTO state (key, value) VALUES (?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


def _where(
    column: str, value: str | None, since: float | None, until: float | None, prefix: str = ""
) -> tuple[str, list[object]]:
    """A WHERE clause for an optional key and a [since, until) range on bucket starts."""
    clauses, params = [], list[object]()
    if value is not None:
        clauses.append(f"{prefix}{column} = ?")
        params.append(value)
    if since is not None:
        clauses.append(f"{prefix}window_start >= ?")
        params.append(since)
    if until is not None:
        clauses.append(f"{prefix}window_start < ?")
        params.append(until)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _deploy(row: Sequence[Any]) -> DeployMarker:
    (id_, version, commit, environment, started, finished, author, previous, rollback) = row[:9]
    migration, schema_change = row[9:11]
    return DeployMarker(
        id_,
        version,
        commit,
        environment,
        float(started),
        None if finished is None else float(finished),
        author,
        previous,
        bool(rollback),  # SQLite keeps booleans as 0/1
        migration,
        schema_change,
    )


def _one_source_each(calls: Iterable[tuple[str, str, int]]) -> dict[str, str]:
    """Per fingerprint, the source that saw the most calls (ties: the greater name).

    pg_stat_statements sees every client of the database, in-app capture only the instrumented
    ones, so on one database the source with more calls is the more complete view; adding the two
    would count each call twice.
    """
    totals: dict[tuple[str, str], int] = {}
    for fp, source, n in calls:
        totals[fp, source] = totals.get((fp, source), 0) + n
    best: dict[str, tuple[int, str]] = {}
    for (fp, source), n in totals.items():
        if (n, source) > best.get(fp, (-1, "")):
            best[fp] = (n, source)
    return {fp: source for fp, (_, source) in best.items()}


def _sketch(text: str | None) -> LatencySketch | None:
    return LatencySketch.from_json(text) if text is not None else None


def _sort_value(summary: FingerprintSummary, sort: SortKey) -> float:
    if sort == "total":
        return summary.total_ms
    if sort == "mean":
        return summary.mean_ms
    if sort == "calls":
        return summary.calls
    return summary.p95_ms if summary.p95_ms is not None else float("-inf")


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


class SqlStore(ABC):
    """The :class:`Store` over SQL: backends differ only in connection handling."""

    where: str  # the location, safe to print (passwords redacted)
    read_only: bool = False  # opened by a command that only reads: no schema written, no writes

    @abstractmethod
    def _run(self, fn: Callable[[Tx], T], *, write: bool = True) -> T:
        """Run ``fn`` in one transaction: committed if it returns, rolled back if it raises."""

    @abstractmethod
    def close(self) -> None: ...

    def transaction(self, fn: Callable[[Tx], T], *, write: bool = True) -> T:
        return self._run(fn, write=write)

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self, dialect: Literal["sqlite", "postgres"]) -> None:
        self._run(lambda tx: migrate(tx, dialect, self.where, self._before_migrate))

    def _check_readable(self, dialect: Literal["sqlite", "postgres"]) -> None:
        """For a read-only open: the schema must be there, and one these reads understand."""
        self._run(lambda tx: check_readable(tx, dialect, self.where), write=False)

    def _read_only_error(self) -> StoreError:
        return StoreError(f"cannot write the store at {self.where}: it was opened read-only")

    def _before_migrate(self, tx: Tx) -> None:  # noqa: B027 - an optional hook, not abstract
        """A hook run first in the migration transaction (PostgreSQL locks and makes its schema)."""

    def schema_version(self) -> int:
        rows = self._run(lambda tx: tx.rows("SELECT MAX(version) FROM schema_version"), write=False)
        return int(rows[0][0] or 0)

    # -- writes ---------------------------------------------------------------------------------

    def write_windows(self, windows: Sequence[StatementWindow]) -> None:
        if not windows:
            return
        fingerprints = _fingerprint_rows(windows)
        sites = {(w.fingerprint, s.path, s.line, s.function) for w in windows for s in w.call_sites}
        site_rows = [(*s, s[0], MAX_CALL_SITES) for s in sorted(sites)]
        ordered = sorted(windows, key=lambda w: (w.fingerprint, w.window_start))

        def write(tx: Tx) -> None:
            tx.run_many(_UPSERT_FINGERPRINT, fingerprints)
            # Rows are made as the driver sends them, never all held at once; made anew if the
            # transaction runs again (PostgreSQL reconnects once).
            tx.run_many(_INSERT_WINDOW, (_window_row(w) for w in ordered))
            if site_rows:
                tx.run_many(_INSERT_CALL_SITE, site_rows)

        self._run(write)

    def write_requests(self, windows: Sequence[RequestWindow]) -> None:
        if not windows:
            return
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
            )
            for w in sorted(windows, key=lambda w: (w.route, w.window_start))
        ]
        self._run(lambda tx: tx.run_many(_INSERT_REQUEST, rows))

    def write_repeats(self, windows: Sequence[RepeatWindow]) -> None:
        """Also records each fingerprint's text, so a repeat row can be read on its own."""
        if not windows:
            return
        fingerprints = _fingerprint_rows(windows)
        rows = [
            (
                w.route,
                w.fingerprint,
                w.window_start,
                WINDOW_SECONDS,
                w.requests,
                w.total_repeats,
                w.max_repeats,
            )
            for w in sorted(windows, key=lambda w: (w.route, w.fingerprint, w.window_start))
        ]

        def write(tx: Tx) -> None:
            tx.run_many(_UPSERT_FINGERPRINT, fingerprints)
            tx.run_many(_INSERT_REPEAT, rows)

        self._run(write)

    def set_state(self, key: str, value: str) -> None:
        self._run(lambda tx: tx.run(_UPSERT_STATE, (key, value)))

    def update_state(self, key: str, change: Callable[[str | None], str]) -> str:
        def update(tx: Tx) -> str:
            self._lock_state(tx, key)
            rows = tx.rows("SELECT value FROM state WHERE key = ?", (key,))
            value = change(str(rows[0][0]) if rows else None)
            tx.run(_UPSERT_STATE, (key, value))
            return value

        return self._run(update)

    def _lock_state(self, tx: Tx, key: str) -> None:  # noqa: B027 - an optional hook
        """Serialize writers of ``key``: on SQLite, BEGIN IMMEDIATE already does."""

    def get_state(self, key: str) -> str | None:
        rows = self._run(
            lambda tx: tx.rows("SELECT value FROM state WHERE key = ?", (key,)), write=False
        )
        return str(rows[0][0]) if rows else None

    def record_deploy(self, marker: DeployMarker) -> None:
        params = (
            marker.id,
            marker.version,
            marker.commit,
            marker.environment,
            marker.started_at,
            marker.finished_at,
            marker.author,
            marker.previous_version,
            marker.rollback,
            marker.migration,
            marker.schema_change,
        )
        self._run(lambda tx: tx.run(_UPSERT_DEPLOY, params))

    def apply_retention(self, now: float, retention: Retention = Retention()) -> None:
        # Horizons are whole minutes, so a minute is either all 10 s rows or one minute row:
        # a range read never counts the same statements twice.
        raw = int(now - retention.raw_seconds) // MINUTE * MINUTE
        oldest = int(now - retention.minute_seconds) // MINUTE * MINUTE

        def roll(tx: Tx) -> None:
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
            tx.run("DELETE FROM fingerprints WHERE last_seen < ?", (oldest,))
            tx.run(
                "DELETE FROM call_sites WHERE fingerprint NOT IN "
                "(SELECT fingerprint FROM fingerprints)"
            )
            for prefix in DEPLOY_STATE_PREFIXES:
                tx.run(
                    "DELETE FROM state WHERE key IN "
                    "(SELECT CAST(? AS TEXT) || id FROM deploys WHERE started_at < ?)",
                    (prefix, oldest),
                )

        self._run(roll)

    # -- reads ----------------------------------------------------------------------------------

    def _call_sites(self, tx: Tx, fingerprints: Sequence[str]) -> dict[str, tuple[CallSite, ...]]:
        found: dict[str, list[CallSite]] = {}
        for start in range(0, len(fingerprints), 500):
            chunk = fingerprints[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            for fp, path, line, function in tx.rows(
                "SELECT fingerprint, path, line, function FROM call_sites "
                f"WHERE fingerprint IN ({marks}) ORDER BY fingerprint, path, line, function",
                chunk,
            ):
                found.setdefault(fp, []).append(CallSite(path, int(line), function))
        return {fp: tuple(sites) for fp, sites in found.items()}

    def top(
        self,
        since: float | None = None,
        until: float | None = None,
        sort: SortKey = "total",
        limit: int = 20,
    ) -> list[FingerprintSummary]:
        where, params = _where("fingerprint", None, since, until, prefix="w.")
        sql = (
            "SELECT w.fingerprint, f.normalized, f.dialect, SUM(w.calls), SUM(w.total_ms), "
            "MAX(w.max_ms), SUM(w.rows), SUM(w.errors), f.first_seen, f.last_seen, "
            "qw_sketch_agg(w.sketch), w.source "
            f"FROM windows w JOIN fingerprints f ON f.fingerprint = w.fingerprint{where} "
            "GROUP BY w.fingerprint, w.source, f.normalized, f.dialect, f.first_seen, f.last_seen"
        )

        def read(tx: Tx) -> list[FingerprintSummary]:
            summaries = []
            rows = tx.rows(sql, params)
            chosen_source = _one_source_each((r[0], r[11], int(r[3])) for r in rows)
            for fp, norm, dialect, calls, total, mx, nrows, errors, first, last, sk, src in rows:
                if chosen_source[fp] != src:
                    continue
                sketch = _sketch(sk) or LatencySketch()
                summaries.append(
                    FingerprintSummary(
                        fp,
                        norm,
                        dialect,
                        int(calls),
                        float(total),
                        float(mx),
                        int(nrows),
                        int(errors),
                        float(first),
                        float(last),
                        p50_ms=sketch.quantile(0.5),
                        p95_ms=sketch.quantile(0.95),
                        p99_ms=sketch.quantile(0.99),
                        source=src,
                    )
                )
            # Ties broken by fingerprint so the ranking is stable between runs and backends.
            summaries.sort(key=lambda s: s.fingerprint)
            summaries.sort(key=lambda s: _sort_value(s, sort), reverse=True)
            chosen = summaries[:limit]
            sites = self._call_sites(tx, [s.fingerprint for s in chosen])
            for s in chosen:
                s.call_sites = sites.get(s.fingerprint, ())
            return chosen

        return self._run(read, write=False)

    def statement_windows(
        self,
        fingerprint: str | None = None,
        since: float | None = None,
        until: float | None = None,
        source: str | None = None,
    ) -> list[StatementWindow]:
        """Windows of both resolutions in time order; a minute row starts on its minute.

        One source per fingerprint (see :meth:`Store.statement_windows`), or only ``source``.
        Each window carries its fingerprint's known call sites (they are kept per fingerprint).
        """
        where, params = _where("fingerprint", fingerprint, since, until, prefix="w.")
        if source is not None:
            where += (" AND" if where else " WHERE") + " w.source = ?"
            params.append(source)
        sql = (
            "SELECT w.fingerprint, f.normalized, w.window_start, w.calls, w.total_ms, w.max_ms, "
            "f.dialect, w.source, w.min_ms, w.rows, w.errors, w.shared_blks_hit, "
            "w.shared_blks_read, w.sketch "
            f"FROM windows w JOIN fingerprints f ON f.fingerprint = w.fingerprint{where} "
            "ORDER BY w.window_start, w.fingerprint, w.resolution"
        )

        def read(tx: Tx) -> list[StatementWindow]:
            # Rows are read one at a time, and what repeats from row to row (the fingerprint,
            # its text, the bucket start, the source) is kept once: the detector reads half an
            # hour of windows of every fingerprint after each poll.
            known: dict[str, tuple[str, str, str]] = {}
            shared: dict[object, Any] = {}
            windows: list[StatementWindow] = []
            for (
                fp,
                norm,
                start,
                calls,
                total,
                mx,
                dialect,
                src,
                mn,
                nrows,
                errors,
                hit,
                blks_read,
                sk,
            ) in tx.each(sql, params):
                names = known.get(fp)
                if names is None:
                    names = known[fp] = (fp, norm, dialect)
                windows.append(
                    StatementWindow(
                        names[0],
                        names[1],
                        shared.setdefault(int(start), int(start)),
                        int(calls),
                        float(total),
                        float(mx),
                        names[2],
                        shared.setdefault(src, src),
                        None if mn is None else float(mn),
                        int(nrows),
                        int(errors),
                        int(hit),
                        int(blks_read),
                        _sketch(sk),
                    )
                )
            if source is None and len({w.source for w in windows}) > 1:
                chosen = _one_source_each((w.fingerprint, w.source, w.calls) for w in windows)
                windows = [w for w in windows if chosen[w.fingerprint] == w.source]
            sites = self._call_sites(tx, sorted(known))
            for w in windows:
                w.call_sites = sites.get(w.fingerprint, ())
            return windows

        return self._run(read, write=False)

    def request_windows(
        self, route: str | None = None, since: float | None = None, until: float | None = None
    ) -> list[RequestWindow]:
        where, params = _where("route", route, since, until)
        sql = (
            "SELECT route, window_start, requests, errors, total_ms, max_ms, db_ms, db_calls, "
            f"sketch, users, failed_users FROM request_windows{where} "
            "ORDER BY window_start, route, resolution"
        )
        rows = self._run(lambda tx: tx.rows(sql, params), write=False)
        return [
            RequestWindow(
                r,
                int(start),
                int(requests),
                int(errors),
                float(total),
                float(mx),
                float(db),
                int(calls),
                _sketch(sk),
                frozenset(json.loads(users)),
                frozenset(json.loads(failed)),
            )
            for r, start, requests, errors, total, mx, db, calls, sk, users, failed in rows
        ]

    def repeat_windows(
        self,
        route: str | None = None,
        fingerprint: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[RepeatWindow]:
        clauses, params = [], list[object]()
        for column, value in (("r.route", route), ("r.fingerprint", fingerprint)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            clauses.append("r.window_start >= ?")
            params.append(since)
        if until is not None:
            clauses.append("r.window_start < ?")
            params.append(until)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        sql = (
            "SELECT r.route, r.fingerprint, r.window_start, r.requests, r.total_repeats, "
            "r.max_repeats, f.normalized, f.dialect FROM request_repeats r "
            f"LEFT JOIN fingerprints f ON f.fingerprint = r.fingerprint{where} "
            "ORDER BY r.window_start, r.route, r.fingerprint, r.resolution"
        )
        rows = self._run(lambda tx: tx.rows(sql, params), write=False)
        return [
            RepeatWindow(
                route,
                fp,
                int(start),
                int(requests),
                int(total),
                int(mx),
                normalized or "",
                dialect or "postgres",
            )
            for route, fp, start, requests, total, mx, normalized, dialect in rows
        ]

    def deploys(
        self,
        since: float | None = None,
        until: float | None = None,
        environment: str | None = None,
    ) -> list[DeployMarker]:
        clauses, params = [], list[object]()
        if environment is not None:
            clauses.append("environment = ?")
            params.append(environment)
        if since is not None:
            clauses.append("started_at >= ?")
            params.append(since)
        if until is not None:
            clauses.append("started_at < ?")
            params.append(until)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        sql = f"SELECT {_DEPLOY_COLUMNS} FROM deploys{where} ORDER BY started_at, id"
        return [_deploy(row) for row in self._run(lambda tx: tx.rows(sql, params), write=False)]

    def latest_deploy(self, environment: str | None = None) -> DeployMarker | None:
        where, params = (
            ("", []) if environment is None else (" WHERE environment = ?", [environment])
        )
        sql = (
            f"SELECT {_DEPLOY_COLUMNS} FROM deploys{where} "
            "ORDER BY started_at DESC, id DESC LIMIT 1"
        )
        rows = self._run(lambda tx: tx.rows(sql, params), write=False)
        return _deploy(rows[0]) if rows else None
