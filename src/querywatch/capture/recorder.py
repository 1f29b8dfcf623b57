"""The Recorder: an Aggregator plus the daemon thread that flushes it to a sink.

Every sink write happens on the flusher thread (``flush()`` from another thread asks it and waits),
so a store whose connection is bound to one thread works. The same thread also aggregates the raw
statements the hot path leaves in ``aggregator.pending`` (woken every ``PENDING_WAKE`` statements,
and before every flush), so the application thread only appends them. A failed write keeps the
records for the next flush, up to ``max_pending`` windows per kind (the oldest are dropped beyond
that and counted); nothing is ever raised into the application.

A process that forks after creating a recorder (gunicorn ``--preload``, Celery's prefork pool)
gives each child a working recorder: the child starts its own flusher thread, opens its own
store connection (when the sink was given as a path or DSN) and drops what the parent had
recorded but not yet written, which the parent writes itself.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from querywatch.capture.aggregate import Aggregator, StatementChannel
from querywatch.records import RepeatWindow, RequestWindow, StatementWindow

log = logging.getLogger("querywatch.capture")

BATCH = 2000
T = TypeVar("T")
RELEASE_ENV = "QUERYWATCH_RELEASE"
"""The environment variable naming the release a process runs (a pod's or a deployer's)."""


def release_from_env(release: str | None = None) -> str:
    """``release`` if given, else ``$QUERYWATCH_RELEASE``, else ``""`` (unknown)."""
    if release is not None:
        return release
    return os.environ.get(RELEASE_ENV, "").strip()


@runtime_checkable
class WindowSink(Protocol):
    """Where flushed windows go: a querywatch Store, or anything with these two methods.

    A sink may also have ``write_repeats(windows: Sequence[RepeatWindow])`` (a Store has); repeat
    windows (N+1) are dropped for a sink without it, so older custom sinks keep working.
    """

    def write_windows(self, windows: Sequence[StatementWindow]) -> None: ...

    def write_requests(self, windows: Sequence[RequestWindow]) -> None: ...


class MemorySink:
    """Keeps the last ``max_records`` flushed windows in memory (the default sink)."""

    def __init__(self, max_records: int = 100_000) -> None:
        self.windows: deque[StatementWindow] = deque(maxlen=max_records)
        self.requests: deque[RequestWindow] = deque(maxlen=max_records)
        self.repeats: deque[RepeatWindow] = deque(maxlen=max_records)

    def write_windows(self, windows: Sequence[StatementWindow]) -> None:
        self.windows.extend(windows)

    def write_requests(self, windows: Sequence[RequestWindow]) -> None:
        self.requests.extend(windows)

    def write_repeats(self, windows: Sequence[RepeatWindow]) -> None:
        self.repeats.extend(windows)


SinkLike = WindowSink | str | os.PathLike[str] | None


class Recorder:
    """Aggregates statements and requests in process and flushes them every ``flush_interval`` s."""

    def __init__(
        self,
        sink: SinkLike = None,
        *,
        flush_interval: float = 5.0,
        max_fingerprints: int = 2000,
        max_routes: int = 500,
        max_users: int = 10_000,
        max_pending: int = 100_000,
        sample_first: int = 5,
        sample_every: int = 100,
        repeat_threshold: int = 5,
        release: str | None = None,
    ) -> None:
        """``repeat_threshold``: a request that runs one fingerprint at least this many times is
        counted in that route's repeat windows (N+1 detection). ``release``: the release this
        process runs, recorded with every window (default ``$QUERYWATCH_RELEASE``, else ``""``);
        a middleware's release header overrides it per request."""
        self.aggregator = Aggregator(
            max_fingerprints=max_fingerprints,
            max_routes=max_routes,
            max_users=max_users,
            sample_first=sample_first,
            sample_every=sample_every,
            repeat_threshold=repeat_threshold,
            release=release_from_env(release),
        )
        self.aggregator.wake = self._wake_absorb
        self._sink_spec = sink
        self._sink: WindowSink | None = None
        if sink is None:
            self._sink = MemorySink()
        elif isinstance(sink, WindowSink):
            self._sink = sink
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self._pending_windows: deque[StatementWindow] = deque()
        self._pending_requests: deque[RequestWindow] = deque()
        self._pending_repeats: deque[RepeatWindow] = deque()
        self.dropped_repeats = 0  # repeat windows a sink without write_repeats could not take
        self.dropped_windows = 0
        self.failed_flushes = 0
        self._failing = False
        self._flush_lock = threading.Lock()
        self._cond = threading.Condition()
        self._requested = 0
        self._done = 0
        self._absorb_requested = False
        self._stopping = False
        self.closed = False
        self._thread = threading.Thread(target=self._run, name="querywatch-flush", daemon=True)
        self._thread.start()
        atexit.register(self.close)
        _live.add(self)

    @property
    def sink(self) -> WindowSink | None:
        return self._sink

    @property
    def release(self) -> str:
        """The release recorded when neither a target nor a request names one."""
        return self.aggregator.release

    def channel(self, dialect: str, release: str | None = None) -> StatementChannel:
        """Where one dialect's statements go, under ``release`` (``None``: the recorder's)."""
        return self.aggregator.channel(dialect, release=release)

    @property
    def pending(self) -> int:
        """Windows waiting for the sink (non-zero while the sink is failing)."""
        return len(self._pending_windows) + len(self._pending_requests) + len(self._pending_repeats)

    def flush(self, timeout: float = 30.0) -> bool:
        """Write everything aggregated so far; True when the sink took it all."""
        if not self._thread.is_alive() or threading.current_thread() is self._thread:
            self._flush_now()
        else:
            with self._cond:
                self._requested += 1
                want = self._requested
                self._cond.notify_all()
                self._cond.wait_for(
                    lambda: self._done >= want or not self._thread.is_alive(), timeout
                )
        return self.pending == 0

    def close(self, timeout: float = 30.0) -> None:
        """Flush one last time and stop the thread (also runs at interpreter exit)."""
        if self.closed:
            return
        self.closed = True
        atexit.unregister(self.close)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("querywatch: the flusher did not finish within %.0f s", timeout)

    def _restart_in_child(self) -> None:
        """In a forked child: fresh locks and flusher thread, the parent's records dropped."""
        if self.closed:
            return
        self._flush_lock = threading.Lock()
        self._cond = threading.Condition()
        self.aggregator.lock = threading.Lock()
        self.aggregator.drain()  # the parent writes these
        for queue in (self._pending_windows, self._pending_requests, self._pending_repeats):
            queue.clear()
        self._requested = self._done = 0
        self._absorb_requested = self._stopping = False
        if self._sink is not None and isinstance(self._sink_spec, str | os.PathLike):
            _inherited.append(self._sink)  # the parent's connection: never used, never closed
            self._sink = None
        self._thread = threading.Thread(target=self._run, name="querywatch-flush", daemon=True)
        self._thread.start()

    def _wake_absorb(self) -> None:
        """The hot path's signal that raw statements piled up (once per ``PENDING_WAKE``)."""
        with self._cond:
            self._absorb_requested = True
            self._cond.notify_all()

    def _run(self) -> None:
        deadline = time.monotonic() + self.flush_interval
        while True:
            with self._cond:
                while (
                    not self._stopping
                    and self._requested == self._done
                    and not self._absorb_requested
                ):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                absorb_only = (
                    self._absorb_requested
                    and not self._stopping
                    and self._requested == self._done
                    and time.monotonic() < deadline
                )
                self._absorb_requested = False
                target = self._requested
                stopping = self._stopping
            if absorb_only:
                try:
                    self.aggregator.absorb()
                except Exception:
                    self.aggregator.internal_errors += 1
                continue
            self._flush_now()
            deadline = time.monotonic() + self.flush_interval
            with self._cond:
                self._done = max(self._done, target)
                self._cond.notify_all()
            if stopping:
                self._close_owned_sink()  # on the thread that opened it
                return

    def _flush_now(self) -> None:
        try:
            with self._flush_lock:
                windows, requests, repeats = self.aggregator.drain()
                self._pending_windows.extend(windows)
                self._pending_requests.extend(requests)
                self._pending_repeats.extend(repeats)
                self._bound()
                sink = self._open_sink()
                self._send(self._pending_windows, sink.write_windows)
                self._send(self._pending_requests, sink.write_requests)
                write_repeats = getattr(sink, "write_repeats", None)
                if write_repeats is None:
                    self.dropped_repeats += len(self._pending_repeats)
                    self._pending_repeats.clear()
                else:
                    self._send(self._pending_repeats, write_repeats)
            if self._failing:
                log.info("querywatch: the sink accepts writes again")
                self._failing = False
        except Exception as exc:
            self.failed_flushes += 1
            if not self._failing:
                log.warning(
                    "querywatch: flush failed, keeping %d windows for the next one: %s",
                    self.pending,
                    exc,
                )
            self._failing = True

    @staticmethod
    def _send(queue: deque[T], write: Callable[[Sequence[T]], None]) -> None:
        while queue:
            batch = [queue[i] for i in range(min(BATCH, len(queue)))]
            write(batch)
            for _ in batch:
                queue.popleft()

    def _bound(self) -> None:
        queues: tuple[deque[Any], ...] = (
            self._pending_windows,
            self._pending_requests,
            self._pending_repeats,
        )
        for queue in queues:
            while len(queue) > self.max_pending:
                queue.popleft()
                self.dropped_windows += 1

    def _open_sink(self) -> WindowSink:
        if self._sink is None:
            # Resolved at run time: the store package is optional for in-memory use.
            store = importlib.import_module("querywatch.store")
            spec = self._sink_spec
            assert isinstance(spec, str | os.PathLike)
            self._sink = store.open_store(os.fspath(spec))
        assert self._sink is not None
        return self._sink

    def _close_owned_sink(self) -> None:
        if self._sink is not None and isinstance(self._sink_spec, str | os.PathLike):
            close = getattr(self._sink, "close", None)
            if close is not None:
                try:
                    close()
                except Exception as exc:
                    log.warning("querywatch: closing the store failed: %s", exc)


_live: weakref.WeakSet[Recorder] = weakref.WeakSet()
_inherited: list[WindowSink] = []


def _after_fork_in_child() -> None:
    for recorder in list(_live):
        recorder._restart_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
