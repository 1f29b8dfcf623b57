"""One way to open and query the shop database, whether it is a SQLite file or a PostgreSQL DSN.

Release code writes queries with ``?`` placeholders so v1 and v2 read the same on both databases;
:class:`Db` rewrites them to ``%s`` for psycopg. Connections are plain DB-API connections so that
``querywatch.instrument`` can wrap them without knowing about the shop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from querywatch.dsn import is_postgres_url

#: PostgreSQL schema that holds the shop's tables, so the demo never touches anything else.
PG_SCHEMA = "qw_shop"


class Connection(Protocol):
    """The part of DB-API 2.0 the shop uses (sqlite3, psycopg and querywatch's wrappers fit)."""

    def cursor(self) -> Any: ...

    def close(self) -> None: ...


def is_postgres(location: str) -> bool:
    """True when ``location`` is a PostgreSQL DSN rather than a SQLite file path."""
    return is_postgres_url(location)


def explain_target(location: str) -> str:
    """Where querywatch EXPLAINs the shop's queries: the SQLite file, or the DSN with the
    shop's schema on its search path (the queries name bare tables)."""
    if not is_postgres(location):
        return location
    from psycopg.conninfo import make_conninfo

    return make_conninfo(location, options=f"-c search_path={PG_SCHEMA}")


def connect(location: str, *, read_only: bool = True) -> Connection:
    """Open an autocommit connection to the shop database (read-only for SQLite by default)."""
    if is_postgres(location):
        import psycopg

        return psycopg.connect(location, autocommit=True, options=f"-c search_path={PG_SCHEMA}")
    path = Path(location)
    if read_only:
        uri = f"{path.resolve().as_uri()}?mode=ro"
        return sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    return sqlite3.connect(path, check_same_thread=False, isolation_level=None)


class Db:
    """A connection plus the placeholder style; what release code receives."""

    def __init__(self, conn: Connection, *, postgres: bool) -> None:
        self.conn = conn
        self.postgres = postgres

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def all(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Every row of ``sql``."""
        cur = self.conn.cursor()
        try:
            cur.execute(self._sql(sql), tuple(params))
            return [tuple(row) for row in cur.fetchall()]
        finally:
            cur.close()

    def one(self, sql: str, params: Sequence[object] = ()) -> tuple[Any, ...] | None:
        """The first row of ``sql`` or None."""
        rows = self.all(sql, params)
        return rows[0] if rows else None
