"""The gate is quiet where it should be: N+1 is repeated reads by the application (not batched
writes, test loops or Hypothesis examples), statements on objects the tests made and removed are
not "could not check", samples are never cut, severities decide the exit code and SARIF level,
and advice fits the dialect."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gate_helpers import batched_import, home_page, issue, query_per_row, record_test, save
from querywatch.gate import Collector, GateRun, render, run_check
from querywatch.gate import collect as collect_module
from querywatch.sql import rules as sql_rules

READ = "SELECT id FROM orders WHERE customer_id = ?"


def make_db(path: Path, rows: int = 500) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL)")
    conn.executemany(
        "INSERT INTO orders (customer_id) VALUES (?)", [(i % 50,) for i in range(rows)]
    )
    conn.execute("CREATE INDEX orders_customer ON orders (customer_id)")
    conn.commit()
    conn.close()
    return path


def check(tmp_path: Path, body, **kwargs):
    db = tmp_path / "app.db"
    if not db.exists():
        make_db(db)
    run = record_test(db, body, "tests/test_app.py::test_it")
    return run, run_check(run, baseline_path=tmp_path / "b.json", **kwargs)


# -- N+1 -------------------------------------------------------------------------------------------


def test_a_batched_insert_repeated_in_one_call_is_not_n_plus_one(tmp_path: Path) -> None:
    run, report = check(tmp_path, lambda conn: batched_import(conn, 100))
    [usage] = run.tests["tests/test_app.py::test_it"].values()
    assert usage.count == 100 and usage.max_per_call == 100  # one call, 100 statements...
    assert report.new == [] and report.exit_code == 0  # ...but writes, not repeated reads


def test_a_test_loop_over_the_application_is_not_n_plus_one(tmp_path: Path) -> None:
    def body(conn: sqlite3.Connection) -> None:
        for cid in range(50):  # the test builds its data: 50 calls of one statement each
            save(conn, READ, cid)

    run, report = check(tmp_path, body)
    [usage] = run.tests["tests/test_app.py::test_it"].values()
    assert (usage.count, usage.max_per_call) == (50, 1)
    assert usage.call is not None and usage.call.startswith("save (")
    assert report.new == [] and report.exit_code == 0


def test_statements_the_test_issues_itself_are_not_n_plus_one(tmp_path: Path) -> None:
    def body(conn: sqlite3.Connection) -> None:
        for cid in range(50):
            conn.execute(READ, (cid,)).fetchall()

    run, report = check(tmp_path, body)
    [usage] = run.tests["tests/test_app.py::test_it"].values()
    assert (usage.count, usage.max_per_call) == (50, 0)
    assert report.new == []


def test_hypothesis_examples_are_not_n_plus_one(tmp_path: Path) -> None:
    """A property-based test runs its body once per example: repeats proportional to the
    examples run are not N+1; one example that loops in the application still is."""
    db = make_db(tmp_path / "app.db")
    collector = Collector()
    conn = collector.wrap(sqlite3.connect(db))

    @settings(max_examples=40, database=None, deadline=None)
    @given(st.integers(0, 49))
    def lookup_one(cid: int) -> None:
        save(conn, READ, cid)

    with collector.test("tests/test_app.py::test_lookup"):
        lookup_one()
    run = collector.close()
    [usage] = run.tests["tests/test_app.py::test_lookup"].values()
    assert usage.count > 10 and usage.max_per_call == 1
    assert run_check(run, baseline_path=tmp_path / "b.json").new == []

    collector = Collector()
    conn = collector.wrap(sqlite3.connect(db))

    @settings(max_examples=5, database=None, deadline=None)
    @given(st.integers(11, 20))
    def page(customers: int) -> None:
        home_page(conn, customers)

    with collector.test("tests/test_app.py::test_page"):
        page()
    report = run_check(collector.close(), baseline_path=tmp_path / "b.json")
    assert [f.rule for f in report.new] == ["n-plus-one"]


def test_n_plus_one_advice_fits_the_dialect(tmp_path: Path) -> None:
    _run, report = check(tmp_path, lambda conn: query_per_row(conn, READ, 12))
    [finding] = report.new
    assert "IN (?" in finding.fix and "ANY(" not in finding.fix
    assert "in one call of query_per_row" in finding.message

    collector = Collector()
    with collector.test("tests/test_pg.py::test_page"):
        issue(collector, READ.replace("?", "%s"), "postgres", 12)
    pg = run_check(collector.close(), baseline_path=tmp_path / "b.json")
    [finding] = [f for f in pg.new if f.rule == "n-plus-one"]
    assert "= ANY(%s)" in finding.fix


# -- objects the tests made themselves -------------------------------------------------------------


def transform(conn: sqlite3.Connection) -> None:
    """Application code that rebuilds a table the way sqlite-utils does: a new table with a
    random suffix, copied, swapped in, inside a savepoint with a random name."""
    tmp = f"orders_new_{os.urandom(6).hex()}"
    savepoint = f"app_{os.urandom(16).hex()}"
    conn.execute(f"SAVEPOINT {savepoint}")
    conn.execute(f'CREATE TABLE "{tmp}" (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL)')
    conn.execute(f'INSERT INTO "{tmp}" (id, customer_id) SELECT id, customer_id FROM orders')
    conn.execute('SELECT count(*) FROM "' + tmp + '" WHERE customer_id = ?', (3,)).fetchall()
    conn.execute("DROP TABLE orders")
    conn.execute(f'ALTER TABLE "{tmp}" RENAME TO orders')
    conn.execute("CREATE INDEX orders_customer ON orders (customer_id)")
    conn.execute(f"RELEASE SAVEPOINT {savepoint}")


def with_function(conn: sqlite3.Connection) -> None:
    """A function registered on the connection under a generated name, as sqlite-utils does."""

    def double(x: int) -> int:
        return 2 * x

    name = f"lambda_{abs(hash(double))}"
    conn.create_function(name, 1, double)
    conn.execute(f"SELECT {name}(customer_id) FROM orders WHERE id = ?", (1,)).fetchall()


def test_tables_and_functions_the_tests_made_are_not_could_not_check(tmp_path: Path) -> None:
    def body(conn: sqlite3.Connection) -> None:
        transform(conn)
        with_function(conn)
        conn.execute("CREATE TEMP TABLE scratch (a INTEGER)")
        conn.execute("SELECT a FROM scratch WHERE a = ?", (1,)).fetchall()
        conn.execute("DROP TABLE scratch")

    run, report = check(tmp_path, body)
    assert {"orders_new_?", "scratch", "lambda_?"} <= run.objects
    assert report.unchecked == [] and report.exit_code == 0
    quiet = sorted(q.normalized for q in report.queries if q.not_checkable == "temporary")
    assert quiet == [
        'insert into "orders_new_?"(id, customer_id) select id, customer_id from orders',
        "select a from scratch where a = ?",
        'select count(*) from "orders_new_?" where customer_id = ?',
    ]
    assert any(
        n.startswith("3 statement(s) used a table or function the tests") for n in report.notes
    )
    # the registered function gets a stand-in of its name and arity on the EXPLAIN session
    [(kind, _name, narg)] = run.functions
    assert (kind, narg) == ("function", 1)
    [called] = [q for q in report.queries if q.normalized.startswith("select lambda_?")]
    assert called.explained and called.not_checkable is None
    assert "Could not check" not in render(report, "terminal")


def test_a_column_the_run_dropped_and_a_dotted_table_name_are_not_could_not_check(
    tmp_path: Path,
) -> None:
    def body(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE trees (id INTEGER PRIMARY KEY, species TEXT)")
        conn.execute('CREATE TABLE "http://example.com" (id INTEGER PRIMARY KEY, c1 TEXT)')
        conn.execute('SELECT c1 FROM "http://example.com" WHERE id = ?', (1,)).fetchall()
        conn.execute("SELECT trees.species FROM trees WHERE id = ?", (1,)).fetchall()
        conn.execute('DROP TABLE "http://example.com"')
        conn.execute("DROP TABLE trees")  # rebuilt without the column, as a transform does
        conn.execute("CREATE TABLE trees (id INTEGER PRIMARY KEY)")

    _run, report = check(tmp_path, body)
    assert report.unchecked == [] and report.exit_code == 0
    assert sum(q.not_checkable == "temporary" for q in report.queries) == 2


def test_a_statement_that_failed_in_the_test_too_is_not_could_not_check(tmp_path: Path) -> None:
    def body(conn: sqlite3.Connection) -> None:
        with pytest.raises(sqlite3.OperationalError):  # a test of error handling
            conn.execute("INSERT INTO orders (id, customer_id) VALUE (?, ?)", (1, 2))

    run, report = check(tmp_path, body)
    assert [s.errors for s in run.statements.values()] == [1]
    assert report.unchecked == [] and report.exit_code == 0
    assert any("failed when the tests ran them" in note for note in report.notes)


def test_a_missing_table_the_tests_never_made_is_still_reported(tmp_path: Path) -> None:
    db = make_db(tmp_path / "app.db")
    collector = Collector()
    target = collector.database("sqlite", str(db))
    with collector.test("t::x"):
        collector.record("SELECT a FROM never_created WHERE a = 1", "sqlite", target)
    report = run_check(collector.close(), baseline_path=tmp_path / "b.json")
    [entry] = report.unchecked
    assert "no such table: never_created" in entry.message and report.exit_code == 2


def test_a_test_database_removed_before_the_check_is_noted_not_unchecked(tmp_path: Path) -> None:
    work = tmp_path / "gone"
    work.mkdir()
    make_db(work / "app.db")
    run = record_test(work / "app.db", lambda c: c.execute(READ, (1,)).fetchall(), "t::x")
    shutil.rmtree(work)
    report = run_check(run, baseline_path=tmp_path / "b.json")
    assert report.unchecked == [] and report.exit_code == 0
    assert any("removed before the check" in note for note in report.notes)


# -- samples -------------------------------------------------------------------------------------


def long_in_list(n: int) -> str:
    return "SELECT id FROM orders WHERE customer_id IN (" + ", ".join(map(str, range(n))) + ")"


def test_a_long_statement_is_kept_whole_and_checked(tmp_path: Path) -> None:
    sql = long_in_list(6000)
    assert len(sql) > 20_000
    run, report = check(tmp_path, lambda conn: conn.execute(sql).fetchall())
    [stmt] = run.statements.values()
    assert stmt.sample == sql
    assert report.unchecked == [] and [q.explained for q in report.queries] == [True]


def test_a_statement_too_long_to_keep_is_noted_never_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collect_module, "MAX_SAMPLE", 1000)
    long, short = long_in_list(400), long_in_list(3)

    def body(conn: sqlite3.Connection) -> None:
        conn.execute(long).fetchall()

    run, report = check(tmp_path, body)
    [stmt] = run.statements.values()
    assert stmt.sample is None and stmt.too_long == len(long)
    assert report.unchecked == [] and report.new == []  # no parse error from a cut text
    [q] = report.queries
    assert q.not_checkable == "too-long"
    assert any("too long to check" in note for note in report.notes)
    again = GateRun.from_json(json.loads(json.dumps(run.to_json())))
    assert again.statements[stmt.fingerprint].too_long == len(long)

    run, _ = check(tmp_path, lambda conn: (body(conn), conn.execute(short).fetchall()))
    assert [s.sample for s in run.statements.values()] == [short]  # the first text that fits


# -- severities ------------------------------------------------------------------------------------


def test_info_never_fails_and_is_a_sarif_note(tmp_path: Path) -> None:
    _run, report = check(
        tmp_path, lambda conn: conn.execute("SELECT * FROM orders WHERE id = ?", (1,)).fetchall()
    )
    assert [(f.rule, f.severity) for f in report.new] == [("select-star", "info")]
    assert report.failing == [] and report.exit_code == 0
    assert report.below == report.new
    sarif = json.loads(render(report, "sarif"))
    [result] = sarif["runs"][0]["results"]
    assert result["level"] == "note"
    assert sarif["runs"][0]["tool"]["driver"]["rules"][0]["defaultConfiguration"] == {
        "level": "note"
    }
    text = render(report, "terminal")
    assert text.startswith("querywatch check passed") and "below --fail-on warning" in text
    assert "<failure" not in render(report, "junit")


def test_fail_on_error_lets_warnings_pass(tmp_path: Path) -> None:
    def body(conn: sqlite3.Connection) -> None:
        home_page(conn, 12)

    _run, default = check(tmp_path, body)
    assert default.exit_code == 1
    [level] = [r["level"] for r in json.loads(render(default, "sarif"))["runs"][0]["results"]]
    assert level == "warning"
    _run, lenient = check(tmp_path, body, fail_on="error")
    assert lenient.exit_code == 0 and [f.rule for f in lenient.below] == ["n-plus-one"]


# -- lint rules that need a plan -----------------------------------------------------------------

LIKE = "SELECT id FROM people WHERE name LIKE '%son'"


def people(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS people (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("CREATE INDEX IF NOT EXISTS people_name ON people (name)")
    conn.execute(LIKE).fetchall()


def test_a_lint_guess_yields_to_the_plan_and_is_a_note_without_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rule whose verdict depends on sizes and indexes (``needs_plan``) is dropped where the
    plan rules judged the statement, and kept as ``info`` (never failing) where no plan could
    be had."""
    monkeypatch.setattr(
        sql_rules,
        "RULES",
        tuple(
            replace(r, needs_plan=r.id == "leading-wildcard-like" or r.needs_plan)
            for r in sql_rules.RULES
        ),
    )
    _run, planned = check(tmp_path, people)  # 0 rows: the plan rules see nothing to flag
    [q] = [q for q in planned.queries if q.normalized.startswith("select")]
    assert q.explained and q.findings == [] and planned.exit_code == 0

    collector = Collector()  # the same statement where no plan can be had (in memory)
    memory = collector.wrap(sqlite3.connect(":memory:"))
    with collector.test("tests/test_app.py::test_it"):
        people(memory)
    unplanned = run_check(collector.close(), baseline_path=tmp_path / "m.json")
    [q] = [q for q in unplanned.queries if q.normalized.startswith("select")]
    [finding] = q.findings
    assert (finding.rule, finding.severity) == ("leading-wildcard-like", "info")
    assert "the plan could not be checked" in finding.message
    assert finding.evidence["needs_plan"] is True  # as `querywatch lint` marks it
    assert unplanned.failing == [] and unplanned.exit_code == 0
