"""Statements are planned while their database exists: at first sight during the tests, or at
the end of their test before its fixtures are torn down, on the gate's own read-only session.

Real test suites drop their databases (pytest-django, a ``tmp_path`` file) in session fixtures,
which pytest finalizes before ``pytest_sessionfinish``, and drop the tables each test created;
applications register SQLite functions on their own connections (Django). Each case here is a
real pytest subprocess or the collector patched in process, as `pytest --querywatch` runs it."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import psycopg

from cli_helpers import run_cli
from gate_helpers import pytest_in, write_project
from querywatch.gate import Collector, GateRun, run_check
from querywatch.gate.connections import patch
from querywatch.gate.early import LOCK_WAIT_MS, EarlyPlanner

CAST_APP = '''
def orders_of(conn, customer_id):
    """The id compared as text: no index can serve it."""
    return conn.execute(
        "SELECT id FROM orders WHERE CAST(customer_id AS TEXT) = ?", (str(customer_id),)
    ).fetchall()
'''

REMOVED_DB_TESTS = """
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest

import app


@pytest.fixture(scope="session")
def db():
    # as pytest-django does: the test database is gone when the session's fixtures are torn
    # down, which pytest does inside the last test's teardown
    home = Path(tempfile.mkdtemp())
    conn = sqlite3.connect(home / "test.db")
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL)")
    conn.executemany(
        "INSERT INTO orders (customer_id) VALUES (?)", ((i % 5000,) for i in range(200_000))
    )
    conn.execute("CREATE INDEX orders_customer ON orders (customer_id)")
    conn.commit()
    yield conn
    conn.close()
    shutil.rmtree(home)


def test_orders(db):
    assert len(app.orders_of(db, 42)) == 40
"""


def test_a_database_the_session_removes_is_planned_while_it_exists(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", CAST_APP, REMOVED_DB_TESTS)
    result = pytest_in(project, "--querywatch")
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "1 passed" in out
    assert "function-on-indexed-column (error) at app.py:3 in orders_of" in out
    assert "removed before the check" not in out and "Could not check" not in out
    run_file = project / ".querywatch" / "gate-run.json"
    run = GateRun.load(run_file)
    [cast] = [s for s in run.statements.values() if "cast(" in s.normalized]
    [db] = run.databases.values()
    assert not Path(db.target).exists()  # the session removed it
    assert run.plans[cast.fingerprint].planned
    # `querywatch check` on the saved run file gives the same verdict, the database long gone
    again = run_cli("check", "--run", str(run_file), "--baseline", str(tmp_path / "b.json"))
    assert again.returncode == 1, again.stdout + again.stderr
    assert "function-on-indexed-column (error) at app.py:3" in again.stdout


DJANGO_LIKE_APP = '''
import sqlite3


def connect(path):
    """Like Django's SQLite backend: functions registered on every connection it opens."""
    conn = sqlite3.connect(path)
    conn.create_function("app_date_extract", 2, lambda part, value: value, deterministic=True)
    conn.create_aggregate("app_stddev", 1, Spread)
    conn.create_collation("app_nocase", nocase)
    return conn


def nocase(a, b):
    return (a.lower() > b.lower()) - (a.lower() < b.lower())


class Spread:
    def __init__(self):
        self.values = []

    def step(self, value):
        self.values.append(value)

    def finalize(self):
        return max(self.values) - min(self.values) if self.values else None


def events_in(conn, year):
    return conn.execute(
        "SELECT id FROM events WHERE app_date_extract('year', day) = ? ORDER BY name"
        " COLLATE app_nocase",
        (year,),
    ).fetchall()


def spread(conn):
    return conn.execute("SELECT app_stddev(id) FROM events").fetchone()[0]


def add(conn, name, day):
    conn.execute("INSERT INTO events (name, day) VALUES (?, ?)", (name, day))
'''

DJANGO_LIKE_TESTS = """
import unittest

import pytest

import app


@pytest.fixture(scope="session")
def path(tmp_path_factory):
    return tmp_path_factory.mktemp("data") / "app.db"


class EventsTest(unittest.TestCase):
    # as dataset's tests do: every table is created in setUp and dropped in tearDown
    @pytest.fixture(autouse=True)
    def _path(self, path):
        self.path = path

    def setUp(self):
        self.conn = app.connect(self.path)
        self.conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, name TEXT, day TEXT)")
        self.conn.commit()

    def tearDown(self):
        self.conn.execute("DROP TABLE events")
        self.conn.close()

    def test_events(self):
        app.add(self.conn, "launch", "2026")
        self.conn.commit()
        assert app.events_in(self.conn, "2026") == [(1,)]
        assert app.spread(self.conn) == 0
"""


def test_tables_a_test_drops_and_registered_functions_are_planned(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", DJANGO_LIKE_APP, DJANGO_LIKE_TESTS)
    result = pytest_in(project, "--querywatch")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "not checkable" not in out and "were not EXPLAINed" not in out
    run = GateRun.load(project / ".querywatch" / "gate-run.json")
    assert {(k, n) for k, n, _ in run.functions} == {
        ("function", "app_date_extract"),
        ("aggregate", "app_stddev"),
        ("collation", "app_nocase"),
    }
    assert ("function", "app_date_extract", 2) in run.functions
    reads = {
        s.normalized: run.plans[fp]
        for fp, s in run.statements.items()
        if s.normalized.startswith(("select", "insert"))
    }
    assert len(reads) == 3
    assert all(p.planned for p in reads.values()), reads


def test_a_lock_the_application_holds_moves_planning_to_the_end_of_the_test(
    tmp_path: Path,
) -> None:
    """The application's exclusive lock is waited on briefly, never for the statement timeout;
    the statement is planned when the test ends."""
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as setup:
        setup.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER)")
    collector = Collector()
    planner = EarlyPlanner(collector, statement_timeout_ms=5000)
    undo = patch(collector)
    planner.attach()
    try:
        conn = sqlite3.connect(db, isolation_level=None)
        with collector.test("tests/test_app.py::test_locked"):
            conn.execute("BEGIN EXCLUSIVE")
            started = time.monotonic()
            conn.execute("SELECT id FROM orders WHERE customer_id = ?", (1,)).fetchall()
            waited = time.monotonic() - started
            conn.execute("COMMIT")
        [fp] = [fp for fp, s in collector.run().statements.items() if "customer_id" in s.normalized]
        assert collector.plan_of(fp) is None  # locked at first sight: not planned yet
        planner.end_of_test()
        conn.close()
    finally:
        planner.detach()
        undo()
    assert waited < 2 * LOCK_WAIT_MS / 1000 + 0.5
    run = collector.close()
    assert run.plans[fp].planned and set(run.plans[fp].access) == {"orders"}
    # nothing the gate ran on its own sessions was recorded
    assert all("sqlite_master" not in s.normalized for s in run.statements.values())
    assert len(run.databases) == 1


PG_APP = """
def orders_of(conn, customer_id):
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id FROM orders WHERE CAST(customer_id AS text) = %s", (str(customer_id),)
        )
        return cur.fetchall()
"""

PG_TESTS = """
import os
import uuid

import psycopg
import pytest

import app

ADMIN = os.environ["QW_TEST_PG"]


@pytest.fixture(scope="session")
def db():
    # as pytest-django does: a test database created for the session, dropped at its end
    # (without FORCE: it fails while anyone else, the gate included, is connected)
    name = f"test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    conn = psycopg.connect(ADMIN.rsplit("/", 1)[0] + "/" + name, autocommit=True)
    conn.execute("CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL)")
    conn.execute(
        "INSERT INTO orders (customer_id) SELECT g % 5000 FROM generate_series(1, 200000) g"
    )
    conn.execute("CREATE INDEX orders_customer ON orders (customer_id)")
    conn.execute("ANALYZE orders")
    yield conn
    conn.close()
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}"')
        gone = admin.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,))
        assert gone.fetchone() == (0,)


def test_orders(db):
    assert len(app.orders_of(db, 42)) == 40
"""


def test_a_postgres_test_database_dropped_at_session_end(pg_dsn: str, tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", PG_APP, PG_TESTS)
    os.environ["QW_TEST_PG"] = pg_dsn
    try:
        result = pytest_in(project, "--querywatch")
    finally:
        del os.environ["QW_TEST_PG"]
    out = result.stdout + result.stderr
    assert "= 1 passed in" in out, out  # no teardown error: the DROP DATABASE worked
    assert result.returncode == 1, out
    assert "function-on-indexed-column (error) at app.py:3 in orders_of" in out
    assert "Could not check" not in out
    run = json.loads((project / ".querywatch" / "gate-run.json").read_text())
    reads = [fp for fp, s in run["statements"].items() if s["normalized"].startswith("select")]
    assert reads and all("error" not in run["plans"][fp] for fp in reads)
    with psycopg.connect(pg_dsn) as conn:  # the gate left no session behind
        assert conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'querywatch%%'"
        ).fetchone() == (0,)


def test_planned_runs_survive_the_run_file(tmp_path: Path) -> None:
    """Plans, functions and findings kept during the run read back as they were written."""
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as setup:
        setup.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT)")
    collector = Collector()
    planner = EarlyPlanner(collector)
    undo = patch(collector)
    planner.attach()
    try:
        conn = sqlite3.connect(db)
        conn.create_function("f", 1, str)
        with collector.test("t::x"):
            conn.execute("SELECT * FROM t WHERE f(a) = ?", ("x",)).fetchall()
        conn.close()
    finally:
        planner.detach()
        undo()
    run = collector.close()
    run.save(tmp_path / "run.json")
    again = GateRun.load(tmp_path / "run.json")
    assert again.plans == run.plans and again.functions == run.functions == {("function", "f", 1)}
    [record] = again.plans.values()
    assert record.planned and record.access == {"t": "seq"}
    report = run_check(again, baseline_path=tmp_path / "b.json")
    assert [q.explained for q in report.queries] == [True]
