"""The demo's canary: the new release takes a share of users, is judged against the stable one at
every monitor pass, and is aborted or promoted.

At each pass :meth:`CanaryRun.judge` runs the canary analysis (:mod:`querywatch.detect.canary`) over
the windows since the canary took traffic. ``canary_fail_threshold`` failing verdicts in a row
(:attr:`CanaryRun.abort_due`, the rollout driver's rule; 2 by default): the canary's weight goes to
0 at once (no user meets it any more), an incident is opened from the verdict's findings (alerted
like any other), the verdict is written on its timeline, and the configured rollback path runs as it
does for any incident (the guarded rollback, here the demo's deployer stopping the canary, then the
runbook and the recovery check). "pass", held for a step: the next weight, or promotion after the
last. "inconclusive", or a fail short of the threshold: hold.

The rollout driver of a real deployment (:mod:`querywatch.respond.canary`, with its state in the
store) is not used here: the demo drives its own deployer from the verdicts directly, with the
driver's abort rule (:func:`querywatch.respond.canary_state.abort_due`) and its detections
(:func:`querywatch.respond.canary_abort.detections_of`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from querywatch.config import DEFAULT_CANARY_FAIL_THRESHOLD
from querywatch.demo.deployer import Deploy, Deployer
from querywatch.demo.load import RequestRecord
from querywatch.respond.canary_state import abort_due
from querywatch.store.base import Store
from querywatch.timefmt import clock

if TYPE_CHECKING:
    from querywatch.detect.canary import CanaryFinding, CanaryVerdict

#: Who acts on a failing verdict, on the incident's timeline.
CANARY_AGENT = "querywatch canary analysis"

#: The canary's first share of users, and how long a step is held before it may move on (the
#: analysis must pass at its end). A shorter bad phase shortens the steps to fit.
DEFAULT_WEIGHT = 10.0
STEP_S = 20.0


@dataclass(frozen=True)
class CanaryPlan:
    """``weight`` percent of users first, then each of ``steps``, then everyone."""

    weight: float = DEFAULT_WEIGHT
    steps: tuple[float, ...] = ()

    @property
    def weights(self) -> tuple[float, ...]:
        return (self.weight, *self.steps)

    def __post_init__(self) -> None:
        if not all(0 < w < 100 for w in self.weights):
            raise ValueError("canary weights are percentages above 0 and below 100")
        if list(self.weights) != sorted(set(self.weights)):
            raise ValueError("canary steps must rise, each above --canary-weight")


@dataclass
class CanaryRun:
    """One canary of the demo, as it goes: what the view, the summary and ``--json`` show."""

    deploy: Deploy  # the canary's start: release, commit, when it took traffic
    plan: CanaryPlan
    step_s: float
    fail_threshold: int = DEFAULT_CANARY_FAIL_THRESHOLD  # failing verdicts in a row that abort
    step: int = 0
    step_started_at: float = 0.0
    verdict: CanaryVerdict | None = None  # the latest
    failed: CanaryVerdict | None = None  # the one that aborted it
    statuses: list[str] = field(default_factory=list)  # every verdict's, in order
    aborted_at: float | None = None  # when the canary's weight went to 0
    aborted_by: str | None = None  # the canary analysis, the regression detector or the demo
    promoted_at: float | None = None
    incident: str | None = None
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.step_started_at = self.step_started_at or self.deploy.switched_at

    @property
    def release(self) -> str:
        return self.deploy.version

    @property
    def stable(self) -> str:
        assert self.deploy.previous_version is not None
        return self.deploy.previous_version

    @property
    def weight(self) -> float:
        return self.plan.weights[self.step]

    @property
    def running(self) -> bool:
        return self.aborted_at is None and self.promoted_at is None

    @property
    def status(self) -> str:
        if self.aborted_at is not None:
            return "aborted"
        return "promoted" if self.promoted_at is not None else "running"

    @property
    def verdicts(self) -> int:
        return len(self.statuses)

    @property
    def abort_due(self) -> bool:
        """Enough failing verdicts in a row to abort (the rollout driver's rule)."""
        return abort_due(self.statuses, self.fail_threshold)

    @property
    def abort_after_s(self) -> float | None:
        """From the canary taking traffic to the bad release taking none."""
        return None if self.aborted_at is None else self.aborted_at - self.deploy.switched_at

    def describe(self) -> str:
        """One line for the live view."""
        verdict = self.verdict.status if self.verdict else "no verdict yet"
        reason = f": {self.verdict.reason}" if self.verdict and self.verdict.reason else ""
        return f"{self.release} at {self.weight:g}% ({self.status}), {verdict}{reason}"

    def judge(self, store: Store, now: float) -> CanaryVerdict:
        from querywatch.detect.canary import analyze_canary

        verdict = analyze_canary(
            store,
            canary_release=self.release,
            stable_release=self.stable,
            since=self.deploy.switched_at,
            until=now,
        )
        self.verdict = verdict
        self.statuses.append(verdict.status)
        return verdict

    def advance(self, deployer: Deployer, now: float) -> Deploy | None:
        """After a pass held for a step: the next weight, or promotion (returned) after the last."""
        if now - self.step_started_at < self.step_s:
            return None
        if self.step + 1 < len(self.plan.weights):
            self.step += 1
            self.step_started_at = deployer.set_weight(self.weight)
            return None
        promoted = deployer.promote()
        self.promoted_at = promoted.switched_at
        return promoted

    def users(self, records: Iterable[RequestRecord], slo_ms: float) -> tuple[int, int, int]:
        """(users the router sent to the canary, those it hurt, every user seen) so far."""
        until = self.aborted_at if self.aborted_at is not None else float("inf")
        met: set[int] = set()
        hurt: set[int] = set()
        seen: set[int] = set()
        for r in records:
            seen.add(r.user_id)
            if r.routed_to == self.release and self.deploy.switched_at <= r.scheduled_at < until:
                met.add(r.user_id)
                if r.failed or r.latency_ms > slo_ms:
                    hurt.add(r.user_id)
        return len(met), len(hurt), len(seen)

    def culprits(self) -> list[dict[str, Any]]:
        """The failing verdict's findings, as ``--json`` shows them."""
        if self.failed is None:
            return []
        return [_finding_json(f) for f in self.failed.findings]

    def as_json(
        self, records: Iterable[RequestRecord], iso: Callable[[float], str]
    ) -> dict[str, Any]:
        in_canary, _hurt, _seen = self.users(records, 0.0)
        verdict = self.failed or self.verdict
        return {
            "release": self.release,
            "stable_release": self.stable,
            "weight_pct": self.plan.weight,
            "steps_pct": list(self.plan.weights),
            "started_at": iso(self.deploy.switched_at),
            "status": self.status,
            "verdict": verdict.status if verdict else None,
            "reason": verdict.reason if verdict else None,
            "verdicts": self.verdicts,
            "aborted_at": iso(self.aborted_at) if self.aborted_at is not None else None,
            "aborted_by": self.aborted_by,
            "promoted_at": iso(self.promoted_at) if self.promoted_at is not None else None,
            "abort_after_s": None if self.abort_after_s is None else round(self.abort_after_s, 2),
            "users_in_canary": in_canary,
            "incident": self.incident,
            "culprits": self.culprits(),
        }


def _finding_json(f: CanaryFinding) -> dict[str, Any]:
    site = f.call_sites[0] if f.call_sites else None
    return {
        "kind": f.kind,
        "fingerprint": f.fingerprint,
        "route": f.route,
        "normalized": f.normalized,
        "call_site": f"{site.path}:{site.line}" if site else None,
        "function": site.function if site else None,
        "p_value": f.p_value,
        "effect": None if f.effect is None else round(f.effect, 2),
        "added_ms_per_s": round(f.canary.get("added_ms_per_s", 0.0), 1),
        "message": f.message,
    }


def abort_message(run: CanaryRun, users: tuple[int, int, int]) -> str:
    """The timeline's sentence: caught in canary, by whom, how many users, when."""
    in_canary, hurt, total = users
    verdict = run.failed
    evidence = "; ".join(f.message for f in verdict.findings[:3]) if verdict else ""
    after = run.abort_after_s or 0.0
    return (
        f"caught in canary: {run.release} took {run.plan.weight:g}% of users ({in_canary} of "
        f"{total} met it) from {clock(run.deploy.switched_at)}; the canary analysis failed it "
        f"and its weight went to 0 at {clock(run.aborted_at or time.time())}, {after:.0f} s "
        f"after it took traffic; {hurt} users saw an error or a slow page on it"
        + (f". Evidence: {evidence}" if evidence else "")
    )


def abort_data(run: CanaryRun, users: tuple[int, int, int], slo_ms: float) -> dict[str, Any]:
    """What the timeline event keeps, for the postmortem."""
    in_canary, hurt, total = users
    return {
        "action": "canary_abort",
        "outcome": "ok",
        "canary_release": run.release,
        "stable_release": run.stable,
        "weight_pct": run.plan.weight,
        "started_at": run.deploy.switched_at,
        "aborted_at": run.aborted_at,
        "abort_after_s": run.abort_after_s,
        "users_in_canary": in_canary,
        "users_affected": hurt,
        "users_total": total,
        "slo_ms": slo_ms,
        "verdict": run.failed.as_dict() if run.failed else None,
    }
