"""A small fixed-size connection pool: a threaded server makes a thread per request, so
connections are shared through a pool instead of opened per thread."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from querywatch.demo.shop.db import Connection


class PoolTimeout(RuntimeError):
    """No connection became free in time (the database is too slow for the offered load)."""


class ConnectionPool:
    """Up to ``size`` connections made lazily by ``factory`` and handed out one at a time."""

    def __init__(
        self, factory: Callable[[], Connection], size: int = 8, timeout: float = 30.0
    ) -> None:
        if size < 1:
            raise ValueError("pool size must be at least 1")
        self._factory = factory
        self._timeout = timeout
        self._idle: queue.LifoQueue[Connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._all: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """Borrow a connection; a connection that raised is discarded, not reused."""
        if not self._slots.acquire(timeout=self._timeout):
            raise PoolTimeout(f"no database connection free within {self._timeout:g} s")
        try:
            conn = self._take()
            try:
                yield conn
            except BaseException:
                self._discard(conn)
                raise
            else:
                self._idle.put(conn)
        finally:
            self._slots.release()

    def _take(self) -> Connection:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        conn = self._factory()
        with self._lock:
            if self._closed:
                conn.close()
                raise PoolTimeout("the pool is closed")
            self._all.append(conn)
        return conn

    def _discard(self, conn: Connection) -> None:
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)
        with contextlib.suppress(Exception):  # closing a broken one may fail
            conn.close()

    def close(self) -> None:
        """Close every connection the pool made."""
        with self._lock:
            self._closed = True
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(Exception):  # closing a broken one may fail
                conn.close()
