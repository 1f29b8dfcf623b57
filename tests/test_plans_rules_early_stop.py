"""Plans judged by what may happen, not only by what is expected: an early stop (LIMIT, EXISTS)
that may never come, an InitPlan rerun inside a correlated subquery, an Incremental Sort stopped
by a LIMIT, and sizes PostgreSQL only guessed (a never-analyzed table). Real PostgreSQL (the test
cluster), the shared plan database of plans_data.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from plans_data import BIG_ROWS, plans_database, with_options
from querywatch.plans.explain import Explainer
from querywatch.plans.report import inspect_query, judge_plan
from querywatch.plans.rules import check_plan
from querywatch.plans.rules._work import Work

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def db(pg_server: str) -> str:
    return plans_database(pg_server)


@pytest.fixture(scope="module")
def pg(db: str) -> Iterator[Explainer]:
    with Explainer(with_options(db, work_mem="4MB")) as explainer:
        yield explainer


def rules_of(report_findings: list) -> dict[str, str]:  # type: ignore[type-arg]
    return {f.rule: f.severity for f in report_findings}


def test_an_early_stop_that_may_never_come_is_judged_by_its_worst_case(pg: Explainer) -> None:
    # day follows aid: the planner expects 10 rows of day = 99 after ~1,000 rows of the aid walk
    # (matches spread evenly); they are the last 1% of it.
    far = inspect_query(pg, "SELECT * FROM big WHERE day = 99 ORDER BY aid LIMIT 10")
    assert far.plan.total_cost is not None and far.plan.total_cost < 10_000  # "cheap"
    assert far.plan.worst_cost is not None and far.plan.worst_cost >= 10 * far.plan.total_cost
    [f] = [f for f in far.findings if f.rule == "early-stop-worst-case"]
    assert f.severity == "warning"
    ev = f.evidence
    assert ev["stopped_by"] == "Limit" and ev["worst_rows_read"] >= BIG_ROWS * 0.95
    assert ev["expected_rows_read"] < BIG_ROWS / 100
    assert ev["factor"] >= 10 and ev["columns"] == ["day", "aid"]
    assert "far end or absent" in f.message and f.fix.startswith("add the index: CREATE INDEX")
    # The near end has the same plan, the same figures: the same warning (the statistics cannot
    # say at which end the matches are; the index makes both cheap).
    near = inspect_query(pg, "SELECT * FROM big WHERE day = 0 ORDER BY aid LIMIT 10")
    assert rules_of(near.findings).get("early-stop-worst-case") == "warning"
    # Without validated advice the worst case alone is no finding; run, the rows really read
    # decide (the other rules).
    assert "early-stop-worst-case" not in rules_of(check_plan(far.plan, far.catalog))
    ran = inspect_query(pg, "SELECT * FROM big WHERE day = 99 ORDER BY aid LIMIT 10", analyze=True)
    assert "early-stop-worst-case" not in rules_of(ran.findings)


def test_the_gate_asks_for_advice_when_only_the_worst_case_is_costly(pg: Explainer) -> None:
    # The CI gate saves HypoPG for plans costly enough to matter; a plan that is cheap only while
    # its early stop comes is costly enough by its worst case.
    sql = "SELECT * FROM big WHERE day = 99 ORDER BY aid LIMIT 10"
    plan = pg.explain(sql)
    found = judge_plan(pg, sql, plan, pg.catalog(plan))
    assert rules_of(found).get("early-stop-worst-case") == "warning"


def test_exists_over_a_full_scan_is_judged_by_a_value_with_no_match(pg: Explainer) -> None:
    # ~20 rows per ref value: fewer than one ANALYZE sample row stands for (2M / 30,000), and
    # these two have none; the scan expects its first match after ~50,000 rows.
    report = inspect_query(pg, "SELECT EXISTS (SELECT 1 FROM big WHERE ref IN (123456, 234567))")
    [stop] = report.plan.early_stops()
    assert stop.cut.node_type == "Seq Scan" and stop.cut.parent_relationship == "InitPlan"
    [f] = [f for f in report.findings if f.rule == "early-stop-worst-case"]
    assert f.evidence["stopped_by"] != "Limit" and "EXISTS" in f.message
    assert f.evidence["worst_rows_read"] >= BIG_ROWS * 0.95
    assert "ANALYZE's sample" in f.message
    # A value the sample measured (~2,000 rows), spread along the table: the stop comes.
    common = inspect_query(pg, "SELECT EXISTS (SELECT 1 FROM big WHERE grp = 7)")
    assert common.plan.early_stops() and "early-stop-worst-case" not in rules_of(common.findings)
    # A LIMIT over rows an index condition finds stops when told: no worst case to judge.
    bounded = inspect_query(pg, "SELECT * FROM big WHERE aid > 1000 ORDER BY aid LIMIT 10")
    assert bounded.plan.early_stops() == []
    assert bounded.findings == []


def test_an_initplan_inside_a_correlated_subquery_runs_per_outer_row(pg: Explainer) -> None:
    # max(aid) per customer: SubPlan -> Result -> InitPlan -> Limit -> Index Scan Backward on
    # big's primary key (aid IS NOT NULL: the whole index) with Filter grp = c.tier.
    sql = "SELECT c.id, (SELECT max(a.aid) FROM big a WHERE a.grp = c.tier) FROM customers c"
    plan = pg.explain(sql)
    work = Work(plan, pg.catalog(plan))
    [walk] = [n for n in plan.scans() if n.relation == "big"]
    assert walk.parent_relationship != "SubPlan"  # reached through the InitPlan
    assert work.executions(walk) == pytest.approx(20_000, rel=0.05)
    assert work.rows_read(walk) == pytest.approx(20_000 * 1_000, rel=0.5)  # ~1,000 per run
    [f] = [f for f in check_plan(plan, pg.catalog(plan)) if f.rule == "subplan-per-row"]
    assert f.evidence["loops"] == pytest.approx(20_000, rel=0.05)


def test_a_limit_stops_a_window_over_an_incremental_sort(pg: Explainer) -> None:
    sql = (
        "SELECT aid, sum(abalance) OVER (ORDER BY aid, abalance) FROM big "
        "ORDER BY aid, abalance LIMIT 100"
    )
    plan = pg.explain(sql)
    assert any(n.node_type == "Incremental Sort" for n in plan.nodes())
    work = Work(plan, pg.catalog(plan))
    [scan] = plan.scans()
    assert work.rows_read(scan) is not None and work.rows_read(scan) < 1_000  # type: ignore[operator]
    assert work.worst_read(scan) == pytest.approx(BIG_ROWS, rel=0.05)
    assert check_plan(plan, pg.catalog(plan)) == []  # no large-aggregate, no spill-to-disk


@pytest.fixture
def fresh_tables(db: str) -> Iterator[tuple[str, str]]:
    """Two tables created and never analyzed (as a test database's tables usually are)."""
    a, b = (f"qw_fresh_{uuid.uuid4().hex[:8]}" for _ in range(2))
    with psycopg.connect(db, autocommit=True) as conn:
        for name in (a, b):
            conn.execute(
                f"CREATE TABLE {name} (id int PRIMARY KEY, name text, note text) "
                "WITH (autovacuum_enabled = false)"
            )
    yield a, b
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {a}, {b}")


def test_sizes_the_planner_guessed_are_not_judged(db: str, fresh_tables: tuple[str, str]) -> None:
    a, b = fresh_tables
    sql = f"SELECT * FROM {a} x CROSS JOIN {b} y"
    with Explainer(db) as ex:
        plan = ex.explain(sql)
        catalog = ex.catalog(plan)
        # reltuples -1 and no pages: PostgreSQL plans each as 10 pages of rows, ~1M pairs.
        assert plan.root.est_rows is not None and plan.root.est_rows >= 100_000
        info = catalog.get(a)
        assert info is not None and info.size_guessed and info.reltuples is None
        assert Work(plan, catalog).guessed(plan.root)
        assert check_plan(plan, catalog) == []  # no unbounded-read, no cartesian-join
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(f"ANALYZE {a}, {b}")
    with Explainer(db) as ex:  # a new session: the catalog is read once per session
        plan = ex.explain(sql)
        catalog = ex.catalog(plan)
    # Analyzed (and empty), the sizes are known: nothing is guessed, and nothing to flag.
    info = catalog.get(a)
    assert info is not None and not info.size_guessed and info.reltuples == 0
    assert not Work(plan, catalog).guessed(plan.root)
    assert check_plan(plan, catalog) == []
