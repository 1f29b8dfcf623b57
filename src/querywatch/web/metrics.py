"""`GET /metrics`: the store in the Prometheus text format, for Prometheus, Alertmanager, Grafana.

Each scrape builds a fresh registry whose collector reads the store once (:mod:`.metrics_reads`),
beside the serving process's own metrics (``process_*``, ``python_*``). The series and why they
are what they are, in short (docs/prometheus/README.md has the full list and the PromQL):

- **Per-fingerprint load is a gauge already rated, not a counter.** The store keeps windows, not
  counters: sums over them shrink when retention drops old rows, and a fingerprint that enters the
  top N leaves the ``other`` series, so a ``_total`` made from them would go down, which
  ``rate()`` reads as a counter reset and turns into a false spike. So the series say what they
  are: calls per second and database seconds per second over the last ``LOOKBACK_S`` (whole 10 s
  windows), mean and p95 latency over the same span. Use them as they are (``avg_over_time`` to
  smooth), not through ``rate()``.
- **Bounded cardinality**: the top ``metrics_top_n`` fingerprints by database time, and one
  ``fingerprint="other"`` series for the rest. Labels carry the fingerprint id only: its
  normalized SQL is on the dashboard page ``/fingerprints/<id>``, never in a label.
- **Counters where the store's count never goes down**: deploys and rollbacks (markers are never
  expired), incidents opened (never deleted), the agent's polls and CPU seconds (since the agent
  process started: a restart is a counter reset, as ``rate()`` expects).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from functools import cache
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from querywatch.errors import QuerywatchError
from querywatch.store.base import Store
from querywatch.web.metrics_reads import LOOKBACK_S, UNRESOLVED, Snapshot, read_snapshot

#: The text format ``generate_latest`` writes (0.0.4: what every Prometheus reads).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
CANARY_STATUSES = ("running", "promoted", "aborted")
VERDICTS = ("pass", "fail", "inconclusive")


def metrics_payload(store: Store, *, top_n: int, now: float) -> bytes:
    """One scrape: the store's series at ``now`` and this process's, in the text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store, top_n=top_n, now=now))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return generate_latest(registry)


class StoreCollector:
    """A prometheus-client collector that reads the store when collected."""

    def __init__(self, store: Store, *, top_n: int, now: float) -> None:
        self.store = store
        self.top_n = top_n
        self.now = now

    def collect(self) -> Iterator[Metric]:
        began = time.perf_counter()
        info = GaugeMetricFamily(
            "querywatch_build_info", "The querywatch version serving.", labels=["version"]
        )
        info.add_metric([_querywatch_version()], 1)
        yield info
        try:
            snapshot = read_snapshot(self.store, top_n=self.top_n, now=self.now)
        except QuerywatchError:
            snapshot = None
        yield GaugeMetricFamily(
            "querywatch_store_up",
            "1 if the store could be read for this scrape.",
            value=int(snapshot is not None),
        )
        if snapshot is not None:
            yield from _load(snapshot)
            yield from _incidents(snapshot)
            yield from _deploys(snapshot)
            yield from _canaries(snapshot)
            yield from _agents(snapshot)
        yield GaugeMetricFamily(
            "querywatch_scrape_duration_seconds",
            "Seconds this scrape spent reading the store.",
            value=time.perf_counter() - began,
        )


@cache
def _querywatch_version() -> str:
    try:
        return version("querywatch")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


class _Family:
    """A labelled gauge or counter family, filled one sample at a time."""

    def __init__(self, family: GaugeMetricFamily | CounterMetricFamily) -> None:
        self.family = family

    def add(self, value: float, *labels: str) -> None:
        self.family.add_metric(list(labels), value)


def _gauge(name: str, doc: str, labels: Iterable[str] = ()) -> _Family:
    return _Family(GaugeMetricFamily(name, doc, labels=list(labels)))


def _counter(name: str, doc: str, labels: Iterable[str] = ()) -> _Family:
    return _Family(CounterMetricFamily(name, doc, labels=list(labels)))


def _load(s: Snapshot) -> Iterator[Metric]:
    seconds = s.seconds
    yield GaugeMetricFamily(
        "querywatch_metrics_window_seconds",
        "The span the per-second and latency series cover (whole windows before the scrape).",
        value=LOOKBACK_S,
    )
    yield GaugeMetricFamily(
        "querywatch_calls_per_second",
        "Calls per second of every fingerprint.",
        value=s.calls / seconds,
    )
    yield GaugeMetricFamily(
        "querywatch_db_time_seconds_per_second",
        "Database seconds per second spent by every fingerprint (1 = one busy connection).",
        value=s.total_ms / 1000 / seconds,
    )
    yield GaugeMetricFamily(
        "querywatch_fingerprints_active", "Fingerprints called in the window.", value=s.active
    )
    label = ["fingerprint"]
    calls = _gauge(
        "querywatch_fingerprint_calls_per_second",
        "Calls per second of a top fingerprint by database time; fingerprint=other: the rest.",
        label,
    )
    db_time = _gauge(
        "querywatch_fingerprint_db_time_seconds_per_second",
        "Database seconds per second a top fingerprint spent; fingerprint=other: the rest.",
        label,
    )
    mean = _gauge(
        "querywatch_fingerprint_latency_mean_seconds",
        "Mean latency of a top fingerprint's calls; fingerprint=other: of the rest's.",
        label,
    )
    p95 = _gauge(
        "querywatch_fingerprint_latency_p95_seconds",
        "95th percentile latency of a top fingerprint's calls (1% relative error).",
        label,
    )
    loads = [*s.top, s.other] if s.other.calls else s.top
    for f in loads:
        calls.add(f.calls / seconds, f.fingerprint)
        db_time.add(f.total_ms / 1000 / seconds, f.fingerprint)
        mean.add(f.total_ms / 1000 / f.calls, f.fingerprint)
        if f.p95_ms is not None:
            p95.add(f.p95_ms / 1000, f.fingerprint)
    yield from (calls.family, db_time.family, mean.family, p95.family)


def _incidents(s: Snapshot) -> Iterator[Metric]:
    unresolved = _gauge(
        "querywatch_incidents_open", "Incidents not resolved yet, by status.", ["status"]
    )
    for status in UNRESOLVED:
        unresolved.add(s.incidents_by_status.get(status, 0), status)
    yield unresolved.family
    yield CounterMetricFamily(
        "querywatch_incidents_opened",
        "Incidents opened (resolved ones included).",
        value=sum(s.incidents_by_status.values()),
    )
    opened = _gauge(
        "querywatch_incident_opened_timestamp_seconds",
        "When each unresolved incident opened (its page: <base_url>/incidents/<incident>).",
        ["incident", "status"],
    )
    for incident_id, status, at in s.open_incidents:
        opened.add(at, incident_id, status)
    yield opened.family


def _deploys(s: Snapshot) -> Iterator[Metric]:
    deploys = _counter("querywatch_deploys", "Deploys recorded.", ["environment"])
    rollbacks = _counter("querywatch_rollbacks", "Deploys that were rollbacks.", ["environment"])
    for environment, (count, rolled_back) in sorted(s.deploy_counts.items()):
        deploys.add(count, environment)
        rollbacks.add(rolled_back, environment)
    yield from (deploys.family, rollbacks.family)
    started = _gauge(
        "querywatch_deploy_started_timestamp_seconds",
        "When each of the latest deploys of an environment started (Grafana annotations).",
        ["environment", "deploy_id", "version", "commit"],
    )
    for d in s.deploys:
        started.add(d.started_at, d.environment, d.id, d.version, d.commit)
    yield started.family


def _canaries(s: Snapshot) -> Iterator[Metric]:
    labels = ["environment", "canary_release", "stable_release"]
    status = _gauge(
        "querywatch_canary_status",
        "The latest canary rollout of each environment: 1 for its status.",
        [*labels, "status"],
    )
    verdict = _gauge(
        "querywatch_canary_verdict",
        "The latest verdict of each environment's latest rollout: 1 for its value.",
        [*labels, "verdict"],
    )
    weight = _gauge(
        "querywatch_canary_weight_percent", "The canary's share of traffic last set.", labels
    )
    fails = _gauge(
        "querywatch_canary_failing_verdicts_in_a_row",
        "Failing verdicts in a row (canary_fail_threshold of them abort the rollout).",
        labels,
    )
    judged = _gauge(
        "querywatch_canary_last_verdict_timestamp_seconds", "When it was last judged.", labels
    )
    for r in s.canaries:
        names = (r.environment, r.canary_release, r.stable_release)
        for value in CANARY_STATUSES:
            status.add(int(r.status == value), *names, value)
        weight.add(r.weight, *names)
        fails.add(r.fails_in_a_row, *names)
        last = r.last_verdict
        if last is not None:
            for value in VERDICTS:
                verdict.add(int(last.status == value), *names, value)
            judged.add(last.at, *names)
    yield from (status.family, verdict.family, weight.family, fails.family, judged.family)


def _agents(s: Snapshot) -> Iterator[Metric]:
    label = ["agent"]
    last_poll = _gauge(
        "querywatch_agent_last_poll_timestamp_seconds", "When the agent last polled.", label
    )
    last_success = _gauge(
        "querywatch_agent_last_success_timestamp_seconds",
        "When the agent last read its source.",
        label,
    )
    duration = _gauge(
        "querywatch_agent_poll_duration_seconds",
        "How long the last poll took, detection included.",
        label,
    )
    interval = _gauge(
        "querywatch_agent_poll_interval_seconds", "Seconds between the agent's polls.", label
    )
    blind = _gauge(
        "querywatch_agent_blind", "1 while the agent cannot read its source (blind).", label
    )
    polls = _counter("querywatch_agent_polls", "Polls since the agent started.", label)
    failed = _counter(
        "querywatch_agent_failed_polls", "Polls that could not read the source.", label
    )
    rss = _gauge("querywatch_agent_resident_memory_bytes", "The agent's resident memory.", label)
    cpu = _counter("querywatch_agent_cpu_seconds", "CPU seconds the agent used.", label)
    started = _gauge(
        "querywatch_agent_start_time_seconds", "When the agent process started.", label
    )
    for a in s.agents:
        last_poll.add(a.at, a.agent)
        if a.last_success_at is not None:
            last_success.add(a.last_success_at, a.agent)
        duration.add(a.duration_s, a.agent)
        interval.add(a.interval_s, a.agent)
        blind.add(int(a.blind), a.agent)
        polls.add(a.polls, a.agent)
        failed.add(a.failed_polls, a.agent)
        if a.rss_bytes is not None:
            rss.add(a.rss_bytes, a.agent)
        cpu.add(a.cpu_seconds, a.agent)
        started.add(a.started_at, a.agent)
    families = (last_poll, last_success, duration, interval, blind, polls, failed, rss, cpu)
    yield from (f.family for f in (*families, started))
