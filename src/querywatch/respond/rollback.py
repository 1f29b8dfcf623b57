"""Guarded rollback: undo the deploy that caused an incident, and check that it helped.

The report's fix was a rollback, two and a half hours in. Here it can happen by itself when an
incident is proven (confidence ≥ ``Policy.rollback_confidence``) to come from the latest deploy,
or by hand (``querywatch rollback ID``, ``POST /api/incidents/{id}/rollback``). Either way it goes
through the same guards (see :mod:`querywatch.respond.guards` and docs/respond.md), re-checks the
evidence on fresh data first, runs the configured command or webhook, mitigates the incident,
runs the ``after_rollback`` runbook steps, and later verifies recovery against the baseline from
before the deploy: recovered resolves the incident, not recovered raises "rollback did not help".
Every step is an event on the incident timeline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from querywatch.deploys import find_deploy
from querywatch.detect.model import Detection
from querywatch.detect.policy import Policy
from querywatch.detect.regression import Detector
from querywatch.errors import ConfigError, NotFound
from querywatch.incidents import service
from querywatch.incidents.model import Incident, TimelineEvent
from querywatch.records import DeployMarker
from querywatch.respond.actions import (
    Action,
    ActionContext,
    ActionOutcome,
    CommandAction,
    MissingValue,
    WebhookAction,
)
from querywatch.respond.alerts import Alert, Severity, alert_for_incident
from querywatch.respond.egress import ALLOW_SETTING
from querywatch.respond.guards import (
    ActionName,
    ActionRefused,
    Outcome,
    ResponseState,
    RollbackRecord,
    RollbackRefused,
    Trigger,
    check_cooldown,
    check_no_deploy_in_progress,
    check_once_per_deploy,
    check_window,
    event_data,
)
from querywatch.respond.notifier import Notifier
from querywatch.respond.recovery import RECOVERY_TOLERANCE, Figure, measure_recovery
from querywatch.respond.runbook import RunbookStep, StepResult, run_step, runbook_from_config
from querywatch.store.base import Store

AGENT = "querywatch"
#: Detection kinds that blame one query on one deploy (what a rollback can undo).
_BLAMING = ("deploy_regression", "new_fingerprint")


@dataclass(frozen=True, slots=True)
class RollbackSettings:
    """The rollback settings of one environment (see the rollback_* settings)."""

    environment: str = "production"
    auto: bool = False
    dry_run: bool = False
    cooldown_s: float = 1800.0
    window_s: float = 3600.0
    timeout_s: float = 300.0
    recovery_check_s: float = 60.0
    recovery_tolerance: float = RECOVERY_TOLERANCE

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> RollbackSettings:
        return cls(
            environment=str(cfg.get("environment") or "production"),
            auto=bool(cfg.get("rollback_auto", False)),
            dry_run=bool(cfg.get("rollback_dry_run", False)),
            cooldown_s=float(cfg.get("rollback_cooldown_s", 1800.0)),
            window_s=float(cfg.get("rollback_window_s", 3600.0)),
            timeout_s=float(cfg.get("rollback_timeout_s", 300.0)),
            recovery_check_s=float(cfg.get("recovery_check_s", 60.0)),
        )


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


@dataclass(frozen=True, slots=True)
class RecoveryResult:
    """The verdict of one recovery check after a rollback."""

    incident: str
    deploy_id: str
    recovered: bool
    figures: dict[str, Figure]
    event: TimelineEvent


class Responder:
    """Rollback and runbook steps for one environment, over one store.

    ``action`` is the configured rollback (``None``: none configured, so only recovery checks of
    rollbacks started elsewhere, and runbook steps, are possible). ``on_event`` hears every
    timeline event the responder writes, as it writes it (the CLI prints them).
    """

    def __init__(
        self,
        store: Store,
        *,
        action: Action | None = None,
        settings: RollbackSettings | None = None,
        runbook: Mapping[str, RunbookStep] | None = None,
        notifier: Notifier | None = None,
        policy: Policy | None = None,
        clock: Callable[[], float] = time.time,
        on_event: Callable[[TimelineEvent], None] | None = None,
    ) -> None:
        self.store = store
        self.action = action
        self.settings = settings or RollbackSettings()
        self.runbook: dict[str, RunbookStep] = dict(runbook or {})
        self.notifier = notifier
        self.policy = policy or Policy()
        self.clock = clock
        self.on_event = on_event

    # -- the automatic path ---------------------------------------------------------------------

    def on_incident(
        self,
        incident: Incident | None,
        now: float | None = None,
        detections: Sequence[Detection] = (),
    ) -> RollbackResult | None:
        """Roll back by itself when allowed and proven; called by the Monitor after each check.

        Nothing happens unless ``rollback_auto`` is on, the incident is open or acknowledged and
        one of its detections (stored, or fresh in ``detections``) blames its deploy with at
        least ``Policy.rollback_confidence``. A guard that refuses is written on the timeline
        once (per incident, deploy and guard), not at every check.
        """
        if incident is None or not self.settings.auto or self.action is None:
            return None
        if incident.status not in ("open", "acknowledged") or incident.deploy_id is None:
            return None
        deploy = find_deploy(self.store, incident.deploy_id)
        if deploy is None or deploy.environment != self.settings.environment:
            return None  # another environment's agent decides about its deploys
        if not self.attributed(incident, deploy, detections):
            return None
        if deploy.id in ResponseState.load(self.store).rollbacks:
            return None  # handled (the guard would refuse; it has been said already)
        now = self.clock() if now is None else now
        try:
            return self._rollback(
                incident,
                deploy,
                trigger="auto",
                by=AGENT,
                dry_run=self.settings.dry_run,
                force=False,
                now=now,
            )
        except ActionRefused:
            return None

    def attributed(
        self, incident: Incident, deploy: DeployMarker, fresh: Iterable[Detection] = ()
    ) -> bool:
        """Does a detection blame ``deploy`` for a query with rollback confidence?"""
        threshold = self.policy.rollback_confidence
        return any(
            d.deploy_id == deploy.id
            and d.fingerprint is not None
            and d.kind in _BLAMING
            and d.confidence >= threshold
            for d in [*incident.detections, *fresh]
        )

    # -- the manual path ------------------------------------------------------------------------

    def rollback(
        self,
        incident_id: str,
        *,
        by: str | None = None,
        dry_run: bool | None = None,
        force_unsafe_migration: bool = False,
        now: float | None = None,
    ) -> RollbackResult:
        """Roll back the incident's deploy because a person asked (CLI or API).

        The same guards as the automatic path, except that a person may override the migration
        freeze (``force_unsafe_migration``) and a gone evidence is recorded but does not block.
        Raises NotFound (unknown incident), ConfigError (no rollback configured) or
        RollbackRefused (a guard said no; it is on the timeline too).
        """
        incident = service.get_incident(self.store, incident_id)
        self._require_action()  # a missing configuration is said before any guard
        now = self.clock() if now is None else now
        who = by or AGENT
        deploy = self._deploy_of(incident, now, who)
        dry = self.settings.dry_run if dry_run is None else dry_run
        return self._rollback(
            incident,
            deploy,
            trigger="manual",
            by=who,
            dry_run=dry,
            force=force_unsafe_migration,
            now=now,
        )

    def _require_action(self) -> Action:
        if self.action is None:
            env = self.settings.environment
            raise ConfigError(
                f"no rollback configured for {env}: set rollback_command (for example "
                '"./deploy.sh {previous_version}") or rollback_webhook_url in querywatch.toml '
                f"(or its [environments.{env}] table), or QUERYWATCH_ROLLBACK_COMMAND",
                setting="rollback_command",
            )
        return self.action

    def _deploy_of(self, incident: Incident, now: float, by: str) -> DeployMarker:
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

    # -- one rollback ---------------------------------------------------------------------------

    def _rollback(
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
        action = self._require_action()
        try:
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
        events: list[TimelineEvent] = []
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
        forced: dict[str, Any] = (
            {"forced_unsafe_migration": True} if force and deploy.rollback_unsafe_reason else {}
        )
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
        if dry_run:
            if trigger == "auto" and not self._first_time(f"{incident.id}|{deploy.id}|dry_run"):
                return result
            message = (
                f"dry run: would roll back deploy {deploy.id} ({deploy.version} → "
                f"{deploy.previous_version}); would run: {command}"
            )
            events.append(
                self._action(
                    incident.id,
                    message,
                    by,
                    now,
                    event_data("rollback", "dry_run", **common, **forced),
                )
            )
            result.steps = self._after_rollback(context, trigger, by, True, now, events)
            return result

        try:
            self._claim(deploy, incident, trigger, by, now)
        except ActionRefused as refused:  # another agent or request got there first
            self._refused(incident, deploy, refused, trigger, by, now)
            raise
        outcome = action.run(context, self.settings.timeout_s)
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
            **forced,
        )
        if outcome.ok:
            message = (
                f"rolled back deploy {deploy.id} ({deploy.version} → {deploy.previous_version}) "
                f"in {outcome.duration_s:.1f} s: {command}"
            )
            events.append(self._action(incident.id, message, by, done_at, data))
            self._mitigate(incident.id, deploy, by, done_at, events)
            result.steps = self._after_rollback(context, trigger, by, False, done_at, events)
        else:
            message = f"rollback of deploy {deploy.id} {outcome.status}: {outcome.error}"
            events.append(self._action(incident.id, message, by, done_at, data))
            self._raise_alert(
                incident.id,
                deploy,
                "RollbackFailed",
                f"rollback failed: {outcome.error}",
                f"The rollback of deploy {deploy.id} ({deploy.version} → "
                f"{deploy.previous_version}) {outcome.status}: {outcome.error}. querywatch will "
                "not try again for this deploy; roll back by hand.",
                done_at,
                events,
            )
        return result

    def _guards(self, incident: Incident, deploy: DeployMarker, *, force: bool, now: float) -> None:
        """Every guard, cheapest and most final first; the first "no" is raised."""
        env = self.settings.environment
        if incident.status == "resolved":
            raise RollbackRefused(
                "resolved", f"incident {incident.id} is resolved: nothing to roll back for"
            )
        if deploy.environment != env:
            raise RollbackRefused(
                "environment",
                f"deploy {deploy.id} is in {deploy.environment}, but these rollback settings are "
                f"for {env}: use --env {deploy.environment}",
            )
        if deploy.rollback:
            raise RollbackRefused(
                "is_rollback",
                f"deploy {deploy.id} is itself a rollback: roll forward or back by hand",
            )
        if not deploy.previous_version:
            raise RollbackRefused(
                "no_previous_version",
                f"deploy {deploy.id} has no previous version to roll back to (it is the first "
                f"deploy recorded in {deploy.environment})",
            )
        state = ResponseState.load(self.store)
        check_once_per_deploy(state, deploy)
        check_no_deploy_in_progress(self.store, deploy)
        check_window(deploy, self.settings.window_s, now)
        check_cooldown(state, deploy.environment, self.settings.cooldown_s, now)
        reason = deploy.rollback_unsafe_reason
        if reason and not force:
            raise RollbackRefused(
                "migration",
                f"freeze: rollback unsafe: {reason}; version {deploy.previous_version} may not run "
                "against the new schema, so a person decides (querywatch rollback "
                f"{incident.id} --force-unsafe-migration)",
            )

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
        """Run the regression detector again on what the store holds now, for this deploy.

        Always recorded before a rollback runs; the automatic path records a dry run's or a
        refusing check once per outcome, not at every check."""
        found = Detector(self.store, self.policy, environment=deploy.environment).detect(
            now, deploy=deploy
        )
        culprits = {c.fingerprint for c in incident.culprits} or set(incident.fingerprints)
        still = [
            d
            for d in found
            if d.fingerprint in culprits
            and d.deploy_id == deploy.id
            and d.confidence >= self.policy.open_incident_confidence
        ]
        outcome: Outcome = "confirmed" if still else "gone"
        quiet = trigger == "auto" and (dry_run or outcome == "gone")
        if quiet and not self._first_time(f"{incident.id}|{deploy.id}|evidence:{outcome}"):
            return outcome
        if still:
            top = max(still, key=lambda d: d.confidence)
            message = (
                f"evidence re-checked on fresh data: {len(still)} of {len(culprits)} culprit "
                f"quer{'y' if len(culprits) == 1 else 'ies'} still regressed since deploy "
                f"{deploy.id} (confidence {top.confidence:.3f}): {top.summary}"
            )
        else:
            message = (
                f"evidence re-checked on fresh data: the culprit queries no longer regress since "
                f"deploy {deploy.id}"
                + (
                    " (recorded; a person asked, so it does not block)"
                    if trigger == "manual"
                    else ""
                )
            )
        data = event_data(
            "evidence_check",
            outcome,
            trigger=trigger,
            deploy_id=deploy.id,
            version=deploy.version,
            target_version=deploy.previous_version,
            detections=[
                {
                    "fingerprint": d.fingerprint,
                    "kind": d.kind,
                    "confidence": round(d.confidence, 4),
                    "summary": d.summary,
                }
                for d in still
            ],
        )
        events.append(self._action(incident.id, message, by, now, data))
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
        events.append(self._emit(done))

    def _after_rollback(
        self,
        context: ActionContext,
        trigger: Trigger,
        by: str,
        dry_run: bool,
        at: float,
        events: list[TimelineEvent],
    ) -> list[StepResult]:
        results = []
        for step in self.runbook.values():
            if not step.after_rollback:
                continue
            try:
                done = run_step(
                    self.store,
                    step,
                    context,
                    trigger=trigger,
                    dry_run=dry_run,
                    timeout_s=self.settings.timeout_s,
                    by=by,
                    at=at,
                )
            except MissingValue as exc:
                refused = ActionRefused(exc.guard, str(exc))
                events.append(
                    self._refusal_event(
                        context.incident, None, refused, trigger, by, at, step=step.name
                    )
                )
                continue
            self._notify_event(done.event)
            events.append(done.event)
            results.append(done)
            if done.result is not None:
                at += done.result.duration_s
        return results

    # -- refusals ---------------------------------------------------------------------------------

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
            if not self._first_time(key):
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
        self._refusal_event(incident.id, deploy, refused, trigger, by, now)
        if refused.guard == "migration" and trigger == "auto" and deploy is not None:
            self._raise_alert(
                incident.id,
                deploy,
                "RollbackFrozen",
                f"freeze: rollback unsafe: {deploy.rollback_unsafe_reason}",
                f"Incident {incident.id} blames deploy {deploy.id} ({deploy.version}), but "
                f"rolling it back is unsafe: {deploy.rollback_unsafe_reason}. querywatch did not "
                f"roll back; a person decides (querywatch rollback {incident.id} "
                "--force-unsafe-migration).",
                now,
                [],
            )

    def _refusal_event(
        self,
        incident_id: str,
        deploy: DeployMarker | None,
        refused: ActionRefused,
        trigger: Trigger,
        by: str,
        now: float,
        *,
        step: str | None = None,
    ) -> TimelineEvent:
        name: ActionName = "freeze" if refused.guard == "migration" else "refused"
        what = f"runbook step {step}" if step else "rollback"
        message = (
            refused.reason if name == "freeze" else f"{what} refused ({refused.guard}): {refused}"
        )
        data = event_data(
            name,
            "refused",
            trigger=trigger,
            deploy_id=deploy.id if deploy else None,
            version=deploy.version if deploy else None,
            target_version=deploy.previous_version if deploy else None,
            step=step,
            reason=refused.reason,
            guard=refused.guard,
        )
        return self._action(incident_id, message, by, now, data)

    def _first_time(self, key: str) -> bool:
        """True once per key: the automatic path says each thing once, not at every check."""
        first: list[bool] = []

        def note(state: ResponseState) -> None:
            first.append(key not in state.noted)
            state.noted.setdefault(key, self.clock())

        ResponseState.update(self.store, note, self.clock())
        return first[-1]

    # -- runbook steps on demand ----------------------------------------------------------------

    def run_step(
        self,
        name: str,
        incident_id: str,
        *,
        by: str | None = None,
        dry_run: bool | None = None,
        now: float | None = None,
    ) -> StepResult:
        """Run one runbook step for an incident because a person asked.

        Guards: the step must exist, the incident must exist, no deploy may be rolling out in
        the environment, and the values its command names must be known; dry run and the
        timeout apply. Raises NotFound or ActionRefused (also written on the timeline).
        """
        incident = service.get_incident(self.store, incident_id)
        step = self.runbook.get(name)
        if step is None:
            known = (
                ", ".join(self.runbook) or "none: add a [runbook.<name>] table to querywatch.toml"
            )
            raise NotFound(f"no runbook step {name!r} (configured: {known})")
        now = self.clock() if now is None else now
        who = by or AGENT
        deploy = find_deploy(self.store, incident.deploy_id) if incident.deploy_id else None
        environment = deploy.environment if deploy else self.settings.environment
        context = ActionContext(
            incident=incident.id,
            version=deploy.version if deploy else None,
            previous_version=deploy.previous_version if deploy else None,
            deploy_id=deploy.id if deploy else None,
            environment=environment,
            commit=deploy.commit if deploy else None,
        )
        try:
            latest = self.store.latest_deploy(environment)
            if latest is not None and latest.finished_at is None:
                raise ActionRefused(
                    "deploy_in_progress",
                    f"deploy {latest.id} (version {latest.version}) is in progress in "
                    f"{environment}: wait for it to finish",
                )
            try:
                step.action.describe(context)
            except MissingValue as exc:
                raise ActionRefused(exc.guard, str(exc)) from None
        except ActionRefused as refused:
            self._refusal_event(incident.id, deploy, refused, "manual", who, now, step=name)
            raise
        dry = self.settings.dry_run if dry_run is None else dry_run
        done = run_step(
            self.store,
            step,
            context,
            trigger="manual",
            dry_run=dry,
            timeout_s=self.settings.timeout_s,
            by=who,
            at=now,
        )
        self._notify_event(done.event)
        return done

    # -- recovery -------------------------------------------------------------------------------

    def verify(self, now: float | None = None) -> list[RecoveryResult]:
        """Check recovery of every rollback that finished ``recovery_check_s`` ago or more.

        Called at every check. A rollback is verified once: recovered resolves its incident;
        not recovered alerts "rollback did not help" (and the deploy is never rolled back again).
        Until some statement or request windows exist after the rollback, the check waits.
        """
        now = self.clock() if now is None else now
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
            checked = self._check_recovery(record, now)
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

    def _check_recovery(self, record: RollbackRecord, now: float) -> RecoveryResult | None:
        incident = self.store.get_incident(record.incident)
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
        event = self._action(incident.id, message, AGENT, now, data)
        if recovered:
            if incident.status != "resolved":
                done = service.resolve(
                    self.store, incident.id, by=AGENT, note=f"recovered: {summary}", at=now
                )
                self._emit(done)
                if self.notifier is not None:
                    self.notifier.notify(alert_for_incident(done))
                    self._record_deliveries(incident.id, now)
        else:
            self._raise_alert(
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
                [],
            )
        return RecoveryResult(incident.id, deploy.id, recovered, figures, event)

    # -- timeline and alerts --------------------------------------------------------------------

    def _action(
        self, incident_id: str, message: str, by: str | None, at: float, data: dict[str, Any]
    ) -> TimelineEvent:
        done = service.record_action(self.store, incident_id, message, by=by, at=at, data=data)
        return self._emit(done)

    def _emit(self, incident: Incident) -> TimelineEvent:
        event = incident.timeline[-1]
        self._notify_event(event)
        return event

    def _notify_event(self, event: TimelineEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def _raise_alert(
        self,
        incident_id: str,
        deploy: DeployMarker,
        alertname: str,
        title: str,
        text: str,
        at: float,
        events: list[TimelineEvent],
        severity: Severity = "critical",
    ) -> None:
        """Send a response alert (its own key, so it is not folded into the regression alert)
        and record it with record_alert."""
        incident = service.get_incident(self.store, incident_id)
        culprit = incident.culprits[0] if incident.culprits else None
        alert = Alert(
            key=f"incident/{incident_id}/{alertname}",
            kind="response",  # about what querywatch did, not a new regression
            severity=severity,
            title=" ".join(title.split()),
            text=" ".join(text.split()),
            alertname=alertname,
            started_at=at,
            incident_id=incident_id,
            fingerprint=culprit.fingerprint if culprit else None,
            normalized=culprit.normalized if culprit else None,
            call_sites=culprit.call_sites if culprit else (),
            deploy_id=deploy.id,
        )
        sinks: list[str] = []
        failed: dict[str, str] = {}
        if self.notifier is not None:
            self.notifier.notify(alert)
            for delivery in self.notifier.take_deliveries():
                sinks.extend(delivery.succeeded)
                failed.update(dict(delivery.failed))
        sent = f" (sent to {', '.join(sinks)})" if sinks else ""
        done = service.record_alert(
            self.store,
            incident_id,
            f"{alert.title}{sent}",
            at=at,
            data={
                "key": alert.key,
                "kind": alert.kind,
                "severity": alert.severity,
                "alertname": alertname,
                "sinks": sinks,
                "failed": failed,
            },
        )
        events.append(self._emit(done))

    def _record_deliveries(self, incident_id: str, at: float) -> None:
        if self.notifier is None:
            return
        for delivery in self.notifier.take_deliveries():
            done = service.record_alert(
                self.store, incident_id, delivery.message, at=at, data=delivery.data
            )
            self._emit(done)


# -- from settings --------------------------------------------------------------------------------


def rollback_action_from_config(cfg: Mapping[str, Any], cwd: Path | None = None) -> Action | None:
    """The configured rollback: a command template, a webhook, or ``None``."""
    command = cfg.get("rollback_command")
    url = cfg.get("rollback_webhook_url")
    origins: Mapping[str, str] = getattr(cfg, "origins", {})
    if command and url:
        raise ConfigError(
            "set rollback_command or rollback_webhook_url, not both: querywatch would not know "
            "which one rolls back",
            source=origins.get("rollback_command"),
            setting="rollback_command",
        )
    if command:
        return CommandAction(
            str(command),
            setting="rollback_command",
            source=origins.get("rollback_command"),
            cwd=cwd,
        )
    if url:
        return WebhookAction(str(url), allow_link_local=bool(cfg.get(ALLOW_SETTING)))
    return None


def responder_from_config(
    cfg: Mapping[str, Any],
    store: Store,
    notifier: Notifier | None = None,
    *,
    policy: Policy | None = None,
    clock: Callable[[], float] = time.time,
    on_event: Callable[[TimelineEvent], None] | None = None,
    cwd: Path | None = None,
) -> Responder:
    """A Responder for the settings' environment: its rollback action, runbook and guards.

    Raises ConfigError for a bad command template or runbook table, both a command and a webhook,
    or ``rollback_auto`` without either.
    """
    action = rollback_action_from_config(cfg, cwd)
    settings = RollbackSettings.from_config(cfg)
    if settings.auto and action is None:
        raise ConfigError(
            "rollback_auto is on but no rollback is configured: set rollback_command (for "
            'example "./deploy.sh {previous_version}") or rollback_webhook_url',
            setting="rollback_auto",
        )
    return Responder(
        store,
        action=action,
        settings=settings,
        runbook=runbook_from_config(cfg),
        notifier=notifier,
        policy=policy,
        clock=clock,
        on_event=on_event,
    )
