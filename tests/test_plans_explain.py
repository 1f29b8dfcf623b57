"""EXPLAIN capture on a real PostgreSQL and real SQLite files: the plan model, generic plans for
placeholders, the safety rules (read-only, ANALYZE only for reads and rolled back) and bad input."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from plans_data import plans_database, sqlite_database, with_options
from querywatch.errors import DatabaseUnavailable
from querywatch.plans.explain import Explainer, ExplainError, explain, sqlite_path
from querywatch.plans.model import Plan
from querywatch.plans.sqltext import scan

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def db(pg_server: str) -> str:
    return plans_database(pg_server)


@pytest.fixture(scope="module")
def pg(db: str) -> Iterator[Explainer]:
    with Explainer(db) as explainer:
        yield explainer


@pytest.fixture(scope="module")
def lite_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sqlite_database(tmp_path_factory.mktemp("plans-sqlite"))


def test_postgres_plan_model(pg: Explainer) -> None:
    plan = pg.explain("SELECT * FROM orders_keyed WHERE customer_id = 42 ORDER BY created")
    assert plan.dialect == "postgres" and not plan.analyzed and not plan.generic
    assert plan.total_cost is not None and plan.total_cost > 0
    assert plan.work_mem_kb is not None and plan.work_mem_kb > 0
    scans = plan.scans()
    assert [(s.schema, s.relation) for s in scans] == [("public", "orders_keyed")]
    sort = next(n for n in plan.nodes() if n.node_type == "Sort")
    assert sort.sort_keys == ["o.created"] or sort.sort_keys[0].endswith("created")
    conds = " ".join(c for n in plan.nodes() for c in n.conditions())
    assert "customer_id = 42" in conds
    for node in plan.nodes():
        assert node.est_rows is not None and node.actual_rows is None


def test_analyze_gives_actual_rows_and_time(pg: Explainer) -> None:
    plan = pg.explain("SELECT * FROM orders WHERE status = 'paid'", analyze=True)
    assert plan.analyzed and plan.execution_ms is not None and plan.planning_ms is not None
    scan_node = plan.scans()[0]
    assert scan_node.actual_rows_all == pytest.approx(50_000, abs=5)
    assert scan_node.actual_loops is not None and scan_node.actual_total_ms is not None


def test_settings_are_captured(db: str) -> None:
    plan = explain(with_options(db, work_mem="1MB", random_page_cost="1.1"), "SELECT 1")
    assert plan.settings["work_mem"] == "1MB" and plan.settings["random_page_cost"] == "1.1"
    assert plan.work_mem_kb == 1024


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM orders WHERE customer_id = $1 AND status = $2 LIMIT $3",
        "SELECT * FROM orders WHERE customer_id = %s AND status = %(status)s",
    ],
)
def test_placeholders_get_a_generic_plan(pg: Explainer, sql: str) -> None:
    plan = pg.explain(sql)
    assert plan.generic and "plan_cache_mode" not in plan.settings
    assert plan.scans()[0].relation == "orders"
    filters = " ".join(c for n in plan.nodes() for c in n.conditions())
    assert "$1" in filters and "$2" in filters
    # Nothing is left prepared in the session.
    assert pg.pg.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == (0,)


def test_plain_explain_of_a_write_writes_nothing(pg: Explainer, db: str) -> None:
    plan = pg.explain("DELETE FROM customers WHERE tier = 1")
    assert plan.root.node_type == "ModifyTable"
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM customers WHERE tier = 1").fetchone() == (10,)


def test_analyze_refuses_anything_but_a_plain_read(pg: Explainer) -> None:
    for sql in (
        "DELETE FROM customers WHERE tier = 1",
        "WITH gone AS (DELETE FROM customers RETURNING *) SELECT count(*) FROM gone",
        "SELECT * FROM customers WHERE id = 1 FOR UPDATE",
        "SELECT * INTO copy_of_customers FROM customers",
    ):
        with pytest.raises(ExplainError, match="only for a SELECT"):
            pg.explain(sql, analyze=True)
    with pytest.raises(ExplainError, match="needs real values"):
        pg.explain("SELECT * FROM customers WHERE id = $1", analyze=True)


def test_session_is_read_only_and_time_limited(db: str) -> None:
    with Explainer(db, statement_timeout_ms=1234) as ex:
        conn = ex.pg
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        assert conn.execute("SHOW statement_timeout").fetchone() == ("1234ms",)


def test_analyze_over_the_timeout_is_cancelled(db: str) -> None:
    with (
        Explainer(db, statement_timeout_ms=200) as ex,
        pytest.raises(ExplainError, match="statement_timeout"),
    ):
        # generate_series and count are immutable, so ANALYZE may run it (pg_sleep may not)
        ex.explain("SELECT count(*) FROM generate_series(1, 1000000000)", analyze=True)


def test_syntax_error_names_the_position(pg: Explainer) -> None:
    with pytest.raises(ExplainError) as info:
        pg.explain("SELECT * FORM orders")
    message = str(info.value)
    assert 'syntax error at or near "FORM"' in message
    assert "at character 10: FORM orders" in message
    assert "\n" not in message


def test_unknown_table(pg: Explainer) -> None:
    with pytest.raises(
        ExplainError, match=r'relation "no_such_table" does not exist.*character 15'
    ):
        pg.explain("SELECT * FROM no_such_table")


def test_untyped_parameter_is_explained_as_an_error(pg: Explainer) -> None:
    with pytest.raises(ExplainError, match="could not determine data type of parameter"):
        pg.explain("SELECT $1 IS NULL")


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("SELECT 1; DROP TABLE customers", "one statement at a time"),
        ("   ", "no SQL statement"),
        ("EXPLAIN SELECT 1", "without EXPLAIN"),
    ],
)
def test_statement_checks(pg: Explainer, sql: str, needle: str) -> None:
    with pytest.raises(ExplainError, match=needle):
        pg.explain(sql)


def test_unreachable_dsn_is_one_line(pg_server: str) -> None:
    dead = "postgresql://postgres:s3cret-pw@127.0.0.1:1/nothing"
    with pytest.raises(DatabaseUnavailable) as info:
        explain(dead, "SELECT 1")
    assert "cannot connect" in str(info.value) and "s3cret-pw" not in str(info.value)


def test_plan_round_trips_through_a_dict(pg: Explainer) -> None:
    plan = pg.explain("SELECT * FROM customers c JOIN orders o ON o.customer_id = c.id")
    again = Plan.from_dict(plan.as_dict())
    assert again.as_dict() == plan.as_dict()
    assert [n.label() for n in again.nodes()] == [n.label() for n in plan.nodes()]


def test_catalog_sizes_and_indexes(pg: Explainer) -> None:
    plan = pg.explain("SELECT * FROM orders_keyed WHERE customer_id = 1")
    info = pg.catalog(plan).get("orders_keyed", "public")
    assert info is not None
    assert info.rows == pytest.approx(200_000, rel=0.02) and info.size_bytes and info.pages
    names = {i.name: i.keys for i in info.indexes}
    assert names["orders_keyed_customer"] == ("customer_id",)
    assert info.index_leading_with("customer_id") is not None
    assert info.index_leading_with("status") is None
    assert info.columns["status"].n_distinct == 4


# --- SQLite -------------------------------------------------------------------------------------


def test_sqlite_plan(lite_path: Path) -> None:
    with Explainer(str(lite_path)) as ex:
        plan = ex.explain(
            "SELECT * FROM customers c JOIN orders o ON o.customer_id = c.id "
            "WHERE o.email = ? ORDER BY c.name"
        )
        assert plan.dialect == "sqlite" and plan.generic
        by_alias = {n.alias: n for n in plan.scans()}
        assert by_alias["o"].relation == "orders" and by_alias["o"].index_name == "orders_email"
        assert by_alias["o"].index_cond == "email=?"
        assert by_alias["c"].relation == "customers" and by_alias["c"].index_name == "rowid"
        assert any(n.node_type == "Sort" for n in plan.nodes())
        # SQLite gives no estimates: left unknown, never made up.
        assert all(n.est_rows is None and n.total_cost is None for n in plan.nodes())
        info = ex.catalog(plan).get("orders")
        assert info is not None and info.rows == 200_000


def test_sqlite_target_forms(lite_path: Path) -> None:
    assert sqlite_path(f"sqlite:///{lite_path}") == lite_path
    assert sqlite_path(str(lite_path)) == lite_path
    assert sqlite_path("postgresql://u@h/db") is None and sqlite_path("host=h dbname=d") is None
    plan = explain(f"sqlite:///{lite_path}", "SELECT * FROM orders WHERE note = 'x'")
    assert plan.scans()[0].node_type == "Seq Scan" and plan.scans()[0].filter == "note = 'x'"


def test_sqlite_is_opened_read_only(lite_path: Path) -> None:
    with Explainer(str(lite_path)) as ex:
        ex.explain("DELETE FROM customers")
        assert ex._sqlite is not None
        with pytest.raises(sqlite3.OperationalError):
            ex._sqlite.execute("DELETE FROM customers")
    with sqlite3.connect(lite_path) as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone() == (20_000,)


def test_sqlite_bad_input(lite_path: Path, tmp_path: Path) -> None:
    with Explainer(str(lite_path)) as ex:
        with pytest.raises(ExplainError, match="syntax error"):
            ex.explain("SELECT * FORM orders")
        with pytest.raises(ExplainError, match="no such table: nope"):
            ex.explain("SELECT * FROM nope")
        with pytest.raises(ExplainError, match="needs PostgreSQL"):
            ex.explain("SELECT 1", analyze=True)
    with pytest.raises(DatabaseUnavailable, match="no SQLite database"):
        explain(str(tmp_path / "missing.db"), "SELECT 1")


# --- the statement lexer ------------------------------------------------------------------------


def test_lexer_ignores_quotes_and_comments() -> None:
    stmt = scan("SELECT ';', $$ ; $$, '$1' -- ; $2\n FROM t WHERE a = $1; -- trailing")
    assert not stmt.extra_statements and [p[2] for p in stmt.placeholders] == ["$1"]
    assert scan("SELECT 1; SELECT 2").extra_statements
    assert scan("select * from t where deleted_at is null").is_plain_read
    assert not scan("update t set a = 1").is_plain_read


def _marker_count(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_statements WHERE query LIKE '%qw_reset_marker%'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_analyze_refuses_a_function_whose_effect_outlives_the_rollback(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("SELECT 1 AS qw_reset_marker")
    assert _marker_count(pg_dsn) == 1
    with Explainer(pg_dsn) as ex:
        with pytest.raises(ExplainError) as info:
            ex.explain("SELECT pg_stat_statements_reset()", analyze=True)
        message = str(info.value)
        assert "volatile function, pg_stat_statements_reset(" in message
        assert "use plain explain" in message.lower() and "\n" not in message
        # the plain EXPLAIN of the same statement still works: it does not run it
        assert ex.explain("SELECT pg_stat_statements_reset()").root.node_type == "Result"
    assert _marker_count(pg_dsn) == 1  # the statistics were not reset


@pytest.fixture
def volatile_db(pg_dsn: str) -> str:
    """A database with volatile functions reached in ways the statement text does not show."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for ddl in (
            "CREATE TABLE items (id int PRIMARY KEY, label text)",
            "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g",
            "CREATE SCHEMA ops",
            # volatile because it acts outside the transaction
            "CREATE FUNCTION ops.side_effect() RETURNS int LANGUAGE plpgsql VOLATILE "
            "AS 'BEGIN PERFORM pg_stat_statements_reset(); RETURN 10; END'",
            "CREATE FUNCTION ops.side_effect_eq(int, int) RETURNS bool LANGUAGE plpgsql "
            "VOLATILE AS 'BEGIN PERFORM pg_stat_statements_reset(); RETURN $1 = $2; END'",
            "CREATE FUNCTION ops.side_effect_step(int, int) RETURNS int LANGUAGE plpgsql "
            "VOLATILE AS 'BEGIN PERFORM pg_stat_statements_reset(); RETURN $1 + $2; END'",
            "CREATE FUNCTION ops.plus_one(int) RETURNS int LANGUAGE sql IMMUTABLE "
            "AS 'SELECT $1 + 1'",
            # a view's LIMIT is not printed by EXPLAIN: only pg_depend knows about it
            "CREATE VIEW ops.first_items AS SELECT * FROM items LIMIT ops.side_effect()",
            "CREATE VIEW public.item_page AS SELECT id FROM ops.first_items",
            "CREATE VIEW public.plain_items AS SELECT ops.plus_one(id) AS n, upper(label) "
            "FROM items",
            "CREATE OPERATOR ops.=== (LEFTARG = int, RIGHTARG = int, "
            "FUNCTION = ops.side_effect_eq)",
            "CREATE AGGREGATE ops.total(int) (SFUNC = ops.side_effect_step, STYPE = int, "
            "INITCOND = '0')",
        ):
            conn.execute(ddl)
    return pg_dsn


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("SELECT * FROM item_page", "side_effect() (in view ops.first_items)"),
        ("SELECT id FROM items WHERE id OPERATOR(ops.===) 3", "side_effect_eq(integer,integer)"),
        ("SELECT ops.total(id) FROM items", "side_effect_step(integer,integer)"),
        ("SELECT id FROM items LIMIT ops.side_effect()", "ops.side_effect()"),
        ("SELECT * FROM items ORDER BY random() LIMIT 3", "random()"),
        ("SELECT pg_advisory_lock(7)", "pg_advisory_lock("),
    ],
)
def test_analyze_names_the_volatile_function_however_it_is_reached(
    volatile_db: str, sql: str, named: str
) -> None:
    with Explainer(volatile_db) as ex, pytest.raises(ExplainError) as info:
        ex.explain(sql, analyze=True)
    assert named in str(info.value)
    assert "volatile function" in str(info.value)


def test_analyze_still_runs_immutable_and_stable_calls(volatile_db: str) -> None:
    with Explainer(volatile_db) as ex:
        for sql in (
            "SELECT * FROM plain_items WHERE n > 3 ORDER BY n LIMIT 5",
            "SELECT count(*), max(label), now() FROM items WHERE id = ANY(ARRAY[1, 2]) "
            "AND label LIKE 'item%' AND id::text <> 'x'",
            # a name inside a string, a dollar quote or a comment is not a call
            "SELECT 'pg_stat_statements_reset()' AS a, $$random()$$ AS b /* pg_sleep(1) */",
        ):
            plan = ex.explain(sql, analyze=True)
            assert plan.analyzed and plan.execution_ms is not None, sql
