"""What an alert says: one value every sink renders, built from an incident or a blind source.

The report's monitor said "a spike in database query response times" and nothing else, so people
chased hardware first. An alert here names the query, the code that sends it and the deploy, in
the first sentence a person reads.

``key`` names the *problem* (an incident, a source that cannot be read), not the message: the
firing alert and the later "resolved" alert share it, so dedup and Alertmanager see one thing
that starts and ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from querywatch.dsn import redact
from querywatch.incidents.model import Incident
from querywatch.records import CallSite
from querywatch.timefmt import clock, duration, rfc3339

Severity = Literal["critical", "warning", "info"]
AlertKind = Literal["regression", "blind", "response", "resolved"]

SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")
# A share of failed requests (error or slower than the SLO) at which a regression pages.
CRITICAL_FAILED_PCT = 5.0
_SQL_IN_TEXT = 200


@dataclass(frozen=True, slots=True)
class Alert:
    """One message for people, the same whichever sink carries it."""

    key: str  # the problem's identity: "incident/<id>" or "blind/<source>"
    kind: AlertKind
    severity: Severity  # a resolved alert keeps the severity it resolves (Alertmanager matches)
    title: str  # one line
    text: str  # a few sentences: what, is it the database, which query and code, which deploy
    alertname: str  # stable per problem type: "QueryRegression", "MonitoringBlind"
    started_at: float
    ended_at: float | None = None  # set on a resolved alert
    incident_id: str | None = None
    fingerprint: str | None = None
    normalized: str | None = None
    call_sites: tuple[CallSite, ...] = ()
    deploy_id: str | None = None
    owners: tuple[str, ...] = ()
    source: str | None = None
    url: str | None = None

    @property
    def resolved(self) -> bool:
        return self.kind == "resolved"

    def to_dict(self) -> dict[str, Any]:
        """The JSON object the webhook sink posts (and ``--json`` output can reuse)."""
        return {
            "key": self.key,
            "kind": self.kind,
            "severity": self.severity,
            "alertname": self.alertname,
            "title": self.title,
            "text": self.text,
            "started_at": rfc3339(self.started_at),
            "ended_at": rfc3339(self.ended_at) if self.ended_at is not None else None,
            "incident_id": self.incident_id,
            "fingerprint": self.fingerprint,
            "normalized": self.normalized,
            "call_sites": [
                {"path": s.path, "line": s.line, "function": s.function} for s in self.call_sites
            ],
            "deploy_id": self.deploy_id,
            "owners": list(self.owners),
            "source": self.source,
            "url": self.url,
        }


def incident_key(incident_id: str) -> str:
    return f"incident/{incident_id}"


def blind_key(source_name: str) -> str:
    return f"blind/{source_name}"


def incident_severity(incident: Incident) -> Severity:
    """Page (critical) when the database is the bottleneck or users are failing; warn otherwise."""
    if incident.triage is not None and incident.triage.database_is_bottleneck:
        return "critical"
    if incident.impact is not None and incident.impact.requests_pct >= CRITICAL_FAILED_PCT:
        return "critical"
    return "warning"


def alert_for_incident(
    incident: Incident,
    owners: tuple[str, ...] | list[str] = (),
    *,
    url: str | None = None,
    severity: Severity | None = None,
) -> Alert:
    """The regression alert for an open incident, or its "resolved" alert once it is resolved."""
    level = severity or incident_severity(incident)
    culprit = incident.culprits[0] if incident.culprits else None
    resolved = incident.status == "resolved"
    deploy = incident.deploy_id or (culprit.first_seen_deploy if culprit else None)
    if resolved:
        ended = incident.resolved_at if incident.resolved_at is not None else time.time()
        title = f"Resolved: {incident.title}"
        text = f"Resolved after {duration(ended - incident.detected_at)}: {incident.title}."
        if culprit is not None:
            text += " " + _culprit_sentence(incident, deploy)
    else:
        ended = None
        title = incident.title
        text = _regression_text(incident, deploy)
    return Alert(
        key=incident_key(incident.id),
        kind="resolved" if resolved else "regression",
        severity=level,
        title=_one_line(title),
        text=text,
        alertname="QueryRegression",
        started_at=incident.detected_at,
        ended_at=ended,
        incident_id=incident.id,
        fingerprint=culprit.fingerprint if culprit else None,
        normalized=culprit.normalized if culprit else None,
        call_sites=culprit.call_sites if culprit else (),
        deploy_id=deploy,
        owners=tuple(owners),
        url=url,
    )


def blind_alert(source_name: str, reason: str, since: float, *, url: str | None = None) -> Alert:
    """A source we cannot read is an alert, never silence (the design's "nothing is lost")."""
    reason = _one_line(redact(reason)) or "no reason given"
    text = f"monitoring is blind: cannot read {source_name} since {clock(since)}: {reason}"
    return Alert(
        key=blind_key(source_name),
        kind="blind",
        severity="critical",
        title=_one_line(f"Monitoring is blind: cannot read {source_name}"),
        text=text,
        alertname="MonitoringBlind",
        started_at=since,
        source=source_name,
        url=url,
    )


def recovered_alert(
    source_name: str, since: float, recovered_at: float, *, url: str | None = None
) -> Alert:
    """Resolves :func:`blind_alert` for the same source once it is readable again."""
    gap = duration(recovered_at - since)
    text = (
        f"monitoring restored: {source_name} is readable again at {clock(recovered_at)} "
        f"after {gap} blind (since {clock(since)})"
    )
    return Alert(
        key=blind_key(source_name),
        kind="resolved",
        severity="critical",
        title=_one_line(f"Resolved: monitoring of {source_name} restored"),
        text=text,
        alertname="MonitoringBlind",
        started_at=since,
        ended_at=recovered_at,
        source=source_name,
        url=url,
    )


def response_alert(
    incident: Incident,
    deploy_id: str,
    alertname: str,
    title: str,
    text: str,
    at: float,
    severity: Severity = "critical",
) -> Alert:
    """An alert about what querywatch did for an incident: a rollback frozen, failed or that did
    not help. Its own key (``incident/<id>/<alertname>``), so it is not folded into the
    regression alert."""
    culprit = incident.culprits[0] if incident.culprits else None
    return Alert(
        key=f"{incident_key(incident.id)}/{alertname}",
        kind="response",  # about what querywatch did, not a new regression
        severity=severity,
        title=_one_line(title),
        text=_one_line(text),
        alertname=alertname,
        started_at=at,
        incident_id=incident.id,
        fingerprint=culprit.fingerprint if culprit else None,
        normalized=culprit.normalized if culprit else None,
        call_sites=culprit.call_sites if culprit else (),
        deploy_id=deploy_id,
    )


def _regression_text(incident: Incident, deploy: str | None) -> str:
    parts: list[str] = []
    if incident.detections:
        parts.append(_sentence(incident.detections[0].summary))
    else:
        parts.append(_sentence(incident.title))
    if incident.triage is not None and incident.triage.verdict:
        parts.append(_sentence(incident.triage.verdict))
    if incident.culprits:
        parts.append(_culprit_sentence(incident, deploy))
    elif deploy:
        parts.append(f"Deploy: {deploy}.")
    return " ".join(parts)


def _culprit_sentence(incident: Incident, deploy: str | None) -> str:
    culprit = incident.culprits[0]
    sql = _one_line(culprit.normalized)
    if len(sql) > _SQL_IN_TEXT:
        sql = sql[: _SQL_IN_TEXT - 1] + "…"
    text = f"Culprit: {sql}"
    if culprit.call_sites:
        text += f" at {culprit.call_sites[0]}"
        if len(culprit.call_sites) > 1:
            text += f" (+{len(culprit.call_sites) - 1} more call sites)"
    if culprit.commits:
        text += f", last changed in {culprit.commits[0][:12]}"
    text += f" (+{culprit.added_db_ms_per_s:.0f} ms/s of database time)."
    if len(incident.culprits) > 1:
        text += f" {len(incident.culprits) - 1} more culprit(s)."
    if deploy:
        text += f" Deploy: {deploy}."
    return text


def _sentence(text: str) -> str:
    text = _one_line(text)
    return text if text.endswith((".", "!", "?")) else text + "."


def _one_line(text: str) -> str:
    return " ".join(text.split())
