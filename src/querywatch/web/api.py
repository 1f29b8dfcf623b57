"""The JSON API of `querywatch serve`: Starlette routes over the deploy and canary rules.

    GET  /healthz                     public: is the store reachable?
    GET  /api/deploys                 list markers (?environment=&since=&until=)
    GET  /api/top                     fingerprints ranked (?since=&until=&sort=&limit=&release=)
    POST /api/deploys                 start a deploy: {"version", "commit"?, "migration"?, ...}
    POST /api/deploys/{id}/finish     finish it
    POST /api/incidents/{id}/rollback roll back the deploy an incident blames (guarded; see
                                      docs/respond.md): {"dry_run"?, "by"?, ...}
    GET  /api/canary/verdict          a canary's verdict (Argo Rollouts web metric provider)
    POST /api/canary/flagger          Flagger's rollout webhook: non-2xx when the canary fails
    GET  /api/canary/status           the stored canary rollout (see :mod:`querywatch.web.canary`)

Each endpoint is a plain function from an :class:`ApiCall` to an :class:`Answer` (a status and an
envelope), run in a worker thread since the store blocks; :func:`api_routes` wraps them with the
access check (:mod:`querywatch.web.auth`), the JSON Content-Type rule and the mapping of domain
errors to statuses. The deploy rules live in :mod:`querywatch.deploys`; this module translates.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from querywatch.deploys import (
    check_environment,
    find_deploy,
    finish_deploy,
    marker_to_json,
    start_deploy,
)
from querywatch.envelope import Envelope, encode, failure, success
from querywatch.errors import InvalidTransition, NotFound, QuerywatchError, StoreError
from querywatch.incidents.service import get_incident
from querywatch.render import summary_to_json
from querywatch.timespec import parse_time
from querywatch.web.auth import grant_body_token, require_read, require_write
from querywatch.web.canary import CanaryEndpoints, body_token
from querywatch.web.state import WebState, web_state

#: A deploy marker is a few hundred bytes; anything near this is a mistake (pages' forms too).
MAX_BODY_BYTES = 64 * 1024
#: A client that stops sending its body does not hold a worker: it gets a 408 after this.
BODY_TIMEOUT_S = 30.0

log = logging.getLogger("querywatch.web")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    411: "length_required",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    421: "misdirected_request",
    500: "internal_error",
    501: "not_implemented",
    503: "store_unavailable",
}
_START_FIELDS = ("version", "commit", "environment", "author", "id", "migration")
_LIST_PARAMS = ("environment", "since", "until")
_TOP_PARAMS = ("since", "until", "sort", "limit", "release")
_TOP_SORTS = ("total", "mean", "calls", "p95")
MAX_TOP_LIMIT = 1000
_ROLLBACK_FIELDS = ("dry_run", "by", "force_unsafe_migration")


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    envelope: Envelope
    headers: tuple[tuple[str, str], ...] = field(default=())


def error(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Answer:
    """An error answer whose code follows from the status."""
    return Answer(status, failure(_CODES.get(status, "error"), message), headers)


def json_response(answer: Answer) -> Response:
    """The envelope as the one HTTP shape every API reply has (never cached)."""
    headers = {"Cache-Control": "no-store", **dict(answer.headers)}
    return Response(encode(answer.envelope), answer.status, headers, "application/json")


class Refused(Exception):
    """Stops a request early with this answer (a bad body, a bad parameter…)."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.envelope["error"]["message"])
        self.answer = answer


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One request as an endpoint sees it: the server's state, the query, the body, and the id
    the path names (a deploy's for finish, an incident's for a rollback), percent-decoded."""

    state: WebState
    query: dict[str, list[str]]
    body: bytes
    path_id: str | None = None


Handler = Callable[[ApiCall], Answer]


# -- endpoints ------------------------------------------------------------------------------------


def health(call: ApiCall) -> Answer:
    call.state.store.latest_deploy()  # a read: StoreError becomes 503
    return Answer(200, success({"status": "ok"}))


def list_deploys(call: ApiCall) -> Answer:
    params = _params(call, _LIST_PARAMS)
    now = call.state.clock()
    since = parse_time(params["since"], now=now, option="since") if "since" in params else None
    until = parse_time(params["until"], now=now, option="until") if "until" in params else None
    environment = params.get("environment")
    if environment is not None:
        check_environment(environment)
    markers = call.state.store.deploys(since=since, until=until, environment=environment)
    return Answer(200, success([marker_to_json(m) for m in markers]))


def top(call: ApiCall) -> Answer:
    """``querywatch top`` over HTTP; ``release`` ranks one release's calls (a canary's)."""
    params = _params(call, _TOP_PARAMS)
    now = call.state.clock()
    since = parse_time(params["since"], now=now, option="since") if "since" in params else None
    until = parse_time(params["until"], now=now, option="until") if "until" in params else None
    sort = params.get("sort", "total")
    if sort not in _TOP_SORTS:
        shown = printable(sort)
        raise Refused(error(400, f"sort={shown!r}: use one of {', '.join(_TOP_SORTS)}"))
    text = params.get("limit", "20")
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_TOP_LIMIT):
        raise Refused(
            error(400, f"limit={printable(text)!r}: a whole number from 1 to {MAX_TOP_LIMIT}")
        )
    rows = call.state.store.top(
        since=since,
        until=until,
        sort=sort,  # type: ignore[arg-type]  # checked against _TOP_SORTS above
        limit=int(text),
        release=params.get("release"),
    )
    return Answer(200, success([summary_to_json(r) for r in rows]))


def start(call: ApiCall) -> Answer:
    fields = _json_object(call, required=True)
    _known_fields(fields, _START_FIELDS)
    if fields.get("version") is None:
        raise Refused(error(400, 'missing field "version": send {"version": "1.2.3", ...}'))
    text = {name: _string(fields, name) for name in _START_FIELDS}
    marker = start_deploy(
        call.state.store,
        text["version"] or "",
        commit=text["commit"],
        environment=call.state.environment if text["environment"] is None else text["environment"],
        author=text["author"],
        deploy_id=text["id"],
        migration=text["migration"],
        at=call.state.clock(),
    )
    return Answer(201, success(marker_to_json(marker)))


def finish(call: ApiCall) -> Answer:
    if _json_object(call, required=False):
        raise Refused(error(400, "finish takes no fields: send an empty body or {}"))
    marker = finish_deploy(call.state.store, deploy_id=call.path_id, at=call.state.clock())
    return Answer(200, success(marker_to_json(marker)))


def rollback(call: ApiCall) -> Answer:
    """Roll back through the guards: 200 with the outcome (a failed command too), 404 for an
    unknown incident, 409 when a guard refuses, 400 when no rollback is configured."""
    fields = _json_object(call, required=False)
    _known_fields(fields, _ROLLBACK_FIELDS)
    dry_run, force = _bool(fields, "dry_run"), _bool(fields, "force_unsafe_migration")
    by = _string(fields, "by")
    state = call.state
    incident = get_incident(state.store, call.path_id or "")
    if state.responder_for is None:
        raise Refused(error(400, "no rollback configured: this server has no rollback settings"))
    deploy = find_deploy(state.store, incident.deploy_id) if incident.deploy_id else None
    responder = state.responder_for(deploy.environment if deploy else state.environment)
    result = responder.rollback(
        incident.id,
        by=by or "api",
        dry_run=dry_run,
        force_unsafe_migration=bool(force),
        now=state.clock(),
    )
    return Answer(200, success(result.to_dict()))


# The canary endpoints: querywatch.web.canary.


def _canary(call: ApiCall) -> CanaryEndpoints:
    state = call.state
    return CanaryEndpoints(state.store, state.environment, state.clock)


def canary_verdict(call: ApiCall) -> Answer:
    fields = _json_object(call, required=False) if call.body.strip() else None
    return Answer(*_canary(call).verdict(call.query, fields))


def canary_flagger(call: ApiCall) -> Answer:
    return Answer(*_canary(call).flagger(_json_object(call, required=True)))


def canary_status(call: ApiCall) -> Answer:
    return Answer(*_canary(call).status(call.query))


# -- routing --------------------------------------------------------------------------------------

READ, WRITE, PUBLIC = "read", "write", "public"
Methods = Mapping[str, tuple[Handler, str]]


def api_routes() -> list[BaseRoute]:
    """The API's routes; anything else under /api is a 404 envelope (the app's 404 handler)."""
    return [
        _route("/healthz", {"GET": (health, PUBLIC)}),
        _route("/api/deploys", {"GET": (list_deploys, READ), "POST": (start, WRITE)}),
        _route("/api/deploys/{path_id:path}/finish", {"POST": (finish, WRITE)}),
        _route("/api/top", {"GET": (top, READ)}),
        _route("/api/incidents/{path_id:path}/rollback", {"POST": (rollback, WRITE)}),
        _route(
            "/api/canary/verdict", {"GET": (canary_verdict, READ), "POST": (canary_verdict, READ)}
        ),
        # Flagger cannot send headers (fluxcd/flagger#1192): its token may come as metadata.token.
        _route("/api/canary/flagger", {"POST": (canary_flagger, READ)}, body_token=True),
        _route("/api/canary/status", {"GET": (canary_status, READ)}),
    ]


def _route(path: str, methods: Methods, *, body_token: bool = False) -> Route:
    return Route(path, _endpoint(methods, body_token=body_token), methods=list(methods))


def _endpoint(methods: Methods, *, body_token: bool) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        handler, access = methods["GET" if request.method == "HEAD" else request.method]
        path_id = request.path_params.get("path_id")
        if path_id is not None and not path_id.strip("/"):
            return json_response(error(404, f"no such endpoint: {request.url.path}"))
        body = await read_body(request)
        if body_token:
            _grant_from_body(request, body)
        if access == WRITE:
            require_write(request)  # NotSignedIn/Forbidden: the app's handlers answer 401/403
        elif access == READ:
            require_read(request)
        if request.method == "POST":
            try:  # before the body is used: an empty form POST is still refused
                _require_json(request.headers)
            except Refused as refused:
                return json_response(refused.answer)
        query = parse_qs(request.url.query, keep_blank_values=True)
        call = ApiCall(web_state(request), query, body, path_id)
        return json_response(await run_in_threadpool(answer, handler, call))

    return endpoint


def answer(handler: Handler, call: ApiCall) -> Answer:
    """``handler``'s answer, with domain errors turned into their statuses (never a traceback
    to the client; the server log gets the internal ones)."""
    try:
        return handler(call)
    except Refused as refused:
        return refused.answer
    except NotFound as exc:
        return error(404, str(exc))
    except InvalidTransition as exc:
        return error(409, str(exc))
    except StoreError as exc:  # where the store lives is the operator's business, not CI's
        log.error("store unavailable: %s", exc)
        return error(503, "the store is unavailable: see the server log")
    except QuerywatchError as exc:  # InvalidDeploy, a bad time (ConfigError), BadCanaryRequest…
        return error(400, str(exc))
    except Exception:
        log.exception("internal error in %s", handler.__name__)
        return error(500, "internal error: see the server log")


async def read_body(request: Request) -> bytes:
    """The request body; the app has already refused chunked and oversized ones. A client that
    stalls gets a 408 instead of holding the request open."""
    try:
        with anyio.fail_after(BODY_TIMEOUT_S):
            return await request.body()
    except TimeoutError:
        raise Refused(error(408, f"the body did not arrive within {BODY_TIMEOUT_S:g} s")) from None


def _grant_from_body(request: Request, body: bytes) -> None:
    token = body_token(body) if "authorization" not in request.headers else None
    if token is not None:
        grant_body_token(request, token)


def _params(call: ApiCall, known: tuple[str, ...]) -> dict[str, str]:
    unknown = sorted(set(call.query) - set(known))
    if unknown:
        raise Refused(error(400, f"unknown parameter {unknown[0]!r} (known: {', '.join(known)})"))
    return {name: values[-1] for name, values in call.query.items()}


def _known_fields(fields: Mapping[str, Any], known: tuple[str, ...]) -> None:
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise Refused(error(400, f"unknown field {unknown[0]!r} (known: {', '.join(known)})"))


def _require_json(headers: Mapping[str, str]) -> None:
    """Every POST says ``Content-Type: application/json``, with a body or without one: a browser
    sends that type cross-site only after a CORS preflight, which this server never grants."""
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        shown = printable(content_type) or "none"
        raise Refused(
            error(
                415,
                f"Content-Type must be application/json (got {shown}), on every POST, "
                "even one without a body",
            )
        )


# C0 and C1 control characters (and DEL) as \xNN: a request line can carry escape sequences that
# would rewrite the operator's terminal or forge a log line.
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}


def escape_controls(text: str) -> str:
    """``text`` with control characters written as ``\\xNN``, fit for one log line."""
    return text.translate(_CONTROLS)


def printable(text: str, limit: int = 80) -> str:
    """A header value fit for a one-line message: control characters escaped, cut short."""
    shown = text[:limit].encode("unicode_escape").decode("ascii")
    return shown + ("…" if len(text) > limit else "")


def _json_object(call: ApiCall, *, required: bool) -> dict[str, Any]:
    if not call.body.strip():
        if required:
            raise Refused(error(400, 'empty body: send a JSON object such as {"version": "1.2.3"}'))
        return {}
    try:
        data = json.loads(call.body, parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise Refused(error(400, "malformed JSON: the body is not UTF-8")) from None
    except json.JSONDecodeError as exc:
        raise Refused(
            error(400, f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
        ) from None
    except RecursionError:  # [[[[… deeper than Python's stack: the body is not a deploy
        raise Refused(error(400, "malformed JSON: nested too deeply")) from None
    except ValueError as exc:  # an integer longer than Python converts, NaN or Infinity
        raise Refused(error(400, f"malformed JSON: {_first_clause(exc)}")) from None
    if not isinstance(data, dict):
        raise Refused(error(400, f"the body must be a JSON object, not {_json_type(data)}"))
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _first_clause(exc: ValueError) -> str:
    """The reason without Python's advice (``use sys.set_int_max_str_digits()…``)."""
    return str(exc).split(";")[0].strip() or "a value Python cannot read"


def _string(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None or isinstance(value, str):
        return value
    raise Refused(error(400, f'field "{name}" must be a string, not {_json_type(value)}'))


def _bool(fields: Mapping[str, Any], name: str) -> bool | None:
    value = fields.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise Refused(error(400, f'field "{name}" must be true or false, not {_json_type(value)}'))


def _json_type(value: object) -> str:
    """The JSON name of a decoded value's type, as the client wrote it."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "a string" if isinstance(value, str) else "null"
