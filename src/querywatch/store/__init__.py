"""Where querywatch keeps fingerprints, windows and agent state: SQLite, or a shared PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from querywatch.dsn import is_postgres_url
from querywatch.store.base import Retention, SortKey, SqlStore, Store

__all__ = ["Retention", "SortKey", "SqlStore", "Store", "open_store"]


def open_store(location: str | Path) -> SqlStore:
    """A PostgreSQL URL or key=value DSN opens the shared store; anything else is a SQLite file.

    Raises :class:`~querywatch.errors.StoreError` with one line (password redacted) on failure.
    """
    if isinstance(location, str) and is_postgres_url(location):
        from querywatch.store.postgres import PostgresStore

        return PostgresStore(location)
    from querywatch.store.sqlite import SqliteStore

    return SqliteStore(location)
