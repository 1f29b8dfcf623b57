"""The judges of a canary analysis: latency and rows per fingerprint, new queries, and per route
calls per request (a new N+1) and errors. Each adds findings (a reason to fail) or pending notes
(something looks worse but there are too few canary calls to tell yet).

Cost is what fails a release, never novelty: every judge that can be about a harmless change (a
rewritten text, a new query, a slower rare query) also needs the database time the change would
add per second if the canary took all the traffic (``min_added_ms_per_s``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from querywatch.detect.canary_model import CanaryFinding, CanaryPolicy
from querywatch.detect.canary_sides import Query
from querywatch.detect.canary_stats import StratifiedU, poisson_sf, stratified_mann_whitney
from querywatch.detect.wording import ms, rate, short_sql, times

PRIOR_REQUESTS = 10.0
"""Weight of the stable release's overall error rate in each window's expected rate."""


@dataclass(frozen=True, slots=True)
class Scale:
    """How the two sides compare in size: units of traffic (requests, else calls) and seconds."""

    canary_units: int
    stable_units: int
    unit: str  # "request" or "call"
    span_s: float
    canary_release: str
    stable_release: str

    def at_full_traffic(self, added_ms_per_unit: float) -> float:
        """Database ms per second a per-unit change adds when the canary takes every unit."""
        if self.span_s <= 0:
            return 0.0
        return added_ms_per_unit * (self.canary_units + self.stable_units) / self.span_s

    def per_unit(self, calls: int, *, canary: bool) -> float:
        units = self.canary_units if canary else self.stable_units
        return calls / units if units else 0.0


@dataclass(slots=True)
class Outcome:
    findings: list[CanaryFinding] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    judged_queries: int = 0
    judged_routes: int = 0


@dataclass(frozen=True, slots=True)
class Matched:
    """A canary query against a stable one over the windows both ran in."""

    test: StratifiedU | None
    canary_calls: int
    stable_calls: int
    canary_ms: float
    expected_ms: float  # the canary calls at the stable mean of each one's window
    slow_windows: int  # canary windows at least min_effect_ratio above that window's stable mean

    @property
    def effect(self) -> float:
        if self.expected_ms > 0:
            return self.canary_ms / self.expected_ms
        return math.inf if self.canary_ms > 0 else 1.0

    @property
    def added_per_call(self) -> float:
        return (self.canary_ms - self.expected_ms) / self.canary_calls if self.canary_calls else 0.0


def match(c: Query, s: Query, policy: CanaryPolicy) -> Matched:
    strata = []
    c_calls = s_calls = slow = 0
    c_ms = expected = 0.0
    for ws, cc in sorted(c.cells.items()):
        sc = s.cells.get(ws)
        if sc is None or not sc.calls:
            continue
        per_call = cc.exact and sc.exact
        strata.append((sc.samples(per_call), cc.samples(per_call)))
        c_calls, s_calls = c_calls + cc.calls, s_calls + sc.calls
        c_ms += cc.total_ms
        expected += cc.calls * sc.mean_ms
        if cc.mean_ms >= policy.min_effect_ratio * sc.mean_ms:
            slow += 1
    return Matched(stratified_mann_whitney(strata), c_calls, s_calls, c_ms, expected, slow)


def side_figures(q: Query, scale: Scale, *, canary: bool) -> dict[str, float]:
    """One side's figures for a finding's evidence: calls, rates, latency, rows, errors."""
    out = {
        "calls": float(q.calls),
        "mean_ms": q.mean_ms,
        f"calls_per_{scale.unit}": scale.per_unit(q.calls, canary=canary),
        "rows_per_call": q.rows_per_call,
        "errors": float(q.errors),
    }
    p95 = q.p95_ms()
    if p95 is not None:
        out["p95_ms"] = p95
    return out


def _significant(m: Matched, policy: CanaryPolicy) -> bool:
    t = m.test
    return t is not None and t.p_value <= policy.alpha and t.superiority >= policy.min_superiority


def judge_latency(c: Query, s: Query, scale: Scale, policy: CanaryPolicy, out: Outcome) -> None:
    """A query both releases run: slower on canary than on stable in the same windows?"""
    m = match(c, s, policy)
    label = short_sql(c.normalized or c.fingerprint)
    if m.canary_calls < policy.min_calls or m.stable_calls < policy.min_stable_calls:
        if s.mean_ms > 0 and c.mean_ms >= policy.min_effect_ratio * s.mean_ms:
            added = scale.at_full_traffic(
                scale.per_unit(c.calls, canary=True) * (c.mean_ms - s.mean_ms)
            )
            if added >= policy.min_added_ms_per_s:
                out.pending.append(
                    f"{label} looks {times(c.mean_ms / s.mean_ms)} slower on canary over "
                    f"{c.calls} call(s); judged from {policy.min_calls} canary and "
                    f"{policy.min_stable_calls} stable calls in the same windows"
                )
        return
    out.judged_queries += 1
    per_unit = scale.per_unit(c.calls, canary=True)
    added = scale.at_full_traffic(per_unit * m.added_per_call)
    bad = (
        m.effect >= policy.min_effect_ratio
        and added >= policy.min_added_ms_per_s
        and m.slow_windows >= policy.min_windows
    )
    if bad and _significant(m, policy):
        assert m.test is not None
        expected_mean = m.expected_ms / m.canary_calls
        message = (
            f"{label} is {times(m.effect)} slower on canary {scale.canary_release} than on "
            f"{scale.stable_release} in the same windows ({ms(expected_mean)} → "
            f"{ms(m.canary_ms / m.canary_calls)} ms mean over {m.canary_calls} canary calls, "
            f"p={m.test.p_value:.1g}): about {ms(added)} ms of database time per second at full "
            "traffic"
        )
        out.findings.append(
            CanaryFinding(
                kind="latency",
                fingerprint=c.fingerprint,
                route=None,
                normalized=c.normalized,
                canary={
                    **side_figures(c, scale, canary=True),
                    "matched_mean_ms": m.canary_ms / m.canary_calls,
                    "superiority": m.test.superiority,
                    "windows": float(m.test.strata),
                    "added_ms_per_s": added,
                },
                stable={
                    **side_figures(s, scale, canary=False),
                    "matched_mean_ms": expected_mean,
                },
                p_value=m.test.p_value,
                effect=m.effect,
                call_sites=tuple(c.call_sites),
                message=message,
            )
        )
    elif bad and m.test is not None and m.test.superiority >= policy.min_superiority:
        # The ranks lean the same way as the means: worth waiting for. A mean pulled up by a
        # few slow calls the ranks do not confirm is noise, and passes.
        p = m.test.p_value
        out.pending.append(
            f"{label} looks {times(m.effect)} slower on canary over {m.canary_calls} calls, "
            f"not yet significant (p={p:.2g}, needs {policy.alpha:g})"
        )


def judge_rows(c: Query, s: Query, scale: Scale, policy: CanaryPolicy, out: Outcome) -> None:
    """Many more rows per call on canary: a lost filter or limit (a plan of its own to come)."""
    if c.calls < policy.min_calls or s.calls < policy.min_stable_calls:
        return
    c_rpc, s_rpc = c.rows_per_call, s.rows_per_call
    limit = policy.min_rows_ratio * max(s_rpc, 1.0)
    if c_rpc < limit or c_rpc - s_rpc < policy.min_added_rows_per_call:
        return
    windows = sum(1 for cell in c.cells.values() if cell.calls and cell.rows >= limit * cell.calls)
    if windows < policy.min_windows:
        return
    effect = c_rpc / max(s_rpc, 1.0)
    out.findings.append(
        CanaryFinding(
            kind="rows",
            fingerprint=c.fingerprint,
            route=None,
            normalized=c.normalized,
            canary={**side_figures(c, scale, canary=True), "windows": float(windows)},
            stable=side_figures(s, scale, canary=False),
            p_value=None,
            effect=effect,
            call_sites=tuple(c.call_sites),
            message=(
                f"{short_sql(c.normalized or c.fingerprint)} returns {rate(c_rpc)} rows per call "
                f"on canary {scale.canary_release} against {rate(s_rpc)} on "
                f"{scale.stable_release} ({times(effect)}, over {c.calls} canary calls)"
            ),
        )
    )


def error_test(
    canary: Mapping[int, tuple[int, int]], stable: Mapping[int, tuple[int, int]], pooled: float
) -> tuple[float, int, int, float]:
    """Expected canary errors from the stable rate of each window (shrunk to ``pooled``), the
    canary's errors and requests, and the Poisson p-value of that many or more."""
    mu, errors, n = 0.0, 0, 0
    for ws, (req, err) in canary.items():
        s_req, s_err = stable.get(ws, (0, 0))
        mu += req * (s_err + PRIOR_REQUESTS * pooled) / (s_req + PRIOR_REQUESTS)
        errors, n = errors + err, n + req
    return mu, errors, n, poisson_sf(errors, mu)


def judge_errors(
    canary: Mapping[int, tuple[int, int]],
    stable: Mapping[int, tuple[int, int]],
    pooled: float,
    policy: CanaryPolicy,
) -> tuple[float, float, float, float] | None:
    """(canary rate, stable rate, expected errors, p) when the canary errs significantly more."""
    mu, errors, n, p = error_test(canary, stable, pooled)
    s_req = sum(r for r, _ in stable.values())
    s_rate = sum(e for _, e in stable.values()) / s_req if s_req else pooled
    c_rate = errors / n if n else 0.0
    windows = sum(1 for _, e in canary.values() if e)
    if (
        errors < policy.min_errors
        or c_rate - s_rate < policy.min_error_rate_increase
        or p > policy.alpha
        or windows < policy.min_windows
    ):
        return None
    return c_rate, s_rate, mu, p


def judge_query_errors(
    c: Query, s: Query, scale: Scale, policy: CanaryPolicy, out: Outcome
) -> None:
    """A query both run that fails more often on canary (a missing column, a constraint)."""
    if c.calls < policy.min_calls:
        return
    cells_c = {ws: (cell.calls, cell.errors) for ws, cell in c.cells.items()}
    cells_s = {ws: (cell.calls, cell.errors) for ws, cell in s.cells.items()}
    pooled = (s.errors + 0.5) / (s.calls + 1)
    judged = judge_errors(cells_c, cells_s, pooled, policy)
    if judged is None:
        return
    c_rate, s_rate, mu, p = judged
    out.findings.append(
        CanaryFinding(
            kind="errors",
            fingerprint=c.fingerprint,
            route=None,
            normalized=c.normalized,
            canary={**side_figures(c, scale, canary=True), "error_rate": c_rate},
            stable={**side_figures(s, scale, canary=False), "error_rate": s_rate},
            p_value=p,
            effect=c_rate / s_rate if s_rate > 0 else None,
            call_sites=tuple(c.call_sites),
            message=(
                f"{short_sql(c.normalized or c.fingerprint)} fails in {c_rate:.0%} of its calls on "
                f"canary {scale.canary_release} against {s_rate:.1%} on {scale.stable_release} "
                f"({c.errors} errors where {mu:.1f} were expected, p={p:.1g})"
            ),
        )
    )
