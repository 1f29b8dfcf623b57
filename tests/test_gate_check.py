"""The gate's check on real databases: N+1, plan findings, statements it cannot check, an
unreachable --explain-dsn, PostgreSQL through a patched psycopg.connect, and the exit codes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from cli_helpers import assert_one_line_error, run_cli
from gate_helpers import home_page, record_test
from querywatch.gate import Collector, GateRun, run_check
from querywatch.gate.collect import GateInputError
from querywatch.gate.connections import patch


def make_db(path: Path, rows: int = 1000, *, index: bool = True) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    conn.execute(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL,"
        " total_cents INTEGER NOT NULL)"
    )
    conn.executemany("INSERT INTO customers (name) VALUES (?)", [(f"c{i}",) for i in range(100)])
    conn.executemany(
        "INSERT INTO orders (customer_id, total_cents) VALUES (?, ?)",
        [(i % 100, i) for i in range(rows)],
    )
    if index:
        conn.execute("CREATE INDEX orders_customer ON orders (customer_id)")
    conn.commit()
    conn.close()
    return path


def record(tmp_path: Path, body, *, test_id: str = "tests/test_app.py::test_home") -> GateRun:
    """Run ``body(conn)`` as one test on ``tmp_path/app.db``."""
    return record_test(tmp_path / "app.db", body, test_id)


def test_n_plus_one_is_flagged_above_k_at_its_call_site(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db")
    run = record(tmp_path, lambda conn: home_page(conn, 11))
    report = run_check(run, baseline_path=tmp_path / "baseline.json", max_repeats=10)
    [finding] = [f for f in report.new if f.rule == "n-plus-one"]
    assert finding.evidence["calls"] == 11
    assert "tests/test_app.py::test_home runs this statement 11 times" in finding.message
    assert finding.location is not None
    assert finding.location.path.endswith("gate_helpers.py")
    assert finding.location.function == "home_page"
    assert finding.sql == "select id from orders where customer_id = ?"
    assert report.exit_code == 1

    at_k = record(tmp_path, lambda conn: home_page(conn, 10))
    quiet = run_check(at_k, baseline_path=tmp_path / "baseline.json", max_repeats=10)
    assert quiet.new == [] and quiet.exit_code == 0


def test_progress_counts_every_checked_statement_once(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db")

    def body(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN")  # not a query: neither checked nor counted
        conn.execute("SELECT count(*) FROM orders").fetchall()
        home_page(conn, 2)
        conn.execute("COMMIT")

    seen: list[tuple[int, int]] = []
    report = run_check(
        record(tmp_path, body),
        baseline_path=tmp_path / "baseline.json",
        on_progress=lambda done, total: seen.append((done, total)),
    )
    assert len(report.queries) == 2
    assert seen == [(1, 2), (2, 2)]


def test_one_n_plus_one_finding_names_the_worst_test(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db")
    collector = Collector()
    conn = collector.wrap(sqlite3.connect(tmp_path / "app.db"))
    for test_id, n in (("t::a", 12), ("t::b", 30), ("t::c", 3)):
        with collector.test(test_id):
            home_page(conn, n)
    report = run_check(collector.close(), baseline_path=tmp_path / "b.json")
    [finding] = report.new
    assert finding.message.startswith("t::b runs this statement 30 times (more than 10)")
    assert finding.message.endswith("(and 1 other test)")
    assert finding.evidence["tests"] == 2


def test_fixture_loops_are_not_n_plus_one(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db")
    collector = Collector()
    conn = collector.wrap(sqlite3.connect(tmp_path / "app.db"))
    collector.enter("tests/test_app.py::test_x", "setup")
    home_page(conn, 50)
    collector.enter("tests/test_app.py::test_x", "call")
    home_page(conn, 2)
    collector.leave()
    run = collector.close()
    [usage] = run.tests["tests/test_app.py::test_x"].values()
    assert (usage.count, usage.fixture_count) == (2, 50)
    assert run_check(run, baseline_path=tmp_path / "b.json").exit_code == 0


def test_full_scan(tmp_path: Path) -> None:
    """A full scan of a large table fails the gate at the line that issued it."""
    make_db(tmp_path / "app.db", rows=150_000)

    def body(conn: sqlite3.Connection) -> None:
        conn.execute("SELECT id FROM orders WHERE CAST(customer_id AS TEXT) = ?", ("7",)).fetchall()

    report = run_check(record(tmp_path, body), baseline_path=tmp_path / "b.json")
    rules = {f.rule for f in report.new}
    assert "function-on-indexed-column" in rules
    assert report.exit_code == 1
    [q] = report.queries
    assert (
        q.explained and q.signature is not None and q.signature.access == {"orders": "full-index"}
    )
    sites = {(f.location.path, f.location.function) for f in report.new if f.location}
    assert sites == {("tests/test_gate_check.py", f"{test_full_scan.__qualname__}.<locals>.body")}


def read_attached(archive: Path) -> Callable[[sqlite3.Connection], None]:
    """A test body reading a table of an ATTACHed database, which the check's session of the
    test database does not have: a statement EXPLAIN rejects, not made by the tests."""

    def body(conn: sqlite3.Connection) -> None:
        conn.execute("ATTACH DATABASE ? AS archive", (str(archive),))
        conn.execute("SELECT id FROM archive.orders WHERE customer_id = ?", (1,)).fetchall()

    return body


def test_a_statement_explain_rejects_is_reported_and_exits_2(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db")
    archive = make_db(tmp_path / "archive.db", rows=10)

    run = record(tmp_path, read_attached(archive))
    report = run_check(run, baseline_path=tmp_path / "b.json")
    [entry] = report.unchecked
    assert entry.rule == "explain-failed" and entry.severity == "warning"
    assert "no such table: archive.orders" in entry.message
    assert "attached databases" in entry.fix and "extensions of production" not in entry.fix
    assert entry.sql == "select id from archive.orders where customer_id = ?"
    assert report.new == [] and report.exit_code == 2

    # Accepting it in the baseline makes the gate pass; the CLI says the same with exit codes.
    run_file = tmp_path / "run.json"
    run.save(run_file)
    first = run_cli("check", "--run", str(run_file), "--baseline", str(tmp_path / "b.json"))
    assert first.returncode == 2, first.stdout + first.stderr
    assert "Could not check (1)" in first.stdout and "no such table: archive" in first.stdout
    accept = run_cli(
        "check", "--run", str(run_file), "--baseline", str(tmp_path / "b.json"), "--update-baseline"
    )
    assert accept.returncode == 0, accept.stdout + accept.stderr
    again = run_cli("check", "--run", str(run_file), "--baseline", str(tmp_path / "b.json"))
    assert again.returncode == 0, again.stdout + again.stderr


def test_sql_that_does_not_parse_is_a_could_not_check_entry(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db")
    collector = Collector()
    db = collector.database("sqlite", str(tmp_path / "app.db"))
    with collector.test("t::broken"):
        collector.record("SELECT id FROM orders WHERE (customer_id = ?", "sqlite", db)
    report = run_check(collector.close(), baseline_path=tmp_path / "b.json")
    rules = sorted(f.rule for f in report.unchecked)
    assert "parse-error" in rules
    assert any("cannot parse" in f.message for f in report.unchecked)
    assert report.exit_code == 2


def test_findings_win_over_could_not_check(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db")

    archive = make_db(tmp_path / "archive.db", rows=10)

    def body(conn: sqlite3.Connection) -> None:
        home_page(conn, 12)
        read_attached(archive)(conn)

    report = run_check(record(tmp_path, body), baseline_path=tmp_path / "b.json")
    assert report.unchecked and report.new
    assert report.exit_code == 1


def test_in_memory_statements_are_linted_and_noted(tmp_path: Path) -> None:
    collector = Collector()
    undo = patch(collector)
    try:
        conn = sqlite3.connect(":memory:")
        conn.execute("CREATE TABLE t (a INTEGER)")
        with collector.test("t::mem"):
            conn.execute("DELETE FROM t").fetchall()
    finally:
        undo()
    report = run_check(collector.close(), baseline_path=tmp_path / "b.json")
    assert [f.rule for f in report.new] == ["update-or-delete-without-where"]
    assert any("in-memory" in note and "--explain-dsn" in note for note in report.notes)


def test_unreachable_explain_dsn_is_one_line_and_exit_2(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db")
    run = record(tmp_path, lambda conn: home_page(conn, 1))
    run_file = tmp_path / "run.json"
    run.save(run_file)
    dsn = "postgresql://gate:s3cret@127.0.0.1:1/nowhere"
    result = run_cli("check", "--run", str(run_file), "--explain-dsn", dsn, cwd=tmp_path)
    assert result.returncode == 2
    line = assert_one_line_error(result, "--explain-dsn", "cannot connect")
    assert "s3cret" not in line
    with pytest.raises(GateInputError, match="explain-dsn"):
        run_check(run, explain_dsn=dsn, baseline_path=tmp_path / "b.json")
    missing = run_cli("check", "--run", str(run_file), "--explain-dsn", str(tmp_path / "no.db"))
    assert missing.returncode == 2
    assert_one_line_error(missing, "neither a PostgreSQL DSN nor an existing SQLite file")


def test_explain_dsn_replaces_the_test_database(tmp_path: Path) -> None:
    """Small test data plans an index lookup; the staging copy with realistic data does too, but a
    staging copy without the index shows the full scan the test database hid."""
    make_db(tmp_path / "app.db", rows=100)
    run = record(
        tmp_path,
        lambda conn: conn.execute("SELECT id FROM orders WHERE customer_id = ?", (3,)).fetchall(),
    )
    staging = make_db(tmp_path / "staging.db", rows=120_000, index=False)
    report = run_check(run, explain_dsn=str(staging), baseline_path=tmp_path / "b.json")
    assert "seq-scan-large-table" in {f.rule for f in report.new}
    assert report.explain_target == str(staging.resolve())


def test_missing_run_file_and_damaged_run_file_exit_2(tmp_path: Path) -> None:
    result = run_cli("check", "--run", str(tmp_path / "none.json"))
    assert result.returncode == 2
    assert_one_line_error(result, "pytest --querywatch")
    bad = tmp_path / "run.json"
    bad.write_text(json.dumps({"version": 1, "statements": {}, "tests": {}}))
    damaged = run_cli("check", "--run", str(bad))
    assert damaged.returncode == 2
    assert_one_line_error(damaged, "damaged", "databases")


@pytest.mark.postgres
def test_postgres_statements_through_patched_psycopg_connect(pg_dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as setup:
        setup.execute(
            "CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL,"
            " total_cents int NOT NULL)"
        )
        setup.execute(
            "INSERT INTO orders (customer_id, total_cents)"
            " SELECT g % 5000, g FROM generate_series(1, 200000) g"
        )
        setup.execute("CREATE INDEX orders_customer ON orders (customer_id)")
        setup.execute("ANALYZE orders")
    original = psycopg.connect
    collector = Collector()
    undo = patch(collector)
    try:
        conn = psycopg.connect(pg_dsn, autocommit=True, password="hunter2")  # trust auth
        with collector.test("tests/test_pg.py::test_orders"):
            for cid in ("1", "2"):
                conn.execute(
                    "SELECT id FROM orders WHERE CAST(customer_id AS text) = %s", (cid,)
                ).fetchall()
            conn.execute("SELECT id FROM orders WHERE customer_id = %s", (5,)).fetchall()
            conn.execute(
                "INSERT INTO orders (customer_id, total_cents) VALUES (%s, %s) RETURNING id",
                (1, 2),
            ).fetchone()
            conn.execute(
                "UPDATE orders SET total_cents = %(t)s WHERE id = %(id)s", {"t": 3, "id": 1}
            )
        conn.close()
    finally:
        undo()
    assert psycopg.connect == original
    run = collector.close()
    [db] = run.databases.values()
    assert db.dialect == "postgres" and "dbname=" in db.target
    assert "hunter2" not in db.target and "hunter2" in db.connect_target
    run.save(tmp_path / "run.json")
    assert "hunter2" not in (tmp_path / "run.json").read_text()  # never written to the run file
    report = run_check(run, baseline_path=tmp_path / "b.json")
    bad = [f for f in report.new if f.rule == "function-on-indexed-column"]
    assert bad and bad[0].sql == "select id from orders where cast(customer_id as text) = ?"
    good = report.query(
        next(fp for fp, s in run.statements.items() if "customer_id = ?" in s.normalized)
    )
    assert good is not None and good.explained and good.findings == []
    assert good.signature is not None and good.signature.cost_class is not None
    assert report.unchecked == []
    assert all(q.explained for q in report.queries)  # writes get a plan too (plain EXPLAIN)
    assert len(report.queries) == 4


def test_source_sql_is_linted_with_its_line(tmp_path: Path) -> None:
    app = tmp_path / "search.py"
    app.write_text(
        "def search(conn, term):\n"
        "    return conn.execute(\n"
        "        \"SELECT id FROM products WHERE name LIKE '%' || ?\", (term,)\n"
        "    ).fetchall()\n"
    )
    report = run_check(GateRun(), baseline_path=tmp_path / "b.json", source_paths=[app])
    [finding] = report.new
    assert finding.rule == "leading-wildcard-like"
    assert finding.location is not None and finding.location.line == 3
    assert report.exit_code == 1
    result = run_cli("check", "--source", str(app), "--baseline", str(tmp_path / "b.json"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"leading-wildcard-like (warning) at {app}:3" in result.stdout
