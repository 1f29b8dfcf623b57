"""The store, on both backends: one module, run against a SQLite file and a real PostgreSQL."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from cli_helpers import assert_one_line_error
from pg_cluster import free_port
from querywatch.errors import NotFound, StoreError
from querywatch.incidents.model import Incident, TimelineEvent
from querywatch.incidents.repository import (
    add_event,
    create_incident,
    list_incidents,
    load_incident,
    save_incident,
    set_status,
    update_incident,
)
from querywatch.records import (
    CallSite,
    DeployMarker,
    RepeatWindow,
    RequestWindow,
    StatementWindow,
)
from querywatch.sketch import LatencySketch
from querywatch.store import Retention, SqlStore, open_store
from querywatch.store.base import MAX_CALL_SITES
from querywatch.store.migrations import LATEST, READABLE_FROM
from querywatch.store.postgres import PostgresStore
from querywatch.store.sqlite import SqliteStore

T0 = 28_333_334 * 60  # a whole minute, late 2023
DAY = 24 * 3600


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "nested" / "store.sqlite3")
    return str(request.getfixturevalue("pg_dsn"))


@pytest.fixture
def store(location: str) -> Iterator[SqlStore]:
    with open_store(location) as s:
        yield s


def execute(location: str, sql: str) -> None:
    """Run SQL on the store's database behind querywatch's back (to fake an older/newer store)."""
    if location.startswith("postgresql://"):
        with psycopg.connect(location, autocommit=True) as pg:
            pg.execute("SET search_path = querywatch")
            pg.execute(sql.encode())
    else:
        with sqlite3.connect(location) as lite:
            lite.execute(sql)
        lite.close()


def sketch_of(*values: float) -> LatencySketch:
    sketch = LatencySketch()
    for v in values:
        sketch.add(v)
    return sketch


def window(
    fp: str = "fp1",
    start: int = T0,
    calls: int = 1,
    total: float = 1.0,
    mx: float | None = None,
    **kw: object,
) -> StatementWindow:
    return StatementWindow(
        fp,
        f"SELECT * FROM {fp} WHERE id = $1",
        start,
        calls,
        total,
        total if mx is None else mx,
        **kw,
    )  # type: ignore[arg-type]


def deploy(id: str = "d1", started_at: float = T0 + 0.5, **kw: object) -> DeployMarker:
    fields: dict[str, object] = dict(version="v1", commit="abc123", environment="prod")
    fields.update(kw)
    return DeployMarker(id, started_at=started_at, **fields)  # type: ignore[arg-type]


def request(route: str = "GET /cart", start: int = T0, **kw: object) -> RequestWindow:
    fields: dict[str, object] = dict(requests=1, errors=0, total_ms=10.0, max_ms=10.0, db_ms=4.0)
    fields.update(kw)
    return RequestWindow(route, start, **fields)  # type: ignore[arg-type]


# -- opening ------------------------------------------------------------------------------------


def test_open_store_picks_the_backend_from_the_location(location: str, store: SqlStore) -> None:
    expected = PostgresStore if location.startswith("postgresql://") else SqliteStore
    assert isinstance(store, expected)
    if expected is SqliteStore:
        assert Path(location).is_file()  # parent directories were created


@pytest.mark.postgres
def test_a_bounded_page_cache_keeps_what_is_stored(tmp_path: Path) -> None:
    """The agent opens its SQLite store with a small page cache: reads and writes are the same."""
    path = tmp_path / "s.sqlite3"
    small = open_store(path, cache_kib=256)
    try:
        assert isinstance(small, SqliteStore)
        assert small._conn.execute("PRAGMA cache_size").fetchone() == (-256,)
        small.set_state("k", "v" * 100_000)  # overflow pages beyond the cache
        assert small.get_state("k") == "v" * 100_000
    finally:
        small.close()
    default = open_store(path)
    try:
        assert default.get_state("k") == "v" * 100_000
    finally:
        default.close()


def test_a_libpq_key_value_dsn_opens_the_postgres_store(pg_dsn: str) -> None:
    with open_store(make_conninfo("", **conninfo_to_dict(pg_dsn))) as s:
        assert isinstance(s, PostgresStore)
        s.set_state("k", "v")
    with open_store(pg_dsn) as s:
        assert s.get_state("k") == "v"


def test_a_path_under_a_regular_file_gives_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError) as err:
        open_store(blocker / "sub" / "store.sqlite3")
    message = str(err.value)
    assert message.startswith(f"cannot write the store at {blocker}/sub/store.sqlite3: ")
    assert "Not a directory" in message and "\n" not in message


def test_a_file_that_is_not_a_store_gives_one_clear_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"^cannot open the store at .*junk.sqlite3: file is not"):
        open_store(junk)


def test_an_unreachable_postgres_gives_one_line_without_the_password() -> None:
    url = f"postgresql://bob:s3cret@127.0.0.1:{free_port()}/db"
    with pytest.raises(StoreError) as err:
        open_store(url)
    message = str(err.value)
    assert message.startswith("cannot connect to the store postgresql://bob:***@127.0.0.1:")
    assert "refused" in message.lower()
    assert "s3cret" not in message and "\n" not in message


# -- migrations ---------------------------------------------------------------------------------


def test_a_fresh_store_has_the_latest_schema_and_reopening_changes_nothing(
    location: str, store: SqlStore
) -> None:
    assert store.schema_version() == LATEST
    store.write_windows([window(calls=3)])
    store.close()
    with open_store(location) as again:
        assert again.schema_version() == LATEST
        assert [w.calls for w in again.statement_windows()] == [3]


def test_a_version_1_store_gains_the_deploys_table_and_keeps_its_data(
    location: str, store: SqlStore
) -> None:
    store.write_windows([window(calls=3)])
    store.close()
    # What querywatch with migration 1 only left behind:
    for table in ("deploys", "request_repeats", "incident_events", "incidents"):
        execute(location, f"DROP TABLE {table}")
    execute(location, "DELETE FROM schema_version WHERE version >= 2")
    with open_store(location) as upgraded:
        assert upgraded.schema_version() == LATEST
        assert [w.calls for w in upgraded.statement_windows()] == [3]
        assert upgraded.deploys() == []
        upgraded.record_deploy(deploy())
        assert upgraded.deploys() == [deploy()]


def test_a_store_from_a_newer_querywatch_is_refused(location: str, store: SqlStore) -> None:
    store.close()
    execute(location, "INSERT INTO schema_version VALUES (999, 'from the future', 0)")
    with pytest.raises(StoreError, match="schema version 999, newer than this querywatch"):
        open_store(location)


@pytest.mark.postgres
def test_postgres_keeps_everything_in_its_own_schema(pg_dsn: str) -> None:
    open_store(pg_dsn).close()
    with psycopg.connect(pg_dsn) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 2"
        ).fetchall()
    assert {schema for schema, _ in tables} == {"querywatch"}
    assert {"windows", "request_windows", "fingerprints", "state", "deploys"} <= {
        t for _, t in tables
    }


# -- read-only opening (commands that only read) ------------------------------------------------

NO_WRITE_ACCESS = (
    # root writes anywhere; without these capabilities it obeys file modes like anyone else.
    ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]
    if os.geteuid() == 0
    else []
)
READ_COMMANDS = (
    ("top",),
    ("top", "--json"),
    ("incidents",),
    ("incident", "show", "QW-20231124-1"),
    ("postmortem", "QW-20231124-1"),
    ("deploys",),
)


def run_reader(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real CLI in a process that may not write where file modes forbid it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUERYWATCH_")}
    return subprocess.run(
        [*NO_WRITE_ACCESS, sys.executable, "-m", "querywatch", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def listing(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_a_read_command_on_an_empty_file_says_no_data_and_writes_nothing(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    empty = tmp_path / "store.sqlite3"
    empty.touch()
    result = run_reader(*command, "--store", str(empty), cwd=tmp_path)
    assert_one_line_error(result, "no data yet in the store at", "querywatch watch")
    assert listing(tmp_path) == {"store.sqlite3": b""}


def test_read_commands_work_in_a_directory_they_may_not_write(tmp_path: Path) -> None:
    home = tmp_path / "ro"
    path = home / "store.sqlite3"
    with open_store(path) as s:
        s.write_windows([window("fpro", calls=7, total=14.0)])
        s.record_deploy(deploy())
        create_incident(s, _incident(), "QW-20231124")
    before = listing(home)
    home.chmod(0o555)
    try:
        outputs = {}
        for command in READ_COMMANDS:
            result = run_reader(*command, "--store", str(path), cwd=tmp_path)
            assert result.returncode == 0, (command, result.stderr)
            outputs[command] = result.stdout
        # What a user can do about it: nothing to fix, the reads simply work.
        assert json.loads(outputs[("top", "--json")])["data"][0]["calls"] == 7
        assert "QW-20231124-1" in outputs[("incidents",)]
        assert "v1" in outputs[("deploys",)]
        # A writing command still says plainly why it cannot.
        denied = run_reader(
            "deploy", "start", "--version", "v2", "--store", str(path), cwd=tmp_path
        )
        assert_one_line_error(denied, "cannot write the store")
    finally:
        home.chmod(0o755)
    assert listing(home) == before


def test_read_only_reads_what_a_running_agent_commits(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    with open_store(path) as agent:
        agent.write_windows([window(calls=1)])
        reader = open_store(path, read_only=True)
        agent.write_windows([window(calls=2)])
        assert [w.calls for w in reader.statement_windows()] == [3]
        reader.close()


def test_a_read_only_store_refuses_writes_and_writes_no_schema(location: str) -> None:
    if location.startswith("postgresql://"):
        with pytest.raises(StoreError, match=r"^no data yet in the store at postgresql://"):
            open_store(location, read_only=True)
        with psycopg.connect(location) as conn:
            assert conn.execute("SELECT to_regnamespace('querywatch')").fetchone() == (None,)
    else:
        Path(location).parent.mkdir(parents=True)
        Path(location).touch()
        with pytest.raises(StoreError, match=r"^no data yet in the store at "):
            open_store(location, read_only=True)
        assert Path(location).read_bytes() == b""
    with open_store(location) as writer:
        writer.write_windows([window(calls=4)])
    with open_store(location, read_only=True) as reader:
        assert [w.calls for w in reader.statement_windows()] == [4]
        with pytest.raises(StoreError, match="it was opened read-only"):
            reader.write_windows([window(calls=1)])
    with open_store(location, read_only=True) as reader:
        assert [s.calls for s in reader.top()] == [4]


def test_read_only_refuses_a_store_too_old_or_too_new_to_read(location: str) -> None:
    with open_store(location) as s:
        s.write_windows([window(calls=3)])
    execute(location, "INSERT INTO schema_version VALUES (999, 'from the future', 0)")
    with pytest.raises(StoreError, match="schema version 999, newer than this querywatch"):
        open_store(location, read_only=True)
    execute(location, f"DELETE FROM schema_version WHERE version >= {READABLE_FROM}")
    with pytest.raises(StoreError, match=r"older than this querywatch reads .*`querywatch watch`"):
        open_store(location, read_only=True)


# -- round trips and merging --------------------------------------------------------------------


def test_statement_windows_round_trip(store: SqlStore) -> None:
    site = CallSite("shop/cart.py", 42, "load_cart")
    written = window(
        "fp1",
        T0,
        calls=3,
        total=30.0,
        mx=20.0,
        dialect="postgres",
        source="app",
        min_ms=2.0,
        rows=7,
        errors=1,
        shared_blks_hit=5,
        shared_blks_read=6,
        sketch=sketch_of(2, 8, 20),
        call_sites=(site,),
    )
    plain = window("fp2", T0 + 10, calls=2, total=4.0, source="pg_stat_statements")
    store.write_windows([plain, written])
    assert store.statement_windows() == [written, plain]
    assert store.statement_windows("fp2") == [plain]
    assert store.statement_windows("fp2")[0].sketch is None  # no durations: no sketch


def test_request_windows_round_trip(store: SqlStore) -> None:
    cart = request(
        requests=5,
        errors=1,
        total_ms=50.0,
        max_ms=30.0,
        db_ms=20.0,
        db_calls=9,
        sketch=sketch_of(5, 30),
        users=frozenset({"u1", "u2"}),
        failed_users=frozenset({"u2"}),
    )
    home = request("GET /", T0 + 10)
    store.write_requests([home, cart])
    assert store.request_windows() == [cart, home]
    assert store.request_windows("GET /") == [home]


def test_writing_the_same_bucket_again_merges(store: SqlStore) -> None:
    first = sketch_of(*range(1, 51))
    second = sketch_of(*range(51, 101))
    store.write_windows(
        [
            window(
                calls=50,
                total=1275.0,
                mx=50.0,
                min_ms=1.0,
                rows=50,
                errors=1,
                sketch=first,
                call_sites=(CallSite("a.py", 1, "f"),),
            ),
        ]
    )
    store.write_windows(
        [
            window(
                calls=50,
                total=3775.0,
                mx=100.0,
                min_ms=51.0,
                rows=50,
                sketch=second,
                call_sites=(CallSite("b.py", 2, "g"), CallSite("a.py", 1, "f")),
            ),
            window(calls=1, total=0.5, mx=0.5, min_ms=0.5, shared_blks_read=3),  # same batch, too
        ]
    )
    [merged] = store.statement_windows()
    assert (merged.calls, merged.total_ms, merged.max_ms, merged.min_ms) == (101, 5050.5, 100, 0.5)
    assert (merged.rows, merged.errors, merged.shared_blks_read) == (100, 1, 3)
    assert merged.call_sites == (CallSite("a.py", 1, "f"), CallSite("b.py", 2, "g"))
    everything = sketch_of(*range(1, 101))
    assert merged.sketch == everything
    assert merged.sketch is not None and merged.sketch.quantile(0.95) == pytest.approx(95, rel=0.01)


def test_call_sites_are_bounded_per_fingerprint(store: SqlStore) -> None:
    sites = tuple(CallSite("app.py", n, "handler") for n in range(MAX_CALL_SITES + 15))
    store.write_windows([window(call_sites=sites[:10])])
    store.write_windows([window(call_sites=sites[10:])])
    [summary] = store.top()
    assert len(summary.call_sites) == MAX_CALL_SITES
    assert set(sites[:10]) <= set(summary.call_sites)  # what was learnt first is kept


def test_request_windows_merge_and_union_users(store: SqlStore) -> None:
    store.write_requests(
        [
            request(
                requests=2,
                errors=1,
                max_ms=10.0,
                db_calls=3,
                users=frozenset({"ann", "bob"}),
                failed_users=frozenset({"bob"}),
                sketch=sketch_of(1, 2),
            )
        ]
    )
    store.write_requests(
        [
            request(
                requests=3,
                errors=0,
                max_ms=40.0,
                db_calls=4,
                users=frozenset({"bob", "cy"}),
                failed_users=frozenset({"cy"}),
                sketch=sketch_of(3),
            )
        ]
    )
    [merged] = store.request_windows()
    assert (merged.requests, merged.errors, merged.max_ms, merged.db_calls) == (5, 1, 40.0, 7)
    assert (merged.total_ms, merged.db_ms) == (20.0, 8.0)
    assert merged.users == {"ann", "bob", "cy"} and merged.failed_users == {"bob", "cy"}
    assert merged.sketch == sketch_of(1, 2, 3)


# -- deploy markers -----------------------------------------------------------------------------


def test_deploy_markers_round_trip(store: SqlStore) -> None:
    full = deploy(
        "d1",
        T0 + 0.25,
        version="v2.3.0",
        commit="9f1c2e7",
        environment="prod",
        finished_at=T0 + 90.75,
        author="ann",
        previous_version="v2.2.9",
        rollback=True,
    )
    bare = deploy("d2", T0 + 300, version="v2.3.1", commit=None, environment="staging")
    store.record_deploy(bare)
    store.record_deploy(full)
    assert store.deploys() == [full, bare]
    [again] = store.deploys(environment="staging")
    assert again == bare
    assert again.finished_at is again.author is again.previous_version is None
    assert again.rollback is False and store.deploys()[0].rollback is True


def test_finishing_a_deploy_sets_finished_at_and_keeps_the_other_fields(store: SqlStore) -> None:
    started = deploy(author="ann", previous_version="v0", rollback=True)
    store.record_deploy(started)
    assert store.deploys()[0].finished_at is None
    # The finisher knows only the id and the required fields: None and False overwrite nothing.
    store.record_deploy(deploy(commit=None, finished_at=T0 + 120.0))
    assert store.deploys() == [
        DeployMarker("d1", "v1", "abc123", "prod", T0 + 0.5, T0 + 120.0, "ann", "v0", rollback=True)
    ]
    # Given values do overwrite (a corrected commit); finishing again moves finished_at.
    store.record_deploy(deploy(commit="def456", finished_at=T0 + 150.0))
    [marker] = store.deploys()
    assert (marker.commit, marker.finished_at, marker.author) == ("def456", T0 + 150.0, "ann")


def test_deploys_are_in_start_order_and_filter_by_range_and_environment(store: SqlStore) -> None:
    markers = [
        deploy("c", T0 + 200, environment="prod"),
        deploy("a", T0, environment="prod"),
        deploy("b", T0 + 100, environment="staging"),
        deploy("d", T0 + 300, environment="staging"),
    ]
    for m in markers:
        store.record_deploy(m)

    def ids(found: list[DeployMarker]) -> list[str]:
        return [m.id for m in found]

    assert ids(store.deploys()) == ["a", "b", "c", "d"]
    assert ids(store.deploys(since=T0 + 100)) == ["b", "c", "d"]  # since is inclusive
    assert ids(store.deploys(until=T0 + 200)) == ["a", "b"]  # until is exclusive
    assert ids(store.deploys(since=T0 + 100, until=T0 + 300)) == ["b", "c"]
    assert ids(store.deploys(environment="prod")) == ["a", "c"]
    assert ids(store.deploys(since=T0 + 50, environment="staging")) == ["b", "d"]
    assert store.deploys(environment="dev") == []
    assert store.deploys(since=T0 + 301) == []


def test_latest_deploy_is_the_last_started(store: SqlStore) -> None:
    assert store.latest_deploy() is None
    late_prod = deploy("p2", T0 + 200, environment="prod")
    store.record_deploy(late_prod)
    store.record_deploy(deploy("s1", T0 + 100, environment="staging"))
    store.record_deploy(deploy("p1", T0, environment="prod"))  # recorded last, started first
    assert store.latest_deploy() == late_prod
    assert store.latest_deploy("prod") == late_prod
    latest_staging = store.latest_deploy("staging")
    assert latest_staging is not None and latest_staging.id == "s1"
    assert store.latest_deploy("dev") is None


def test_deploy_markers_survive_retention(store: SqlStore) -> None:
    store.record_deploy(deploy())
    store.apply_retention(T0 + 30 * DAY)
    assert store.deploys() == [deploy()]


# -- sources ------------------------------------------------------------------------------------


def test_two_sources_of_one_database_never_add_up(store: SqlStore) -> None:
    """The agent's pg_stat_statements deltas and the app's own capture see the same calls."""
    app = dict(source="app", sketch=sketch_of(1, 2, 3), call_sites=(CallSite("a.py", 1, "f"),))
    store.write_windows([window("shared", calls=3, total=6.0, **app)])
    store.write_windows([window("shared", calls=2, total=4.0, **app)])  # a second app process
    store.write_windows([window("shared", calls=6, total=13.0, source="pg_stat_statements")])
    store.write_windows([window("app-only", T0 + 10, calls=4, total=4.0, source="app")])

    # Each source's writers add up; the two sources are kept apart.
    by_source = {w.source: w for w in store.statement_windows("shared", source="app")}
    assert [(w.calls, w.total_ms) for w in by_source.values()] == [(5, 10.0)]
    assert [w.calls for w in store.statement_windows("shared", source="pg_stat_statements")] == [6]

    # A reader that sums gets one source per fingerprint: the one that saw the most calls.
    assert [(w.fingerprint, w.source, w.calls) for w in store.statement_windows()] == [
        ("shared", "pg_stat_statements", 6),
        ("app-only", "app", 4),
    ]
    top = {s.fingerprint: s for s in store.top()}
    assert (top["shared"].calls, top["shared"].total_ms, top["shared"].source) == (
        6,
        13.0,
        "pg_stat_statements",
    )
    assert (top["app-only"].calls, top["app-only"].source) == (4, "app")
    assert top["shared"].call_sites == (CallSite("a.py", 1, "f"),)  # sites are per fingerprint

    # Over a range where only the app has data, the app's figures (and percentiles) are used.
    store.write_windows([window("shared", T0 + 60, calls=9, total=9.0, **app)])
    later = {s.fingerprint: s for s in store.top(since=T0 + 60)}
    assert (later["shared"].calls, later["shared"].source) == (9, "app")
    assert later["shared"].p50_ms is not None


def test_retention_rolls_each_source_up_on_its_own(store: SqlStore) -> None:
    store.write_windows(
        [
            window("fp", T0 + 10 * i, calls=1, source=source)
            for i in range(6)
            for source in ("app", "pg_stat_statements")
        ]
    )
    store.apply_retention(now=T0 + 2 * DAY)
    minutes = [
        (w.source, w.window_start, w.calls)
        for source in ("app", "pg_stat_statements")
        for w in store.statement_windows(source=source)
    ]
    assert minutes == [("app", T0, 6), ("pg_stat_statements", T0, 6)]


def test_a_version_5_store_is_keyed_by_source_and_keeps_its_windows(
    location: str, store: SqlStore
) -> None:
    store.write_windows([window(calls=3, source="app"), window("fp2", calls=1, source="")])
    store.close()
    # What querywatch with migrations 1-5 left behind: one row per fingerprint and bucket.
    execute(location, "ALTER TABLE windows RENAME TO windows_new")
    execute(
        location,
        """CREATE TABLE windows (fingerprint TEXT NOT NULL, window_start BIGINT NOT NULL,
        resolution INTEGER NOT NULL, calls BIGINT NOT NULL, total_ms DOUBLE PRECISION NOT NULL,
        max_ms DOUBLE PRECISION NOT NULL, min_ms DOUBLE PRECISION, rows BIGINT NOT NULL,
        errors BIGINT NOT NULL, shared_blks_hit BIGINT NOT NULL, shared_blks_read BIGINT NOT NULL,
        sketch TEXT, source TEXT NOT NULL, PRIMARY KEY (fingerprint, window_start, resolution))""",
    )
    execute(
        location,
        "INSERT INTO windows SELECT fingerprint, window_start, resolution, calls, total_ms, "
        "max_ms, min_ms, rows, errors, shared_blks_hit, shared_blks_read, sketch, source "
        "FROM windows_new",
    )
    execute(location, "DROP TABLE windows_new")
    execute(location, "CREATE INDEX windows_by_time ON windows (window_start)")
    execute(location, "DELETE FROM schema_version WHERE version >= 6")
    with open_store(location, read_only=True) as reader:  # readable before the upgrade too
        assert sorted(w.calls for w in reader.statement_windows()) == [1, 3]
    with open_store(location) as upgraded:
        assert upgraded.schema_version() == LATEST
        assert [(w.fingerprint, w.source, w.calls) for w in upgraded.statement_windows()] == [
            ("fp1", "app", 3),
            ("fp2", "", 1),
        ]
        upgraded.write_windows([window(calls=5, source="pg_stat_statements")])
        assert [w.calls for w in upgraded.statement_windows("fp1", source="app")] == [3]
        assert [s.calls for s in upgraded.top() if s.fingerprint == "fp1"] == [5]


# -- top ----------------------------------------------------------------------------------------

# heavy: most total time; slow: highest mean and p95; chatty: most calls, no durations known;
# once: one call, high mean, small p95.
RANKING = [
    window("heavy", calls=100, total=5000.0, sketch=sketch_of(*[50.0] * 100)),
    window("slow", calls=10, total=3000.0, sketch=sketch_of(*[300.0] * 10)),
    window("chatty", calls=1000, total=500.0),
    window("once", calls=1, total=1000.0, sketch=sketch_of(5.0)),
]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("total", ["heavy", "slow", "once", "chatty"]),
        ("mean", ["once", "slow", "heavy", "chatty"]),
        ("calls", ["chatty", "heavy", "slow", "once"]),
        ("p95", ["slow", "heavy", "once", "chatty"]),  # unknown percentiles rank last
    ],
)
def test_top_sorts_by_each_key(store: SqlStore, sort: str, expected: list[str]) -> None:
    store.write_windows(RANKING)
    ranked = store.top(sort=sort)  # type: ignore[arg-type]
    assert [s.fingerprint for s in ranked] == expected
    assert [s.fingerprint for s in store.top(sort=sort, limit=2)] == expected[:2]  # type: ignore[arg-type]


def test_top_sums_a_range_and_reports_percentiles_and_sites(store: SqlStore) -> None:
    site = CallSite("shop/orders.py", 7, "list_orders")
    store.write_windows(
        [
            window("q", T0, calls=2, total=3.0, mx=2.0, rows=4, sketch=sketch_of(1, 2)),
            window(
                "q",
                T0 + 10,
                calls=3,
                total=30.0,
                mx=20.0,
                errors=1,
                sketch=sketch_of(5, 5, 20),
                call_sites=(site,),
            ),
            window("q", T0 + 20, calls=1, total=100.0, sketch=sketch_of(100)),
            window("other", T0 + 20, calls=1, total=1.0),
        ]
    )
    [q] = store.top(since=T0, until=T0 + 20)
    assert (q.fingerprint, q.calls, q.total_ms, q.max_ms) == ("q", 5, 33, 20)
    assert (q.rows, q.errors) == (4, 1)
    merged = sketch_of(1, 2, 5, 5, 20)
    assert (q.p50_ms, q.p95_ms, q.p99_ms) == tuple(merged.quantile(x) for x in (0.5, 0.95, 0.99))
    assert q.call_sites == (site,)
    assert (q.first_seen, q.last_seen) == (T0, T0 + 20)  # over the fingerprint's whole life
    assert q.normalized == "SELECT * FROM q WHERE id = $1" and q.dialect == "postgres"
    assert [s.fingerprint for s in store.top(since=T0 + 20)] == ["q", "other"]
    assert store.top(until=T0)[:1] == []
    [other] = store.top(since=T0 + 20, sort="p95")[1:]
    assert other.p95_ms is None  # no sketch anywhere in range
    assert [w.window_start for w in store.statement_windows("q", since=T0 + 10, until=T0 + 20)] == [
        T0 + 10
    ]


# -- retention ----------------------------------------------------------------------------------


def test_retention_rolls_old_buckets_into_minutes_and_drops_the_oldest(store: SqlStore) -> None:
    now = T0 + 20 * DAY
    old = T0 + 18 * DAY  # past the raw horizon (1 day), inside the minute horizon (14 days)
    values = [[1.0, 2.0], [3.0, 40.0], [5.0], [6.0, 7.0, 80.0], [9.0], [10.0]]
    store.write_windows(
        [
            window(
                "q",
                old + 10 * i,
                calls=len(v),
                total=sum(v),
                mx=max(v),
                min_ms=min(v),
                rows=1,
                sketch=sketch_of(*v),
            )
            for i, v in enumerate(values)
        ]
        + [
            window("q", now - 3600, calls=7, total=7.0),  # recent: stays at 10 s
            window("ancient", T0, calls=1, total=1.0),  # older than 14 days: dropped
        ]
    )
    store.write_requests(
        [
            request(start=old, users=frozenset({"a"})),
            request(start=old + 50, requests=2, users=frozenset({"b"})),
            request(start=T0),
        ]
    )
    before = store.top(since=old, until=old + 60)
    store.apply_retention(now)

    rolled, recent = store.statement_windows("q")
    everything = [x for v in values for x in v]
    assert rolled.window_start == old and rolled.calls == len(everything)
    assert (rolled.total_ms, rolled.max_ms, rolled.min_ms, rolled.rows) == (
        sum(everything),
        80.0,
        1.0,
        6,
    )
    assert rolled.sketch == sketch_of(*everything)
    assert recent.window_start == now - 3600 and recent.calls == 7
    assert store.statement_windows("ancient") == []
    assert [s.fingerprint for s in store.top()] == ["q"]
    assert store.top(since=old, until=old + 60) == before  # totals and percentiles survive

    [minute] = store.request_windows()
    assert (minute.window_start, minute.requests, minute.users) == (old, 3, frozenset("ab"))

    # Late data for an already rolled-up minute merges into the minute row.
    store.write_windows([window("q", old + 30, calls=1, total=1000.0, sketch=sketch_of(1000.0))])
    store.apply_retention(now)
    rolled, _ = store.statement_windows("q")
    assert rolled.calls == len(everything) + 1 and rolled.max_ms == 1000.0
    assert rolled.sketch == sketch_of(*everything, 1000.0)


def test_retention_horizons_are_configurable(store: SqlStore) -> None:
    now = T0 + DAY
    store.write_windows([window("q", now - 600), window("q", now - 7200)])
    store.apply_retention(now, Retention(raw_seconds=300, minute_seconds=3600))
    assert [(w.window_start, w.calls) for w in store.statement_windows()] == [(now - 600, 1)]


def test_retention_drops_per_deploy_state_with_old_deploys_and_keeps_the_rest(
    store: SqlStore,
) -> None:
    from querywatch.deploys import schema_state_key
    from querywatch.incidents.plan_snapshot import before_key
    from querywatch.records import DeployMarker

    now = T0 + 30 * DAY
    store.record_deploy(DeployMarker("old", "v1", None, "production", now - 20 * DAY))
    store.record_deploy(DeployMarker("new", "v2", None, "production", now - DAY))
    for deploy_id in ("old", "new"):
        store.set_state(schema_state_key(deploy_id), "{}")
        store.set_state(before_key(deploy_id), "{}")
    store.set_state("respond", "{}")
    store.apply_retention(now)  # 1-minute windows are kept 14 days
    assert store.get_state(schema_state_key("old")) is None
    assert store.get_state(before_key("old")) is None
    assert store.get_state(schema_state_key("new")) == "{}"
    assert store.get_state(before_key("new")) == "{}"
    assert store.get_state("respond") == "{}"  # not per deploy: kept
    assert [d.id for d in store.deploys()] == ["old", "new"]  # markers are never expired


# -- state --------------------------------------------------------------------------------------


def test_state_survives_a_restart(location: str, store: SqlStore) -> None:
    assert store.get_state("poller") is None
    store.set_state("poller", '{"calls": 1}')
    store.set_state("poller", '{"calls": 2}')
    store.close()
    with open_store(location) as again:
        assert again.get_state("poller") == '{"calls": 2}'


def test_state_updates_from_two_stores_never_lose_one(location: str, store: SqlStore) -> None:
    """Two agents on one store (two connections) changing one key: every change lands, and a
    change that raises writes nothing (what the rollback's "once per deploy" relies on)."""

    def bump(text: str | None) -> str:
        value = int(text or "0")
        time.sleep(0.001)  # widen the read-change-write window
        return str(value + 1)

    def worker() -> None:
        with open_store(location) as own:
            for _ in range(25):
                own.update_state("counter", bump)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get_state("counter") == "50"

    def refuse(text: str | None) -> str:
        raise ValueError("a guard said no")

    with pytest.raises(ValueError):
        store.update_state("counter", refuse)
    assert store.get_state("counter") == "50"


# -- transactions and concurrency ---------------------------------------------------------------


def test_a_failed_batch_leaves_nothing_and_keeps_what_was_committed(store: SqlStore) -> None:
    store.write_windows([window("aaa", calls=2, total=2.0, sketch=sketch_of(1, 1))])
    broken = window("zzz", calls=None)  # type: ignore[arg-type]  # NOT NULL fails mid-batch
    with pytest.raises(StoreError, match="cannot write the store"):
        store.write_windows([window("aaa", calls=5, total=50.0), window("fresh"), broken])
    assert [(w.fingerprint, w.calls, w.total_ms) for w in store.statement_windows()] == [
        ("aaa", 2, 2.0)
    ]
    assert [s.fingerprint for s in store.top()] == ["aaa"]
    store.write_windows([window("fresh")])  # the store is still usable
    assert [s.fingerprint for s in store.top(sort="calls")] == ["aaa", "fresh"]


def test_concurrent_writers_lose_no_counts(location: str, store: SqlStore) -> None:
    """Two agents (two store objects) and a background flusher share one store."""
    errors: list[BaseException] = []
    other = open_store(location)

    def agent(s: SqlStore) -> None:
        try:
            for i in range(30):
                s.write_windows(
                    [window(f"fp{n}", T0 + 10 * (i % 3), sketch=sketch_of(1.0)) for n in range(20)]
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=agent, args=(s,)) for s in (store, other, store)]
    for t in threads:
        t.start()
    reads = 0
    while any(t.is_alive() for t in threads):
        store.top()
        reads += 1
    for t in threads:
        t.join()
    other.close()
    assert errors == []
    assert reads > 0
    assert sum(s.calls for s in store.top(limit=100)) == 3 * 30 * 20
    assert all(
        w.sketch is not None and w.sketch.count == w.calls for w in store.statement_windows()
    )


def test_a_reader_reads_while_an_agent_writes(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    writer, reader = open_store(path), open_store(path)
    done = threading.Event()
    problems: list[BaseException] = []

    def write() -> None:
        try:
            for i in range(100):
                writer.write_windows([window(f"fp{n}", T0 + 10 * i) for n in range(100)])
        except BaseException as exc:
            problems.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=write)
    thread.start()
    seen = []
    while not done.is_set():
        try:
            seen.append(sum(s.calls for s in reader.top(limit=1000)))
        except BaseException as exc:  # "database is locked" would land here
            problems.append(exc)
            break
    thread.join()
    assert problems == []
    assert seen == sorted(seen)  # every read saw whole batches, never a partial one
    assert all(n % 100 == 0 for n in seen)
    assert sum(s.calls for s in reader.top(limit=1000)) == 100 * 100
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    raw.close()
    writer.close()
    reader.close()


@pytest.mark.postgres
def test_postgres_reconnects_once_after_losing_the_connection(pg_dsn: str) -> None:
    with open_store(pg_dsn) as s:
        s.write_windows([window(calls=1)])
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                "WHERE application_name = 'querywatch-store' AND datname = current_database()"
            ).fetchall()
        assert killed == [(True,)]
        s.write_windows([window(calls=2)])
        assert [w.calls for w in s.statement_windows()] == [3]


# -- incidents ----------------------------------------------------------------------------------


def _incident(**kw: object) -> Incident:
    from test_incidents import full_incident

    incident = full_incident()
    for key, value in kw.items():
        setattr(incident, key, value)
    return incident


def test_incidents_round_trip_with_their_timeline(store: SqlStore) -> None:
    made = create_incident(store, _incident(), "QW-20231124")
    assert made.id == "QW-20231124-1"
    assert load_incident(store, made.id) == made
    assert load_incident(store, "QW-nope") is None
    # Numbering skips ids already taken, per day; a LIKE wildcard in the prefix is literal.
    assert create_incident(store, _incident(), "QW-20231124").id == "QW-20231124-2"
    assert create_incident(store, _incident(), "QW-2023112_").id == "QW-2023112_-1"


def test_saving_an_incident_updates_it_and_only_appends_to_its_timeline(store: SqlStore) -> None:
    incident = _incident(id="QW-x-1")
    save_incident(store, incident)
    incident.status = "resolved"
    incident.resolved_at = T0 + 500.5
    incident.title = "renamed"
    incident.culprits = incident.culprits[:1]
    incident.timeline = [
        *incident.timeline,
        TimelineEvent(T0 + 500.5, "resolved", "fixed", "carol"),
    ]
    save_incident(store, incident)
    assert load_incident(store, "QW-x-1") == incident


def test_events_append_in_order_and_status_changes(store: SqlStore) -> None:
    made = create_incident(store, _incident(), "QW-d")
    assert add_event(store, made.id, TimelineEvent(T0 + 1000, "note", "late", "dan", ("x",))) == 4
    set_status(store, made.id, "resolved", T0 + 1001)
    got = load_incident(store, made.id)
    assert got is not None and got.status == "resolved" and got.resolved_at == T0 + 1001
    assert [e.message for e in got.timeline][-2:] == ["rolled back", "late"]
    with pytest.raises(NotFound):
        add_event(store, "QW-nope", TimelineEvent(T0, "note", "x"))
    with pytest.raises(NotFound):
        set_status(store, "QW-nope", "resolved", T0)


def test_update_incident_is_one_transaction(store: SqlStore) -> None:
    made = create_incident(store, _incident(), "QW-u")

    def fail(incident: Incident) -> list[TimelineEvent]:
        incident.status = "resolved"
        raise RuntimeError("rule broken")

    with pytest.raises(RuntimeError):
        update_incident(store, made.id, fail)
    assert load_incident(store, made.id) == made
    changed = update_incident(
        store, made.id, lambda i: [TimelineEvent(T0 + 2000, "action", "cache flushed")]
    )
    assert changed.timeline[-1].message == "cache flushed" and len(changed.timeline) == 4


def test_incidents_list_newest_first_filtered_by_status_and_time(store: SqlStore) -> None:
    for n, status in enumerate(["open", "resolved", "acknowledged", "open"]):
        save_incident(store, _incident(id=f"QW-l-{n}", status=status, opened_at=T0 + n))
    assert [i.id for i in list_incidents(store)] == ["QW-l-3", "QW-l-2", "QW-l-1", "QW-l-0"]
    assert [i.id for i in list_incidents(store, status="open")] == ["QW-l-3", "QW-l-0"]
    assert [i.id for i in list_incidents(store, status=("open", "acknowledged"), limit=2)] == [
        "QW-l-3",
        "QW-l-2",
    ]
    assert [i.id for i in list_incidents(store, since=T0 + 2)] == ["QW-l-3", "QW-l-2"]
    assert list_incidents(store)[0].timeline == _incident().timeline


def test_concurrent_incident_writers_get_distinct_ids_and_keep_every_event(
    location: str, store: SqlStore
) -> None:
    made = create_incident(store, _incident(), "QW-c")
    errors: list[BaseException] = []
    ids: list[str] = []

    def work(n: int) -> None:
        try:
            with open_store(location) as mine:
                for k in range(5):
                    ids.append(create_incident(mine, _incident(), "QW-c").id)
                    add_event(mine, made.id, TimelineEvent(T0 + k, "note", f"{n}-{k}"))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(ids)) == 20
    got = load_incident(store, made.id)
    assert got is not None and len(got.timeline) == 3 + 20


def test_an_incident_without_events_and_an_empty_status_filter(store: SqlStore) -> None:
    save_incident(store, _incident(id="QW-e-1", timeline=[]))
    got = load_incident(store, "QW-e-1")
    assert got is not None and got.timeline == []
    assert list_incidents(store, status=()) == []


# -- request repeats (N+1) ----------------------------------------------------------------------


def repeat(
    route: str = "/orders/{id}", fp: str = "fp1", start: int = T0, *counts: int
) -> RepeatWindow:
    runs = counts or (12,)
    return RepeatWindow(route, fp, start, len(runs), sum(runs), max(runs), f"SELECT {fp}", "sqlite")


def test_repeat_windows_round_trip_and_filter(store: SqlStore) -> None:
    a = repeat("/orders/{id}", "fp1", T0, 12, 20)
    b = repeat("/cart", "fp2", T0 + 10, 7)
    store.write_repeats([b, a])
    assert store.repeat_windows() == [a, b]
    assert store.repeat_windows(route="/cart") == [b]
    assert store.repeat_windows(fingerprint="fp1") == [a]
    assert store.repeat_windows(route="/cart", fingerprint="fp1") == []
    assert store.repeat_windows(since=T0 + 10) == [b]
    assert store.repeat_windows(until=T0 + 10) == [a]
    assert a.mean_repeats == 16.0
    # The fingerprint's text is recorded with it, so a repeat row reads on its own.
    assert store.repeat_windows()[0].normalized == "SELECT fp1"


def test_repeat_windows_merge(store: SqlStore) -> None:
    store.write_repeats([repeat("/r", "fp1", T0, 12, 30)])
    store.write_repeats([repeat("/r", "fp1", T0, 50), repeat("/r", "fp1", T0 + 10, 6)])
    first, second = store.repeat_windows()
    assert (first.requests, first.total_repeats, first.max_repeats) == (3, 92, 50)
    assert (second.requests, second.total_repeats, second.max_repeats) == (1, 6, 6)


def test_repeat_windows_roll_up_in_retention(store: SqlStore) -> None:
    now = T0 + 2 * DAY
    store.write_repeats([repeat("/r", "fp1", T0 + s, 10 + s) for s in (0, 10, 20)])
    store.write_repeats([repeat("/r", "fp1", now - 60, 9)])
    store.apply_retention(now)
    minute, recent = store.repeat_windows()
    assert (minute.window_start, minute.requests, minute.total_repeats) == (T0, 3, 60)
    assert minute.max_repeats == 30
    assert (recent.window_start, recent.requests) == (now - 60, 1)
    store.apply_retention(T0 + 30 * DAY)
    assert [w.window_start for w in store.repeat_windows()] == []
