"""Did the rollback help? The culprit queries and affected routes, before the deploy and after.

A rollback that "succeeded" (exit code 0) only says the old version is running. What users care
about is whether the slow query and the slow pages are back to what they were before the bad
deploy; when they are not, the cause is elsewhere (data growth, the host, a cache) and a second
rollback would not help either. :func:`measure_recovery` compares; :class:`RecoveryCheck` runs it
``recovery_check_s`` after each rollback and acts on the verdict: recovered resolves the incident,
not recovered raises "rollback did not help". Each rollback is verified once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from querywatch.deploys import find_deploy
from querywatch.detect.policy import Policy
from querywatch.incidents import service
from querywatch.incidents.model import Incident, TimelineEvent
from querywatch.incidents.repository import load_incident
from querywatch.records import WINDOW_SECONDS, DeployMarker, RequestWindow, StatementWindow
from querywatch.respond.alerts import alert_for_incident
from querywatch.respond.guards import ResponseState, RollbackRecord, event_data
from querywatch.respond.settings import RECOVERY_TOLERANCE, RollbackSettings
from querywatch.respond.timeline import AGENT, ResponseTimeline
from querywatch.store.base import Store


@dataclass(frozen=True, slots=True)
class Figure:
    """One culprit query or affected route: mean latency before the deploy and after rollback."""

    before_ms: float | None  # None: no baseline (a query born with the bad deploy)
    after_ms: float | None  # None: no longer called
    calls_after: int
    recovered: bool

    @property
    def ratio(self) -> float | None:
        if self.before_ms is None or self.after_ms is None or self.before_ms <= 0:
            return None
        return self.after_ms / self.before_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "before_ms": _round(self.before_ms),
            "after_ms": _round(self.after_ms),
            "ratio": _round(self.ratio),
            "calls_after": self.calls_after,
            "recovered": self.recovered,
        }


@dataclass(frozen=True, slots=True)
class Measured:
    """The figures of one recovery check, keyed by fingerprint or route."""

    figures: dict[str, Figure]
    recovered: bool
    lines: dict[str, str]  # per figure: "<query or route>: 61.0 ms (baseline 2.0 ms, 30.5x)"
    tolerance: float
    since: int  # first window counted after the rollback
    baseline: tuple[int, int]  # [since, until) before the deploy

    @property
    def summary(self) -> str:
        return "; ".join(self.lines.values()) or "no culprit query or affected route to compare"

    @property
    def slow(self) -> str:
        """The figures that did not recover, as one line."""
        return "; ".join(line for k, line in self.lines.items() if not self.figures[k].recovered)


def measure_recovery(
    store: Store,
    incident: Incident,
    deploy: DeployMarker,
    rolled_back_at: float,
    now: float,
    *,
    baseline_s: float,
    tolerance: float = RECOVERY_TOLERANCE,
) -> Measured | None:
    """Compare the windows since ``rolled_back_at`` with the ``baseline_s`` before the deploy.

    ``None`` when nothing at all was measured since the rollback (no verdict without data). A
    query no longer called has recovered; one with no baseline that is still called has not; a
    route with no baseline is not judged.
    """
    since = _ceil_w(rolled_back_at)
    statements_after = store.statement_windows(since=since, until=now)
    requests_after = store.request_windows(since=since, until=now)
    if not statements_after and not requests_after:
        return None
    before_end = _floor_w(deploy.started_at)
    before_start = before_end - int(baseline_s)
    figures: dict[str, Figure] = {}
    fingerprints = [c.fingerprint for c in incident.culprits] or sorted(incident.fingerprints)
    for fp in fingerprints:
        before = _statement_mean(store.statement_windows(fp, since=before_start, until=before_end))
        after = _statement_mean([w for w in statements_after if w.fingerprint == fp])
        figures[fp] = _figure(before, after, tolerance, new_is_bad=True)
    for route in affected_routes(incident):
        before = _request_mean(store.request_windows(route, since=before_start, until=before_end))
        if before[0] is None:
            continue
        after = _request_mean([w for w in requests_after if w.route == route])
        figures[route] = _figure(before, after, tolerance, new_is_bad=False)
    return Measured(
        figures,
        all(f.recovered for f in figures.values()),
        {key: _describe(key, f, incident) for key, f in figures.items()},
        tolerance,
        since,
        (before_start, before_end),
    )


@dataclass(frozen=True, slots=True)
class RecoveryResult:
    """The verdict of one recovery check after a rollback."""

    incident: str
    deploy_id: str
    recovered: bool
    figures: dict[str, Figure]
    event: TimelineEvent


class RecoveryCheck:
    """Verifies the rollbacks of one environment once each, and records and acts on the verdict."""

    def __init__(
        self,
        store: Store,
        settings: RollbackSettings,
        policy: Policy,
        timeline: ResponseTimeline,
    ) -> None:
        self.store = store
        self.settings = settings
        self.policy = policy
        self.timeline = timeline

    def verify(self, now: float) -> list[RecoveryResult]:
        """Check recovery of every rollback that finished ``recovery_check_s`` ago or more.

        A rollback is verified once: recovered resolves its incident; not recovered alerts
        "rollback did not help" (and the deploy is never rolled back again). Until some
        statement or request windows exist after the rollback, the check waits.
        """
        due = [
            r
            for r in ResponseState.load(self.store).rollbacks.values()
            if r.outcome == "ok"
            and r.verified is None
            and r.completed_at is not None
            and r.completed_at + self.settings.recovery_check_s <= now
            and r.environment == self.settings.environment
        ]
        results = []
        for record in due:
            checked = self._check(record, now)
            if checked is None:
                continue

            verdict = "recovered" if checked.recovered else "not_recovered"

            def verified(
                state: ResponseState, deploy_id: str = record.deploy_id, verdict: str = verdict
            ) -> None:
                saved = state.rollbacks.get(deploy_id)
                if saved is not None:
                    saved.verified, saved.verified_at = verdict, now

            ResponseState.update(self.store, verified, now)
            results.append(checked)
        return results

    def _check(self, record: RollbackRecord, now: float) -> RecoveryResult | None:
        incident = load_incident(self.store, record.incident)
        deploy = find_deploy(self.store, record.deploy_id)
        if incident is None or deploy is None or record.completed_at is None:
            return None
        measured = measure_recovery(
            self.store,
            incident,
            deploy,
            record.completed_at,
            now,
            baseline_s=self.policy.baseline_seconds,
            tolerance=self.settings.recovery_tolerance,
        )
        if measured is None:
            return None  # nothing measured since the rollback yet
        figures, recovered = measured.figures, measured.recovered
        tolerance, summary = measured.tolerance, measured.summary
        slow = [k for k, f in figures.items() if not f.recovered]
        data = event_data(
            "recovery_check",
            "recovered" if recovered else "not_recovered",
            trigger="manual" if record.trigger == "manual" else "auto",
            deploy_id=deploy.id,
            version=deploy.version,
            target_version=record.target_version,
            reason=None if recovered else f"still slow: {', '.join(slow)}",
            figures={k: f.to_dict() for k, f in figures.items()},
            tolerance=tolerance,
            since=measured.since,
            baseline={"since": measured.baseline[0], "until": measured.baseline[1]},
        )
        verdict = "recovered" if recovered else "not recovered"
        message = (
            f"recovery check {now - record.completed_at:.0f} s after the rollback: {verdict} "
            f"(near baseline: within {tolerance:g}x of the mean before deploy {deploy.id}): "
            f"{summary}"
        )
        event = self.timeline.action(incident.id, message, AGENT, now, data)
        if recovered:
            if incident.status != "resolved":
                done = service.resolve(
                    self.store, incident.id, by=AGENT, note=f"recovered: {summary}", at=now
                )
                self.timeline.emit(done)
                self.timeline.send(incident.id, alert_for_incident(done), now)
        else:
            self.timeline.alert(
                incident.id,
                deploy,
                "RollbackDidNotHelp",
                "rollback did not help",
                f"Deploy {deploy.id} ({deploy.version}) was rolled back to "
                f"{record.target_version}, but {now - record.completed_at:.0f} s later these are "
                f"still slower than {tolerance:g}x their baseline: {measured.slow}. querywatch "
                "will not roll back again; look beyond the deploy (data growth, the database "
                "host, a cache).",
                now,
            )
        return RecoveryResult(incident.id, deploy.id, recovered, figures, event)


def affected_routes(incident: Incident) -> list[str]:
    """Routes the detections name: their own route, and the slowed routes in their evidence."""
    routes: dict[str, None] = {}
    for d in incident.detections:
        if d.route:
            routes[d.route] = None
        for row in d.evidence.get("routes", []) or []:
            if isinstance(row, Mapping) and isinstance(row.get("route"), str):
                routes[row["route"]] = None
    return list(routes)


def _statement_mean(windows: Sequence[StatementWindow]) -> tuple[float | None, int]:
    calls = sum(w.calls for w in windows)
    return (sum(w.total_ms for w in windows) / calls if calls else None), calls


def _request_mean(windows: Sequence[RequestWindow]) -> tuple[float | None, int]:
    requests = sum(w.requests for w in windows)
    return (sum(w.total_ms for w in windows) / requests if requests else None), requests


def _figure(
    before: tuple[float | None, int],
    after: tuple[float | None, int],
    tolerance: float,
    *,
    new_is_bad: bool,
) -> Figure:
    before_ms, after_ms = before[0], after[0]
    calls_after = after[1]
    if after_ms is None:
        return Figure(before_ms, None, 0, True)
    if before_ms is None:
        return Figure(None, after_ms, calls_after, not new_is_bad)
    return Figure(before_ms, after_ms, calls_after, after_ms <= tolerance * before_ms)


def _describe(key: str, figure: Figure, incident: Incident) -> str:
    label = key
    for c in incident.culprits:
        if c.fingerprint == key:
            sql = " ".join(c.normalized.split())
            label = sql if len(sql) <= 60 else sql[:59] + "…"
    if figure.after_ms is None:
        return f"{label}: no longer called"
    before = "none" if figure.before_ms is None else f"{figure.before_ms:.1f} ms"
    ratio = f", {figure.ratio:.1f}x" if figure.ratio is not None else ""
    return f"{label}: {figure.after_ms:.1f} ms (baseline {before}{ratio})"


def _round(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 3)


def _ceil_w(t: float) -> int:
    return math.ceil(t / WINDOW_SECONDS) * WINDOW_SECONDS


def _floor_w(t: float) -> int:
    return math.floor(t / WINDOW_SECONDS) * WINDOW_SECONDS
