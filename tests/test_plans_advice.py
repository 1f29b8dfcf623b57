"""Index advice validated with HypoPG on the test cluster, and its fallback without HypoPG."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from plans_data import plans_database, sqlite_database
from querywatch.plans.advice import NO_HYPOPG, advise, advise_workload, candidates_for
from querywatch.plans.explain import Explainer

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def db(pg_server: str) -> str:
    return plans_database(pg_server)


@pytest.fixture(scope="module")
def pg(db: str) -> Iterator[Explainer]:
    with Explainer(db) as explainer:
        yield explainer


def real_indexes(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM pg_index").fetchone()
    assert row is not None
    return int(row[0])


def test_recommends_the_index_that_pays(pg: Explainer, db: str) -> None:
    before = real_indexes(db)
    advice = advise(pg, "SELECT * FROM orders WHERE customer_id = 42")
    assert advice.validated and advice.note is None
    [rec] = advice.recommended
    assert (
        rec.ddl
        == "CREATE INDEX CONCURRENTLY idx_orders_customer_id ON public.orders (customer_id);"
    )
    assert rec.used and rec.cost_before and rec.cost_after is not None
    assert rec.cost_after < rec.cost_before / 10  # the planner's own estimate, with the index
    assert rec.improvement is not None and rec.improvement > 0.9
    # Hypothetical only: the database has exactly the indexes it had.
    assert real_indexes(db) == before
    hypo = pg.pg.execute("SELECT count(*) FROM hypopg_list_indexes").fetchone()
    assert hypo == (0,)


def test_hypopg_works_in_the_read_only_session(pg: Explainer) -> None:
    assert pg.pg.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
    assert advise(pg, "SELECT * FROM orders WHERE customer_id = 7").recommended


def test_an_index_that_does_not_help_is_not_recommended(pg: Explainer) -> None:
    advice = advise(pg, "SELECT * FROM orders WHERE status = 'paid'")  # a quarter of the rows
    assert advice.validated and advice.recommended == []
    [cand] = advice.candidates
    assert cand.keys == ("status",) and not cand.recommended
    assert cand.note is not None and (
        cand.note == "not used by the planner" or cand.note.startswith("saves only")
    )


def test_composite_and_order_by_candidates(pg: Explainer) -> None:
    advice = advise(
        pg, "SELECT * FROM orders WHERE customer_id = 42 AND status = 'paid' ORDER BY amount"
    )
    keys = {c.keys for c in advice.candidates}
    assert ("customer_id", "status") in keys and ("customer_id", "status", "amount") in keys
    [rec] = advice.recommended  # the shorter one wins when the longer is not clearly cheaper
    assert rec.keys[0] == "customer_id"


def test_join_key_candidate(pg: Explainer) -> None:
    advice = advise(
        pg,
        "SELECT * FROM customers c JOIN orders o ON o.customer_id = c.id "
        "WHERE c.name = 'customer 42'",
    )
    assert [(c.table, c.keys) for c in advice.recommended] == [("orders", ("customer_id",))]
    assert "join key" in advice.recommended[0].reasons


def test_expression_index_for_a_function(pg: Explainer) -> None:
    advice = advise(pg, "SELECT * FROM orders WHERE lower(note) = 'abc'")
    [rec] = advice.recommended
    assert rec.keys == ("(LOWER(note))",)
    assert rec.ddl.endswith("ON public.orders ((LOWER(note)));")


def test_placeholder_statements_are_advised(pg: Explainer) -> None:
    advice = advise(pg, "SELECT * FROM orders WHERE customer_id = $1")
    assert [c.keys for c in advice.recommended] == [("customer_id",)]


def test_workload_weights_by_calls(pg: Explainer) -> None:
    statements = [
        ("SELECT * FROM orders WHERE customer_id = $1", 1000),
        ("SELECT * FROM orders WHERE status = $1", 5),
        ("SELECT * FROM orders WHERE email = $1", 50),  # already indexed: no candidate
        ("SELECT * FROM no_such_table", 3),
    ]
    advice = advise_workload(pg, statements)
    [rec] = advice.recommended
    assert rec.keys == ("customer_id",)
    # Weighted over every statement that reads the table, used or not.
    weighted = sum(calls * (pg.explain(sql).total_cost or 0) for sql, calls in statements[:3])
    assert rec.cost_before == pytest.approx(weighted)
    assert rec.statements == 1
    assert len(advice.errors) == 1 and "no_such_table" in advice.errors[0]
    # The same candidate with the weights reversed saves far less of the workload's cost.
    reversed_ = advise_workload(pg, [(statements[0][0], 1), (statements[1][0], 100_000)])
    assert reversed_.recommended == []


def test_small_table_gets_no_candidates(pg: Explainer) -> None:
    plan = pg.explain("SELECT * FROM customers WHERE tier = 3 AND name = 'x'")
    assert candidates_for(plan, pg.catalog(plan)) != []  # 20,000 rows: worth checking
    small = pg.explain("SELECT * FROM orders_small WHERE customer_id = 3")
    assert candidates_for(small, pg.catalog(small)) == []  # 1,000 rows: no index pays


def test_without_hypopg_candidates_are_unvalidated(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE events AS SELECT g AS id, g % 5000 AS account, g % 3 AS kind "
            "FROM generate_series(1, 150000) AS g"
        )
        conn.execute("ANALYZE events")
    advice = advise(pg_dsn, "SELECT * FROM events WHERE account = 12")
    assert not advice.validated and advice.note == NO_HYPOPG
    assert advice.recommended == []
    [cand] = advice.candidates
    assert cand.keys == ("account",) and not cand.validated and cand.note == "unvalidated"
    assert cand.cost_after is None
    # An unselective filter is not proposed when nothing can check it.
    assert advise(pg_dsn, "SELECT * FROM events WHERE kind = 1").candidates == []


def test_sqlite_candidates_are_unvalidated(tmp_path_factory: pytest.TempPathFactory) -> None:
    path: Path = sqlite_database(tmp_path_factory.mktemp("plans-sqlite"))
    advice = advise(str(path), "SELECT * FROM orders WHERE customer_id = ?")
    assert not advice.validated and advice.note is not None and "unvalidated" in advice.note
    assert [c.ddl for c in advice.candidates] == [
        "CREATE INDEX idx_orders_customer_id ON orders (customer_id);"
    ]
