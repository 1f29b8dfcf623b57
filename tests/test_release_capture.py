"""Release-tagged capture: which release each statement and request came from, as stored.

The release comes from the load balancer's header (when ``release_header`` names one), else
``instrument(release=...)`` / the middleware's ``release=``, else ``$QUERYWATCH_RELEASE``, else "".
Real sqlite3 and psycopg statements, real store files and the suite's PostgreSQL, real HTTP on
loopback through the WSGI (wsgiref) and ASGI (test_middleware's server) middleware.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer, make_server

import psycopg
import pytest

import querywatch
import workload_app as app
from querywatch.capture.middleware import MAX_RELEASE_CHARS, ASGIMiddleware, WSGIMiddleware
from querywatch.capture.recorder import RELEASE_ENV, Recorder
from querywatch.store import SqlStore, open_store
from test_middleware import AsgiHttpServer, _QuietHandler, _QuietServer

HEADER = "X-Querywatch-Release"
POINT = app.point_sql("?")


def get(url: str, release: str | None = None, user: str | None = None) -> int:
    headers = {}
    if release is not None:
        headers[HEADER] = release
    if user is not None:
        headers["X-User-Id"] = user
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as resp:
        resp.read()
        return int(resp.status)


@pytest.fixture
def shop_db(tmp_path: Path) -> Path:
    db = tmp_path / "shop.db"
    conn = sqlite3.connect(db)
    app.create_table(conn)
    app.insert_items(conn, "?", 50)
    conn.commit()
    conn.close()
    return db


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


def calls_by_release(store: SqlStore, text: str) -> dict[str, int]:
    """Calls of the statement ``text`` per release, summed over the windows read."""
    out: dict[str, int] = {}
    for release in {w.release for w in store.statement_windows()} | {"", "v1", "v2"}:
        for w in store.statement_windows(release=release):
            if text in w.normalized:
                out[release] = out.get(release, 0) + w.calls
    return out


def requests_by_release(store: SqlStore, route: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for release in ("", "v1", "v2"):
        for w in store.request_windows(route=route, release=release):
            out[release] = out.get(release, 0) + w.requests
    return out


def test_header_tags_each_request_and_its_statements_apart_from_the_process_release(
    shop_db: Path, tmp_path: Path, wsgi_server: Callable[[Any], str]
) -> None:
    store_path = tmp_path / "qw.sqlite3"
    inst = querywatch.instrument(
        sqlite3.connect(shop_db, check_same_thread=False), sink=str(store_path), release="v1"
    )
    conn = inst.target
    lock = threading.Lock()

    def shop(environ: dict[str, Any], start_response: Any) -> Any:
        item = int(environ["PATH_INFO"].rsplit("/", 1)[1])
        with lock:
            for k in range(6):  # six lookups per request: an N+1 at the threshold of 5
                app.point_select(conn, "?", (item + k) % 50)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    base = wsgi_server(WSGIMiddleware(shop, inst, release_header=HEADER))
    for i in range(7):
        assert get(f"{base}/orders/{i}", release="v2", user=f"canary-{i}") == 200
    for i in range(3):
        assert get(f"{base}/orders/{i}", user=f"stable-{i}") == 200  # no header: the process's
    with lock:
        app.point_select(conn, "?", 1)  # outside any request: the instrumentation's release
    inst.close()

    with open_store(store_path, read_only=True) as store:
        assert calls_by_release(store, "from items") == {"v2": 42, "v1": 19}
        assert requests_by_release(store, "/orders/{id}") == {"v2": 7, "v1": 3}
        (canary,) = store.request_windows(release="v2")
        assert canary.users == {f"canary-{i}" for i in range(7)}
        assert sum(w.requests for w in store.request_windows()) == 10  # None: summed
        assert {w.release for w in store.repeat_windows()} <= {"v1", "v2", ""}
        assert sum(w.requests for w in store.repeat_windows(release="v2")) == 7
        assert sum(w.requests for w in store.repeat_windows(release="v1")) == 3
        (v2,) = store.top(release="v2")
        assert (v2.calls, v2.release) == (42, "v2")
        assert v2.call_sites  # the canary's statements were sampled for call sites too


def test_asgi_header_and_the_middleware_release_argument(shop_db: Path) -> None:
    recorder = Recorder(None, release="v0")
    inst = querywatch.instrument(
        sqlite3.connect(shop_db, check_same_thread=False), recorder=recorder
    )
    conn = inst.target
    lock = threading.Lock()

    def query(i: int) -> Any:
        with lock:
            return app.point_select(conn, "?", i)

    async def shop(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.gather(*(asyncio.to_thread(query, k) for k in range(2)))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    server = AsgiHttpServer(ASGIMiddleware(shop, recorder, release="v1", release_header=HEADER))
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert get(f"{base}/a", release="v2") == 200
        assert get(f"{base}/a", release="v2") == 200
        assert get(f"{base}/a") == 200  # the middleware's release=
        assert get(f"{base}/a", release="   ") == 200  # a blank header: as if absent
        assert get(f"{base}/a", release="x" * 500) == 200  # client text: cut to a bound
    finally:
        server.close()
    query(3)  # outside a request: the recorder's release
    inst.close()
    recorder.close()

    sink = recorder.sink
    stmts: dict[str, int] = {}
    for w in sink.windows:  # type: ignore[union-attr]
        stmts[w.release] = stmts.get(w.release, 0) + w.calls
    long = "x" * MAX_RELEASE_CHARS
    assert stmts == {"v2": 4, "v1": 4, long: 2, "v0": 1}
    # Each release's fingerprint state samples its own call sites.
    assert all(w.call_sites for w in sink.windows)  # type: ignore[union-attr]
    reqs: dict[str, int] = {}
    for r in sink.requests:  # type: ignore[union-attr]
        reqs[r.release] = reqs.get(r.release, 0) + r.requests
    assert reqs == {"v2": 2, "v1": 2, long: 1}


def test_the_environment_names_the_release_unless_told(
    shop_db: Path, tmp_path: Path, wsgi_server: Callable[[Any], str], monkeypatch: Any
) -> None:
    monkeypatch.setenv(RELEASE_ENV, "git-9f1c2e7")
    monkeypatch.setenv("QUERYWATCH_RELEASE_HEADER", HEADER)  # the setting, from the environment
    store_path = tmp_path / "qw.sqlite3"
    inst = querywatch.instrument(
        sqlite3.connect(shop_db, check_same_thread=False), sink=str(store_path)
    )
    assert inst.release == inst.recorder.release == "git-9f1c2e7"
    conn = inst.target

    def shop(environ: dict[str, Any], start_response: Any) -> Any:
        app.point_select(conn, "?", 1)
        start_response("200 OK", [])
        return [b""]

    base = wsgi_server(WSGIMiddleware(shop, inst))
    assert get(f"{base}/x") == 200
    assert get(f"{base}/x", release="v2") == 200
    inst.close()
    told = querywatch.instrument(sqlite3.connect(shop_db), release="v3")
    assert told.release == "v3"  # an argument wins over the environment
    told.close()
    monkeypatch.delenv(RELEASE_ENV)
    unknown = querywatch.instrument(sqlite3.connect(shop_db))
    assert unknown.release == ""
    unknown.close()

    with open_store(store_path, read_only=True) as store:
        assert {w.release: w.calls for w in store.statement_windows(release="git-9f1c2e7")} == {
            "git-9f1c2e7": 1
        }
        assert [w.calls for w in store.statement_windows(release="v2")] == [1]
        assert requests_by_release(store, "/x") == {"v2": 1}
        assert sum(w.requests for w in store.request_windows(release="git-9f1c2e7")) == 1


def test_without_a_release_header_setting_a_header_is_ignored(
    shop_db: Path, wsgi_server: Callable[[Any], str], monkeypatch: Any
) -> None:
    monkeypatch.delenv("QUERYWATCH_RELEASE_HEADER", raising=False)
    recorder = Recorder(None, release="v1")
    inst = querywatch.instrument(
        sqlite3.connect(shop_db, check_same_thread=False), recorder=recorder
    )
    conn = inst.target

    def shop(environ: dict[str, Any], start_response: Any) -> Any:
        app.point_select(conn, "?", 1)
        start_response("200 OK", [])
        return [b""]

    base = wsgi_server(WSGIMiddleware(shop, recorder))
    assert get(f"{base}/x", release="v2") == 200  # a client cannot name a release
    inst.close()
    recorder.close()
    sink = recorder.sink
    assert {w.release for w in sink.windows} == {"v1"}  # type: ignore[union-attr]
    assert {r.release for r in sink.requests} == {"v1"}  # type: ignore[union-attr]


@pytest.mark.postgres
def test_two_releases_on_psycopg_into_the_postgres_store(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as setup:
        app.create_table(setup)
        app.insert_items(setup, "%s", 20)
    store = open_store(pg_dsn)
    recorder = Recorder(store)
    stable = psycopg.connect(pg_dsn, autocommit=True)
    canary = psycopg.connect(pg_dsn, autocommit=True)
    a = querywatch.instrument(stable, recorder=recorder, release="v1")
    b = querywatch.instrument(canary, recorder=recorder, release="v2")
    for i in range(9):
        app.point_select(stable, "%s", i)
    app.point_select(canary, "%s", 1)
    a.close()
    b.close()
    recorder.close()
    stable.close()
    canary.close()
    try:
        v1 = store.statement_windows(release="v1")
        v2 = store.statement_windows(release="v2")
        assert sum(w.calls for w in v1 if "items" in w.normalized) == 9
        assert sum(w.calls for w in v2 if "items" in w.normalized) == 1
        assert {s.release for s in store.top(release="v2")} == {"v2"}
        summed = [w for w in store.statement_windows() if "items" in w.normalized]
        assert sum(w.calls for w in summed) == 10
    finally:
        store.close()
