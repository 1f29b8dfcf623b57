"""Is the regression still there? The evidence re-checked on fresh data, just before a rollback.

An incident may be minutes old when the rollback comes: a cache warmed up, a batch job ended, the
query is fast again. Rolling back then undoes a deploy for nothing, so the regression detector runs
again on what the store holds now, for this deploy only, and the culprit queries must still
regress with the confidence that opens an incident. This module measures and says it;
:mod:`querywatch.respond.rollback` decides (gone: the agent does not act, a person may).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from querywatch.detect.model import Detection
from querywatch.detect.policy import Policy
from querywatch.detect.regression import Detector
from querywatch.incidents.model import Incident
from querywatch.records import DeployMarker
from querywatch.respond.guards import Outcome, Trigger, event_data
from querywatch.store.base import Store


@dataclass(frozen=True, slots=True)
class Evidence:
    """The re-check of one incident's culprits against one deploy."""

    deploy: DeployMarker
    culprits: int  # how many culprit queries the incident names
    still: tuple[Detection, ...]  # the culprits that still regress since the deploy

    @property
    def outcome(self) -> Outcome:
        return "confirmed" if self.still else "gone"

    def message(self, trigger: Trigger) -> str:
        deploy_id = self.deploy.id
        if self.still:
            top = max(self.still, key=lambda d: d.confidence)
            return (
                f"evidence re-checked on fresh data: {len(self.still)} of {self.culprits} culprit "
                f"quer{'y' if self.culprits == 1 else 'ies'} still regressed since deploy "
                f"{deploy_id} (confidence {top.confidence:.3f}): {top.summary}"
            )
        message = (
            "evidence re-checked on fresh data: the culprit queries no longer regress since "
            f"deploy {deploy_id}"
        )
        if trigger == "manual":
            message += " (recorded; a person asked, so it does not block)"
        return message

    def event_data(self, trigger: Trigger) -> dict[str, Any]:
        return event_data(
            "evidence_check",
            self.outcome,
            trigger=trigger,
            deploy_id=self.deploy.id,
            version=self.deploy.version,
            target_version=self.deploy.previous_version,
            detections=[
                {
                    "fingerprint": d.fingerprint,
                    "kind": d.kind,
                    "confidence": round(d.confidence, 4),
                    "summary": d.summary,
                }
                for d in self.still
            ],
        )


def recheck(
    store: Store, policy: Policy, incident: Incident, deploy: DeployMarker, now: float
) -> Evidence:
    """Run the regression detector again on what the store holds at ``now``, for ``deploy``."""
    found = Detector(store, policy, environment=deploy.environment).detect(now, deploy=deploy)
    culprits = {c.fingerprint for c in incident.culprits} or set(incident.fingerprints)
    still = tuple(
        d
        for d in found
        if d.fingerprint in culprits
        and d.deploy_id == deploy.id
        and d.confidence >= policy.open_incident_confidence
    )
    return Evidence(deploy, len(culprits), still)
