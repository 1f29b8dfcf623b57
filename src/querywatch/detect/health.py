"""Is the database server itself in trouble? A read-only health snapshot of a PostgreSQL.

In the report the team chased hardware and the network before anyone looked at the database; a
snapshot of connections, lock waits, the cache hit ratio and the longest running statements
answers "is it the database?" in one look. Every query goes through :func:`querywatch.pg.connect`
(read-only, autocommit, short ``statement_timeout``), so taking a snapshot of a struggling
server cannot make it worse. Statement texts are shown only as fingerprints' normalized text, so
no literal value from the monitored application is printed.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from querywatch import pg
from querywatch.errors import DatabaseUnavailable, SourceError
from querywatch.sql import fingerprint

QUERY_CHARS = 200
"""Normalized statement text is cut to this many characters (enough to recognise a query)."""

LONGEST = 5
"""How many of the longest running active statements the snapshot lists."""

SQLITE_UNAVAILABLE = (
    "not available for SQLite: an embedded database has no server to inspect "
    "(no connections, locks or shared cache to report)"
)

_ACTIVITY = (
    "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
    "AND backend_type = 'client backend'"
)
_CONNECTIONS = (
    f"SELECT COALESCE(state, 'unknown'), COUNT(*) {_ACTIVITY} GROUP BY 1 ORDER BY 1",
    "SELECT current_setting('max_connections')::int, current_database(), "
    "current_setting('server_version')",
)
_WAITING = (
    "SELECT pid, pg_blocking_pids(pid), "
    "EXTRACT(EPOCH FROM clock_timestamp() - COALESCE(query_start, backend_start))::float8, "
    f"wait_event, query {_ACTIVITY} AND wait_event_type = 'Lock' ORDER BY query_start, pid"
)
_BLOCKERS = (
    "SELECT pid, COALESCE(state, 'unknown'), "
    "EXTRACT(EPOCH FROM clock_timestamp() - xact_start)::float8, query "
    "FROM pg_stat_activity WHERE pid = ANY(%s) ORDER BY pid"
)
_DATABASE = (
    "SELECT blks_hit, blks_read, deadlocks, temp_files, temp_bytes, xact_commit, xact_rollback "
    "FROM pg_stat_database WHERE datname = current_database()"
)
# Other querywatch sessions (tagged statements) are monitoring, not load: left out of the list.
_LONGEST = (
    "SELECT pid, EXTRACT(EPOCH FROM clock_timestamp() - query_start)::float8, state, "
    f"wait_event_type, wait_event, query {_ACTIVITY} AND state = 'active' "
    "AND query_start IS NOT NULL AND query NOT LIKE %s ORDER BY query_start, pid LIMIT %s"
)


def health_snapshot(dsn: str, *, statement_timeout_ms: int = 2000) -> dict[str, Any]:
    """Take one read-only snapshot of the server behind ``dsn`` for its current database.

    Returns a JSON-able dict (see docs/triage.md for every key). Raises
    :class:`~querywatch.errors.DatabaseUnavailable` when the server cannot be reached and
    :class:`~querywatch.errors.SourceError` when a statistics view cannot be read, each with one
    line and the DSN redacted.
    """
    with pg.connect(
        dsn, statement_timeout_ms=statement_timeout_ms, application_name="querywatch health"
    ) as conn:
        try:
            return _snapshot(conn)
        except psycopg.Error as exc:
            if conn.broken:
                raise DatabaseUnavailable(
                    f"lost the connection to {pg.display_dsn(dsn)}: {pg.reason(exc, dsn)}"
                ) from exc
            raise SourceError(
                f"cannot read server health from {pg.display_dsn(dsn)}: {pg.reason(exc, dsn)}"
            ) from exc


def sqlite_health() -> dict[str, Any]:
    """What the snapshot says for a SQLite application: there is no server to look at."""
    return {"available": False, "engine": "sqlite", "reason": SQLITE_UNAVAILABLE}


def _snapshot(conn: pg.Connection) -> dict[str, Any]:
    taken_at = time.time()
    by_state = {str(s): int(n) for s, n in conn.execute(pg.tagged(_CONNECTIONS[0])).fetchall()}
    settings = conn.execute(pg.tagged(_CONNECTIONS[1])).fetchone()
    assert settings is not None  # a SELECT without FROM always returns one row
    max_connections, database, version = settings

    waiting = [
        {
            "pid": int(pid),
            "waiting_s": _seconds(secs),
            "wait_event": event,
            "blocked_by": sorted(int(p) for p in blockers or ()),
            **_statement(query),
        }
        for pid, blockers, secs, event, query in conn.execute(pg.tagged(_WAITING)).fetchall()
    ]
    blocker_pids = sorted({p for w in waiting for p in w["blocked_by"]})
    blockers = [
        {
            "pid": int(pid),
            "state": state,
            "transaction_s": _seconds(secs),
            **_statement(query),
        }
        for pid, state, secs, query in (
            conn.execute(pg.tagged(_BLOCKERS), (blocker_pids,)).fetchall() if blocker_pids else []
        )
    ]

    stats = conn.execute(pg.tagged(_DATABASE)).fetchone()
    hit, read, deadlocks, temp_files, temp_bytes, commits, rollbacks = stats or (0,) * 7
    blocks = int(hit or 0) + int(read or 0)

    longest = [
        {
            "pid": int(pid),
            "duration_s": _seconds(secs),
            "state": state,
            "wait_event": f"{etype}:{event}" if etype else None,
            **_statement(query),
        }
        for pid, secs, state, etype, event, query in conn.execute(
            pg.tagged(_LONGEST), (pg.TAG + "%", LONGEST)
        ).fetchall()
    ]
    return {
        "available": True,
        "engine": "postgres",
        "database": database,
        "server_version": version,
        "taken_at": taken_at,
        "connections": {
            "total": sum(by_state.values()),
            "max": int(max_connections),
            "by_state": by_state,
        },
        "lock_waits": {"waiting": len(waiting), "sessions": waiting, "blockers": blockers},
        "cache_hit_ratio": int(hit or 0) / blocks if blocks else None,
        "longest_running": longest,
        "counters": {
            "deadlocks": int(deadlocks or 0),
            "temp_files": int(temp_files or 0),
            "temp_bytes": int(temp_bytes or 0),
            "xact_commit": int(commits or 0),
            "xact_rollback": int(rollbacks or 0),
        },
    }


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(max(float(value), 0.0), 3)


def _statement(query: str | None) -> dict[str, str | None]:
    """The statement as we may show it: normalized (no literals) and cut short, with its id.

    ``pg_stat_activity.query`` is itself cut at ``track_activity_query_size``, so the fingerprint
    of a very long statement may differ from the one its full text gets elsewhere.
    """
    if not query or query.startswith("<"):  # "<insufficient privilege>" and the like
        return {"query": query or None, "fingerprint": None}
    fp = fingerprint(query, "postgres")
    text = fp.normalized
    if len(text) > QUERY_CHARS:
        text = text[: QUERY_CHARS - 1] + "…"
    return {"query": text, "fingerprint": fp.id}
