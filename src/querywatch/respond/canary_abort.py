"""After a canary's weight went to 0: the incident, its "caught in canary" record, the rollback.

A failing verdict is evidence like a regression's: its findings become detections blaming the
canary's deploy, an incident is opened from them (culprits attributed, the impact measured, the
alert sent), and a ``canary_abort`` action on its timeline says who met the canary, when its
weight went to 0 and why; the postmortem reads it ("Caught in canary"). Then the configured
rollback runs through the responder, every guard included, as for any incident.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from querywatch.detect.model import Detection, DetectionKind
from querywatch.errors import ConfigError
from querywatch.incidents import service
from querywatch.incidents.impact import impact_of
from querywatch.incidents.model import Impact, Incident
from querywatch.records import window_start
from querywatch.respond.canary_state import Rollout, RolloutEvent
from querywatch.respond.guards import ActionRefused
from querywatch.store.base import Store
from querywatch.timefmt import clock

if TYPE_CHECKING:
    from querywatch.detect.canary import CanaryVerdict
    from querywatch.respond.responder import Responder

_DETECTION_KIND: dict[str, DetectionKind] = {
    "new_query": "new_fingerprint",
    "n_plus_one": "n_plus_one",
}
FINDINGS_IN_MESSAGE = 3


def detections_of(verdict: CanaryVerdict, deploy_id: str | None, now: float) -> list[Detection]:
    """A failing verdict's findings as detections blaming the canary's deploy: what an incident,
    its culprits and the rollback guards are made of."""
    found = []
    for f in verdict.findings:
        confidence = 1.0 - f.p_value if f.p_value is not None else 0.99
        found.append(
            Detection(
                kind=_DETECTION_KIND.get(f.kind, "deploy_regression"),
                detected_at=now,
                confidence=max(0.0, min(1.0, confidence)),
                summary=f"canary {verdict.canary_release}: {f.message}",
                fingerprint=f.fingerprint,
                normalized=f.normalized or None,
                route=f.route,
                deploy_id=deploy_id,
                added_db_ms_per_s=f.canary.get("added_ms_per_s", 0.0),
                p_value=f.p_value,
                evidence={"canary_finding": f.as_dict()},
            )
        )
    return found


@dataclass(slots=True)
class AbortRecord:
    """What the abort wrote beyond the rollout state: the incident and the rollback's outcome."""

    incident: str | None = None
    events: list[RolloutEvent] = field(default_factory=list)


def users_between(
    store: Store, release: str | None, since: float, until: float, slo_ms: float
) -> Impact:
    """The middleware's figures for one release (``None``: all) over [since, until)."""
    windows = store.request_windows(since=window_start(since), until=until, release=release)
    return impact_of(windows, slo_ms, since=since, until=until)


def abort_data(
    store: Store,
    rollout: Rollout,
    weight_event: RolloutEvent,
    verdict: CanaryVerdict | None,
    slo_ms: float,
) -> dict[str, Any]:
    """The ``canary_abort`` timeline event's data (the postmortem's "Caught in canary")."""
    aborted_at = rollout.aborted_at if rollout.aborted_at is not None else weight_event.at
    met = users_between(store, rollout.canary_release, rollout.started_at, aborted_at, slo_ms)
    everyone = users_between(store, None, rollout.started_at, aborted_at, slo_ms)
    weights = [w for w in rollout.steps[: rollout.step + 1]]
    return {
        "action": "canary_abort",
        "outcome": weight_event.outcome,
        "canary_release": rollout.canary_release,
        "stable_release": rollout.stable_release,
        "weight_pct": weights[-1] if weights else 0.0,
        "steps_pct": list(rollout.steps),
        "started_at": rollout.started_at,
        "aborted_at": aborted_at,
        "abort_after_s": aborted_at - rollout.started_at,
        "aborted_by": rollout.ended_by,
        "users_in_canary": met.users,
        "users_affected": met.affected_users,
        "users_total": everyone.users,
        "canary_requests": met.requests,
        "slo_ms": slo_ms,
        "weight_command": weight_event.command,
        "weight_outcome": weight_event.outcome,
        "weight_error": weight_event.error,
        "verdict": verdict.as_dict() if verdict is not None else None,
    }


def abort_message(rollout: Rollout, data: dict[str, Any]) -> str:
    """The timeline's sentence: caught in canary (or aborted by a person), cohort, when, why."""
    how = (
        "the canary analysis failed it"
        if data["verdict"] is not None
        else f"{rollout.ended_by or 'a person'} aborted it"
    )
    went = (
        "its weight went to 0"
        if data["weight_outcome"] in ("ok", "not_configured", "dry_run")
        else f"setting its weight to 0 {data['weight_outcome']} ({data['weight_error']})"
    )
    users = (
        f" ({data['users_in_canary']} of {data['users_total']} users met it, "
        f"{data['users_affected']} saw an error or a slow page)"
        if data["users_total"]
        else ""
    )
    reason = f". Why: {rollout.end_reason}" if rollout.end_reason else ""
    return (
        f"caught in canary: {rollout.canary_release} took {data['weight_pct']:g}% of traffic next "
        f"to {rollout.stable_release} from {clock(rollout.started_at)}{users}; {how} and {went} "
        f"at {clock(data['aborted_at'])}, {data['abort_after_s']:.0f} s after it took "
        f"traffic{reason}"
    )


def open_for_abort(
    store: Store,
    rollout: Rollout,
    verdict: CanaryVerdict | None,
    now: float,
    repo_root: Path | None,
    slo_ms: float,
) -> tuple[Incident | None, bool]:
    """The incident the abort is recorded on: opened from a failing verdict's findings, else the
    unresolved one naming the canary's deploy, else none. True when it was opened now."""
    if verdict is not None and verdict.findings:
        from querywatch.detect.attribution import attribute

        detections = detections_of(verdict, rollout.deploy_id, now)
        culprits = attribute(
            store, detections, repo_root=repo_root or Path.cwd(), environment=rollout.environment
        )
        impact = users_between(store, None, rollout.started_at, now, slo_ms)
        before = service.find_open_incident(
            store, rollout.deploy_id, {d.fingerprint for d in detections if d.fingerprint}
        )
        incident = service.open_incident(
            store, detections, culprits, None, impact, rollout.deploy_id, now
        )
        return incident, before is None
    if rollout.deploy_id is not None:
        return service.find_open_incident(store, rollout.deploy_id, ()), False
    return None, False


def alert(responder: Responder | None, store: Store, incident: Incident, now: float) -> None:
    """The regression alert for an incident the abort opened, each delivery on its timeline."""
    if responder is None or responder.notifier is None:
        return
    from querywatch.respond.alerts import alert_for_incident

    responder.notifier.notify(alert_for_incident(incident))
    for delivery in responder.notifier.take_deliveries():
        service.record_alert(store, incident.id, delivery.message, at=now, data=delivery.data)


def roll_back(
    responder: Responder | None, incident: Incident | None, by: str, now: float
) -> RolloutEvent:
    """The configured rollback for the incident, through every guard; what happened, as an event
    on the rollout (the incident's timeline has the details)."""
    if incident is None:
        return RolloutEvent(
            now,
            "rollback",
            "skipped",
            "rollback not run: no incident names the canary's deploy (a manual abort without a "
            "failing verdict); run querywatch rollback INCIDENT if it should",
            by,
        )
    if responder is None or responder.action is None:
        return RolloutEvent(
            now,
            "rollback",
            "not_configured",
            f"rollback not run for {incident.id}: no rollback_command or rollback_webhook_url is "
            "configured",
            by,
        )
    try:
        result = responder.rollback(incident.id, by=by, now=now)
    except ActionRefused as refused:  # on the incident's timeline too
        return RolloutEvent(
            now,
            "rollback",
            "refused",
            f"rollback for {incident.id} refused ({refused.guard}): {refused.reason}",
            by,
            error=refused.reason,
        )
    except ConfigError as exc:
        return RolloutEvent(now, "rollback", "not_configured", str(exc), by, error=str(exc))
    outcome = result.result
    what = {
        "ok": f"rolled back {result.version} → {result.target_version}",
        "dry_run": "dry run: nothing was run",
    }.get(result.outcome, f"rollback {result.outcome}")
    return RolloutEvent(
        now + (outcome.duration_s if outcome is not None else 0.0),
        "rollback",
        result.outcome,
        f"{incident.id}: {what}: {result.command}",
        by,
        command=result.command,
        exit_code=outcome.exit_code if outcome is not None else None,
        output=outcome.output if outcome is not None else None,
        duration_s=round(outcome.duration_s, 3) if outcome is not None else None,
        error=outcome.error if outcome is not None else None,
    )
