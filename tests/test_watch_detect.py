"""`watch` as a detector: real pg_stat_statements deltas, a deploy marker, an incident and alerts
posted to a real HTTP receiver; and a "monitoring is blind" alert when the database goes away."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pg_cluster import data_directory, find_bindir, pg_ctl, running_cluster
from querywatch.capture.pg_stat_statements import PgStatStatementsSource
from querywatch.detect.policy import Policy
from querywatch.incidents.repository import list_incidents
from querywatch.incidents.view import incident_lines
from querywatch.monitor import Monitor
from querywatch.records import DeployMarker
from querywatch.respond.notifier import Notifier
from querywatch.respond.sinks import JsonWebhookSink
from querywatch.sql import fingerprint
from querywatch.store import open_store
from querywatch.watch import Agent, AgentEvent

T0 = 1_800_000_000.0
GOOD = "SELECT id, total FROM orders WHERE customer_id = {}"
BAD = "SELECT id, total FROM orders WHERE CAST(customer_id AS TEXT) = '{}'"


class Receiver:
    """A webhook endpoint on loopback that keeps every JSON body it is sent."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def make_orders(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id serial PRIMARY KEY, customer_id int, total int)")
        conn.execute(
            "INSERT INTO orders (customer_id, total) "
            "SELECT g % 5000, g FROM generate_series(1, 300000) g"
        )
        conn.execute("CREATE INDEX ON orders (customer_id)")
        conn.execute("ANALYZE orders")


def run(dsn: str, template: str, n: int, offset: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(n):
            conn.execute(template.format(offset + i))  # type: ignore[arg-type]


def test_watch_opens_an_incident_naming_the_query_and_the_deploy(
    pg_dsn: str, tmp_path: Path, receiver: Receiver
) -> None:
    make_orders(pg_dsn)
    clock = [T0]
    store = open_store(tmp_path / "store.sqlite3")
    events: list[AgentEvent] = []
    notifier = Notifier([JsonWebhookSink(receiver.url)], clock=lambda: clock[0])
    monitor = Monitor(store, notifier=notifier, clock=lambda: clock[0], n_plus_one=False)
    source = PgStatStatementsSource(pg_dsn)
    agent = Agent(
        source,
        store,
        state_key="pgss",
        monitor=monitor,
        notifier=notifier,
        on_event=events.append,
        clock=lambda: clock[0],
    )
    agent.poll_once(strict=True)  # baseline
    for i in range(9):  # 90 s of v1: an indexed lookup
        clock[0] = T0 + 10 * (i + 1)
        run(pg_dsn, GOOD, 30, 100 * i)
        agent.poll_once()
    assert not [e for e in events if e.kind == "incident"], "no incident before the deploy"
    store.record_deploy(DeployMarker("d2", "v2", "abc123", "production", T0 + 95, T0 + 96))
    for i in range(9, 14):  # v2: the same page through a non-sargable predicate
        clock[0] = T0 + 10 * (i + 1)
        run(pg_dsn, BAD, 30, 100 * i)
        agent.poll_once()
        if any(e.kind == "incident" for e in events):
            break
    source.close()

    incidents = list_incidents(store)
    assert len(incidents) == 1
    incident = incidents[0]
    bad = fingerprint(BAD.format(1))
    assert incident.deploy_id == "d2"
    assert incident.culprits[0].fingerprint == bad.id
    assert incident.culprits[0].first_seen_deploy == "d2"
    assert incident.triage is not None and incident.triage.verdict
    # No middleware here: the impact is unknown, and says why, rather than "0 of 0".
    assert incident.impact is not None and not incident.impact.measured
    assert incident.impact.describe().startswith("unknown: no request data from the middleware")
    assert [e.kind for e in incident.timeline][:2] == ["detected", "alerted"]
    posted = [body for body in receiver.received if body.get("kind") == "regression"]
    assert len(posted) == 1, "alerted once, not on every poll"
    assert posted[0]["fingerprint"] == bad.id and posted[0]["deploy_id"] == "d2"
    assert clock[0] - (T0 + 96) <= 40  # within four 10 s polls of the release taking traffic
    store.close()


PGBENCH_WINDOW_S = 2.5
"""Real seconds per 10 s window of the agent's clock: the run takes ~35 s instead of ~130 s."""
BAD_PGBENCH = "SELECT count(*) FROM pgbench_accounts WHERE abalance::text LIKE '%7%'"


def test_watch_under_pgbench_names_the_bad_query_and_never_its_victims(
    pg_dsn: str, tmp_path: Path
) -> None:
    """The trial: pgbench (16 clients, 200 tx/s), then a bad deploy whose query scans
    pgbench_accounts from three sessions. pgbench's own statements slow down (the branches
    update most, waiting on row locks held longer): none of them may be named a cause.

    The agent's clock runs 4x faster than the wall clock, so its rates are a quarter of the real
    ones; the "database is busy" threshold of the victim test is scaled with it."""
    speed = 10.0 / PGBENCH_WINDOW_S
    pgbench = str(find_bindir() / "pgbench")
    subprocess.run([pgbench, "-i", "-s", "5", "-q", pg_dsn], check=True, capture_output=True)
    bench = subprocess.Popen(
        [pgbench, "-n", "-R", "200", "-c", "16", "-j", "2", "-T", "600", pg_dsn],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    clock = [T0]
    store = open_store(tmp_path / "store.sqlite3")
    policy = Policy(victim_min_busy_ms_per_s=1000.0 / speed)
    monitor = Monitor(store, policy=policy, clock=lambda: clock[0], n_plus_one=False)
    source = PgStatStatementsSource(pg_dsn)
    agent = Agent(source, store, state_key="pgss", monitor=monitor, clock=lambda: clock[0])
    stop = threading.Event()

    def bad_release() -> None:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            while not stop.is_set():
                conn.execute(BAD_PGBENCH)

    sessions = [threading.Thread(target=bad_release) for _ in range(3)]
    try:
        agent.poll_once(strict=True)
        for i in range(1, 14):
            if i == 8:  # v2 takes the traffic after seven windows of pgbench alone
                store.record_deploy(
                    DeployMarker("d2", "v2", None, "production", clock[0] + 1, clock[0] + 2)
                )
                for t in sessions:
                    t.start()
            time.sleep(PGBENCH_WINDOW_S)
            clock[0] = T0 + 10 * i
            agent.poll_once()
    finally:
        stop.set()
        for t in sessions:
            if t.is_alive():
                t.join(30)
        bench.terminate()
        bench.wait(30)
        source.close()
    (incident,) = list_incidents(store)
    bad = fingerprint(BAD_PGBENCH)
    assert [c.fingerprint for c in incident.culprits] == [bad.id], incident_lines(incident)
    assert incident.deploy_id == "d2"
    pgbench_detections = [
        d
        for d in incident.detections
        if "pgbench_accounts where abalance::text" not in (d.normalized or "")
    ]
    assert all(d.kind == "victim" for d in pgbench_detections), incident_lines(incident)
    shown = "\n".join(incident_lines(incident))
    for d in incident.victims:
        assert d.summary.endswith("a victim of the load, not a cause")
        assert "victims (only slowed because the database got busier: not causes)" in shown
    store.close()


def test_watch_says_monitoring_is_blind_and_when_it_can_see_again(
    tmp_path: Path, receiver: Receiver
) -> None:
    with running_cluster() as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        store = open_store(tmp_path / "store.sqlite3")
        notifier = Notifier([JsonWebhookSink(receiver.url)])
        source = PgStatStatementsSource(dsn)
        agent = Agent(source, store, state_key="pgss", notifier=notifier)
        agent.poll_once(strict=True)
        data = data_directory(dsn)
        pg_ctl(data, "stop")
        agent.poll_once()
        agent.poll_once()  # still blind: not paged twice
        pg_ctl(data, "start")
        agent.poll_once()
        source.close()
        store.close()
    kinds = [(body["kind"], body["title"]) for body in receiver.received]
    assert [k for k, _ in kinds] == ["blind", "resolved"]
    assert "monitoring is blind" in kinds[0][1] or "blind" in kinds[0][1].lower()


def test_watch_s_monitor_alerts_acts_and_explains_as_configured(tmp_path: Path) -> None:
    """`querywatch watch` builds its Monitor from the settings: the same notifier as the agent
    (regression alerts go out), the environment of its deploys, the rollback settings and the
    monitored database for EXPLAIN."""
    from querywatch.config import load_config
    from querywatch.monitor import monitor_from_config
    from querywatch.respond.setup import notifier_from_config

    (tmp_path / "querywatch.toml").write_text(
        'dsn = "postgresql://app@db.internal/shop"\n'
        'environment = "staging"\n'
        "[environments.staging]\n"
        'rollback_command = "./deploy.sh {previous_version}"\n'
        "rollback_auto = true\n"
    )
    cfg = load_config(environ={}, cwd=tmp_path)
    store = open_store(tmp_path / "store.sqlite3")
    notifier = notifier_from_config(cfg)
    monitor = monitor_from_config(cfg, store, notifier, repo_root=tmp_path)
    assert monitor.notifier is notifier
    assert monitor.environment == "staging"
    assert monitor.explain_target == "postgresql://app@db.internal/shop"
    assert monitor.responder is not None and monitor.responder.settings.auto
    assert monitor.responder.settings.environment == "staging"
    assert monitor.responder.notifier is notifier
    store.close()
