"""Route the statements of connections opened during a test session to a :class:`Collector`.

While ``pytest --querywatch`` runs, :func:`patch` replaces ``sqlite3.connect`` and psycopg's
``Connection.connect`` / ``AsyncConnection.connect`` (so ``psycopg.connect``, pools and SQLAlchemy
engines are covered) and restores them at the end. A statement is recorded when it is issued, so
its call site is the application line that issued it.

SQLite connections are real ``sqlite3.Connection`` subclasses (``isinstance`` checks keep
working); psycopg connections get a recording cursor factory (``querywatch.capture.psycopg3``).
"""

from __future__ import annotations

import os
import sqlite3
import sqlite3.dbapi2
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from querywatch.capture import dbapi, psycopg3
from querywatch.capture.aggregate import StatementChannel

if TYPE_CHECKING:  # the collector imports this module when it wraps a connection
    from querywatch.gate.collect import Collector


class _Channel:
    """What ``capture.psycopg3`` calls per statement (a StatementChannel look-alike)."""

    __slots__ = ("collector", "database", "dialect")

    def __init__(self, collector: Collector, dialect: str, database: str | None) -> None:
        self.collector = collector
        self.dialect = dialect
        self.database = database

    def record(self, sql: object, t0: int, t1: int, rows: int, errors: int) -> None:
        self.collector.record(sql, self.dialect, self.database)


def sqlite_target(conn: sqlite3.Connection) -> str | None:
    """The main database file of a sqlite3 connection, or None when it lives in memory."""
    try:
        for _seq, name, file in conn.execute("PRAGMA database_list").fetchall():
            if name == "main":
                return os.path.abspath(file) if file else None
    except sqlite3.Error:
        return None
    return None


# -- sqlite3 ---------------------------------------------------------------------------------------


def _record_sqlite(conn: Any, sql: object) -> None:
    collector = getattr(conn, "_qw_collector", None)
    if collector is not None:
        collector.record(sql, "sqlite", conn._qw_db)


def _failed_sqlite(conn: Any, sql: object) -> None:
    collector = getattr(conn, "_qw_collector", None)
    if collector is not None:
        collector.failed(sql, "sqlite")


class _CursorMixin:
    # A statement that raises when the test runs it (a test of error handling) is marked, so a
    # later EXPLAIN that rejects it too is "not checkable", not "could not check".
    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        conn = cast(sqlite3.Cursor, self).connection
        _record_sqlite(conn, sql)
        try:
            return super().execute(sql, parameters)  # type: ignore[misc]
        except sqlite3.DatabaseError:
            _failed_sqlite(conn, sql)
            raise

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Any:
        conn = cast(sqlite3.Cursor, self).connection
        _record_sqlite(conn, sql)
        try:
            return super().executemany(sql, seq_of_parameters)  # type: ignore[misc]
        except sqlite3.DatabaseError:
            _failed_sqlite(conn, sql)
            raise

    def executescript(self, script: str, /) -> Any:
        _record_sqlite(cast(sqlite3.Cursor, self).connection, script)
        return super().executescript(script)  # type: ignore[misc]


class _ConnectionMixin:
    # sqlite3's C ``Connection.execute`` runs the statement without calling the cursor's
    # ``execute``, so the shortcuts go through a recording cursor here.
    _qw_collector: Collector | None = None
    _qw_db: str | None = None

    def cursor(self, factory: Any = sqlite3.Cursor) -> Any:
        return super().cursor(_subclass(_CursorMixin, factory))  # type: ignore[misc]

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Any:
        return self.cursor().executemany(sql, seq_of_parameters)

    def executescript(self, script: str, /) -> Any:
        return self.cursor().executescript(script)

    # Functions and collations registered here exist on this connection only: the check EXPLAINs
    # on a session of its own, so statements that use them are "not checkable" (gate.objects).
    def create_function(self, *args: Any, **kwargs: Any) -> Any:
        _registered(self, "function", args, kwargs, "narg")
        return super().create_function(*args, **kwargs)  # type: ignore[misc]

    def create_aggregate(self, *args: Any, **kwargs: Any) -> Any:
        _registered(self, "aggregate", args, kwargs, "n_arg")
        return super().create_aggregate(*args, **kwargs)  # type: ignore[misc]

    def create_window_function(self, *args: Any, **kwargs: Any) -> Any:
        _registered(self, "window", args, kwargs, "num_params")
        return super().create_window_function(*args, **kwargs)  # type: ignore[misc]

    def create_collation(self, *args: Any, **kwargs: Any) -> Any:
        _registered(self, "collation", args, kwargs, "")
        return super().create_collation(*args, **kwargs)  # type: ignore[misc]


def _registered(
    conn: Any, kind: str, args: tuple[Any, ...], kwargs: dict[str, Any], narg: str
) -> None:
    """Tell the collector the name and arity (sqlite3's own keyword for it is ``narg``)."""
    collector = getattr(conn, "_qw_collector", None)
    if collector is not None:
        name = args[0] if args else kwargs.get("name")
        count = args[1] if len(args) > 1 else kwargs.get(narg, -1)
        collector.registered(name, kind, count)


_classes: dict[tuple[type[Any], type[Any]], type[Any]] = {}


def _subclass(mixin: type[Any], base: type[Any]) -> type[Any]:
    if issubclass(base, mixin):
        return base
    cls = _classes.get((mixin, base))
    if cls is None:
        cls = _classes[(mixin, base)] = type(
            f"QueryWatch{base.__name__}", (mixin, base), {"__module__": __name__}
        )
    return cls


def sqlite_connect(collector: Collector, original: Callable[..., Any]) -> Callable[..., Any]:
    """A drop-in ``sqlite3.connect`` whose connections record into ``collector``."""

    def connect(*args: Any, **kwargs: Any) -> Any:
        factory = args[5] if len(args) > 5 else kwargs.get("factory", sqlite3.Connection)
        if collector.is_muted() or not (
            isinstance(factory, type) and issubclass(factory, sqlite3.Connection)
        ):  # the gate's own EXPLAIN sessions are not recorded
            return original(*args, **kwargs)
        gate_factory = _subclass(_ConnectionMixin, factory)
        if len(args) > 5:
            args = (*args[:5], gate_factory, *args[6:])
        else:
            kwargs["factory"] = gate_factory
        conn = original(*args, **kwargs)
        target = sqlite_target(conn)
        conn._qw_db = None if target is None else collector.database("sqlite", target)
        conn._qw_collector = collector
        return conn

    connect.__doc__ = original.__doc__
    return connect


# -- psycopg ---------------------------------------------------------------------------------------


def adopt_psycopg(collector: Collector, conn: Any) -> None:
    """Instrument a psycopg 3 connection in place."""
    from psycopg.conninfo import make_conninfo

    target = conn.info.dsn  # psycopg never includes the password here
    password = conn.pgconn.password
    secret = make_conninfo(target, password=password.decode()) if password else None
    db = collector.database("postgres", target, secret)
    psycopg3.install(conn, cast(StatementChannel, _Channel(collector, "postgres", db)))


def _patch_psycopg(collector: Collector) -> Callable[[], None]:
    try:
        import psycopg
    except ImportError:  # psycopg is a dependency, but a broken install must not stop tests
        return lambda: None
    sync_connect = psycopg.Connection.__dict__["connect"]
    async_connect = psycopg.AsyncConnection.__dict__["connect"]
    module_connect = psycopg.connect

    def connect(cls: Any, *args: Any, **kwargs: Any) -> Any:
        conn = sync_connect.__func__(cls, *args, **kwargs)
        if not collector.is_muted():  # the gate's own EXPLAIN sessions are not recorded
            adopt_psycopg(collector, conn)
        return conn

    async def aconnect(cls: Any, *args: Any, **kwargs: Any) -> Any:
        conn = await async_connect.__func__(cls, *args, **kwargs)
        if not collector.is_muted():
            adopt_psycopg(collector, conn)
        return conn

    connect.__doc__ = sync_connect.__doc__
    aconnect.__doc__ = async_connect.__doc__
    psycopg.Connection.connect = classmethod(connect)  # type: ignore[method-assign,assignment]
    psycopg.AsyncConnection.connect = classmethod(aconnect)  # type: ignore[method-assign,assignment]
    psycopg.connect = psycopg.Connection.connect

    def undo() -> None:
        psycopg.Connection.connect = sync_connect  # type: ignore[method-assign]
        psycopg.AsyncConnection.connect = async_connect  # type: ignore[method-assign]
        psycopg.connect = module_connect

    return undo


def patch(collector: Collector) -> Callable[[], None]:
    """Record every connection opened from now on; returns the undo."""
    sqlite_original = sqlite3.connect
    dbapi2_original = sqlite3.dbapi2.connect
    sqlite3.connect = sqlite_connect(collector, sqlite_original)
    sqlite3.dbapi2.connect = sqlite_connect(collector, dbapi2_original)
    undo_psycopg = _patch_psycopg(collector)

    def undo() -> None:
        sqlite3.connect = sqlite_original
        sqlite3.dbapi2.connect = dbapi2_original
        undo_psycopg()

    return undo


# -- any other DB-API connection (explicit wrap) ------------------------------------------------


class _RecordingCursor:
    __slots__ = ("_qw_cursor", "_qw_record")

    def __init__(self, cursor: Any, record: Callable[[object], None]) -> None:
        object.__setattr__(self, "_qw_cursor", cursor)
        object.__setattr__(self, "_qw_record", record)

    def execute(self, operation: Any, *args: Any, **kwargs: Any) -> Any:
        self._qw_record(operation)
        result = self._qw_cursor.execute(operation, *args, **kwargs)
        return self if result is self._qw_cursor else result

    def executemany(self, operation: Any, *args: Any, **kwargs: Any) -> Any:
        self._qw_record(operation)
        result = self._qw_cursor.executemany(operation, *args, **kwargs)
        return self if result is self._qw_cursor else result

    def __iter__(self) -> Any:
        return iter(self._qw_cursor)

    def __enter__(self) -> _RecordingCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._qw_cursor.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._qw_cursor, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._qw_cursor, name, value)


class _RecordingConnection:
    __slots__ = ("_qw_conn", "_qw_record", "_qw_registered")

    def __init__(
        self, conn: Any, record: Callable[[object], None], registered: Callable[..., None]
    ) -> None:
        object.__setattr__(self, "_qw_conn", conn)
        object.__setattr__(self, "_qw_record", record)
        object.__setattr__(self, "_qw_registered", registered)

    def cursor(self, *args: Any, **kwargs: Any) -> _RecordingCursor:
        return _RecordingCursor(self._qw_conn.cursor(*args, **kwargs), self._qw_record)

    def execute(self, operation: Any, *args: Any, **kwargs: Any) -> Any:
        return self.cursor().execute(operation, *args, **kwargs)

    def create_function(self, *args: Any, **kwargs: Any) -> Any:
        name = args[0] if args else kwargs.get("name")
        self._qw_registered(name, "function", args[1] if len(args) > 1 else kwargs.get("narg", -1))
        return self._qw_conn.create_function(*args, **kwargs)

    def __enter__(self) -> _RecordingConnection:
        self._qw_conn.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._qw_conn.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._qw_conn, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._qw_conn, name, value)


def wrap(collector: Collector, conn: Any) -> Any:
    """See :meth:`Collector.wrap`."""
    if type(conn).__module__.split(".", 1)[0] == "psycopg":
        adopt_psycopg(collector, conn)
        return conn
    dialect = dbapi.dialect_of(conn) or "postgres"
    db: str | None = None
    if isinstance(conn, sqlite3.Connection):
        target = sqlite_target(conn)
        db = None if target is None else collector.database("sqlite", target)

    def record(sql: object) -> None:
        collector.record(sql, dialect, db)

    return _RecordingConnection(conn, record, collector.registered)
