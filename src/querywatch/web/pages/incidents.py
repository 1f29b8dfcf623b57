"""The incidents in the range, and one incident: timeline, culprits, impact, evidence, actions."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from querywatch.incidents.evidence import PlanEvidence
from querywatch.incidents.model import STATUSES, Incident, Status
from querywatch.incidents.repository import list_incidents
from querywatch.incidents.service import get_incident
from querywatch.plans.model import Plan
from querywatch.web.charts import Marker
from querywatch.web.pages.common import db_time_around, page, readable
from querywatch.web.state import WebState
from querywatch.web.timerange import TimeRange

LIST_LIMIT = 200
UNRESOLVED: tuple[Status, ...] = ("open", "acknowledged", "mitigated")
FILTERS = ("all", "unresolved", *STATUSES)


def incidents_page(request: Request) -> Response:
    state, rng = readable(request)
    wanted = request.query_params.get("status", "all")
    status = wanted if wanted in FILTERS else "all"
    if status == "unresolved":  # whenever they were opened: what is still on someone's plate
        found = list_incidents(state.store, status=UNRESOLVED, limit=LIST_LIMIT)
    elif status == "all":
        found = list_incidents(state.store, since=rng.since, limit=LIST_LIMIT)
    else:
        found = list_incidents(
            state.store,
            status=status,  # type: ignore[arg-type]  # one of STATUSES, checked above
            since=rng.since,
            limit=LIST_LIMIT,
        )
    found = [i for i in found if status == "unresolved" or i.opened_at < rng.until]
    unresolved_before = [
        i
        for i in list_incidents(state.store, status=UNRESOLVED, limit=LIST_LIMIT)
        if i.opened_at < rng.since
    ]
    return page(
        request,
        "pages/incidents.html",
        {
            "incidents": found,
            "status": status,
            "filters": FILTERS,
            "older_unresolved": len(unresolved_before) if status != "unresolved" else 0,
        },
    )


def incident_page(request: Request) -> Response:
    state, rng = readable(request)
    incident = get_incident(state.store, request.path_params["incident_id"])
    return page(request, "pages/incident.html", incident_context(state, rng, incident))


def incident_context(
    state: WebState, rng: TimeRange, incident: Incident, **extra: Any
) -> dict[str, Any]:
    """What the incident page shows; ``extra`` adds an action's outcome (a dry run, an error)."""
    now = state.clock()
    since = incident.detected_at - 1800
    until = min((incident.resolved_at or now) + 600, now)
    until = max(until, incident.detected_at + 600)
    markers = [
        Marker(e.at, incident.id, f"{e.kind}: {e.message}", None, "incident")
        for e in incident.timeline
        if e.kind in ("detected", "mitigated", "resolved", "action")
    ]
    plans = {
        fp: _plan_evidence(data) for fp, data in incident.plans.items() if isinstance(data, dict)
    }
    return {
        "incident": incident,
        "now": now,
        "chart": db_time_around(
            state, "Database time per second around the incident", since, until, markers
        ),
        "plans": plans,
        "rollback_configured": state.responder_for is not None,
        "can_ack": incident.status == "open",
        **extra,
    }


def _plan_evidence(data: dict[str, Any]) -> dict[str, Any]:
    ev = PlanEvidence.from_dict(data)
    before = (ev.against or {}).get("plan")
    return {
        "evidence": ev,
        "plan": Plan.from_dict(ev.plan) if ev.plan else None,
        "before": Plan.from_dict(before) if before else None,
    }
