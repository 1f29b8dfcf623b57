"""The deploys in the range with what each did, and one deploy's page."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from querywatch.deploys import find_deploy
from querywatch.errors import NotFound
from querywatch.incidents.model import Incident
from querywatch.incidents.repository import list_incidents
from querywatch.records import DeployMarker
from querywatch.web.pages.common import db_time_around, page, readable
from querywatch.web.pages.effect import deploy_effect
from querywatch.web.state import WebState
from querywatch.web.timerange import TimeRange

PER_PAGE = 10
INCIDENTS_READ = 500


def deploys_page(request: Request) -> Response:
    state, rng = readable(request)
    text = request.query_params.get("page", "1")
    number = int(text) if text.isascii() and text.isdigit() and 0 < int(text) < 10**6 else 1
    return page(request, "pages/deploys.html", deploys_context(state, rng, number))


def deploys_context(state: WebState, rng: TimeRange, number: int) -> dict[str, Any]:
    now = state.clock()
    every = list(reversed(state.store.deploys(rng.since, rng.until, state.environment)))
    shown = every[(number - 1) * PER_PAGE : number * PER_PAGE]
    blamed = _incidents_by_deploy(state)
    rows = [
        {
            "deploy": d,
            "effect": deploy_effect(state.store, d, now, environment=state.environment, full=False),
            "incidents": blamed.get(d.id, []),
        }
        for d in shown
    ]
    return {
        "rows": rows,
        "total": len(every),
        "page_number": number,
        "pages": max(1, -(-len(every) // PER_PAGE)),
    }


def deploy_page(request: Request) -> Response:
    state, rng = readable(request)
    deploy_id = request.path_params["deploy_id"]
    deploy = find_deploy(state.store, deploy_id)
    if deploy is None:
        raise NotFound(f"no deploy {deploy_id} (the deploys page lists them)")
    return page(request, "pages/deploy.html", deploy_context(state, rng, deploy))


def deploy_context(state: WebState, rng: TimeRange, deploy: DeployMarker) -> dict[str, Any]:
    now = state.clock()
    effect = deploy_effect(state.store, deploy, now, environment=state.environment)
    ph = effect.phases
    since = ph.before_start if ph else deploy.started_at - 1800
    until = min(ph.after_end if ph else deploy.started_at + 900, now) + 300
    previous = _previous(state, deploy)
    return {
        "deploy": deploy,
        "previous": previous,
        "effect": effect,
        "chart": db_time_around(state, "Database time per second around the deploy", since, until),
        "incidents": _incidents_by_deploy(state).get(deploy.id, []),
    }


def _previous(state: WebState, deploy: DeployMarker) -> DeployMarker | None:
    earlier = [
        d
        for d in state.store.deploys(until=deploy.started_at, environment=deploy.environment)
        if d.id != deploy.id
    ]
    return earlier[-1] if earlier else None


def _incidents_by_deploy(state: WebState) -> dict[str, list[Incident]]:
    found: dict[str, list[Incident]] = {}
    for i in list_incidents(state.store, limit=INCIDENTS_READ):
        if i.deploy_id:
            found.setdefault(i.deploy_id, []).append(i)
    return found
