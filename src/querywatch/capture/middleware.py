"""WSGI and ASGI middleware: per-route request latency, errors, users and the database's share.

Each request gets a RequestState in a ContextVar; every instrumented statement issued while it is
set adds its duration to it, so a RequestWindow knows how much of the route's time was database
time ("is it the database?") and which users saw a failure or a response slower than ``slo_ms``
("share of users affected").

The request also lists the fingerprint of every statement it runs; at its end, fingerprints run at
least ``repeat_threshold`` times (default 5) go to the route's repeat windows, the N+1 signal.

Each request is recorded under a release: the value of the header named by ``release_header``
(the setting ``release_header``, e.g. ``X-Querywatch-Release``, set by a load balancer that splits
traffic between a canary and the stable release), else the middleware's ``release=``, else the
recorder's (``instrument(release=...)``, ``$QUERYWATCH_RELEASE``). A header or ``release=`` value
also tags the statements the request runs.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from time import perf_counter_ns
from typing import Any, Protocol

from querywatch.capture.aggregate import Aggregator
from querywatch.capture.context import TRACKING, RequestState, current_request
from querywatch.config import DEFAULT_SLO_MS, setting

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_ID_SEGMENT = re.compile(
    r"^(?:\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)
UNKNOWN_ROUTE = "<unknown>"
MAX_RELEASE_CHARS = 100  # a header's release beyond this is cut: it is client-supplied text


class HasAggregator(Protocol):
    """A Recorder or an Instrumentation: whatever owns the aggregator requests go into."""

    @property
    def aggregator(self) -> Aggregator: ...


def template_path(path: str) -> str:
    """``/orders/123/items/<uuid>`` -> ``/orders/{id}/items/{id}``: one route per handler."""
    return "/".join("{id}" if _ID_SEGMENT.match(seg) else seg for seg in path.split("/"))


def _wsgi_route(environ: Environ) -> str:
    return template_path(str(environ.get("PATH_INFO") or "/"))


def _wsgi_user(environ: Environ) -> str | None:
    return environ.get("HTTP_X_USER_ID") or None


def _asgi_route(scope: Scope) -> str:
    return template_path(str(scope.get("path") or "/"))


def _asgi_user(scope: Scope) -> str | None:
    for name, value in scope.get("headers") or ():
        if name == b"x-user-id":
            return value.decode("latin-1") or None
    return None


def release_header_name(release_header: str | None) -> str:
    """The header to read releases from: ``release_header``, else the setting from the
    environment (``QUERYWATCH_RELEASE_HEADER``); ``""`` reads none."""
    if release_header is None:
        release_header = os.environ.get(setting("release_header").env, "")
    return release_header.strip()


def _clean_release(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()[:MAX_RELEASE_CHARS]
    return value or None


class _Base:
    def __init__(
        self,
        recorder: HasAggregator,
        route_of: Callable[[Any], str],
        user_of: Callable[[Any], str | None],
        slo_ms: float,
        repeat_threshold: int | None,
        release: str | None,
    ) -> None:
        self._aggregator = recorder.aggregator
        self._route_of = route_of
        self._user_of = user_of
        self._slo_ns = int(slo_ms * 1e6)
        self._repeat_threshold = repeat_threshold
        #: Given here, it tags the requests and their statements; else requests take the
        #: recorder's (or the Instrumentation's) release and statements keep their channel's.
        self._release = release
        default = release if release is not None else getattr(recorder, "release", None)
        self._default_release: str = default if isinstance(default, str) else ""
        TRACKING.on = True  # statements start reading the request ContextVar

    def _describe(self, request: Any) -> tuple[str, str | None]:
        """Route and user of a request; a failing user callback must not fail the request."""
        try:
            route = self._route_of(request)
        except Exception:
            route = UNKNOWN_ROUTE
        try:
            user = self._user_of(request)
        except Exception:
            user = None
        return route, user

    def _state(self, header_release: str | None) -> RequestState:
        """The request's state, tagged with the header's release or the middleware's own."""
        release = _clean_release(header_release)
        return RequestState(self._release if release is None else release)

    def _finish(
        self, route: str, user: str | None, t0: int, state: RequestState, error: bool
    ) -> None:
        t1 = perf_counter_ns()
        failed = error or (t1 - t0) > self._slo_ns
        agg = self._aggregator
        threshold = self._repeat_threshold
        if threshold is None:
            threshold = agg.repeat_threshold
        repeats = None
        if state.db_calls >= threshold:
            repeats = {fp: n for fp, n in state.counts().items() if n >= threshold}
        release = state.release if state.release is not None else self._default_release
        agg.record_request(
            route, t0, t1, error, state.db_ns, state.db_calls, user, failed, repeats, release
        )


class WSGIMiddleware(_Base):
    """``app = WSGIMiddleware(app, recorder)``; a 5xx status or an exception counts as an error.

    ``repeat_threshold`` overrides the recorder's (how many runs of one fingerprint in one
    request count as a repeat). ``release`` and ``release_header``: see the module docstring
    (``release_header=None`` takes the setting from ``$QUERYWATCH_RELEASE_HEADER``).

    The request ends when the response body is closed, so statements run while a streamed body
    is generated count toward it. ``route_of`` and ``user_of`` are asked then, so they see the
    environ as the app left it (Werkzeug's request object with the URL rule Flask matched, a
    ``REMOTE_USER`` an authentication layer set).
    """

    def __init__(
        self,
        app: WSGIApp,
        recorder: HasAggregator,
        *,
        route_of: Callable[[Environ], str] = _wsgi_route,
        user_of: Callable[[Environ], str | None] = _wsgi_user,
        slo_ms: float = DEFAULT_SLO_MS,
        repeat_threshold: int | None = None,
        release: str | None = None,
        release_header: str | None = None,
    ) -> None:
        super().__init__(recorder, route_of, user_of, slo_ms, repeat_threshold, release)
        self.app = app
        header = release_header_name(release_header)
        self._release_key = "HTTP_" + header.upper().replace("-", "_") if header else None

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        key = self._release_key
        state = self._state(environ.get(key) if key is not None else None)
        status = [500]

        def capture(status_line: str, headers: Any, exc_info: Any = None) -> Any:
            with contextlib.suppress(ValueError):
                status[0] = int(status_line[:3])
            if exc_info is None:
                return start_response(status_line, headers)
            return start_response(status_line, headers, exc_info)

        token = current_request.set(state)
        t0 = perf_counter_ns()
        try:
            body = self.app(environ, capture)
        except BaseException:
            current_request.reset(token)
            self._finish(*self._describe(environ), t0, state, True)
            raise
        if isinstance(body, list | tuple):
            current_request.reset(token)
            self._finish(*self._describe(environ), t0, state, status[0] >= 500)
            return body

        def done(error: bool) -> None:
            try:
                current_request.reset(token)
            except ValueError:  # closed from another context than the one that started it
                current_request.set(None)
            self._finish(*self._describe(environ), t0, state, error or status[0] >= 500)

        return _ClosingBody(body, done)


class _ClosingBody:
    """A streamed WSGI body; the request is accounted when the server closes it."""

    def __init__(self, body: Iterable[bytes], done: Callable[[bool], None]) -> None:
        self._body = body
        self._it = iter(body)
        self._done: Callable[[bool], None] | None = done
        self._error = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._it)
        except StopIteration:
            raise
        except BaseException:
            self._error = True
            raise

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            if self._done is not None:
                done, self._done = self._done, None
                done(self._error)


class ASGIMiddleware(_Base):
    """Pure ASGI 3 middleware for HTTP (other scope types pass through untouched); arguments as
    for :class:`WSGIMiddleware`.

    ``route_of`` and ``user_of`` are asked when the app has finished, so they see the scope as
    the app left it: the route its router matched (Starlette's ``scope["route"]``), the user an
    authentication middleware set (``scope["user"]``)."""

    def __init__(
        self,
        app: ASGIApp,
        recorder: HasAggregator,
        *,
        route_of: Callable[[Scope], str] = _asgi_route,
        user_of: Callable[[Scope], str | None] = _asgi_user,
        slo_ms: float = DEFAULT_SLO_MS,
        repeat_threshold: int | None = None,
        release: str | None = None,
        release_header: str | None = None,
    ) -> None:
        super().__init__(recorder, route_of, user_of, slo_ms, repeat_threshold, release)
        self.app = app
        header = release_header_name(release_header)
        self._release_key = header.lower().encode("latin-1") if header else None

    def _header_release(self, scope: Scope) -> str | None:
        key = self._release_key
        if key is not None:
            for name, value in scope.get("headers") or ():
                if name == key:
                    return str(value.decode("latin-1"))
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        state = self._state(self._header_release(scope))
        status = [500]

        async def capture(message: MutableMapping[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                status[0] = int(message.get("status", 500))
            await send(message)

        token = current_request.set(state)
        t0 = perf_counter_ns()
        error = True
        try:
            await self.app(scope, receive, capture)
            error = status[0] >= 500
        finally:
            current_request.reset(token)
            route, user = self._describe(scope)  # as the app left it: routed, authenticated
            self._finish(route, user, t0, state, error)
