"""The one app `querywatch serve` runs: the JSON API, the dashboard's pages, /metrics, /login.

:func:`create_app` builds a Starlette app over a :class:`~querywatch.web.state.WebState`. Every
request first passes :class:`Guard`, which keeps the promises of the API from before the
dashboard: bodies of at most 64 KiB with a Content-Length (413, 411), no other site's Origin
(403), a loopback Host when serving without a token (421), one log line per request with control
characters escaped and no header in it, ``Server: querywatch`` and no caching of anything
dynamic. Errors reach the client as the JSON envelope under /api, /healthz and /metrics (and for
any client that does not ask for HTML) and as a page otherwise.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from querywatch.dsn import redact
from querywatch.errors import NotFound, QuerywatchError, StoreError
from querywatch.web import pages
from querywatch.web.api import (
    MAX_BODY_BYTES,
    Answer,
    Refused,
    api_routes,
    error,
    escape_controls,
    json_response,
    printable,
)
from querywatch.web.auth import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    Forbidden,
    NotSignedIn,
    Session,
    cookie_value,
    loopback_host,
    require_read,
    safe_next,
    same_origin,
)
from querywatch.web.login import login, logout
from querywatch.web.metrics import CONTENT_TYPE, metrics_payload
from querywatch.web.otlp import MAX_OTLP_BODY_BYTES, OTLP_PATH, otlp_routes
from querywatch.web.state import WebState, web_state
from querywatch.web.templating import render_error

log = logging.getLogger("querywatch.web")

#: The methods a route may name; any other is a 501 (as with the earlier http.server API).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_DRAIN_LIMIT = 1024 * 1024  # read (and drop) an oversized body up to this, so the 413 arrives
_INTERNAL_ERROR_PAGE = (
    '<!doctype html><html lang="en"><meta charset="utf-8"><title>Internal error · querywatch'
    "</title><h1>Internal error</h1><p>The server could not show this page: the details are in "
    'its log.</p><p><a href="/">Back to the overview</a></p></html>'
)
_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def create_app(state: WebState) -> Starlette:
    """The app over ``state``: every route, the error pages and envelopes, the Guard."""
    routes: list[BaseRoute] = [
        *api_routes(),
        Route("/metrics", metrics, methods=["GET"]),
        *otlp_routes(),  # POST /v1/traces: OpenTelemetry spans in (web/otlp.py)
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["GET", "POST"]),
        Mount("/static", StaticFiles(packages=[("querywatch.web", "static")]), name="static"),
        *pages.routes(),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            HTTPException: _http_error,
            NotSignedIn: _not_signed_in,
            Forbidden: _forbidden,
            Refused: _refused,
            QuerywatchError: _domain_error,
        },
    )
    app.router.redirect_slashes = False  # the Guard drops a trailing slash instead
    app.state.web = state
    app.add_middleware(Guard, state=state)
    return app


async def metrics(request: Request) -> Response:
    """Prometheus' scrape: read access (``Authorization: Bearer <read token>``)."""
    require_read(request)
    state = web_state(request)
    top_n = int(state.settings.get("metrics_top_n") or 50)
    payload = await run_in_threadpool(
        lambda: metrics_payload(state.store, top_n=top_n, now=state.clock())
    )
    return Response(payload, 200, {"Cache-Control": "no-store"}, CONTENT_TYPE)


# -- errors ---------------------------------------------------------------------------------------


def answers_json(request: Request) -> bool:
    """Whether errors go out as the envelope: the API, health, /metrics, and any client that
    does not ask for HTML (curl, CI); a browser gets a page."""
    return _json_client(request.url.path, request.headers)


def _json_client(path: str, headers: Headers) -> bool:
    if path in ("/healthz", "/metrics", "/api") or path.startswith("/api/"):
        return True
    return "text/html" not in headers.get("accept", "")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    path = request.url.path
    if exc.status_code == 405:
        methods = (exc.headers or {}).get("Allow", "").split(", ")
        allowed = ", ".join(sorted(m for m in methods if m and m != "HEAD"))
        message = f"{request.method} is not allowed on {path} (use {allowed})"
        headers: tuple[tuple[str, str], ...] = (("Allow", allowed),)
    elif exc.status_code == 404:
        message, headers = f"no such endpoint: {path}", ()
    else:
        message, headers = exc.detail, ()
    if answers_json(request):
        return json_response(error(exc.status_code, message, headers))
    if exc.status_code == 404:
        message = f"There is no page at {path}."
    page = render_error(
        request, exc.status_code, "Not found" if exc.status_code == 404 else "Refused", message
    )
    page.headers.update(dict(headers))
    return page


async def _not_signed_in(request: Request, exc: Exception) -> Response:
    if answers_json(request):
        where = (
            " (or, from Flagger, metadata.token)"
            if request.url.path == "/api/canary/flagger"
            else ""
        )
        challenge = (("WWW-Authenticate", 'Bearer realm="querywatch"'),)
        return json_response(error(401, f"{exc}{where}", challenge))
    if request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    else:  # an action: come back to the page it was sent from
        referer = request.headers.get("referer", "")
        parts = urlsplit(referer)
        same = same_origin(referer, request.headers.get("host", ""))
        target = parts.path + (f"?{parts.query}" if parts.query else "") if same else "/"
    return RedirectResponse("/login?" + urlencode({"next": safe_next(target)}), 303)


async def _forbidden(request: Request, exc: Exception) -> Response:
    if answers_json(request):
        return json_response(error(403, str(exc)))
    return render_error(request, 403, "Not allowed", str(exc))


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    return json_response(exc.answer)


async def _domain_error(request: Request, exc: Exception) -> Response:
    """A page's (or /metrics') domain error: not found, the store down, a bad parameter."""
    if isinstance(exc, NotFound):
        status, title, message = 404, "Not found", str(exc)
    elif isinstance(exc, StoreError):
        log.error("store unavailable: %s", exc)
        status, title, message = (
            503,
            "Store unavailable",
            "the store is unavailable: see the server log",
        )
    else:
        status, title, message = 400, "Cannot show this", str(exc)
    if answers_json(request):
        return json_response(error(status, message))
    return render_error(request, status, title, message)


# -- the guard ------------------------------------------------------------------------------------


class Guard:
    """The checks and headers every request gets, around the router (see the module doc)."""

    def __init__(self, app: ASGIApp, state: WebState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0

        async def send_finished(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                _finish_headers(scope, MutableHeaders(scope=message), self.state)
            await send(message)

        try:
            refusal = await self._refusal(scope, receive)
            if refusal is not None:
                await json_response(refusal)(scope, receive, send_finished)
            else:
                path = scope["path"]
                if len(path) > 1 and path.endswith("/"):
                    scope["path"] = path.rstrip("/") or "/"
                await self.app(scope, receive, send_finished)
        except ClientDisconnect:
            status = status or 499  # the client went away mid-body: nothing to answer
        except Exception:
            log.exception(
                "internal error on %s %s", scope["method"], escape_controls(scope["path"])
            )
            if not status:
                await _internal_error(scope)(scope, receive, send_finished)
        finally:
            _log_request(scope, status)

    async def _refusal(self, scope: Scope, receive: Receive) -> Answer | None:
        """Why this request is refused before routing, if it is (the old API's order)."""
        method = scope["method"]
        if method not in KNOWN_METHODS:
            return error(501, f"Unsupported method ({method!r})")
        headers = Headers(scope=scope)
        if "transfer-encoding" in headers:
            return error(411, "send the body with a Content-Length (chunked is not supported)")
        length = int(headers.get("content-length") or 0)  # h11 has checked it is digits
        limit = MAX_OTLP_BODY_BYTES if scope["path"] == OTLP_PATH else MAX_BODY_BYTES
        if length > limit:
            await _drain(receive)
            return error(
                413,
                f"the body is {length} bytes; the limit is {limit}",
                (("Connection", "close"),),
            )
        return _browser_refusal(headers, open_access=self.state.access.open)


def _internal_error(scope: Scope) -> Response:
    """A 500 that says where to look (the traceback is in the server log, never in the reply);
    plain HTML for a browser, since the page templates may be what failed."""
    if _json_client(scope["path"], Headers(scope=scope)):
        return json_response(error(500, "internal error: see the server log"))
    return HTMLResponse(_INTERNAL_ERROR_PAGE, 500)


def _browser_refusal(headers: Headers, *, open_access: bool) -> Answer | None:
    """Refuse what only a browser tricked by another site would send.

    A page on another site can make a browser POST a form here and, through DNS rebinding, read
    replies under its own host name. So a request whose ``Origin`` is another origin is refused,
    and without a token (``--no-auth``, where the browser needs no credentials) the ``Host`` must
    name a loopback address. Before routing, so another site learns nothing, not even which
    paths exist.
    """
    host = headers.get("host")
    # A browser always sends Host (the rebinding site's name); a client without one (HTTP/1.0)
    # is not a browser.
    if open_access and host is not None and not loopback_host(host):
        shown = printable(host) or "none"
        return error(
            421,
            f"Host '{shown}' is not a loopback name: without a token this server answers only "
            "requests addressed to localhost, 127.0.0.1 or [::1]",
        )
    origin = headers.get("origin")
    if origin is not None and not same_origin(origin, host or ""):
        return error(
            403, f"cross-origin request refused: Origin '{printable(origin)}' is not this server"
        )
    return None


async def _drain(receive: Receive) -> None:
    """Read what the client is sending, so closing the connection does not reset the reply."""
    left = _DRAIN_LIMIT
    while left > 0:
        message = await receive()
        if message["type"] != "http.request":
            return
        left -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _finish_headers(scope: Scope, headers: MutableHeaders, web: WebState) -> None:
    headers["Server"] = "querywatch"  # no framework or Python version
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    static = scope["path"].startswith("/static/")
    headers.setdefault("Cache-Control", "no-cache" if static else "no-store")
    if headers.get("content-type", "").startswith("text/html"):
        headers.setdefault("Content-Security-Policy", _CSP)
    state: dict[str, Any] = scope.get("state") or {}
    secure = "; Secure" if scope.get("scheme") == "https" else ""
    attributes = f"Path=/; HttpOnly; SameSite=Strict{secure}"
    if state.get("qw_clear_cookie"):
        headers.append("Set-Cookie", f"{SESSION_COOKIE}=; Max-Age=0; {attributes}")
    else:
        session = state.get("qw_set_cookie")
        if isinstance(session, Session):
            value = cookie_value(web.access, session)
            headers.append(
                "Set-Cookie", f"{SESSION_COOKIE}={value}; Max-Age={SESSION_SECONDS}; {attributes}"
            )


def _log_request(scope: Scope, status: int) -> None:
    """One line per request: client, request line, status. Never a header (so never a token);
    the request line is the client's, so its control bytes are escaped, not written out."""
    client = scope.get("client")
    target = scope.get("raw_path") or scope["path"].encode()
    if scope.get("query_string"):
        target += b"?" + scope["query_string"]
    line = f'"{scope["method"]} {target.decode("latin-1")} HTTP/{scope.get("http_version", "1.1")}"'
    log.info("%s %s %s", client[0] if client else "-", redact(escape_controls(line)), status or "-")
