"""/metrics as Prometheus reads it: the payload parsed by prometheus-client's own parser, over real
SQLite (and PostgreSQL) stores filled through the store's write paths and real agents."""

from __future__ import annotations

import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from cli_helpers import served
from metrics_store import BLIND_AGENT, LIVE_AGENT, filled_store, samples, scrape
from querywatch import deploys
from querywatch.config import load_config
from querywatch.errors import ConfigError
from querywatch.incidents import service
from querywatch.records import StatementWindow, window_start
from querywatch.store import SqlStore, open_store
from querywatch.web.metrics import CONTENT_TYPE
from querywatch.web.metrics_reads import DEPLOYS_PER_ENVIRONMENT, LOOKBACK_S
from respond_helpers import (
    DEPLOY_AT,
    NOW,
    ORDERS_FP,
    open_incident,
    ship_bad_release,
    write_traffic,
)

UNTIL = window_start(NOW)  # the window still filling at NOW is left out
SINCE = UNTIL - LOOKBACK_S


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[SqlStore]:
    """The shop's traffic around its bad deploy (v2 makes the orders query ~30x slower)."""
    store = open_store(tmp_path / "store.sqlite3")
    ship_bad_release(store)
    yield store
    store.close()


def by_fingerprint(family: Metric) -> dict[str, float]:
    return {dict(k)["fingerprint"]: v for k, v in samples(family).items()}


def test_the_top_fingerprints_have_their_own_series_and_the_rest_is_one_other(
    shop: SqlStore,
) -> None:
    families = scrape(shop, top_n=2)
    top = shop.top(since=SINCE, until=UNTIL, limit=10)
    assert len(top) == 4  # the shop's four queries
    calls = by_fingerprint(families["querywatch_fingerprint_calls_per_second"])
    db_time = by_fingerprint(families["querywatch_fingerprint_db_time_seconds_per_second"])
    p95 = by_fingerprint(families["querywatch_fingerprint_latency_p95_seconds"])
    mean = by_fingerprint(families["querywatch_fingerprint_latency_mean_seconds"])
    assert set(calls) == {top[0].fingerprint, top[1].fingerprint, "other"}
    assert top[0].fingerprint == ORDERS_FP.id  # the slow release's query costs the most
    for summary in top[:2]:
        fp = summary.fingerprint
        assert calls[fp] == pytest.approx(summary.calls / LOOKBACK_S)
        assert db_time[fp] == pytest.approx(summary.total_ms / 1000 / LOOKBACK_S)
        assert mean[fp] == pytest.approx(summary.mean_ms / 1000)
        assert p95[fp] == pytest.approx(summary.p95_ms / 1000)  # type: ignore[operator]
    rest = top[2:]
    assert calls["other"] == pytest.approx(sum(s.calls for s in rest) / LOOKBACK_S)
    assert db_time["other"] == pytest.approx(sum(s.total_ms for s in rest) / 1000 / LOOKBACK_S)
    assert "other" not in p95  # percentiles do not add up; the rest has its mean only
    total = samples(families["querywatch_db_time_seconds_per_second"])[()]
    assert total == pytest.approx(sum(db_time.values()))
    assert samples(families["querywatch_fingerprints_active"])[()] == 4
    assert samples(families["querywatch_metrics_window_seconds"])[()] == LOOKBACK_S


def test_no_other_series_when_every_fingerprint_has_its_own(shop: SqlStore) -> None:
    calls = by_fingerprint(scrape(shop, top_n=50)["querywatch_fingerprint_calls_per_second"])
    assert len(calls) == 4 and "other" not in calls


def test_only_whole_windows_of_the_look_back_count(shop: SqlStore) -> None:
    """The window still filling at the scrape and the ones before the look-back are left out,
    so a rate does not dip between two polls, and a fingerprint no longer called drops out."""
    before = scrape(shop)
    shop.write_windows(
        [
            StatementWindow("fp-filling", "SELECT ?", UNTIL, 1000, 9000.0, 9.0),
            StatementWindow("fp-old", "SELECT ? + ?", SINCE - 10, 1000, 9000.0, 9.0),
        ]
    )
    after = scrape(shop)
    name = "querywatch_fingerprint_calls_per_second"
    assert by_fingerprint(after[name]) == by_fingerprint(before[name])


def test_two_sources_of_one_fingerprint_are_not_added(tmp_path: Path) -> None:
    """pg_stat_statements and in-app capture see the same calls: the fuller one is read."""
    store = open_store(tmp_path / "s.sqlite3")
    store.write_windows(
        [
            StatementWindow("fp-a", "SELECT ?", SINCE, 90, 180.0, 5.0, source="pg_stat_statements"),
            StatementWindow("fp-a", "SELECT ?", SINCE, 60, 120.0, 5.0, source="app"),
        ]
    )
    calls = by_fingerprint(scrape(store)["querywatch_fingerprint_calls_per_second"])
    store.close()
    assert calls == {"fp-a": pytest.approx(90 / LOOKBACK_S)}


def test_incidents_open_by_status_and_opened_as_a_counter(shop: SqlStore) -> None:
    incident = open_incident(shop)
    families = scrape(shop)
    opened = samples(families["querywatch_incident_opened_timestamp_seconds"])
    assert opened == {(("incident", incident.id), ("status", "open")): incident.opened_at}
    service.acknowledge(shop, incident.id, by="oncall", at=NOW + 5)
    families = scrape(shop)
    by_status = {
        dict(k)["status"]: v for k, v in samples(families["querywatch_incidents_open"]).items()
    }
    assert by_status == {"open": 0, "acknowledged": 1, "mitigated": 0}
    counter = families["querywatch_incidents_opened"]
    assert counter.type == "counter"
    assert samples(counter, "querywatch_incidents_opened_total") == {(): 1}
    service.resolve(shop, incident.id, by="oncall", at=NOW + 60)
    families = scrape(shop)
    assert sum(samples(families["querywatch_incidents_open"]).values()) == 0
    assert samples(families["querywatch_incident_opened_timestamp_seconds"]) == {}
    # a resolved incident still counts as opened: the counter never goes down
    assert samples(
        families["querywatch_incidents_opened"], "querywatch_incidents_opened_total"
    ) == {(): 1}


def test_deploys_count_and_the_latest_carry_version_and_commit(shop: SqlStore) -> None:
    families = scrape(shop)
    total = samples(families["querywatch_deploys"], "querywatch_deploys_total")
    assert total == {(("environment", "production"),): 2}
    started = samples(families["querywatch_deploy_started_timestamp_seconds"])
    key = (
        ("commit", "bbbb2222"),
        ("deploy_id", "d2"),
        ("environment", "production"),
        ("version", "v2"),
    )
    assert started[key] == DEPLOY_AT
    for i in range(DEPLOYS_PER_ENVIRONMENT + 2):
        deploys.start_deploy(
            shop, f"v{3 + i}", at=NOW + i, deploy_id=f"d{3 + i}", environment="staging"
        )
    families = scrape(shop)
    staging = [
        dict(k)
        for k in samples(families["querywatch_deploy_started_timestamp_seconds"])
        if dict(k)["environment"] == "staging"
    ]
    assert len(staging) == DEPLOYS_PER_ENVIRONMENT  # bounded: the latest ones
    assert {d["deploy_id"] for d in staging} == {f"d{3 + i}" for i in range(2, 12)}
    total = samples(families["querywatch_deploys"], "querywatch_deploys_total")
    assert total[(("environment", "staging"),)] == DEPLOYS_PER_ENVIRONMENT + 2


def test_an_unreadable_store_still_answers_with_the_process_metrics(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = open_store(path)
    with sqlite3.connect(path) as other:  # someone broke the file's tables
        other.execute("DROP TABLE windows")
    families = scrape(store)
    store.close()
    assert samples(families["querywatch_store_up"]) == {(): 0}
    assert "querywatch_fingerprint_calls_per_second" not in families
    assert samples(families["process_resident_memory_bytes"])[()] > 0


def test_the_payload_is_the_text_format_with_our_prefix(shop: SqlStore) -> None:
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")
    families = scrape(shop)
    assert samples(families["querywatch_store_up"]) == {(): 1}
    ours = [n for n in families if not n.startswith(("process_", "python_"))]
    assert all(n.startswith("querywatch_") for n in ours), ours
    assert "process_cpu_seconds" in families and "python_info" in families


@pytest.mark.postgres
def test_canary_and_agent_health_from_real_agents(tmp_path: Path, pg_dsn: str) -> None:
    store = filled_store(tmp_path / "store.sqlite3", pg_dsn)
    families = scrape(store)
    store.close()
    status = samples(families["querywatch_canary_status"])
    labels = (("canary_release", "v3"), ("environment", "production"), ("stable_release", "v2"))
    assert status[(*labels, ("status", "running"))] == 1
    assert status[(*labels, ("status", "aborted"))] == 0
    verdicts = {
        dict(k)["verdict"]: v for k, v in samples(families["querywatch_canary_verdict"]).items()
    }
    assert sorted(verdicts.values()) == [0, 0, 1]  # the one the rollout was last judged
    assert samples(families["querywatch_canary_weight_percent"]) == {labels: 5}
    assert samples(families["querywatch_canary_last_verdict_timestamp_seconds"]) == {labels: NOW}

    def agent(name: str, sample: str | None = None) -> dict[str, float]:
        family = families[name]
        return {dict(k)["agent"]: v for k, v in samples(family, sample).items()}

    assert agent("querywatch_agent_blind") == {LIVE_AGENT: 0, BLIND_AGENT: 1}
    assert agent("querywatch_agent_polls", "querywatch_agent_polls_total") == {
        LIVE_AGENT: 1,
        BLIND_AGENT: 1,
    }
    assert agent("querywatch_agent_failed_polls", "querywatch_agent_failed_polls_total") == {
        LIVE_AGENT: 0,
        BLIND_AGENT: 1,
    }
    polled = agent("querywatch_agent_last_poll_timestamp_seconds")
    assert polled == {LIVE_AGENT: NOW + 5, BLIND_AGENT: NOW + 5}
    assert set(agent("querywatch_agent_last_success_timestamp_seconds")) == {LIVE_AGENT}
    assert (
        agent("querywatch_agent_last_success_timestamp_seconds")[LIVE_AGENT] == polled[LIVE_AGENT]
    )
    assert agent("querywatch_agent_poll_interval_seconds") == {LIVE_AGENT: 10, BLIND_AGENT: 10}
    assert all(v >= 0 for v in agent("querywatch_agent_poll_duration_seconds").values())
    assert agent("querywatch_agent_resident_memory_bytes")[LIVE_AGENT] > 1_000_000


@pytest.mark.postgres
def test_a_postgres_store_gives_the_same_figures(tmp_path: Path, pg_dsn: str) -> None:
    """The reads are shared SQL: the PostgreSQL store answers as the SQLite one does."""
    figures = []
    for location in (str(tmp_path / "s.sqlite3"), pg_dsn):
        store = open_store(location)
        ship_bad_release(store)
        open_incident(store)
        families = scrape(store, top_n=2)
        store.close()
        figures.append(
            {
                name: samples(families[name], sample)
                for name, sample in (
                    ("querywatch_fingerprint_db_time_seconds_per_second", None),
                    ("querywatch_fingerprint_latency_p95_seconds", None),
                    ("querywatch_incidents_open", None),
                    ("querywatch_deploys", "querywatch_deploys_total"),
                    ("querywatch_deploy_started_timestamp_seconds", None),
                )
            }
        )
    for name in figures[0]:
        assert figures[0][name].keys() == figures[1][name].keys(), name
        for key, value in figures[0][name].items():
            assert figures[1][name][key] == pytest.approx(value), (name, key)


@pytest.mark.parametrize("value", ["0", "1001", "ten"])
def test_metrics_top_n_is_checked(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="metrics_top_n"):
        load_config(environ={"QUERYWATCH_METRICS_TOP_N": value}, cwd=tmp_path)


def test_metrics_top_n_defaults_to_fifty(tmp_path: Path) -> None:
    assert load_config(environ={}, cwd=tmp_path)["metrics_top_n"] == 50


READ_TOKEN = "read-token-for-prometheus-0123456"


def test_prometheus_scrapes_serve_with_the_read_token(tmp_path: Path) -> None:
    """`querywatch serve` as a user runs it, scraped as Prometheus does: the read token in the
    Authorization header, metrics_top_n from the environment; without a token, a 401."""
    path = tmp_path / "store.sqlite3"
    store = open_store(path)
    now = time.time()
    write_traffic(store, window_start(now) - 120, window_start(now) + 10)
    store.close()
    env = {
        "QUERYWATCH_API_TOKEN": "write-token-for-ci-deploys-000000",
        "QUERYWATCH_API_READ_TOKEN": READ_TOKEN,
        "QUERYWATCH_METRICS_TOP_N": "1",
    }
    with served("--store", str(path), cwd=tmp_path, env=env) as base:
        url = base + "/metrics"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=10)
        assert refused.value.code == 401
        refused.value.close()
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {READ_TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["Content-Type"] == CONTENT_TYPE
            text = response.read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    calls = by_fingerprint(families["querywatch_fingerprint_calls_per_second"])
    assert set(calls) == {ORDERS_FP.id, "other"}  # metrics_top_n=1: one query, then the rest
    assert samples(families["querywatch_store_up"]) == {(): 1}
    assert samples(families["process_resident_memory_bytes"])[()] > 0
