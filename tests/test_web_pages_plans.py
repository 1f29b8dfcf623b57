"""What the pages show of plans: the latest kept plan as a tree, its findings and index advice,
and the plan diff across the last deploy, from what incidents and the agent keep in the store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from pages_helpers import READ, Client, serve
from querywatch.incidents.evidence import PlanEvidence
from querywatch.incidents.model import Incident, TimelineEvent
from querywatch.incidents.plan_snapshot import PlanSnapshot, before_key
from querywatch.incidents.repository import update_incident
from querywatch.plans.model import Plan, PlanNode
from querywatch.store import open_store
from querywatch.store.base import Store
from respond_helpers import DEPLOY_AT, NOW, ORDERS_FP, open_incident, ship_bad_release

INDEX_PLAN = Plan(
    PlanNode(
        "Index Scan",
        relation="orders",
        index_name="orders_customer_id_idx",
        index_cond="(customer_id = $1)",
        est_rows=12,
        startup_cost=0.43,
        total_cost=8.45,
    ),
    "postgres",
    ORDERS_FP.normalized,
    generic=True,
)
SEQ_PLAN = Plan(
    PlanNode(
        "Limit",
        total_cost=20406.0,
        children=[
            PlanNode(
                "Seq Scan",
                relation="orders",
                filter="(customer_id = $1) AND (note <> '<b>x</b>')",
                est_rows=12,
                total_cost=20406.0,
            )
        ],
    ),
    "postgres",
    ORDERS_FP.normalized,
    generic=True,
)


def keep_plans(store: Store, incident: Incident, *, with_diff: bool) -> None:
    """What the monitor keeps: the plan before deploy d2, and the culprit's plan evidence."""
    snapshot = PlanSnapshot(
        "d2", DEPLOY_AT, DEPLOY_AT + 2, "db", {ORDERS_FP.id: INDEX_PLAN.as_dict()}
    )
    store.set_state(before_key("d2"), json.dumps(snapshot.as_dict()))
    evidence = PlanEvidence(
        ORDERS_FP.id,
        ORDERS_FP.normalized,
        target="db",
        dialect="postgres",
        explained_at=NOW - 30,
        plan=SEQ_PLAN.as_dict(),
        findings=[
            {
                "rule": "seq-scan-large-table",
                "severity": "warning",
                "message": "Seq Scan on orders reads 1,000,000 rows to return 12",
                "fix": "index orders (customer_id)",
            }
        ],
        advice={
            "validated": True,
            "recommended": [
                {
                    "ddl": "CREATE INDEX ON orders (customer_id) -- <script>",
                    "cost_before": 20406.0,
                    "cost_after": 8.45,
                    "improvement": 0.99,
                }
            ],
            "candidates": [],
        },
    )
    if with_diff:
        evidence.diff = {
            "summary": ["Index Scan using orders_customer_id_idx on orders → Seq Scan on orders"]
        }
        evidence.against = {
            "deploy_id": "d2",
            "when": "before deploy",
            "explained_at": DEPLOY_AT + 2,
            "why": "same query",
            "plan": INDEX_PLAN.as_dict(),
        }

    def change(i: Incident) -> list[TimelineEvent]:
        i.plans[ORDERS_FP.id] = evidence.as_dict()
        return []

    update_incident(store, incident.id, change)


@pytest.fixture(params=[True, False], ids=["diff-kept", "diff-computed"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Client, str]]:
    path = tmp_path / "store.sqlite3"
    with open_store(path) as store:
        ship_bad_release(store)
        incident = open_incident(store)
        keep_plans(store, incident, with_diff=request.param)
    server = serve(path)
    yield Client(server.url, token=READ), incident.id
    server.shutdown()
    server.server_close()


def test_the_fingerprint_page_shows_the_latest_plan_its_findings_advice_and_diff(
    served: tuple[Client, str],
) -> None:
    client, incident_id = served
    page = client.get(f"/fingerprints/{ORDERS_FP.id}").text
    latest = page[page.index('<ul class="plan-tree" data-plan="latest">') :]
    latest = latest[: latest.index("</ul>\n")]
    assert 'data-node-type="Limit"' in latest and 'data-node-type="Seq Scan"' in latest
    assert "&lt;b&gt;x&lt;/b&gt;" in latest and "<b>x" not in page  # a condition, escaped
    assert f"for incident {incident_id}" in page
    assert 'data-rule="seq-scan-large-table"' in page and "fix: index orders (customer_id)" in page
    assert "CREATE INDEX ON orders (customer_id) -- &lt;script&gt;" in page
    diff = page[page.index('<ul class="plan-diff">') :]
    assert "Index Scan using orders_customer_id_idx on orders → Seq Scan on orders" in diff
    assert 'data-plan="before"' in page and 'data-node-type="Index Scan"' in page


def test_the_incident_page_shows_the_culprits_plan_evidence(served: tuple[Client, str]) -> None:
    client, incident_id = served
    page = client.get(f"/incidents/{quote(incident_id)}").text
    assert '<ul class="plan-tree" data-plan="incident">' in page
    assert 'data-rule="seq-scan-large-table"' in page
    assert "Index advice (validated with HypoPG)" in page


def test_without_a_kept_plan_the_page_says_how_to_get_one(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    with open_store(path) as store:
        ship_bad_release(store)
    server = serve(path)
    try:
        page = Client(server.url, token=READ).get(f"/fingerprints/{ORDERS_FP.id}").text
        assert "No plan of this query is kept" in page and "querywatch explain" in page
        assert "no plan of this query was kept before deploy d2" in page
    finally:
        server.shutdown()
        server.server_close()
