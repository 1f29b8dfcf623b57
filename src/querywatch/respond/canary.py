"""The progressive rollout: a canary release takes rising shares of traffic while its analysis
passes, and is promoted after the last step or aborted on a failing verdict.

    rollout = canary_rollout_from_config(cfg, store, responder)
    rollout.start("v2", "v1", by="ci")   # weight 5% (canary_steps), through canary_weight_command
    rollout.step()                        # judge, then hold, advance, promote or abort
    rollout.promote(by="alice") / rollout.abort(by="alice", reason="…")

Each :meth:`CanaryRollout.step` runs :func:`querywatch.detect.canary.analyze_canary` over the
windows since the canary took traffic: ``canary_fail_threshold`` failing verdicts in a row (2 by
default; an inconclusive or a pass in between starts the count again) abort it, a fail short of that
holds; "inconclusive" holds; "pass" holds until the step has lasted ``canary_interval_s``, then sets
the next weight, or promotes after the last. Abort is weight 0 through the weight action first (no
user meets the canary from then on), then the incident and the configured rollback
(:mod:`querywatch.respond.canary_abort`). Weights and promotion run through
:mod:`querywatch.respond.actions` like the rollback: no shell, values starting with ``-`` refused, a
timeout, the webhook egress rules. State and every action are kept in the store
(:mod:`querywatch.respond.canary_state`). See docs/canary.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from querywatch.deploys import find_deploy
from querywatch.errors import ConfigError, InvalidTransition, NotFound, QuerywatchError
from querywatch.incidents import service
from querywatch.respond.actions import Action, ActionContext, MissingValue
from querywatch.respond.canary_abort import (
    abort_data,
    abort_message,
    alert,
    open_for_abort,
    roll_back,
)
from querywatch.respond.canary_settings import (
    CanarySettings,
    canary_action_from_config,
    check_release,
)
from querywatch.respond.canary_state import (
    Rollout,
    RolloutEvent,
    VerdictRecord,
    abort_due,
    load_rollout,
    require_running,
    update_rollout,
)
from querywatch.store.base import Store
from querywatch.timefmt import utc_stamp

if TYPE_CHECKING:
    from querywatch.detect.canary import CanaryPolicy, CanaryVerdict
    from querywatch.respond.responder import Responder

#: Who acts when the analysis decides (on the rollout's events and the incident's timeline).
CANARY_AGENT = "querywatch canary"

StepDid = Literal["held", "advanced", "promoted", "aborted"]
_DONE = ("ok", "dry_run", "not_configured")  # outcomes after which the weight counts as set


class CanaryActionFailed(QuerywatchError):
    """A weight or promote action ran and failed (or timed out); it is on the rollout's events."""

    error_code = "action_failed"


@dataclass(slots=True)
class StepOutcome:
    """What one :meth:`CanaryRollout.step` judged and did."""

    rollout: Rollout
    verdict: CanaryVerdict
    did: StepDid

    def to_dict(self) -> dict[str, Any]:
        return {
            "did": self.did,
            "verdict": self.verdict.as_dict(),
            "rollout": self.rollout.to_json(),
        }


class CanaryRollout:
    """The canary rollout of one environment, over one store.

    ``weight``/``promote`` are the configured actions (``None``: the weight is only recorded,
    for a controller or a person to set). ``responder`` runs the rollback after an abort.
    """

    def __init__(
        self,
        store: Store,
        settings: CanarySettings | None = None,
        *,
        weight: Action | None = None,
        promote: Action | None = None,
        responder: Responder | None = None,
        policy: CanaryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        repo_root: Path | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or CanarySettings()
        self.weight_action = weight
        self.promote_action = promote
        self.responder = responder
        self.policy = policy
        self.clock = clock
        self.repo_root = repo_root

    @property
    def environment(self) -> str:
        return self.settings.environment

    def status(self) -> Rollout | None:
        """The environment's latest rollout (running or ended), or ``None``."""
        return load_rollout(self.store, self.environment)

    # -- start ----------------------------------------------------------------------------------

    def start(
        self,
        canary: str,
        stable: str,
        *,
        by: str | None,
        deploy_id: str | None = None,
        steps: tuple[float, ...] | None = None,
        now: float | None = None,
    ) -> Rollout:
        """Start a rollout at the first step's weight; a running one in the environment is a
        conflict (promote or abort it first). A failing weight action ends it as aborted."""
        check_release(canary, "--release")
        check_release(stable, "--stable")
        if canary == stable:
            raise ConfigError(f"the canary and the stable release are both {canary!r}")
        now = self.clock() if now is None else now
        plan = steps or self.settings.steps
        deploy = self._deploy(canary, deploy_id)

        def claim(current: Rollout | None) -> Rollout:
            if current is not None and current.running:
                raise InvalidTransition(
                    f"canary {current.canary_release} is already running in {self.environment} "
                    f"since {utc_stamp(current.started_at)} at {current.weight:g}%: promote or "
                    "abort it first"
                )
            new = Rollout(
                self.environment, canary, stable, list(plan), now, by, deploy, 0, 0.0, now
            )
            what = f"canary {canary} next to {stable}, steps {', '.join(f'{s:g}%' for s in plan)}"
            new.record(RolloutEvent(now, "start", "recorded", f"started {what}", by))
            return new

        rollout = update_rollout(self.store, self.environment, claim)
        assert rollout is not None
        event = self._run("weight", rollout, plan[0], by, now)
        done = self._save(rollout.started_at, event, lambda r: self._set(r, 0, event))
        if event.outcome not in _DONE:
            done = self._save(done.started_at, None, lambda r: self._end(r, "aborted", by, event))
            raise CanaryActionFailed(f"canary {canary} not started: {event.message}")
        return done

    def _deploy(self, canary: str, deploy_id: str | None) -> str | None:
        """The canary's deploy marker: the one named, else the environment's latest deploy of
        the canary release, else none (then an abort has no deploy to roll back)."""
        if deploy_id is not None:
            if find_deploy(self.store, deploy_id) is None:
                raise NotFound(f"no deploy {deploy_id!r} in the store")
            return deploy_id
        for marker in reversed(self.store.deploys(environment=self.environment)):
            if marker.version == canary:
                return marker.id
        return None

    # -- the analysis ---------------------------------------------------------------------------

    def step(self, *, by: str = CANARY_AGENT, now: float | None = None) -> StepOutcome:
        """Judge the canary over the windows since it took traffic, then act on the verdict (and
        on the failing ones just before it: ``canary_fail_threshold``)."""
        from querywatch.detect.canary import analyze_canary

        now = self.clock() if now is None else now
        rollout = require_running(self.status(), self.environment)
        verdict = analyze_canary(
            self.store,
            canary_release=rollout.canary_release,
            stable_release=rollout.stable_release,
            since=rollout.started_at,
            until=now,
            policy=self.policy,
        )
        record = VerdictRecord(
            now,
            verdict.status,
            verdict.reason,
            rollout.step,
            rollout.weight,
            verdict.canary_requests,
            verdict.stable_requests,
            verdict.canary_calls,
            verdict.stable_calls,
            len(verdict.findings),
        )
        rollout = self._save(rollout.started_at, None, lambda r: r.add_verdict(record))
        threshold = self.settings.fail_threshold
        if abort_due((v.status for v in rollout.verdicts), threshold):
            times = f" ({threshold} failing verdicts in a row)" if threshold > 1 else ""
            reason = f"the canary analysis failed it{times}: {verdict.reason}"
            done = self._abort(rollout, by, reason, verdict, now)
            return StepOutcome(done, verdict, "aborted")
        held = now - rollout.step_started_at < self.settings.interval_s
        if verdict.status != "pass" or held:  # a fail short of the threshold holds too
            return StepOutcome(rollout, verdict, "held")
        following = rollout.step + 1
        if following < len(rollout.steps):
            event = self._run("weight", rollout, rollout.steps[following], by, now)
            done = self._save(rollout.started_at, event, lambda r: self._set(r, following, event))
            if event.outcome not in _DONE:
                raise CanaryActionFailed(f"canary {rollout.canary_release}: {event.message}")
            return StepOutcome(done, verdict, "advanced")
        return StepOutcome(self.promote(by=by, now=now, reason=verdict.reason), verdict, "promoted")

    # -- promote and abort ----------------------------------------------------------------------

    def promote(
        self, *, by: str | None, now: float | None = None, reason: str | None = None
    ) -> Rollout:
        """Promote the canary to every user through the promote action; a failure leaves it
        running at its weight (and raises CanaryActionFailed)."""
        now = self.clock() if now is None else now
        rollout = require_running(self.status(), self.environment)
        event = self._run("promote", rollout, 100.0, by, now)
        if event.outcome not in _DONE:
            self._save(rollout.started_at, event, lambda r: None)
            raise CanaryActionFailed(f"canary {rollout.canary_release}: {event.message}")
        why = reason or f"promoted by {by or 'a person'}"
        return self._save(
            rollout.started_at, event, lambda r: self._end(r, "promoted", by, event, why)
        )

    def abort(
        self, *, by: str | None, reason: str | None = None, now: float | None = None
    ) -> Rollout:
        """Weight 0 at once, then the rollback path (see :meth:`_abort`)."""
        now = self.clock() if now is None else now
        rollout = require_running(self.status(), self.environment)
        why = reason or f"aborted by {by or 'a person'}"
        return self._abort(rollout, by, why, None, now)

    def _abort(
        self,
        rollout: Rollout,
        by: str | None,
        reason: str,
        verdict: CanaryVerdict | None,
        now: float,
    ) -> Rollout:
        """Weight 0 through the weight action (no user meets the canary from then on), the
        rollout ended as aborted, then the incident (opened from a failing verdict) with its
        "caught in canary" record and alert, and the configured rollback through its guards.
        A weight action that failed is raised after the rest has run."""
        weight = self._run("weight", rollout, 0.0, by, now)
        ended = self._save(
            rollout.started_at, weight, lambda r: self._end(r, "aborted", by, weight, reason)
        )
        incident, opened = open_for_abort(
            self.store, ended, verdict, now, self.repo_root, self.settings.slo_ms
        )
        events: list[RolloutEvent] = []
        if incident is not None:
            data = abort_data(self.store, ended, weight, verdict, self.settings.slo_ms)
            incident = service.record_action(
                self.store,
                incident.id,
                abort_message(ended, data),
                by=by or CANARY_AGENT,
                at=ended.aborted_at,
                data=data,
            )
            if opened:
                alert(self.responder, self.store, incident, now)
            events.append(
                RolloutEvent(now, "incident", "recorded", f"recorded on {incident.id}", by)
            )
        events.append(roll_back(self.responder, incident, by or CANARY_AGENT, self.clock()))

        def finish(r: Rollout) -> None:
            r.incident = incident.id if incident is not None else r.incident
            for event in events:
                r.record(event)

        done = self._save(rollout.started_at, None, finish, running=False)
        if weight.outcome not in _DONE:
            raise CanaryActionFailed(
                f"canary {rollout.canary_release} aborted, but {weight.message}: set its weight "
                "to 0 by hand"
            )
        return done

    # -- running actions and saving -------------------------------------------------------------

    def _run(
        self,
        kind: Literal["weight", "promote"],
        rollout: Rollout,
        weight: float,
        by: str | None,
        now: float,
    ) -> RolloutEvent:
        """Run the weight or promote action once, as an event (never raises for a failure)."""
        action = self.weight_action if kind == "weight" else self.promote_action
        what = f"weight {weight:g}%" if kind == "weight" else "promotion"
        context = ActionContext(
            incident=f"canary/{rollout.environment}",
            version=rollout.canary_release,
            previous_version=rollout.stable_release,
            deploy_id=rollout.deploy_id,
            environment=rollout.environment,
            extra=(
                ("release", rollout.canary_release),
                ("stable_release", rollout.stable_release),
                ("weight", f"{weight:g}"),
            ),
        )
        if action is None:
            setting = f"canary_{kind}_command"
            message = (
                f"canary {rollout.canary_release} {what} recorded; no {setting} or "
                f"canary_{kind}_webhook_url is set, so the traffic split is yours to set"
            )
            return RolloutEvent(now, kind, "not_configured", message, by, weight)
        try:
            command = action.describe(context)
        except MissingValue as exc:
            return RolloutEvent(now, kind, "refused", str(exc), by, weight, error=str(exc))
        if self.settings.dry_run:
            message = f"dry run: canary {rollout.canary_release} {what}: would run: {command}"
            return RolloutEvent(now, kind, "dry_run", message, by, weight, command)
        outcome = action.run(context, self.settings.timeout_s)
        if outcome.ok:
            message = (
                f"canary {rollout.canary_release} {what} in {outcome.duration_s:.1f} s: {command}"
            )
        else:
            message = f"canary {rollout.canary_release} {what} {outcome.status}: {outcome.error}"
        return RolloutEvent(
            now + outcome.duration_s,
            kind,
            outcome.status,
            message,
            by,
            weight,
            command,
            outcome.exit_code,
            outcome.output,
            round(outcome.duration_s, 3),
            outcome.error,
        )

    @staticmethod
    def _set(rollout: Rollout, step: int, event: RolloutEvent) -> None:
        if event.outcome in _DONE and event.weight is not None:
            rollout.step, rollout.weight, rollout.step_started_at = step, event.weight, event.at

    @staticmethod
    def _end(
        rollout: Rollout,
        status: Literal["promoted", "aborted"],
        by: str | None,
        event: RolloutEvent,
        reason: str | None = None,
    ) -> None:
        rollout.status, rollout.ended_by = status, by
        rollout.end_reason = reason or event.message
        if status == "aborted":
            rollout.aborted_at = event.at
            if event.outcome in _DONE:
                rollout.weight = 0.0
        else:
            rollout.promoted_at, rollout.weight = event.at, 100.0

    def _save(
        self,
        started_at: float,
        event: RolloutEvent | None,
        change: Callable[[Rollout], None],
        *,
        running: bool = True,
    ) -> Rollout:
        """Change this rollout under the store's lock: it must still be the same one (and, unless
        ``running=False``, still running), so two processes cannot both move it."""

        def apply(current: Rollout | None) -> Rollout:
            if current is None or current.started_at != started_at:
                raise InvalidTransition(
                    f"the canary rollout in {self.environment} changed meanwhile (another "
                    "process started a new one): check querywatch canary status"
                )
            if running:
                require_running(current, self.environment)
            if event is not None:
                current.record(event)
            change(current)
            return current

        saved = update_rollout(self.store, self.environment, apply)
        assert saved is not None
        return saved


def canary_rollout_from_config(
    cfg: Mapping[str, Any],
    store: Store,
    responder: Responder | None = None,
    *,
    clock: Callable[[], float] = time.time,
    cwd: Path | None = None,
) -> CanaryRollout:
    """The rollout of the settings' environment with its configured weight and promote actions.

    Raises ConfigError for a bad template or a command and a webhook both set."""
    return CanaryRollout(
        store,
        CanarySettings.from_config(cfg),
        weight=canary_action_from_config(cfg, "weight", cwd),
        promote=canary_action_from_config(cfg, "promote", cwd),
        responder=responder,
        clock=clock,
        repo_root=cwd,
    )
