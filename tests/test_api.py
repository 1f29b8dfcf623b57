"""The deploy API over real HTTP: a server on a free loopback port, urllib as the client."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from querywatch.cli import Context
from querywatch.cli.serve import serve
from querywatch.errors import ConfigError
from querywatch.web.api import MAX_BODY_BYTES
from querywatch.web.server import WebServer, make_server
from test_deploys import deploy_settings  # noqa: F401 - the autouse fixture, for `serve`

TOKEN = "s3cret-token-for-tests-0123456789"
WRONG = "not-the-token-but-long-enough-42"


@dataclass
class Reply:
    status: int
    headers: Message  # HTTP header names are case-insensitive: so is this mapping
    envelope: dict[str, Any]


@dataclass
class Client:
    """Sends requests, checks the envelope of every reply, and keeps every raw reply."""

    base: str
    seen: list[str] = field(default_factory=list)

    def call(
        self,
        method: str,
        path: str,
        payload: object = None,
        *,
        data: bytes | None = None,
        token: str | None = TOKEN,
        content_type: str | None = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Reply:
        if payload is not None:
            data = json.dumps(payload).encode()
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if content_type is not None and (data is not None or method == "POST"):
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.base + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, got, raw = response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                status, got, raw = exc.code, exc.headers, exc.read()
        self.seen.append(f"{got}\n{raw.decode()}")
        return Reply(status, got, check_envelope(status, got, raw))


def check_envelope(status: int, headers: Message, raw: bytes) -> dict[str, Any]:
    """The one shape: {"ok": true, "data": ...} or {"ok": false, "error": {code, message}}."""
    assert headers["Content-Type"] == "application/json"
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1
    envelope = json.loads(raw)
    assert isinstance(envelope, dict)
    if status < 400:
        assert set(envelope) == {"ok", "data"} and envelope["ok"] is True
    else:
        assert set(envelope) == {"ok", "error"} and envelope["ok"] is False
        assert set(envelope["error"]) == {"code", "message"}
        assert re.fullmatch(r"[a-z_]+", envelope["error"]["code"])
        message = envelope["error"]["message"]
        assert isinstance(message, str) and message and "\n" not in message
    return envelope


@pytest.fixture
def server(tmp_path: Path) -> Iterator[WebServer]:
    srv = make_server(tmp_path / "store.sqlite3", "127.0.0.1", 0, TOKEN, environment="prod")
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


@pytest.fixture
def client(server: WebServer) -> Client:
    return Client(server.url)


def test_start_finish_and_list_over_http(client: Client) -> None:
    started = client.call(
        "POST",
        "/api/deploys",
        {"version": "2.4.0", "commit": "9F1C2E7", "author": "github-actions"},
    )
    assert started.status == 201
    marker = started.envelope["data"]
    assert (marker["version"], marker["commit"], marker["environment"]) == (
        "2.4.0",
        "9f1c2e7",
        "prod",  # the server's default environment
    )
    assert marker["finished_at"] is None and marker["id"].startswith("prod:2.4.0:")

    finished = client.call("POST", f"/api/deploys/{quote(marker['id'], safe='')}/finish")
    assert finished.status == 200
    assert finished.envelope["data"]["finished_at"] >= marker["started_at"]

    client.call("POST", "/api/deploys", {"version": "9", "environment": "staging"})
    listed = client.call("GET", "/api/deploys?environment=prod&since=1h")
    assert listed.status == 200
    assert [m["id"] for m in listed.envelope["data"]] == [marker["id"]]
    assert len(client.call("GET", "/api/deploys").envelope["data"]) == 2

    again = client.call("POST", f"/api/deploys/{quote(marker['id'], safe='')}/finish", {})
    assert again.status == 409 and "already finished" in again.envelope["error"]["message"]


def test_ids_with_a_slash_are_finished_through_percent_encoding(client: Client) -> None:
    started = client.call("POST", "/api/deploys", {"version": "release/1.2", "id": "gh/run/7"})
    assert started.envelope["data"]["id"] == "gh/run/7"
    finished = client.call("POST", "/api/deploys/gh%2Frun%2F7/finish")
    assert finished.status == 200 and finished.envelope["data"]["version"] == "release/1.2"


def test_missing_token_is_401_and_wrong_token_is_403(client: Client) -> None:
    missing = client.call("POST", "/api/deploys", {"version": "1"}, token=None)
    assert missing.status == 401 and missing.envelope["error"]["code"] == "unauthorized"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = client.call("POST", "/api/deploys", {"version": "1"}, token=WRONG)
    assert wrong.status == 403 and wrong.envelope["error"]["code"] == "forbidden"
    assert client.call("GET", "/api/deploys", token=None).status == 401
    assert client.call("GET", "/api/deploys").envelope["data"] == []  # nothing was recorded


# Every endpoint and every error, each checked against the envelope by Client.call.
CASES: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("GET", "/healthz", {"token": None}, 200, ""),
    ("GET", "/api/deploys", {}, 200, ""),
    ("POST", "/api/deploys", {"payload": {"version": "1.0.0"}}, 201, ""),
    ("POST", "/api/deploys/prod%3A1.0.0%3A0/finish", {}, 404, "no deploy with id prod:1.0.0:0"),
    ("GET", "/api/deploys", {"token": None}, 401, "missing bearer token"),
    ("GET", "/api/deploys", {"token": WRONG}, 403, "not valid"),
    ("POST", "/api/deploys", {"data": b'{"version": "1",'}, 400, "malformed JSON"),
    ("POST", "/api/deploys", {"data": b"\xff\xfe{"}, 400, "malformed JSON"),
    ("POST", "/api/deploys", {"payload": {"commit": "abc1234"}}, 400, 'missing field "version"'),
    ("POST", "/api/deploys", {"data": b""}, 400, "empty body"),
    ("POST", "/api/deploys", {"payload": {"version": ""}}, 400, "version must not be empty"),
    ("POST", "/api/deploys", {"payload": {"version": 3}}, 400, "must be a string, not a number"),
    (
        "POST",
        "/api/deploys",
        {"payload": {"version": "--upload-pack=touch x"}},
        400,
        "version '--upload-pack=touch x' must not start with '-'",
    ),
    (
        "POST",
        "/api/deploys",
        {"payload": {"version": "1", "id": "-d"}},
        400,
        "deploy id '-d' must not start with '-'",
    ),
    ("POST", "/api/deploys/-d/finish", {}, 400, "deploy id '-d' must not start with '-'"),
    ("POST", "/api/deploys", {"payload": ["1"]}, 400, "JSON object, not an array"),
    ("POST", "/api/deploys", {"payload": {"version": "1", "env": "x"}}, 400, "unknown field 'env'"),
    (
        "POST",
        "/api/deploys",
        {"payload": {"version": "1", "commit": "HEAD"}},
        400,
        "not a hex commit id",
    ),
    (
        "POST",
        "/api/deploys",
        {"payload": {"version": "1", "environment": "a b"}},
        400,
        "environment 'a b'",
    ),
    (
        "POST",
        "/api/deploys",
        {"payload": {"version": "1"}, "content_type": "text/plain"},
        415,
        "Content-Type must be application/json (got text/plain)",
    ),
    (
        "POST",
        "/api/deploys/x/finish",
        {"content_type": None},
        415,
        "Content-Type must be application/json (got none), on every POST",
    ),
    (
        "POST",
        "/api/deploys",
        {"data": b"", "content_type": "application/x-www-form-urlencoded"},
        415,
        "(got application/x-www-form-urlencoded)",
    ),
    (
        "POST",
        "/api/deploys",
        {"payload": {"version": "1"}, "headers": {"Origin": "http://evil.example"}},
        403,
        "cross-origin request refused: Origin 'http://evil.example' is not this server",
    ),
    ("GET", "/api/deploys", {"headers": {"Origin": "null"}}, 403, "Origin 'null'"),
    ("GET", "/nowhere", {"headers": {"Origin": "https://evil.example"}}, 403, "cross-origin"),
    (
        "POST",
        "/api/deploys",
        {"data": b"{" + b" " * MAX_BODY_BYTES + b"}"},
        413,
        f"the limit is {MAX_BODY_BYTES}",
    ),
    ("POST", "/api/deploys/x/finish", {"payload": {"at": 1}}, 400, "finish takes no fields"),
    ("GET", "/api/deploys?since=last+week", {}, 400, "since: cannot read 'last week'"),
    ("GET", "/api/deploys?since=nan", {}, 400, "since: cannot read 'nan'"),
    ("GET", "/api/deploys?since=1e400", {}, 400, "not a finite number"),
    ("GET", "/api/deploys?until=-inf", {}, 400, "until: cannot read '-inf'"),
    ("GET", "/api/deploys?since=" + "9" * 400 + "d", {}, 400, "not a finite number"),
    ("POST", "/api/deploys", {"data": b"[" * 60000}, 400, "malformed JSON: nested too deeply"),
    (
        "POST",
        "/api/deploys",
        {"data": b'{"a":' * 5000 + b"1" + b"}" * 5000},
        400,
        "malformed JSON: nested too deeply",
    ),
    (
        "POST",
        "/api/deploys",
        {"data": b'{"version": ' + b"1" * 5000 + b"}"},
        400,
        "malformed JSON: Exceeds the limit (4300 digits) for integer string conversion",
    ),
    ("POST", "/api/deploys", {"data": b'{"version": NaN}'}, 400, "NaN is not a JSON number"),
    ("GET", "/api/deploys?colour=red", {}, 400, "unknown parameter 'colour'"),
    ("GET", "/api/deploys?environment=a%20b", {}, 400, "environment 'a b'"),
    (
        "POST",
        "/api/deploys",
        {"payload": {"version": "1", "environment": ""}},
        400,
        "environment ''",
    ),
    ("GET", "/nowhere", {}, 404, "no such endpoint: /nowhere"),
    ("GET", "/nowhere", {"token": None}, 404, "no such endpoint"),
    ("DELETE", "/api/deploys", {}, 405, "DELETE is not allowed on /api/deploys (use GET, POST)"),
    ("GET", "/api/deploys/x/finish", {}, 405, "use POST"),
    ("POST", "/healthz", {}, 405, "use GET"),
    ("BREW", "/api/deploys", {}, 501, "Unsupported method"),
]


@pytest.mark.parametrize(("method", "path", "how", "status", "needle"), CASES)
def test_every_endpoint_and_error_uses_the_envelope(
    client: Client, method: str, path: str, how: dict[str, Any], status: int, needle: str
) -> None:
    reply = client.call(method, path, **how)
    assert reply.status == status, reply.envelope
    if status >= 400:
        assert needle in reply.envelope["error"]["message"]
    if status == 405:
        assert reply.headers["Allow"]


def test_a_malformed_request_line_gets_the_envelope_too(server: WebServer) -> None:
    host, port = str(server.server_address[0]), server.server_address[1]
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(b"GET /api/deploys extra-word HTTP/1.1\r\n\r\n")
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 400")
    envelope = json.loads(body)
    assert envelope["ok"] is False and envelope["error"]["code"] == "bad_request"


def test_the_token_never_appears_in_responses_or_logs(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="querywatch.web")
    for method, path, how, _, _ in CASES:
        client.call(method, path, **how)
    started = client.call("POST", "/api/deploys", {"version": "7", "author": "ci"})
    client.call("POST", f"/api/deploys/{quote(started.envelope['data']['id'], safe='')}/finish")
    assert '"POST /api/deploys HTTP/1.1" 201' in caplog.text  # requests are logged…
    for secret in (TOKEN, WRONG):
        assert secret not in caplog.text  # …but never a token, right or wrong
        assert not any(secret in reply for reply in client.seen)


def test_bad_input_is_answered_without_a_traceback_in_the_log(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="querywatch.web")
    for method, path, how, status, _ in CASES:
        assert client.call(method, path, **how).status == status
    assert "Traceback" not in caplog.text
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def raw_get(server: WebServer, target: bytes) -> bytes:
    host, port = str(server.server_address[0]), server.server_address[1]
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(
            b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


def test_control_bytes_in_the_request_line_are_escaped_in_the_log(
    server: WebServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A request line can carry terminal escapes (retitle, clear, recolour the operator's
    terminal) or a fake log line; the log shows them as \\xNN. The HTTP parser refuses a target
    with control bytes (400, the envelope), and the line it could not parse is logged too."""
    caplog.set_level(logging.INFO, logger="querywatch.web")
    evil = b"/api/\x1b]0;owned\x07\x1b[2J\x1b[31mred\x08\x9bx\x7f"
    assert b" 400 " in raw_get(server, evil).split(b"\r\n")[0]
    assert b" 400 " in raw_get(server, b"/api/\x1b[2J\x0bmore").split(b"\r\n")[0]
    logged = [r.getMessage() for r in caplog.records if "/api/" in r.getMessage()]
    assert len(logged) == 2, caplog.text
    for line in logged:
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in line), repr(line)
    assert '/api/\\x1b]0;owned\\x07\\x1b[2J\\x1b[31mred\\x08\\x9bx\\x7f HTTP/1.1" 400' in logged[0]
    assert "/api/\\x1b[2J\\x0bmore" in logged[1]


def test_concurrent_starts_are_all_recorded(client: Client) -> None:
    statuses: list[int] = []

    def start(n: int) -> None:
        statuses.append(client.call("POST", "/api/deploys", {"version": f"v{n}"}).status)

    threads = [threading.Thread(target=start, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert statuses == [201] * 16
    versions = {m["version"] for m in client.call("GET", "/api/deploys").envelope["data"]}
    assert versions == {f"v{n}" for n in range(16)}


def test_healthz_needs_no_token_and_reports_ok(client: Client) -> None:
    assert client.call("GET", "/healthz", token=None).envelope == {
        "ok": True,
        "data": {"status": "ok"},
    }


@pytest.mark.parametrize(
    ("token", "host", "no_auth", "needle"),
    [
        (None, "127.0.0.1", False, "refusing to serve the API without a token"),
        ("", "127.0.0.1", False, "refusing to serve the API without a token"),
        ("short", "127.0.0.1", False, "at least 16 printable ASCII characters"),
        ("a token with spaces inside", "127.0.0.1", False, "must not contain spaces"),
        (None, "0.0.0.0", True, "--no-auth serves on loopback only, not on 0.0.0.0"),
        (TOKEN, "127.0.0.1", True, "--no-auth conflicts with the configured api_token"),
    ],
)
def test_the_server_refuses_to_start_unprotected(
    tmp_path: Path, token: str | None, host: str, no_auth: bool, needle: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        make_server(tmp_path / "s.sqlite3", host, 0, token, no_auth=no_auth)
    assert needle in str(caught.value) and "\n" not in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_same_origin_requests_pass_the_origin_check(client: Client) -> None:
    origin = client.base  # http://127.0.0.1:PORT, what a page served from here would send
    started = client.call("POST", "/api/deploys", {"version": "1"}, headers={"Origin": origin})
    assert started.status == 201, started.envelope
    other_port = re.sub(r":\d+$", ":1", origin)
    refused = client.call("GET", "/api/deploys", headers={"Origin": other_port})
    assert refused.status == 403
    assert len(client.call("GET", "/api/deploys").envelope["data"]) == 1


@pytest.fixture
def open_server(tmp_path: Path) -> Iterator[WebServer]:
    """`serve --no-auth`: what a browser on this machine can reach without credentials."""
    srv = make_server(tmp_path / "s.sqlite3", "127.0.0.1", 0, None, no_auth=True)
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def test_no_auth_answers_only_requests_addressed_to_loopback(open_server: WebServer) -> None:
    client = Client(open_server.url)
    port = open_server.server_address[1]
    assert client.call("POST", "/api/deploys", {"version": "1"}, token=None).status == 201
    # DNS rebinding: evil.example now resolves to 127.0.0.1, but the browser still says its name.
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}", ""):
        rebound = client.call("GET", "/api/deploys", token=None, headers={"Host": host})
        assert rebound.status == 421, (host, rebound.envelope)
        assert rebound.envelope["error"]["code"] == "misdirected_request"
        assert "data" not in rebound.envelope
        posted = client.call(
            "POST", "/api/deploys", {"version": "2"}, token=None, headers={"Host": host}
        )
        assert posted.status == 421
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"app.localhost:{port}", "[::1]"):
        assert client.call("GET", "/api/deploys", token=None, headers={"Host": host}).status == 200
    listed = client.call("GET", "/api/deploys", token=None).envelope["data"]
    assert [m["version"] for m in listed] == ["1"]  # nothing the rebound requests sent
    # HTTP/1.0 without a Host header: not a browser (browsers always send one), so served.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /api/deploys HTTP/1.0\r\n\r\n")
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    assert raw.split(b" ", 2)[1] == b"200", raw[:80]  # answered as HTTP/1.1, which 1.0 reads


def test_no_auth_on_loopback_serves_without_a_token(tmp_path: Path) -> None:
    srv = make_server(tmp_path / "s.sqlite3", "127.0.0.1", 0, None, no_auth=True)
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        reply = Client(srv.url).call("POST", "/api/deploys", {"version": "1"}, token=None)
        assert reply.status == 201
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def test_serve_command_refuses_without_a_token(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        serve, ["--store", str(tmp_path / "s.sqlite3"), "--port", "0"], obj=Context(False, None)
    )
    assert isinstance(result.exception, ConfigError)
    assert "QUERYWATCH_API_TOKEN" in str(result.exception)


def test_head_healthz_has_headers_and_no_body(server: WebServer) -> None:
    request = urllib.request.Request(server.url + "/healthz", method="HEAD")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200 and response.read() == b""
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["Server"] == "querywatch"


# `serve` as a process: what an operator runs, stopped the way a container runtime stops it.
SERVE = """
import sys
from querywatch.cli import Context
from querywatch.cli.serve import serve
serve.main(sys.argv[1:], obj=Context(False, None), prog_name="querywatch serve")
"""


def test_serve_runs_until_sigterm_and_never_logs_the_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUERYWATCH_")}
    env["QUERYWATCH_API_TOKEN"] = TOKEN
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, "--store", str(tmp_path / "s.sqlite3"), "--port", "0"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        banner = process.stderr.readline()
        found = re.search(r"on (http://\S+) \(bearer token required\)", banner)
        assert found, banner
        client = Client(found.group(1))
        assert client.call("POST", "/api/deploys", {"version": "1"}).status == 201
        assert client.call("GET", "/api/deploys", token=WRONG).status == 403
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert '"POST /api/deploys HTTP/1.1" 201' in err and err.rstrip().endswith("stopped")
    assert TOKEN not in err + out and WRONG not in err + out


def test_an_unreadable_store_is_503_without_saying_where_it_is(
    server: WebServer, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    server.store.close()  # as if the database went away under the server
    reply = client.call("GET", "/healthz", token=None)
    assert reply.status == 503 and reply.envelope["error"]["code"] == "store_unavailable"
    assert "store.sqlite3" not in reply.envelope["error"]["message"]
    assert client.call("POST", "/api/deploys", {"version": "1"}).status == 503
    assert "store.sqlite3" in caplog.text  # the operator sees where


def test_top_over_http_filters_by_release(client: Client, tmp_path: Path) -> None:
    """GET /api/top ranks fingerprints like `querywatch top`; ?release= one release's calls."""
    from querywatch.records import StatementWindow
    from querywatch.store import open_store

    at = int(time.time() // 10 * 10) - 20
    with open_store(tmp_path / "store.sqlite3") as store:  # the server's store, written beside it
        store.write_windows(
            [
                StatementWindow("fp-orders", "SELECT * FROM orders", at, 90, 90.0, 1.0,
                                release="v1"),
                StatementWindow("fp-orders", "SELECT * FROM orders", at, 10, 900.0, 90.0,
                                release="v2"),
                StatementWindow("fp-items", "SELECT * FROM items", at, 5, 5.0, 1.0,
                                release="v1"),
            ]
        )  # fmt: skip
    canary = client.call("GET", "/api/top?release=v2&since=1h")
    assert canary.status == 200
    assert [(r["fingerprint"], r["calls"], r["release"]) for r in canary.envelope["data"]] == [
        ("fp-orders", 10, "v2")
    ]
    both = client.call("GET", "/api/top?sort=calls&limit=1").envelope["data"]
    assert [(r["fingerprint"], r["calls"], r["release"]) for r in both] == [("fp-orders", 100, "")]
    assert client.call("GET", "/api/top?release=v9").envelope["data"] == []
    for query, needle in (
        ("sort=slowest", "use one of total, mean, calls, p95"),
        ("limit=0", "a whole number from 1 to 1000"),
        ("limit=%C2%B2", "a whole number from 1 to 1000"),
        ("cohort=canary", "unknown parameter 'cohort'"),
    ):
        refused = client.call("GET", f"/api/top?{query}")
        assert refused.status == 400 and needle in refused.envelope["error"]["message"]
    assert client.call("GET", "/api/top", token=None).status == 401
