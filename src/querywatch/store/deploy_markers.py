"""Deploy markers: one row per deploy, the line every regression is judged against.

Markers are never expired (retention drops only the state kept per deploy). ``commit`` and
``rollback`` are SQL keywords, so the SQL quotes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from querywatch.records import DeployMarker
from querywatch.store.base import Tx

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


def record_deploy(tx: Tx, marker: DeployMarker) -> None:
    """Insert the marker, or update the one with its id (``None`` fields keep what is stored)."""
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
    tx.run(_UPSERT_DEPLOY, params)


def deploys(
    tx: Tx,
    since: float | None = None,
    until: float | None = None,
    environment: str | None = None,
) -> list[DeployMarker]:
    """Deploys that started in [since, until), in start order (ties: by id)."""
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
    return [_deploy(row) for row in tx.rows(sql, params)]


def latest_deploy(tx: Tx, environment: str | None = None) -> DeployMarker | None:
    """The deploy that started last (ties: the greatest id), or ``None``."""
    where, params = ("", []) if environment is None else (" WHERE environment = ?", [environment])
    sql = f"SELECT {_DEPLOY_COLUMNS} FROM deploys{where} ORDER BY started_at DESC, id DESC LIMIT 1"
    rows = tx.rows(sql, params)
    return _deploy(rows[0]) if rows else None


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
