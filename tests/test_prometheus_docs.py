"""docs/prometheus: the alert rules pass promtool (check and unit tests), the Grafana dashboard is
an importable model, and every metric either of them names is in a real scrape, so the docs
cannot drift from /metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from metrics_store import filled_store, scrape

DOCS = Path(__file__).resolve().parent.parent / "docs" / "prometheus"
METRIC = re.compile(r"\b((?:querywatch|process|python)_[a-z0-9_]+)\b")
VARIABLE = re.compile(r"\$\{?(\w+)")
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__from", "__to", "__field", "__data"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: run scripts/install-system-deps.sh (make test does)"
    return subprocess.run(
        [binary, *args], cwd=DOCS, capture_output=True, text=True, timeout=60, check=False
    )


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((DOCS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DOCS / "grafana-dashboard.json").read_text())
    return data


def panels(model: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in model["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries(model: dict[str, Any]) -> list[str]:
    queries = [t["expr"] for p in panels(model) for t in p.get("targets", [])]
    queries += [a["expr"] for a in model["annotations"]["list"] if "expr" in a]
    queries += [v["definition"] for v in model["templating"]["list"] if "definition" in v]
    return queries


def test_promtool_accepts_the_rules() -> None:
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_the_rules_unit_tests_pass() -> None:
    """alerts_test.yml: each alert fires on the series querywatch exposes, at the time it
    should, with its labels and the link to its querywatch page."""
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname: (\w+)", (DOCS / "alerts_test.yml").read_text()))
    untested = (
        {r["alert"] for r in rules()}
        - tested
        - {
            "QuerywatchAgentSlowPolls",  # a plain comparison of two gauges
            "QuerywatchStoreUnreadable",  # a plain threshold
        }
    )
    assert not untested, f"alerts without a promtool test: {sorted(untested)}"


def test_every_alert_routes_and_says_what_happened() -> None:
    for rule in rules():
        assert rule["labels"]["service"] == "querywatch", rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        link = rule["annotations"].get("dashboard", "https://querywatch.example.com/")
        assert link.startswith("https://querywatch.example.com/"), rule["alert"]


def test_the_dashboard_is_an_importable_model() -> None:
    model = dashboard()
    assert isinstance(model["schemaVersion"], int) and model["schemaVersion"] >= 36
    assert model["title"] and model["uid"] and model["id"] is None
    [source] = model["__inputs"]
    assert (source["name"], source["type"], source["pluginId"]) == (
        "DS_PROMETHEUS",
        "datasource",
        "prometheus",
    )
    datasource = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    ids = [p["id"] for p in panels(model)]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    required = {r["id"] for r in model["__requires"]}
    for panel in panels(model):
        box = panel["gridPos"]
        assert box["x"] >= 0 and box["w"] > 0 and box["x"] + box["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["type"] in required, panel["type"]
        assert panel["datasource"] == datasource, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == datasource and target["expr"].strip(), panel["title"]


def test_the_dashboard_marks_deploys_and_links_to_querywatch() -> None:
    model = dashboard()
    annotations = {a["name"]: a for a in model["annotations"]["list"]}
    deploys = annotations["Deploys"]
    assert "querywatch_deploy_started_timestamp_seconds" in deploys["expr"]
    # the series' value is the deploy's start, in ms as Grafana wants it: the marker sits there
    assert deploys["useValueForTime"] is True and deploys["expr"].endswith("* 1000")
    assert "{{version}}" in deploys["titleFormat"] and "{{commit}}" in deploys["textFormat"]
    variables = {v["name"] for v in model["templating"]["list"]}
    text = json.dumps(model)
    used = set(VARIABLE.findall(text)) - {"DS_PROMETHEUS"} - GRAFANA_BUILTINS
    assert used <= variables, f"undefined dashboard variables: {sorted(used - variables)}"
    assert "${base_url}/fingerprints/" in text and "${base_url}/incidents" in text


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query (as a recording rule), the dashboard's variables filled in as
    Grafana would."""
    values = {"$instance": ".*", "$environment": ".*", "$top": "10", "$__rate_interval": "1m"}
    records = []
    for n, query in enumerate(dashboard_queries(dashboard())):
        if query.startswith("label_values("):
            continue  # a Grafana variable query, not PromQL
        for name, value in values.items():
            query = query.replace(name, value)
        records.append({"record": f"dashboard:query_{n}", "expr": query})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.postgres
def test_every_metric_the_docs_use_is_in_a_real_scrape(tmp_path: Path, pg_dsn: str) -> None:
    store = filled_store(tmp_path / "store.sqlite3", pg_dsn)
    families = scrape(store)
    store.close()
    exposed = {s.name for f in families.values() for s in f.samples}
    used_by = {
        "alerts.yml": {m for r in rules() for m in METRIC.findall(r["expr"])},
        "grafana-dashboard.json": {
            m for q in dashboard_queries(dashboard()) for m in METRIC.findall(q)
        },
    }
    for doc, used in used_by.items():
        assert used, doc
        assert used <= exposed, f"{doc} uses series /metrics does not expose: {used - exposed}"
    # and the README's table names every querywatch series a scrape has
    readme = (DOCS / "README.md").read_text()
    ours = {n for n in exposed if n.startswith("querywatch_")}
    missing = {n for n in ours if f"`{n}`" not in readme}
    assert not missing, f"docs/prometheus/README.md does not list {sorted(missing)}"
