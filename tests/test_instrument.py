"""In-app capture against real databases: a sqlite3 file, the test PostgreSQL, SQLAlchemy engines.

Expected call-site lines come from the ``# qw:<name>`` markers in workload_app.py.
"""

from __future__ import annotations

import asyncio
import random
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg
import pytest
from psycopg import sql as pgsql

import querywatch
import workload_app as app
from querywatch.capture.aggregate import OTHER_FINGERPRINT, Aggregator
from querywatch.capture.recorder import Recorder
from querywatch.records import RequestWindow, StatementWindow
from querywatch.sketch import LatencySketch
from querywatch.sql import fingerprint
from querywatch.store import open_store

WORKLOAD = Path(app.__file__).resolve()
ITEMS, SELECTS = 50, 200
UPDATED = sum(1 for i in range(ITEMS) if i % 7 == 3)  # rows bump_qty(3) touches


def marker_line(name: str) -> int:
    pattern = re.compile(rf"#\s*qw:{re.escape(name)}\s*$")
    lines = WORKLOAD.read_text().splitlines()
    found = [n for n, line in enumerate(lines, 1) if pattern.search(line)]
    assert len(found) == 1, f"marker qw:{name} found {len(found)} times"
    return found[0]


class CollectingSink:
    """Collects what the recorder flushes (a stand-in for a store where one is not the point)."""

    def __init__(self) -> None:
        self.windows: list[StatementWindow] = []
        self.requests: list[RequestWindow] = []

    def write_windows(self, windows: Sequence[StatementWindow]) -> None:
        self.windows.extend(windows)

    def write_requests(self, windows: Sequence[RequestWindow]) -> None:
        self.requests.extend(windows)


class Totals:
    def __init__(self, windows: Sequence[StatementWindow]) -> None:
        self.calls = sum(w.calls for w in windows)
        self.rows = sum(w.rows for w in windows)
        self.errors = sum(w.errors for w in windows)
        self.total_ms = sum(w.total_ms for w in windows)
        self.sites = {s for w in windows for s in w.call_sites}

    def site_at(self, marker: str, function: str) -> bool:
        line = marker_line(marker)
        return any(
            Path(s.path).resolve() == WORKLOAD and s.line == line and s.function == function
            for s in self.sites
        )


def totals(windows: Sequence[StatementWindow], text: str, dialect: str) -> Totals:
    fp = fingerprint(text, dialect).id
    return Totals([w for w in windows if w.fingerprint == fp])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[querywatch.capture.recorder.WindowSink]:
    s = open_store(tmp_path / "qw.sqlite3")
    yield s
    s.close()


def assert_workload(
    windows: Sequence[StatementWindow], dialect: str, ph: str, select_rows: int
) -> None:
    create = totals(windows, app.CREATE, dialect)
    assert create.calls == 1 and create.site_at("create", "create_table")
    insert = totals(windows, app.insert_sql(ph), dialect)
    assert (insert.calls, insert.rows) == (1, ITEMS)
    assert insert.site_at("insert-many", "insert_items")
    point = totals(windows, app.point_sql(ph), dialect)
    assert (point.calls, point.rows, point.errors) == (SELECTS, select_rows, 0)
    assert point.site_at("point-select", "point_select") and point.total_ms > 0
    update = totals(windows, app.update_sql(ph), dialect)
    assert (update.calls, update.rows) == (1, UPDATED)
    assert update.site_at("update", "bump_qty")
    bad = totals(windows, app.BAD, dialect)
    assert (bad.calls, bad.errors) == (1, 1) and bad.site_at("error", "bad_query")


def test_sqlite_file_connection_into_sqlite_store(tmp_path: Path, store: object) -> None:
    inst = querywatch.instrument(sqlite3.connect(tmp_path / "app.db"), sink=store)
    assert inst.dialect == "sqlite"
    conn = inst.target
    app.run(conn, "?", items=ITEMS, selects=SELECTS)
    with pytest.raises(sqlite3.OperationalError, match="no_such_column"):
        app.bad_query(conn)
    inst.close()
    conn.close()
    windows = open_store(tmp_path / "qw.sqlite3").statement_windows()
    # sqlite3 reports no row count for SELECT (-1): the rows counted are the rows fetched.
    assert_workload(windows, "sqlite", "?", select_rows=SELECTS)
    point = [w for w in windows if w.fingerprint == fingerprint(app.point_sql("?"), "sqlite").id]
    assert all(w.source == "app" and w.sketch is not None for w in point)
    assert sum(w.sketch.count for w in point if w.sketch) == SELECTS


def test_dbapi_proxy_forwards_the_driver_api(tmp_path: Path) -> None:
    inst = querywatch.instrument(sqlite3.connect(":memory:"), sink=CollectingSink())
    conn = inst.target
    conn.row_factory = sqlite3.Row
    with conn:
        conn.executescript("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2);")
    cur = conn.cursor()
    cur.arraysize = 5
    assert [r["x"] for r in cur.execute("SELECT x FROM t ORDER BY x")] == [1, 2]
    assert cur.execute("SELECT count(*) FROM t").fetchone()[0] == 2
    assert cur.description[0][0] == "count(*)"
    assert conn.total_changes == 2
    inst.close()
    conn.execute("SELECT 1")  # no longer recorded, still works


@pytest.mark.postgres
def test_psycopg_connection(pg_dsn: str, store: object) -> None:
    conn = psycopg.connect(pg_dsn)
    inst = querywatch.instrument(conn, sink=store)
    assert inst.target is conn and inst.dialect == "postgres"
    app.run(conn, "%s", items=ITEMS, selects=SELECTS)
    with pytest.raises(psycopg.errors.UndefinedColumn):
        app.bad_query(conn)
    conn.rollback()
    composed = pgsql.SQL("SELECT {} FROM items").format(pgsql.Identifier("name"))
    assert len(conn.execute(composed).fetchall()) == ITEMS
    inst.close()
    conn.execute("SELECT 1")  # cursor_factory restored: not recorded
    conn.close()
    windows = store.statement_windows()  # type: ignore[attr-defined]
    assert_workload(windows, "postgres", "%s", select_rows=SELECTS)
    assert totals(windows, 'SELECT "name" FROM items', "postgres").rows == ITEMS
    assert totals(windows, "SELECT 1", "postgres").calls == 0


@pytest.mark.postgres
def test_psycopg_async_connection_concurrent_tasks(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        app.create_table(conn)
        app.insert_items(conn, "%s", ITEMS)
    sink = CollectingSink()
    recorder = Recorder(sink)

    async def main() -> None:
        conns = [await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) for _ in range(4)]
        for c in conns:
            querywatch.instrument(c, recorder=recorder)

        async def task(k: int) -> None:
            c = conns[k % len(conns)]
            for i in range(25):
                assert (await app.async_point_select(c, i)) == (f"item-{i}",)

        await asyncio.gather(*(task(k) for k in range(20)))
        for c in conns:
            await c.close()

    asyncio.run(main())
    recorder.close()
    point = totals(sink.windows, app.point_sql("%s"), "postgres")
    assert (point.calls, point.rows) == (500, 500)
    assert point.site_at("async-point-select", "async_point_select")


def test_sqlalchemy_engine_on_sqlite(tmp_path: Path, store: object) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    engine = create_engine(f"sqlite:///{tmp_path / 'sa.db'}")
    inst = querywatch.instrument(engine, sink=store)
    assert inst.dialect == "sqlite"
    app.sa_run(engine, items=ITEMS, selects=SELECTS)
    with pytest.raises(OperationalError):
        app.sa_bad_query(engine)
    inst.close()
    engine.dispose()
    windows = store.statement_windows()  # type: ignore[attr-defined]
    assert_sqlalchemy(windows, "sqlite", "?", "?, ?, ?")


def assert_sqlalchemy(
    windows: Sequence[StatementWindow], dialect: str, ph: str, values: str
) -> None:
    create = totals(windows, app.CREATE, dialect)
    assert create.calls == 1 and create.site_at("sa-create", "sa_run")
    insert_text = f"INSERT INTO items (id, name, qty) VALUES ({values})"
    insert = totals(windows, insert_text, dialect)
    assert insert.calls >= 1 and insert.rows == ITEMS and insert.site_at("sa-insert", "sa_run")
    point = totals(windows, app.point_sql(ph), dialect)
    assert point.calls == SELECTS and point.site_at("sa-point-select", "sa_run")
    bad = totals(windows, app.BAD, dialect)
    assert (bad.calls, bad.errors) == (1, 1) and bad.site_at("sa-error", "sa_bad_query")


@pytest.mark.postgres
def test_sqlalchemy_engine_on_postgres(pg_dsn: str) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.exc import ProgrammingError

    engine = create_engine(pg_dsn.replace("postgresql://", "postgresql+psycopg://", 1))
    sink = CollectingSink()
    inst = querywatch.instrument(engine, sink=sink)
    assert inst.dialect == "postgres"
    app.sa_run(engine, items=ITEMS, selects=SELECTS)
    with pytest.raises(ProgrammingError):
        app.sa_bad_query(engine)
    inst.close()
    engine.dispose()
    assert_sqlalchemy(sink.windows, "postgres", "%(id)s", "%(id)s, %(name)s, %(qty)s")


@pytest.mark.postgres
def test_sqlalchemy_async_engine_on_postgres(pg_dsn: str) -> None:
    """An AsyncEngine is instrumented through its sync_engine; the call site is the coroutine
    that awaited the statement, although SQLAlchemy ran it inside a greenlet."""
    from sqlalchemy.ext.asyncio import create_async_engine

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        app.create_table(conn)
        app.insert_items(conn, "%s", ITEMS)
    engine = create_async_engine(pg_dsn.replace("postgresql://", "postgresql+psycopg://", 1))
    sink = CollectingSink()
    inst = querywatch.instrument(engine, sink=sink)
    assert inst.target is engine and inst.dialect == "postgres"
    asyncio.run(app.sa_async_point_selects(engine, 30))
    inst.close()
    asyncio.run(engine.dispose())
    point = totals(sink.windows, app.point_sql("%(id)s"), "postgres")
    assert (point.calls, point.rows) == (30, 30)
    assert point.site_at("sa-async-point-select", "sa_async_point_selects")


def test_threads_exact_counts(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as setup:
        app.create_table(setup)
        app.insert_items(setup, "?", ITEMS)
    setup.close()
    sink = CollectingSink()
    recorder = Recorder(sink, flush_interval=0.05)  # flushes race the threads on purpose
    start = threading.Barrier(8)
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            inst = querywatch.instrument(sqlite3.connect(db), recorder=recorder)
            start.wait()
            for i in range(500):
                app.point_select(inst.target, "?", i % ITEMS)
            inst.target.close()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    recorder.close()
    assert not failures
    point = totals(sink.windows, app.point_sql("?"), "sqlite")
    assert point.calls == 8 * 500 and point.site_at("point-select", "point_select")


@pytest.mark.postgres
def test_threads_on_psycopg(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        app.create_table(conn)
        app.insert_items(conn, "%s", ITEMS)
    sink = CollectingSink()
    recorder = Recorder(sink)
    shared = psycopg.connect(pg_dsn, autocommit=True)  # psycopg connections are thread-safe
    querywatch.instrument(shared, recorder=recorder)

    def worker() -> None:
        for i in range(500):
            app.point_select(shared, "%s", i % ITEMS)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    shared.close()
    recorder.close()
    assert totals(sink.windows, app.point_sql("%s"), "postgres").calls == 4000


def test_distinct_fingerprints_are_capped() -> None:
    sink = CollectingSink()
    inst = querywatch.instrument(sqlite3.connect(":memory:"), sink=sink, max_fingerprints=50)
    for i in range(500):
        inst.target.execute(f"SELECT {i} AS c{i}")  # a distinct fingerprint each (the alias)
    inst.close()
    assert sum(w.calls for w in sink.windows) == 500
    by_window: dict[int, int] = {}
    for w in sink.windows:
        by_window[w.window_start] = by_window.get(w.window_start, 0) + 1
    assert max(by_window.values()) <= 51  # 50 fingerprints and the "other" bucket
    other = sum(w.calls for w in sink.windows if w.fingerprint == OTHER_FINGERPRINT)
    assert other >= 400 and other == inst.aggregator.overflow_calls


def test_every_call_site_of_a_fingerprint_is_found() -> None:
    sink = CollectingSink()
    inst = querywatch.instrument(sqlite3.connect(":memory:"), sink=sink)
    conn = inst.target
    app.create_table(conn)
    app.insert_items(conn, "?", ITEMS)
    for i in range(1000):
        app.point_select(conn, "?", i % ITEMS)
    for i in range(300):
        conn.execute(app.point_sql("?"), (i % ITEMS,))  # a second call site, found by sampling
    inst.close()
    point = totals(sink.windows, app.point_sql("?"), "sqlite")
    assert point.calls == 1300 and point.site_at("point-select", "point_select")
    assert any(s.function == "test_every_call_site_of_a_fingerprint_is_found" for s in point.sites)


class FlakySink(CollectingSink):
    """A store that is down for the first ``failures`` writes."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def write_windows(self, windows: Sequence[StatementWindow]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("store is down")
        super().write_windows(windows)


def test_failed_flush_keeps_the_data_for_the_next_one() -> None:
    sink = FlakySink(failures=2)
    inst = querywatch.instrument(sqlite3.connect(":memory:"), sink=sink, flush_interval=60)
    for _ in range(10):
        inst.target.execute("SELECT 1")
    assert inst.flush() is False  # failed: kept, nothing raised
    for _ in range(5):
        inst.target.execute("SELECT 1")
    assert inst.flush() is False
    assert inst.recorder.pending >= 1
    assert inst.flush() is True
    assert sum(w.calls for w in sink.windows) == 15
    assert inst.recorder.failed_flushes == 2
    inst.close()


def test_pending_windows_are_bounded() -> None:
    sink = FlakySink(failures=10**6)
    recorder = Recorder(sink, flush_interval=60, max_pending=10)
    inst = querywatch.instrument(sqlite3.connect(":memory:"), recorder=recorder)
    for i in range(30):
        inst.target.execute(f"SELECT {i} AS c{i}")
    recorder.flush()
    assert recorder.pending <= 10 and recorder.dropped_windows >= 20
    recorder.close()


def test_sqlite_query_time_includes_fetching_its_rows(tmp_path: Path) -> None:
    """sqlite3 returns from execute at the first row; the rest of the work happens while fetching.

    Each row here costs a 2 ms sleep, so fetching 49 more rows takes at least 98 ms whatever the
    machine's load: the recorded time must hold them (no ratio to a clock, which load skews).
    """
    raw = sqlite3.connect(tmp_path / "scan.sqlite3")
    raw.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    raw.executemany("INSERT INTO t VALUES (?, ?)", ((i, f"v{i % 7}") for i in range(200)))
    raw.commit()
    raw.create_function("slow", 1, lambda value: time.sleep(0.002) or value)
    inst = querywatch.instrument(raw)
    cur = inst.target.cursor()
    scan = "SELECT slow(id) FROM t LIMIT 50"
    started = time.perf_counter_ns()
    cur.execute(scan)
    rows = cur.fetchall()
    whole_ns = time.perf_counter_ns() - started
    windows, _, _ = inst.aggregator.drain()
    (window,) = [w for w in windows if w.fingerprint == fingerprint(scan, "sqlite").id]
    assert window.calls == 1 and window.rows == len(rows) == 50
    assert 49 * 2_000_000 <= window.total_ms * 1e6 <= whole_ns
    inst.close()
    raw.close()


def test_recorded_durations_land_in_the_same_buckets_as_latency_sketch() -> None:
    """The hot path inlines the sketch's bucket maths; this pins the two together."""
    rng = random.Random(7)
    durations_ms = [rng.lognormvariate(0, 3) for _ in range(5000)]
    agg = Aggregator()
    channel = agg.channel("sqlite")
    t0 = time.perf_counter_ns()
    for ms in durations_ms:
        channel.record("SELECT 1", t0, t0 + max(1, round(ms * 1e6)), 1, 0)
    windows, _, _ = agg.drain()
    merged = LatencySketch()
    for w in windows:
        assert w.sketch is not None
        merged.merge(w.sketch)
    expected = LatencySketch()
    for ms in durations_ms:
        expected.add(max(1, round(ms * 1e6)) / 1e6)
    assert merged == expected


def test_rejects_what_it_cannot_instrument() -> None:
    with pytest.raises(TypeError, match="cannot instrument"):
        querywatch.instrument(object())


def test_statements_wait_raw_until_the_flusher_aggregates_them() -> None:
    """The hot path only queues; flush() aggregates what is queued before it writes."""
    sink = CollectingSink()
    recorder = Recorder(sink, flush_interval=3600)
    inst = querywatch.instrument(sqlite3.connect(":memory:"), recorder=recorder)
    for _ in range(100):
        inst.target.execute("SELECT 1")
    assert len(recorder.aggregator.pending) == 100  # under pending_wake: nothing aggregated yet
    assert inst.flush() is True
    assert not recorder.aggregator.pending
    assert totals(sink.windows, "SELECT 1", "sqlite").calls == 100
    recorder.close()


def test_pending_raw_statements_are_bounded_and_counts_stay_exact() -> None:
    sink = CollectingSink()
    recorder = Recorder(sink, flush_interval=3600)
    agg = recorder.aggregator
    agg.pending_wake, agg.pending_max = 50, 200
    recorder.aggregator.wake = None  # no flusher help: the application thread must absorb
    inst = querywatch.instrument(sqlite3.connect(":memory:"), recorder=recorder)
    for _ in range(1000):
        inst.target.execute("SELECT 1")
        assert len(agg.pending) < 200
    assert agg.inline_absorbs >= 4
    recorder.close()
    assert totals(sink.windows, "SELECT 1", "sqlite").calls == 1000


def test_the_flusher_is_woken_to_aggregate_a_backlog() -> None:
    recorder = Recorder(CollectingSink(), flush_interval=3600)
    agg = recorder.aggregator
    inst = querywatch.instrument(sqlite3.connect(":memory:"), recorder=recorder)
    for _ in range(agg.pending_wake + 10):
        inst.target.execute("SELECT 1")
    deadline = time.monotonic() + 10
    while len(agg.pending) >= agg.pending_wake and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(agg.pending) < agg.pending_wake and agg.inline_absorbs == 0
    recorder.close()


def test_a_long_request_folds_its_statement_list() -> None:
    from querywatch.capture.context import FOLD_AT, TRACKING, RequestState, current_request

    agg = Aggregator()
    channel = agg.channel("sqlite")
    state = RequestState()
    tracking, TRACKING.on = TRACKING.on, True
    token = current_request.set(state)
    try:
        t0 = time.perf_counter_ns()
        for i in range(FOLD_AT + 100):
            channel.record("SELECT a FROM t" if i % 2 else "SELECT b FROM t", t0, t0 + 1000, 0, 0)
    finally:
        current_request.reset(token)
        TRACKING.on = tracking
    assert len(state.raws) < FOLD_AT
    assert state.db_calls == FOLD_AT + 100 and state.db_ns == 1000 * (FOLD_AT + 100)
    assert sorted(state.counts().values()) == [(FOLD_AT + 100) // 2] * 2
