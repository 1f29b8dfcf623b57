"""Versioned schema migrations, applied in order on open, all in one transaction.

Append a :class:`Migration` to :data:`MIGRATIONS` to change the schema; never edit a released one.
The DDL uses PostgreSQL type names, which SQLite maps onto its own affinities, so one text serves
both backends; ``postgres`` holds what only PostgreSQL needs (SQLite registers the same ``qw_*``
functions on each connection instead) and ``sqlite`` what only SQLite does; ``fill`` runs last,
for data a new table starts with.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from querywatch.errors import StoreError
from querywatch.store import rollups

if TYPE_CHECKING:
    from querywatch.store.base import Tx


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]
    postgres: tuple[str, ...] = ()
    sqlite: tuple[str, ...] = ()
    fill: Callable[[Tx], None] | None = None


_MERGE_SKETCH = """
CREATE FUNCTION qw_merge_sketch(a text, b text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  ja jsonb;
  jb jsonb;
BEGIN
  IF a IS NULL OR b IS NULL THEN
    RETURN COALESCE(a, b);
  END IF;
  ja := a::jsonb;
  jb := b::jsonb;
  -- Keys only in one side come from ||; keys in both are summed and overwrite.
  RETURN (ja || jb || COALESCE((
    SELECT jsonb_object_agg(key, value::bigint + (ja ->> key)::bigint)
    FROM jsonb_each_text(jb) WHERE (ja ->> key) IS NOT NULL), '{}'::jsonb))::text;
END
$$"""
_UNION_JSON = """
CREATE FUNCTION qw_union_json(a text, b text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a ELSE (
    SELECT COALESCE(jsonb_agg(v ORDER BY v), '[]'::jsonb)::text FROM (
      SELECT jsonb_array_elements_text(a::jsonb) AS v
      UNION SELECT jsonb_array_elements_text(b::jsonb)) AS u) END
$$"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "fingerprints, call sites, statement and request windows, agent state",
        (
            """CREATE TABLE fingerprints (
                fingerprint TEXT PRIMARY KEY,
                normalized TEXT NOT NULL,
                dialect TEXT NOT NULL,
                first_seen BIGINT NOT NULL,
                last_seen BIGINT NOT NULL)""",
            """CREATE TABLE call_sites (
                fingerprint TEXT NOT NULL,
                path TEXT NOT NULL,
                line INTEGER NOT NULL,
                function TEXT NOT NULL,
                PRIMARY KEY (fingerprint, path, line, function))""",
            """CREATE TABLE windows (
                fingerprint TEXT NOT NULL,
                window_start BIGINT NOT NULL,
                resolution INTEGER NOT NULL,
                calls BIGINT NOT NULL,
                total_ms DOUBLE PRECISION NOT NULL,
                max_ms DOUBLE PRECISION NOT NULL,
                min_ms DOUBLE PRECISION,
                rows BIGINT NOT NULL,
                errors BIGINT NOT NULL,
                shared_blks_hit BIGINT NOT NULL,
                shared_blks_read BIGINT NOT NULL,
                sketch TEXT,
                source TEXT NOT NULL,
                PRIMARY KEY (fingerprint, window_start, resolution))""",
            "CREATE INDEX windows_by_time ON windows (window_start)",
            """CREATE TABLE request_windows (
                route TEXT NOT NULL,
                window_start BIGINT NOT NULL,
                resolution INTEGER NOT NULL,
                requests BIGINT NOT NULL,
                errors BIGINT NOT NULL,
                total_ms DOUBLE PRECISION NOT NULL,
                max_ms DOUBLE PRECISION NOT NULL,
                db_ms DOUBLE PRECISION NOT NULL,
                db_calls BIGINT NOT NULL,
                sketch TEXT,
                users TEXT NOT NULL,
                failed_users TEXT NOT NULL,
                PRIMARY KEY (route, window_start, resolution))""",
            "CREATE INDEX request_windows_by_time ON request_windows (window_start)",
            "CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ),
        postgres=(
            _MERGE_SKETCH,
            _UNION_JSON,
            "CREATE AGGREGATE qw_sketch_agg(text) (SFUNC = qw_merge_sketch, STYPE = text)",
            "CREATE AGGREGATE qw_union_agg(text) (SFUNC = qw_union_json, STYPE = text)",
        ),
    ),
    Migration(
        2,
        "deploy markers",
        (
            # "commit" and "rollback" are SQL keywords: quoted wherever they are named.
            """CREATE TABLE deploys (
                id TEXT PRIMARY KEY,
                version TEXT NOT NULL,
                "commit" TEXT,
                environment TEXT NOT NULL,
                started_at DOUBLE PRECISION NOT NULL,
                finished_at DOUBLE PRECISION,
                author TEXT,
                previous_version TEXT,
                "rollback" BOOLEAN NOT NULL)""",
            "CREATE INDEX deploys_by_time ON deploys (started_at)",
        ),
    ),
    Migration(
        3,
        "statements repeated within one request (N+1)",
        (
            # Per route, fingerprint and bucket: how many requests ran the fingerprint at least
            # the capture threshold of times, and how often they ran it.
            """CREATE TABLE request_repeats (
                route TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                window_start BIGINT NOT NULL,
                resolution INTEGER NOT NULL,
                requests BIGINT NOT NULL,
                total_repeats BIGINT NOT NULL,
                max_repeats BIGINT NOT NULL,
                PRIMARY KEY (route, fingerprint, window_start, resolution))""",
            "CREATE INDEX request_repeats_by_time ON request_repeats (window_start)",
        ),
    ),
    Migration(
        4,
        "incidents and their timelines",
        (
            """CREATE TABLE incidents (
                id TEXT PRIMARY KEY,
                status TEXT NOT NULL,
                opened_at DOUBLE PRECISION NOT NULL,
                detected_at DOUBLE PRECISION NOT NULL,
                resolved_at DOUBLE PRECISION,
                title TEXT NOT NULL,
                deploy_id TEXT,
                body TEXT NOT NULL)""",
            "CREATE INDEX incidents_by_time ON incidents (opened_at)",
            # The detector looks up unresolved incidents on every finding; the list filters too.
            "CREATE INDEX incidents_by_status ON incidents (status, opened_at)",
            # One row per timeline event, numbered per incident in the order they happened; tags
            # is a JSON list, data a JSON object.
            """CREATE TABLE incident_events (
                incident_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                at DOUBLE PRECISION NOT NULL,
                kind TEXT NOT NULL,
                message TEXT NOT NULL,
                author TEXT,
                tags TEXT NOT NULL,
                data TEXT NOT NULL,
                PRIMARY KEY (incident_id, seq))""",
        ),
    ),
    Migration(
        5,
        "deploy markers say whether they changed the schema (declared, or seen between snapshots)",
        (
            "ALTER TABLE deploys ADD COLUMN migration TEXT",
            "ALTER TABLE deploys ADD COLUMN schema_change TEXT",
        ),
    ),
    Migration(
        6,
        "windows keyed by source: pg_stat_statements and in-app capture never add up",
        (
            # SQLite cannot change a primary key in place: the table is rebuilt, rows kept as they
            # are (a row that already merged two sources stays under the source it recorded).
            """CREATE TABLE windows_by_source (
                fingerprint TEXT NOT NULL,
                window_start BIGINT NOT NULL,
                resolution INTEGER NOT NULL,
                calls BIGINT NOT NULL,
                total_ms DOUBLE PRECISION NOT NULL,
                max_ms DOUBLE PRECISION NOT NULL,
                min_ms DOUBLE PRECISION,
                rows BIGINT NOT NULL,
                errors BIGINT NOT NULL,
                shared_blks_hit BIGINT NOT NULL,
                shared_blks_read BIGINT NOT NULL,
                sketch TEXT,
                source TEXT NOT NULL,
                PRIMARY KEY (fingerprint, window_start, resolution, source))""",
            """INSERT INTO windows_by_source (fingerprint, window_start, resolution, calls,
                total_ms, max_ms, min_ms, rows, errors, shared_blks_hit, shared_blks_read, sketch,
                source)
               SELECT fingerprint, window_start, resolution, calls, total_ms, max_ms, min_ms, rows,
                 errors, shared_blks_hit, shared_blks_read, sketch, source FROM windows""",
            "DROP TABLE windows",
            "ALTER TABLE windows_by_source RENAME TO windows",
            "CREATE INDEX windows_by_time ON windows (window_start)",
        ),
    ),
    Migration(
        7,
        "windows keyed by release: two releases serving at once (a canary) never merge",
        (
            # Rebuilt as in migration 6 (SQLite cannot change a primary key in place); the rows
            # written before the release was known keep release '' (unknown).
            """CREATE TABLE windows_by_release (
                fingerprint TEXT NOT NULL,
                window_start BIGINT NOT NULL,
                resolution INTEGER NOT NULL,
                calls BIGINT NOT NULL,
                total_ms DOUBLE PRECISION NOT NULL,
                max_ms DOUBLE PRECISION NOT NULL,
                min_ms DOUBLE PRECISION,
                rows BIGINT NOT NULL,
                errors BIGINT NOT NULL,
                shared_blks_hit BIGINT NOT NULL,
                shared_blks_read BIGINT NOT NULL,
                sketch TEXT,
                source TEXT NOT NULL,
                release TEXT NOT NULL DEFAULT '',
                PRIMARY KEY (fingerprint, window_start, resolution, source, release))""",
            """INSERT INTO windows_by_release (fingerprint, window_start, resolution, calls,
                total_ms, max_ms, min_ms, rows, errors, shared_blks_hit, shared_blks_read, sketch,
                source)
               SELECT fingerprint, window_start, resolution, calls, total_ms, max_ms, min_ms, rows,
                 errors, shared_blks_hit, shared_blks_read, sketch, source FROM windows""",
            "DROP TABLE windows",
            "ALTER TABLE windows_by_release RENAME TO windows",
            "CREATE INDEX windows_by_time ON windows (window_start)",
            """CREATE TABLE request_windows_by_release (
                route TEXT NOT NULL,
                window_start BIGINT NOT NULL,
                resolution INTEGER NOT NULL,
                requests BIGINT NOT NULL,
                errors BIGINT NOT NULL,
                total_ms DOUBLE PRECISION NOT NULL,
                max_ms DOUBLE PRECISION NOT NULL,
                db_ms DOUBLE PRECISION NOT NULL,
                db_calls BIGINT NOT NULL,
                sketch TEXT,
                users TEXT NOT NULL,
                failed_users TEXT NOT NULL,
                release TEXT NOT NULL DEFAULT '',
                PRIMARY KEY (route, window_start, resolution, release))""",
            """INSERT INTO request_windows_by_release (route, window_start, resolution, requests,
                errors, total_ms, max_ms, db_ms, db_calls, sketch, users, failed_users)
               SELECT route, window_start, resolution, requests, errors, total_ms, max_ms, db_ms,
                 db_calls, sketch, users, failed_users FROM request_windows""",
            "DROP TABLE request_windows",
            "ALTER TABLE request_windows_by_release RENAME TO request_windows",
            "CREATE INDEX request_windows_by_time ON request_windows (window_start)",
            """CREATE TABLE request_repeats_by_release (
                route TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                window_start BIGINT NOT NULL,
                resolution INTEGER NOT NULL,
                requests BIGINT NOT NULL,
                total_repeats BIGINT NOT NULL,
                max_repeats BIGINT NOT NULL,
                release TEXT NOT NULL DEFAULT '',
                PRIMARY KEY (route, fingerprint, window_start, resolution, release))""",
            """INSERT INTO request_repeats_by_release (route, fingerprint, window_start,
                resolution, requests, total_repeats, max_repeats)
               SELECT route, fingerprint, window_start, resolution, requests, total_repeats,
                 max_repeats FROM request_repeats""",
            "DROP TABLE request_repeats",
            "ALTER TABLE request_repeats_by_release RENAME TO request_repeats",
            "CREATE INDEX request_repeats_by_time ON request_repeats (window_start)",
        ),
    ),
    Migration(
        8,
        "rollups for the dashboard: totals per bucket, per-fingerprint slots of 5 min to a day",
        (),
        postgres=rollups.POSTGRES_DDL,
        sqlite=rollups.SQLITE_DDL,
        fill=rollups.rebuild_rollups,
    ),
    Migration(
        9,
        "fingerprints by first seen: the queries a deploy brought, without a scan",
        ("CREATE INDEX IF NOT EXISTS fingerprints_by_first_seen ON fingerprints (first_seen)",),
    ),
)
#: The first schema whose windows carry a release; reads of an older store (read-only, not
#: migrated) see every window as release '' (unknown).
RELEASE_SINCE = 7
LATEST = MIGRATIONS[-1].version
#: The oldest schema this querywatch's reads understand: a read-only command reads a store down
#: to this version without migrating it (raise it when a migration changes what reads need).
READABLE_FROM = 5

_HAS_VERSION_TABLE = {
    "sqlite": "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
    # search_path names the querywatch schema: an unqualified name resolves there or nowhere.
    "postgres": "SELECT COUNT(to_regclass('schema_version'))",
}


def migrate(
    tx: Tx,
    dialect: Literal["sqlite", "postgres"],
    where: str,
    before: Callable[[Tx], None] = lambda tx: None,
) -> int:
    """Bring the schema to :data:`LATEST`; refuse a store written by a newer querywatch."""
    before(tx)
    tx.run(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
        "description TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
    )
    current = int(tx.rows("SELECT MAX(version) FROM schema_version")[0][0] or 0)
    if current > LATEST:
        raise StoreError(
            f"the store at {where} has schema version {current}, newer than this querywatch "
            f"understands ({LATEST}): upgrade querywatch"
        )
    for migration in MIGRATIONS:
        if migration.version <= current:
            continue
        for statement in migration.statements:
            tx.run(statement)
        for statement in migration.postgres if dialect == "postgres" else migration.sqlite:
            tx.run(statement)
        if migration.fill is not None:
            migration.fill(tx)
        tx.run(
            "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.description, time.time()),
        )
    return max(current, LATEST)


def check_readable(tx: Tx, dialect: Literal["sqlite", "postgres"], where: str) -> int:
    """The schema version of a store opened read-only; refuse one the reads cannot use.

    A store nothing has written to yet (an empty file, a database without querywatch's schema)
    says so, rather than getting a schema written by a command that only reads.
    """
    if not int(tx.rows(_HAS_VERSION_TABLE[dialect])[0][0]):
        raise StoreError(
            f"no data yet in the store at {where}: nothing has been recorded there; run "
            "`querywatch watch` (or capture in the application) first"
        )
    current = int(tx.rows("SELECT MAX(version) FROM schema_version")[0][0] or 0)
    if current > LATEST:
        raise StoreError(
            f"the store at {where} has schema version {current}, newer than this querywatch "
            f"understands ({LATEST}): upgrade querywatch"
        )
    if current < READABLE_FROM:
        raise StoreError(
            f"the store at {where} has schema version {current}, older than this querywatch "
            f"reads ({LATEST}): run a command that writes to it (`querywatch watch`) to upgrade it"
        )
    return current
