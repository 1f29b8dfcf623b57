"""``querywatch.instrument``: record every statement a connection or engine runs.

One entry point for the three kinds of target; each backend module does its own wrapping and the
Recorder does the aggregation and flushing, so this module only decides which backend applies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from querywatch.capture import dbapi, psycopg3, sqla
from querywatch.capture.aggregate import Aggregator
from querywatch.capture.recorder import Recorder, SinkLike


class Instrumentation:
    """A live instrumentation: use ``target``; ``close()`` stops recording and flushes."""

    def __init__(
        self,
        target: Any,
        dialect: str,
        recorder: Recorder,
        owns_recorder: bool,
        uninstall: Callable[[], None],
        release: str = "",
    ) -> None:
        self.target = target
        """The object to use: your connection/engine, or for plain DB-API the wrapping proxy."""
        self.dialect = dialect
        self.release = release
        """The release this target's statements are recorded under (outside a request whose
        release the middleware knows)."""
        self.recorder = recorder
        self._owns_recorder = owns_recorder
        self._uninstall: Callable[[], None] | None = uninstall

    @property
    def aggregator(self) -> Aggregator:
        return self.recorder.aggregator

    def flush(self, timeout: float = 30.0) -> bool:
        """Write what was recorded so far to the sink now; True when the sink took it all."""
        return self.recorder.flush(timeout)

    def close(self) -> None:
        """Stop recording this target, and flush and stop the recorder if it was created here."""
        if self._uninstall is not None:
            self._uninstall()
            self._uninstall = None
        if self._owns_recorder:
            self.recorder.close()
        else:
            self.recorder.flush()

    def __enter__(self) -> Instrumentation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<querywatch.Instrumentation {self.dialect} {self.target!r}>"


def _is_psycopg3(target: object) -> bool:
    if type(target).__module__.split(".", 1)[0] != "psycopg":
        return False
    import psycopg

    return isinstance(target, psycopg.Connection | psycopg.AsyncConnection)


def instrument(
    target: Any,
    *,
    sink: SinkLike = None,
    dialect: str | None = None,
    recorder: Recorder | None = None,
    flush_interval: float = 5.0,
    max_fingerprints: int = 2000,
    release: str | None = None,
) -> Instrumentation:
    """Record fingerprint, duration, rows, errors and call site of every statement ``target`` runs.

    ``target``: a psycopg 3 Connection/AsyncConnection (instrumented in place), a SQLAlchemy
    Engine/AsyncEngine (event listeners), or any DB-API 2 connection such as sqlite3's (use the
    returned ``.target`` proxy). ``sink``: a Store, anything with ``write_windows`` and
    ``write_requests``, a store path/DSN (opened on the flusher thread), or None to keep records
    in memory. Pass ``recorder`` to share one aggregator and flusher between several targets and
    the WSGI/ASGI middleware. ``release``: the application release (version, git sha) recorded
    with every window, so a canary can be told from the stable release; default the recorder's
    (``$QUERYWATCH_RELEASE``, else ``""``). A request whose release the middleware knows (a load
    balancer's header) records its statements under that one instead.
    """
    owns = recorder is None
    if recorder is None:
        recorder = Recorder(
            sink, flush_interval=flush_interval, max_fingerprints=max_fingerprints, release=release
        )
    rel = recorder.release if release is None else release
    try:
        if _is_psycopg3(target):
            dialect = dialect or "postgres"
            undo = psycopg3.install(target, recorder.channel(dialect, rel))
            return Instrumentation(target, dialect, recorder, owns, undo, rel)
        if sqla.is_engine(target):
            dialect = dialect or sqla.dialect_of(target)
            undo = sqla.install(target, recorder.channel(dialect, rel))
            return Instrumentation(target, dialect, recorder, owns, undo, rel)
        if callable(getattr(target, "cursor", None)):
            dialect = dialect or dbapi.dialect_of(target) or "postgres"
            proxy, undo = dbapi.install(target, recorder.channel(dialect, rel))
            return Instrumentation(proxy, dialect, recorder, owns, undo, rel)
        raise TypeError(
            f"querywatch.instrument: cannot instrument {type(target).__name__!r}: expected a"
            " psycopg connection, a SQLAlchemy engine or a DB-API 2 connection"
        )
    except BaseException:
        if owns:
            recorder.close()
        raise
