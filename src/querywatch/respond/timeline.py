"""What the responder writes on an incident's timeline, and who hears it as it is written.

Every step of a response (an evidence check, a rollback, a runbook step, a refusal, a recovery
verdict, an alert it raised) is one timeline event written through the incidents service, where
the postmortem reads it; ``on_event`` hears each one as it is written (the CLI prints them). The
automatic path runs at every check, so what it should say only once is remembered in the response
state (:meth:`ResponseTimeline.once`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from querywatch.incidents import service
from querywatch.incidents.model import Incident, TimelineEvent
from querywatch.records import DeployMarker
from querywatch.respond.alerts import Alert, Severity, response_alert
from querywatch.respond.guards import ActionName, ActionRefused, ResponseState, Trigger, event_data
from querywatch.respond.notifier import Notifier
from querywatch.store.base import Store

#: Who acts when no person asked (the agent, a recovery check).
AGENT = "querywatch"


class ResponseTimeline:
    """The responder's pen on incident timelines, and its voice to the alert sinks."""

    def __init__(
        self,
        store: Store,
        *,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.time,
        on_event: Callable[[TimelineEvent], None] | None = None,
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.clock = clock
        self.on_event = on_event

    def action(
        self, incident_id: str, message: str, by: str | None, at: float, data: dict[str, Any]
    ) -> TimelineEvent:
        """Write one "action" event (``data`` from :func:`guards.event_data`)."""
        done = service.record_action(self.store, incident_id, message, by=by, at=at, data=data)
        return self.emit(done)

    def emit(self, incident: Incident) -> TimelineEvent:
        """Tell ``on_event`` about the event just written on ``incident``."""
        event = incident.timeline[-1]
        self.heard(event)
        return event

    def heard(self, event: TimelineEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def once(self, key: str) -> bool:
        """True once per key: the automatic path says each thing once, not at every check."""
        first: list[bool] = []

        def note(state: ResponseState) -> None:
            first.append(key not in state.noted)
            state.noted.setdefault(key, self.clock())

        ResponseState.update(self.store, note, self.clock())
        return first[-1]

    def refusal(
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
        """Write what a guard refused (a migration freeze is a "freeze", all else "refused")."""
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
        return self.action(incident_id, message, by, now, data)

    def alert(
        self,
        incident_id: str,
        deploy: DeployMarker,
        alertname: str,
        title: str,
        text: str,
        at: float,
        severity: Severity = "critical",
    ) -> TimelineEvent:
        """Send a response alert (:func:`alerts.response_alert`) and record it, with the sinks
        that took it and those that failed, as one "alerted" event."""
        incident = service.get_incident(self.store, incident_id)
        alert = response_alert(incident, deploy.id, alertname, title, text, at, severity)
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
        return self.emit(done)

    def send(self, incident_id: str, alert: Alert, at: float) -> None:
        """Send ``alert`` and record each delivery on the incident's timeline."""
        if self.notifier is None:
            return
        self.notifier.notify(alert)
        for delivery in self.notifier.take_deliveries():
            done = service.record_alert(
                self.store, incident_id, delivery.message, at=at, data=delivery.data
            )
            self.emit(done)
