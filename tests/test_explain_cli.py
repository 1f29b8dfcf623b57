"""`querywatch explain` as a user runs it: a subprocess against the test cluster and SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from cli_helpers import assert_one_line_error, run_cli
from plans_data import plans_database, sqlite_database

pytestmark = pytest.mark.postgres

WIDE = {"COLUMNS": "200"}


@pytest.fixture(scope="module")
def db(pg_server: str) -> str:
    return plans_database(pg_server)


def test_plan_findings_and_advice_in_the_terminal(db: str) -> None:
    result = run_cli(
        "explain",
        "SELECT * FROM customers c JOIN orders o ON o.customer_id = c.id "
        "WHERE c.name = 'customer 42'",
        "--dsn",
        db,
        env=WIDE,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Hash Join" in out and "Seq Scan on public.orders o" in out
    assert "Hash Cond: (o.customer_id = c.id)" in out
    assert "error   unindexed-join-key" in out
    assert "fix: index the join key: CREATE INDEX CONCURRENTLY" in out
    assert "index advice (validated with HypoPG)" in out
    assert "CREATE INDEX CONCURRENTLY idx_orders_customer_id ON public.orders (customer_id);" in out
    assert "estimated cost" in out and "→" in out


def test_analyze_shows_actual_rows(db: str) -> None:
    result = run_cli(
        "explain",
        "SELECT * FROM orders WHERE status = 'paid'",
        "--dsn",
        db,
        "--analyze",
        "--no-advice",
        env=WIDE,
    )
    assert result.returncode == 0, result.stderr
    assert "EXPLAIN ANALYZE" in result.stdout and "actual time=" in result.stdout
    assert "(rolled back)" in result.stdout and "index advice" not in result.stdout


def test_json_shape(db: str) -> None:
    result = run_cli(
        "explain", "SELECT * FROM orders WHERE customer_id = $1", "--dsn", db, "--json"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)["data"]
    assert set(data) == {"target", "dialect", "sql", "plan", "relations", "findings", "advice"}
    assert data["dialect"] == "postgres" and data["plan"]["generic"] is True
    assert data["plan"]["root"]["node_type"] in ("Seq Scan", "Gather")
    assert data["relations"]["public.orders"]["rows"] == pytest.approx(200_000, rel=0.02)
    [finding] = data["findings"]
    assert finding["rule"] == "seq-scan-large-table" and finding["severity"] == "error"
    assert {"node", "relation", "rows", "cost", "selectivity", "table_rows"} <= set(
        finding["evidence"]
    )
    [rec] = data["advice"]["recommended"]
    assert rec["columns"] == ["customer_id"] and rec["ddl"].startswith("CREATE INDEX CONCURRENTLY")
    assert rec["cost_after"] < rec["cost_before"] and rec["validated"] is True


def test_sqlite_file_as_the_dsn(tmp_path_factory: pytest.TempPathFactory) -> None:
    path: Path = sqlite_database(tmp_path_factory.mktemp("plans-sqlite"))
    sql = "SELECT * FROM orders WHERE note LIKE '%ab' ORDER BY created LIMIT 10 OFFSET 150000"
    for target in (str(path), f"sqlite:///{path}"):
        result = run_cli("explain", sql, "--dsn", target, env=WIDE)
        assert result.returncode == 0, result.stderr
        assert "EXPLAIN QUERY PLAN" in result.stdout
        assert "leading-wildcard-like" in result.stdout and "deep-offset" in result.stdout
        assert "unvalidated" in result.stdout


def test_dsn_from_the_environment_and_sql_from_stdin(db: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUERYWATCH_")}
    env |= {"QUERYWATCH_DSN": db, "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "querywatch", "explain", "-", "--no-advice"],
        input="SELECT * FROM orders_small WHERE id = 3",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Index Scan using orders_small_pkey" in result.stdout
    assert "no findings" in result.stdout


def test_without_hypopg_advice_says_so(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE events AS SELECT g AS id, g % 5000 AS account "
            "FROM generate_series(1, 150000) AS g"
        )
        conn.execute("ANALYZE events")
    result = run_cli("explain", "SELECT * FROM events WHERE account = 7", "--dsn", pg_dsn, env=WIDE)
    assert result.returncode == 0, result.stderr
    assert "HypoPG is not installed in this database: CREATE EXTENSION hypopg" in result.stdout
    assert (
        "CREATE INDEX CONCURRENTLY idx_events_account ON public.events (account);" in result.stdout
    )
    assert "unvalidated" in result.stdout


# --- could not check: one line, exit code 2 -----------------------------------------------------


def test_sql_that_does_not_parse(db: str) -> None:
    result = run_cli("explain", "SELECT * FORM orders", "--dsn", db)
    line = assert_one_line_error(result, 'syntax error at or near "FORM"', "at character 10")
    assert result.returncode == 2 and line.startswith("querywatch: error:")


def test_statement_explain_rejects(db: str) -> None:
    result = run_cli("explain", "SELECT * FROM no_such_table", "--dsn", db)
    assert_one_line_error(result, 'relation "no_such_table" does not exist')
    assert result.returncode == 2


def test_unreachable_dsn(tmp_path: Path) -> None:
    result = run_cli(
        "explain", "SELECT 1", "--dsn", "postgresql://postgres:hunter22@127.0.0.1:1/nothing"
    )
    line = assert_one_line_error(result, "cannot connect")
    assert result.returncode == 2 and "hunter22" not in line
    missing = run_cli("explain", "SELECT 1", "--dsn", str(tmp_path / "missing.sqlite3"))
    assert_one_line_error(missing, "no SQLite database at")
    assert missing.returncode == 2


def test_no_dsn(tmp_path: Path) -> None:
    result = run_cli("explain", "SELECT 1", cwd=tmp_path)
    assert_one_line_error(result, "pass --dsn")
    assert result.returncode == 2


def test_analyze_of_a_write_is_refused(db: str) -> None:
    result = run_cli("explain", "DELETE FROM customers", "--dsn", db, "--analyze")
    assert_one_line_error(result, "--analyze", "only for a SELECT")
    assert result.returncode == 2


def test_top_n_sort_an_index_fixes_is_not_no_findings(db: str) -> None:
    # pgbench's `ORDER BY abalance DESC LIMIT 10` on 2M rows: the advice and the finding agree.
    sql = "SELECT aid, abalance FROM big ORDER BY abalance DESC LIMIT 10"
    result = run_cli("explain", sql, "--dsn", db, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)["data"]
    [finding] = data["findings"]
    assert finding["rule"] == "sort-large-for-few" and finding["severity"] == "error"
    [rec] = data["advice"]["recommended"]
    assert rec["columns"] == ["abalance"] and rec["ddl"] in finding["fix"]
    text = run_cli("explain", sql, "--dsn", db, env=WIDE)
    assert "no findings" not in text.stdout and "error   sort-large-for-few" in text.stdout
