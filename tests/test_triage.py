"""Triage and the server health snapshot, against a real PostgreSQL and real SQLite stores."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pg_cluster import free_port
from querywatch.detect.health import SQLITE_UNAVAILABLE, health_snapshot, sqlite_health
from querywatch.detect.triage import triage
from querywatch.errors import DatabaseUnavailable
from querywatch.records import RequestWindow, StatementWindow
from querywatch.store import SqlStore, open_store

T0 = 28_333_334 * 60
BEFORE = (T0, T0 + 300)
AFTER = (T0 + 300, T0 + 600)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with open_store(tmp_path / "store.sqlite3") as s:
        yield s


def _requests(start: int, end: int, total_ms: float, db_ms: float) -> list[RequestWindow]:
    """Request windows every 10 s over [start, end), splitting the totals evenly."""
    starts = list(range(start, end, 10))
    n = len(starts)
    return [
        RequestWindow("GET /products", s, 10, 0, total_ms / n, 50.0, db_ms / n, 20) for s in starts
    ]


def _statements(start: int, end: int, total_ms: float) -> list[StatementWindow]:
    starts = list(range(start, end, 10))
    return [
        StatementWindow(
            "fp1", "select * from orders where id = ?", s, 10, total_ms / len(starts), 5
        )
        for s in starts
    ]


def _wait_for(probe: Callable[[], dict[str, Any]], ok: Callable[[dict[str, Any]], bool]) -> Any:
    deadline = time.monotonic() + 10
    while True:
        snap = probe()
        if ok(snap) or time.monotonic() > deadline:
            return snap
        time.sleep(0.1)


# -- triage ---------------------------------------------------------------------------------------


def test_db_bound_requests_make_the_database_the_bottleneck(store: SqlStore) -> None:
    store.write_requests(_requests(*BEFORE, total_ms=10_000, db_ms=2_300))
    store.write_requests(_requests(*AFTER, total_ms=100_000, db_ms=91_000))
    result = triage(store, before=BEFORE, after=AFTER, health=None)
    assert result.database_is_bottleneck is True
    assert result.db_share_before == pytest.approx(0.23)
    assert result.db_share_after == pytest.approx(0.91)
    assert result.verdict == (
        "The database is the bottleneck: requests spent 91% of their time in it after the "
        "deploy (was 23%)."
    )


def test_a_doubled_share_below_half_is_still_the_bottleneck(store: SqlStore) -> None:
    store.write_requests(_requests(*BEFORE, total_ms=10_000, db_ms=1_000))
    store.write_requests(_requests(*AFTER, total_ms=10_000, db_ms=4_000))
    result = triage(store, before=BEFORE, after=AFTER, health=None, event="release 2.4")
    assert result.database_is_bottleneck is True
    assert "40% of their time in it after release 2.4 (was 10%)" in result.verdict


def test_app_bound_requests_do_not_blame_the_database(store: SqlStore) -> None:
    store.write_requests(_requests(*BEFORE, total_ms=10_000, db_ms=700))
    store.write_requests(_requests(*AFTER, total_ms=50_000, db_ms=4_000))
    result = triage(store, before=BEFORE, after=AFTER, health=sqlite_health())
    assert result.database_is_bottleneck is False
    assert result.verdict == (
        "The database is not the bottleneck: requests spent 8% of their time in it (was 7%); "
        "look at the application or the hosts."
    )
    assert result.health["reason"] == SQLITE_UNAVAILABLE


def test_requests_queueing_for_a_busy_database_still_blame_it(store: SqlStore) -> None:
    """The outage's shape: the share falls (requests wait outside the database) while the
    database works sixteen times as hard."""
    store.write_requests(_requests(*BEFORE, total_ms=10_000, db_ms=5_500))
    store.write_requests(_requests(*AFTER, total_ms=3_000_000, db_ms=960_000))
    store.write_windows(_statements(*BEFORE, total_ms=60_000))  # 200 ms/s
    store.write_windows(_statements(*AFTER, total_ms=960_000))  # 3.2 s/s
    result = triage(store, before=BEFORE, after=AFTER, health=sqlite_health())
    assert result.database_is_bottleneck is True
    assert result.verdict.startswith(
        "The database is the bottleneck: it worked 3.20 s per second after the deploy "
        "(was 200 ms) while requests spent 32% of their time in it (was 55%)"
    )


def test_statement_statistics_only_compare_database_time_per_second(store: SqlStore) -> None:
    store.write_windows(_statements(*BEFORE, total_ms=60_000))  # 200 ms/s
    store.write_windows(_statements(*AFTER, total_ms=960_000))  # 3.2 s/s
    result = triage(store, before=BEFORE, after=AFTER, health=None)
    assert result.database_is_bottleneck is True
    assert result.db_share_before is None and result.db_share_after is None
    assert "it worked 3.20 s per second after the deploy (was 200 ms)" in result.verdict
    assert "no request timings from the middleware" in result.verdict

    calm = triage(store, before=BEFORE, after=BEFORE, health=None)
    assert calm.database_is_bottleneck is False
    assert calm.verdict.startswith("The database does not look like the bottleneck")
    assert "no request timings from the middleware" in calm.verdict


def test_rates_are_per_second_of_data_not_of_the_range_asked_for(store: SqlStore) -> None:
    """The pgbench trial: the agent started a minute before the deploy, so the half hour asked
    for as "before" held one minute of data at 34 ms/s. Divided by the half hour, that read as
    "was 1 ms" beside 1.66 s/s after."""
    deploy = T0 + 1800
    store.write_windows(_statements(deploy - 60, deploy, total_ms=34 * 60))  # 34 ms/s
    store.write_windows(_statements(deploy, deploy + 60, total_ms=1660 * 60))  # 1.66 s/s
    result = triage(store, before=(deploy - 1800, deploy), after=(deploy, deploy + 60), health=None)
    assert "it worked 1.66 s per second after the deploy (was 34 ms)" in result.verdict
    # The unfinished window at the end of "after" counts for the seconds that have elapsed.
    store.write_windows(_statements(deploy + 60, deploy + 70, total_ms=1660 * 5))
    partial = triage(
        store, before=(deploy - 1800, deploy), after=(deploy, deploy + 65), health=None
    )
    assert "it worked 1.66 s per second after the deploy (was 34 ms)" in partial.verdict


def test_no_data_at_all_says_it_cannot_tell(store: SqlStore) -> None:
    result = triage(store, before=BEFORE, after=AFTER, health=None)
    assert result.database_is_bottleneck is None
    assert result.verdict.startswith("Cannot tell")


@pytest.mark.postgres
def test_verdict_carries_live_server_figures(store: SqlStore, pg_dsn: str) -> None:
    store.write_requests(_requests(*BEFORE, total_ms=10_000, db_ms=2_300))
    store.write_requests(_requests(*AFTER, total_ms=100_000, db_ms=91_000))
    health = health_snapshot(pg_dsn)
    result = triage(store, before=BEFORE, after=AFTER, health=health)
    assert result.database_is_bottleneck is True
    assert "sessions active, 0 waiting on locks" in result.verdict
    assert result.health == health
    json.dumps(result.health)  # JSON-able, as the web API and incidents keep it


@pytest.mark.postgres
def test_sessions_queueing_on_locks_make_the_database_the_bottleneck(
    store: SqlStore, pg_dsn: str
) -> None:
    store.write_requests(_requests(*BEFORE, total_ms=10_000, db_ms=1_000))
    store.write_requests(_requests(*AFTER, total_ms=10_000, db_ms=1_500))
    with psycopg.connect(pg_dsn, autocommit=True) as setup:
        setup.execute("CREATE TABLE stock (id int PRIMARY KEY, n int)")
        setup.execute("INSERT INTO stock VALUES (1, 10)")
    with _row_locked(pg_dsn, waiters=3):
        health = _wait_for(
            lambda: health_snapshot(pg_dsn), lambda s: s["lock_waits"]["waiting"] >= 3
        )
        result = triage(store, before=BEFORE, after=AFTER, health=health)
        health_only = triage(store, before=(0, 10), after=(0, 10), health=health)
    assert result.database_is_bottleneck is True
    assert "15% of their time in it after the deploy (was 10%)" in result.verdict
    assert ", 3 waiting on locks" in result.verdict
    assert result.verdict.endswith("(sessions are queueing on locks).")
    assert health_only.database_is_bottleneck is True
    assert health_only.verdict.startswith(
        "The database is the bottleneck judging by server health alone: "
    )


@contextlib.contextmanager
def _row_locked(dsn: str, waiters: int) -> Iterator[None]:
    """Hold the row lock on stock id 1 while ``waiters`` sessions queue for it."""
    holder = psycopg.connect(dsn)
    holder.execute("UPDATE stock SET n = 0 WHERE id = 1")

    def wait() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("UPDATE stock SET n = n - 1 WHERE id = 1")

    threads = [threading.Thread(target=wait) for _ in range(waiters)]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        holder.rollback()
        holder.close()
        for t in threads:
            t.join(10)


def test_health_alone_without_statistics_or_requests(store: SqlStore) -> None:
    result = triage(store, before=BEFORE, after=AFTER, health=sqlite_health())
    assert result.database_is_bottleneck is None  # SQLite: no server figures either


# -- the health snapshot --------------------------------------------------------------------------


@pytest.mark.postgres
def test_snapshot_shows_a_session_waiting_on_a_row_lock_and_its_blocker(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as setup:
        setup.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance int)")
        setup.execute("INSERT INTO accounts VALUES (1, 100)")
    holder = psycopg.connect(pg_dsn)
    holder.execute("UPDATE accounts SET balance = 0 WHERE id = 1")  # transaction stays open
    blocker_pid = holder.info.backend_pid

    def wait_on_lock() -> None:
        with psycopg.connect(pg_dsn, autocommit=True) as waiter:
            waiter.execute("UPDATE accounts SET balance = 918273645 WHERE id = 1")

    thread = threading.Thread(target=wait_on_lock)
    thread.start()
    try:
        snap = _wait_for(lambda: health_snapshot(pg_dsn), lambda s: s["lock_waits"]["waiting"] >= 1)
    finally:
        holder.rollback()
        holder.close()
        thread.join(10)
    waits = snap["lock_waits"]
    assert waits["waiting"] >= 1
    waiting = waits["sessions"][0]
    assert waiting["blocked_by"] == [blocker_pid]
    assert waiting["query"] == "update accounts set balance = ? where id = ?"
    assert [b["pid"] for b in waits["blockers"]] == [blocker_pid]
    assert waits["blockers"][0]["state"] == "idle in transaction"
    assert snap["connections"]["by_state"]["active"] >= 1
    assert "918273645" not in json.dumps(waits)  # no literal value leaves unredacted


@pytest.mark.postgres
def test_long_statement_is_listed_normalized(pg_dsn: str) -> None:
    def sleep() -> None:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_sleep(3)")

    thread = threading.Thread(target=sleep)
    thread.start()
    try:
        snap = _wait_for(
            lambda: health_snapshot(pg_dsn),
            lambda s: any(r["duration_s"] >= 0.5 for r in s["longest_running"]),
        )
    finally:
        thread.join(10)
    longest = snap["longest_running"]
    assert longest, snap
    top = longest[0]
    assert top["query"] == "select pg_sleep(?)"
    assert top["state"] == "active"
    assert top["duration_s"] >= 0.5
    assert len(top["fingerprint"]) == 16
    assert top["wait_event"] == "Timeout:PgSleep"


@pytest.mark.postgres
def test_cache_hit_ratio_and_counters(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g")
        for _ in range(5):
            conn.execute("SELECT count(*) FROM t").fetchone()
    snap = health_snapshot(pg_dsn)  # the closed session flushed its statistics on exit
    assert snap["available"] is True and snap["engine"] == "postgres"
    ratio = snap["cache_hit_ratio"]
    assert ratio is not None and 0.0 <= ratio <= 1.0
    assert set(snap["counters"]) == {
        "deadlocks",
        "temp_files",
        "temp_bytes",
        "xact_commit",
        "xact_rollback",
    }
    assert snap["connections"]["max"] == 100
    assert snap["lock_waits"] == {"waiting": 0, "sessions": [], "blockers": []}


def test_unreachable_server_is_one_clear_line() -> None:
    dsn = f"postgresql://postgres:s3cret@127.0.0.1:{free_port()}/postgres"
    with pytest.raises(DatabaseUnavailable) as exc:
        health_snapshot(dsn)
    message = str(exc.value)
    assert "\n" not in message and "s3cret" not in message
    assert message.startswith("cannot connect to")


def test_sqlite_has_no_server_to_inspect() -> None:
    health = sqlite_health()
    assert health["available"] is False
    assert "not available for SQLite" in health["reason"]
