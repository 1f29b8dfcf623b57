"""Where querywatch keeps fingerprints, windows and agent state: SQLite, or a shared PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from querywatch.dsn import is_postgres_url
from querywatch.errors import ConfigError
from querywatch.store.base import Retention, SortKey, Store
from querywatch.store.sql_store import SqlStore

__all__ = ["Retention", "SortKey", "SqlStore", "Store", "open_store"]


def open_store(
    location: str | Path,
    *,
    create: bool = True,
    read_only: bool = False,
    cache_kib: int | None = None,
) -> SqlStore:
    """A PostgreSQL URL or key=value DSN opens the shared store; anything else is a SQLite file.

    Raises :class:`~querywatch.errors.StoreError` with one line (password redacted) on failure.
    With ``create=False`` a missing SQLite file is a :class:`~querywatch.errors.ConfigError`
    rather than a new empty store. ``read_only=True`` (commands that only read: top, incidents,
    postmortem, deploys) implies it, and also writes nothing to a store that exists: no schema
    into an empty file or database (that is "no data yet"), no migration, no WAL header.
    ``cache_kib`` bounds a SQLite store's page cache (SQLite's default is 2,000 KiB); the
    PostgreSQL store ignores it.
    """
    if isinstance(location, str) and is_postgres_url(location):
        from querywatch.store.postgres import PostgresStore

        return PostgresStore(location, read_only=read_only)
    from querywatch.store.sqlite import SqliteStore

    if (read_only or not create) and not Path(location).expanduser().exists():
        raise ConfigError(
            f"no store at {location}: nothing has been recorded there yet; pass --store or set "
            "QUERYWATCH_STORE",
            setting="store",
        )
    return SqliteStore(location, read_only=read_only, cache_kib=cache_kib)
