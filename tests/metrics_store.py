"""A store with something in every /metrics family, filled through the real write paths: the
shop's traffic and bad deploy, an incident on it, a canary rollout judged once, and two real
agents' health rows (one polling a real pg_stat_statements, one blind on a closed port), their
clock at the shop's time (an agent at today's clock would expire the shop's windows)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from pg_cluster import free_port
from querywatch.capture.pg_stat_statements import PgStatStatementsSource
from querywatch.respond.canary import CanaryRollout
from querywatch.respond.canary_settings import CanarySettings
from querywatch.store import SqlStore, open_store
from querywatch.watch import Agent
from querywatch.web.metrics import metrics_payload
from respond_helpers import NOW, open_incident, ship_bad_release

LIVE_AGENT = "pg_stat_statements:shop"
BLIND_AGENT = "pg_stat_statements:gone"


def filled_store(path: Path, pg_dsn: str) -> SqlStore:
    store = open_store(path)
    ship_bad_release(store)
    open_incident(store)
    canary = CanaryRollout(store, CanarySettings(environment="production"))
    canary.start("v3", "v2", by="ci", now=NOW - 60)
    canary.step(now=NOW)
    live = PgStatStatementsSource(pg_dsn)
    try:
        agent = Agent(live, store, state_key=LIVE_AGENT, interval=10, clock=lambda: NOW + 5)
        agent.poll_once(strict=True)
    finally:
        live.close()
    gone = PgStatStatementsSource(
        f"postgresql://app@127.0.0.1:{free_port()}/shop", connect_timeout_s=2
    )
    Agent(gone, store, state_key=BLIND_AGENT, interval=10, clock=lambda: NOW + 5).poll_once()
    gone.close()
    return store


def scrape(store: SqlStore, *, top_n: int = 50, now: float = NOW) -> dict[str, Metric]:
    """One scrape, parsed as Prometheus parses it: families by name."""
    text = metrics_payload(store, top_n=top_n, now=now).decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(family: Metric, name: str | None = None) -> dict[tuple[tuple[str, str], ...], float]:
    """A family's samples (of one sample name, default the family's own) by their labels."""
    wanted = name or family.name
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples if s.name == wanted}
