"""Plan diff on real plans: an index dropped by a deploy turns an Index Scan into a Seq Scan."""

from __future__ import annotations

import psycopg
import pytest

from querywatch.plans.diff import diff_plans
from querywatch.plans.explain import Explainer
from querywatch.plans.model import Plan

pytestmark = pytest.mark.postgres

QUERY = "SELECT * FROM accounts WHERE code = 4242"
JOIN = (
    "SELECT * FROM accounts a JOIN payments p ON p.account_id = a.id "
    "WHERE a.code BETWEEN 100 AND 110"
)


def setup(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE accounts AS SELECT g AS id, g AS code, md5(g::text) AS name "
            "FROM generate_series(1, 100000) AS g"
        )
        conn.execute("ALTER TABLE accounts ADD PRIMARY KEY (id)")
        conn.execute("CREATE UNIQUE INDEX accounts_code ON accounts (code)")
        conn.execute(
            "CREATE TABLE payments AS SELECT g AS id, g % 100000 AS account_id "
            "FROM generate_series(1, 100000) AS g"
        )
        conn.execute("CREATE INDEX payments_account ON payments (account_id)")
        conn.execute("ANALYZE")


def drop_indexes(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP INDEX accounts_code")
        conn.execute("DROP INDEX payments_account")
        conn.execute("ANALYZE")


def plans(dsn: str, sql: str) -> Plan:
    with Explainer(dsn) as ex:
        return ex.explain(sql)


def test_index_scan_to_seq_scan(pg_dsn: str) -> None:
    setup(pg_dsn)
    before = plans(pg_dsn, QUERY)
    drop_indexes(pg_dsn)
    after = plans(pg_dsn, QUERY)
    diff = diff_plans(before, after)
    assert diff.changed and diff.regressed and diff.shape_changed
    [change] = diff.scan_changes
    assert change.relation == "public.accounts"
    assert str(change) == (
        "Index Scan using accounts_code on public.accounts → Seq Scan on public.accounts"
    )
    assert diff.cost_ratio is not None and diff.cost_ratio > 100
    lines = diff.summary()
    assert lines[0] == str(change)
    assert any(line.startswith("estimated cost ") and "x dearer" in line for line in lines)
    assert diff.node_types_added.get("Seq Scan") == 1
    assert diff.node_types_removed.get("Index Scan") == 1
    # Plans stored before the deploy diff the same way as live ones.
    stored = diff_plans(Plan.from_dict(before.as_dict()), Plan.from_dict(after.as_dict()))
    assert stored.summary() == lines and stored.as_dict()["regressed"] is True


def test_join_strategy_change(pg_dsn: str) -> None:
    setup(pg_dsn)
    before = plans(pg_dsn, JOIN)
    drop_indexes(pg_dsn)
    after = plans(pg_dsn, JOIN)
    diff = diff_plans(before, after)
    assert diff.regressed
    assert any(c.relation == "public.payments" for c in diff.scan_changes)
    assert diff.join_changes and diff.join_changes[0].startswith("joins: Nested Loop")


def test_same_plan_is_not_a_change(pg_dsn: str) -> None:
    setup(pg_dsn)
    first = plans(pg_dsn, QUERY)
    second = plans(pg_dsn, QUERY)
    diff = diff_plans(first, second)
    assert not diff.changed and not diff.regressed and diff.scan_changes == []
    assert diff.summary()[0].startswith("same plan shape; estimated cost")


def test_reverse_direction_is_an_improvement(pg_dsn: str) -> None:
    setup(pg_dsn)
    with_index = plans(pg_dsn, QUERY)
    drop_indexes(pg_dsn)
    without = plans(pg_dsn, QUERY)
    diff = diff_plans(without, with_index)
    assert diff.changed and not diff.regressed
    assert "x cheaper" in diff.summary()[-1]
