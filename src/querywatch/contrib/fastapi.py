"""FastAPI and Starlette: ``qw = QueryWatch(app)`` records every request by its route template,
then ``qw.instrument(engine)`` records the statements of an async (or sync) database handle.

The ASGI middleware goes in with ``app.add_middleware``; a request's route is the path template
of the route the app's router matched (``/orders/{order_id}``, with the mounts it went through:
``/admin/users/{name}``), read from the scope once the app has finished, so a 404 is
``<unknown>`` instead of one route per probed path. Handles: a SQLAlchemy ``AsyncEngine`` (its
``sync_engine`` events; call sites are the coroutines that awaited), a psycopg
``AsyncConnection`` (pass ``qw.configure`` as a ``psycopg_pool.AsyncConnectionPool``'s
``configure=`` to record every pooled connection), and anything ``querywatch.instrument`` takes.

Options are keyword arguments over the environment and ``querywatch.toml``: ``store``,
``slo_ms``, ``release_header``, ``release``, ``repeat_threshold``, ``flush_interval``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Unpack

from querywatch.capture.instrument import instrument
from querywatch.capture.middleware import UNKNOWN_ROUTE, ASGIMiddleware, Scope, template_path
from querywatch.capture.recorder import Recorder
from querywatch.contrib.integration import CaptureOptions, Integration, capture_settings


def starlette_route(scope: Scope) -> str:
    """The path template of the route the router matched (``scope["route"]``, read once the
    app has finished) behind the mounts it went through; a mounted app without routes of its
    own (static files) is its mount path; ``<unknown>`` when nothing matched."""
    root = str(scope.get("root_path") or "")
    app_root = str(scope.get("app_root_path", root) or "")
    mounts = root[len(app_root) :] if root.startswith(app_root) else ""
    route = scope.get("route")
    if route is not None:
        return mounts + str(getattr(route, "path_format", None) or getattr(route, "path", ""))
    if "endpoint" not in scope:
        return UNKNOWN_ROUTE
    # A mount whose app has no route for it, or a Starlette that names only the endpoint.
    return mounts or template_path(str(scope.get("path") or "/"))


class QueryWatch(Integration):
    """Set up on a FastAPI or Starlette app before it starts serving; ``options``: ``store``,
    ``slo_ms``, ``release_header``, ``release``, ``repeat_threshold``, ``flush_interval``.

    ``recorder``: share one recorder with other instrumentation; by default one writing to the
    ``store`` setting. ``user_of``: the user of a request from its ASGI scope, for the share of
    users affected (default the ``X-User-Id`` header).
    """

    def __init__(
        self,
        app: Any,
        *,
        recorder: Recorder | None = None,
        user_of: Callable[[Scope], str | None] | None = None,
        **options: Unpack[CaptureOptions],
    ) -> None:
        settings = capture_settings(options, source="QueryWatch()")
        super().__init__(settings, recorder)
        users = {} if user_of is None else {"user_of": user_of}
        app.add_middleware(
            ASGIMiddleware,
            recorder=self.recorder,
            route_of=starlette_route,
            slo_ms=settings.slo_ms,
            repeat_threshold=settings.repeat_threshold,
            release=settings.release,
            release_header=settings.release_header,
            **users,
        )

    async def configure(self, conn: Any) -> None:
        """``AsyncConnectionPool(conninfo, configure=qw.configure)``: every connection the pool
        opens is recorded (for as long as it lives; nothing is kept per connection)."""
        instrument(conn, recorder=self.recorder)
