"""Detection reads windows as a stream: the same baselines as the lists, never all windows held.

After every poll the detector reads half an hour of windows of every changing fingerprint. The
store hands them over one at a time from its cursor (``Store.fold_statement_windows``) and
``BaselineBuilder`` folds them into per-key figures. These tests hold the streaming path to the
list-based one on the same stored windows (a real SQLite file and the suite's PostgreSQL), with
what makes the read tricky (two sources of one fingerprint, two releases in one bucket, minute
rows next to 10 s rows, gaps, quiet windows, windows after ``now``), and check that a detection
pass never keeps more than the window at hand.
"""

from __future__ import annotations

import dataclasses
import random
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from querywatch.detect.baseline import (
    BaselineBuilder,
    KeyBaseline,
    Point,
    build_baselines,
    coverage,
    request_points,
    statement_points,
)
from querywatch.detect.regression import Detector
from querywatch.records import CallSite, DeployMarker, RequestWindow, StatementWindow
from querywatch.sketch import LatencySketch
from querywatch.store import SqlStore, open_store
from querywatch.store.base import Retention

T0 = 1_700_000_020  # a window boundary, not a minute boundary
NOW = T0 + 1825.0
SINCE = T0
# (start, end, now): a deploy's before and after, a trailing baseline across the minute rows.
SPANS = [
    (T0, T0 + 1200, None),
    (T0 + 300, T0 + 1810, None),
    (T0 + 1810, NOW + 1, NOW),
]


def reference_baselines(
    points: Sequence[Point], start: float, end: float, min_chunk_calls: int, now: float | None
) -> dict[str, KeyBaseline]:
    """The list-based baselines as detection built them before it streamed (806ae18): every
    point in the span, sorted, grouped per key, then each key's list reduced. Kept here as the
    reference the streaming builder must equal."""
    inside = [p for p in points if start <= p.window_start < end]
    covered_s = coverage((p.window_start for p in inside), start, end, now)
    by_key: dict[str, list[Point]] = {}
    for p in sorted(inside, key=lambda p: p.window_start):
        by_key.setdefault(p.key, []).append(p)
    found = {}
    for key, pts in by_key.items():
        means: list[float] = []
        chunk_calls: list[int] = []
        calls_acc, total_acc = 0, 0.0
        for p in pts:
            calls_acc += p.calls
            total_acc += p.total_ms
            if calls_acc >= min_chunk_calls:
                means.append(total_acc / calls_acc)
                chunk_calls.append(calls_acc)
                calls_acc, total_acc = 0, 0.0
        sketch: LatencySketch | None = LatencySketch()
        for p in pts:
            if sketch is None:
                break
            if p.sketch is None or p.sketch.count != p.calls:
                sketch = None
            else:
                sketch.merge(p.sketch)
        found[key] = KeyBaseline(
            key=key,
            label=pts[0].label,
            start=start,
            end=end,
            covered_s=covered_s,
            windows=len(pts),
            calls=sum(p.calls for p in pts),
            total_ms=sum(p.total_ms for p in pts),
            chunk_means=tuple(means),
            chunk_calls=tuple(chunk_calls),
            sketch=sketch,
            rows=sum(p.rows for p in pts),
            blocks=sum(p.blocks for p in pts) if all(p.blocks for p in pts) else 0,
        )
    return found


def _sketch(rng: random.Random, n: int, mean_ms: float) -> tuple[LatencySketch, float, float]:
    lat = [mean_ms * rng.lognormvariate(0, 0.3) for _ in range(n)]
    s = LatencySketch()
    for v in lat:
        s.add(v)
    return s, sum(lat), max(lat)


def fill(store: SqlStore, *, fingerprints: int = 8, seed: int = 3) -> int:
    """Half an hour of windows with every case a read must merge or choose; returns how many
    statement windows a read since ``SINCE`` gives."""
    rng = random.Random(seed)
    windows: list[StatementWindow] = []
    requests: list[RequestWindow] = []
    site = (CallSite("app/orders.py", 12, "list_orders"),)
    for i in range(int((NOW - T0) // 10) + 2):  # the last one starts after NOW
        ws = T0 + 10 * i
        if 40 <= i < 43:
            continue  # the agent was down: a gap
        for k in range(fingerprints):
            fp, text = f"fp{k:03d}", f"select * from t{k} where id = ?"
            kind = k % 6
            if kind == 5 and i % 4:
                continue  # a rare query, every fourth window
            calls = 0 if kind == 5 and i % 8 == 0 else rng.randint(1, 12)
            if kind in (0, 1, 3):  # in-app capture, per-call latencies
                s, total, mx = _sketch(rng, calls, 0.5 + k)
                windows.append(
                    StatementWindow(
                        fp,
                        text,
                        ws,
                        calls,
                        total,
                        mx,
                        source="app",
                        sketch=s,
                        call_sites=site if kind == 0 else (),
                        rows=calls,
                    )
                )
            if kind == 4:  # two releases in one bucket: summed into one window by a read
                for release in ("v1", "v2"):
                    s, total, mx = _sketch(rng, calls, 2.0 if release == "v1" else 3.0)
                    windows.append(
                        StatementWindow(
                            fp,
                            text,
                            ws,
                            calls,
                            total,
                            mx,
                            source="app",
                            sketch=s,
                            release=release,
                        )
                    )
            if kind in (2, 3, 5):  # pg_stat_statements: totals only, buffers sometimes
                total = calls * (1.0 + k) * rng.uniform(0.7, 1.3)
                hit = 0 if (kind == 5 and i % 3 == 0) else calls * 4  # buffers not counted
                windows.append(
                    StatementWindow(
                        fp,
                        text,
                        ws,
                        calls + (3 if kind == 3 else 0),
                        total,
                        total,
                        source="pg_stat_statements",
                        rows=calls,
                        shared_blks_hit=hit,
                        shared_blks_read=calls if hit else 0,
                    )
                )
        for route in ("/orders", "/cart"):
            for release in ("v1", "v2") if route == "/orders" else ("",):
                s, total, mx = _sketch(rng, 5, 20.0)
                requests.append(
                    RequestWindow(
                        route,
                        ws,
                        5,
                        0,
                        total,
                        mx,
                        total / 2,
                        10,
                        s,
                        frozenset({f"u{i % 7}"}),
                        release=release,
                    )
                )
    store.write_windows(windows)
    store.write_requests(requests)
    # Windows more than 20 minutes old become minute rows, read next to the 10 s rows.
    store.apply_retention(NOW, Retention(raw_seconds=1200))
    return len(store.statement_windows(since=SINCE))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    location = (
        str(request.getfixturevalue("pg_dsn"))
        if request.param == "postgres"
        else tmp_path / "qw.sqlite3"
    )
    s = open_store(location)
    yield s
    s.close()


def _fold(
    windows: Iterable[Any],
    add: Callable[[BaselineBuilder, Any], None],
    min_chunk_calls: int,
) -> list[dict[str, KeyBaseline]]:
    builders = [
        BaselineBuilder(start, end, min_chunk_calls=min_chunk_calls, now=now)
        for start, end, now in SPANS
    ]
    for w in windows:
        if w.window_start <= NOW:
            for b in builders:
                add(b, w)
    return [b.baselines() for b in builders]


@pytest.mark.parametrize("min_chunk_calls", [5, 40])
def test_streamed_baselines_equal_the_list_based_ones(
    any_store: SqlStore, min_chunk_calls: int
) -> None:
    fill(any_store)
    points = [p for p in statement_points(any_store.statement_windows(since=SINCE))]
    points = [p for p in points if p.window_start <= NOW]
    expected = [reference_baselines(points, s, e, min_chunk_calls, n) for s, e, n in SPANS]
    streamed = any_store.fold_statement_windows(
        lambda ws: _fold(ws, BaselineBuilder.add_statement, min_chunk_calls), since=SINCE
    )
    assert streamed == expected
    # Not vacuous: every side has keys, some with merged sketches, some with chunk means only.
    assert all(len(side) >= 5 for side in expected)
    after = expected[2]
    assert after["fp000"].sketch is not None and after["fp002"].sketch is None
    assert after["fp004"].sketch is not None  # two releases a bucket, summed
    assert expected[1]["fp002"].blocks > 0 and expected[1]["fp005"].blocks == 0
    # build_baselines over the points, in any order, is the same fold.
    shuffled = list(points)
    random.Random(1).shuffle(shuffled)
    assert [
        build_baselines(shuffled, s, e, min_chunk_calls=min_chunk_calls, now=n) for s, e, n in SPANS
    ] == expected

    requests = [p for p in request_points(any_store.request_windows(since=SINCE))]
    requests = [p for p in requests if p.window_start <= NOW]
    expected_routes = [reference_baselines(requests, s, e, min_chunk_calls, n) for s, e, n in SPANS]
    streamed_routes = any_store.fold_request_windows(
        lambda ws: _fold(ws, BaselineBuilder.add_request, min_chunk_calls), since=SINCE
    )
    assert streamed_routes == expected_routes
    assert set(expected_routes[0]) == {"/orders", "/cart"}


def test_the_stream_is_the_list_read_window_for_window(any_store: SqlStore) -> None:
    """Same windows, same order: one source per fingerprint, releases summed, minute rows."""
    n = fill(any_store)
    listed = any_store.statement_windows(since=SINCE)
    streamed = any_store.fold_statement_windows(list, since=SINCE)
    assert streamed == [dataclasses.replace(w, call_sites=()) for w in listed]
    assert len(streamed) == n
    assert {w.source for w in streamed if w.fingerprint == "fp003"} == {"pg_stat_statements"}
    assert {w.window_start % 60 for w in streamed} != {T0 % 60}  # minute rows are in it
    assert any(w.call_sites for w in listed)
    assert any_store.fold_request_windows(list, since=SINCE) == any_store.request_windows(
        since=SINCE
    )
    # A range and a release narrow the stream as they narrow the list.
    assert any_store.fold_statement_windows(
        list, since=T0 + 600, until=T0 + 900, release="v2"
    ) == any_store.statement_windows(since=T0 + 600, until=T0 + 900, release="v2")


class _Tracked(StatementWindow):
    """A window that can be watched for when it is freed."""

    __slots__ = ("__weakref__",)


class _WatchedStore:
    """The real store, with each statement window it hands out counted while it is alive."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.alive = 0
        self.most_alive = 0
        self.handed_out = 0

    def _track(self, w: StatementWindow) -> StatementWindow:
        t = _Tracked(**{f.name: getattr(w, f.name) for f in dataclasses.fields(w)})
        self.alive += 1
        self.handed_out += 1
        self.most_alive = max(self.most_alive, self.alive)
        weakref.finalize(t, self._freed)
        return t

    def _freed(self) -> None:
        self.alive -= 1

    def statement_windows(self, *args: Any, **kw: Any) -> list[StatementWindow]:
        return [self._track(w) for w in self.store.statement_windows(*args, **kw)]

    def fold_statement_windows(
        self, consume: Callable[[Iterator[StatementWindow]], Any], *args: Any, **kw: Any
    ) -> Any:
        return self.store.fold_statement_windows(
            lambda ws: consume(self._track(w) for w in ws), *args, **kw
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_a_detection_pass_holds_one_window_at_a_time(tmp_path: Path) -> None:
    store = open_store(tmp_path / "qw.sqlite3")
    try:
        n = fill(store, fingerprints=30)
        store.record_deploy(
            DeployMarker("d1", "v2", "c0ffee1", "prod", T0 + 1503.0, T0 + 1505.0, "ci", "v1")
        )
        watched = _WatchedStore(store)
        found = Detector(watched).detect(NOW)  # type: ignore[arg-type]
        assert watched.handed_out > n / 2 > 500  # half an hour of every fingerprint
        # The window being folded, and the store's next one: never the half hour.
        assert watched.most_alive <= 2
        assert found == Detector(store).detect(NOW)
    finally:
        store.close()


def test_windows_out_of_time_order_are_refused() -> None:
    """The fold relies on the store's order: a key's windows out of order would chunk wrongly."""
    b = BaselineBuilder(0, 100, min_chunk_calls=5)
    b.add("q", 20, 3, 3.0, None)
    with pytest.raises(ValueError, match="out of time order"):
        b.add("q", 10, 3, 3.0, None)
