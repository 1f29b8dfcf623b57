"""The app's capture: one Recorder per process, fed by a wrapper on every Django connection.

Started by the app's ``ready()`` (:func:`start`), it records each statement's fingerprint,
duration, rows, errors and (sampled) call site, exactly as ``querywatch.instrument`` does for a
raw connection: the wrapper only times the call and hands it to the dialect's
:class:`~querywatch.capture.aggregate.StatementChannel`. The Recorder's flusher thread writes
windows to the store named by the ``store`` setting, and with them the ORM advice for N+1
patterns the middleware found (:class:`HintSink`), so the store says which relation to prefetch.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from time import perf_counter_ns
from typing import Any

from querywatch.capture.aggregate import StatementChannel
from querywatch.capture.recorder import Recorder
from querywatch.contrib.django.conf import DjangoSettings
from querywatch.contrib.django.hooks import ConnectionHook, dialect_of, skip_django_frames
from querywatch.contrib.django.orm import RelationAdvice
from querywatch.detect.nplusone import HINT_PREFIX
from querywatch.records import RepeatWindow, RequestWindow, StatementWindow

log = logging.getLogger("querywatch.django")

UID = "querywatch.capture"
MAX_ADVISED = 10_000  # (route, fingerprint) pairs whose advice was logged


class TimedExecute:
    """The execute wrapper: time the statement, record it on the connection's channel."""

    __slots__ = ("channel", "querywatch_uid")

    def __init__(self, channel: StatementChannel) -> None:
        self.channel = channel

    def __call__(self, execute: Any, sql: Any, params: Any, many: bool, context: Any) -> Any:
        t0 = perf_counter_ns()
        try:
            result = execute(sql, params, many, context)
        except BaseException:
            self.channel.record(sql, t0, perf_counter_ns(), 0, 1)
            raise
        t1 = perf_counter_ns()
        try:
            rows = context["cursor"].cursor.rowcount
        except Exception:
            rows = -1
        self.channel.record(sql, t0, t1, rows, 0)
        return result


class HintSink:
    """The store (opened on the flusher thread at the first write), plus the ORM advice the
    middleware queued, written as store state ``n_plus_one_hint:<fingerprint>`` (JSON), which
    the N+1 detector shows with its finding."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.store: Any = None
        self._hints: dict[str, str] = {}
        self._lock = threading.Lock()

    def _open(self) -> Any:
        if self.store is None:
            from querywatch.store import open_store

            self.store = open_store(self.location)
        return self.store

    def hint(self, fingerprint: str, route: str, advice: Sequence[RelationAdvice]) -> None:
        value = {"route": route, "relations": [a.as_dict() for a in advice]}
        value["message"] = advice[0].message
        value["fix"] = advice[0].fix
        with self._lock:
            self._hints[fingerprint] = json.dumps(value, sort_keys=True)

    def write_windows(self, windows: Sequence[StatementWindow]) -> None:
        self._open().write_windows(windows)

    def write_requests(self, windows: Sequence[RequestWindow]) -> None:
        self._open().write_requests(windows)

    def write_repeats(self, windows: Sequence[RepeatWindow]) -> None:
        store = self._open()
        store.write_repeats(windows)
        with self._lock:
            hints, self._hints = self._hints, {}
        try:
            for fingerprint, value in hints.items():
                store.set_state(HINT_PREFIX + fingerprint, value)
        except BaseException:
            with self._lock:  # kept for the next flush, as the Recorder keeps windows
                self._hints = {**hints, **self._hints}
            raise


class DjangoCapture:
    """The running capture of this process: settings, recorder, sink and connection hook."""

    def __init__(self, settings: DjangoSettings) -> None:
        self.settings = settings
        self.sink = HintSink(str(settings.config["store"]))
        self.recorder = Recorder(
            self.sink,
            flush_interval=settings.flush_interval,
            repeat_threshold=settings.repeat_threshold,
            release=settings.release,
        )
        self.hook = ConnectionHook(UID, self._wrapper)
        self._advised: set[tuple[str, str]] = set()

    def _wrapper(self, connection: Any) -> TimedExecute:
        return TimedExecute(self.recorder.channel(dialect_of(connection)))

    def advise(self, route: str, fingerprint: str, advice: Sequence[RelationAdvice]) -> None:
        """Log an N+1's ORM advice once per route and fingerprint, and keep it in the store."""
        if (route, fingerprint) in self._advised:
            return
        if len(self._advised) >= MAX_ADVISED:  # bounded: a pattern may be logged again
            self._advised.clear()
        self._advised.add((route, fingerprint))
        log.warning("querywatch: N+1 in %s: %s; %s", route, advice[0].message, advice[0].fix)
        self.sink.hint(fingerprint, route, advice)

    def flush(self, timeout: float = 30.0) -> bool:
        """Write everything captured so far to the store now."""
        return self.recorder.flush(timeout)

    def close(self) -> None:
        self.hook.uninstall()
        self.recorder.close()


_current: DjangoCapture | None = None
_lock = threading.Lock()


def start(settings: DjangoSettings) -> DjangoCapture:
    """Start capturing (once per process; the app's ``ready()`` calls it)."""
    global _current
    with _lock:
        if _current is None:
            skip_django_frames()
            _current = DjangoCapture(settings)
            _current.hook.install()
        return _current


def current() -> DjangoCapture | None:
    """The running capture, or None (the app is not installed, or ``enabled`` is False)."""
    return _current


def stop() -> None:
    """Stop capturing, after a last flush."""
    global _current
    with _lock:
        if _current is not None:
            _current.close()
            _current = None
