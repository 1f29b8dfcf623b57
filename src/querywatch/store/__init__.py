"""Where querywatch keeps fingerprints, windows and agent state: SQLite, or a shared PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from querywatch.dsn import is_postgres_url
from querywatch.errors import ConfigError
from querywatch.store.base import Retention, SortKey, SqlStore, Store

__all__ = ["Retention", "SortKey", "SqlStore", "Store", "open_store"]


def open_store(location: str | Path, *, create: bool = True) -> SqlStore:
    """A PostgreSQL URL or key=value DSN opens the shared store; anything else is a SQLite file.

    Raises :class:`~querywatch.errors.StoreError` with one line (password redacted) on failure.
    With ``create=False`` a missing SQLite file is a :class:`~querywatch.errors.ConfigError`
    rather than a new empty store: commands that only read should not invent one.
    """
    if isinstance(location, str) and is_postgres_url(location):
        from querywatch.store.postgres import PostgresStore

        return PostgresStore(location)
    from querywatch.store.sqlite import SqliteStore

    if not create and not Path(location).expanduser().exists():
        raise ConfigError(
            f"no store at {location}: nothing has been recorded there yet; pass --store or set "
            "QUERYWATCH_STORE",
            setting="store",
        )
    return SqliteStore(location)
