"""The shop as a WSGI application serving one release.

Two hook points let querywatch observe it without the shop knowing about querywatch:

* ``wrap_connection(conn) -> conn`` is applied to every database connection the app opens
  (e.g. ``lambda c: querywatch.instrument(c, sink=store)``);
* ``wrap_app(app) -> app`` wraps the WSGI callable (e.g. querywatch's WSGI middleware).

Every response carries ``X-Release`` and ``X-Commit`` so a load generator can tell which release
served it. The requesting user comes from the ``X-User-Id`` header and is put into the WSGI
environ as ``shop.user_id`` for middleware.
"""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from querywatch.demo.shop.db import Connection, Db, connect, is_postgres
from querywatch.demo.shop.pool import ConnectionPool, PoolTimeout
from querywatch.demo.shop.releases import Release, load_release

WrapConnection = Callable[[Connection], Connection]
WrapApp = Callable[[WSGIApplication], WSGIApplication]

_ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("home", re.compile(r"/")),
    ("product", re.compile(r"/products/(\d+)")),
    ("customer_orders", re.compile(r"/customers/(\d+)/orders")),
    ("order", re.compile(r"/orders/(\d+)")),
    ("search", re.compile(r"/search")),
    ("health", re.compile(r"/health")),
)


def _same_connection(conn: Connection) -> Connection:
    return conn


def _same_app(app: WSGIApplication) -> WSGIApplication:
    return app


def route_of(path: str) -> tuple[str, str | None] | None:
    """(page name, path argument) for a request path, or None when no page matches."""
    for name, pattern in _ROUTES:
        match = pattern.fullmatch(path)
        if match:
            return name, (match.group(1) if match.groups() else None)
    return None


class ShopApp:
    """The WSGI callable for one release over one database (call :meth:`close` when done)."""

    def __init__(
        self,
        release: str | Release,
        location: str,
        *,
        wrap_connection: WrapConnection = _same_connection,
        wrap_app: WrapApp = _same_app,
        pool_size: int = 8,
        pool_timeout: float = 30.0,
    ) -> None:
        self.release = load_release(release) if isinstance(release, str) else release
        self.location = location
        self._postgres = is_postgres(location)
        # HOOK 1: every connection passes through wrap_connection.
        self.pool = ConnectionPool(
            lambda: wrap_connection(connect(location)), pool_size, pool_timeout
        )
        self._headers = [("X-Release", self.release.version), ("X-Commit", self.release.commit)]
        # HOOK 2: the WSGI app callers see is wrap_app(...).
        self.wsgi: WSGIApplication = wrap_app(self._handle)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self.wsgi(environ, start_response)

    def check(self) -> None:
        """Run one query so a broken database fails at startup, not on the first request."""
        with self.pool.connection() as conn:
            Db(conn, postgres=self._postgres).one("SELECT count(*) FROM products")

    def close(self) -> None:
        self.pool.close()

    def _handle(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        user = environ.get("HTTP_X_USER_ID")
        environ["shop.user_id"] = user
        environ["shop.release"] = self.release.version
        found = route_of(environ.get("PATH_INFO") or "/")
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return self._reply(start_response, 405, {"error": "method not allowed"})
        if found is None:
            return self._reply(start_response, 404, {"error": "no such page"})
        page, arg = found
        environ["shop.page"] = page
        if page == "health":
            return self._reply(
                start_response,
                200,
                {"status": "ok", "release": self.release.version, "commit": self.release.commit},
            )
        query = parse_qs(environ.get("QUERY_STRING") or "")
        try:
            with self.pool.connection() as conn:
                body = self._page(Db(conn, postgres=self._postgres), page, arg, query)
        except PoolTimeout as exc:
            return self._reply(start_response, 503, {"error": str(exc)})
        except Exception as exc:
            traceback.print_exc()
            return self._reply(start_response, 500, {"error": f"{type(exc).__name__}: {exc}"})
        if body is None:
            return self._reply(start_response, 404, {"error": f"{page} not found"})
        return self._reply(start_response, 200, body)

    def _page(
        self, db: Db, page: str, arg: str | None, query: dict[str, list[str]]
    ) -> dict[str, Any] | None:
        pages = self.release.module
        result: dict[str, Any] | None
        if page == "home":
            result = pages.home(db)
        elif page == "product":
            result = pages.product(db, int(arg or 0))
        elif page == "customer_orders":
            result = pages.customer_orders(db, arg or "0")
        elif page == "order":
            result = pages.order(db, int(arg or 0))
        else:
            result = pages.search(db, (query.get("q") or [""])[0][:100])
        return result

    def _reply(
        self, start_response: StartResponse, status: int, body: dict[str, Any]
    ) -> list[bytes]:
        data = json.dumps(body, separators=(",", ":")).encode()
        reason = {
            200: "OK",
            404: "Not Found",
            405: "Method Not Allowed",
            500: "Internal Server Error",
            503: "Service Unavailable",
        }[status]
        start_response(
            f"{status} {reason}",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(data))),
                *self._headers,
            ],
        )
        return [data]
