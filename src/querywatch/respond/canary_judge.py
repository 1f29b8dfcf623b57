"""A canary verdict on request, for the engines that drive their own rollouts (Flagger, Argo
Rollouts) and for ``querywatch canary status``: which releases, over which span, and the answer.

Which releases: the ones the caller names (``canary`` and ``stable``), else the environment's
stored rollout (``querywatch canary start``). Over which span: ``since`` as given, else the stored
rollout's start when it names these releases, else the start of the canary release's latest run
of windows (a gap of more than :data:`RUN_GAP_S` with none ends a run; looked for over the last
:data:`LOOKBACK_S`): a release named after the revision (an image tag, Argo's pod-template hash)
or after the cohort (Flagger's ``podinfo`` and ``podinfo-primary``) both start where its pods
first served.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from querywatch.errors import ConfigError, NotFound
from querywatch.records import window_start
from querywatch.respond.canary_settings import check_release
from querywatch.respond.canary_state import Rollout, load_rollout
from querywatch.store.base import Store

if TYPE_CHECKING:
    from querywatch.detect.canary import CanaryPolicy, CanaryVerdict

#: How far back the start of a canary release's windows is looked for.
LOOKBACK_S = 3600.0
#: A gap this long without windows of the canary release ends one run of it (Flagger scales the
#: canary to zero between rollouts; a cohort name comes back with the next one).
RUN_GAP_S = 300.0
CULPRITS_SHOWN = 10


@dataclass(frozen=True, slots=True)
class CanaryTarget:
    """What is judged: the two releases and the span, and where they came from."""

    environment: str
    canary_release: str
    stable_release: str
    since: float
    until: float
    source: str  # "parameters" | "rollout"
    rollout: Rollout | None = None


def run_start(store: Store, release: str, now: float) -> float | None:
    """When the release's latest run of windows began (within :data:`LOOKBACK_S`), or None."""
    starts: set[float] = set()
    since = window_start(now - LOOKBACK_S)
    starts.update(w.window_start for w in store.request_windows(since=since, release=release))
    starts.update(w.window_start for w in store.statement_windows(since=since, release=release))
    if not starts:
        return None
    ordered = sorted(starts, reverse=True)
    first = ordered[0]
    for start in ordered[1:]:
        if first - start > RUN_GAP_S:
            break
        first = start
    return float(first)


def resolve(
    store: Store,
    environment: str,
    *,
    canary: str | None,
    stable: str | None,
    since: float | None,
    until: float | None,
    now: float,
) -> CanaryTarget:
    """The releases and span to judge (see the module docstring); NotFound when nothing names a
    canary, ConfigError for half a pair or a bad name."""
    rollout = load_rollout(store, environment)
    if (canary is None) != (stable is None):
        raise ConfigError("name both releases (canary and stable), or neither to use the rollout")
    if canary is not None and stable is not None:
        check_release(canary, "canary")
        check_release(stable, "stable")
        same = rollout is not None and (rollout.canary_release, rollout.stable_release) == (
            canary,
            stable,
        )
        start = since
        if start is None and same and rollout is not None:
            start = rollout.started_at
        if start is None:
            start = run_start(store, canary, now)
        return CanaryTarget(
            environment,
            canary,
            stable,
            start if start is not None else now - LOOKBACK_S,
            now if until is None else until,
            "parameters",
            rollout if same else None,
        )
    if rollout is None:
        raise NotFound(
            f"no canary known in {environment}: name the releases (canary= and stable=) or "
            "start a rollout with querywatch canary start"
        )
    ended = rollout.aborted_at if rollout.status == "aborted" else rollout.promoted_at
    default_until = now if rollout.running or ended is None else ended
    return CanaryTarget(
        environment,
        rollout.canary_release,
        rollout.stable_release,
        rollout.started_at if since is None else since,
        default_until if until is None else until,
        "rollout",
        rollout,
    )


def judge(store: Store, target: CanaryTarget, policy: CanaryPolicy | None = None) -> CanaryVerdict:
    from querywatch.detect.canary import analyze_canary

    return analyze_canary(
        store,
        canary_release=target.canary_release,
        stable_release=target.stable_release,
        since=target.since,
        until=max(target.until, target.since),
        policy=policy,
    )


def verdict_json(target: CanaryTarget, verdict: CanaryVerdict) -> dict[str, Any]:
    """The verdict with its numbers, flat, for an AnalysisTemplate's ``successCondition``
    (``result.verdict == 'pass'``) and a Flagger log line."""
    rollout = target.rollout
    return {
        "verdict": verdict.status,
        "healthy": verdict.status != "fail",
        "reason": verdict.reason,
        "environment": target.environment,
        "canary_release": target.canary_release,
        "stable_release": target.stable_release,
        "since": target.since,
        "until": target.until,
        "span_s": round(max(target.until - target.since, 0.0), 3),
        "source": target.source,
        "canary_requests": verdict.canary_requests,
        "stable_requests": verdict.stable_requests,
        "canary_calls": verdict.canary_calls,
        "stable_calls": verdict.stable_calls,
        "findings": len(verdict.findings),
        "culprits": [
            {
                "kind": f.kind,
                "fingerprint": f.fingerprint,
                "route": f.route,
                "normalized": f.normalized,
                "p_value": f.p_value,
                "effect": None if f.effect is None else round(f.effect, 3),
                "added_ms_per_s": round(f.canary.get("added_ms_per_s", 0.0), 3),
                "message": f.message,
            }
            for f in verdict.findings[:CULPRITS_SHOWN]
        ],
        "pending": list(verdict.pending),
        "rollout": None
        if rollout is None
        else {
            "status": rollout.status,
            "weight": rollout.weight,
            "step": rollout.step,
            "steps": list(rollout.steps),
            "started_at": rollout.started_at,
        },
    }
