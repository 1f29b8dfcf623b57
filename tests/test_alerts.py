"""Alerts end to end: what they say, what each sink sends over real HTTP, dedup and routing."""

from __future__ import annotations

import contextlib
import io
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from querywatch.detect.model import Culprit, Detection, Triage
from querywatch.errors import ConfigError, StoreError
from querywatch.incidents.model import Impact, Incident
from querywatch.records import CallSite
from querywatch.respond.actions import ActionContext, WebhookAction
from querywatch.respond.alerts import (
    Alert,
    alert_for_incident,
    blind_alert,
    recovered_alert,
)
from querywatch.respond.notifier import Notifier
from querywatch.respond.routing import CodeOwners, pattern_regex
from querywatch.respond.setup import notifier_from_config
from querywatch.respond.sinks import (
    AlertmanagerSink,
    HttpPoster,
    JsonWebhookSink,
    SinkError,
    SlackWebhookSink,
    TerminalSink,
    alertmanager_payload,
)
from querywatch.timefmt import clock

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
FAST = HttpPoster(timeout_s=2.0, retry_delay_s=0.01)

# --- a real HTTP receiver on loopback


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answered in order, then 200
    delay_s: float = 0.0
    location: str | None = None  # sent with a 3xx answer
    port: int = 0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve_receiver() as state:
        yield state


@contextlib.contextmanager
def serve_receiver(host: str = "127.0.0.1") -> Iterator[Receiver]:
    state = Receiver(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            with lock:
                state.requests.append(
                    Received("POST", self.path, dict(self.headers.items()), json.loads(raw))
                )
                status = state.statuses.pop(0) if state.statuses else 200
            if state.delay_s:
                time.sleep(state.delay_s)
            body = b"ok" if status < 400 else b"boom: internal error"
            try:
                self.send_response(status)
                if state.location and 300 <= status < 400:
                    self.send_header("Location", state.location)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (the timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.port = server.server_address[1]
    state.url = f"http://127.0.0.1:{state.port}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def closed_url() -> str:
    """A loopback port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- an incident like the report's

T0 = 1_700_000_000.0
SITE = CallSite("shop/orders.py", 42, "list_orders")


def make_incident(**changes: Any) -> Incident:
    detection = Detection(
        kind="deploy_regression",
        detected_at=T0,
        confidence=0.99,
        summary="Query a1b2c3 got 40x slower after deploy d-42 (3.1 ms → 130 ms mean)",
        fingerprint="a1b2c3",
        normalized="SELECT * FROM orders WHERE customer_id = $1 AND total > $2",
        deploy_id="d-42",
    )
    culprit = Culprit(
        fingerprint="a1b2c3",
        normalized="SELECT * FROM orders WHERE customer_id = $1 AND total > $2",
        added_db_ms_per_s=850.0,
        first_seen_deploy="d-42",
        call_sites=(SITE, CallSite("shop/api.py", 7, "orders_view")),
        commits=("deadbeefcafe1234",),
    )
    triage = Triage(
        db_share_before=0.2,
        db_share_after=0.9,
        verdict="The database is the bottleneck: 90% of request time is in queries (was 20%)",
        database_is_bottleneck=True,
    )
    incident = Incident(
        id="inc-7",
        status="open",
        opened_at=T0,
        detected_at=T0,
        title="Query a1b2c3 40x slower since deploy d-42 (shop/orders.py:42)",
        deploy_id="d-42",
        detections=[detection],
        culprits=[culprit],
        triage=triage,
        impact=Impact(requests=1000, failed_requests=870, users=100, affected_users=87, slo_ms=500),
    )
    for name, value in changes.items():
        setattr(incident, name, value)
    return incident


# --- what an alert says


def test_incident_alert_names_the_query_the_code_and_the_deploy() -> None:
    alert = alert_for_incident(make_incident(), ["@shop/orders"])
    assert alert.kind == "regression" and alert.severity == "critical"
    assert alert.key == "incident/inc-7" and alert.incident_id == "inc-7"
    assert "\n" not in alert.title
    assert alert.text.startswith("Query a1b2c3 got 40x slower after deploy d-42")
    assert "The database is the bottleneck" in alert.text
    assert "SELECT * FROM orders WHERE customer_id = $1" in alert.text
    assert "at shop/orders.py:42 in list_orders (+1 more call sites)" in alert.text
    assert "deadbeefcafe" in alert.text and "Deploy: d-42." in alert.text
    assert alert.call_sites[0] == SITE and alert.fingerprint == "a1b2c3"
    assert alert.owners == ("@shop/orders",) and alert.deploy_id == "d-42"


def test_incident_severity_warns_when_the_database_is_not_the_bottleneck() -> None:
    calm = make_incident(
        triage=Triage(0.2, 0.25, "Not the database", False),
        impact=Impact(requests=1000, failed_requests=3, users=10, affected_users=1, slo_ms=500),
    )
    assert alert_for_incident(calm).severity == "warning"


def test_resolved_incident_alert_keeps_key_and_severity() -> None:
    incident = make_incident(status="resolved", resolved_at=T0 + 9000)
    alert = alert_for_incident(incident)
    assert alert.kind == "resolved" and alert.key == "incident/inc-7"
    assert alert.severity == "critical" and alert.ended_at == T0 + 9000
    assert alert.title.startswith("Resolved: ") and "2h 30m" in alert.text


def test_blind_alert_text_and_redaction() -> None:
    alert = blind_alert(
        "pg_stat_statements",
        "connection to postgresql://app:hunter2@db:5432/shop refused",
        since=T0,
    )
    assert alert.text == (
        f"monitoring is blind: cannot read pg_stat_statements since {clock(T0)}: "
        "connection to postgresql://app:***@db:5432/shop refused"
    )
    assert re.fullmatch(r"\d\d:\d\d:\d\d", clock(T0))
    assert alert.kind == "blind" and alert.severity == "critical"
    back = recovered_alert("pg_stat_statements", since=T0, recovered_at=T0 + 95)
    assert back.kind == "resolved" and back.key == alert.key and back.alertname == alert.alertname
    assert "readable again" in back.text and "1m 35s" in back.text


# --- sinks over real HTTP


def test_json_webhook_posts_the_alert_object(receiver: Receiver) -> None:
    sink = JsonWebhookSink(receiver.url + "/hooks/qw", {"Authorization": "Bearer t0ken"}, http=FAST)
    sink.send(alert_for_incident(make_incident(), ["@shop/orders"], url="http://qw/incidents/7"))
    [request] = receiver.requests
    assert request.method == "POST" and request.path == "/hooks/qw"
    assert request.headers["Authorization"] == "Bearer t0ken"
    assert request.headers["Content-Type"] == "application/json"
    body = request.body
    assert body["key"] == "incident/inc-7" and body["kind"] == "regression"
    assert body["severity"] == "critical" and body["incident_id"] == "inc-7"
    assert body["fingerprint"] == "a1b2c3" and body["deploy_id"] == "d-42"
    assert body["call_sites"][0] == {
        "path": "shop/orders.py",
        "line": 42,
        "function": "list_orders",
    }
    assert body["owners"] == ["@shop/orders"] and body["url"] == "http://qw/incidents/7"
    assert RFC3339.match(body["started_at"]) and body["ended_at"] is None
    assert "shop/orders.py:42" in body["text"]


def test_slack_payload_has_text_with_culprit_and_call_site(receiver: Receiver) -> None:
    SlackWebhookSink(receiver.url + "/services/T0/B0/secret", http=FAST).send(
        alert_for_incident(make_incident(), ["@shop/orders"])
    )
    [request] = receiver.requests
    body = request.body
    assert request.path == "/services/T0/B0/secret"
    assert "SELECT * FROM orders WHERE customer_id = $1 AND total &gt; $2" in body["text"]
    assert "shop/orders.py:42 in list_orders" in body["text"]
    assert "CRITICAL" in body["text"]
    types = [b["type"] for b in body["blocks"]]
    assert types[0] == "header" and "section" in types and "context" in types
    assert len(body["blocks"][0]["text"]["text"]) <= 150
    fields = " ".join(f["text"] for b in body["blocks"] for f in b.get("fields", []))
    assert "d-42" in fields and "@shop/orders" in fields


def test_alertmanager_gets_a_v2_alert_list_and_resolves_it(receiver: Receiver) -> None:
    sink = AlertmanagerSink(receiver.url + "/", http=FAST)
    sink.send(alert_for_incident(make_incident(), ["@shop/orders", "@dba"]))
    sink.send(alert_for_incident(make_incident(status="resolved", resolved_at=T0 + 60)))
    firing, resolved = receiver.requests
    assert firing.path == resolved.path == "/api/v2/alerts"
    assert isinstance(firing.body, list) and len(firing.body) == 1
    item = firing.body[0]
    labels = item["labels"]
    assert labels["alertname"] == "QueryRegression" and labels["severity"] == "critical"
    assert labels["fingerprint"] == "a1b2c3" and labels["deploy"] == "d-42"
    assert labels["owner"] == "@shop/orders,@dba" and labels["incident"] == "inc-7"
    assert all(isinstance(v, str) and v for v in labels.values())
    assert item["annotations"]["summary"].startswith("Query a1b2c3 40x slower")
    assert "shop/orders.py:42" in item["annotations"]["description"]
    assert RFC3339.match(item["startsAt"]) and "endsAt" not in item
    ended = resolved.body[0]
    assert RFC3339.match(ended["endsAt"]) and ended["startsAt"] == item["startsAt"]
    assert ended["labels"]["alertname"] == labels["alertname"]
    assert ended["labels"]["severity"] == labels["severity"]


def test_terminal_sink_prints_severity_title_and_text() -> None:
    out = io.StringIO()
    sink = TerminalSink(Console(file=out, width=200, color_system=None))
    sink.send(alert_for_incident(make_incident(), ["@shop/orders"]))
    sink.send(blind_alert("db [primary]", "refused", since=T0))
    text = out.getvalue()
    assert "CRITICAL" in text and "shop/orders.py:42 in list_orders" in text
    assert "owners @shop/orders" in text
    assert "cannot read db [primary]" in text  # markup in data is printed, not interpreted


def test_a_500_is_retried_once_and_delivered(receiver: Receiver) -> None:
    receiver.statuses = [500]
    JsonWebhookSink(receiver.url, http=FAST).send(blind_alert("pg", "down", T0))
    assert [r.body["kind"] for r in receiver.requests] == ["blind", "blind"]


def test_two_500s_give_one_line_sink_error(receiver: Receiver) -> None:
    receiver.statuses = [502, 503]
    with pytest.raises(SinkError) as info:
        AlertmanagerSink(receiver.url, http=FAST).send(blind_alert("pg", "down", T0))
    message = str(info.value)
    assert "\n" not in message and len(receiver.requests) == 2
    assert message.startswith(f"alertmanager: POST {receiver.url}/api/v2/alerts failed: HTTP 503")


def test_a_4xx_is_not_retried(receiver: Receiver) -> None:
    receiver.statuses = [400]
    with pytest.raises(SinkError, match="HTTP 400"):
        JsonWebhookSink(receiver.url, http=FAST).send(blind_alert("pg", "down", T0))
    assert len(receiver.requests) == 1


def test_slack_url_is_never_shown_in_errors(closed_url: str) -> None:
    sink = SlackWebhookSink(closed_url + "/services/T0/B0/XSECRETX", http=FAST)
    with pytest.raises(SinkError) as info:
        sink.send(blind_alert("pg", "down", T0))
    message = str(info.value)
    assert "XSECRETX" not in message and "\n" not in message
    assert message == f"slack: POST {closed_url}/… failed: connection refused"


def test_a_slow_receiver_times_out_with_one_line(receiver: Receiver) -> None:
    receiver.delay_s = 0.5
    sink = JsonWebhookSink(receiver.url, http=HttpPoster(timeout_s=0.1, retry_delay_s=0))
    with pytest.raises(SinkError, match=r"no response within 0.1 s$"):
        sink.send(blind_alert("pg", "down", T0))
    assert len(receiver.requests) == 1  # maybe delivered: not sent twice


def test_bad_urls_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="alert_slack_url"):
        SlackWebhookSink("hooks.slack.com/services/T0/B0/secret")
    with pytest.raises(ConfigError) as info:
        JsonWebhookSink("ftp://user:pw@example.com/x")
    assert "pw" not in str(info.value)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_never_followed(receiver: Receiver, status: int) -> None:
    """A redirected POST would arrive elsewhere (urllib even turns 301-303 into a GET)."""
    with serve_receiver() as elsewhere:
        receiver.statuses = [status]
        receiver.location = elsewhere.url + "/moved"
        for sink in (
            JsonWebhookSink(receiver.url + "/hook", http=FAST),
            SlackWebhookSink(receiver.url + "/services/T0/B0/secret", http=FAST),
            AlertmanagerSink(receiver.url, http=FAST),
        ):
            receiver.statuses = [status]
            with pytest.raises(SinkError) as info:
                sink.send(blind_alert("pg", "down", T0))
            assert f"HTTP {status}" in str(info.value)
            assert "redirects are not followed, configure the final URL" in str(info.value)
        assert elsewhere.requests == []
    assert len(receiver.requests) == 3  # one each: a redirect is not retried either


REFUSED_HOSTS = [
    ("169.254.169.254", "a link-local"),  # AWS, GCP, Azure, OCI metadata
    ("[::ffff:169.254.169.254]", "a link-local"),
    ("[::ffff:a9fe:a9fe]", "a link-local"),
    ("[64:ff9b::a9fe:a9fe]", "a link-local"),  # NAT64
    ("[fe80::1]", "a link-local"),
    ("169.254.1", "a link-local"),  # the resolver's short form of 169.254.0.1
    ("2852039166", "a link-local"),  # 169.254.169.254 as one number
    ("0.0.0.0", "an unspecified"),
    ("[::]", "an unspecified"),
    ("[fd00:ec2::254]", "a cloud metadata"),  # AWS's IPv6 metadata endpoint
    ("100.100.100.200", "a cloud metadata"),  # Alibaba Cloud
]


@pytest.mark.parametrize(("host", "kind"), REFUSED_HOSTS)
def test_webhooks_to_link_local_and_metadata_addresses_are_refused_at_setup(
    host: str, kind: str
) -> None:
    url = f"http://{host}:8080/latest/meta-data?token=s3cret"
    for make, setting in (
        (JsonWebhookSink, "alert_webhook_url"),
        (SlackWebhookSink, "alert_slack_url"),
        (AlertmanagerSink, "alert_alertmanager_url"),
    ):
        with pytest.raises(ConfigError) as info:
            make(url)
        message = str(info.value)
        assert message.startswith(f"{setting}: ") and f"is {kind} address" in message
        assert "refused unless webhook_allow_link_local = true" in message
        assert "s3cret" not in message and "\n" not in message
    with pytest.raises(ConfigError, match=r"rollback_webhook_url: .*webhook_allow_link_local"):
        WebhookAction(url)
    with pytest.raises(ConfigError, match="alert_webhook_url"):
        notifier_from_config({"alert_webhook_url": url})
    # The setting lets them through, for a deploy hook that really lives there.
    notifier_from_config({"alert_webhook_url": url, "webhook_allow_link_local": True})
    WebhookAction(url, allow_link_local=True)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "[::1]", "localhost", "10.0.0.7", "192.168.1.20", "hooks.slack.com"]
)
def test_loopback_private_and_public_webhooks_stay_allowed(host: str) -> None:
    notifier = notifier_from_config(
        {
            "alert_webhook_url": f"http://{host}/hook",
            "alert_slack_url": f"https://{host}/services/T0/B0/x",
            "alert_alertmanager_url": f"http://{host}:9093",
        }
    )
    assert [s.name for s in notifier.sinks] == ["terminal", "webhook", "slack", "alertmanager"]
    WebhookAction(f"http://{host}/rollback")


@pytest.fixture
def hosts(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Names the test makes resolve to an address, as /etc/hosts lines (or a DNS server that
    rebinds a name after the URL was checked) would; every other name goes to the real resolver."""
    table: dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        flags = args[3] if len(args) > 3 else kwargs.get("flags", 0)
        numeric_only = flags & socket.AI_NUMERICHOST  # no lookup: /etc/hosts is not read
        return real(host if numeric_only else table.get(host, host), port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


def test_a_name_that_resolves_to_a_refused_address_is_refused_when_sending(
    hosts: dict[str, str],
) -> None:
    alert = blind_alert("pg", "down", T0)
    with serve_receiver("0.0.0.0") as anywhere:  # what a connection to 0.0.0.0 reaches
        port = anywhere.port
        hosts.update({"hooks.test": "0.0.0.0", "meta.test": "169.254.169.254"})
        hosts["mapped.test"] = "::ffff:169.254.169.254"
        for name, shown, kind in (
            ("hooks.test", "0.0.0.0", "an unspecified address"),
            ("meta.test", "169.254.169.254", "a link-local address"),
            ("mapped.test", "::ffff:a9fe:a9fe", "a link-local address"),
        ):
            sink = JsonWebhookSink(f"http://{name}:{port}/hook?token=s3cret", http=FAST)
            with pytest.raises(SinkError) as info:  # a name: accepted at setup, refused now
                sink.send(alert)
            message = str(info.value)
            assert message.startswith(
                f"webhook: POST http://{name}:{port}/… failed: {name} resolves to {shown}, "
                f"which is {kind}"
            )
            assert message.endswith("refused unless webhook_allow_link_local = true")
            assert "s3cret" not in message
            rollback = WebhookAction(f"http://{name}:{port}/rollback").run(
                ActionContext("QW-1", "v2", "v1"), 2.0
            )
            assert not rollback.ok and rollback.exit_code is None
            assert f"{name} resolves to {shown}, which is {kind}" in (rollback.error or "")
        assert anywhere.requests == []  # nothing left the agent
        allowed = HttpPoster(timeout_s=2.0, allow_link_local=True)
        JsonWebhookSink(f"http://hooks.test:{port}/hook", http=allowed).send(alert)
        assert [r.path for r in anywhere.requests] == ["/hook"]


def test_a_down_sink_does_not_stop_the_others(receiver: Receiver, closed_url: str) -> None:
    notifier = Notifier(
        [
            JsonWebhookSink(closed_url + "/hook?token=s3cret", http=FAST),
            SlackWebhookSink(receiver.url + "/slack", http=FAST),
            AlertmanagerSink(receiver.url, http=FAST),
        ]
    )
    assert notifier.notify(alert_for_incident(make_incident()))
    assert sorted(r.path for r in receiver.requests) == ["/api/v2/alerts", "/slack"]
    [delivery] = notifier.take_deliveries()
    assert delivery.succeeded == ("slack", "alertmanager") and not delivery.ok
    [(name, error)] = delivery.failed
    assert name == "webhook" and "s3cret" not in error and "\n" not in error
    assert error == f"webhook: POST {closed_url}/… failed: connection refused"
    assert "sent to slack, alertmanager" in delivery.message and error in delivery.message
    assert delivery.data["failed"] == {"webhook": error}


# --- dedup and re-notify


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def test_same_key_within_renotify_is_sent_once(receiver: Receiver) -> None:
    clock = Clock()
    notifier = Notifier([JsonWebhookSink(receiver.url, http=FAST)], renotify_s=600, clock=clock)
    alert = alert_for_incident(make_incident())
    assert notifier.notify(alert)
    clock.now += 599
    assert not notifier.notify(alert)
    assert len(receiver.requests) == 1
    clock.now += 1
    assert notifier.notify(alert)
    assert len(receiver.requests) == 2


def test_severity_change_and_resolve_go_out_at_once(receiver: Receiver) -> None:
    clock = Clock()
    notifier = Notifier([JsonWebhookSink(receiver.url, http=FAST)], renotify_s=3600, clock=clock)
    alert = alert_for_incident(make_incident(), severity="warning")
    assert notifier.notify(alert)
    clock.now += 10
    assert notifier.notify(replace(alert, severity="critical"))
    clock.now += 10
    resolved = alert_for_incident(make_incident(status="resolved", resolved_at=clock.now))
    assert notifier.notify(resolved)
    assert not notifier.notify(resolved)  # a resolve is said once
    clock.now += 7200
    assert not notifier.notify(resolved)
    assert [r.body["severity"] for r in receiver.requests] == ["warning", "critical", "critical"]
    assert receiver.requests[-1].body["kind"] == "resolved"


def test_a_failed_sink_is_tried_again_next_cycle(receiver: Receiver, closed_url: str) -> None:
    clock = Clock()
    down = JsonWebhookSink(closed_url, http=FAST)
    notifier = Notifier([down, AlertmanagerSink(receiver.url, http=FAST)], clock=clock)
    alert = blind_alert("pg", "refused", T0)
    notifier.notify(alert)
    down.url = receiver.url + "/hook"  # the receiver comes back
    clock.now += 5
    assert notifier.notify(alert)
    assert [r.path for r in receiver.requests] == ["/api/v2/alerts", "/hook"]


def test_alertmanager_is_refreshed_more_often_than_chat(receiver: Receiver) -> None:
    clock = Clock()
    notifier = Notifier(
        [
            SlackWebhookSink(receiver.url + "/slack", http=FAST),
            AlertmanagerSink(receiver.url, renotify_s=60, http=FAST),
        ],
        renotify_s=3600,
        clock=clock,
    )
    alert = alert_for_incident(make_incident())
    for _ in range(4):
        notifier.notify(alert)
        clock.now += 30
    paths = [r.path for r in receiver.requests]
    assert paths.count("/slack") == 1 and paths.count("/api/v2/alerts") == 2


def test_state_survives_a_restart(receiver: Receiver) -> None:
    clock = Clock()
    sinks = [JsonWebhookSink(receiver.url, http=FAST)]
    first = Notifier(sinks, clock=clock)
    alert = alert_for_incident(make_incident())
    first.notify(alert)
    saved = first.to_json()
    clock.now += 60
    again = Notifier.from_json(saved, sinks, clock=clock)
    assert not again.notify(alert)
    assert len(receiver.requests) == 1
    with pytest.raises(StoreError, match="notifier state is unreadable"):
        Notifier.from_json('{"version": 99}', sinks)


def test_a_raising_sink_is_recorded_not_propagated() -> None:
    class Broken:
        name = "broken"

        def send(self, alert: Alert) -> None:
            raise RuntimeError("bug in a plugin")

    out = io.StringIO()
    notifier = Notifier([Broken(), TerminalSink(Console(file=out, color_system=None))])
    assert notifier.notify(blind_alert("pg", "refused", T0))
    [delivery] = notifier.deliveries
    assert delivery.succeeded == ("terminal",)
    assert delivery.failed == (("broken", "broken: RuntimeError: bug in a plugin"),)


# --- routing

CODEOWNERS = """\
# default owners
*                   @acme/everyone
*.py                @acme/python
/src/app/           @acme/app
docs/**             @acme/docs
src/*/db.py         @acme/dba
apps/               @octocat
/scripts            @ops   # inline comment
**/logs             @logs
docs/*.md           docs@example.com
/src/app/legacy/
\\#odd              @hash
"""


@pytest.mark.parametrize(
    ("path", "owners"),
    [
        ("README", ("@acme/everyone",)),
        ("tools/x.py", ("@acme/python",)),  # unanchored: any depth
        ("src/app/orders.py", ("@acme/app",)),  # last match wins over *.py
        ("lib/src/app/orders.py", ("@acme/python",)),  # leading / anchors to the root
        ("src/app/deep/er/thing.txt", ("@acme/app",)),  # a directory owns everything below
        ("src/app/legacy/old.py", ()),  # a rule without owners leaves it unowned
        ("docs/guide/a.txt", ("@acme/docs",)),  # ** crosses directories
        ("docs/index.md", ("docs@example.com",)),
        ("docs/guide/a.md", ("@acme/docs",)),  # docs/*.md: one level only
        ("src/shop/db.py", ("@acme/dba",)),
        ("src/shop/sub/db.py", ("@acme/python",)),  # * does not cross /
        ("lib/src/shop/db.py", ("@acme/python",)),  # an inner / anchors too
        ("web/apps/x/y.js", ("@octocat",)),  # dir/ matches at any depth
        ("apps", ("@acme/everyone",)),  # dir/ does not match a file of that name
        ("scripts/deploy.sh", ("@ops",)),
        ("a/b/logs/today.txt", ("@logs",)),
        ("logs/x", ("@logs",)),
        ("#odd", ("@hash",)),
        ("./tools/x.py", ("@acme/python",)),
        ("../elsewhere.py", ()),
    ],
)
def test_codeowners_matching(path: str, owners: tuple[str, ...]) -> None:
    assert CodeOwners.parse(CODEOWNERS).owners_of(path) == owners


def test_pattern_regex_shapes() -> None:
    assert pattern_regex("docs/*").match("docs/a.md")
    assert not pattern_regex("docs/*").match("docs/a/b.md")
    assert pattern_regex("/build/logs/").match("build/logs/x/y")
    assert not pattern_regex("/build/logs/").match("x/build/logs/y")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("*.py @ok\n!*.md @x\n", "CODEOWNERS:2: negated pattern"),
        ("\n\n*.py not-an-owner\n", "CODEOWNERS:3: 'not-an-owner' is not an owner"),
        ("src/[ab].py @x\n", "CODEOWNERS:1: pattern 'src/[ab].py'"),
    ],
)
def test_unparseable_lines_name_file_and_line(text: str, error: str) -> None:
    with pytest.raises(ConfigError) as info:
        CodeOwners.parse(text)
    assert str(info.value).startswith(error)


def test_owners_of_an_incident_follow_culprit_order(tmp_path: Path) -> None:
    (tmp_path / ".github").mkdir()
    path = tmp_path / ".github" / "CODEOWNERS"
    path.write_text("shop/orders.py @orders\nshop/api.py @api @orders\n/billing/ @billing\n")
    owners = CodeOwners.find(tmp_path)
    assert owners is not None and owners.root == tmp_path.resolve()
    incident = make_incident()
    second = Culprit(
        fingerprint="ffff",
        normalized="SELECT 1",
        added_db_ms_per_s=10.0,
        first_seen_deploy=None,
        call_sites=(CallSite(str(tmp_path / "billing" / "charge.py"), 3, "charge"),),
    )
    incident.culprits = [*incident.culprits, second]
    routed = owners.owners_for_incident(incident)
    assert routed == ("@orders", "@api", "@billing")  # absolute path made relative to the root
    assert owners.owners_of("/somewhere/else/billing/x.py") == ()

    alert = alert_for_incident(incident, routed)
    assert alert.owners == routed
    assert alertmanager_payload(alert)[0]["labels"]["owner"] == "@orders,@api,@billing"


def test_missing_codeowners_file_is_a_config_error(tmp_path: Path) -> None:
    assert CodeOwners.find(tmp_path) is None
    with pytest.raises(ConfigError, match="cannot read CODEOWNERS"):
        CodeOwners.load(tmp_path / "CODEOWNERS")
