"""The responder: what querywatch does about an incident, for one environment, over one store.

It decides *when* to act and leaves the *how* to its parts: the guarded rollback
(:mod:`querywatch.respond.rollback`), the runbook steps (:mod:`querywatch.respond.runbook`), the
recovery check (:mod:`querywatch.respond.recovery`), all writing through one
:class:`~querywatch.respond.timeline.ResponseTimeline`. The monitor calls :meth:`Responder.verify`
and :meth:`Responder.on_incident` after each check; the CLI and the API call
:meth:`Responder.rollback` and :meth:`Responder.run_step` for a person.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from querywatch.deploys import find_deploy
from querywatch.detect.model import Detection
from querywatch.detect.policy import Policy
from querywatch.errors import ConfigError
from querywatch.incidents import service
from querywatch.incidents.model import Incident, TimelineEvent
from querywatch.records import DeployMarker
from querywatch.respond.actions import Action
from querywatch.respond.guards import ActionRefused, ResponseState
from querywatch.respond.notifier import Notifier
from querywatch.respond.recovery import RecoveryCheck, RecoveryResult
from querywatch.respond.rollback import GuardedRollback, RollbackResult
from querywatch.respond.runbook import Runbook, RunbookStep, StepResult, runbook_from_config
from querywatch.respond.settings import RollbackSettings, rollback_action_from_config
from querywatch.respond.timeline import AGENT, ResponseTimeline
from querywatch.store.base import Store

#: Detection kinds that blame one query on one deploy (what a rollback can undo).
_BLAMING = ("deploy_regression", "new_fingerprint")


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
        self.settings = settings or RollbackSettings()
        self.policy = policy or Policy()
        self.clock = clock
        timeline = ResponseTimeline(store, notifier=notifier, clock=clock, on_event=on_event)
        steps = Runbook(store, runbook or {}, self.settings, timeline)
        self._timeline = timeline
        self._runbook = steps
        self._rollback = GuardedRollback(store, action, self.settings, self.policy, timeline, steps)
        self._recovery = RecoveryCheck(store, self.settings, self.policy, timeline)

    @property
    def action(self) -> Action | None:
        return self._rollback.action

    @property
    def runbook(self) -> dict[str, RunbookStep]:
        """The configured steps, by name."""
        return self._runbook.steps

    @property
    def notifier(self) -> Notifier | None:
        return self._timeline.notifier

    @property
    def on_event(self) -> Callable[[TimelineEvent], None] | None:
        return self._timeline.on_event

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
            return self._rollback.run(
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

    def verify(self, now: float | None = None) -> list[RecoveryResult]:
        """Check recovery of every rollback that finished ``recovery_check_s`` ago or more.

        Called at every check; see :meth:`querywatch.respond.recovery.RecoveryCheck.verify`.
        """
        return self._recovery.verify(self.clock() if now is None else now)

    # -- for a person ---------------------------------------------------------------------------

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
        self._rollback.require_action()  # a missing configuration is said before any guard
        now = self.clock() if now is None else now
        who = by or AGENT
        deploy = self._rollback.deploy_of(incident, now, who)
        return self._rollback.run(
            incident,
            deploy,
            trigger="manual",
            by=who,
            dry_run=self.settings.dry_run if dry_run is None else dry_run,
            force=force_unsafe_migration,
            now=now,
        )

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

        Raises NotFound (unknown incident or step) or ActionRefused (a guard said no; on the
        timeline too); see :meth:`querywatch.respond.runbook.Runbook.run`.
        """
        return self._runbook.run(
            name,
            incident_id,
            by=by or AGENT,
            dry_run=self.settings.dry_run if dry_run is None else dry_run,
            now=self.clock() if now is None else now,
        )


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
