"""An agent's detector reads what is new: the same judgement, a poll's windows per pass.

`querywatch watch` runs detection after every poll over half an hour of every fingerprint. Its
detector keeps the trailing baseline and the judged deploy's sides between passes
(``reuse_seconds``) and reads only the last minute's windows. These tests hold it, poll
by poll on a real SQLite store, to a stateless detector: the same findings at the same poll,
baselines equal to a fresh read over the same span, a fraction of the windows read, and
everything read again when the kept figures could be wrong (a window written late, a new
deploy, a clock that goes back).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from querywatch.detect.baseline import BaselineBuilder, KeyBaseline
from querywatch.detect.comparison import SETTLE_S, Phases
from querywatch.detect.look_back import LookBack
from querywatch.detect.model import Detection
from querywatch.detect.regression import Detector
from querywatch.records import DeployMarker, StatementWindow
from querywatch.sketch import LatencySketch
from querywatch.store import SqlStore, open_store
from querywatch.store.base import Store
from test_detect_regression import BASE, ORDERS, Query, kinds

T0 = 1_700_000_000  # a window boundary
REUSE_S = 300.0
PASS_BUCKETS = SETTLE_S / 10 + 2  # a kept pass reads the last minute and the open buckets


class CountingStore:
    """The real store, counting the statement windows detection reads from it."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.read = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def fold_statement_windows(
        self, consume: Callable[[Iterator[StatementWindow]], Any], **kw: Any
    ) -> Any:
        def counted(windows: Iterator[StatementWindow]) -> Any:
            def each() -> Iterator[StatementWindow]:
                for w in windows:
                    self.read += 1
                    yield w

            return consume(each())

        return self.store.fold_statement_windows(counted, **kw)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = open_store(tmp_path / "qw.sqlite3")
    yield s
    s.close()


def write_bucket(
    store: SqlStore, ws: int, slower: Callable[[Query, int], float], rng: random.Random
) -> None:
    """One poll's windows: every query of the base workload in bucket ``ws``, with sketches."""
    windows = []
    for q in BASE:
        n = max(1, round(q.calls * rng.uniform(0.8, 1.2)))
        factor = slower(q, ws) * rng.uniform(0.7, 1.3)
        lat = [q.mean_ms * factor * rng.lognormvariate(0, q.p95_spread) for _ in range(n)]
        sketch = LatencySketch()
        for v in lat:
            sketch.add(v)
        windows.append(
            StatementWindow(
                q.fp, q.sql, ws, n, sum(lat), max(lat), source="app", min_ms=min(lat), sketch=sketch
            )
        )
    store.write_windows(windows)


def same(a: dict[str, KeyBaseline], b: dict[str, KeyBaseline]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == b[key], key


def fresh_before(store: Store, kept: BaselineBuilder) -> dict[str, KeyBaseline]:
    """A stateless read of the span the kept trailing baseline covers."""
    span = Phases(kept.start, kept.end, kept.end, kept.end + 1)
    ctx = LookBack(store, 5).read(kept.end, kept.start, None, span)
    assert ctx.unannounced_sides is not None
    return ctx.unannounced_sides[0]


def test_a_builder_extended_equals_one_built_over_the_whole_span() -> None:
    rng = random.Random(3)
    windows = []
    for ws in range(T0, T0 + 1200, 10):
        for key in ("a", "b", "c"):
            lat = [rng.uniform(0.1, 9.0) for _ in range(rng.choice([1, 2, 7, 30]))]
            sketch: LatencySketch | None = LatencySketch()
            for v in lat:
                sketch.add(v)  # type: ignore[union-attr]
            if key == "c" and ws >= T0 + 600:
                sketch = None  # c's later windows have no per-call latencies
            windows.append((key, ws, len(lat), sum(lat), sketch))
    whole = BaselineBuilder(T0, T0 + 1200, min_chunk_calls=5)
    for w in windows:
        whole.add(*w)
    grown = BaselineBuilder(T0, T0 + 400, min_chunk_calls=5)
    fed = T0
    for end in (T0 + 400, T0 + 410, T0 + 900, T0 + 1200):
        grown.extend(end)
        for w in windows:
            if fed <= w[1] < end:
                grown.add(*w)
        fed = end
    same(grown.baselines(), whole.baselines())
    with pytest.raises(ValueError, match="later, not earlier"):
        grown.extend(T0 + 1000)


def polls(
    store: SqlStore,
    slower: Callable[[Query, int], float],
    start: int,
    end: int,
    *,
    deploy_at: int | None = None,
) -> Iterator[float]:
    """Write a bucket, then yield the time of the poll just after it, from ``start`` to ``end``."""
    rng = random.Random(7)
    for ws in range(start, end, 10):
        if deploy_at is not None and ws == deploy_at:
            store.record_deploy(
                DeployMarker("deploy-v2", "v2", None, "prod", ws + 1.0, ws + 2.0, "ci", "v1")
            )
        write_bucket(store, ws, slower, rng)
        yield ws + 10.5


class SideBySide:
    """A kept detector and a fresh one at each poll, over one store, with what each pass read."""

    def __init__(self, store: SqlStore) -> None:
        self.counting = CountingStore(store)
        self.kept = Detector(cast(Store, self.counting), reuse_seconds=REUSE_S)
        self.kept_reads: list[int] = []
        self.fresh_reads: list[int] = []

    def detect(self, now: float) -> tuple[list[Detection], list[Detection]]:
        self.counting.read = 0
        found = self.kept.detect(now)
        self.kept_reads.append(self.counting.read)
        self.counting.read = 0
        expected = Detector(cast(Store, self.counting)).detect(now)
        self.fresh_reads.append(self.counting.read)
        return found, expected

    def steady_reads(self) -> float:
        """Windows a kept pass typically read (the median: full reads are the exception)."""
        return sorted(self.kept_reads)[len(self.kept_reads) // 2]


def test_the_kept_detector_judges_as_a_fresh_one_reading_a_poll_per_pass(store: SqlStore) -> None:
    change = T0 + 2400
    both = SideBySide(store)
    first: dict[str, float] = {}

    def slower(q: Query, ws: int) -> float:
        return 50.0 if q is ORDERS and ws >= change else 1.0

    for now in polls(store, slower, T0, change + 60):
        if now < T0 + 1800:
            continue  # the trailing baseline fills
        found, expected = both.detect(now)
        assert kinds(found) == kinds(expected), now
        if found:
            first.setdefault("at", now)
        trail = both.kept.look_back._trailing
        assert trail is not None
        same(trail.builder.baselines(), fresh_before(store, trail.builder))
    assert first["at"] == change + 20.5  # two slow windows: persistence, as a fresh pass
    assert kinds(both.kept.detect(change + 60.5)) == [("unannounced_regression", ORDERS.fp)]
    # a full read at the first pass and once per reuse_seconds; a poll's few windows otherwise
    assert both.steady_reads() <= PASS_BUCKETS * len(BASE) < min(both.fresh_reads) / 10
    full_reads = sum(1 for n in both.kept_reads if n > 10 * len(BASE))
    assert full_reads <= len(both.kept_reads) * 10 / REUSE_S + 1


def test_after_a_deploy_the_kept_detector_finds_what_a_fresh_one_finds(store: SqlStore) -> None:
    deploy_at = T0 + 1900
    both = SideBySide(store)
    named: list[float] = []

    def slower(q: Query, ws: int) -> float:
        return 50.0 if q is ORDERS and ws > deploy_at else 1.0

    for now in polls(store, slower, T0, deploy_at + 900, deploy_at=deploy_at):
        if now < deploy_at:
            continue
        found, expected = both.detect(now)
        assert found == expected, now  # the same figures, confidence and evidence: exact spans
        if ("deploy_regression", ORDERS.fp) in kinds(found):
            named.append(now)
    assert named and named[0] <= deploy_at + 60
    assert both.steady_reads() <= PASS_BUCKETS * len(BASE) < min(both.fresh_reads) / 10


def test_a_window_written_late_counts_once_everything_is_read_again(store: SqlStore) -> None:
    detector = Detector(store, reuse_seconds=REUSE_S)
    times = list(polls(store, lambda q, ws: 1.0, T0, T0 + 1900))
    detector.detect(times[-1])
    trail = detector.look_back._trailing
    assert trail is not None
    late = StatementWindow("late", "SELECT late", int(trail.builder.end) - 30, 40, 80.0, 3.0)
    store.write_windows([late])
    for now in polls(store, lambda q, ws: 1.0, T0 + 1900, T0 + 1900 + int(REUSE_S) + 10):
        detector.detect(now)
        trail = detector.look_back._trailing
        assert trail is not None
        counted = "late" in trail.builder.baselines()
        assert counted == (now >= times[-1] + REUSE_S), now


def test_a_new_deploy_or_a_clock_going_back_rebuilds_the_trailing_baseline(
    store: SqlStore,
) -> None:
    detector = Detector(store, reuse_seconds=REUSE_S)
    deploy_at = T0 + 1900
    for now in polls(store, lambda q, ws: 1.0, T0, deploy_at + 120, deploy_at=deploy_at):
        detector.detect(now)
    trail = detector.look_back._trailing
    assert trail is not None
    assert trail.builder.start == deploy_at + 10  # from the deploy's first whole window on
    assert trail.anchor == "deploy-v2"
    same(trail.builder.baselines(), fresh_before(store, trail.builder))
    detector.detect(deploy_at + 90.5)  # the clock went back
    back = detector.look_back._trailing
    assert back is not None and back is not trail and back.builder.end == deploy_at + 30
    same(back.builder.baselines(), fresh_before(store, back.builder))
