"""JSON for incidents: the store's ``body`` column, the timeline columns and ``--json`` output.

Written by hand rather than by reflection so the stored format is explicit and stays readable to
older and newer querywatch versions: unknown keys are ignored and missing optional keys take their
defaults. Everything round-trips exactly (floats through JSON keep every bit; tuples come back as
tuples). Free-form fields (``evidence``, ``health``, event ``data``, ``plans``) must hold JSON
values; a tuple inside them comes back as a list.
"""

from __future__ import annotations

import json
from typing import Any, cast

from querywatch.detect.model import Culprit, Detection, DetectionKind, PhaseStats, Triage
from querywatch.incidents.model import (
    EventKind,
    Impact,
    Incident,
    Status,
    TimelineEvent,
)
from querywatch.records import CallSite

BODY_VERSION = 1

Json = dict[str, Any]


def dumps(data: Any) -> str:
    """Compact, key-ordered JSON: the same incident always stores the same text."""
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


# -- parts ----------------------------------------------------------------------------------------


def phase_to_dict(p: PhaseStats) -> Json:
    return {
        "calls": p.calls,
        "calls_per_s": p.calls_per_s,
        "mean_ms": p.mean_ms,
        "p95_ms": p.p95_ms,
        "db_ms_per_s": p.db_ms_per_s,
    }


def phase_from_dict(d: Json) -> PhaseStats:
    return PhaseStats(
        int(d["calls"]),
        float(d["calls_per_s"]),
        float(d["mean_ms"]),
        _opt_float(d.get("p95_ms")),
        float(d["db_ms_per_s"]),
    )


def detection_to_dict(d: Detection) -> Json:
    return {
        "kind": d.kind,
        "detected_at": d.detected_at,
        "confidence": d.confidence,
        "summary": d.summary,
        "fingerprint": d.fingerprint,
        "normalized": d.normalized,
        "route": d.route,
        "deploy_id": d.deploy_id,
        "before": None if d.before is None else phase_to_dict(d.before),
        "after": None if d.after is None else phase_to_dict(d.after),
        "added_db_ms_per_s": d.added_db_ms_per_s,
        "p_value": d.p_value,
        "evidence": d.evidence,
    }


def detection_from_dict(d: Json) -> Detection:
    before, after = d.get("before"), d.get("after")
    return Detection(
        kind=cast(DetectionKind, d["kind"]),
        detected_at=float(d["detected_at"]),
        confidence=float(d["confidence"]),
        summary=str(d["summary"]),
        fingerprint=d.get("fingerprint"),
        normalized=d.get("normalized"),
        route=d.get("route"),
        deploy_id=d.get("deploy_id"),
        before=None if before is None else phase_from_dict(before),
        after=None if after is None else phase_from_dict(after),
        added_db_ms_per_s=float(d.get("added_db_ms_per_s", 0.0)),
        p_value=_opt_float(d.get("p_value")),
        evidence=dict(d.get("evidence") or {}),
    )


def call_site_to_dict(s: CallSite) -> Json:
    return {"path": s.path, "line": s.line, "function": s.function}


def call_site_from_dict(d: Json) -> CallSite:
    return CallSite(str(d["path"]), int(d["line"]), str(d["function"]))


def culprit_to_dict(c: Culprit) -> Json:
    return {
        "fingerprint": c.fingerprint,
        "normalized": c.normalized,
        "added_db_ms_per_s": c.added_db_ms_per_s,
        "first_seen_deploy": c.first_seen_deploy,
        "call_sites": [call_site_to_dict(s) for s in c.call_sites],
        "commits": list(c.commits),
        "detection_kinds": list(c.detection_kinds),
    }


def culprit_from_dict(d: Json) -> Culprit:
    return Culprit(
        fingerprint=str(d["fingerprint"]),
        normalized=str(d["normalized"]),
        added_db_ms_per_s=float(d["added_db_ms_per_s"]),
        first_seen_deploy=d.get("first_seen_deploy"),
        call_sites=tuple(call_site_from_dict(s) for s in d.get("call_sites", ())),
        commits=tuple(str(c) for c in d.get("commits", ())),
        detection_kinds=tuple(str(k) for k in d.get("detection_kinds", ())),
    )


def triage_to_dict(t: Triage) -> Json:
    return {
        "db_share_before": t.db_share_before,
        "db_share_after": t.db_share_after,
        "verdict": t.verdict,
        "database_is_bottleneck": t.database_is_bottleneck,
        "health": t.health,
    }


def triage_from_dict(d: Json) -> Triage:
    bottleneck = d.get("database_is_bottleneck")
    return Triage(
        db_share_before=_opt_float(d.get("db_share_before")),
        db_share_after=_opt_float(d.get("db_share_after")),
        verdict=str(d["verdict"]),
        database_is_bottleneck=None if bottleneck is None else bool(bottleneck),
        health=dict(d.get("health") or {}),
    )


def impact_to_dict(i: Impact) -> Json:
    return {
        "requests": i.requests,
        "failed_requests": i.failed_requests,
        "users": i.users,
        "affected_users": i.affected_users,
        "slo_ms": i.slo_ms,
        "since": i.since,
        "until": i.until,
    }


def impact_from_dict(d: Json) -> Impact:
    return Impact(
        requests=int(d["requests"]),
        failed_requests=int(d["failed_requests"]),
        users=int(d["users"]),
        affected_users=int(d["affected_users"]),
        slo_ms=float(d["slo_ms"]),
        since=_opt_float(d.get("since")),
        until=_opt_float(d.get("until")),
    )


def event_to_dict(e: TimelineEvent) -> Json:
    return {
        "at": e.at,
        "kind": e.kind,
        "message": e.message,
        "author": e.author,
        "tags": list(e.tags),
        "data": e.data,
    }


def event_from_dict(d: Json) -> TimelineEvent:
    return TimelineEvent(
        at=float(d["at"]),
        kind=cast(EventKind, d["kind"]),
        message=str(d["message"]),
        author=d.get("author"),
        tags=tuple(str(t) for t in d.get("tags", ())),
        data=dict(d.get("data") or {}),
    )


# -- the body column ------------------------------------------------------------------------------


def body_to_json(incident: Incident) -> str:
    """What an incident knows beyond its indexed columns: the evidence and its cost."""
    return dumps(
        {
            "version": BODY_VERSION,
            "detections": [detection_to_dict(d) for d in incident.detections],
            "culprits": [culprit_to_dict(c) for c in incident.culprits],
            "triage": None if incident.triage is None else triage_to_dict(incident.triage),
            "impact": None if incident.impact is None else impact_to_dict(incident.impact),
            "plans": incident.plans,
        }
    )


Body = tuple[list[Detection], list[Culprit], Triage | None, Impact | None, dict[str, Any]]


def body_parts(text: str) -> Body:
    """Detections, culprits, triage, impact and plan evidence; a body written before plan
    evidence existed has none (``{}``)."""
    body = json.loads(text)
    triage, impact = body.get("triage"), body.get("impact")
    return (
        [detection_from_dict(d) for d in body.get("detections", ())],
        [culprit_from_dict(c) for c in body.get("culprits", ())],
        None if triage is None else triage_from_dict(triage),
        None if impact is None else impact_from_dict(impact),
        dict(body.get("plans") or {}),
    )


def body_from_json(
    text: str,
) -> tuple[list[Detection], list[Culprit], Triage | None, Impact | None]:
    detections, culprits, triage, impact, _plans = body_parts(text)
    return detections, culprits, triage, impact


# -- the whole incident (``--json``, the API, the postmortem) -------------------------------------


def incident_to_dict(incident: Incident) -> Json:
    """The whole incident; ``impact`` also carries its percentages (``null`` when unknown: no
    request data, or no user ids) and its sentence, for readers of the JSON."""
    impact: Json | None = None
    if incident.impact is not None:
        m = incident.impact
        impact = impact_to_dict(m)
        impact["requests_pct"] = m.requests_pct if m.measured else None
        impact["users_pct"] = m.users_pct if m.users_measured else None
        impact["summary"] = m.describe()
    return {
        "id": incident.id,
        "status": incident.status,
        "title": incident.title,
        "opened_at": incident.opened_at,
        "detected_at": incident.detected_at,
        "resolved_at": incident.resolved_at,
        "deploy_id": incident.deploy_id,
        "detections": [detection_to_dict(d) for d in incident.detections],
        "culprits": [culprit_to_dict(c) for c in incident.culprits],
        "triage": None if incident.triage is None else triage_to_dict(incident.triage),
        "impact": impact,
        "timeline": [event_to_dict(e) for e in incident.timeline],
        "plans": incident.plans,
    }


def incident_from_dict(d: Json) -> Incident:
    triage, impact = d.get("triage"), d.get("impact")
    return Incident(
        id=str(d["id"]),
        status=cast(Status, d["status"]),
        opened_at=float(d["opened_at"]),
        detected_at=float(d["detected_at"]),
        title=str(d["title"]),
        deploy_id=d.get("deploy_id"),
        detections=[detection_from_dict(x) for x in d.get("detections", ())],
        culprits=[culprit_from_dict(x) for x in d.get("culprits", ())],
        triage=None if triage is None else triage_from_dict(triage),
        impact=None if impact is None else impact_from_dict(impact),
        timeline=[event_from_dict(x) for x in d.get("timeline", ())],
        resolved_at=_opt_float(d.get("resolved_at")),
        plans=dict(d.get("plans") or {}),
    )


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
