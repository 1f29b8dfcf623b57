"""Shared by the framework integration tests: the example apps, and reading what they recorded."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from querywatch.records import StatementWindow
from querywatch.sql import fingerprint

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
