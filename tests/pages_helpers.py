"""Shared by the dashboard page tests: a store with a shop's hour (a bad deploy, its incident), a
server over it on loopback with a pinned clock, and a client that acts like a browser (keeps the
session cookie, sends its origin on POST, does not follow redirects)."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from querywatch.web.server import WebServer, make_server
from respond_helpers import NOW

WRITE = "write-token-for-page-tests-0123456"
READ = "read-token-for-page-tests-6543210"
SECRET = "session-secret-for-page-tests-0123456789"


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    @property
    def location(self) -> str | None:
        return self.headers.get("Location")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


@dataclass
class Client:
    base: str
    cookies: dict[str, str] = field(default_factory=dict)
    token: str | None = None  # sent as a bearer token (a script), instead of a session

    def send(
        self, method: str, path: str, form: Mapping[str, str] | None = None, *, origin: bool = True
    ) -> Reply:
        headers = {"Accept": "text/html"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = None
        if form is not None:
            data = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if method == "POST" and origin:
            headers["Origin"] = self.base
        request = urllib.request.Request(self.base + path, data, headers, method=method)
        try:
            with _OPENER.open(request, timeout=30) as response:
                reply = Reply(response.status, response.headers, response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                reply = Reply(exc.code, exc.headers, exc.read())
        for cookie in reply.headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            if "Max-Age=0" in cookie:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = rest.split(";")[0]
        return reply

    def get(self, path: str) -> Reply:
        return self.send("GET", path)

    def post(self, path: str, form: Mapping[str, str], *, origin: bool = True) -> Reply:
        return self.send("POST", path, form, origin=origin)

    def sign_in(self, token: str) -> None:
        csrf = self.csrf("/login")
        reply = self.post("/login", {"token": token, "csrf": csrf, "next": "/"})
        assert reply.status == 303, reply.text

    def csrf(self, path: str) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.get(path).text)
        assert found, f"no CSRF field on {path}"
        return found.group(1)


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
