"""The dashboard's rollups, on both backends: what they read equals what the windows say."""

from __future__ import annotations

import random
import sqlite3

import psycopg
import pytest

from querywatch.records import StatementWindow
from querywatch.sketch import LatencySketch
from querywatch.store import Retention, SqlStore, open_store
from querywatch.store import rollup_reads as rr
from querywatch.store.rollups import FINE

T0 = 28_333_334 * 60 // 86400 * 86400  # midnight UTC, late 2023
FPS = [f"fp{n:02d}" for n in range(12)]


def windows(seed: int, start: int, end: int) -> list[StatementWindow]:
    """Windows of a dozen fingerprints at random 10 s buckets, two sources, some sketched."""
    rng = random.Random(seed)
    out = []
    for at in range(start, end, 10):
        for fp in rng.sample(FPS, 4):
            calls = rng.randint(1, 30)
            sketch = None
            if fp < "fp04":
                sketch = LatencySketch()
                for _ in range(calls):
                    sketch.add(rng.uniform(1, 50))
            out.append(
                StatementWindow(
                    fp,
                    f"select {fp} from t where id = ?",
                    at,
                    calls,
                    calls * rng.uniform(1, 9),
                    rng.uniform(10, 90),
                    source="app" if fp < "fp04" else rng.choice(["pgss", "pgss", "app"]),
                    rows=calls * 3,
                    errors=rng.randint(0, 1),
                    sketch=sketch,
                )
            )
    return out


def from_windows(store: SqlStore, since: float, until: float) -> dict[str, tuple[int, float]]:
    """Per fingerprint, (calls, total_ms) as the windows' own reads give them."""
    found: dict[str, tuple[int, float]] = {}
    for w in store.statement_windows(since=since, until=until):
        calls, total = found.get(w.fingerprint, (0, 0.0))
        found[w.fingerprint] = (calls + w.calls, total + w.total_ms)
    return found


def read(store: SqlStore, since: float, until: float) -> dict[str, tuple[int, float]]:
    got = store.transaction(lambda tx: rr.figures(tx, FPS, since, until), write=False)
    return {fp: (f.calls, f.total_ms) for fp, f in got.items()}


def assert_same(a: dict[str, tuple[int, float]], b: dict[str, tuple[int, float]]) -> None:
    assert a.keys() == b.keys()
    for fp in a:
        assert a[fp][0] == b[fp][0], fp
        assert a[fp][1] == pytest.approx(b[fp][1]), fp


def test_figures_over_any_range_equal_the_windows(store: SqlStore) -> None:
    store.write_windows(windows(1, T0, T0 + 3 * 3600))
    store.write_windows(windows(2, T0 + 1800, T0 + 2400))  # a second writer merges in
    rng = random.Random(3)
    for _ in range(6):
        since = T0 + rng.randint(0, 3 * 3600)
        until = since + rng.randint(1, 3 * 3600)
        assert_same(read(store, since, until), from_windows(store, since, until))


def test_figures_stay_exact_after_retention_rolls_the_windows(store: SqlStore) -> None:
    store.write_windows(windows(4, T0, T0 + 4 * 3600))
    # Keep the last hour at 10 s: what is older becomes minute rows, the 5 min grain goes.
    store.apply_retention(T0 + 4 * 3600, Retention(raw_seconds=3600))
    for since, until in ((T0 + 7, T0 + 4 * 3600), (T0 + 1234, T0 + 3 * 3600 + 77)):
        assert_same(read(store, since, until), from_windows(store, since, until))
    whole = store.transaction(lambda tx: rr.whole_from(tx), write=False)
    assert whole[FINE] == T0 + 3 * 3600


def test_percentiles_over_a_range_merge_every_sketch_before_and_after_retention(
    store: SqlStore,
) -> None:
    store.write_windows(windows(9, T0, T0 + 4 * 3600))
    since, until = T0 + 1234, T0 + 4 * 3600 - 77
    sketched = FPS[:4]  # in-app capture only: their sketches are the source's

    def expected() -> dict[str, float | None]:
        merged: dict[str, LatencySketch] = {}
        for w in store.statement_windows(since=since, until=until):
            if w.fingerprint in sketched and w.sketch is not None:
                merged.setdefault(w.fingerprint, LatencySketch()).merge(w.sketch)
        return {fp: s.quantile(0.95) for fp, s in merged.items()}

    def p95() -> dict[str, float | None]:
        got = store.transaction(
            lambda tx: rr.figures(tx, sketched, since, until, sketches=True), write=False
        )
        return {fp: f.p95_ms for fp, f in got.items()}

    before = expected()
    assert p95() == before
    store.apply_retention(T0 + 4 * 3600, Retention(raw_seconds=3600))  # hours 0-2: hourly
    assert p95() == before == expected()


def test_totals_sum_every_fingerprint_per_bucket_from_one_source(store: SqlStore) -> None:
    batch = windows(5, T0, T0 + 600)
    store.write_windows(batch)
    source, buckets = store.transaction(lambda tx: rr.totals(tx, T0, T0 + 600, 60), write=False)
    per_source = {src: sum(w.calls for w in batch if w.source == src) for src in ("app", "pgss")}
    assert source == max(per_source, key=lambda s: per_source[s])  # the most calls in the range
    for b, (calls, total, _errors, seconds) in buckets.items():
        in_bucket = [w for w in batch if b <= w.window_start < b + 60 and w.source == source]
        assert calls == sum(w.calls for w in in_bucket)
        assert total == pytest.approx(sum(w.total_ms for w in in_bucket))
        assert seconds == 10 * len({w.window_start for w in in_bucket})


def test_top_ranks_like_the_store_and_merges_sketches(store: SqlStore) -> None:
    store.write_windows(windows(6, T0, T0 + 2 * 3600))
    since, until = T0 + 905, T0 + 5000
    ranked = store.transaction(lambda tx: rr.top(tx, since, until, 5), write=False)
    expected = store.top(since=since, until=until, limit=5)
    assert [f.fingerprint for f in ranked] == [s.fingerprint for s in expected]
    for got, want in zip(ranked, expected, strict=True):
        assert got.calls == want.calls
        assert got.total_ms == pytest.approx(want.total_ms)
        assert got.p95_ms == (pytest.approx(want.p95_ms) if want.p95_ms is not None else None)


def test_series_buckets_sum_to_the_range(store: SqlStore) -> None:
    store.write_windows(windows(7, T0, T0 + 2 * 3600))
    since, until = T0 + 333, T0 + 2 * 3600
    by_fp = store.transaction(lambda tx: rr.series(tx, FPS, since, until, 600), write=False)
    totals = {
        fp: (sum(f.calls for f in b.values()), sum(f.total_ms for f in b.values()))
        for fp, b in by_fp.items()
    }
    assert_same(totals, from_windows(store, since, until))
    assert all(b % 600 == 0 for buckets in by_fp.values() for b in buckets)


def test_a_store_from_before_the_rollups_gets_them_filled(location: str) -> None:
    with open_store(location) as s:
        s.write_windows(windows(8, T0, T0 + 3600))
        expected = from_windows(s, T0, T0 + 3600)
    # What querywatch before the rollups left behind: no tables, schema version 7.
    statements = [
        "DROP TABLE fingerprint_rollups",
        "DROP TABLE bucket_totals",
        "DELETE FROM schema_version WHERE version >= 8",
        "DELETE FROM state",
    ]
    if location.startswith("postgresql://"):
        with psycopg.connect(location, autocommit=True) as pg:
            pg.execute("SET search_path = querywatch")
            for sql in statements:
                pg.execute(sql.encode())
    else:
        with sqlite3.connect(location) as lite:
            for sql in statements:
                lite.execute(sql)
        lite.close()
    with open_store(location) as upgraded:
        assert_same(read(upgraded, T0, T0 + 3600), expected)
