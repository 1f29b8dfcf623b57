"""The embedded default: one SQLite file in WAL mode, so a reader never waits for the agent."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from querywatch.errors import StoreError
from querywatch.sketch import LatencySketch
from querywatch.store.base import T
from querywatch.store.sql_store import SqlStore


def _merge_sketch(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a if b is None else b
    merged = LatencySketch.from_json(a)
    merged.merge(LatencySketch.from_json(b))
    return merged.to_json()


def _union_json(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a if b is None else b
    return json.dumps(sorted(set(json.loads(a)) | set(json.loads(b))))


class _SketchAgg:
    """``qw_sketch_agg``: merges a column of sketches (NULL when none is present)."""

    def __init__(self) -> None:
        self.sketch: LatencySketch | None = None

    def step(self, text: str | None) -> None:
        if text is not None:
            if self.sketch is None:
                self.sketch = LatencySketch()
            self.sketch.merge(LatencySketch.from_json(text))

    def finalize(self) -> str | None:
        return self.sketch.to_json() if self.sketch is not None else None


class _UnionAgg:
    """``qw_union_agg``: the union of a column of JSON lists."""

    def __init__(self) -> None:
        self.items: set[Any] | None = None

    def step(self, text: str | None) -> None:
        if text is not None:
            self.items = (self.items or set()) | set(json.loads(text))

    def finalize(self) -> str | None:
        return json.dumps(sorted(self.items)) if self.items is not None else None


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def run(self, sql: str, params: Sequence[object] = ()) -> None:
        self.conn.execute(sql, params)

    def run_many(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        self.conn.executemany(sql, rows)

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()

    def each(self, sql: str, params: Sequence[object] = ()) -> Iterator[tuple[Any, ...]]:
        return iter(self.conn.execute(sql, params))


def _check_writable(path: Path) -> None:
    """Say plainly why a store cannot be created here, before SQLite says "unable to open"."""
    for ancestor in path.parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                raise StoreError(
                    f"cannot write the store at {path}: "
                    f"{os.strerror(errno.ENOTDIR)} ({ancestor} is a file)"
                )
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot write the store at {path}: {exc.strerror}") from exc
    # WAL mode writes -wal and -shm files beside the store, so the directory must be writable too.
    targets = [path.parent, path] if path.exists() else [path.parent]
    if not all(os.access(target, os.W_OK) for target in targets):
        raise StoreError(f"cannot write the store at {path}: {os.strerror(errno.EACCES)}")


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A ``mode=ro`` connection; ``immutable`` only where WAL mode cannot work and cannot matter.

    A WAL-mode reader needs the -shm file beside the store, created if missing. In a directory we
    may not write to and with no -wal file (no agent has the store open, so nothing can change
    under us), SQLite can only read the file as immutable; with a -wal file present it reads
    normally, and sees what the agent has committed.
    """
    uri = path.resolve().as_uri() + "?mode=ro"
    conn = _probe(
        sqlite3.connect(uri, uri=True, timeout=5.0, isolation_level=None, check_same_thread=False)
    )
    if conn is not None:
        return conn
    wal = path.with_name(path.name + "-wal")
    if wal.exists() or os.access(path.parent, os.W_OK):
        # Not the directory's fault: let SQLite say what is wrong.
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchall()
        return conn
    return sqlite3.connect(
        uri + "&immutable=1", uri=True, isolation_level=None, check_same_thread=False
    )


def _probe(conn: sqlite3.Connection) -> sqlite3.Connection | None:
    """``conn`` if it can read the schema; ``None`` (closed) if it cannot."""
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchall()
    except sqlite3.OperationalError:
        conn.close()
        return None
    return conn


class SqliteStore(SqlStore):
    """One file; safe to share between the app's threads and with other processes reading it.

    ``read_only=True`` opens the file with ``mode=ro``: nothing is created, migrated or written
    (not even the WAL header), so a reader works in a directory it may not write to.
    """

    def __init__(
        self, path: str | Path, *, read_only: bool = False, cache_kib: int | None = None
    ) -> None:
        self.path = Path(path).expanduser()
        self.where = str(self.path)
        self.read_only = read_only
        if not read_only:
            _check_writable(self.path)
        # One connection shared by the app's threads (the in-app capture flushes from a background
        # thread), serialised by a lock; transactions are explicit (isolation_level=None).
        self._lock = threading.Lock()
        try:
            self._conn = _connect_read_only(self.path) if read_only else self._connect()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store at {self.path}: {exc}") from exc
        if cache_kib is not None:
            self._conn.execute(f"PRAGMA cache_size = {-int(cache_kib)}")
        self._conn.create_function("qw_merge_sketch", 2, _merge_sketch, deterministic=True)
        self._conn.create_function("qw_union_json", 2, _union_json, deterministic=True)
        # typeshed's aggregate protocol only admits int values; these take and return text.
        self._conn.create_aggregate("qw_sketch_agg", 1, _SketchAgg)  # type: ignore[arg-type]
        self._conn.create_aggregate("qw_union_agg", 1, _UnionAgg)  # type: ignore[arg-type]
        try:
            if read_only:
                self._check_readable("sqlite")
            else:
                self._migrate("sqlite")
        except StoreError:
            self._conn.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=5.0, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _run(self, fn: Callable[[_SqliteTx], T], *, write: bool = True) -> T:
        if write and self.read_only:
            raise self._read_only_error()
        with self._lock:
            try:
                # IMMEDIATE takes the write lock up front: a writer waits (busy_timeout) instead of
                # failing on a lock upgrade; readers never block in WAL mode.
                self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    result = fn(_SqliteTx(self._conn))
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
                return result
            except sqlite3.Error as exc:
                verb = "write" if write else "read"
                raise StoreError(f"cannot {verb} the store at {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()
