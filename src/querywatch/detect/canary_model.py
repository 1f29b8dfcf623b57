"""What a canary analysis judges by and what it says: the policy, the findings and the verdict.

Re-exported by ``querywatch.detect.canary``, where they are documented for callers.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

from querywatch.records import CallSite

FindingKind = Literal["latency", "rows", "n_plus_one", "new_query", "errors"]
Status = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True, slots=True)
class CanaryPolicy:
    """Thresholds of the canary analysis (latencies in ms, rates per second). Never names."""

    min_requests: int = 20
    """Requests the canary must have served (statement calls, without the middleware) before it
    can pass: fewer is "inconclusive". At 5% of 30 req/s that is about 13 s."""

    min_calls: int = 4
    """Canary calls of a fingerprint, in windows where stable ran it too, before it is judged.
    Ranked against stable calls of their windows, 4 calls all slower reach p ≈ 3e-4 and 5 calls
    p ≈ 5e-5 (what ``alpha`` shared among ~8 queries needs); at 5% of 30 req/s a page with 20%
    of the traffic gives 4 calls in ~13 s, 5 in ~17 s."""

    min_stable_calls: int = 20
    """Stable calls of a fingerprint, in the same windows, before it is a baseline."""

    coverage_share: float = 0.05
    """A query taking this share of the stable release's database time must have run
    ``min_calls`` times on canary (or clearly stopped: none where 3 × ``min_calls`` were due)
    before the canary can pass: a page the canary has not served yet is not judged good."""

    min_route_requests: int = 5
    """Canary requests of a route before its errors or calls per request are judged."""

    alpha: float = 0.001
    """One-sided p-value a verdict's findings must reach together (stratified Mann–Whitney for
    latency, Poisson for errors), divided among the queries tested (Bonferroni; the routes
    likewise). Small, because the analysis is rerun every poll over a growing span."""

    min_effect_ratio: float = 1.5
    """Canary mean latency over the stable mean of the same windows, to call a query slower."""

    min_superiority: float = 0.7
    """Probability that a canary call is slower than a stable call of the same window."""

    min_added_ms_per_s: float = 10.0
    """Database time a change would add per second if the canary took all the traffic: the cost
    that makes it worth failing a release for (a new text or a new cheap query adds little)."""

    new_query_share: float = 0.2
    """A canary-only query with no stable counterpart fails only when it takes this share of the
    canary's database time…"""

    new_query_ms_per_s: float = 500.0
    """…or would take this much database time per second at full traffic, whatever its share."""

    min_rows_ratio: float = 10.0
    """Rows per call on canary over stable (at least 1 row) to call it a change of rows."""

    min_added_rows_per_call: float = 100.0
    """…and at least this many more rows per call."""

    min_calls_per_request_ratio: float = 2.0
    """Database calls per request of a route, canary over stable (at least 1), for an N+1."""

    min_added_calls_per_request: float = 10.0
    """…and at least this many more calls per request (the N+1 detector's threshold)."""

    min_error_rate_increase: float = 0.05
    """Error rate of a route (or fingerprint), canary minus stable, to call it more errors."""

    min_errors: int = 3
    """Canary errors a route (or fingerprint) needs before its error rate is judged."""

    min_windows: int = 2
    """Canary windows a change must show in: one bad window is not a pattern."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not value >= 0:  # also refuses NaN
                raise ValueError(f"canary policy: {f.name} must not be negative, got {value}")
        for name in (
            "alpha",
            "min_superiority",
            "new_query_share",
            "min_error_rate_increase",
            "coverage_share",
        ):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"canary policy: {name} must be within (0, 1)")
        for name in ("min_effect_ratio", "min_rows_ratio", "min_calls_per_request_ratio"):
            if getattr(self, name) <= 1.0:
                raise ValueError(f"canary policy: {name} must be above 1")
        for name in ("min_requests", "min_calls", "min_stable_calls", "min_windows"):
            if getattr(self, name) < 1:
                raise ValueError(f"canary policy: {name} must be at least 1")


@dataclass(frozen=True, slots=True)
class CanaryFinding:
    """One reason a canary fails, with the evidence an incident carries.

    ``canary`` and ``stable`` hold each side's figures over the same windows (calls, mean and
    p95 latency, rows per call, calls or errors per request…); ``effect`` is the canary's figure
    over the stable one; ``added_ms_per_s`` in ``canary`` is the database time the change would
    add per second at full traffic.
    """

    kind: FindingKind
    fingerprint: str | None
    route: str | None
    normalized: str
    canary: dict[str, float]
    stable: dict[str, float]
    p_value: float | None
    effect: float | None
    call_sites: tuple[CallSite, ...]
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "fingerprint": self.fingerprint,
            "route": self.route,
            "normalized": self.normalized,
            "canary": dict(self.canary),
            "stable": dict(self.stable),
            "p_value": self.p_value,
            "effect": self.effect,
            "call_sites": [
                {"path": s.path, "line": s.line, "function": s.function} for s in self.call_sites
            ],
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class CanaryVerdict:
    """The canary against the stable release over ``[since, until)``.

    ``fail`` carries one finding per reason; ``inconclusive`` says in ``reason`` what is missing
    (too few requests yet, or a query that looks worse with too few calls to tell); ``pass``
    means every judged query and route is within the policy.
    """

    status: Status
    canary_release: str
    stable_release: str
    since: float
    until: float
    findings: tuple[CanaryFinding, ...]
    reason: str
    canary_requests: int
    stable_requests: int
    canary_calls: int
    stable_calls: int
    pending: tuple[str, ...] = ()  # what an inconclusive verdict waits for, one line each

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "canary_release": self.canary_release,
            "stable_release": self.stable_release,
            "since": self.since,
            "until": self.until,
            "reason": self.reason,
            "canary_requests": self.canary_requests,
            "stable_requests": self.stable_requests,
            "canary_calls": self.canary_calls,
            "stable_calls": self.stable_calls,
            "findings": [f.as_dict() for f in self.findings],
            "pending": list(self.pending),
        }
