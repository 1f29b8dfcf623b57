"""What one /metrics scrape reads from the store: a few grouped reads in one read transaction.

A scrape must stay cheap at 10,000 fingerprints (bench/metrics.py), so nothing here decodes a
window row by row: the look-back is summed per fingerprint by SQL, and latency sketches are read
for the top fingerprints only. Incidents, deploys and the agents' and canaries' state rows are
counted or listed by SQL too; the tables are the store's (deploys, state) and the incidents
layer's, read here without going through their row decoding, which a scrape does not need.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from querywatch.errors import QuerywatchError
from querywatch.records import WINDOW_SECONDS, window_start
from querywatch.respond.canary_state import STATE_PREFIX as CANARY_PREFIX
from querywatch.respond.canary_state import Rollout, load_rollout
from querywatch.sketch import LatencySketch
from querywatch.store.base import Store, Tx
from querywatch.watch import HEALTH_PREFIX, AgentHealth

#: The span the per-fingerprint rates and latencies cover: the last six whole 10 s windows
#: (the window still filling is left out, so a rate does not dip between two polls).
LOOKBACK_S = 6 * WINDOW_SECONDS
#: Deploys shown per environment (``querywatch_deploy_started_timestamp_seconds``): enough that
#: two deploys between scrapes both reach Prometheus, few enough to stay a handful of series.
DEPLOYS_PER_ENVIRONMENT = 10
#: Unresolved incidents listed one by one (a count by status covers every one of them).
OPEN_INCIDENTS_LISTED = 50
UNRESOLVED = ("open", "acknowledged", "mitigated")
_IN_CHUNK = 500


@dataclass(slots=True)
class FingerprintLoad:
    """One fingerprint's (or the rest's) calls and database time over the look-back."""

    fingerprint: str
    calls: int = 0
    total_ms: float = 0.0
    p95_ms: float | None = None


@dataclass(slots=True)
class Deploy:
    id: str
    version: str
    commit: str
    environment: str
    started_at: float


@dataclass(slots=True)
class Snapshot:
    """Everything one scrape exposes from the store, read at ``until``."""

    since: float
    until: float
    top: list[FingerprintLoad] = field(default_factory=list)
    other: FingerprintLoad = field(default_factory=lambda: FingerprintLoad("other"))
    active: int = 0  # fingerprints with calls in the look-back
    incidents_by_status: dict[str, int] = field(default_factory=dict)
    open_incidents: list[tuple[str, str, float]] = field(default_factory=list)
    deploy_counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # deploys, rollbacks
    deploys: list[Deploy] = field(default_factory=list)
    agents: list[AgentHealth] = field(default_factory=list)
    canaries: list[Rollout] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.until - self.since

    @property
    def calls(self) -> int:
        return sum(f.calls for f in self.top) + self.other.calls

    @property
    def total_ms(self) -> float:
        return sum(f.total_ms for f in self.top) + self.other.total_ms


def read_snapshot(store: Store, *, top_n: int, now: float) -> Snapshot:
    """The store as /metrics shows it at ``now``: one read transaction, then one per canary."""
    until = float(window_start(now))
    snapshot = Snapshot(since=until - LOOKBACK_S, until=until)
    canary_environments = store.transaction(lambda tx: _read(tx, snapshot, top_n), write=False)
    for environment in canary_environments:
        try:
            rollout = load_rollout(store, environment)
        except QuerywatchError:  # one unreadable rollout must not cost the whole scrape
            continue
        if rollout is not None:
            snapshot.canaries.append(rollout)
    return snapshot


def _read(tx: Tx, snapshot: Snapshot, top_n: int) -> list[str]:
    _read_fingerprints(tx, snapshot, top_n)
    _read_incidents(tx, snapshot)
    _read_deploys(tx, snapshot)
    return _read_state(tx, snapshot)


def _read_fingerprints(tx: Tx, snapshot: Snapshot, top_n: int) -> None:
    """Sums per fingerprint over the look-back; the top ``top_n`` by database time get their
    p95 from the merged sketches, the rest are summed into ``other``.

    Like every reader of windows, each fingerprint is read from one source (the one that saw
    most of its calls), so pg_stat_statements and in-app capture of one database never add up.
    """
    rows = tx.rows(
        "SELECT fingerprint, source, SUM(calls), SUM(total_ms) FROM windows "
        "WHERE window_start >= ? AND window_start < ? GROUP BY fingerprint, source",
        (snapshot.since, snapshot.until),
    )
    best: dict[str, tuple[int, str, float]] = {}
    for fp, source, calls, total in rows:
        seen = (int(calls), str(source), float(total))
        if seen[:2] > best.get(fp, (-1, "", 0.0))[:2]:
            best[fp] = seen
    loads = [FingerprintLoad(fp, calls, total) for fp, (calls, _, total) in best.items() if calls]
    loads.sort(key=lambda f: f.fingerprint)
    loads.sort(key=lambda f: f.total_ms, reverse=True)
    snapshot.top, rest = loads[:top_n], loads[top_n:]
    snapshot.active = len(loads)
    snapshot.other.calls = sum(f.calls for f in rest)
    snapshot.other.total_ms = sum(f.total_ms for f in rest)
    sources = {f.fingerprint: best[f.fingerprint][1] for f in snapshot.top}
    sketches = _sketches(tx, snapshot, sources)
    for f in snapshot.top:
        sketch = sketches.get(f.fingerprint)
        f.p95_ms = sketch.quantile(0.95) if sketch is not None else None


def _sketches(tx: Tx, snapshot: Snapshot, sources: dict[str, str]) -> dict[str, LatencySketch]:
    """The look-back's sketches of these fingerprints (their chosen source), merged."""
    merged: dict[str, LatencySketch] = {}
    fingerprints = sorted(sources)
    for start in range(0, len(fingerprints), _IN_CHUNK):
        chunk: Sequence[str] = fingerprints[start : start + _IN_CHUNK]
        marks = ", ".join("?" * len(chunk))
        for fp, source, text in tx.rows(
            "SELECT fingerprint, source, sketch FROM windows WHERE window_start >= ? "
            f"AND window_start < ? AND sketch IS NOT NULL AND fingerprint IN ({marks})",
            (snapshot.since, snapshot.until, *chunk),
        ):
            if sources[fp] != source:
                continue
            sketch = LatencySketch.from_json(text)
            if fp in merged:
                merged[fp].merge(sketch)
            else:
                merged[fp] = sketch
    return merged


def _read_incidents(tx: Tx, snapshot: Snapshot) -> None:
    for status, count in tx.rows("SELECT status, COUNT(*) FROM incidents GROUP BY status"):
        snapshot.incidents_by_status[str(status)] = int(count)
    marks = ", ".join("?" * len(UNRESOLVED))
    snapshot.open_incidents = [
        (str(id_), str(status), float(opened))
        for id_, status, opened in tx.rows(
            f"SELECT id, status, opened_at FROM incidents WHERE status IN ({marks}) "
            "ORDER BY opened_at DESC, id DESC LIMIT ?",
            (*UNRESOLVED, OPEN_INCIDENTS_LISTED),
        )
    ]


def _read_deploys(tx: Tx, snapshot: Snapshot) -> None:
    for environment, count, rollbacks in tx.rows(
        'SELECT environment, COUNT(*), SUM(CASE WHEN "rollback" THEN 1 ELSE 0 END) '
        "FROM deploys GROUP BY environment"
    ):
        snapshot.deploy_counts[str(environment)] = (int(count), int(rollbacks or 0))
    snapshot.deploys = [
        Deploy(str(id_), str(version), str(commit or ""), str(environment), float(started))
        for id_, version, commit, environment, started in tx.rows(
            'SELECT id, version, "commit", environment, started_at FROM ('
            'SELECT id, version, "commit", environment, started_at, ROW_NUMBER() OVER '
            "(PARTITION BY environment ORDER BY started_at DESC, id DESC) AS n FROM deploys"
            ") latest WHERE n <= ? ORDER BY environment, started_at, id",
            (DEPLOYS_PER_ENVIRONMENT,),
        )
    ]


def _read_state(tx: Tx, snapshot: Snapshot) -> list[str]:
    """Agents' health rows (decoded here) and the environments that have a canary rollout."""
    environments: list[str] = []
    for key, value in tx.rows(
        "SELECT key, value FROM state WHERE key LIKE ? OR key LIKE ? ORDER BY key",
        (HEALTH_PREFIX + "%", CANARY_PREFIX + "%"),
    ):
        if key.startswith(CANARY_PREFIX):
            environments.append(key[len(CANARY_PREFIX) :])
        elif key.startswith(HEALTH_PREFIX) and (health := AgentHealth.from_json(value)):
            snapshot.agents.append(health)
    return environments
