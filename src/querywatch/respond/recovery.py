"""Did the rollback help? The culprit queries and affected routes, before the deploy and after.

A rollback that "succeeded" (exit code 0) only says the old version is running. What users care
about is whether the slow query and the slow pages are back to what they were before the bad
deploy; when they are not, the cause is elsewhere (data growth, the host, a cache) and a second
rollback would not help either. This module only measures; the responder records and alerts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from querywatch.incidents.model import Incident
from querywatch.records import WINDOW_SECONDS, DeployMarker, RequestWindow, StatementWindow
from querywatch.store.base import Store

#: "Back near baseline": a culprit query's (or an affected route's) mean latency after the
#: rollback is at most this many times its mean in the baseline before the deploy. Means move
#: by ±30% between quiet windows; a regression worth rolling back is several times slower.
RECOVERY_TOLERANCE = 1.5


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
