"""``QueryWatchMiddleware``: each request's route (its view name), user, release and database
share, and the N+1 patterns in it, named with the ORM relation to prefetch.

Put it first in ``MIDDLEWARE`` so it sees the whole request. The route is the resolved view's
name (``shop:order-list``, or the view's dotted path when the URL has no name), never the raw
path; an unresolved URL is ``<unknown>``. The user is the authenticated user's primary key,
hashed (HMAC-SHA256 with ``SECRET_KEY``, :func:`user_key`): impact counts distinct users without
storing who they are. Only a user the request already loaded is read (querywatch never queries
the user or the session itself). Requests and their statements are recorded under the release of
the ``release_header`` setting's header when set, else the process's (``settings.QUERYWATCH
["release"]`` or ``$QUERYWATCH_RELEASE``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from time import perf_counter_ns
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed

from querywatch.capture.context import RequestState, current_request
from querywatch.capture.middleware import UNKNOWN_ROUTE, _Base, release_header_name
from querywatch.contrib.django import capture
from querywatch.contrib.django.orm import advise

USER_KEY_CHARS = 16


def route_of(request: Any) -> str:
    """The view name of the URL pattern that served ``request`` (its route pattern when the
    view has no name)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return UNKNOWN_ROUTE
    return str(match.view_name or match.route or UNKNOWN_ROUTE)


def user_key(pk: object, secret: str | None = None) -> str:
    """The stored form of a user's primary key: HMAC-SHA256 keyed with ``SECRET_KEY``, cut to
    16 hex characters (enough to count distinct users, not to recover who they are)."""
    if secret is None:
        from django.conf import settings

        secret = str(settings.SECRET_KEY)
    digest = hmac.new(secret.encode(), str(pk).encode(), hashlib.sha256).hexdigest()
    return digest[:USER_KEY_CHARS]


def user_of(request: Any) -> str | None:
    """The hashed key of the request's authenticated user, if the request loaded it."""
    from django.utils.functional import empty

    user = request.__dict__.get("user")  # set by AuthenticationMiddleware, lazily
    wrapped = getattr(user, "_wrapped", user)
    if wrapped is None or wrapped is empty:
        return None
    if not getattr(wrapped, "is_authenticated", False):
        return None
    return user_key(wrapped.pk)


class _Requests(_Base):
    """What the WSGI/ASGI middleware does at the end of a request, fed by Django's request."""


class QueryWatchMiddleware:
    """Django middleware (sync and async); see the module docstring."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        running = capture.current()
        if running is None:
            from django.conf import settings

            if "querywatch.contrib.django" not in settings.INSTALLED_APPS:
                raise ImproperlyConfigured(
                    "QueryWatchMiddleware needs the app: add 'querywatch.contrib.django' to"
                    " INSTALLED_APPS"
                )
            raise MiddlewareNotUsed("querywatch: capture is off (QUERYWATCH['enabled'])")
        self.get_response = get_response
        self.capture = running
        cfg = running.settings.config
        self._requests = _Requests(
            running.recorder,
            route_of,
            user_of,
            float(cfg["slo_ms"]),
            None,
            None,
        )
        header = release_header_name(cfg["release_header"] or "")
        self._release_key = "HTTP_" + header.upper().replace("-", "_") if header else None
        self._threshold = running.settings.repeat_threshold
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if iscoroutinefunction(self):
            return self._acall(request)
        state = self._start(request)
        token = current_request.set(state)
        t0 = perf_counter_ns()
        error = True
        try:
            response = self.get_response(request)
            error = response.status_code >= 500
            return response
        finally:
            current_request.reset(token)
            self._end(request, t0, state, error)

    async def _acall(self, request: Any) -> Any:
        state = self._start(request)
        token = current_request.set(state)
        t0 = perf_counter_ns()
        error = True
        try:
            response = await self.get_response(request)
            error = response.status_code >= 500
            return response
        finally:
            current_request.reset(token)
            self._end(request, t0, state, error)

    def _start(self, request: Any) -> RequestState:
        key = self._release_key
        return self._requests._state(request.META.get(key) if key is not None else None)

    def _end(self, request: Any, t0: int, state: RequestState, error: bool) -> None:
        route, user = self._requests._describe(request)
        self._requests._finish(route, user, t0, state, error)
        if state.db_calls >= self._threshold:
            try:
                self._advise(route, state)
            except Exception:  # advice is a bonus; it must never fail a request
                self.capture.recorder.aggregator.internal_errors += 1

    def _advise(self, route: str, state: RequestState) -> None:
        counts = state.counts()
        texts = [fp.normalized for fp in counts]
        for fp, n in counts.items():
            if n >= self._threshold:
                advice = advise(fp.normalized, texts)
                if advice:
                    self.capture.advise(route, fp.id, advice)
