"""Run one shop release as a real server process (what a deploy starts and stops).

    python -m querywatch.demo.shop.serve --release v1 --db PATH_OR_DSN --port N [--store PATH]

Listens on 127.0.0.1 with the standard library's threaded WSGI server. ``/health`` answers only
after the database has been checked. SIGTERM (or Ctrl-C) stops accepting, lets in-flight requests
finish, flushes capture and exits 0. A port already in use, an unknown release or an unseeded
database exit 2 with one line on stderr.
"""

from __future__ import annotations

import argparse
import errno
import signal
import socketserver
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import WSGIApplication

from querywatch.demo.shop.app import ShopApp, WrapApp, WrapConnection
from querywatch.demo.shop.db import Connection
from querywatch.demo.shop.releases import RELEASES, load_release
from querywatch.demo.shop.seed import read_meta
from querywatch.dsn import redact

EXIT_USAGE = 2


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """A thread per request; non-daemon threads so shutdown waits for in-flight requests."""

    daemon_threads = False
    block_on_close = True
    request_queue_size = 256


class QuietHandler(WSGIRequestHandler):
    """No access log on stderr: the load generator would flood the terminal."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _capture_hooks(store: str) -> tuple[WrapConnection, WrapApp, Callable[[], None]]:
    """Wire querywatch's in-app capture and WSGI middleware into the shop, writing to ``store``."""
    from querywatch.capture.callsite import add_application_path
    from querywatch.capture.instrument import instrument
    from querywatch.capture.middleware import WSGIMiddleware
    from querywatch.capture.recorder import Recorder
    from querywatch.demo.shop import releases

    # The releases are the application here, although they ship inside querywatch's package.
    add_application_path(str(Path(releases.__file__).parent))
    # Flush every second: the demo's detector reads the store, and seconds count.
    recorder = Recorder(store, flush_interval=1.0)

    def wrap_connection(conn: Connection) -> Connection:
        target: Connection = instrument(conn, recorder=recorder).target
        return target

    def wrap_app(app: WSGIApplication) -> WSGIApplication:
        return WSGIMiddleware(app, recorder)

    return wrap_connection, wrap_app, recorder.close


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m querywatch.demo.shop.serve",
        description="Serve one release of the demo shop.",
    )
    parser.add_argument("--release", required=True, choices=RELEASES)
    parser.add_argument("--db", required=True, help="SQLite file or PostgreSQL DSN (seeded)")
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--store", help="querywatch store to capture statements into")
    parser.add_argument("--pool-size", type=int, default=8)
    return parser


def _fail(message: str) -> int:
    print(f"shop serve: {message}", file=sys.stderr, flush=True)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        meta = read_meta(args.db)
    except Exception as exc:
        return _fail(f"cannot open the shop database {redact(args.db)}: {exc}".splitlines()[0])
    if meta is None:
        return _fail(f"no seeded shop in {redact(args.db)}; seed it first")
    release = load_release(args.release)
    closers: list[Callable[[], None]] = []
    kwargs: dict[str, Any] = {}
    if args.store:
        wrap_connection, wrap_app, close_capture = _capture_hooks(args.store)
        kwargs = {"wrap_connection": wrap_connection, "wrap_app": wrap_app}
        closers.append(close_capture)
    app = ShopApp(release, args.db, pool_size=args.pool_size, **kwargs)
    closers.insert(0, app.close)
    try:
        app.check()
        try:
            server = make_server(
                args.host,
                args.port,
                app,
                server_class=ThreadingWSGIServer,
                handler_class=QuietHandler,
            )
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return _fail(f"port {args.port} on {args.host} is already in use")
            return _fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")

        def stop(signum: int, frame: FrameType | None) -> None:
            threading.Thread(target=server.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        print(
            f"shop {release.version} ({release.commit}) on http://{args.host}:{args.port}",
            flush=True,
        )
        try:
            server.serve_forever(poll_interval=0.05)
        finally:
            server.server_close()  # waits for in-flight requests
        return 0
    finally:
        for close in closers:
            close()


if __name__ == "__main__":
    sys.exit(main())
