"""The canary: the environment's stored rollout, and its live verdict while it runs.

The verdict is the one the rollout engines get from ``/api/canary/verdict``
(:mod:`querywatch.respond.canary_judge`): the canary release against the stable one, per query,
over the rollout's span so far.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from querywatch.errors import QuerywatchError
from querywatch.respond.canary_judge import judge, resolve, verdict_json
from querywatch.respond.canary_state import load_rollout
from querywatch.web.pages.common import page, readable
from querywatch.web.state import WebState

VERDICTS_SHOWN = 30
EVENTS_SHOWN = 30


def canary_page(request: Request) -> Response:
    state, _ = readable(request)
    return page(request, "pages/canary.html", canary_context(state))


def canary_context(state: WebState) -> dict[str, Any]:
    rollout = load_rollout(state.store, state.environment)
    live: dict[str, Any] | None = None
    live_error: str | None = None
    if rollout is not None and rollout.running:
        try:
            target = resolve(
                state.store,
                state.environment,
                canary=None,
                stable=None,
                since=None,
                until=None,
                now=state.clock(),
            )
            live = verdict_json(target, judge(state.store, target))
        except QuerywatchError as exc:  # no data yet, a release name the store refuses…
            live_error = str(exc)
    return {
        "environment": state.environment,
        "rollout": rollout,
        "live": live,
        "live_error": live_error,
        "verdicts": list(reversed(rollout.verdicts[-VERDICTS_SHOWN:])) if rollout else [],
        "events": list(reversed(rollout.events[-EVENTS_SHOWN:])) if rollout else [],
    }
