"""The incident lifecycle: opening (or joining) an incident, and every change after it.

All rules live here so the detector, the CLI, the dashboard and the responder behave the same:

* one incident per problem: a finding that shares a fingerprint (or, when both name one, the
  deploy) with an unresolved incident is added to it instead of opening a duplicate;
* the status only moves forward: open → acknowledged → mitigated → resolved, where steps may be
  skipped (an automatic rollback mitigates an incident nobody has acknowledged yet) but never
  repeated or reversed;
* every change is a timeline event, written in the same transaction as the change, so the
  postmortem can be told from the timeline alone.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from typing import Any

from querywatch.config import DEFAULT_SLO_MS
from querywatch.detect.model import Culprit, Detection, DetectionKind, Triage
from querywatch.errors import InvalidTransition
from querywatch.incidents.impact import impact_between
from querywatch.incidents.model import (
    MISLEADING,
    EventKind,
    Impact,
    Incident,
    Status,
    TimelineEvent,
)
from querywatch.incidents.repository import (
    create_incident,
    list_incidents,
    load_incident,
    no_incident,
    update_incident,
)
from querywatch.store.base import Store
from querywatch.timefmt import utc_stamp

ID_PREFIX = "QW"
TITLE_MAX = 120

# Where each status may go next. Forward only; "resolved" is final.
TRANSITIONS: dict[Status, tuple[Status, ...]] = {
    "open": ("acknowledged", "mitigated", "resolved"),
    "acknowledged": ("mitigated", "resolved"),
    "mitigated": ("resolved",),
    "resolved": (),
}
_VERB: dict[Status, str] = {
    "acknowledged": "acknowledge",
    "mitigated": "mitigate",
    "resolved": "resolve",
    "open": "reopen",
}
_WHAT: dict[DetectionKind, str] = {
    "deploy_regression": "slower query",
    "new_fingerprint": "new costly query",
    "unannounced_regression": "query regression",
    "n_plus_one": "N+1 queries",
    "load": "database-wide slowdown",
    "victim": "query slowed by load",
}


def id_prefix_for(opened_at: float) -> str:
    """``QW-YYYYMMDD`` (UTC): ids read as a date, sort by day and are short enough to type."""
    return f"{ID_PREFIX}-{time.strftime('%Y%m%d', time.gmtime(opened_at))}"


# -- opening --------------------------------------------------------------------------------------


def make_title(
    detections: Sequence[Detection], culprits: Sequence[Culprit], deploy_id: str | None
) -> str:
    """One line: what happened, where (query and call site), since which deploy.

    What happened is said by the first detection that is not a victim (a victim only slowed
    because the database got busier); a victim names the incident only when nothing else does.
    """
    lead = next((d for d in detections if d.kind != "victim"), None)
    lead = lead or (detections[0] if detections else None)
    kind = lead.kind if lead is not None else None
    what = _WHAT.get(kind, "query regression") if kind else "query regression"
    top = max(culprits, key=lambda c: c.added_db_ms_per_s, default=None)
    named = sorted(detections, key=lambda d: d.kind == "victim")  # victims name it last
    sql = top.normalized if top else next((d.normalized for d in named if d.normalized), "")
    where_parts = []
    if top is not None and top.call_sites:
        where_parts.append(f"at {top.call_sites[0].path}:{top.call_sites[0].line}")
    elif lead is not None and lead.route:
        where_parts.append(f"on {lead.route}")
    if deploy_id:
        where_parts.append(f"since deploy {deploy_id}")
    tail = " ".join(where_parts)
    sql = " ".join(sql.split())
    if not sql:
        return _one_line(f"{what.capitalize()} {tail}".strip())
    room = TITLE_MAX - len(what) - len(tail) - 4
    if len(sql) > room:
        sql = sql[: max(room - 1, 20)].rstrip() + "…"
    return _one_line(f"{what.capitalize()}: {sql} {tail}".strip())


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def find_open_incident(
    store: Store, deploy_id: str | None, fingerprints: Iterable[str]
) -> Incident | None:
    """The unresolved incident a new finding belongs to, or ``None``.

    It matches when it shares a fingerprint, or when both name the same deploy (one bad release
    is one incident, however many queries it slowed). A finding with neither (database-wide
    load) joins an unresolved incident that has neither either. Newest match wins.
    """
    wanted = frozenset(fingerprints)
    for incident in list_incidents(store, status=("open", "acknowledged", "mitigated"), limit=1000):
        if wanted & incident.fingerprints:
            return incident
        if deploy_id is not None and incident.deploy_id == deploy_id:
            return incident
        if (
            not wanted
            and deploy_id is None
            and not incident.fingerprints
            and not incident.deploy_id
        ):
            return incident
    return None


def open_incident(
    store: Store,
    detections: Sequence[Detection],
    culprits: Sequence[Culprit],
    triage: Triage | None,
    impact: Impact | None,
    deploy_id: str | None,
    now: float,
) -> Incident:
    """Open an incident for these findings, or add them to the unresolved one they belong to.

    A new incident starts with a ``detected`` event at the earliest detection time. Joining an
    existing one adds the detections and culprits it did not have (a culprit seen again takes the
    new figures), takes the newer triage and impact, and records a ``detected`` event only when
    something was new, so repeated polls do not flood the timeline.
    """
    fingerprints = {d.fingerprint for d in detections if d.fingerprint} | {
        c.fingerprint for c in culprits
    }
    existing = find_open_incident(store, deploy_id, fingerprints)
    detected_at = min((d.detected_at for d in detections), default=now)
    if existing is not None:
        return update_incident(
            store,
            existing.id,
            lambda incident: _join(incident, detections, culprits, triage, impact, deploy_id),
        )
    event = TimelineEvent(
        at=detected_at,
        kind="detected",
        message=detections[0].summary if detections else "regression detected",
        data={"fingerprints": sorted(fingerprints), "kinds": [d.kind for d in detections]},
    )
    incident = Incident(
        id="",
        status="open",
        opened_at=now,
        detected_at=detected_at,
        title=make_title(detections, culprits, deploy_id),
        deploy_id=deploy_id,
        detections=list(detections),
        culprits=sorted(culprits, key=lambda c: -c.added_db_ms_per_s),
        triage=triage,
        impact=impact,
        timeline=[event],
    )
    return create_incident(store, incident, id_prefix_for(now))


def _join(
    incident: Incident,
    detections: Sequence[Detection],
    culprits: Sequence[Culprit],
    triage: Triage | None,
    impact: Impact | None,
    deploy_id: str | None,
) -> list[TimelineEvent]:
    known = {(d.kind, d.fingerprint, d.route) for d in incident.detections}
    new = [d for d in detections if (d.kind, d.fingerprint, d.route) not in known]
    incident.detections.extend(new)
    by_fp = {c.fingerprint: c for c in incident.culprits}
    new_culprits = [c for c in culprits if c.fingerprint not in by_fp]
    by_fp.update({c.fingerprint: c for c in culprits})
    incident.culprits = sorted(by_fp.values(), key=lambda c: -c.added_db_ms_per_s)
    if triage is not None:
        incident.triage = triage
    if impact is not None:
        incident.impact = impact
    if incident.deploy_id is None and deploy_id is not None:
        incident.deploy_id = deploy_id  # the column is fixed; the title says it from now on
    incident.title = make_title(incident.detections, incident.culprits, incident.deploy_id)
    if not new and not new_culprits:
        return []
    at = min((d.detected_at for d in new), default=time.time())
    fps = sorted(
        {d.fingerprint for d in new if d.fingerprint} | {c.fingerprint for c in new_culprits}
    )
    message = new[0].summary if new else f"{len(new_culprits)} more culprit(s)"
    return [
        TimelineEvent(
            at=at,
            kind="detected",
            message=message,
            data={"fingerprints": fps, "kinds": [d.kind for d in new]},
        )
    ]


# -- changes --------------------------------------------------------------------------------------


def get_incident(store: Store, incident_id: str) -> Incident:
    """The incident, or NotFound with the one line the CLI prints."""
    incident = load_incident(store, incident_id)
    if incident is None:
        raise no_incident(incident_id)
    return incident


def _check(incident: Incident, target: Status) -> None:
    if target in TRANSITIONS[incident.status]:
        return
    verb = _VERB[target]
    if incident.status == target:
        last = incident.last_event(target)  # type: ignore[arg-type]
        who = f" by {last.author}" if last is not None and last.author else ""
        when = f" at {utc_stamp(last.at)}" if last is not None else ""
        raise InvalidTransition(f"incident {incident.id} is already {target}{who}{when}")
    allowed = TRANSITIONS[incident.status]
    hint = (
        f"it can still be {', '.join(allowed[:-1]) + ' or ' if len(allowed) > 1 else ''}"
        f"{allowed[-1]}"
        if allowed
        else "a resolved incident is final (add a note instead)"
    )
    raise InvalidTransition(
        f"cannot {verb} incident {incident.id}: it is {incident.status}; {hint}"
    )


def transition(
    store: Store,
    incident_id: str,
    target: Status,
    *,
    at: float | None = None,
    by: str | None = None,
    note: str | None = None,
    data: dict[str, Any] | None = None,
) -> Incident:
    """Move the incident to ``target`` if its status allows, with an event saying who and why."""
    when = time.time() if at is None else at
    kind: EventKind = target if target != "open" else "note"

    def change(incident: Incident) -> list[TimelineEvent]:
        _check(incident, target)
        incident.status = target
        if target == "resolved":
            incident.resolved_at = when
        message = note or target  # the author is a field of its own
        return [TimelineEvent(when, kind, message, by, (), dict(data or {}))]

    return update_incident(store, incident_id, change)


def acknowledge(
    store: Store, incident_id: str, *, by: str | None = None, at: float | None = None
) -> Incident:
    """Someone is on it: the alert can stop escalating."""
    return transition(store, incident_id, "acknowledged", at=at, by=by)


def mitigate(
    store: Store,
    incident_id: str,
    *,
    by: str | None = None,
    note: str | None = None,
    at: float | None = None,
    data: dict[str, Any] | None = None,
) -> Incident:
    """Users are no longer hurt (rollback, flag off, cache flush), but the cause is not fixed."""
    return transition(store, incident_id, "mitigated", at=at, by=by, note=note, data=data)


def resolve(
    store: Store,
    incident_id: str,
    *,
    by: str | None = None,
    note: str | None = None,
    at: float | None = None,
) -> Incident:
    """Over: the fix is in and the figures are back to normal. Final."""
    return transition(store, incident_id, "resolved", at=at, by=by, note=note)


def add_note(
    store: Store,
    incident_id: str,
    text: str,
    *,
    by: str | None = None,
    tags: Iterable[str] = (),
    misleading: bool = False,
    at: float | None = None,
) -> Incident:
    """A finding or a step of the investigation, allowed in any status (postmortems add them too).

    ``misleading`` tags the note as a path that led nowhere (hardware, the network…): the
    postmortem lists those as time lost.
    """
    text = text.strip()
    if not text:
        raise InvalidTransition("a note needs some text")
    all_tags = tuple(dict.fromkeys([*tags, *([MISLEADING] if misleading else [])]))
    event = TimelineEvent(time.time() if at is None else at, "note", text, by, all_tags)
    return _append(store, incident_id, event)


def record_alert(
    store: Store,
    incident_id: str,
    message: str,
    *,
    at: float | None = None,
    data: dict[str, Any] | None = None,
) -> Incident:
    """An alert went out (which sink, to whom): the timeline shows when people could know."""
    event = TimelineEvent(time.time() if at is None else at, "alerted", message, data=data or {})
    return _append(store, incident_id, event)


def record_action(
    store: Store,
    incident_id: str,
    message: str,
    *,
    by: str | None = None,
    at: float | None = None,
    data: dict[str, Any] | None = None,
) -> Incident:
    """Something was done (rollback started, cache flushed, dry run): guarded actions log here."""
    event = TimelineEvent(time.time() if at is None else at, "action", message, by, (), data or {})
    return _append(store, incident_id, event)


def _append(store: Store, incident_id: str, event: TimelineEvent) -> Incident:
    return update_incident(store, incident_id, lambda incident: [event])


def refresh_impact(
    store: Store,
    incident_id: str,
    *,
    slo_ms: float = DEFAULT_SLO_MS,
    now: float | None = None,
    route: str | None = None,
) -> Incident:
    """Recompute the impact from request windows and store it on the incident.

    The range starts when the harm began: the deploy's start when the store knows the deploy,
    else the detection time; it ends at resolution, or ``now`` while the incident is unresolved.
    """
    incident = get_incident(store, incident_id)
    since = incident.detected_at
    if incident.deploy_id is not None:
        deploy = next((d for d in store.deploys() if d.id == incident.deploy_id), None)
        if deploy is not None:
            since = min(since, deploy.started_at)
    until = incident.resolved_at or (time.time() if now is None else now)
    impact = impact_between(store, since, until, slo_ms, route)

    def change(current: Incident) -> list[TimelineEvent]:
        current.impact = impact
        return []

    return update_incident(store, incident_id, change)
