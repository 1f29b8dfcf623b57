"""Shared by the framework integration tests: the example apps, and reading what they recorded."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from querywatch.detect.nplusone import detect_n_plus_one
from querywatch.records import RequestWindow, StatementWindow
from querywatch.sql import fingerprint
from querywatch.store.base import Store

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def use_example(framework: str) -> Path:
    """Put ``examples/<framework>`` on ``sys.path`` (its modules have distinct names)."""
    folder = EXAMPLES / framework
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return folder


def sqlalchemy_url(dsn: str) -> str:
    """The test database's libpq URL as a SQLAlchemy URL on psycopg 3 (sync or async)."""
    return dsn.replace("postgresql://", "postgresql+psycopg://", 1)


def line_of(path: Path, snippet: str) -> int:
    """The line of ``path`` holding ``snippet`` (exactly one)."""
    found = [n for n, line in enumerate(path.read_text().splitlines(), 1) if snippet in line]
    assert len(found) == 1, f"{snippet!r} found {len(found)} times in {path}"
    return found[0]


def sites_of(windows: Sequence[StatementWindow], fp: str) -> set[tuple[Path, int, str]]:
    """Call sites recorded for one fingerprint: (resolved file, line, function)."""
    return {
        (Path(s.path).resolve(), s.line, s.function)
        for w in windows
        if w.fingerprint == fp
        for s in w.call_sites
    }


def calls_of(windows: Sequence[StatementWindow], sql: str) -> int:
    fp = fingerprint(sql, "postgres").id
    return sum(w.calls for w in windows if w.fingerprint == fp)


def by_route(store: Store) -> dict[str, RequestWindow]:
    """The store's request windows summed per route (a test may straddle two 10 s windows)."""
    routes: dict[str, RequestWindow] = {}
    for w in store.request_windows():
        seen = routes.get(w.route)
        routes[w.route] = (
            w
            if seen is None
            else replace(
                seen,
                requests=seen.requests + w.requests,
                errors=seen.errors + w.errors,
                db_ms=seen.db_ms + w.db_ms,
                db_calls=seen.db_calls + w.db_calls,
                users=seen.users | w.users,
            )
        )
    return routes


def assert_n_plus_one(
    store: Store, *, route: str, requests: int, repeats: int, at: tuple[Path, str, str]
) -> None:
    """The example's N+1 (each customer's orders, one SELECT each) is the one repeated
    statement in the store: on ``route``, ``repeats`` times in each of ``requests`` requests,
    its call site the loop line of ``at`` = (file, a snippet of the line, function), and
    detection names it."""
    windows = store.repeat_windows()
    assert {(w.route, w.fingerprint) for w in windows} == {(route, windows[0].fingerprint)}
    lazy = windows[0]
    assert sum(w.requests for w in windows) == requests
    assert max(w.max_repeats for w in windows) == repeats
    assert '"order"' in lazy.normalized and "customer_id" in lazy.normalized
    path, snippet, function = at
    site = (path, line_of(path, snippet), function)
    assert site in sites_of(store.statement_windows(), lazy.fingerprint)
    (found,) = detect_n_plus_one(store, time.time(), min_repeats=repeats)
    assert (found.route, found.fingerprint) == (route, lazy.fingerprint)


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """``app`` on a threaded werkzeug server on loopback; yields its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


@contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """``app`` under uvicorn (lifespan on) on loopback in a thread; yields its base URL."""
    import socket
    import time

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
