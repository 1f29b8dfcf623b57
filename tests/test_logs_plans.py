"""`digest --store` keeps each top fingerprint's slowest auto_explain plan in the store, and an
incident about that fingerprint carries it as plan evidence.

The logs are real: the suite's PostgreSQL with auto_explain loaded (``tests/log_workload.py``),
in text format (the shared statement-style logs) and in JSON format (auto_explain.log_format).
The incident opens the way `watch` opens one, from synthetic windows of the same fingerprint
getting slower after a deploy (``tests/test_plan_evidence.py``'s).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_helpers import run_cli
from log_workload import SLOW, STATEMENT_STYLE, shared_logs, workload_logs
from querywatch.incidents.evidence import PlanEvidence
from querywatch.incidents.evidence_gather import plan_evidence
from querywatch.incidents.view import plan_lines
from querywatch.logs.logged_plans import redact_plan
from querywatch.monitor import Monitor
from querywatch.sql import fingerprint
from querywatch.store import SqlStore, open_store
from querywatch.store.state import logged_plan_key
from test_plan_evidence import DEPLOY, NOW, T0, V1, Query, populate

SLOW_FP = fingerprint(SLOW, "postgres").id


def digest_store(log: Path, store: Path) -> dict[str, object]:
    """``querywatch digest LOG --store=STORE``; the logged plan it kept for SLOW."""
    result = run_cli("digest", str(log), f"--store={store}", "--json", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "kept the slowest logged plan of" in result.stderr
    s = open_store(store)
    try:
        text = s.get_state(logged_plan_key(SLOW_FP))
    finally:
        s.close()
    assert text is not None
    return dict(json.loads(text))


def open_slow_incident(store: SqlStore, target: str | None) -> PlanEvidence:
    """An incident whose culprit is SLOW (60 calls a window, 18 ms each after the deploy)."""
    populate(store, [*V1, Query(SLOW, 60, 18.0)], T0, NOW)
    store.record_deploy(DEPLOY)
    result = Monitor(store, n_plus_one=False, explain_target=target).check(NOW)
    assert result.opened and result.incident is not None
    assert SLOW_FP in [c.fingerprint for c in result.incident.culprits]
    return PlanEvidence.from_dict(result.incident.plans[SLOW_FP])


def test_digest_store_keeps_the_text_plan_and_an_incident_without_a_database_uses_it(
    tmp_path: Path,
) -> None:
    root, _ = shared_logs("statement")
    store_path = tmp_path / "qw.sqlite3"
    kept = digest_store(root / "pg.log", store_path)
    assert kept["format"] == "text" and kept["fingerprint"] == SLOW_FP
    assert "Result" in str(kept["plan"]) and "Query Text" not in str(kept["plan"])
    assert "'slow'" not in str(kept["plan"])  # the store keeps no literal values
    assert float(str(kept["duration_ms"])) >= 50 and kept["at"]
    store = open_store(store_path)
    ev = open_slow_incident(store, None)  # the log alone: no database to EXPLAIN
    store.close()
    assert ev.plan is None and ev.logged is not None
    assert ev.logged["text"] == kept["plan"] and ev.logged["at"] == kept["at"]
    assert any("the plan is the one the log showed" in n for n in ev.notes)
    shown = "\n".join(plan_lines(ev))
    assert "plan at the time (the log's auto_explain plan at " in shown and "Result" in shown


def test_a_json_plan_is_parsed_and_rides_along_with_explain_now(
    tmp_path: Path, pg_server: str
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    workload_logs(logs, {**STATEMENT_STYLE, "auto_explain.log_format": "'json'"})
    store_path = tmp_path / "qw.sqlite3"
    kept = digest_store(logs / "pg.log", store_path)
    assert kept["format"] == "json" and '"Node Type": "Result"' in str(kept["plan"])
    store = open_store(store_path)
    ev = open_slow_incident(store, pg_server)
    # EXPLAIN now on the database, and next to it the plan the log showed at the time.
    assert ev.plan is not None and ev.explained_at == NOW
    assert ev.logged is not None and ev.logged["format"] == "json"
    assert ev.logged["plan"]["root"]["node_type"] == "Result"
    assert ev.logged_outline()[0].startswith("Result")
    store.close()


def test_without_a_kept_plan_the_evidence_says_nothing_from_the_log(
    tmp_path: Path, pg_server: str
) -> None:
    store = open_store(tmp_path / "qw.sqlite3")
    populate(store, [*V1, Query(SLOW, 60, 18.0)], T0, NOW)
    store.record_deploy(DEPLOY)
    result = Monitor(store, n_plus_one=False).check(NOW)
    assert result.incident is not None and result.incident.plans == {}
    found = plan_evidence(pg_server, store, result.incident)
    assert found[SLOW_FP].logged is None
    store.close()


@pytest.mark.parametrize("bad", ["not json", json.dumps({"format": "json"})])
def test_an_unreadable_kept_plan_is_no_evidence(tmp_path: Path, bad: str) -> None:
    store = open_store(tmp_path / "qw.sqlite3")
    store.set_state(logged_plan_key(SLOW_FP), bad)
    from querywatch.incidents.evidence_gather import load_logged_plan

    assert load_logged_plan(store, SLOW_FP) is None
    store.close()


def test_a_kept_plan_has_no_literal_values_but_keeps_its_figures() -> None:
    text = (
        "Seq Scan on orders o  (cost=0.00..35.50 rows=10 width=4) "
        "(actual time=0.010..5.200 rows=3 loops=1)\n"
        "  Filter: ((customer_id = 42) AND ((email)::text = 'bob@example.com'::text) "
        "AND (t2.col3 > $1) AND (total > -3.5e2))\n"
        "  Rows Removed by Filter: 990\n"
    )
    assert redact_plan(text) == (
        "Seq Scan on orders o  (cost=0.00..35.50 rows=10 width=4) "
        "(actual time=0.010..5.200 rows=3 loops=1)\n"
        "  Filter: ((customer_id = ?) AND ((email)::text = ?::text) AND (t2.col3 > $1) "
        "AND (total > ?))\n"
        "  Rows Removed by Filter: 990\n"
    )
    plan = [
        {
            "Plan": {
                "Node Type": "Index Scan",
                "Index Cond": "(email = 'o''k'::text)",
                "Rows Removed by Filter": 7,
                "Output": ["id", "'x'::text"],
            }
        }
    ]
    assert json.loads(redact_plan(json.dumps(plan))) == [
        {
            "Plan": {
                "Node Type": "Index Scan",
                "Index Cond": "(email = ?::text)",
                "Rows Removed by Filter": 7,
                "Output": ["id", "?::text"],
            }
        }
    ]
