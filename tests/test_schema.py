"""Schema snapshots and migration-aware deploy markers: is a rollback of this deploy safe?"""

from __future__ import annotations

import json
import socket
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest

from cli_helpers import run_cli
from querywatch.deploys import describe, start_deploy
from querywatch.errors import DatabaseUnavailable
from querywatch.schema import Column, SchemaSnapshot, SnapshotError, diff, snapshot
from querywatch.store import open_store
from querywatch.web.server import make_server

ORDERS = """
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    total NUMERIC,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX orders_by_customer ON orders (customer_id);
CREATE TABLE customers (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT);
"""

PG_ORDERS = """
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id integer NOT NULL,
    status text NOT NULL,
    total numeric,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_by_customer ON orders (customer_id);
CREATE TABLE customers (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text);
"""


def sqlite_db(path: Path, script: str) -> Path:
    with sqlite3.connect(path) as conn:
        conn.executescript(script)
    conn.close()
    return path


def pg_run(dsn: str, script: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(script)


@pytest.fixture
def app_db(tmp_path: Path) -> Path:
    return sqlite_db(tmp_path / "app.sqlite3", ORDERS)


@pytest.fixture
def pg_app(pg_dsn: str) -> str:
    pg_run(pg_dsn, PG_ORDERS)
    return pg_dsn


def closed_port_dsn() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"postgresql://qw:hunter22@127.0.0.1:{port}/app"


# -- snapshots ------------------------------------------------------------------------------------


def test_sqlite_snapshot_lists_tables_columns_and_indexes(app_db: Path) -> None:
    snap = snapshot(str(app_db))
    assert snap.dialect == "sqlite" and snap.database == str(app_db.resolve())
    assert set(snap.tables) == {"orders", "customers"}  # not sqlite_sequence
    assert snap.tables["orders"] == (
        Column("id", "integer", False, True),  # the rowid: SQLite fills it in
        Column("customer_id", "integer", True, False),
        Column("status", "text", True, False),
        Column("total", "numeric", False, False),
        Column("created_at", "text", True, True),
    )
    assert snap.indexes == {"orders_by_customer": "orders"}
    assert SchemaSnapshot.from_json(snap.to_json()) == snap


def test_sqlite_snapshot_does_not_write_the_database(app_db: Path) -> None:
    before = app_db.read_bytes()
    snapshot(str(app_db))
    assert app_db.read_bytes() == before
    assert not Path(f"{app_db}-journal").exists() and not Path(f"{app_db}-wal").exists()


def test_postgres_snapshot_sees_only_the_application(pg_app: str) -> None:
    pg_run(
        pg_app,
        """
        CREATE SCHEMA querywatch; CREATE TABLE querywatch.windows (x int);
        CREATE SCHEMA billing; CREATE TABLE billing.invoices (id int, amount numeric(10,2));
        CREATE TABLE events (at date NOT NULL) PARTITION BY RANGE (at);
        CREATE TABLE events_2024 PARTITION OF events
            FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
        CREATE EXTENSION hypopg;
        """,
    )
    snap = snapshot(pg_app, statement_timeout_ms=2000)
    assert snap.dialect == "postgres" and snap.database == pg_app.rsplit("/", 1)[1]
    # no querywatch schema, no partitions, no pg_stat_statements / hypopg objects
    assert set(snap.tables) == {"orders", "customers", "billing.invoices", "events"}
    assert snap.tables["orders"] == (
        Column("id", "bigint", True, True),
        Column("customer_id", "integer", True, False),
        Column("status", "text", True, False),
        Column("total", "numeric", False, False),
        Column("created_at", "timestamp with time zone", True, True),
    )
    assert snap.tables["customers"][0] == Column("id", "integer", True, True)  # identity
    assert snap.tables["billing.invoices"][1].type == "numeric(10,2)"
    assert snap.indexes["orders_by_customer"] == "orders"
    assert SchemaSnapshot.from_json(snap.to_json()) == snap


def test_an_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(DatabaseUnavailable, match="cannot connect to") as caught:
        snapshot(closed_port_dsn())
    assert "hunter22" not in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(DatabaseUnavailable, match=r"no SQLite database at .*missing\.sqlite3"):
        snapshot(str(tmp_path / "missing.sqlite3"))


def test_a_corrupt_stored_snapshot_is_refused() -> None:
    with pytest.raises(SnapshotError, match="malformed"):
        SchemaSnapshot.from_json('{"format": 1, "dialect": "sqlite"}')
    with pytest.raises(SnapshotError, match="format 99"):
        SchemaSnapshot.from_json('{"format": 99}')


# -- diffs ----------------------------------------------------------------------------------------


def test_additive_changes_are_safe(app_db: Path) -> None:
    before = snapshot(str(app_db))
    sqlite_db(
        app_db,
        """
        CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT NOT NULL);
        ALTER TABLE orders ADD COLUMN note TEXT;
        ALTER TABLE orders ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX orders_by_status ON orders (status);
        DROP INDEX orders_by_customer;
        """,
    )
    changes = diff(before, snapshot(str(app_db)))
    assert changes.unsafe_reason() is None and not changes.unsafe
    assert changes.lines() == [
        "safe: table audit added",
        "safe: column orders.note added",
        "safe: column orders.priority added",
        "safe: index orders_by_customer on orders dropped",
        "safe: index orders_by_status on orders added",
    ]
    assert not diff(before, before)


def test_drop_type_change_and_not_null_without_default_are_unsafe(pg_app: str) -> None:
    before = snapshot(pg_app)
    pg_run(
        pg_app,
        """
        ALTER TABLE orders DROP COLUMN status;
        ALTER TABLE orders ALTER COLUMN total TYPE text;
        ALTER TABLE orders ADD COLUMN region text NOT NULL;
        ALTER TABLE orders ADD COLUMN note text;
        ALTER TABLE customers ADD COLUMN tier int NOT NULL DEFAULT 1;
        """,
    )
    changes = diff(before, snapshot(pg_app))
    assert changes.unsafe_reason() == (
        "column orders.status dropped; column orders.region added NOT NULL without a default; "
        "column orders.total type numeric → text"
    )
    assert [c.detail for c in changes.safe] == [
        "column customers.tier added",
        "column orders.note added",
    ]
    assert {(c.table, c.column) for c in changes.unsafe} == {
        ("orders", "status"),
        ("orders", "region"),
        ("orders", "total"),
    }


def test_dropped_and_renamed_tables_and_columns_are_unsafe(pg_app: str) -> None:
    pg_run(pg_app, "CREATE TABLE sessions (token text, user_id int)")
    before = snapshot(pg_app)
    pg_run(
        pg_app,
        """
        ALTER TABLE customers RENAME COLUMN email TO email_address;
        ALTER TABLE orders RENAME TO purchases;
        DROP TABLE sessions;
        ALTER TABLE customers ALTER COLUMN email_address SET NOT NULL;
        """,
    )
    reason = diff(before, snapshot(pg_app)).unsafe_reason()
    assert reason == (
        "table orders renamed to purchases; table sessions dropped; "
        "column customers.email renamed to email_address"
    )


def test_tightening_an_existing_column_is_unsafe(pg_app: str) -> None:
    before = snapshot(pg_app)
    pg_run(
        pg_app,
        "ALTER TABLE orders ALTER COLUMN total SET NOT NULL;"
        "ALTER TABLE orders ALTER COLUMN created_at DROP DEFAULT;"
        "ALTER TABLE orders ALTER COLUMN customer_id DROP NOT NULL;",
    )
    changes = diff(before, snapshot(pg_app))
    assert changes.unsafe_reason() == (
        "column orders.total made NOT NULL; column orders.created_at lost its default"
    )
    assert [c.detail for c in changes.safe] == ["column orders.customer_id made nullable"]


def test_a_sqlite_table_rebuild_that_changes_a_type_is_unsafe(app_db: Path) -> None:
    before = snapshot(str(app_db))
    sqlite_db(
        app_db,
        """
        CREATE TABLE customers_new (id INTEGER PRIMARY KEY AUTOINCREMENT, email BLOB);
        INSERT INTO customers_new SELECT * FROM customers;
        DROP TABLE customers;
        ALTER TABLE customers_new RENAME TO customers;
        """,
    )
    assert diff(before, snapshot(str(app_db))).unsafe_reason() == (
        "column customers.email type text → blob"
    )


def test_a_long_list_of_unsafe_changes_stays_one_line(tmp_path: Path) -> None:
    db = sqlite_db(tmp_path / "wide.sqlite3", "CREATE TABLE t (a, b, c, d, e, f, g, h, keep)")
    before = snapshot(str(db))
    sqlite_db(db, "".join(f"ALTER TABLE t DROP COLUMN {c};" for c in "abcdefgh"))
    reason = diff(before, snapshot(str(db))).unsafe_reason()
    assert reason is not None and "\n" not in reason
    assert reason.startswith("column t.a dropped; ") and reason.endswith("; and 3 more")


# -- deploy markers -------------------------------------------------------------------------------


def test_a_declared_migration_is_kept_on_the_marker_and_described(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "store.sqlite3"))
    try:
        marker = start_deploy(store, "v2", at=1_700_000_000.0, deploy_id="d-1")
        assert marker.migration is None
        again = start_deploy(store, "v2", deploy_id="d-1", migration=" add orders.region ")
        assert again.migration == "add orders.region"  # a retried start may add it
        [stored] = store.deploys()
        assert stored.migration == "add orders.region"
        assert stored.rollback_unsafe_reason == (
            "deploy d-1 declared a schema migration: add orders.region"
        )
        assert describe(stored).endswith(
            "in production; rollback unsafe: declared migration: add orders.region"
        )
    finally:
        store.close()


def test_the_api_accepts_a_migration(tmp_path: Path) -> None:
    with make_server(tmp_path / "store.sqlite3", "127.0.0.1", 0, no_auth=True) as server:
        server.start()
        body = json.dumps({"version": "v3", "migration": "drop orders.status"}).encode()
        status, reply = _post(server.url + "/api/deploys", body)
        assert status == 201, reply
        assert reply["data"]["migration"] == "drop orders.status"
        assert server.store.deploys()[0].migration == "drop orders.status"
        bad = json.dumps({"version": "v4", "migration": "line one\nline two"}).encode()
        status, refused = _post(server.url + "/api/deploys", bad)
        assert status == 400 and "migration must be one line" in str(refused)


def _post(url: str, body: bytes) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read())


def deploys_json(store: Path) -> list[dict[str, object]]:
    listed = run_cli("deploys", "--json", "--store", str(store))
    assert listed.returncode == 0, listed.stderr
    data: list[dict[str, object]] = json.loads(listed.stdout)["data"]
    return data


def test_cli_declared_migration_round_trip(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite3"
    started = run_cli(
        "deploy", "start", "--version", "2.5.0", "--migration", "orders.status becomes an enum",
        "--store", str(store), cwd=tmp_path,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip().endswith(
        "rollback unsafe: declared migration: orders.status becomes an enum"
    )
    [marker] = deploys_json(store)
    assert marker["migration"] == "orders.status becomes an enum"
    assert marker["schema_change"] is None


def test_cli_records_an_unsafe_schema_change_seen_during_the_deploy(
    tmp_path: Path, pg_app: str
) -> None:
    store = tmp_path / "store.sqlite3"
    env = {"QUERYWATCH_DSN": pg_app, "QUERYWATCH_STORE": str(store)}
    started = run_cli("deploy", "start", "--version", "2.5.0", "--id", "d-7", cwd=tmp_path, env=env)
    assert started.returncode == 0 and started.stderr == "", started.stderr
    pg_run(pg_app, "ALTER TABLE orders DROP COLUMN status; CREATE TABLE audit (id int)")
    # a retried start keeps the snapshot from before the migration
    retried = run_cli("deploy", "start", "--version", "2.5.0", "--id", "d-7", cwd=tmp_path, env=env)
    assert retried.returncode == 0 and retried.stderr == "", retried.stderr

    finished = run_cli("deploy", "finish", "--id", "d-7", cwd=tmp_path, env=env)
    assert finished.returncode == 0 and finished.stderr == "", finished.stderr
    lines = finished.stdout.splitlines()
    assert lines[0].endswith("rollback unsafe: schema change: column orders.status dropped")
    assert lines[1:] == [
        "  schema: unsafe: column orders.status dropped",
        "  schema: safe: table audit added",
    ]
    [marker] = deploys_json(store)
    assert marker["schema_change"] == "column orders.status dropped"
    assert marker["finished_at"] is not None and marker["migration"] is None
    with open_store(str(store)) as s:
        assert s.deploys()[0].rollback_unsafe_reason == (
            "the schema changed during deploy d-7: column orders.status dropped"
        )


def test_cli_additive_change_leaves_the_deploy_safe_to_roll_back(
    tmp_path: Path, app_db: Path
) -> None:
    store = tmp_path / "store.sqlite3"
    env = {"QUERYWATCH_DSN": str(app_db), "QUERYWATCH_STORE": str(store)}
    started = run_cli("deploy", "start", "--version", "7", "--json", cwd=tmp_path, env=env)
    assert started.returncode == 0 and started.stderr == "", started.stderr
    sqlite_db(app_db, "ALTER TABLE orders ADD COLUMN note TEXT")
    finished = run_cli("deploy", "finish", "--version", "7", "--json", cwd=tmp_path, env=env)
    assert finished.returncode == 0, finished.stderr
    envelope = json.loads(finished.stdout)  # stdout stays one envelope; the changes go to stderr
    assert envelope["data"]["schema_change"] is None and envelope["data"]["finished_at"]
    assert finished.stderr.splitlines() == ["  schema: safe: column orders.note added"]


def test_cli_unreachable_dsn_warns_and_still_records_the_deploy(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite3"
    dsn = closed_port_dsn()
    started = run_cli(
        "deploy", "start", "--version", "8", "--dsn", dsn, "--store", str(store), cwd=tmp_path
    )
    assert started.returncode == 0, started.stderr
    [warning] = started.stderr.splitlines()
    assert warning.startswith("querywatch: warning: no schema snapshot")
    assert "cannot connect to" in warning and "hunter22" not in warning
    assert "Traceback" not in started.stderr

    finished = run_cli(
        "deploy", "finish", "--version", "8", "--dsn", dsn, "--store", str(store), cwd=tmp_path
    )
    assert finished.returncode == 0, finished.stderr
    [warning] = finished.stderr.splitlines()
    assert warning.startswith("querywatch: warning: schema changes of deploy production:8:")
    [marker] = deploys_json(store)
    assert marker["finished_at"] is not None and marker["schema_change"] is None


def test_cli_finish_without_a_start_snapshot_warns(tmp_path: Path, app_db: Path) -> None:
    store = str(tmp_path / "store.sqlite3")
    assert run_cli("deploy", "start", "--version", "9", "--store", store).returncode == 0
    finished = run_cli("deploy", "finish", "--version", "9", "--store", store, "--dsn", str(app_db))
    assert finished.returncode == 0, finished.stderr
    [warning] = finished.stderr.splitlines()
    assert "no schema snapshot from the start of deploy production:9:" in warning
