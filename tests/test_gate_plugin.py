"""`pytest --querywatch` on a small sample project in a temp dir, as a real pytest subprocess:
it fails on the full scan and names the query and its call site, then passes once the query is
fixed; the plugin does nothing without the flag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import gate_helpers
from gate_helpers import pytest_in

BAD_APP = '''
def orders_of(conn, customer_id):
    """A customer's orders; the id is compared as text, so no index can serve it."""
    return conn.execute(
        "SELECT id, total_cents FROM orders WHERE CAST(customer_id AS TEXT) = ?",
        (str(customer_id),),
    ).fetchall()
'''

FIXED_APP = '''
def orders_of(conn, customer_id):
    """A customer's orders, through the index on customer_id."""
    return conn.execute(
        "SELECT id, total_cents FROM orders WHERE customer_id = ?",
        (customer_id,),
    ).fetchall()
'''

TESTS = """
import sqlite3

import pytest

import app


@pytest.fixture(scope="session")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "shop.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL,"
        " total_cents INTEGER NOT NULL)"
    )
    conn.executemany(
        "INSERT INTO orders (customer_id, total_cents) VALUES (?, ?)",
        ((i % 5000, i) for i in range(200_000)),
    )
    conn.execute("CREATE INDEX orders_customer ON orders (customer_id)")
    conn.commit()
    yield conn
    conn.close()


def test_orders_of_a_customer(db):
    assert len(app.orders_of(db, 42)) == 40


def test_connections_are_real_sqlite3_connections(db):
    assert isinstance(db, sqlite3.Connection)
"""


def write_project(root: Path, app: str = BAD_APP, tests: str = TESTS) -> Path:
    return gate_helpers.write_project(root, app, tests)


def test_fails_on_the_full_scan_then_passes_after_the_fix(tmp_path: Path) -> None:
    project = write_project(tmp_path / "shop")
    bad = pytest_in(project, "--querywatch")
    out = bad.stdout
    assert bad.returncode == 1, out + bad.stderr
    assert "2 passed" in out  # the tests pass; the gate fails the session
    assert "querywatch check failed" in out
    assert "select id, total_cents from orders where cast(customer_id as text) = ?" in out
    assert "function-on-indexed-column (error) at app.py:3 in orders_of" in out
    assert "200,000 rows" in out
    run = json.loads((project / ".querywatch" / "gate-run.json").read_text())
    [cast] = [s for s in run["statements"].values() if "cast(" in s["normalized"]]
    usage = next(
        u
        for t, usages in run["tests"].items()
        if t == "test_app.py::test_orders_of_a_customer"
        for fp, u in usages.items()
        if run["statements"][fp] is cast
    )
    assert usage["count"] == 1
    assert usage["sites"] == [{"path": "app.py", "line": 3, "function": "orders_of", "count": 1}]
    [insert] = [s for s in run["statements"].values() if s["normalized"].startswith("insert")]
    assert insert["dialect"] == "sqlite" and run["databases"][insert["databases"][0]][
        "target"
    ].endswith("shop.db")

    write_project(project, FIXED_APP)
    good = pytest_in(project, "--querywatch")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "querywatch check passed" in good.stdout


def test_without_the_flag_nothing_is_recorded_or_patched(tmp_path: Path) -> None:
    tests = """
    import sqlite3

    def test_plain():
        conn = sqlite3.connect(":memory:")
        assert type(conn) is sqlite3.Connection
        assert conn.execute("SELECT 1").fetchone() == (1,)
    """
    project = write_project(tmp_path / "p", tests=tests)
    result = pytest_in(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "querywatch" not in result.stdout
    assert not (project / ".querywatch").exists()


def test_update_baseline_accepts_then_gate_passes(tmp_path: Path) -> None:
    project = write_project(tmp_path / "shop")
    accepted = pytest_in(project, "--querywatch", "--querywatch-update-baseline")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "baseline written to" in accepted.stdout
    baseline = json.loads((project / "querywatch.baseline.json").read_text())
    rules = {r for e in baseline["fingerprints"].values() for r in e["accepted"]}
    assert "function-on-indexed-column" in rules
    again = pytest_in(project, "--querywatch")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "accepted by the baseline" in again.stdout


def test_failing_tests_keep_their_status_and_still_get_the_report(tmp_path: Path) -> None:
    tests = (
        TESTS
        + """

def test_broken(db):
    assert app.orders_of(db, 1) == []
"""
    )
    project = write_project(tmp_path / "shop", tests=tests)
    result = pytest_in(project, "--querywatch", "--querywatch-run", "out/run.json")
    assert result.returncode == 1
    assert "1 failed" in result.stdout and "querywatch check failed" in result.stdout
    assert (project / "out" / "run.json").is_file()


@pytest.mark.parametrize("flag", ["--querywatch-explain-dsn=postgresql://x@127.0.0.1:1/none"])
def test_could_not_check_exits_2(tmp_path: Path, flag: str) -> None:
    tests = """
    import sqlite3

    def test_n_plus_one(tmp_path):
        conn = sqlite3.connect(tmp_path / "db.sqlite")
        conn.execute("CREATE TABLE t (a INTEGER)")
        for i in range(3):
            conn.execute("SELECT a FROM t WHERE a = ?", (i,)).fetchall()
    """
    project = write_project(tmp_path / "p", tests=tests)
    result = pytest_in(project, "--querywatch", flag)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "querywatch: could not check: --explain-dsn: cannot connect" in result.stdout


LOADER_APP = """
def load(conn, ids):
    out = []
    for i in ids:
        out.append(conn.execute("SELECT a FROM t WHERE a = ?", (i,)).fetchone())
    return out
"""


def test_n_plus_one_in_a_test_fails_the_session(tmp_path: Path) -> None:
    tests = """
    import sqlite3

    import app

    def test_page(tmp_path_factory):
        conn = sqlite3.connect(tmp_path_factory.getbasetemp() / "db.sqlite")
        conn.execute("CREATE TABLE IF NOT EXISTS t (a INTEGER)")
        app.load(conn, range(11))

    def test_loop_building_data(tmp_path_factory):
        conn = sqlite3.connect(tmp_path_factory.getbasetemp() / "db.sqlite")
        for i in range(30):  # 30 calls of one statement each: the test's own loop
            app.load(conn, [i])
    """
    project = write_project(tmp_path / "p", app=LOADER_APP, tests=tests)
    result = pytest_in(project, "--querywatch")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "n-plus-one (warning) at app.py:4 in load" in result.stdout
    assert "test_app.py::test_page runs this statement 11 times (more than 10)" in result.stdout
    assert "in one call of load (app.py)" in result.stdout
    assert "test_loop_building_data runs" not in result.stdout and "other test" not in result.stdout
    ok = pytest_in(project, "--querywatch", "--querywatch-max-repeats", "11")
    assert ok.returncode == 0, ok.stdout + ok.stderr


SUITE_APP = """
import os
import secrets


def transform(conn):
    # Rebuild a table the way sqlite-utils does: random savepoint and table names.
    savepoint = f"app_{secrets.token_hex(16)}"
    tmp = f"items_new_{os.urandom(6).hex()}"
    conn.execute(f"SAVEPOINT {savepoint}")
    conn.execute(f'CREATE TABLE "{tmp}" (id INTEGER PRIMARY KEY, name TEXT)')
    conn.execute(f'INSERT INTO "{tmp}" (id, name) SELECT id, name FROM items')
    conn.execute("DROP TABLE items")
    conn.execute(f'ALTER TABLE "{tmp}" RENAME TO items')
    conn.execute(f"RELEASE SAVEPOINT {savepoint}")


def shout(conn):
    fn = lambda s: s.upper()
    name = f"lambda_{abs(hash(fn))}"
    conn.create_function(name, 1, fn)
    return conn.execute(f"SELECT {name}(name) FROM items WHERE id = ?", (1,)).fetchall()


def scratch(conn):
    table = f"t{secrets.token_hex(16)}"
    conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute(f"INSERT INTO {table} (id, name) VALUES (?, ?)", (1, "a"))
    conn.execute(f"SELECT name FROM {table} WHERE id = ?", (1,)).fetchall()
    conn.execute(f"DROP TABLE {table}")


def everything(conn):
    rows = conn.execute("SELECT * FROM items").fetchall()  # select-star: info
    for item_id, _ in rows * 10:  # n-plus-one: a warning, accepted
        conn.execute("SELECT name FROM items WHERE id = ?", (item_id,)).fetchall()
    conn.execute("DELETE FROM items")  # every row of a 2-row table: nothing, the plan says
    return rows
"""

SUITE_TESTS = """
import sqlite3

import pytest

import app


@pytest.fixture
def conn(tmp_path):
    conn = sqlite3.connect(tmp_path / "db.sqlite")
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
    conn.executemany("INSERT INTO items (name) VALUES (?)", [("a",), ("b",)])
    conn.commit()
    yield conn
    conn.close()


def test_transform(conn):
    app.transform(conn)


def test_shout(conn):
    assert app.shout(conn) == [("A",)]


def test_scratch(conn):
    app.scratch(conn)


def test_everything(conn):
    assert len(app.everything(conn)) == 2
"""


def test_a_second_identical_run_passes_against_the_baseline(tmp_path: Path) -> None:
    """Generated table, savepoint and function names, temporary tables: the baseline written by
    the first run accepts the second; nothing is "could not check"; info never fails."""
    project = write_project(tmp_path / "suite", app=SUITE_APP, tests=SUITE_TESTS)
    first = pytest_in(project, "--querywatch")
    assert first.returncode == 1, first.stdout + first.stderr  # the N+1
    assert "n-plus-one (warning)" in first.stdout
    assert "update-or-delete-without-where" not in first.stdout  # planned: 2 rows, no harm
    assert "Could not check" not in first.stdout
    assert "below --fail-on warning" in first.stdout and "select-star (info)" in first.stdout
    accepted = pytest_in(project, "--querywatch", "--querywatch-update-baseline")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    second = pytest_in(project, "--querywatch")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "querywatch check passed" in second.stdout
    runs = json.loads((project / ".querywatch" / "gate-run.json").read_text())
    texts = {s["normalized"] for s in runs["statements"].values()}
    assert 'create table "items_new_?"(id integer primary key, name text)' in texts
    assert "savepoint ?" in texts and "select lambda_?(name) from items where id = ?" in texts
