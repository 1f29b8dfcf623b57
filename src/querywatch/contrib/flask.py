"""Flask: ``QueryWatch(app)`` records every request by its URL rule and every statement of the
app's Flask-SQLAlchemy engines.

The WSGI middleware wraps ``app.wsgi_app``; a request's route is the rule Flask's own URL map
matched (``/orders/<int:id>``, not ``/orders/42``), read from the request when it has finished,
so a 404 or 405 is ``<unknown>`` instead of one route per probed path. The engines
of ``app.extensions["sqlalchemy"]`` (every bind) are instrumented when ``QueryWatch`` is set up,
or at the first app context when Flask-SQLAlchemy is initialised after it. Options come from
``app.config["QUERYWATCH_*"]`` over the environment and ``querywatch.toml``
(``QUERYWATCH_STORE``, ``QUERYWATCH_SLO_MS``, ``QUERYWATCH_RELEASE_HEADER``, ``QUERYWATCH_RELEASE``,
``QUERYWATCH_REPEAT_THRESHOLD``, ``QUERYWATCH_FLUSH_INTERVAL``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from flask import Flask, appcontext_pushed
from werkzeug.exceptions import HTTPException

from querywatch.capture.middleware import UNKNOWN_ROUTE, Environ, WSGIMiddleware
from querywatch.capture.recorder import Recorder
from querywatch.contrib.integration import CaptureSettings, Integration, capture_settings

EXTENSION = "querywatch"
PREFIX = "QUERYWATCH_"


def flask_route(app: Flask, environ: Environ) -> str:
    """The URL rule ``environ``'s request matched in ``app`` (``/orders/<int:id>``), else
    ``<unknown>``. Asked when the request has finished: the rule Flask matched is on the request
    object Werkzeug left in the environ; without one, the app's URL adapter matches again."""
    request = environ.get("werkzeug.request")
    if request is not None and getattr(request, "environ", None) is environ:
        rule = getattr(request, "url_rule", None)
        return UNKNOWN_ROUTE if rule is None else str(rule.rule)
    adapter = app.create_url_adapter(app.request_class(environ))
    if adapter is None:
        return UNKNOWN_ROUTE
    try:
        matched, _ = adapter.match(return_rule=True)
    except HTTPException:  # no rule (404), wrong method (405), a redirect to the slash
        return UNKNOWN_ROUTE
    return str(matched.rule)


def config_settings(app: Flask) -> CaptureSettings:
    """``app.config["QUERYWATCH_*"]`` read as querywatch's settings and capture options."""
    values = {
        key[len(PREFIX) :].lower(): value
        for key, value in app.config.items()
        if key.startswith(PREFIX)
    }
    return capture_settings(values, source="app.config", name_of=lambda n: PREFIX + n.upper())


class FlaskCapture(Integration):
    """What ``QueryWatch`` set up for one app (``app.extensions["querywatch"]``)."""

    def __init__(self, app: Flask, settings: CaptureSettings, recorder: Recorder | None) -> None:
        super().__init__(settings, recorder)
        self.app = app
        self._engines: set[int] = set()
        self._lock = threading.Lock()

    def instrument_sqlalchemy(self) -> int:
        """Instrument the Flask-SQLAlchemy engines (every bind) not instrumented yet; needs the
        app context. Returns how many were added."""
        ext = self.app.extensions.get("sqlalchemy")
        if ext is None:
            return 0
        added = 0
        with self._lock:
            for engine in ext.engines.values():
                if id(engine) not in self._engines:
                    self._engines.add(id(engine))
                    self.instrument(engine)
                    added += 1
        return added


class QueryWatch:
    """The Flask extension: ``QueryWatch(app)``, or ``qw = QueryWatch()`` then
    ``qw.init_app(app)`` in an application factory.

    ``recorder``: share one recorder with other instrumentation (e.g. Celery tasks in the same
    process); by default each app gets its own, writing to ``QUERYWATCH_STORE``. ``user_of``:
    the user of a request from its WSGI environ, for the share of users affected (default the
    ``X-User-Id`` header).
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        recorder: Recorder | None = None,
        user_of: Callable[[Environ], str | None] | None = None,
    ) -> None:
        self._recorder = recorder
        self._user_of = user_of
        self._capture: FlaskCapture | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> FlaskCapture:
        """Wrap ``app.wsgi_app`` and instrument the app's SQLAlchemy engines."""
        if EXTENSION in app.extensions:
            raise RuntimeError("querywatch: QueryWatch is already set up on this Flask app")
        capture = FlaskCapture(app, config_settings(app), self._recorder)
        settings, recorder = capture.settings, capture.recorder
        app.extensions[EXTENSION] = capture
        self._capture = capture
        users = {} if self._user_of is None else {"user_of": self._user_of}
        app.wsgi_app = WSGIMiddleware(  # type: ignore[method-assign]
            app.wsgi_app,
            recorder,
            route_of=partial(flask_route, app),
            slo_ms=settings.slo_ms,
            repeat_threshold=settings.repeat_threshold,
            release=settings.release,
            release_header=settings.release_header,
            **users,
        )
        if "sqlalchemy" in app.extensions:
            with app.app_context():
                capture.instrument_sqlalchemy()
        else:
            _at_first_app_context(app, capture)
        return capture

    def capture(self, app: Flask | None = None) -> FlaskCapture:
        """The set-up of ``app`` (default: the one this extension was last set up on)."""
        if app is not None:
            found = app.extensions.get(EXTENSION)
            if not isinstance(found, FlaskCapture):
                raise RuntimeError("querywatch: QueryWatch is not set up on this Flask app")
            return found
        if self._capture is None:
            raise RuntimeError("querywatch: call QueryWatch(app) or init_app(app) first")
        return self._capture

    @property
    def recorder(self) -> Recorder:
        return self.capture().recorder

    def flush(self, timeout: float = 30.0) -> bool:
        """Write what was recorded so far to the store now."""
        return self.capture().flush(timeout)


def _at_first_app_context(app: Flask, capture: FlaskCapture) -> None:
    """Flask-SQLAlchemy set up after QueryWatch: instrument its engines at the first app
    context (every request has one), then stop listening."""

    def pushed(sender: Flask, **_: Any) -> None:
        appcontext_pushed.disconnect(pushed, sender=app)
        capture.instrument_sqlalchemy()

    appcontext_pushed.connect(pushed, sender=app, weak=False)
