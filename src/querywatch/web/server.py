"""`querywatch serve`'s server: the app (:mod:`querywatch.web.app`) on uvicorn, on a socket we bind.

We bind the socket ourselves, so port 0 picks a free port whose URL is known before serving, a
busy port is one clear line, and connections made before the loop starts wait in the backlog.
:class:`WebServer` runs uvicorn in the calling thread (``serve_forever``, which in the main thread
stops on SIGINT/SIGTERM) or in a background one (``start``, for tests and the demo), and closes
the store with the server.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from querywatch.config import DEFAULT_ENVIRONMENT
from querywatch.deploys import check_environment
from querywatch.dsn import redact
from querywatch.envelope import encode, failure
from querywatch.errors import ConfigError
from querywatch.store.base import Store
from querywatch.web.api import escape_controls, log
from querywatch.web.app import create_app
from querywatch.web.auth import access_for
from querywatch.web.state import WebState, public_settings

if TYPE_CHECKING:
    from querywatch.respond.responder import Responder

DEFAULT_PORT = 8765
DEFAULT_HOST = "127.0.0.1"  # loopback unless told: the API changes what the store records
#: A client has this long to send a request's line and headers (a stalled one is dropped).
HEAD_TIMEOUT_S = 30.0
_HEAD_KEEP = 8192  # bytes of a request's head kept to log the request line h11 could not parse


class _Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with our answer to what h11 cannot parse (a request line with
    control bytes, a bad header): the error envelope, and the request line in the log with its
    control bytes escaped. A request's head must arrive within :data:`HEAD_TIMEOUT_S`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head = bytearray()
        self._head_deadline: float | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and len(self._head) < _HEAD_KEEP:
            self._head += data[: _HEAD_KEEP - len(self._head)]
        super().data_received(data)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._arm_head_timer()  # still waiting for the rest of the head

    def on_response_complete(self) -> None:
        self._head.clear()
        self._head_deadline = None
        super().on_response_complete()

    def _arm_head_timer(self) -> None:
        now = self.loop.time()
        if self._head_deadline is None:
            self._head_deadline = now + HEAD_TIMEOUT_S
        self._unset_keepalive_if_required()
        self.timeout_keep_alive_task = self.loop.call_later(
            max(0.0, self._head_deadline - now), self.timeout_keep_alive_handler
        )

    def send_400_response(self, msg: str) -> None:
        line = bytes(self._head).split(b"\n", 1)[0].rstrip(b"\r").decode("latin-1")
        client = self.client[0] if self.client else "-"
        log.info('%s "%s" 400', client, redact(escape_controls(line)))
        payload = encode(
            failure(
                "bad_request",
                "malformed HTTP request: the request line or a header is not valid HTTP/1.1",
            )
        )
        # HTTP/1.0: the client's own version could not be read, and the connection closes.
        head = (
            "HTTP/1.0 400 Bad Request\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nCache-Control: no-store\r\n"
            "Server: querywatch\r\nConnection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + payload)
        self.transport.close()


class WebServer:
    """A bound server for the app over one store; ``url`` is known before serving starts."""

    def __init__(self, state: WebState, sock: socket.socket) -> None:
        self.state = state
        self.socket = sock
        self.app = create_app(state)
        config = uvicorn.Config(
            self.app,
            http=_Protocol,
            lifespan="off",
            log_config=None,  # our own request log (querywatch.web); the operator's handlers
            access_log=False,
            server_header=False,  # the Guard says "querywatch", no version
            proxy_headers=True,  # X-Forwarded-Proto/-For from a TLS proxy on this host only
            forwarded_allow_ips="127.0.0.1",
            timeout_keep_alive=5,
            timeout_graceful_shutdown=5,
        )
        self._uvicorn = uvicorn.Server(config)
        self._serving = threading.Event()
        self._stopped = threading.Event()
        self._closed = False

    @property
    def server_address(self) -> tuple[str, int]:
        host, port = self.socket.getsockname()[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.server_address
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    @property
    def store(self) -> Store:
        return self.state.store

    def serve_forever(self, poll_interval: float | None = None) -> None:
        """Serve until :meth:`shutdown` (in the main thread also SIGINT or SIGTERM, after which
        the signal is raised again: KeyboardInterrupt for Ctrl-C). ``poll_interval`` is accepted
        for ``socketserver``'s signature; uvicorn polls on its own."""
        if self._closed or self._uvicorn.should_exit:
            self._stopped.set()
            return
        self._serving.set()
        try:
            self._uvicorn.run(sockets=[self.socket])
        finally:
            self._stopped.set()

    def start(self) -> threading.Thread:
        """Serve in a daemon thread; returns once the server accepts connections."""
        thread = threading.Thread(target=self.serve_forever, name="querywatch-serve", daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not self._uvicorn.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        return thread

    def shutdown(self) -> None:
        """Stop serving and wait until ``serve_forever`` has returned (in-flight requests get up
        to 5 s to finish)."""
        self._uvicorn.should_exit = True
        if self._serving.is_set():
            self._stopped.wait(15)

    def server_close(self) -> None:
        """Close the socket and the store (after :meth:`shutdown`)."""
        if self._closed:
            return
        self._closed = True
        self.socket.close()
        self.state.store.close()

    def __enter__(self) -> WebServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()
        self.server_close()


def make_server(
    store_location: str | Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    *,
    read_token: str | None = None,
    session_secret: str | None = None,
    no_auth: bool = False,
    environment: str = DEFAULT_ENVIRONMENT,
    config_for: Callable[[str], Mapping[str, Any]] | None = None,
    settings: Mapping[str, Any] | None = None,
    clock: Callable[[], float] = time.time,
) -> WebServer:
    """A bound server (port 0 picks a free one) ready for ``serve_forever`` or ``start``.

    Refuses to serve without a token unless ``no_auth`` is set and ``host`` is loopback.
    ``config_for`` (an environment -> its settings) enables the rollback endpoint; ``settings``
    (the resolved config) gives the pages and /metrics theirs (base_url, metrics_top_n…).
    """
    from querywatch.store import open_store

    access = access_for(
        token, read_token=read_token, session_secret=session_secret, no_auth=no_auth, host=host
    )
    check_environment(environment)
    store = open_store(store_location)
    responder_for = None
    if config_for is not None:
        from querywatch.respond.responder import responder_from_config
        from querywatch.respond.setup import notifier_from_config

        def responder_for(env: str) -> Responder:
            cfg = config_for(env)
            return responder_from_config(cfg, store, notifier_from_config(cfg))

    try:
        if responder_for is not None:
            responder_for(environment)  # a broken rollback setting stops the start, not a request
        state = WebState(
            store=store,
            access=access,
            environment=environment,
            clock=clock,
            settings=public_settings(settings),
            responder_for=responder_for,
        )
        return WebServer(state, _listen(host, port))
    except ConfigError:
        store.close()
        raise
    except OSError as exc:
        store.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(128)  # a burst of parallel CI jobs should queue, not wait for a SYN retry
    except OSError:
        sock.close()
        raise
    return sock
