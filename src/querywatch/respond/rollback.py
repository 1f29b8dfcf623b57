"""Guarded rollback: undo the deploy that caused an incident, and nothing else.

The report's fix was a rollback, two and a half hours in. Here it can happen by itself when an
incident is proven to come from the latest deploy, or by hand (``querywatch rollback ID``,
``POST /api/incidents/{id}/rollback``); both take the one path in :meth:`GuardedRollback.run`:

1. every guard (:mod:`querywatch.respond.guards`, docs/respond.md), cheapest and most final first;
2. the evidence re-checked on fresh data (gone: the agent does not act, a person may);
3. a dry run stops here, saying what would run;
4. the claim: "running" written under the store's lock, re-checking the state-based guards;
5. the action (command or webhook, with its timeout), then "completed" with its outcome;
6. ok: the incident is mitigated and the ``after_rollback`` runbook steps run; failed or timed
   out: the "RollbackFailed" alert.

Every step and every refusal is an event on the incident timeline. Recovery is verified later
(:mod:`querywatch.respond.recovery`); :mod:`querywatch.respond.responder` decides when to call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from querywatch.deploys import find_deploy
from querywatch.detect.policy import Policy
from querywatch.errors import ConfigError
from querywatch.incidents import service
from querywatch.incidents.model import Incident, TimelineEvent
from querywatch.records import DeployMarker
from querywatch.respond.actions import Action, ActionContext, ActionOutcome, MissingValue
from querywatch.respond.evidence import recheck
from querywatch.respond.guards import (
    ActionRefused,
    Outcome,
    ResponseState,
    RollbackRecord,
    RollbackRefused,
    Trigger,
    check_cooldown,
    check_migration,
    check_no_deploy_in_progress,
    check_once_per_deploy,
    check_rollback_target,
    check_window,
    event_data,
)
from querywatch.respond.runbook import Runbook, StepResult
from querywatch.respond.settings import RollbackSettings
from querywatch.respond.timeline import ResponseTimeline
from querywatch.store.base import Store


@dataclass(slots=True)
class RollbackResult:
    """What a rollback did. ``outcome``: ok, failed, timeout or dry_run (refusals raise)."""

    incident: str
    deploy_id: str
    version: str
    target_version: str
    trigger: Trigger
    outcome: str
    command: str
    evidence: str  # "confirmed" or "gone": the re-check on fresh data
    result: ActionOutcome | None = None  # None for a dry run
    steps: list[StepResult] = field(default_factory=list)
    events: list[TimelineEvent] = field(default_factory=list)  # what went on the timeline

    @property
    def ok(self) -> bool:
        return self.outcome in ("ok", "dry_run")

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident": self.incident,
            "deploy_id": self.deploy_id,
            "version": self.version,
            "target_version": self.target_version,
            "trigger": self.trigger,
            "outcome": self.outcome,
            "command": self.command,
            "evidence": self.evidence,
            "exit_code": None if self.result is None else self.result.exit_code,
            "duration_s": None if self.result is None else round(self.result.duration_s, 3),
            "output": None if self.result is None else self.result.output,
            "error": None if self.result is None else self.result.error,
            "runbook": [s.to_dict() for s in self.steps],
            "timeline": [{"at": e.at, "message": e.message, "data": e.data} for e in self.events],
        }


class GuardedRollback:
    """The rollback of one environment: ``action`` (``None``: none configured), under guards."""

    def __init__(
        self,
        store: Store,
        action: Action | None,
        settings: RollbackSettings,
        policy: Policy,
        timeline: ResponseTimeline,
        runbook: Runbook,
    ) -> None:
        self.store = store
        self.action = action
        self.settings = settings
        self.policy = policy
        self.timeline = timeline
        self.runbook = runbook

    def require_action(self) -> Action:
        """The configured action; a missing one is a ConfigError saying how to set it."""
        if self.action is None:
            env = self.settings.environment
            raise ConfigError(
                f"no rollback configured for {env}: set rollback_command (for example "
                '"./deploy.sh {previous_version}") or rollback_webhook_url in querywatch.toml '
                f"(or its [environments.{env}] table), or QUERYWATCH_ROLLBACK_COMMAND",
                setting="rollback_command",
            )
        return self.action

    def deploy_of(self, incident: Incident, now: float, by: str) -> DeployMarker:
        """The deploy a person asks to roll back; none is a refusal on the timeline."""
        deploy = find_deploy(self.store, incident.deploy_id) if incident.deploy_id else None
        if deploy is None:
            what = (
                f"deploy {incident.deploy_id} is not in the store"
                if incident.deploy_id
                else "it is not attributed to a deploy"
            )
            refused = RollbackRefused(
                "no_deploy", f"cannot roll back incident {incident.id}: {what}"
            )
            self._record_refusal(incident, None, refused, "manual", by, now)
            raise refused
        return deploy

    # -- the path -------------------------------------------------------------------------------

    def run(
        self,
        incident: Incident,
        deploy: DeployMarker,
        *,
        trigger: Trigger,
        by: str,
        dry_run: bool,
        force: bool,
        now: float,
    ) -> RollbackResult:
        """Roll ``deploy`` back for ``incident``, or raise RollbackRefused (on the timeline)."""
        action = self.require_action()
        try:  # 1. the guards, and the values the command names
            self._guards(incident, deploy, force=force, now=now)
        except ActionRefused as refused:
            self._refused(incident, deploy, refused, trigger, by, now)
            raise
        assert deploy.previous_version is not None  # a guard
        context = ActionContext(
            incident=incident.id,
            version=deploy.version,
            previous_version=deploy.previous_version,
            deploy_id=deploy.id,
            environment=deploy.environment,
            commit=deploy.commit,
        )
        try:
            command = action.describe(context)
        except MissingValue as exc:  # e.g. ./deploy.sh {commit} for a deploy without a commit
            missing = RollbackRefused(exc.guard, str(exc))
            self._refused(incident, deploy, missing, trigger, by, now)
            raise missing from None
        events: list[TimelineEvent] = []  # 2. the evidence on fresh data
        evidence = self._evidence_check(incident, deploy, trigger, by, now, events, dry_run)
        if evidence == "gone" and trigger == "auto":
            gone = RollbackRefused(
                "evidence",
                f"the culprit queries no longer regress since deploy {deploy.id} on fresh data: "
                "not rolling back by itself",
            )
            self._refused(incident, deploy, gone, trigger, by, now)
            raise gone
        common: dict[str, Any] = {
            "trigger": trigger,
            "deploy_id": deploy.id,
            "version": deploy.version,
            "target_version": deploy.previous_version,
            "command": command,
        }
        if force and deploy.rollback_unsafe_reason:
            common["forced_unsafe_migration"] = True
        result = RollbackResult(
            incident.id,
            deploy.id,
            deploy.version,
            deploy.previous_version,
            trigger,
            "dry_run",
            command,
            evidence,
            events=events,
        )
        if dry_run:  # 3. say what would run, run nothing
            if trigger == "auto" and not self.timeline.once(f"{incident.id}|{deploy.id}|dry_run"):
                return result
            message = (
                f"dry run: would roll back deploy {deploy.id} ({deploy.version} → "
                f"{deploy.previous_version}); would run: {command}"
            )
            data = event_data("rollback", "dry_run", **common)
            events.append(self.timeline.action(incident.id, message, by, now, data))
            result.steps = self.runbook.after_rollback(context, trigger, by, True, now, events)
            return result

        try:  # 4. the claim
            self._claim(deploy, incident, trigger, by, now)
        except ActionRefused as refused:  # another agent or request got there first
            self._refused(incident, deploy, refused, trigger, by, now)
            raise
        outcome = action.run(context, self.settings.timeout_s)  # 5. the action, then "completed"
        done_at = now + outcome.duration_s
        self._complete(deploy.id, outcome.status, done_at)
        result.outcome, result.result = outcome.status, outcome
        data = event_data(
            "rollback",
            outcome.status,
            exit_code=outcome.exit_code,
            output=outcome.output,
            duration_s=outcome.duration_s,
            reason=outcome.error,
            **common,
        )
        if outcome.ok:  # 6. mitigated and the after_rollback steps, or the alert
            message = (
                f"rolled back deploy {deploy.id} ({deploy.version} → {deploy.previous_version}) "
                f"in {outcome.duration_s:.1f} s: {command}"
            )
            events.append(self.timeline.action(incident.id, message, by, done_at, data))
            self._mitigate(incident.id, deploy, by, done_at, events)
            result.steps = self.runbook.after_rollback(context, trigger, by, False, done_at, events)
        else:
            message = f"rollback of deploy {deploy.id} {outcome.status}: {outcome.error}"
            events.append(self.timeline.action(incident.id, message, by, done_at, data))
            alerted = self.timeline.alert(
                incident.id,
                deploy,
                "RollbackFailed",
                f"rollback failed: {outcome.error}",
                f"The rollback of deploy {deploy.id} ({deploy.version} → "
                f"{deploy.previous_version}) {outcome.status}: {outcome.error}. querywatch will "
                "not try again for this deploy; roll back by hand.",
                done_at,
            )
            events.append(alerted)
        return result

    def _guards(self, incident: Incident, deploy: DeployMarker, *, force: bool, now: float) -> None:
        """Every guard, cheapest and most final first; the first "no" is raised."""
        check_rollback_target(incident, deploy, self.settings.environment)
        state = ResponseState.load(self.store)
        check_once_per_deploy(state, deploy)
        check_no_deploy_in_progress(self.store, deploy)
        check_window(deploy, self.settings.window_s, now)
        check_cooldown(state, deploy.environment, self.settings.cooldown_s, now)
        check_migration(incident, deploy, force=force)

    def _claim(
        self, deploy: DeployMarker, incident: Incident, trigger: Trigger, by: str, now: float
    ) -> None:
        """Write "running" before running, re-checking the state-based guards under a lock."""

        def claim(state: ResponseState) -> None:
            check_once_per_deploy(state, deploy)
            check_cooldown(state, deploy.environment, self.settings.cooldown_s, now)
            state.rollbacks[deploy.id] = RollbackRecord(
                deploy.id,
                incident.id,
                deploy.environment,
                trigger,
                by,
                deploy.version,
                deploy.previous_version or "",
                now,
            )
            state.last_rollback[deploy.environment] = now

        ResponseState.update(self.store, claim, now)

    def _complete(self, deploy_id: str, outcome: str, at: float) -> None:

        def complete(state: ResponseState) -> None:
            record = state.rollbacks[deploy_id]
            record.outcome, record.completed_at = outcome, at

        ResponseState.update(self.store, complete, at)

    def _evidence_check(
        self,
        incident: Incident,
        deploy: DeployMarker,
        trigger: Trigger,
        by: str,
        now: float,
        events: list[TimelineEvent],
        dry_run: bool,
    ) -> Outcome:
        """Re-check the evidence on fresh data (:mod:`querywatch.respond.evidence`).

        Always recorded before a rollback runs; the automatic path records a dry run's or a
        refusing check once per outcome, not at every check."""
        evidence = recheck(self.store, self.policy, incident, deploy, now)
        outcome = evidence.outcome
        quiet = trigger == "auto" and (dry_run or outcome == "gone")
        if quiet and not self.timeline.once(f"{incident.id}|{deploy.id}|evidence:{outcome}"):
            return outcome
        message, data = evidence.message(trigger), evidence.event_data(trigger)
        events.append(self.timeline.action(incident.id, message, by, now, data))
        return outcome

    def _mitigate(
        self,
        incident_id: str,
        deploy: DeployMarker,
        by: str,
        at: float,
        events: list[TimelineEvent],
    ) -> None:
        current = service.get_incident(self.store, incident_id)
        if current.status not in ("open", "acknowledged"):
            return
        done = service.mitigate(
            self.store,
            incident_id,
            by=by,
            note=f"rolled back {deploy.version} → {deploy.previous_version}",
            at=at,
            data={
                "action": "rollback",
                "deploy_id": deploy.id,
                "version": deploy.version,
                "target_version": deploy.previous_version,
            },
        )
        events.append(self.timeline.emit(done))

    # -- refusals -------------------------------------------------------------------------------

    def _refused(
        self,
        incident: Incident,
        deploy: DeployMarker | None,
        refused: ActionRefused,
        trigger: Trigger,
        by: str,
        now: float,
    ) -> None:
        """Put a refusal on the timeline: always for a person, once per guard for the agent."""
        if trigger == "auto":
            key = f"{incident.id}|{deploy.id if deploy else '-'}|{refused.guard}"
            if not self.timeline.once(key):
                return
        self._record_refusal(incident, deploy, refused, trigger, by, now)

    def _record_refusal(
        self,
        incident: Incident,
        deploy: DeployMarker | None,
        refused: ActionRefused,
        trigger: Trigger,
        by: str,
        now: float,
    ) -> None:
        """The refusal's event; a freeze the agent hit also pages, since a person must decide."""
        self.timeline.refusal(incident.id, deploy, refused, trigger, by, now)
        if refused.guard == "migration" and trigger == "auto" and deploy is not None:
            self.timeline.alert(
                incident.id,
                deploy,
                "RollbackFrozen",
                f"freeze: rollback unsafe: {deploy.rollback_unsafe_reason}",
                f"Incident {incident.id} blames deploy {deploy.id} ({deploy.version}), but "
                f"rolling it back is unsafe: {deploy.rollback_unsafe_reason}. querywatch did not "
                f"roll back; a person decides (querywatch rollback {incident.id} "
                "--force-unsafe-migration).",
                now,
            )
