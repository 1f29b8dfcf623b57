"""What a signed-in person with the write token can do from an incident's page: acknowledge it,
add a note, and roll back the deploy it blames (a dry run first, then a confirm).

Each action is a POSTed form checked by :func:`querywatch.web.auth.checked_form` (same origin,
write access, the session's CSRF token) and goes through the same functions as the CLI and the
API: :mod:`querywatch.incidents.service` and the environment's
:class:`~querywatch.respond.responder.Responder` with every rollback guard. A refusal is shown on
the incident's page; a success redirects back to it (so a reload does not act twice).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from querywatch.deploys import find_deploy
from querywatch.errors import ConfigError, InvalidTransition
from querywatch.incidents import service
from querywatch.respond.rollback import RollbackResult
from querywatch.web.auth import checked_form
from querywatch.web.pages.common import href, page
from querywatch.web.pages.incidents import incident_context
from querywatch.web.state import web_state
from querywatch.web.timerange import range_of

DEFAULT_BY = "dashboard"
MAX_NOTE = 4000
MAX_BY = 80


async def acknowledge(request: Request) -> Response:
    form = await checked_form(request)
    state = web_state(request)
    incident_id = request.path_params["incident_id"]

    def act() -> None:
        service.acknowledge(state.store, incident_id, by=_by(form), at=state.clock())

    return await _act(request, incident_id, act)


async def note(request: Request) -> Response:
    form = await checked_form(request)
    state = web_state(request)
    incident_id = request.path_params["incident_id"]
    text = str(form.get("text") or "")
    misleading = form.get("misleading") == "on"

    def act() -> None:
        if len(text) > MAX_NOTE:
            raise InvalidTransition(f"a note is at most {MAX_NOTE:,} characters")
        service.add_note(
            state.store, incident_id, text, by=_by(form), misleading=misleading, at=state.clock()
        )

    return await _act(request, incident_id, act)


async def rollback(request: Request) -> Response:
    """``step=dry_run`` shows what would run (and runs nothing); ``step=confirm`` runs it (still
    a dry run if the environment's ``rollback_dry_run`` setting says so)."""
    form = await checked_form(request)
    state = web_state(request)
    incident_id = request.path_params["incident_id"]
    confirm = form.get("step") == "confirm"
    force = form.get("force_unsafe_migration") == "on"

    def act() -> RollbackResult:
        incident = service.get_incident(state.store, incident_id)
        if state.responder_for is None:
            raise ConfigError(
                "this server has no rollback settings: start `querywatch serve` with "
                "rollback_command set for the environment (docs/respond.md)"
            )
        deploy = find_deploy(state.store, incident.deploy_id) if incident.deploy_id else None
        responder = state.responder_for(deploy.environment if deploy else state.environment)
        return responder.rollback(
            incident.id,
            by=_by(form),
            dry_run=None if confirm else True,
            force_unsafe_migration=force,
            now=state.clock(),
        )

    try:
        result = await run_in_threadpool(act)
    except InvalidTransition as exc:  # a guard said no (it is on the timeline too)
        return await _shown(request, incident_id, {"action_error": str(exc)}, 409)
    except ConfigError as exc:
        return await _shown(request, incident_id, {"action_error": str(exc)}, 400)
    if confirm:
        return _back(request, incident_id)
    return await _shown(
        request, incident_id, {"dry_run": result, "force_unsafe_migration": force}, 200
    )


async def _act(request: Request, incident_id: str, act: Any) -> Response:
    try:
        await run_in_threadpool(act)
    except InvalidTransition as exc:
        return await _shown(request, incident_id, {"action_error": str(exc)}, 409)
    return _back(request, incident_id)


async def _shown(
    request: Request, incident_id: str, extra: dict[str, Any], status: int
) -> Response:
    """The incident's page with an action's outcome on it."""
    state = web_state(request)
    rng = range_of(request)

    def build() -> dict[str, Any]:
        incident = service.get_incident(state.store, incident_id)
        return incident_context(state, rng, incident, **extra)

    context = await run_in_threadpool(build)
    return page(request, "pages/incident.html", context, status)


def _back(request: Request, incident_id: str) -> Response:
    path = f"/incidents/{quote(incident_id, safe='')}"
    return RedirectResponse(href(range_of(request), path), 303)


def _by(form: FormData) -> str:
    given = " ".join(str(form.get("by") or "").split())[:MAX_BY]
    return given or DEFAULT_BY
