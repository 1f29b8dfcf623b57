"""Shared by the dashboard page tests: a store with a shop's hour (a bad deploy, its incident), a
server over it on loopback with a pinned clock, and test_web_auth's client that acts like a
browser (keeps the session cookie, sends its origin on POST, does not follow redirects)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from querywatch.web.server import WebServer, make_server
from respond_helpers import NOW
from test_web_auth import Browser, Reply, bearer

WRITE = "write-token-for-page-tests-0123456"
READ = "read-token-for-page-tests-6543210"
SECRET = "session-secret-for-page-tests-0123456789"


@dataclass
class Client(Browser):
    """test_web_auth's browser, optionally a script with a bearer token instead of a session."""

    token: str | None = None

    def get(self, path: str, **kwargs: object) -> Reply:
        return self.send("GET", path, headers=self._auth())

    def post(self, path: str, form: Mapping[str, str], *, origin: bool = True) -> Reply:
        return self.send(
            "POST", path, dict(form), headers=self._auth(), origin=("self" if origin else None)
        )

    def sign_in(self, token: str, next_path: str = "/") -> Reply:
        reply = super().sign_in(token, next_path)
        assert reply.status == 303, reply.text
        return reply

    def _auth(self) -> dict[str, str] | None:
        return bearer(self.token) if self.token else None


def serve(
    store_path: Path,
    *,
    config_for: Callable[[str], Mapping[str, Any]] | None = None,
    now: float = NOW,
) -> WebServer:
    server = make_server(
        store_path,
        "127.0.0.1",
        0,
        WRITE,
        read_token=READ,
        session_secret=SECRET,
        environment="production",
        config_for=config_for,
        clock=lambda: now,
    )
    server.start()
    return server


def attribute_values(html: str, attribute: str) -> list[str]:
    return re.findall(rf'{attribute}="([^"]*)"', html)
