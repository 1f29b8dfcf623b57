"""The pg_stat_statements source against a real PostgreSQL: exact counts, resets, restarts, errors.

Restart and "extension not loaded" scenarios run on private clusters so the session cluster that
every other test shares is never restarted.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import pg_cluster
from pg_cluster import free_port, running_cluster
from querywatch import pg
from querywatch.capture.base import Source
from querywatch.capture.pg_stat_statements import PRELOAD_FIX, PgStatStatementsSource
from querywatch.capture.pgss_counters import (
    Counters,
    counters_sql,
    decode_entries,
    encode_entries,
    entry_delta,
    key_of,
    key_parts,
    map_columns,
    pack,
    unpack,
)
from querywatch.errors import DatabaseUnavailable, ExtensionMissing
from querywatch.records import StatementWindow, window_start
from querywatch.sql import fingerprint

# -- column mapping per PostgreSQL version (the real column lists of each release) -----------------

_PG12 = """userid dbid queryid query calls total_time min_time max_time mean_time stddev_time rows
shared_blks_hit shared_blks_read shared_blks_dirtied shared_blks_written local_blks_hit
local_blks_read local_blks_dirtied local_blks_written temp_blks_read temp_blks_written
blk_read_time blk_write_time"""
_PG13 = """userid dbid queryid query plans total_plan_time min_plan_time max_plan_time
mean_plan_time stddev_plan_time calls total_exec_time min_exec_time max_exec_time mean_exec_time
stddev_exec_time rows shared_blks_hit shared_blks_read shared_blks_dirtied shared_blks_written
local_blks_hit local_blks_read local_blks_dirtied local_blks_written temp_blks_read
temp_blks_written blk_read_time blk_write_time wal_records wal_fpi wal_bytes"""
_PG14 = _PG13.replace("dbid queryid", "dbid toplevel queryid")
_PG15 = (
    _PG14.replace("blk_write_time", "blk_write_time temp_blk_read_time temp_blk_write_time")
    + """
jit_functions jit_generation_time jit_inlining_count jit_inlining_time jit_optimization_count
jit_optimization_time jit_emission_count jit_emission_time"""
)
_PG16 = _PG15
_PG17 = """userid dbid toplevel queryid query plans total_plan_time min_plan_time max_plan_time
mean_plan_time stddev_plan_time calls total_exec_time min_exec_time max_exec_time mean_exec_time
stddev_exec_time rows shared_blks_hit shared_blks_read shared_blks_dirtied shared_blks_written
local_blks_hit local_blks_read local_blks_dirtied local_blks_written temp_blks_read
temp_blks_written shared_blk_read_time shared_blk_write_time local_blk_read_time
local_blk_write_time temp_blk_read_time temp_blk_write_time wal_records wal_fpi wal_bytes
jit_functions jit_generation_time jit_inlining_count jit_inlining_time jit_optimization_count
jit_optimization_time jit_emission_count jit_emission_time jit_deform_count jit_deform_time
stats_since minmax_stats_since"""


@pytest.mark.parametrize(
    ("columns", "total", "blk", "toplevel", "since"),
    [
        (_PG12, "total_time", "blk_read_time", False, False),
        (_PG13, "total_exec_time", "blk_read_time", False, False),
        (_PG14, "total_exec_time", "blk_read_time", True, False),
        (_PG15, "total_exec_time", "blk_read_time", True, False),
        (_PG16, "total_exec_time", "blk_read_time", True, False),
        (_PG17, "total_exec_time", "shared_blk_read_time", True, True),
    ],
    ids=["pg12", "pg13", "pg14", "pg15", "pg16", "pg17"],
)
def test_column_mapping_per_version(
    columns: str, total: str, blk: str, toplevel: bool, since: bool
) -> None:
    cmap = map_columns(columns.split())
    assert cmap.total_time == total
    assert cmap.max_time == total.replace("total", "max")
    assert cmap.min_time == total.replace("total", "min")
    assert cmap.blk_read_time == blk
    assert cmap.toplevel is toplevel
    assert cmap.stats_since is since and cmap.minmax_stats_since is since
    sql = counters_sql("my schema", cmap)
    assert sql.startswith(pg.TAG)
    assert '"my schema".pg_stat_statements(false)' in sql
    assert ("toplevel," in sql) is toplevel
    assert f" {total}," in sql
    assert blk not in sql  # no delta is made of it: not read on every poll
    assert ("stats_since::text" in sql) is since


def test_column_mapping_rejects_an_unknown_layout() -> None:
    with pytest.raises(Exception, match="unsupported pg_stat_statements version"):
        map_columns(["userid", "dbid", "queryid", "calls"])


def test_pg15_mapping_matches_the_live_view(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        cols = [
            r[0]
            for r in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = 'pg_stat_statements'::regclass "
                "AND attnum > 0 ORDER BY attnum"
            )
        ]
    assert cols == _PG15.split()


# -- delta arithmetic ----------------------------------------------------------------------------


def _c(calls: int, total: float, lo: float, hi: float, rows: int = 0) -> Counters:
    return Counters(calls, total, lo, hi, rows, 0, 0)


def test_delta_of_a_new_entry_is_its_counters() -> None:
    d = entry_delta(_c(4, 10.0, 1.0, 5.0, 4), None)
    assert d is not None and (d.calls, d.total_ms, d.min_ms, d.max_ms, d.rows) == (
        4,
        10.0,
        1.0,
        5.0,
        4,
    )


def test_delta_going_backwards_is_a_new_baseline_never_negative() -> None:
    d = entry_delta(_c(3, 2.0, 0.5, 1.0, 3), _c(10, 50.0, 0.1, 9.0, 10))
    assert d is not None and (d.calls, d.total_ms, d.rows) == (3, 2.0, 3)


def test_delta_min_max_use_cumulative_values_only_when_they_moved() -> None:
    moved = entry_delta(_c(14, 60.0, 0.1, 20.0), _c(10, 20.0, 0.5, 9.0))
    assert moved is not None and (moved.min_ms, moved.max_ms) == (0.1, 20.0)
    still = entry_delta(_c(14, 28.0, 0.5, 9.0), _c(10, 20.0, 0.5, 9.0))
    assert still is not None and (still.min_ms, still.max_ms) == (2.0, 2.0)  # the interval mean
    assert entry_delta(_c(10, 20.0, 0.5, 9.0), _c(10, 20.0, 0.5, 9.0)) is None


@pytest.mark.parametrize("queryid", [0, 1, -1, 2**63 - 1, -(2**63), 7_364_151_237_488_112])
@pytest.mark.parametrize("userid", [10, 16_384, 2**32 - 1])
@pytest.mark.parametrize("toplevel", [None, False, True])
def test_an_entry_key_packs_and_unpacks_exactly(
    queryid: int, userid: int, toplevel: bool | None
) -> None:
    key = key_of(userid, queryid, toplevel)
    assert key_parts(key) == (userid, queryid, toplevel)
    others = {key_of(userid, queryid, t) for t in (None, False, True)}
    assert len(others) == 3  # toplevel and nested runs of one statement stay apart


@pytest.mark.parametrize(
    "raw",
    [
        (3, 1.5, 0.1, 2.0000000001, 4, 5, 6, None, None),
        (1, 1e-07, 3.0, 12345678.123, 0, 0, 0, "2026-12-05 10:00:00.5+00", None),
        (2**40, 0.0, 0.0, 0.0, 0, 2**33, 1, None, '2026-12-05 "odd"'),
    ],
)
def test_a_state_entry_keeps_every_value_exactly(raw: tuple[object, ...]) -> None:
    entries = [
        (key_of(16_384, -123_456_789_012_345, True), pack(raw)),
        (key_of(2**32 - 1, 2**63 - 1, None), pack(raw)),
        (key_of(10, -(2**63), False), pack((1, 0.5, 0.1, 0.9, 3, 4, 5, None, None))),
    ]
    assert unpack(pack(raw)) == raw  # the record keeps every value exactly
    assert list(decode_entries(encode_entries(iter(entries)))) == entries


def test_state_entries_that_are_cut_or_foreign_are_refused() -> None:
    text = encode_entries([(key_of(1, 2, None), pack((1, 0.5, 0.1, 0.9, 3, 4, 5, None, None)))])
    assert list(decode_entries(encode_entries([]))) == []
    packed = zlib.decompress(base64.b64decode(text))
    cut = base64.b64encode(zlib.compress(packed[:-3])).decode()
    for bad in (cut, "not base64!", base64.b64encode(b"plain").decode()):
        with pytest.raises(ValueError):
            list(decode_entries(bad))


# -- the workload --------------------------------------------------------------------------------

A = "SELECT name, qty FROM items WHERE id = {}"
B = "UPDATE items SET qty = qty + 1 WHERE id = {}"
IN_LISTS = [
    "SELECT id FROM items WHERE id IN (1, 2)",
    "SELECT id FROM items WHERE id IN (3, 4, 5)",
    "SELECT id FROM items WHERE id IN (6, 7, 8, 9)",
]
FP_A = fingerprint(A.format(7), "postgres").id
FP_B = fingerprint(B.format(7), "postgres").id
FP_IN = fingerprint(IN_LISTS[0], "postgres").id


def setup_items(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text, qty int)")
        conn.execute("INSERT INTO items SELECT g, 'item ' || g, 0 FROM generate_series(1, 100) g")


def run_a(dsn: str, n: int) -> None:
    """Statement A ``n`` times: alternately with the literal inlined and as a bound parameter."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(n):
            if i % 2:
                conn.execute(A.format("%s"), (i + 1,))
            else:
                conn.execute(A.format(i + 1)).fetchall()


def run_workload(dsn: str) -> None:
    run_a(dsn, 17)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(5):
            conn.execute(B.format("%s"), (i + 1,))
        for sql in IN_LISTS:
            conn.execute(sql).fetchall()


def by_fp(windows: list[StatementWindow]) -> dict[str, StatementWindow]:
    fps = [w.fingerprint for w in windows]
    assert len(fps) == len(set(fps)), "one window per fingerprint per poll"
    for w in windows:
        assert w.calls > 0 and w.total_ms >= 0 and w.rows >= 0 and w.max_ms >= 0
        assert w.shared_blks_hit >= 0 and w.shared_blks_read >= 0
    return {w.fingerprint: w for w in windows}


def calls_of(windows: list[StatementWindow], fp: str) -> int:
    w = by_fp(windows).get(fp)
    return w.calls if w else 0


@pytest.fixture
def app_dsn(pg_dsn: str) -> str:
    setup_items(pg_dsn)
    return pg_dsn


@pytest.fixture
def source(app_dsn: str) -> Iterator[PgStatStatementsSource]:
    src = PgStatStatementsSource(app_dsn)
    yield src
    src.close()


def test_is_a_source(source: PgStatStatementsSource) -> None:
    assert isinstance(source, Source)
    assert source.name == "pg_stat_statements"


def test_workload_counts_are_exact_per_fingerprint(
    app_dsn: str, source: PgStatStatementsSource
) -> None:
    assert source.poll(time.time()) == []  # the first poll is the baseline
    run_workload(app_dsn)
    now = time.time()
    got = by_fp(source.poll(now))
    a, b, in_list = got[FP_A], got[FP_B], got[FP_IN]
    assert (a.calls, a.rows) == (17, 17)
    assert (b.calls, b.rows) == (5, 5)
    assert (in_list.calls, in_list.rows) == (3, 2 + 3 + 4)
    for w in (a, b, in_list):
        assert w.total_ms > 0
        assert w.min_ms is not None and 0 <= w.min_ms <= w.mean_ms <= w.max_ms
        assert w.window_start == window_start(now)
        assert w.source == "pg_stat_statements" and w.dialect == "postgres" and w.sketch is None
    # the pgss entry's text and the literal SQL the app sent have the same fingerprint
    assert a.normalized == fingerprint(A.format(123), "postgres").normalized
    with psycopg.connect(app_dsn) as conn:
        texts = [
            r[0]
            for r in conn.execute(
                "SELECT query FROM pg_stat_statements WHERE query LIKE 'SELECT name, qty%'"
            )
        ]
    assert len(texts) == 2  # literal and bound-parameter forms are two pgss entries ...
    assert {fingerprint(t, "postgres").id for t in texts} == {FP_A}  # ... of one fingerprint
    again = by_fp(source.poll(time.time()))  # only the test's own pgss query happened since
    assert FP_A not in again and FP_B not in again and FP_IN not in again


def test_own_queries_are_excluded(app_dsn: str, source: PgStatStatementsSource) -> None:
    for _ in range(4):
        assert source.poll(time.time()) == []
    with psycopg.connect(app_dsn) as conn:
        ours = conn.execute(
            "SELECT count(*) FROM pg_stat_statements WHERE query LIKE %s", [f"%{pg.TAG}%"]
        ).fetchone()
    assert ours is not None and ours[0] > 0  # pgss does see them; the source drops them


def test_reset_between_polls_counts_post_reset_calls(
    app_dsn: str, source: PgStatStatementsSource
) -> None:
    source.poll(time.time())
    run_a(app_dsn, 6)
    with psycopg.connect(app_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
    run_a(app_dsn, 4)
    windows = source.poll(time.time())
    assert calls_of(windows, FP_A) == 4
    run_a(app_dsn, 2)
    assert calls_of(source.poll(time.time()), FP_A) == 2


def _reset_entries_of(dsn: str, like: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_stat_statements_reset(userid, dbid, queryid) FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND query LIKE %s",
            [like],
        ).fetchall()
    return len(rows)


def test_evicted_entry_is_a_new_baseline(app_dsn: str, source: PgStatStatementsSource) -> None:
    source.poll(time.time())
    run_a(app_dsn, 9)
    assert calls_of(source.poll(time.time()), FP_A) == 9
    assert _reset_entries_of(app_dsn, "SELECT name, qty%") == 2  # the entries go backwards
    run_a(app_dsn, 3)
    assert calls_of(source.poll(time.time()), FP_A) == 3
    # vanished for a whole poll, then back: counted from zero, not against the old counters
    assert _reset_entries_of(app_dsn, "SELECT name, qty%") == 2
    assert calls_of(source.poll(time.time()), FP_A) == 0
    run_a(app_dsn, 5)
    assert calls_of(source.poll(time.time()), FP_A) == 5


def test_state_restore_across_pollers_is_exact(app_dsn: str) -> None:
    first = PgStatStatementsSource(app_dsn)
    first.poll(time.time())
    run_a(app_dsn, 4)
    assert calls_of(first.poll(time.time()), FP_A) == 4
    state = first.snapshot_state()
    first.close()
    json.loads(state)
    run_a(app_dsn, 6)  # while the agent is down
    second = PgStatStatementsSource(app_dsn)
    second.restore_state(state)
    assert second.snapshot_state() == state
    try:
        assert calls_of(second.poll(time.time()), FP_A) == 6
        run_a(app_dsn, 1)
        assert calls_of(second.poll(time.time()), FP_A) == 1
    finally:
        second.close()


@pytest.mark.parametrize("version", [1, 2])
def test_state_written_by_a_previous_version_resumes_exactly(app_dsn: str, version: int) -> None:
    """An agent upgraded across the state format neither loses nor repeats an interval."""
    first = PgStatStatementsSource(app_dsn)
    first.poll(time.time())
    run_a(app_dsn, 2)
    first.poll(time.time())
    now = json.loads(first.snapshot_state())
    first.close()
    dbid = now["database"][1]
    # Versions 1 and 2 listed each entry as a JSON array: version 2 [userid, queryid, toplevel,
    # 7 counters, 2 stamps]; version 1 [userid, dbid, queryid, toplevel, 7 counters,
    # blk_read_ms, 2 stamps].
    listed = [[*key_parts(key), *unpack(raw)] for key, raw in decode_entries(now["entries"])]
    if version == 1:
        listed = [[e[0], dbid, e[1], e[2], *e[3:10], 0.0, *e[10:12]] for e in listed]
    old = dict(now, version=version, entries=listed)
    run_a(app_dsn, 5)
    second = PgStatStatementsSource(app_dsn)
    second.restore_state(json.dumps(old))
    try:
        assert calls_of(second.poll(time.time()), FP_A) == 5
    finally:
        second.close()


def _text_reads(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT COALESCE(SUM(calls), 0) FROM pg_stat_statements "
            "WHERE query LIKE %s AND query LIKE %s",
            [f"%{pg.TAG}%", "%queryid = ANY(%"],
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_query_texts_are_read_only_for_entries_not_seen_before(
    app_dsn: str, source: PgStatStatementsSource
) -> None:
    """Reading texts makes the server read its whole query-text file: once per new entry."""
    source.poll(time.time())
    run_workload(app_dsn)
    assert calls_of(source.poll(time.time()), FP_A) == 17
    reads = _text_reads(app_dsn)
    assert reads >= 1
    for _ in range(3):
        run_workload(app_dsn)  # the same entries, changing
        assert calls_of(source.poll(time.time()), FP_A) == 17
    # One more read, for the one entry that is new since: this test's own _text_reads query.
    assert _text_reads(app_dsn) == reads + 1


def test_state_of_another_database_or_garbage_starts_a_baseline(
    app_dsn: str, pg_server: str
) -> None:
    other = PgStatStatementsSource(pg_server)
    other.poll(time.time())
    state = other.snapshot_state()
    other.close()
    src = PgStatStatementsSource(app_dsn)
    try:
        src.restore_state(state)
        assert src.poll(time.time()) == []
        assert any("starting a new baseline" in note for note in src.notes)
        src.restore_state("{not json")
        assert src.poll(time.time()) == []
        run_a(app_dsn, 2)
        assert calls_of(src.poll(time.time()), FP_A) == 2
    finally:
        src.close()


def test_terminated_backend_reconnects_transparently(
    app_dsn: str, source: PgStatStatementsSource
) -> None:
    source.poll(time.time())
    run_a(app_dsn, 3)
    with psycopg.connect(app_dsn, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'querywatch'"
        ).fetchall()
    assert killed
    assert calls_of(source.poll(time.time()), FP_A) == 3


def test_unreachable_server_is_one_redacted_line() -> None:
    src = PgStatStatementsSource(
        f"postgresql://qw:pa55word@127.0.0.1:{free_port()}/app", connect_timeout_s=2
    )
    with pytest.raises(DatabaseUnavailable) as exc:
        src.poll(time.time())
    message = str(exc.value)
    assert "\n" not in message and "pa55word" not in message and "qw:***@" in message
    assert "connection refused" in message


def test_extension_not_created(pg_server: str) -> None:
    name = f"qw_noext_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        src = PgStatStatementsSource(pg_server.rsplit("/", 1)[0] + f"/{name}")
        with pytest.raises(ExtensionMissing) as exc:
            src.poll(time.time())
        assert str(exc.value) == (
            f"pg_stat_statements is not installed: run CREATE EXTENSION pg_stat_statements; "
            f"in database {name}"
        )
        src.close()
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_other_users_entries_hidden_without_pg_read_all_stats(app_dsn: str) -> None:
    role = f"qw_low_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(app_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
    low_dsn = app_dsn.replace("postgres@", f"{role}@", 1)
    src = PgStatStatementsSource(low_dsn)
    try:
        src.poll(time.time())
        run_a(app_dsn, 2)  # as postgres: invisible to the low-privileged role
        assert calls_of(src.poll(time.time()), FP_A) == 0
        assert any(f"GRANT pg_read_all_stats TO {role}" in n for n in src.notes)
        with psycopg.connect(app_dsn, autocommit=True) as conn:
            conn.execute(f"GRANT pg_read_all_stats TO {role}")
        src.poll(time.time())  # hidden entries become visible: new to us, new baseline entries
        run_a(app_dsn, 3)
        assert calls_of(src.poll(time.time()), FP_A) == 3
        assert src.notes == []
    finally:
        src.close()
        with psycopg.connect(app_dsn, autocommit=True) as conn:
            conn.execute(f"DROP ROLE {role}")


# -- private clusters: restarts, a stopped server, the library not preloaded ---------------------


def _pg_ctl_dir(data: str, *args: str) -> None:
    cmd = [str(pg_cluster.find_bindir() / "pg_ctl"), "-D", data, "-w", *args]
    subprocess.run(pg_cluster._as_server_user(cmd), check=True, capture_output=True)


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[str]:
    """A private cluster (pg_stat_statements preloaded) that these tests may restart and stop."""
    with running_cluster() as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE DATABASE app")
        app = dsn.rsplit("/", 1)[0] + "/app"
        with psycopg.connect(app, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
        setup_items(app)
        yield app


def _crash(dsn: str) -> None:
    """SIGKILL one backend: the postmaster kills the rest and reinitialises shared memory."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        with contextlib.suppress(psycopg.Error):
            os.kill(row[0], signal.SIGKILL)
            conn.execute("SELECT 1")
    deadline = time.monotonic() + 60
    while True:
        try:
            with psycopg.connect(dsn, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.parametrize("mode", ["fast", "immediate", "crash"])
def test_counts_stay_exact_across_a_server_restart(own_cluster: str, mode: str) -> None:
    src = PgStatStatementsSource(own_cluster)
    try:
        src.poll(time.time())
        run_a(own_cluster, 4)
        assert calls_of(src.poll(time.time()), FP_A) == 4
        run_a(own_cluster, 2)
        with psycopg.connect(own_cluster) as conn:
            before = conn.execute("SELECT stats_reset FROM pg_stat_statements_info").fetchone()
        if mode == "crash":
            _crash(own_cluster)
        else:
            pg_cluster.restart(own_cluster, mode)
        with psycopg.connect(own_cluster) as conn:
            after = conn.execute("SELECT stats_reset FROM pg_stat_statements_info").fetchone()
        run_a(own_cluster, 3)
        windows = src.poll(time.time())  # the dead connection is replaced within the poll
        if mode == "crash":
            # shared memory was reinitialised: counters restart from zero (stats_reset moves);
            # the 2 calls made before the crash are gone from the server, the 3 after are exact
            assert after != before
            assert calls_of(windows, FP_A) == 3
        else:
            # pg_stat_statements saves its counters when the postmaster shuts down: nothing lost
            assert after == before
            assert calls_of(windows, FP_A) == 5
    finally:
        src.close()


def test_stopped_server_then_back(own_cluster: str) -> None:
    src = PgStatStatementsSource(
        own_cluster.replace("postgres@", "postgres:pw-never-shown@"), connect_timeout_s=2
    )
    with psycopg.connect(own_cluster) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    assert row is not None
    data = row[0]
    try:
        src.poll(time.time())
        run_a(own_cluster, 5)
        _pg_ctl_dir(data, "-m", "fast", "stop")
        try:
            for _ in range(2):
                with pytest.raises(DatabaseUnavailable) as exc:
                    src.poll(time.time())
                message = str(exc.value)
                assert "\n" not in message and "pw-never-shown" not in message
                assert "postgres:***@127.0.0.1" in message
        finally:
            _pg_ctl_dir(data, "-l", str(Path(data).parent / "log"), "start")
        run_a(own_cluster, 1)
        assert calls_of(src.poll(time.time()), FP_A) == 6  # neither lost nor doubled
    finally:
        src.close()


def test_library_not_preloaded() -> None:
    with running_cluster() as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute("SHOW config_file").fetchone()
        assert row is not None
        with open(row[0], "a") as conf:  # the last setting wins
            conf.write("shared_preload_libraries = ''\n")
        pg_cluster.restart(dsn, "fast")
        src = PgStatStatementsSource(dsn)
        with pytest.raises(ExtensionMissing) as exc:
            src.poll(time.time())
        message = str(exc.value)
        assert message.startswith(PRELOAD_FIX)
        assert "shared_preload_libraries = 'pg_stat_statements'" in message
        assert message.endswith(
            "then run CREATE EXTENSION pg_stat_statements; in database postgres"
        )
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
            conn.execute("CREATE ROLE qw_low LOGIN")
        with pytest.raises(ExtensionMissing, match=r"^pg_stat_statements is not loaded: add it"):
            src.poll(time.time())
        # a role that may not read shared_preload_libraries still gets the right fix
        low = PgStatStatementsSource(dsn.replace("postgres@", "qw_low@", 1))
        with pytest.raises(ExtensionMissing) as exc:
            low.poll(time.time())
        assert str(exc.value) == PRELOAD_FIX
        src.close()
        low.close()
