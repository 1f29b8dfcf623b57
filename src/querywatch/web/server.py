"""The deploy API over the standard library's threading HTTP server (`querywatch serve` runs it).

No web framework: the API is four small endpoints that CI calls a few times per deploy, so
``http.server`` keeps the core install light. One store is opened for the server's lifetime and
shared by the request threads (both store backends serialise access with a lock).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from querywatch.config import DEFAULT_ENVIRONMENT
from querywatch.deploys import check_environment
from querywatch.dsn import redact
from querywatch.envelope import encode
from querywatch.errors import ConfigError
from querywatch.web.api import MAX_BODY_BYTES, DeployApi, Response, error, escape_controls, log

if TYPE_CHECKING:
    from querywatch.respond.responder import Responder

MIN_TOKEN_LENGTH = 16
_DRAIN_LIMIT = 1024 * 1024  # read (and drop) an oversized body up to this, so the 413 arrives
DEFAULT_PORT = 8765
DEFAULT_HOST = "127.0.0.1"  # loopback unless told: the API changes what the store records


class ApiServer(ThreadingHTTPServer):
    """A threading HTTP server that owns its store and closes it with the server."""

    daemon_threads = True
    request_queue_size = 64  # a burst of parallel CI jobs should queue, not wait for a SYN retry

    def __init__(self, address: tuple[str, int], api: DeployApi) -> None:
        self.api = api
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = str(self.server_address[0]), self.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def server_close(self) -> None:
        super().server_close()
        self.api.store.close()


class _Handler(BaseHTTPRequestHandler):
    server: ApiServer
    server_version = "querywatch"
    timeout = 30  # a client that stops sending does not hold a thread forever

    def _dispatch(self) -> None:
        if self.headers.get("Transfer-Encoding"):
            self._send(error(411, "send the body with a Content-Length (chunked is not supported)"))
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length < 0:
                raise ValueError(length)
        except ValueError:
            self._send(error(400, "Content-Length must be a non-negative whole number"))
            return
        if length > MAX_BODY_BYTES:
            self._drain(length)
            self._send(error(413, f"the body is {length} bytes; the limit is {MAX_BODY_BYTES}"))
            return
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        self._send(self.server.api.handle(self.command, self.path, headers, body))

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _dispatch

    def version_string(self) -> str:
        return self.server_version  # no Python version in the Server header

    def _drain(self, length: int) -> None:
        """Read what the client is sending, so closing the socket does not reset the response."""
        left = min(length, _DRAIN_LIMIT)
        try:
            while left > 0:
                chunk = self.rfile.read(min(left, 65536))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass

    def _send(self, response: Response) -> None:
        payload = encode(response.envelope)
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, unknown method…) in the same envelope."""
        self.close_connection = True
        self._send(error(code, message or self.responses.get(code, ("error",))[0]))

    def log_message(self, format: str, *args: Any) -> None:
        # The request line and status only: headers (and so the token) are never logged. The
        # request line is the client's: its control bytes are escaped, not written out.
        log.info("%s %s", self.address_string(), redact(escape_controls(format % args)))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token(token: str | None, *, no_auth: bool, host: str) -> str | None:
    """The token to require, or ``None`` when serving without auth is allowed (loopback only)."""
    if no_auth:
        if token:
            raise ConfigError(
                "--no-auth conflicts with the configured api_token: drop one of them",
                setting="api_token",
            )
        if not _is_loopback(host):
            raise ConfigError(
                f"--no-auth serves on loopback only, not on {host}: set api_token to serve there",
                setting="api_token",
            )
        return None
    if not token:
        raise ConfigError(
            "refusing to serve the API without a token: set QUERYWATCH_API_TOKEN (or api_token "
            "in querywatch.toml), or pass --no-auth to serve on loopback only",
            setting="api_token",
        )
    if len(token) < MIN_TOKEN_LENGTH or not token.isascii() or not token.isprintable():
        raise ConfigError(
            f"api_token must be at least {MIN_TOKEN_LENGTH} printable ASCII characters; make one "
            "with: python -c 'import secrets; print(secrets.token_urlsafe(32))'",
            setting="api_token",
        )
    if any(c.isspace() for c in token):
        raise ConfigError("api_token must not contain spaces", setting="api_token")
    return token


def make_server(
    store_location: str | Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    *,
    no_auth: bool = False,
    environment: str = DEFAULT_ENVIRONMENT,
    config_for: Callable[[str], Mapping[str, Any]] | None = None,
) -> ApiServer:
    """A bound server (port 0 picks a free one) ready for ``serve_forever``; refuses to serve
    without a token unless ``no_auth`` is set and ``host`` is loopback. ``config_for`` (an
    environment -> its settings) enables the rollback endpoint."""
    from querywatch.store import open_store

    required = check_token(token, no_auth=no_auth, host=host)
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
        api = DeployApi(store, required, environment=environment, responder_for=responder_for)
        return ApiServer((host, port), api)
    except ConfigError:
        store.close()
        raise
    except OSError as exc:
        store.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
