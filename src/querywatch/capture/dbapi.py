"""Any DB-API 2 connection (sqlite3, psycopg2, PyMySQL, ...) through a thin wrapping proxy.

C-implemented connections such as ``sqlite3.Connection`` cannot be patched, so the user works with
the proxy: its ``cursor()`` hands out timing cursors and the sqlite3 shortcuts ``execute``,
``executemany`` and ``executescript`` are timed too. Everything else is forwarded. ``executemany``
counts as one call whose rows are the driver's summed row count.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from time import perf_counter_ns
from typing import Any

from querywatch.capture.aggregate import StatementChannel

_DIALECTS = {
    "sqlite3": "sqlite",
    "pysqlite2": "sqlite",
    "apsw": "sqlite",
    "pymysql": "mysql",
    "MySQLdb": "mysql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "psycopg2": "postgres",
    "psycopg": "postgres",
    "pg8000": "postgres",
    "pgdb": "postgres",
}


def dialect_of(conn: object) -> str | None:
    """The SQL dialect from the driver's top-level module name, or None when unknown."""
    return _DIALECTS.get(type(conn).__module__.split(".", 1)[0])


_NO_PARAMS: Any = object()


class InstrumentedCursor:
    """A DB-API cursor whose ``execute``/``executemany``/``executescript`` are timed.

    A query's time includes fetching its rows: sqlite3 returns from ``execute`` at the first row
    and scans the rest during ``fetch*``, so timing ``execute`` alone would hide a slow scan. A
    statement with a result set is therefore recorded when its rows are exhausted, at the next
    ``execute``, at ``close`` or when the cursor is dropped; other statements at once.

    Attribute writes other than ``arraysize`` and ``row_factory`` stay on the proxy; that keeps
    creating one (``conn.execute`` does per statement) down to a few slot stores.
    """

    __slots__ = ("_qw_channel", "_qw_cursor", "_qw_fetched", "_qw_ns", "_qw_sql", "_qw_t0")

    def __init__(self, cursor: Any, channel: StatementChannel | None) -> None:
        self._qw_cursor = cursor
        self._qw_channel = channel
        self._qw_sql: Any = None  # the statement whose rows are still being fetched

    def _qw_finish(self, errors: int = 0) -> None:
        sql = self._qw_sql
        if sql is None:
            return
        self._qw_sql = None
        ch = self._qw_channel
        if ch is not None:
            ch.record(sql, self._qw_t0, self._qw_t0 + self._qw_ns, self._qw_fetched, errors)

    def _qw_done(self, operation: Any, t0: int, t1: int) -> None:
        cur = self._qw_cursor
        if cur.description is None:  # no rows to fetch: done now
            ch = self._qw_channel
            if ch is not None:
                ch.record(operation, t0, t1, cur.rowcount, 0)
            return
        self._qw_sql, self._qw_t0, self._qw_ns, self._qw_fetched = operation, t0, t1 - t0, 0

    def _qw_fetch(self, fetch: Callable[..., Any], *args: Any) -> Any:
        t0 = perf_counter_ns()
        try:
            result = fetch(*args)
        except BaseException:
            if self._qw_sql is not None:
                self._qw_ns += perf_counter_ns() - t0
                self._qw_finish(errors=1)
            raise
        if self._qw_sql is not None:
            self._qw_ns += perf_counter_ns() - t0
        return result

    def execute(self, operation: Any, parameters: Any = _NO_PARAMS) -> Any:
        if self._qw_sql is not None:
            self._qw_finish()
        cur = self._qw_cursor
        ch = self._qw_channel
        t0 = perf_counter_ns()
        try:
            if parameters is _NO_PARAMS:
                result = cur.execute(operation)
            else:
                result = cur.execute(operation, parameters)
        except BaseException:
            if ch is not None:
                ch.record(operation, t0, perf_counter_ns(), 0, 1)
            raise
        self._qw_done(operation, t0, perf_counter_ns())
        return self if result is cur else result

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        if self._qw_sql is not None:
            self._qw_finish()
        cur = self._qw_cursor
        ch = self._qw_channel
        t0 = perf_counter_ns()
        try:
            result = cur.executemany(operation, seq_of_parameters)
        except BaseException:
            if ch is not None:
                ch.record(operation, t0, perf_counter_ns(), 0, 1)
            raise
        if ch is not None:
            ch.record(operation, t0, perf_counter_ns(), cur.rowcount, 0)
        return self if result is cur else result

    def executescript(self, script: str) -> Any:
        if self._qw_sql is not None:
            self._qw_finish()
        cur = self._qw_cursor
        ch = self._qw_channel
        t0 = perf_counter_ns()
        try:
            result = cur.executescript(script)
        except BaseException:
            if ch is not None:
                ch.record(script, t0, perf_counter_ns(), 0, 1)
            raise
        if ch is not None:
            ch.record(script, t0, perf_counter_ns(), 0, 0)
        return self if result is cur else result

    def fetchone(self) -> Any:
        row = self._qw_fetch(self._qw_cursor.fetchone)
        if self._qw_sql is not None:
            if row is None:
                self._qw_finish()
            else:
                self._qw_fetched += 1
        return row

    def fetchmany(self, *args: Any, **kwargs: Any) -> Any:
        size = args[0] if args else kwargs.get("size", self._qw_cursor.arraysize)
        rows = self._qw_fetch(lambda: self._qw_cursor.fetchmany(*args, **kwargs))
        if self._qw_sql is not None:
            self._qw_fetched += len(rows)
            if len(rows) < size:
                self._qw_finish()
        return rows

    def fetchall(self) -> Any:
        rows = self._qw_fetch(self._qw_cursor.fetchall)
        if self._qw_sql is not None:
            self._qw_fetched += len(rows)
            self._qw_finish()
        return rows

    def close(self) -> None:
        self._qw_finish()
        self._qw_cursor.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # never raise from a finalizer
            self._qw_finish()

    @property
    def arraysize(self) -> Any:
        return self._qw_cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: Any) -> None:
        self._qw_cursor.arraysize = value

    @property
    def row_factory(self) -> Any:
        return self._qw_cursor.row_factory

    @row_factory.setter
    def row_factory(self, value: Any) -> None:
        self._qw_cursor.row_factory = value

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            row = self._qw_fetch(next, self._qw_cursor)
        except StopIteration:
            self._qw_finish()
            raise
        if self._qw_sql is not None:
            self._qw_fetched += 1
        return row

    def __enter__(self) -> InstrumentedCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._qw_cursor, name)

    def __repr__(self) -> str:
        return f"<querywatch instrumented {self._qw_cursor!r}>"


class InstrumentedConnection:
    """A DB-API connection proxy; use it instead of the connection it wraps."""

    __slots__ = ("_qw_channel", "_qw_conn")

    def __init__(self, conn: Any, channel: StatementChannel) -> None:
        object.__setattr__(self, "_qw_conn", conn)
        object.__setattr__(self, "_qw_channel", channel)

    @property
    def wrapped(self) -> Any:
        """The driver's own connection (statements issued on it are not recorded)."""
        return self._qw_conn

    def cursor(self, *args: Any, **kwargs: Any) -> InstrumentedCursor:
        return InstrumentedCursor(self._qw_conn.cursor(*args, **kwargs), self._qw_channel)

    def execute(self, operation: Any, parameters: Any = _NO_PARAMS) -> Any:
        return InstrumentedCursor(self._qw_conn.cursor(), self._qw_channel).execute(
            operation, parameters
        )

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        return InstrumentedCursor(self._qw_conn.cursor(), self._qw_channel).executemany(
            operation, seq_of_parameters
        )

    def executescript(self, script: str) -> Any:
        return InstrumentedCursor(self._qw_conn.cursor(), self._qw_channel).executescript(script)

    def commit(self) -> None:
        self._qw_conn.commit()

    def rollback(self) -> None:
        self._qw_conn.rollback()

    def close(self) -> None:
        self._qw_conn.close()

    def __enter__(self) -> InstrumentedConnection:
        self._qw_conn.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._qw_conn.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._qw_conn, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._qw_conn, name, value)

    def __repr__(self) -> str:
        return f"<querywatch instrumented {self._qw_conn!r}>"


def install(
    conn: Any, channel: StatementChannel
) -> tuple[InstrumentedConnection, Callable[[], None]]:
    """Wrap ``conn``; returns the proxy and the undo (proxies stop recording after it)."""
    proxy = InstrumentedConnection(conn, channel)

    def uninstall() -> None:
        object.__setattr__(proxy, "_qw_channel", None)

    return proxy, uninstall
