"""The WSGI and ASGI middleware behind real HTTP on loopback, with real sqlite3 statements.

WSGI runs under wsgiref; ASGI under a minimal HTTP/1.1 server written here on asyncio streams
(no ASGI server is installed). Requests are sent with urllib.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

import querywatch
import workload_app as app
from querywatch.capture.middleware import ASGIMiddleware, WSGIMiddleware, template_path
from querywatch.capture.recorder import Recorder
from querywatch.records import RequestWindow
from querywatch.store import open_store

SLO_MS = 40
SLOW_S = 0.06  # /slow/… sleeps this long: always over the SLO


def get(url: str, user: str | None = None) -> int:
    req = urllib.request.Request(url, headers={"X-User-Id": user} if user else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        exc.read()
        return int(exc.code)


def by_route(windows: list[RequestWindow]) -> dict[str, RequestWindow]:
    """Windows merged per route (a run may straddle a 10 s boundary)."""
    out: dict[str, RequestWindow] = {}
    for w in windows:
        m = out.get(w.route)
        if m is None:
            out[w.route] = RequestWindow(
                w.route,
                0,
                w.requests,
                w.errors,
                w.total_ms,
                w.max_ms,
                w.db_ms,
                w.db_calls,
                None,
                w.users,
                w.failed_users,
            )
            continue
        m.requests += w.requests
        m.errors += w.errors
        m.total_ms += w.total_ms
        m.max_ms = max(m.max_ms, w.max_ms)
        m.db_ms += w.db_ms
        m.db_calls += w.db_calls
        m.users |= w.users
        m.failed_users |= w.failed_users
    return out


@pytest.fixture
def shop_db(tmp_path: Path) -> Path:
    db = tmp_path / "shop.db"
    conn = sqlite3.connect(db)
    app.create_table(conn)
    app.insert_items(conn, "?", 50)
    conn.close()
    return db


def test_template_path() -> None:
    assert template_path("/orders/123") == "/orders/{id}"
    assert template_path("/u/0b6a2f7e-3c51-4a8e-9d7e-1f2a3b4c5d6e/cart/7") == "/u/{id}/cart/{id}"
    assert template_path("/health") == "/health"
    assert template_path("/v2/items") == "/v2/items"


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _QuietServer(WSGIServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


@pytest.fixture
def wsgi_server() -> Iterator[Callable[[Any], str]]:
    servers: list[WSGIServer] = []

    def start(wsgi_app: Any) -> str:
        server = make_server(
            "127.0.0.1", 0, wsgi_app, server_class=_QuietServer, handler_class=_QuietHandler
        )
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_wsgi_middleware_over_http(
    shop_db: Path, tmp_path: Path, wsgi_server: Callable[[Any], str]
) -> None:
    store_path = tmp_path / "qw.sqlite3"
    inst = querywatch.instrument(
        sqlite3.connect(shop_db, check_same_thread=False), sink=str(store_path)
    )
    conn = inst.target

    def shop(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ["PATH_INFO"]
        if path.startswith("/orders/"):
            item = int(path.rsplit("/", 1)[1])
            row = app.point_select(conn, "?", item)
            app.point_select(conn, "?", (item + 1) % 50)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [row[0].encode()]
        if path.startswith("/slow/"):
            time.sleep(SLOW_S)
            app.point_select(conn, "?", 1)
            start_response("200 OK", [])
            return [b"slow"]
        if path == "/stream":

            def body() -> Iterator[bytes]:
                for i in range(3):
                    yield app.point_select(conn, "?", i)[0].encode()

            start_response("200 OK", [])
            return body()
        if path == "/unavailable":
            start_response("503 Service Unavailable", [])
            return [b"try later"]
        if path == "/boom":
            app.bad_query(conn)
        start_response("404 Not Found", [])
        return [b""]

    base = wsgi_server(WSGIMiddleware(shop, inst, slo_ms=SLO_MS))
    for i in range(10):
        assert get(f"{base}/orders/{i}", user=f"u{i % 5}") == 200
    for i in range(3):
        assert get(f"{base}/slow/{i}", user="u9") == 200
    assert get(f"{base}/stream", user="u1") == 200
    assert get(f"{base}/unavailable", user="u6") == 503
    assert get(f"{base}/boom", user="u7") == 500
    assert get(f"{base}/boom") == 500  # anonymous
    inst.close()

    routes = by_route(open_store(store_path).request_windows())
    orders = routes["/orders/{id}"]
    assert (orders.requests, orders.errors, orders.db_calls) == (10, 0, 20)
    assert 0 < orders.db_ms <= orders.total_ms
    assert orders.users == {"u0", "u1", "u2", "u3", "u4"}
    # A request under the SLO never fails its user. (How long a request takes is the machine's
    # business: on a busy one an /orders request may cross the SLO, and then counts as failed.)
    assert orders.max_ms > SLO_MS or not orders.failed_users
    slow = routes["/slow/{id}"]
    assert slow.requests == 3 and slow.errors == 0 and slow.max_ms >= SLOW_S * 1000
    assert slow.failed_users == {"u9"}  # each slept past the SLO
    # The sleeps are request time, not database time.
    assert slow.total_ms - slow.db_ms >= 3 * SLOW_S * 1000
    stream = routes["/stream"]
    assert stream.db_calls == 3 and 0 < stream.db_ms <= stream.total_ms  # counted while streaming
    assert routes["/unavailable"].errors == 1 and routes["/unavailable"].failed_users == {"u6"}
    boom = routes["/boom"]
    assert (boom.requests, boom.errors, boom.db_calls) == (2, 2, 2)
    assert boom.users == {"u7"} and boom.failed_users == {"u7"}


class AsgiHttpServer:
    """Just enough HTTP/1.1 to drive an ASGI 3 app over real sockets, one request a connection."""

    def __init__(self, asgi_app: Any) -> None:
        self.app = asgi_app
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self.server = server
        ready.set()
        self.loop.run_forever()
        server.close()
        self.loop.run_until_complete(server.wait_closed())
        self.loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        method, target, _ = head[0].split(" ", 2)
        headers = [
            (k.strip().lower().encode(), v.strip().encode())
            for k, v in (line.split(":", 1) for line in head[1:] if line)
        ]
        path, _, query = target.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "headers": headers,
            "scheme": "http",
            "server": ("127.0.0.1", self.port),
            "client": writer.get_extra_info("peername"),
        }
        status, body = 500, bytearray()

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        try:
            await self.app(scope, receive, send)
        except Exception:
            status, body = 500, bytearray(b"internal error")
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + bytes(body)
        )
        await writer.drain()
        writer.close()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_asgi_middleware_over_http(shop_db: Path) -> None:
    recorder = Recorder(None)
    inst = querywatch.instrument(
        sqlite3.connect(shop_db, check_same_thread=False), recorder=recorder
    )
    conn = inst.target
    lock = threading.Lock()

    def query(i: int) -> Any:
        with lock:
            return app.point_select(conn, "?", i)

    async def shop(scope: Any, receive: Any, send: Any) -> None:
        parts = scope["path"].strip("/").split("/")
        if parts[0] == "items":
            await asyncio.sleep(0.005)
            # Statements on worker threads (copied context) still count toward this request.
            rows = await asyncio.gather(
                *(asyncio.to_thread(query, int(parts[1]) + k) for k in range(3))
            )
            status, body = 200, ",".join(r[0] for r in rows).encode()
        elif parts[0] == "broken":
            query(1)
            raise RuntimeError("handler bug")
        else:
            status, body = 404, b""
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": body})

    def route_of(scope: Any) -> str:
        return "/" + scope["path"].strip("/").split("/")[0]

    server = AsgiHttpServer(
        ASGIMiddleware(shop, recorder, route_of=route_of, slo_ms=1000, repeat_threshold=3)
    )
    base = f"http://127.0.0.1:{server.port}"
    try:
        for i in range(12):
            assert get(f"{base}/items/{i}", user=f"user-{i % 4}") == 200
        assert get(f"{base}/broken/1", user="user-2") == 500
        assert get(f"{base}/nowhere") == 404
    finally:
        server.close()
    inst.close()
    recorder.close()

    sink = recorder.sink
    assert sink is not None
    routes = by_route(list(sink.requests))  # type: ignore[attr-defined]
    items = routes["/items"]
    assert (items.requests, items.errors, items.db_calls) == (12, 0, 36)
    assert 0 < items.db_ms <= items.total_ms
    assert items.users == {"user-0", "user-1", "user-2", "user-3"}
    assert items.max_ms > 1000 or not items.failed_users  # none over the 1 s SLO failed
    broken = routes["/broken"]
    assert (broken.requests, broken.errors, broken.db_calls) == (1, 1, 1)
    assert broken.failed_users == {"user-2"}
    nowhere = routes["/nowhere"]
    assert (nowhere.requests, nowhere.errors, nowhere.db_calls) == (1, 0, 0)
    assert nowhere.users == frozenset()
    # Three lookups of one fingerprint per /items request (threshold 3 here), from worker threads.
    repeats = list(sink.repeats)  # type: ignore[attr-defined]
    assert {r.route for r in repeats} == {"/items"}
    assert sum(r.requests for r in repeats) == 12
    assert sum(r.total_repeats for r in repeats) == 36
    assert max(r.max_repeats for r in repeats) == 3
