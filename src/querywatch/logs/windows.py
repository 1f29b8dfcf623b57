"""Log records into the store's statement windows (``digest --store`` and ``--follow``).

Records arrive in log order; each lands in the 10 s window of its own log time (not the time it
was read), so a digest of yesterday's log fills yesterday's windows. Windows stay open while
records for them may still come and are handed to ``flush`` once the log has moved
:data:`LATE_S` past them, so memory holds a few windows per fingerprint, not the whole log. The
store merges windows of one bucket as they land, so a window flushed twice only adds up.
"""

from __future__ import annotations

from collections.abc import Callable

from querywatch.logs.model import LogStatement
from querywatch.records import WINDOW_SECONDS, StatementWindow
from querywatch.sketch import LatencySketch, bucket_key

LATE_S = 60
"""How long (log time) a window stays open for records logged out of order."""

SOURCE = "log"


class Windows:
    """Open windows per (fingerprint, bucket); ``add`` is given to ``Digest.window_sink``."""

    def __init__(
        self,
        flush: Callable[[list[StatementWindow]], None],
        dialect: str = "postgres",
        source: str = SOURCE,
    ) -> None:
        self.flush_to = flush
        self.dialect = dialect
        self.source = source
        self.open: dict[tuple[str, int], StatementWindow] = {}
        self.newest = 0
        self.written = 0
        self.undated = 0

    def add(self, rec: LogStatement, fp: str, normalized: str) -> None:
        if not rec.at:
            self.undated += 1  # a log without times cannot fill time windows
            return
        start = int(rec.at // WINDOW_SECONDS) * WINDOW_SECONDS
        w = self.open.get((fp, start))
        if w is None:
            w = self.open[(fp, start)] = StatementWindow(
                fingerprint=fp,
                normalized=normalized,
                window_start=start,
                calls=0,
                total_ms=0.0,
                max_ms=0.0,
                dialect=self.dialect,
                source=self.source,
                sketch=LatencySketch(),
            )
        if rec.kind == "error":
            w.errors += 1
        else:
            w.calls += 1
            ms = rec.duration_ms
            if ms is not None:
                w.total_ms += ms
                if ms > w.max_ms:
                    w.max_ms = ms
                if w.min_ms is None or ms < w.min_ms:
                    w.min_ms = ms
                assert w.sketch is not None
                key = bucket_key(ms)
                w.sketch.buckets[key] = w.sketch.buckets.get(key, 0) + 1
                w.sketch.count += 1
            if rec.rows:
                w.rows += rec.rows
        if start > self.newest:
            self.newest = start
            self.flush(before=start - LATE_S)

    def flush(self, before: float | None = None) -> None:
        """Hand over windows older than ``before`` (all of them when None)."""
        if before is None:
            done = list(self.open.values())
            self.open.clear()
        else:
            keys = [k for k in self.open if k[1] < before]
            if not keys:
                return
            done = [self.open.pop(k) for k in keys]
        if done:
            for w in done:
                if w.sketch is not None and not w.sketch.count:
                    w.sketch = None
            self.written += len(done)
            self.flush_to(done)
