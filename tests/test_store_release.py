"""The release dimension of the store: windows of two releases in one bucket never merge, reads
take one release or sum them all, and stores older than the release column still read."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from querywatch.records import RepeatWindow, RequestWindow, StatementWindow
from querywatch.sketch import LatencySketch
from querywatch.store import SqlStore, open_store
from querywatch.store.migrations import LATEST, RELEASE_SINCE

T0 = 28_333_334 * 60  # a whole minute, late 2023
DAY = 24 * 3600


def execute(location: str, *sql: str) -> None:
    """Run SQL on the store's database behind querywatch's back (to fake an older store)."""
    if location.startswith("postgresql://"):
        with psycopg.connect(location, autocommit=True) as pg:
            pg.execute("SET search_path = querywatch")
            for statement in sql:
                pg.execute(statement.encode())
    else:
        with sqlite3.connect(location) as lite:
            for statement in sql:
                lite.execute(statement)
        lite.close()


def sketch_of(*values: float) -> LatencySketch:
    sketch = LatencySketch()
    for v in values:
        sketch.add(v)
    return sketch


def window(release: str, calls: int, ms: float, start: int = T0, **kw: object) -> StatementWindow:
    return StatementWindow(
        "fp1",
        "SELECT * FROM orders WHERE id = $1",
        start,
        calls,
        calls * ms,
        ms,
        source="app",
        min_ms=ms,
        sketch=sketch_of(*[ms] * calls),
        release=release,
        **kw,  # type: ignore[arg-type]
    )


def request(release: str, requests: int, user: str, start: int = T0) -> RequestWindow:
    return RequestWindow(
        "GET /orders/{id}",
        start,
        requests,
        0,
        requests * 20.0,
        20.0,
        requests * 5.0,
        requests,
        sketch_of(*[20.0] * requests),
        frozenset({user}),
        frozenset(),
        release=release,
    )


def test_two_releases_in_one_bucket_stay_apart_and_sum_when_read_together(
    store: SqlStore,
) -> None:
    store.write_windows([window("v1", 90, 2.0), window("v2", 10, 200.0)])
    store.write_windows([window("v2", 5, 200.0)])  # the same release merges as before
    (v1,) = store.statement_windows(release="v1")
    (v2,) = store.statement_windows(release="v2")
    assert (v1.release, v1.calls, v1.max_ms) == ("v1", 90, 2.0)
    assert (v2.release, v2.calls, v2.max_ms, v2.min_ms) == ("v2", 15, 200.0, 200.0)
    assert v2.sketch is not None and v2.sketch.count == 15
    assert store.statement_windows(release="v3") == []
    (both,) = store.statement_windows()
    assert (both.calls, both.max_ms, both.min_ms, both.release) == (105, 200.0, 2.0, "")
    assert both.sketch is not None and both.sketch.count == 105
    assert both.total_ms == pytest.approx(90 * 2.0 + 15 * 200.0)


def test_top_filters_by_release(store: SqlStore) -> None:
    store.write_windows([window("v1", 90, 2.0), window("v2", 10, 200.0)])
    (v2,) = store.top(release="v2")
    assert (v2.calls, v2.release) == (10, "v2")
    assert v2.p95_ms == pytest.approx(200.0, rel=0.02)
    (everything,) = store.top()
    assert (everything.calls, everything.release) == (100, "")
    assert store.top(release="v3") == []
    store.write_windows([window("v2", 1, 1.0, start=T0 + 3600) for _ in range(1)])
    assert store.top(since=T0 + 3600)[0].release == "v2"  # one release seen: named


def test_request_and_repeat_windows_keep_the_release(store: SqlStore) -> None:
    store.write_requests([request("v1", 9, "ann"), request("v2", 1, "bob")])
    (v2,) = store.request_windows(release="v2")
    assert (v2.requests, v2.users, v2.release) == (1, frozenset({"bob"}), "v2")
    (both,) = store.request_windows()
    assert (both.requests, both.users, both.release) == (10, frozenset({"ann", "bob"}), "")
    assert both.sketch is not None and both.sketch.count == 10
    store.write_repeats(
        [
            RepeatWindow("GET /orders/{id}", "fp1", T0, 1, 40, 40, release="v2"),
            RepeatWindow("GET /orders/{id}", "fp1", T0, 2, 12, 6, release="v1"),
        ]
    )
    (rep,) = store.repeat_windows(release="v2")
    assert (rep.requests, rep.max_repeats, rep.release) == (1, 40, "v2")
    (rep,) = store.repeat_windows()
    assert (rep.requests, rep.total_repeats, rep.max_repeats, rep.release) == (3, 52, 40, "")


def test_retention_rolls_each_release_up_on_its_own(store: SqlStore) -> None:
    now = T0 + 2 * DAY
    store.write_windows([window(r, 3, 1.0, start=T0 + s) for r in ("v1", "v2") for s in (0, 10)])
    store.write_requests([request(r, 2, r, start=T0 + 10) for r in ("v1", "v2")])
    store.write_repeats(
        [RepeatWindow("/r", "fp1", T0 + 20, 1, 9, 9, release=r) for r in ("v1", "v2")]
    )
    store.apply_retention(now)
    minutes = [
        (w.release, w.window_start, w.calls)
        for r in ("v1", "v2")
        for w in store.statement_windows(release=r)
    ]
    assert minutes == [("v1", T0, 6), ("v2", T0, 6)]
    assert [(w.window_start, w.requests) for w in store.request_windows(release="v2")] == [(T0, 2)]
    assert [w.requests for w in store.repeat_windows(release="v1")] == [1]
    assert [w.requests for w in store.request_windows()] == [4]


def test_a_version_6_store_reads_as_release_unknown_and_upgrades(location: str) -> None:
    with open_store(location) as s:
        s.write_windows([window("", 3, 1.0)])
        s.write_requests([request("", 2, "ann")])
        s.write_repeats([RepeatWindow("/r", "fp1", T0, 1, 9, 9)])
    # What querywatch with migrations 1-6 left behind: no release column, keys without it.
    execute(
        location,
        "ALTER TABLE windows RENAME TO w7",
        """CREATE TABLE windows (fingerprint TEXT NOT NULL, window_start BIGINT NOT NULL,
        resolution INTEGER NOT NULL, calls BIGINT NOT NULL, total_ms DOUBLE PRECISION NOT NULL,
        max_ms DOUBLE PRECISION NOT NULL, min_ms DOUBLE PRECISION, rows BIGINT NOT NULL,
        errors BIGINT NOT NULL, shared_blks_hit BIGINT NOT NULL, shared_blks_read BIGINT NOT NULL,
        sketch TEXT, source TEXT NOT NULL,
        PRIMARY KEY (fingerprint, window_start, resolution, source))""",
        "INSERT INTO windows SELECT fingerprint, window_start, resolution, calls, total_ms, "
        "max_ms, min_ms, rows, errors, shared_blks_hit, shared_blks_read, sketch, source FROM w7",
        "DROP TABLE w7",
        "ALTER TABLE request_windows RENAME TO r7",
        """CREATE TABLE request_windows (route TEXT NOT NULL, window_start BIGINT NOT NULL,
        resolution INTEGER NOT NULL, requests BIGINT NOT NULL, errors BIGINT NOT NULL,
        total_ms DOUBLE PRECISION NOT NULL, max_ms DOUBLE PRECISION NOT NULL,
        db_ms DOUBLE PRECISION NOT NULL, db_calls BIGINT NOT NULL, sketch TEXT,
        users TEXT NOT NULL, failed_users TEXT NOT NULL,
        PRIMARY KEY (route, window_start, resolution))""",
        "INSERT INTO request_windows SELECT route, window_start, resolution, requests, errors, "
        "total_ms, max_ms, db_ms, db_calls, sketch, users, failed_users FROM r7",
        "DROP TABLE r7",
        "ALTER TABLE request_repeats RENAME TO p7",
        """CREATE TABLE request_repeats (route TEXT NOT NULL, fingerprint TEXT NOT NULL,
        window_start BIGINT NOT NULL, resolution INTEGER NOT NULL, requests BIGINT NOT NULL,
        total_repeats BIGINT NOT NULL, max_repeats BIGINT NOT NULL,
        PRIMARY KEY (route, fingerprint, window_start, resolution))""",
        "INSERT INTO request_repeats SELECT route, fingerprint, window_start, resolution, "
        "requests, total_repeats, max_repeats FROM p7",
        "DROP TABLE p7",
        f"DELETE FROM schema_version WHERE version >= {RELEASE_SINCE}",
    )
    with open_store(location, read_only=True) as old:  # read as it is, not migrated
        assert old.schema_version() == RELEASE_SINCE - 1
        assert [(w.calls, w.release) for w in old.statement_windows()] == [(3, "")]
        assert [w.calls for w in old.statement_windows(release="")] == [3]
        assert old.statement_windows(release="v2") == []
        assert [(s.calls, s.release) for s in old.top()] == [(3, "")]
        assert old.top(release="v2") == []
        assert [w.requests for w in old.request_windows(release="")] == [2]
        assert [w.requests for w in old.repeat_windows(release="")] == [1]
    with open_store(location) as upgraded:
        assert upgraded.schema_version() == LATEST
        assert [(w.calls, w.release) for w in upgraded.statement_windows()] == [(3, "")]
        upgraded.write_windows([window("v2", 4, 1.0)])
        upgraded.write_requests([request("v2", 1, "bob")])
        assert [w.calls for w in upgraded.statement_windows(release="v2")] == [4]
        assert [w.calls for w in upgraded.statement_windows(release="")] == [3]
        assert [w.requests for w in upgraded.request_windows()] == [3]
        assert [w.requests for w in upgraded.repeat_windows(release="")] == [1]
