"""The canary endpoints of `querywatch serve`, for the rollout engines people run.

    GET  /api/canary/verdict   Argo Rollouts `web` metric provider (POST with a JSON body too):
                               ?environment=&canary=&stable=&since=&until=, all optional;
                               200 with the verdict and its numbers (``data.verdict``)
    POST /api/canary/flagger   Flagger `rollout` webhook: {name, namespace, phase, checksum,
                               metadata: {environment?, canary?, stable?, since?, until?,
                               require?, token?}}; 200 while the canary passes or is not judged
                               yet, 412 with the reason when the verdict is "fail" (with
                               require=pass, for a confirm-promotion hook: 200 only on "pass")
    GET  /api/canary/status    the environment's stored rollout (?environment=)

Which releases and span: :mod:`querywatch.respond.canary_judge`. Flagger cannot send headers
(fluxcd/flagger#1192), so its webhook may carry the API token as ``metadata.token`` instead of
the ``Authorization`` header (:func:`querywatch.web.auth.grant_body_token`). See docs/api.md.

Each endpoint returns a status and an envelope; :mod:`querywatch.web.api` routes, authorizes and
parses the body, and turns a :class:`BadCanaryRequest` into a 400, NotFound into a 404.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from querywatch.deploys import check_environment
from querywatch.envelope import Envelope, failure, success
from querywatch.errors import QuerywatchError
from querywatch.respond.canary_judge import judge, resolve, verdict_json
from querywatch.respond.canary_state import load_rollout
from querywatch.store.base import Store
from querywatch.timespec import parse_time

VERDICT_PARAMS = ("environment", "canary", "stable", "since", "until")
FLAGGER_FIELDS = ("name", "namespace", "phase", "checksum", "metadata")
#: The status a failing canary gets: any non-2xx halts Flagger's advance and counts a failed
#: check; 412 says "the condition to go on does not hold", not that the request was wrong.
FAIL_STATUS = 412

Answer = tuple[int, Envelope]


class BadCanaryRequest(QuerywatchError):
    """A parameter or field the canary endpoints cannot use (a 400)."""


class CanaryEndpoints:
    """The canary endpoints over one store; ``environment`` when a request names none."""

    def __init__(self, store: Store, environment: str, clock: Callable[[], float]) -> None:
        self.store = store
        self.environment = environment
        self.clock = clock

    def verdict(self, query: Mapping[str, list[str]], fields: Mapping[str, Any] | None) -> Answer:
        """For Argo's web provider: parameters in the query (GET) or a JSON object (POST)."""
        if fields is not None:
            if query:
                raise BadCanaryRequest("send the parameters in the query or the body, not both")
            texts = {name: _text(fields, name, "field") for name in fields}
            params = {name: value for name, value in texts.items() if value}
        else:
            params = {name: values[-1] for name, values in query.items() if values[-1]}
        _known(params, VERDICT_PARAMS, "parameter")
        return 200, success(self._judge(params))

    def flagger(self, fields: Mapping[str, Any]) -> Answer:
        """Flagger's rollout hook: 2xx while the canary passes or is not judged yet, 412 (the
        reason in the body, which Flagger logs with the failed check) when it fails. ``require:
        pass`` (a confirm-promotion hook, which holds the promotion until it gets 200) answers
        200 only on a pass."""
        _known(fields, FLAGGER_FIELDS, "field")
        metadata = fields.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise BadCanaryRequest('field "metadata" must be an object of strings')
        params: dict[str, str] = {}
        for name in VERDICT_PARAMS:
            value = _text(metadata, name, "metadata")
            if value:
                params[name] = value
        require = _text(metadata, "require", "metadata") or "no_fail"
        if require not in ("pass", "no_fail"):
            raise BadCanaryRequest(f'metadata "require" is "pass" or "no_fail", not {require!r}')
        data = self._judge(params)
        for name in ("name", "namespace", "phase", "checksum"):
            data[name] = _text(fields, name, "field")
        verdict, canary = data["verdict"], data["canary_release"]
        if verdict == "fail" or (require == "pass" and verdict != "pass"):
            if verdict == "fail":
                code, what = "canary_failed", f"fails against {data['stable_release']}"
            else:
                code, what = "canary_not_passed", "has not passed yet"
            # The error envelope of every endpoint (docs/json.md): the reason is the message.
            return FAIL_STATUS, failure(code, f"canary {canary} {what}: {data['reason']}")
        return 200, success(data)

    def status(self, query: Mapping[str, list[str]]) -> Answer:
        params = {name: values[-1] for name, values in query.items()}
        _known(params, ("environment",), "parameter")
        environment = params.get("environment") or self.environment
        check_environment(environment)
        rollout = load_rollout(self.store, environment)
        return 200, success(None if rollout is None else rollout.to_json())

    def _judge(self, params: Mapping[str, str]) -> dict[str, Any]:
        now = self.clock()
        environment = params.get("environment") or self.environment
        check_environment(environment)
        since, until = params.get("since"), params.get("until")
        target = resolve(
            self.store,
            environment,
            canary=params.get("canary"),
            stable=params.get("stable"),
            since=parse_time(since, now=now, option="since") if since else None,
            until=parse_time(until, now=now, option="until") if until else None,
            now=now,
        )
        return verdict_json(target, judge(self.store, target))


def body_token(body: bytes) -> str | None:
    """``metadata.token`` of a Flagger payload, or None (not JSON, no token)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    metadata = data.get("metadata") if isinstance(data, dict) else None
    token = metadata.get("token") if isinstance(metadata, dict) else None
    return token if isinstance(token, str) else None


def _known(params: Mapping[str, Any], known: tuple[str, ...], what: str) -> None:
    unknown = sorted(set(params) - set(known))
    if unknown:
        shown = unknown[0][:80].encode("unicode_escape").decode("ascii")
        raise BadCanaryRequest(f"unknown {what} {shown!r} (known: {', '.join(known)})")


def _text(fields: Mapping[str, Any], name: str, what: str) -> str | None:
    value = fields.get(name)
    if value is None or isinstance(value, str):
        return value
    raise BadCanaryRequest(f'{what} "{name}" must be a string')
