"""One detection cycle: detectors -> triage -> attribution -> incident -> alerts.

`querywatch watch` runs it after every poll and `querywatch demo` runs it every second; both are
thin loops around :meth:`Monitor.check`, so there is one place where a finding becomes an
incident and an alert.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from querywatch.config import DEFAULT_SLO_MS, DEFAULT_STATEMENT_TIMEOUT_MS
from querywatch.detect.attribution import attribute
from querywatch.detect.comparison import traffic_start
from querywatch.detect.model import Detection
from querywatch.detect.policy import Policy
from querywatch.detect.regression import Detector
from querywatch.detect.triage import triage
from querywatch.errors import QuerywatchError
from querywatch.incidents.impact import impact_between
from querywatch.incidents.model import Incident, TimelineEvent
from querywatch.incidents.repository import list_incidents, update_incident
from querywatch.incidents.service import open_incident, record_alert
from querywatch.records import DeployMarker
from querywatch.respond.alerts import alert_for_incident
from querywatch.respond.notifier import Notifier
from querywatch.respond.recovery import RecoveryResult
from querywatch.respond.responder import Responder
from querywatch.respond.rollback import RollbackResult
from querywatch.respond.routing import CodeOwners
from querywatch.store.base import Store

if TYPE_CHECKING:  # imported when `watch` builds it (monitor_from_config), not by every agent
    from querywatch.respond.canary import CanaryRollout

log = logging.getLogger(__name__)

#: How long the detector reuses what it read (see querywatch.detect.look_back): a pass reads
#: what is new, and everything is read again this often.
REREAD_S = 300.0
#: Without a deploy, "before" is the ten minutes that ended a minute ago.
UNANNOUNCED_BEFORE_S = 600.0
UNANNOUNCED_AFTER_S = 60.0


@dataclass
class CheckResult:
    detections: list[Detection] = field(default_factory=list)
    incident: Incident | None = None
    opened: bool = False  # a new incident (not findings added to an open one)
    alerted: bool = False
    rollback: RollbackResult | None = None  # what the responder did about the incident
    recoveries: list[RecoveryResult] = field(default_factory=list)  # rollbacks verified now


class Monitor:
    def __init__(
        self,
        store: Store,
        *,
        policy: Policy | None = None,
        notifier: Notifier | None = None,
        health: Callable[[], Mapping[str, Any]] | None = None,
        repo_root: Path | None = None,
        codeowners: CodeOwners | None = None,
        environment: str | None = None,
        slo_ms: float = DEFAULT_SLO_MS,
        n_plus_one: bool = True,
        responder: Responder | None = None,
        clock: Callable[[], float] = time.time,
        explain_target: str | None = None,
        explain_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
        canary: CanaryRollout | None = None,
    ) -> None:
        """``explain_target`` (a PostgreSQL DSN or SQLite path of the monitored database) turns
        on plan evidence: plans kept when a deploy is first seen, and each culprit's plan,
        findings, index advice and plan diff stored on its incident. None: no EXPLAIN at all.
        ``canary``: the environment's rollout, which `querywatch watch` steps at every poll
        while one is running (see :class:`querywatch.watch.Agent`)."""
        self.store = store
        self.policy = policy or Policy()
        self.detector = Detector(
            store, self.policy, environment=environment, reuse_seconds=REREAD_S
        )
        self.notifier = notifier
        self.health = health
        self.repo_root = repo_root
        self.codeowners = codeowners
        self.environment = environment
        self.slo_ms = slo_ms
        self.n_plus_one = n_plus_one
        self.clock = clock
        self.responder = responder
        self.explain_target = explain_target
        self.explain_timeout_ms = explain_timeout_ms
        self.canary = canary

    def check(self, now: float | None = None) -> CheckResult:
        """Detect at ``now``; open (or add to) an incident and alert when the policy fires."""
        now = self.clock() if now is None else now
        detections = self.detector.detect(now)
        deploy = self.store.latest_deploy(self.environment)
        if self.explain_target is not None:
            self._keep_plans_before(deploy, now)
        if self.n_plus_one:
            from querywatch.detect.nplusone import detect_n_plus_one

            detections += detect_n_plus_one(self.store, now, deploy=deploy)
        firing = [d for d in detections if d.confidence >= self.policy.open_incident_confidence]
        result = CheckResult(detections=detections)
        if self.responder is not None:  # rollbacks done earlier: back to baseline yet?
            result.recoveries = self.responder.verify(now)
        firing = self._not_yet_handled(firing, now)
        # An N+1 is evidence, not an outage by itself: it rides along with a finding that costs
        # database time (a costly N+1 query is also a new or slower fingerprint).
        if not any(d.kind != "n_plus_one" for d in firing):
            return result
        deploy_id = next((d.deploy_id for d in firing if d.deploy_id), None)
        marker = deploy if deploy is not None and deploy.id == deploy_id else None
        before, after = self._ranges(marker, now)
        health = self._health()
        verdict = triage(self.store, before=before, after=after, health=health, detections=firing)
        culprits = attribute(
            self.store, firing, repo_root=self.repo_root, environment=self.environment
        )
        impact = impact_between(self.store, after[0], now, self.slo_ms)
        known = {
            i.id
            for i in list_incidents(
                self.store, status=("open", "acknowledged", "mitigated"), limit=1000
            )
        }
        incident = open_incident(self.store, firing, culprits, verdict, impact, deploy_id, now)
        result.incident = incident
        result.opened = incident.id not in known
        result.alerted = self._alert(incident, now)
        if self.responder is not None:
            result.rollback = self.responder.on_incident(incident, now, detections=firing)
        # after the alert: EXPLAIN must not delay it; without a database, the log's plans
        result.incident = self._attach_plans(incident, now)
        return result

    def _keep_plans_before(self, deploy: DeployMarker | None, now: float) -> None:
        """On a deploy not seen before, keep the plans of the costliest queries before it."""
        from querywatch.incidents.plan_snapshot import snapshot_new_deploy

        assert self.explain_target is not None
        try:
            snapshot_new_deploy(
                self.explain_target,
                self.store,
                deploy,
                self.policy,
                now,
                environment=self.environment,
                statement_timeout_ms=self.explain_timeout_ms,
            )
        except Exception as exc:  # plan evidence must never stop detection
            log.warning("plans before deploy %s not kept: %s", deploy.id if deploy else "?", exc)

    def _attach_plans(self, incident: Incident, now: float) -> Incident:
        """Plan evidence for the culprits that have none yet, stored on the incident: EXPLAIN
        on the explain target, or without one the plans a log digest kept (if any)."""
        from querywatch.incidents.evidence_gather import logged_plan_evidence, plan_evidence

        missing = [c.fingerprint for c in incident.culprits if c.fingerprint not in incident.plans]
        if not missing:
            return incident
        try:
            if self.explain_target is None:
                found = logged_plan_evidence(self.store, incident, fingerprints=missing)
                if not found:
                    return incident
            else:
                found = plan_evidence(
                    self.explain_target,
                    self.store,
                    incident,
                    fingerprints=missing,
                    now=now,
                    statement_timeout_ms=self.explain_timeout_ms,
                )

            def attach(stored: Incident) -> list[TimelineEvent]:
                for fp, evidence in found.items():
                    stored.plans.setdefault(fp, evidence.as_dict())
                return []

            return update_incident(self.store, incident.id, attach)
        except Exception as exc:  # plan evidence must never stop detection
            log.warning("plan evidence for incident %s not stored: %s", incident.id, exc)
            return incident

    def _not_yet_handled(self, firing: list[Detection], now: float) -> list[Detection]:
        """Drop findings a resolved incident already covers (same deploy and query).

        A deploy's "after" phase stays evidence after its rollback: without this, the findings
        that a resolved incident was about would open a second incident for the same problem.
        A new deploy is a new deploy id, so a regression it brings is never hidden.
        """
        blamed = {d.deploy_id for d in firing if d.deploy_id is not None}
        if not blamed:
            return firing
        handled = {
            (incident.deploy_id, fingerprint)
            for incident in list_incidents(
                self.store,
                # only deploys within the horizon are blamed, so only their incidents matter
                status=("resolved",),
                since=now - 2 * self.policy.deploy_horizon_seconds,
                limit=1000,
            )
            if incident.deploy_id in blamed
            for fingerprint in incident.fingerprints
        }
        return [d for d in firing if (d.deploy_id, d.fingerprint) not in handled]

    def _ranges(
        self, deploy: DeployMarker | None, now: float
    ) -> tuple[tuple[float, float], tuple[float, float]]:
        if deploy is None:
            split = now - UNANNOUNCED_AFTER_S
            return (split - UNANNOUNCED_BEFORE_S, split), (split, now)
        # "Before" is what the detector compared against: whole windows before the deploy, so
        # the window it started in (part new release already) is not counted as before.
        phases = self.detector.deploy_phases(deploy, now)
        return (phases.before_start, phases.before_end), (traffic_start(deploy), now)

    def _health(self) -> Mapping[str, Any] | None:
        if self.health is None:
            return None
        try:
            return self.health()
        except QuerywatchError as exc:  # triage without server figures beats no triage
            return {"available": False, "reason": str(exc)}

    def _alert(self, incident: Incident, now: float) -> bool:
        if self.notifier is None:
            return False
        owners = self.codeowners.owners_for_incident(incident) if self.codeowners else ()
        sent = self.notifier.notify(alert_for_incident(incident, owners))
        for delivery in self.notifier.take_deliveries():
            record_alert(self.store, incident.id, delivery.message, at=now, data=delivery.data)
        return sent


def monitor_from_config(
    cfg: Mapping[str, Any],
    store: Store,
    notifier: Notifier,
    *,
    repo_root: Path,
    on_event: Callable[[TimelineEvent], None] | None = None,
) -> Monitor:
    """The Monitor `querywatch watch` runs: alerts through ``notifier``, the responder and plan
    evidence as the settings say, health and EXPLAIN on the monitored database, and the
    environment's canary rollout with its configured weight and promote actions."""
    from querywatch.detect.health import health_snapshot
    from querywatch.respond.canary import canary_rollout_from_config
    from querywatch.respond.responder import responder_from_config
    from querywatch.respond.setup import codeowners_from_config

    dsn = cfg["dsn"]
    responder = responder_from_config(cfg, store, notifier, on_event=on_event)
    return Monitor(
        store,
        health=lambda: health_snapshot(dsn),
        repo_root=repo_root,
        codeowners=codeowners_from_config(cfg, repo_root),
        slo_ms=cfg["slo_ms"],
        notifier=notifier,
        environment=cfg["environment"],
        explain_target=dsn,
        explain_timeout_ms=cfg["statement_timeout_ms"],
        responder=responder,
        canary=canary_rollout_from_config(cfg, store, responder, cwd=repo_root),
    )
