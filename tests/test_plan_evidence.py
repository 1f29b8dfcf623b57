"""Plan evidence on incidents: plans kept when a deploy is first seen, the culprit's plan, findings,
index advice and plan diff stored on its incident, shown by `incident show` and the postmortem.

The monitored database is real (a 200,000-row ``orders`` table with an index on ``customer_id``,
on the test PostgreSQL cluster with HypoPG, and in a SQLite file); the store is a real SQLite file
holding synthetic-but-realistic statement windows: v1 looks orders up by ``customer_id``, v2 casts
the column to text (non-sargable) and replaces that query.
"""

from __future__ import annotations

import json
import random
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from cli_helpers import run_cli
from querywatch.detect.model import Culprit
from querywatch.incidents.codec import (
    body_parts,
    body_to_json,
    incident_from_dict,
    incident_to_dict,
)
from querywatch.incidents.evidence import PlanEvidence
from querywatch.incidents.explain_session import explainable_sql
from querywatch.incidents.model import Incident
from querywatch.incidents.plan_snapshot import last_deploy_key, load_snapshot
from querywatch.incidents.postmortem import render_postmortem
from querywatch.incidents.repository import create_incident, load_incident
from querywatch.monitor import CheckResult, Monitor
from querywatch.records import DeployMarker, StatementWindow
from querywatch.sketch import LatencySketch
from querywatch.sql import fingerprint
from querywatch.store import SqlStore, open_store

T0 = 1_700_000_000  # a window boundary (2023-11-14 22:13:20 UTC)
DEPLOY = DeployMarker("d2", "v2", "c0ffee1", "prod", T0 + 1803.0, T0 + 1805.0, "ci", "v1")
NOW = T0 + 1835.0  # two whole windows of v2 and half of a third

GOOD = "SELECT id, total FROM orders WHERE customer_id = 42"
BAD = "SELECT id, total FROM orders WHERE CAST(customer_id AS TEXT) = '42'"
BY_ID = "SELECT id, total FROM orders WHERE id = 7"
RANGE = "SELECT id FROM orders WHERE id BETWEEN 100 AND 120"
EXPR_INDEX = (
    "CREATE INDEX CONCURRENTLY idx_orders_cast_customer_id_as_text "
    "ON public.orders ((CAST(customer_id AS TEXT)));"
)
UNREACHABLE = "postgresql://qw@127.0.0.1:1/nowhere?connect_timeout=2"


@dataclass(frozen=True)
class Query:
    sql: str
    calls: int  # per 10 s window
    mean_ms: float


V1 = [Query(GOOD, 60, 0.1), Query(BY_ID, 80, 0.05), Query(RANGE, 40, 0.2)]
V2_CAST = [Query(BAD, 60, 18.0), Query(BY_ID, 80, 0.05), Query(RANGE, 40, 0.2)]
V2_SLOW = [Query(GOOD, 60, 18.0), Query(BY_ID, 80, 0.05), Query(RANGE, 40, 0.2)]


def fp(sql: str, dialect: str = "postgres") -> str:
    return fingerprint(sql, dialect).id


def populate(
    store: SqlStore, v2: list[Query], start: int, until: float, dialect: str = "postgres"
) -> None:
    """Windows from ``start`` up to the one holding ``until``: v1 before the deploy, then ``v2``."""
    rng = random.Random(start)
    windows = []
    ws = start
    while ws <= until:
        fraction = min(1.0, (until - ws) / 10)
        for q in V1 if ws < DEPLOY.started_at - 10 else v2:
            n = max(1, round(q.calls * fraction * rng.uniform(0.8, 1.2)))
            noise = rng.uniform(0.7, 1.3)
            lat = [q.mean_ms * noise * rng.lognormvariate(0, 0.25) for _ in range(n)]
            sketch = LatencySketch()
            for v in lat:
                sketch.add(v)
            f = fingerprint(q.sql, dialect)
            windows.append(
                StatementWindow(
                    f.id,
                    f.normalized,
                    ws,
                    n,
                    sum(lat),
                    max(lat),
                    dialect=dialect,
                    source="app",
                    min_ms=min(lat),
                    sketch=sketch,
                )
            )
        ws += 10
    store.write_windows(windows)


def monitor(store: SqlStore, target: str | None) -> Monitor:
    return Monitor(store, n_plus_one=False, explain_target=target)


def evidence(incident: Incident, sql: str, dialect: str = "postgres") -> PlanEvidence:
    return PlanEvidence.from_dict(incident.plans[fp(sql, dialect)])


# --- the monitored databases ---------------------------------------------------------------------

ORDERS_PG = """
CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, total int NOT NULL)
    WITH (autovacuum_enabled = false);
INSERT INTO orders SELECT g, g % 100000, g % 977 FROM generate_series(1, 200000) AS g;
CREATE INDEX orders_customer_id ON orders (customer_id);
ANALYZE orders;
"""


def make_orders_pg(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
        conn.execute(ORDERS_PG)


@pytest.fixture(scope="module")
def shop_pg(pg_server: str) -> Iterator[str]:
    """A database with 200,000 orders (2 per customer), indexed on customer_id; HypoPG created."""
    name = f"qw_evidence_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = pg_server.rsplit("/", 1)[0] + f"/{name}"
    make_orders_pg(dsn)
    yield dsn
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def shop_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("shop") / "shop.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INT NOT NULL, total INT);
        WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 200000)
        INSERT INTO orders SELECT n, n % 100000, n % 977 FROM g;
        CREATE INDEX orders_customer_id ON orders (customer_id);
        """
    )
    conn.commit()
    conn.close()
    return path


# --- PostgreSQL: the plans before the deploy, the evidence on the incident -----------------------


def test_plans_are_kept_when_a_deploy_is_first_seen(shop_pg: str, tmp_path: Path) -> None:
    store = open_store(tmp_path / "qw.sqlite3")
    populate(store, V2_CAST, T0, DEPLOY.started_at - 10)
    store.record_deploy(DEPLOY)
    m = monitor(store, shop_pg)
    seen_at = DEPLOY.started_at + 5
    m.check(seen_at)
    snap = load_snapshot(store, "d2")
    assert snap is not None and store.get_state(last_deploy_key()) == "d2"
    assert snap.taken_at == seen_at and snap.deploy_started_at == DEPLOY.started_at
    assert set(snap.plans) == {fp(GOOD), fp(BY_ID), fp(RANGE)}, snap.notes
    good = snap.plan(fp(GOOD))
    assert good is not None and good.generic
    assert "orders_customer_id" in good.index_names()
    assert json.loads(store.get_state("plans:before:d2") or "")["plans"][fp(GOOD)]["sql"] == (
        "select id, total from orders where customer_id = $1"
    )
    # Later polls do not take them again: "before" stays the moment the deploy was first seen.
    populate(store, V2_CAST, int(DEPLOY.started_at) - 3, NOW)
    result = m.check(NOW)
    assert result.opened
    again = load_snapshot(store, "d2")
    assert again is not None and again.taken_at == seen_at
    store.close()


@pytest.fixture(scope="module")
def pg_incident(shop_pg: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The store and id of the incident v2's CAST query opens, with plan evidence from shop_pg."""
    path = tmp_path_factory.mktemp("store") / "qw.sqlite3"
    store = open_store(path)
    populate(store, V2_CAST, T0, NOW)
    store.record_deploy(DEPLOY)
    result = monitor(store, shop_pg).check(NOW)
    assert result.opened and result.incident is not None
    store.close()
    return path, result.incident.id


def test_the_culprit_gets_its_plan_findings_diff_and_advice(pg_incident: tuple[Path, str]) -> None:
    path, incident_id = pg_incident
    store = open_store(path)
    incident = load_incident(store, incident_id)
    store.close()
    assert incident is not None
    assert [c.fingerprint for c in incident.culprits] == [fp(BAD)]
    ev = evidence(incident, BAD)
    assert ev.explained_at == NOW and ev.dialect == "postgres" and ev.notes == []
    assert ev.plan is not None and ev.plan["generic"]
    assert any(line.strip().startswith("Seq Scan on public.orders") for line in ev.outline())
    rules = {f["rule"]: f for f in ev.findings}
    assert "function-on-indexed-column" in rules
    assert "orders_customer_id" in rules["function-on-indexed-column"]["message"]
    # Diffed against the query it replaced, as planned when deploy d2 was first seen.
    assert ev.against is not None
    assert ev.against["why"] == "replaced query" and ev.against["fingerprint"] == fp(GOOD)
    assert ev.against["when"] == "before deploy" and ev.against["explained_at"] == NOW
    assert ev.diff is not None and ev.diff["regressed"]
    assert ev.diff["scan_changes"] == [
        {
            "relation": "public.orders",
            "before": ["Index Scan using orders_customer_id"],
            "after": ["Seq Scan"],
        }
    ]
    assert ev.diff["cost_after"] > 10 * ev.diff["cost_before"]
    # HypoPG proves the expression index pays.
    assert ev.advice is not None and ev.advice["validated"]
    [rec] = ev.recommended
    assert rec["ddl"] == EXPR_INDEX
    assert rec["cost_after"] < 0.7 * rec["cost_before"]
    assert rec["cost_before"] == pytest.approx(ev.diff["cost_after"], rel=0.01)


def test_incident_show_prints_findings_diff_and_index(pg_incident: tuple[Path, str]) -> None:
    path, incident_id = pg_incident
    shown = run_cli("incident", "show", incident_id, "--store", str(path))
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "plan now (EXPLAIN at 2023-11-14 22:43:55 UTC on " in out
    assert "function-on-indexed-column: cast() on public.orders.customer_id" in out
    assert "plan diff against the query it replaced (select id, total from orders where " in out
    assert "Index Scan using orders_customer_id on public.orders → Seq Scan on public.orders" in out
    assert "when deploy d2 was first seen" in out
    assert "index advice (validated with HypoPG" in out and EXPR_INDEX in out
    as_json = run_cli("incident", "show", incident_id, "--store", str(path), "--json")
    data = json.loads(as_json.stdout)["data"]
    plans = data["plans"][fp(BAD)]
    assert plans["findings"][0]["rule"] in {"function-on-indexed-column", "seq-scan-large-table"}
    assert plans["advice"]["recommended"][0]["ddl"] == EXPR_INDEX
    assert plans["diff"]["summary"][0] == (
        "Index Scan using orders_customer_id on public.orders → Seq Scan on public.orders"
    )


def test_postmortem_carries_the_plan_evidence(pg_incident: tuple[Path, str]) -> None:
    path, incident_id = pg_incident
    store = open_store(path)
    text = render_postmortem(store, incident_id, now=NOW + 600).text
    store.close()
    cause = text.split("## Root Cause and Resolution", 1)[1].split("## Corrective", 1)[0]
    measures = text.split("## Corrective and Preventative Measures", 1)[1]
    assert "**Query plans:**" in cause
    assert "`function-on-indexed-column`" in cause
    assert "from plan rules on the EXPLAIN at 2023-11-14 22:43:55 UTC on " in cause
    assert (
        "Index Scan using orders_customer_id on public.orders → Seq Scan on public.orders" in cause
    )
    assert "rows. Fix: compare the bare column" in cause
    assert "when deploy d2 was first seen, 32 s after it started" in cause
    assert f"index advice: `{EXPR_INDEX}` cuts the estimated plan cost from " in cause
    assert f"Create the index `{EXPR_INDEX}` for `select id, total from orders where cast(" in (
        measures
    )
    assert "compare the bare column" in measures


def test_an_index_dropped_by_the_deploy_shows_as_the_same_query_losing_its_index(
    pg_dsn: str, tmp_path: Path
) -> None:
    make_orders_pg(pg_dsn)
    store = open_store(tmp_path / "qw.sqlite3")
    populate(store, V2_SLOW, T0, DEPLOY.started_at - 10)
    store.record_deploy(DEPLOY)
    m = monitor(store, pg_dsn)
    m.check(DEPLOY.started_at + 2)  # the deploy is seen before its migration ran
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("DROP INDEX orders_customer_id")
    populate(store, V2_SLOW, int(DEPLOY.started_at) - 3, NOW)
    result = m.check(NOW)
    assert result.incident is not None
    ev = evidence(result.incident, GOOD)
    assert ev.against is not None and ev.against["why"] == "same query"
    assert ev.against_label == "its plan before deploy d2"
    assert ev.diff is not None and ev.diff["summary"][0] == (
        "Index Scan using orders_customer_id on public.orders → Seq Scan on public.orders"
    )
    assert "seq-scan-large-table" in {f["rule"] for f in ev.findings}
    assert [r["ddl"] for r in ev.recommended] == [
        "CREATE INDEX CONCURRENTLY idx_orders_customer_id ON public.orders (customer_id);"
    ]
    store.close()


# --- best effort ---------------------------------------------------------------------------------


def test_an_unreachable_explain_target_leaves_a_note_and_the_incident_opens(
    tmp_path: Path,
) -> None:
    path = tmp_path / "qw.sqlite3"
    store = open_store(path)
    populate(store, V2_CAST, T0, NOW)
    store.record_deploy(DEPLOY)
    result = monitor(store, UNREACHABLE).check(NOW)
    assert result.opened and result.incident is not None
    snap = load_snapshot(store, "d2")
    assert snap is not None and snap.plans == {}
    assert len(snap.notes) == 1 and "cannot connect to" in snap.notes[0]
    ev = evidence(result.incident, BAD)
    assert ev.plan is None and ev.diff is None
    [note] = ev.notes
    assert note.startswith("EXPLAIN failed: cannot connect to postgresql://qw@127.0.0.1:1/nowhere")
    store.close()
    shown = run_cli("incident", "show", result.incident.id, "--store", str(path))
    assert "plan notes:" in shown.stdout and "EXPLAIN failed: cannot connect" in shown.stdout


def test_without_an_explain_target_nothing_is_explained(tmp_path: Path) -> None:
    store = open_store(tmp_path / "qw.sqlite3")
    populate(store, V2_CAST, T0, NOW)
    store.record_deploy(DEPLOY)
    result = monitor(store, None).check(NOW)
    assert result.opened and result.incident is not None
    assert result.incident.plans == {}
    assert store.get_state(last_deploy_key()) is None
    assert store.get_state("plans:before:d2") is None
    store.close()


# --- SQLite (the demo's database) ----------------------------------------------------------------


def test_sqlite_evidence_scan_versus_search_using_the_index(
    shop_sqlite: Path, tmp_path: Path
) -> None:
    path = tmp_path / "qw.sqlite3"
    store = open_store(path)
    populate(store, V2_CAST, T0, NOW, dialect="sqlite")
    store.record_deploy(DEPLOY)
    m = monitor(store, str(shop_sqlite))
    result = m.check(NOW)
    assert result.incident is not None
    ev = evidence(result.incident, BAD, "sqlite")
    assert ev.dialect == "sqlite" and ev.notes == []
    assert ev.outline() == ["SCAN orders"]
    assert ev.before_outline() == ["SEARCH orders USING INDEX orders_customer_id (customer_id=?)"]
    assert ev.diff is not None and ev.diff["summary"][0] == (
        "Index Scan using orders_customer_id on orders → Seq Scan on orders"
    )
    assert "function-on-indexed-column" in {f["rule"] for f in ev.findings}
    assert ev.advice is not None and not ev.advice["validated"]
    assert ev.advice_note == "SQLite has no hypothetical indexes: candidates below are unvalidated"
    # A later poll does not explain the culprit again.
    populate(store, V2_CAST, int(NOW) - 5, NOW + 10, dialect="sqlite")
    later = m.check(NOW + 10)
    assert later.incident is not None and later.incident.id == result.incident.id
    assert evidence(later.incident, BAD, "sqlite").explained_at == NOW
    store.close()
    shown = run_cli("incident", "show", result.incident.id, "--store", str(path)).stdout
    assert "plan now (EXPLAIN QUERY PLAN at " in shown
    assert "    SCAN orders" in shown
    assert "SEARCH orders USING INDEX orders_customer_id (customer_id=?)" in shown


def test_without_plans_from_before_the_replaced_query_is_explained_now(
    shop_sqlite: Path, tmp_path: Path
) -> None:
    store = open_store(tmp_path / "qw.sqlite3")
    populate(store, V2_CAST, T0, NOW, dialect="sqlite")
    store.record_deploy(DEPLOY)
    store.set_state(last_deploy_key(), "d2")  # seen earlier by a Monitor without explain target
    result = monitor(store, str(shop_sqlite)).check(NOW)
    assert result.incident is not None and load_snapshot(store, "d2") is None
    ev = evidence(result.incident, BAD, "sqlite")
    assert ev.against is not None and ev.against["when"] == "now"
    assert ev.against_source == (
        "EXPLAIN at 2023-11-14 22:43:55 UTC "
        "(explained with the evidence: no plan was kept before the deploy)"
    )
    assert ev.before_outline() == ["SEARCH orders USING INDEX orders_customer_id (customer_id=?)"]
    store.close()


def test_a_deploy_first_seen_long_after_it_started_gets_no_before_plans(
    shop_sqlite: Path, tmp_path: Path
) -> None:
    store = open_store(tmp_path / "qw.sqlite3")
    populate(store, V2_CAST, T0, DEPLOY.started_at - 10, dialect="sqlite")
    store.record_deploy(DEPLOY)
    monitor(store, str(shop_sqlite)).check(DEPLOY.started_at + 7200)
    assert store.get_state(last_deploy_key()) == "d2"
    assert load_snapshot(store, "d2") is None  # today's plans are not "before" a 2-hour-old deploy
    store.close()


# --- storage -------------------------------------------------------------------------------------


def test_plan_evidence_round_trips_and_old_bodies_still_load(tmp_path: Path) -> None:
    store = open_store(tmp_path / "qw.sqlite3")
    culprit = Culprit("abc", "select 1", 5.0, "d2")
    ev = PlanEvidence("abc", "select 1", "shop.db", "sqlite", NOW, notes=["EXPLAIN failed: x"])
    incident = Incident(
        "", "open", NOW, NOW, "t", "d2", [], [culprit], None, None, plans={"abc": ev.as_dict()}
    )
    stored = create_incident(store, incident, "QW-T")
    loaded = load_incident(store, stored.id)
    assert loaded is not None and loaded.plans == {"abc": ev.as_dict()}
    assert PlanEvidence.from_dict(loaded.plans["abc"]) == ev
    assert incident_from_dict(incident_to_dict(loaded)) == loaded
    old = json.loads(body_to_json(incident))
    del old["plans"]  # a body written before plan evidence existed
    assert body_parts(json.dumps(old))[4] == {}
    store.close()


def test_normalized_statements_become_explainable() -> None:
    assert explainable_sql("select a from t where b = ? and c in (?)", "postgres") == (
        "select a from t where b = $1 and c in ($2)"
    )
    assert explainable_sql("select a from t where b = ? -- ?\n", "sqlite") == (
        "select a from t where b = ? -- ?"
    )
    assert explainable_sql("select '?' from t where b = $1 and c = ?", "postgres") == (
        "select '?' from t where b = $1 and c = $2"
    )
    assert explainable_sql("begin", "postgres") is None
    assert explainable_sql("set search_path = ?", "postgres") is None


def test_check_result_carries_the_stored_evidence(shop_sqlite: Path, tmp_path: Path) -> None:
    store = open_store(tmp_path / "qw.sqlite3")
    populate(store, V2_CAST, T0, NOW, dialect="sqlite")
    store.record_deploy(DEPLOY)
    result: CheckResult = monitor(store, str(shop_sqlite)).check(NOW)
    assert result.incident is not None
    stored = load_incident(store, result.incident.id)
    assert stored is not None and stored.plans == result.incident.plans != {}
    store.close()
