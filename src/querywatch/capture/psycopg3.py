"""psycopg 3: time ``execute``/``executemany`` through a cursor subclass set as ``cursor_factory``.

``conn.execute`` builds its cursor from ``conn.cursor_factory``, so both entry points are covered
without monkeypatching psycopg. ``executemany`` counts as one call whose rows are the summed row
count. Server-side (named) cursors, ``copy()`` and ``stream()`` are not timed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from time import perf_counter_ns
from typing import Any

from querywatch.capture.aggregate import StatementChannel


def query_text(query: object, cursor: Any) -> str:
    """The SQL text of a psycopg query object (str, bytes or psycopg.sql.Composable)."""
    if isinstance(query, str):
        return query
    if isinstance(query, bytes):
        return query.decode("utf-8", "replace")
    as_string = getattr(query, "as_string", None)
    if as_string is not None:
        try:
            return str(as_string(cursor))
        except Exception:
            pass
    return str(query)


def _sync_class(base: type[Any], channel: StatementChannel) -> type[Any]:
    base_execute = base.execute
    base_executemany = base.executemany

    def execute(
        self: Any,
        query: Any,
        params: Any = None,
        *,
        prepare: bool | None = None,
        binary: bool | None = None,
    ) -> Any:
        ch = self._qw_channel
        if ch is None:
            return base_execute(self, query, params, prepare=prepare, binary=binary)
        t0 = perf_counter_ns()
        try:
            base_execute(self, query, params, prepare=prepare, binary=binary)
        except BaseException:
            ch.record(query_text(query, self), t0, perf_counter_ns(), 0, 1)
            raise
        t1 = perf_counter_ns()
        ch.record(
            query if type(query) is str else query_text(query, self), t0, t1, self.rowcount, 0
        )
        return self

    def executemany(
        self: Any, query: Any, params_seq: Iterable[Any], *, returning: bool = False
    ) -> None:
        ch = self._qw_channel
        if ch is None:
            base_executemany(self, query, params_seq, returning=returning)
            return None
        t0 = perf_counter_ns()
        try:
            base_executemany(self, query, params_seq, returning=returning)
        except BaseException:
            ch.record(query_text(query, self), t0, perf_counter_ns(), 0, 1)
            raise
        ch.record(query_text(query, self), t0, perf_counter_ns(), self.rowcount, 0)
        return None

    return type(
        f"QueryWatch{base.__name__}",
        (base,),
        {
            "execute": execute,
            "executemany": executemany,
            "_qw_channel": channel,
            "__module__": __name__,
        },
    )


def _async_class(base: type[Any], channel: StatementChannel) -> type[Any]:
    base_execute = base.execute
    base_executemany = base.executemany

    async def execute(
        self: Any,
        query: Any,
        params: Any = None,
        *,
        prepare: bool | None = None,
        binary: bool | None = None,
    ) -> Any:
        ch = self._qw_channel
        if ch is None:
            return await base_execute(self, query, params, prepare=prepare, binary=binary)
        t0 = perf_counter_ns()
        try:
            await base_execute(self, query, params, prepare=prepare, binary=binary)
        except BaseException:
            ch.record(query_text(query, self), t0, perf_counter_ns(), 0, 1)
            raise
        t1 = perf_counter_ns()
        ch.record(
            query if type(query) is str else query_text(query, self), t0, t1, self.rowcount, 0
        )
        return self

    async def executemany(
        self: Any, query: Any, params_seq: Iterable[Any], *, returning: bool = False
    ) -> None:
        ch = self._qw_channel
        if ch is None:
            await base_executemany(self, query, params_seq, returning=returning)
            return None
        t0 = perf_counter_ns()
        try:
            await base_executemany(self, query, params_seq, returning=returning)
        except BaseException:
            ch.record(query_text(query, self), t0, perf_counter_ns(), 0, 1)
            raise
        ch.record(query_text(query, self), t0, perf_counter_ns(), self.rowcount, 0)
        return None

    return type(
        f"QueryWatch{base.__name__}",
        (base,),
        {
            "execute": execute,
            "executemany": executemany,
            "_qw_channel": channel,
            "__module__": __name__,
        },
    )


def install(conn: Any, channel: StatementChannel) -> Callable[[], None]:
    """Instrument a psycopg.Connection or AsyncConnection in place; returns the undo."""
    import psycopg

    base = conn.cursor_factory
    if isinstance(conn, psycopg.AsyncConnection):
        cls = _async_class(base, channel)
    else:
        cls = _sync_class(base, channel)
    conn.cursor_factory = cls

    def uninstall() -> None:
        cls._qw_channel = None  # cursors already handed out stop recording too
        if conn.cursor_factory is cls:
            conn.cursor_factory = base

    return uninstall
