"""Who may read and who may act on `querywatch serve`, over real HTTP on loopback.

The read token reads (pages, /metrics, the API's GETs) and never acts; the write token acts; a
person signs in once at /login and gets a signed session cookie that remembers which token it
was. Forms need a CSRF token tied to that session and must come from this server's pages.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from urllib.parse import urlencode

import pytest
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Route

from querywatch.errors import ConfigError
from querywatch.web.auth import checked_form, csrf_token, require_read
from querywatch.web.server import WebServer, make_server

WRITE = "write-token-for-tests-0123456789"
READ = "read-token-for-tests-9876543210"
SECRET = "session-secret-for-tests-000000"


async def action(request: Request) -> PlainTextResponse:
    """An action form, as the dashboard's ack/note/rollback are: checked_form, then act."""
    form = await checked_form(request)
    return PlainTextResponse(f"acted: {form.get('what')}")


async def form_page(request: Request) -> HTMLResponse:
    """A page with an action form, as the incident page has."""
    require_read(request)
    return HTMLResponse(f'<form method="post"><input name="csrf" value="{csrf_token(request)}">')


async def broken_page(request: Request) -> HTMLResponse:
    raise RuntimeError("a bug with a secret-looking detail")


TEST_ROUTES = [
    Route("/test/action", action, methods=["POST"]),
    Route("/test/form", form_page, methods=["GET"]),
    Route("/test/broken", broken_page, methods=["GET"]),
]


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
        return None  # every test looks at the redirect itself


_OPENER = urllib.request.build_opener(_NoRedirects)


@dataclass
class Browser:
    """A client that keeps the session cookie, sends its own origin on POST (as a browser does)
    and does not follow redirects."""

    base: str
    cookies: dict[str, str] = field(default_factory=dict)

    def send(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        *,
        headers: dict[str, str] | None = None,
        origin: str | None = "self",
    ) -> Reply:
        sent = {"Accept": "text/html", **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = None
        if form is not None:
            data = urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        if method == "POST" and origin is not None:
            sent["Origin"] = self.base if origin == "self" else origin
        request = urllib.request.Request(self.base + path, data, sent, method=method)
        try:
            with _OPENER.open(request, timeout=10) as response:
                reply = Reply(response.status, response.headers, response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                reply = Reply(exc.code, exc.headers, exc.read())
        for cookie in reply.headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            value = rest.split(";")[0]
            if "Max-Age=0" in cookie:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return reply

    def get(self, path: str, **kwargs: object) -> Reply:
        return self.send("GET", path, **kwargs)  # type: ignore[arg-type]

    def csrf(self, path: str = "/login") -> str:
        """The CSRF token a page of this session carries in its forms."""
        page = self.get(path)
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found, page.text
        return found.group(1)

    def sign_in(self, token: str, next_path: str = "/") -> Reply:
        return self.send("POST", "/login", {"token": token, "csrf": self.csrf(), "next": next_path})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[WebServer]:
    with make_server(
        tmp_path / "store.sqlite3",
        "127.0.0.1",
        0,
        WRITE,
        read_token=READ,
        session_secret=SECRET,
        environment="prod",
    ) as srv:
        srv.app.router.routes.extend(TEST_ROUTES)
        srv.start()
        yield srv


@pytest.fixture
def browser(server: WebServer) -> Browser:
    return Browser(server.url)


def test_the_read_token_reads_pages_and_metrics_but_acts_on_nothing(browser: Browser) -> None:
    assert browser.get("/", headers=bearer(READ)).status == 200
    metrics = browser.get("/metrics", headers=bearer(READ))
    assert metrics.status == 200 and metrics.headers["Content-Type"].startswith("text/plain")
    assert b"# TYPE" in metrics.body
    assert browser.get("/api/deploys", headers=bearer(READ)).status == 200
    refused = browser.send(
        "POST", "/api/deploys", headers={**bearer(READ), "Content-Type": "application/json"}
    )
    assert refused.status == 403
    assert "can only read" in json.loads(refused.body)["error"]["message"]
    acted = browser.send("POST", "/test/action", {"what": "ack"}, headers=bearer(READ))
    assert acted.status == 403 and "acted" not in acted.text


def test_the_write_token_acts(browser: Browser) -> None:
    started = browser.send(
        "POST",
        "/api/deploys",
        headers={**bearer(WRITE), "Content-Type": "application/json"},
        origin=None,
    )
    assert started.status == 400  # past auth: the empty body is what is wrong
    # A script with the write token needs neither a CSRF token nor an Origin.
    acted = browser.send(
        "POST", "/test/action", {"what": "ack"}, headers=bearer(WRITE), origin=None
    )
    assert acted.status == 200 and acted.text == "acted: ack"


def test_without_credentials_pages_redirect_to_login_and_the_api_says_401(
    browser: Browser,
) -> None:
    page = browser.get("/?since=6h")
    assert page.status == 303 and page.location == "/login?next=%2F%3Fsince%3D6h"
    for path in ("/metrics", "/api/deploys"):
        reply = browser.get(path)
        assert reply.status == 401, path
        assert json.loads(reply.body)["error"]["code"] == "unauthorized"
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = browser.get("/metrics", headers=bearer("not-a-token-of-this-server-000"))
    assert wrong.status == 403
    assert browser.get("/healthz").status == 200  # load balancers probe without credentials
    assert browser.get("/static/style.css").status == 200  # the login page needs its style
    assert browser.get("/login").status == 200


def test_a_session_cookie_remembers_the_read_token(
    browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="querywatch.web")
    signed_in = browser.sign_in(READ, "/?since=24h")
    assert signed_in.status == 303 and signed_in.location == "/?since=24h"
    cookie = signed_in.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http on loopback; https gets Secure
    page = browser.get("/")
    assert page.status == 200 and "read only" in page.text
    assert browser.get("/metrics").status == 200
    csrf = browser.csrf("/")
    refused = browser.send("POST", "/test/action", {"what": "ack", "csrf": csrf})
    assert refused.status == 403 and "can only read" in refused.text
    assert READ not in caplog.text and READ not in page.text


def test_the_session_cookie_is_secure_behind_a_tls_proxy(browser: Browser) -> None:
    """A TLS proxy on this host says https in X-Forwarded-Proto: the cookie is then Secure."""
    csrf = browser.csrf()
    signed_in = browser.send(
        "POST",
        "/login",
        {"token": READ, "csrf": csrf, "next": "/"},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert signed_in.status == 303
    assert "; Secure" in signed_in.headers["Set-Cookie"]


def test_a_session_from_the_write_token_acts_with_its_csrf_token(browser: Browser) -> None:
    assert browser.sign_in(WRITE).status == 303
    page = browser.get("/")
    assert "can act" in page.text
    csrf = browser.csrf("/")
    acted = browser.send("POST", "/test/action", {"what": "note", "csrf": csrf})
    assert acted.status == 200 and acted.text == "acted: note"


@pytest.mark.parametrize(
    "csrf", [None, "", "forged-token", "rYKLyRY1dKGQpFPSWfWOMVlAky6M9l9EzKnxTgCa37w"]
)
def test_a_form_without_its_sessions_csrf_token_is_refused(
    browser: Browser, csrf: str | None
) -> None:
    browser.sign_in(WRITE)
    form = {"what": "rollback"} if csrf is None else {"what": "rollback", "csrf": csrf}
    refused = browser.send("POST", "/test/action", form)
    assert refused.status == 403 and "CSRF" in refused.text


def test_a_csrf_token_of_another_session_is_refused(server: WebServer) -> None:
    alice, mallory = Browser(server.url), Browser(server.url)
    alice.sign_in(WRITE)
    mallory.sign_in(WRITE)
    theirs = mallory.csrf("/")
    refused = alice.send("POST", "/test/action", {"what": "ack", "csrf": theirs})
    assert refused.status == 403 and "CSRF" in refused.text


def test_cross_origin_and_originless_forms_are_refused(browser: Browser) -> None:
    browser.sign_in(WRITE)
    csrf = browser.csrf("/")
    other = browser.send(
        "POST", "/test/action", {"what": "ack", "csrf": csrf}, origin="http://evil.example"
    )
    assert other.status == 403 and "cross-origin" in json.loads(other.body)["error"]["message"]
    bare = browser.send("POST", "/test/action", {"what": "ack", "csrf": csrf}, origin=None)
    assert bare.status == 403 and "not sent from this server" in bare.text
    referred = browser.send(
        "POST",
        "/test/action",
        {"what": "ack", "csrf": csrf},
        origin=None,
        headers={"Referer": browser.base + "/incidents"},
    )
    assert referred.status == 200  # a browser that sends no Origin sends the Referer


def test_a_json_post_from_a_session_needs_the_api_rules(browser: Browser) -> None:
    """A cross-site page cannot make a browser send JSON without a preflight: a form-typed
    POST to the API is refused even from a signed-in browser."""
    browser.sign_in(WRITE)
    form_typed = browser.send("POST", "/api/deploys", {"version": "1"})
    assert form_typed.status == 415


def test_logout_ends_the_session_even_for_a_kept_copy(browser: Browser) -> None:
    browser.sign_in(WRITE)
    kept = dict(browser.cookies)
    csrf = browser.csrf("/")
    out = browser.send("POST", "/logout", {"csrf": csrf})
    assert out.status == 303 and out.location == "/login"
    assert "Max-Age=0" in out.headers["Set-Cookie"]
    assert browser.get("/").status == 303
    replay = Browser(browser.base, kept)
    assert replay.get("/").status == 303  # revoked on this server
    assert replay.get("/metrics").status == 401


def test_a_tampered_or_foreign_cookie_is_not_a_session(server: WebServer, tmp_path: Path) -> None:
    reader = Browser(server.url)
    reader.sign_in(READ)
    name, value = next(iter(reader.cookies.items()))
    promoted = Browser(server.url, {name: value.replace("read.", "write.", 1)})
    assert promoted.get("/").status == 303
    with make_server(
        tmp_path / "other.sqlite3",
        "127.0.0.1",
        0,
        "another-write-token-000000",
        session_secret=SECRET,
    ) as other:
        other.start()
        # Same key, other token: a session made with a token that is not this server's.
        assert Browser(other.url, dict(reader.cookies)).get("/").status == 303


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/login",
    ],
)
def test_next_never_leaves_the_server(browser: Browser, target: str) -> None:
    assert 'name="next" value="/"' in browser.get("/login?" + urlencode({"next": target})).text
    signed_in = browser.sign_in(READ, target)
    assert signed_in.status == 303 and signed_in.location == "/"


def test_a_wrong_token_at_login_is_refused_without_echoing_it(
    browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="querywatch.web")
    wrong = "wrong-token-typed-at-login-0000"
    refused = browser.sign_in(wrong)
    assert refused.status == 403 and "not valid" in refused.text
    assert wrong not in refused.text and wrong not in caplog.text
    assert browser.get("/").status == 303
    stale = browser.send("POST", "/login", {"token": READ, "csrf": "stale", "next": "/"})
    assert stale.status == 403 and "CSRF" in stale.text


def test_a_cross_site_arrival_at_login_gets_one_same_site_hop(browser: Browser) -> None:
    """A SameSite=Strict cookie is not sent on a navigation from another site (a Slack link);
    the login page refreshes itself once, same-site, so a signed-in browser is recognised."""
    hop = browser.get("/login?next=%2Fincidents", headers={"Sec-Fetch-Site": "cross-site"})
    assert hop.status == 200
    assert 'http-equiv="refresh"' in hop.text and "retry=1" in hop.text
    browser.sign_in(READ)
    back = browser.get("/login?next=%2Fincidents&retry=1")
    assert back.status == 303 and back.location == "/incidents"


def test_a_host_that_is_not_loopback_gets_nothing_without_a_token(browser: Browser) -> None:
    host = {"Host": "dashboard.example.com"}
    assert browser.get("/", headers=host).status == 303
    assert browser.get("/metrics", headers=host).status == 401
    assert browser.get("/api/deploys", headers=host).status == 401
    assert browser.get("/", headers={**host, **bearer(READ)}).status == 200


def test_no_auth_serves_loopback_names_only_and_still_checks_forms(tmp_path: Path) -> None:
    with make_server(tmp_path / "s.sqlite3", "127.0.0.1", 0, no_auth=True) as srv:
        srv.app.router.routes.extend(TEST_ROUTES)
        srv.start()
        local = Browser(srv.url)
        page = local.get("/")
        assert page.status == 200 and "no auth" in page.text
        assert local.get("/metrics").status == 200
        rebound = local.get("/", headers={"Host": "evil.example"})
        assert rebound.status == 421
        assert local.send("POST", "/test/action", {"what": "ack"}).status == 403  # no CSRF
        acted = local.send(
            "POST", "/test/action", {"what": "ack", "csrf": local.csrf("/test/form")}
        )
        assert acted.status == 200
        assert local.get("/login").status == 303  # nothing to sign in to


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"host": "0.0.0.0", "no_auth": True}, "--no-auth serves on loopback only"),
        (
            {"no_auth": True, "read_token": READ},
            "--no-auth conflicts with the configured api_read_token",
        ),
        ({"token": WRITE, "read_token": WRITE}, "api_read_token is the same as api_token"),
        ({"token": WRITE, "read_token": "short"}, "api_read_token must be at least 16"),
        ({"token": WRITE, "session_secret": "short"}, "session_secret must be at least 16"),
    ],
)
def test_the_server_refuses_unsafe_access_settings(
    tmp_path: Path, kwargs: dict[str, object], needle: str
) -> None:
    host = str(kwargs.pop("host", "127.0.0.1"))
    with pytest.raises(ConfigError) as caught:
        make_server(tmp_path / "s.sqlite3", host, 0, **kwargs)  # type: ignore[arg-type]
    assert needle in str(caught.value)
    assert WRITE not in str(caught.value) and READ not in str(caught.value)


def test_pages_are_not_cached_framed_or_sniffed(browser: Browser) -> None:
    page = browser.get("/", headers=bearer(READ))
    assert page.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Server"] == "querywatch"
    assert "Set-Cookie" not in page.headers  # no form on the page: no pre-session


def test_errors_are_pages_for_browsers_and_envelopes_for_scripts(
    browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    missing = browser.get("/no/such/page", headers=bearer(READ))
    assert missing.status == 404 and missing.headers["Content-Type"].startswith("text/html")
    assert "There is no page at /no/such/page" in missing.text
    scripted = browser.get("/no/such/page", headers={**bearer(READ), "Accept": "*/*"})
    assert scripted.status == 404
    assert json.loads(scripted.body)["error"]["code"] == "not_found"
    broken = browser.get("/test/broken", headers=bearer(READ))
    assert broken.status == 500 and "Internal error" in broken.text
    assert "secret-looking" not in broken.text and "Traceback" not in broken.text
    assert "secret-looking" in caplog.text  # the operator's log has it
