"""The deploy API, independent of the HTTP server that carries it.

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

:class:`DeployApi` maps (method, target, headers, body) to a status and an envelope, so the routing,
auth and validation are tested without sockets and a later dashboard can reuse the server. The
deploy rules themselves live in :mod:`querywatch.deploys`; this module only translates.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from querywatch.config import DEFAULT_ENVIRONMENT
from querywatch.deploys import (
    check_environment,
    find_deploy,
    finish_deploy,
    marker_to_json,
    start_deploy,
)
from querywatch.envelope import Envelope, failure, success
from querywatch.errors import (
    InvalidTransition,
    NotFound,
    QuerywatchError,
    StoreError,
)
from querywatch.incidents.service import get_incident
from querywatch.render import summary_to_json
from querywatch.store.base import Store
from querywatch.timespec import parse_time
from querywatch.web.canary import CanaryEndpoints, body_token

if TYPE_CHECKING:
    from querywatch.respond.responder import Responder

#: A deploy marker is a few hundred bytes; anything near this is a mistake.
MAX_BODY_BYTES = 64 * 1024

log = logging.getLogger("querywatch.web")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
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
class Response:
    status: int
    envelope: Envelope
    headers: tuple[tuple[str, str], ...] = field(default=())


def error(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    """An error response whose code follows from the status."""
    return Response(status, failure(_CODES.get(status, "error"), message), headers)


class _Refused(Exception):
    """Stops a request early with this response (bad auth, bad body…)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.envelope["error"]["message"])
        self.response = response


@dataclass(frozen=True, slots=True)
class _Request:
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    deploy_id: str | None = None  # the id the path names (an incident's, for a rollback)


_Handler = Callable[["DeployApi", _Request], Response]


class DeployApi:
    """The deploy endpoints over one store, behind a bearer token (``None``: no auth).

    ``headers`` given to :meth:`handle` have lower-case names. The clock is injectable so tests
    can pin deploy times.
    """

    def __init__(
        self,
        store: Store,
        token: str | None,
        *,
        environment: str = DEFAULT_ENVIRONMENT,
        clock: Callable[[], float] = time.time,
        responder_for: Callable[[str], Responder] | None = None,
    ) -> None:
        self.store = store
        self._token = token.encode() if token is not None else None
        self.environment = environment
        self.clock = clock
        self.responder_for = responder_for  # environment -> its rollback settings
        self._canary = CanaryEndpoints(store, environment, lambda: self.clock())

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Response:
        parts = urlsplit(target)
        path = parts.path.rstrip("/") or "/"
        try:  # before anything else, so another site learns nothing, not even which paths exist
            self._check_browser_safety(headers)
        except _Refused as refused:
            return refused.response
        routes, deploy_id = _route(path)
        if routes is None:
            return error(404, f"no such endpoint: {path}")
        # HEAD is GET without the body (the server drops it), for health checkers that use it.
        handler = routes.get("GET" if method == "HEAD" else method)
        if handler is None:
            allowed = ", ".join(sorted(routes))
            return error(
                405, f"{method} is not allowed on {path} (use {allowed})", (("Allow", allowed),)
            )
        query = parse_qs(parts.query, keep_blank_values=True)
        try:
            if path not in _PUBLIC:
                self._authorize(headers, path, body)
            if method == "POST":
                _require_json(headers)  # before the body: an empty form POST is still refused
            return handler(self, _Request(query, headers, body, deploy_id))
        except _Refused as refused:
            return refused.response
        except NotFound as exc:
            return error(404, str(exc))
        except InvalidTransition as exc:
            return error(409, str(exc))
        except StoreError as exc:  # where the store lives is the operator's business, not CI's
            log.error("store unavailable: %s", exc)
            return error(503, "the store is unavailable: see the server log")
        except QuerywatchError as exc:  # InvalidDeploy, a bad time (ConfigError)…
            return error(400, str(exc))
        except Exception:
            log.exception("internal error on %s %s", method, escape_controls(path))
            return error(500, "internal error: see the server log")

    def _check_browser_safety(self, headers: Mapping[str, str]) -> None:
        """Refuse what only a browser tricked by another site would send.

        A page on another site can make a browser POST a form here (no custom headers, a form
        Content-Type) and, through DNS rebinding, read replies under its own host name. So a
        request whose ``Origin`` is another origin is refused, and without a token (``--no-auth``,
        where the browser needs no credentials) the ``Host`` must name a loopback address.
        """
        host = headers.get("host")
        # A browser always sends Host (the rebinding site's name); a client without one
        # (HTTP/1.0, a direct call of handle) is not a browser.
        if self._token is None and host is not None and not _loopback_host(host):
            shown = _printable(host) or "none"
            raise _Refused(
                error(
                    421,
                    f"Host '{shown}' is not a loopback name: without a token this server "
                    "answers only requests addressed to localhost, 127.0.0.1 or [::1]",
                )
            )
        origin = headers.get("origin")
        if origin is not None and not _same_origin(origin, host or ""):
            raise _Refused(
                error(
                    403,
                    f"cross-origin request refused: Origin '{_printable(origin)}' is not "
                    "this server",
                )
            )

    def _authorize(self, headers: Mapping[str, str], path: str = "", body: bytes = b"") -> None:
        if self._token is None:
            return
        given = headers.get("authorization")
        if given is None and path in _BODY_TOKEN:  # Flagger sends no headers: metadata.token
            token = body_token(body)
            if token is not None:
                if not hmac.compare_digest(token.strip().encode(), self._token):
                    raise _Refused(error(403, "the token is not valid for this server"))
                return
        scheme, _, credentials = (given or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            where = " (or, from Flagger, metadata.token)" if path in _BODY_TOKEN else ""
            raise _Refused(
                error(
                    401,
                    f"missing bearer token: send the header 'Authorization: Bearer <token>'{where}",
                    (("WWW-Authenticate", 'Bearer realm="querywatch"'),),
                )
            )
        if not hmac.compare_digest(credentials.strip().encode(), self._token):
            raise _Refused(error(403, "the bearer token is not valid for this server"))

    # -- endpoints ------------------------------------------------------------------------------

    def health(self, request: _Request) -> Response:
        self.store.latest_deploy()  # a read: StoreError becomes 503
        return Response(200, success({"status": "ok"}))

    def list_deploys(self, request: _Request) -> Response:
        unknown = sorted(set(request.query) - set(_LIST_PARAMS))
        if unknown:
            raise _Refused(
                error(400, f"unknown parameter {unknown[0]!r} (known: {', '.join(_LIST_PARAMS)})")
            )
        params = {name: values[-1] for name, values in request.query.items()}
        now = self.clock()
        since = parse_time(params["since"], now=now, option="since") if "since" in params else None
        until = parse_time(params["until"], now=now, option="until") if "until" in params else None
        environment = params.get("environment")
        if environment is not None:
            check_environment(environment)
        markers = self.store.deploys(since=since, until=until, environment=environment)
        return Response(200, success([marker_to_json(m) for m in markers]))

    def top(self, request: _Request) -> Response:
        """``querywatch top`` over HTTP; ``release`` ranks one release's calls (a canary's)."""
        unknown = sorted(set(request.query) - set(_TOP_PARAMS))
        if unknown:
            raise _Refused(
                error(400, f"unknown parameter {unknown[0]!r} (known: {', '.join(_TOP_PARAMS)})")
            )
        params = {name: values[-1] for name, values in request.query.items()}
        now = self.clock()
        since = parse_time(params["since"], now=now, option="since") if "since" in params else None
        until = parse_time(params["until"], now=now, option="until") if "until" in params else None
        sort = params.get("sort", "total")
        if sort not in _TOP_SORTS:
            shown = _printable(sort)
            raise _Refused(error(400, f"sort={shown!r}: use one of {', '.join(_TOP_SORTS)}"))
        text = params.get("limit", "20")
        if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_TOP_LIMIT):
            raise _Refused(
                error(400, f"limit={_printable(text)!r}: a whole number from 1 to {MAX_TOP_LIMIT}")
            )
        rows = self.store.top(
            since=since,
            until=until,
            sort=sort,  # type: ignore[arg-type]  # checked against _TOP_SORTS above
            limit=int(text),
            release=params.get("release"),
        )
        return Response(200, success([summary_to_json(r) for r in rows]))

    def start(self, request: _Request) -> Response:
        fields = _json_object(request, required=True)
        unknown = sorted(set(fields) - set(_START_FIELDS))
        if unknown:
            raise _Refused(
                error(400, f"unknown field {unknown[0]!r} (known: {', '.join(_START_FIELDS)})")
            )
        if fields.get("version") is None:
            raise _Refused(error(400, 'missing field "version": send {"version": "1.2.3", ...}'))
        text = {name: _string(fields, name) for name in _START_FIELDS}
        marker = start_deploy(
            self.store,
            text["version"] or "",
            commit=text["commit"],
            environment=self.environment if text["environment"] is None else text["environment"],
            author=text["author"],
            deploy_id=text["id"],
            migration=text["migration"],
            at=self.clock(),
        )
        return Response(201, success(marker_to_json(marker)))

    def finish(self, request: _Request) -> Response:
        fields = _json_object(request, required=False)
        if fields:
            raise _Refused(error(400, "finish takes no fields: send an empty body or {}"))
        marker = finish_deploy(self.store, deploy_id=request.deploy_id, at=self.clock())
        return Response(200, success(marker_to_json(marker)))

    def rollback(self, request: _Request) -> Response:
        """Roll back through the guards: 200 with the outcome (a failed command too), 404 for an
        unknown incident, 409 when a guard refuses, 400 when no rollback is configured."""
        fields = _json_object(request, required=False)
        unknown = sorted(set(fields) - set(_ROLLBACK_FIELDS))
        if unknown:
            raise _Refused(
                error(400, f"unknown field {unknown[0]!r} (known: {', '.join(_ROLLBACK_FIELDS)})")
            )
        dry_run, force = _bool(fields, "dry_run"), _bool(fields, "force_unsafe_migration")
        by = _string(fields, "by")
        incident = get_incident(self.store, request.deploy_id or "")
        if self.responder_for is None:
            raise _Refused(
                error(400, "no rollback configured: this server has no rollback settings")
            )
        deploy = find_deploy(self.store, incident.deploy_id) if incident.deploy_id else None
        responder = self.responder_for(deploy.environment if deploy else self.environment)
        result = responder.rollback(
            incident.id,
            by=by or "api",
            dry_run=dry_run,
            force_unsafe_migration=bool(force),
            now=self.clock(),
        )
        return Response(200, success(result.to_dict()))

    # The canary endpoints: querywatch.web.canary.

    def canary_verdict(self, request: _Request) -> Response:
        fields = _json_object(request, required=False) if request.body.strip() else None
        return Response(*self._canary.verdict(request.query, fields))

    def canary_flagger(self, request: _Request) -> Response:
        return Response(*self._canary.flagger(_json_object(request, required=True)))

    def canary_status(self, request: _Request) -> Response:
        return Response(*self._canary.status(request.query))


_PUBLIC = frozenset({"/healthz"})  # load balancers probe without credentials
#: Paths whose callers cannot send headers: the token may come in the JSON body instead.
_BODY_TOKEN = frozenset({"/api/canary/flagger"})
_FINISH = re.compile(r"/api/deploys/([^/]+)/finish")
_ROLLBACK = re.compile(r"/api/incidents/([^/]+)/rollback")
_FIXED: dict[str, dict[str, _Handler]] = {
    "/healthz": {"GET": DeployApi.health},
    "/api/deploys": {"GET": DeployApi.list_deploys, "POST": DeployApi.start},
    "/api/top": {"GET": DeployApi.top},
    "/api/canary/verdict": {"GET": DeployApi.canary_verdict, "POST": DeployApi.canary_verdict},
    "/api/canary/flagger": {"POST": DeployApi.canary_flagger},
    "/api/canary/status": {"GET": DeployApi.canary_status},
}


def _route(path: str) -> tuple[dict[str, _Handler] | None, str | None]:
    """The handlers by method for ``path``, and the deploy id it names (percent-decoded)."""
    if path in _FIXED:
        return _FIXED[path], None
    if m := _FINISH.fullmatch(path):
        return {"POST": DeployApi.finish}, unquote(m.group(1))
    if m := _ROLLBACK.fullmatch(path):
        return {"POST": DeployApi.rollback}, unquote(m.group(1))
    return None, None


def _require_json(headers: Mapping[str, str]) -> None:
    """Every POST says ``Content-Type: application/json``, with a body or without one: a browser
    sends that type cross-site only after a CORS preflight, which this server never grants."""
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        shown = _printable(content_type) or "none"
        raise _Refused(
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


def _loopback_host(host: str) -> bool:
    """Whether a ``Host`` header names this machine: localhost, *.localhost or a loopback IP."""
    try:
        name = urlsplit("//" + host).hostname
    except ValueError:
        return False
    if not name:
        return False
    if name == "localhost" or name.endswith(".localhost"):
        return True  # browsers resolve these to loopback themselves (RFC 6761)
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _same_origin(origin: str, host: str) -> bool:
    """Whether ``Origin`` names the host and port the request was sent to (http or https: a TLS
    proxy may sit in front). ``null`` and anything unparsable are other origins."""
    try:
        theirs = urlsplit(origin.strip())
        ours = urlsplit("//" + host.strip())
        if theirs.scheme not in ("http", "https") or not theirs.hostname or not ours.hostname:
            return False
        default = 443 if theirs.scheme == "https" else 80
        return (theirs.hostname, theirs.port or default) == (ours.hostname, ours.port or default)
    except ValueError:
        return False


def _printable(text: str, limit: int = 80) -> str:
    """A header value fit for a one-line message: control characters escaped, cut short."""
    shown = text[:limit].encode("unicode_escape").decode("ascii")
    return shown + ("…" if len(text) > limit else "")


def _json_object(request: _Request, *, required: bool) -> dict[str, Any]:
    if not request.body.strip():
        if required:
            raise _Refused(
                error(400, 'empty body: send a JSON object such as {"version": "1.2.3"}')
            )
        return {}
    try:
        data = json.loads(request.body, parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise _Refused(error(400, "malformed JSON: the body is not UTF-8")) from None
    except json.JSONDecodeError as exc:
        raise _Refused(
            error(400, f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
        ) from None
    except RecursionError:  # [[[[… deeper than Python's stack: the body is not a deploy
        raise _Refused(error(400, "malformed JSON: nested too deeply")) from None
    except ValueError as exc:  # an integer longer than Python converts, NaN or Infinity
        raise _Refused(error(400, f"malformed JSON: {_first_clause(exc)}")) from None
    if not isinstance(data, dict):
        raise _Refused(error(400, f"the body must be a JSON object, not {_json_type(data)}"))
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
    raise _Refused(error(400, f'field "{name}" must be a string, not {_json_type(value)}'))


def _bool(fields: Mapping[str, Any], name: str) -> bool | None:
    value = fields.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise _Refused(error(400, f'field "{name}" must be true or false, not {_json_type(value)}'))


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
