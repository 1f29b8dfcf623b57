"""`querywatch demo` end to end at small scale: the bad release hurts, the rollback heals,
capture names the bad queries at their lines in v2, and the impact figures add up."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_helpers import assert_one_line_error, run_cli
from pg_cluster import free_port
from querywatch.demo.canary import CANARY_AGENT, CanaryPlan
from querywatch.demo.router import bucket
from querywatch.demo.run import DemoOptions, DemoReport, run_demo
from querywatch.errors import QuerywatchError
from querywatch.plans.rules import PlanPolicy
from querywatch.records import WINDOW_SECONDS
from querywatch.store import open_store

HOT_PAGE = "customer_orders"


def replay(
    workdir: Path, dsn: str | None = None, scale: int = 50_000, duration: float = 15
) -> DemoReport:
    options = DemoOptions(
        workdir=workdir, dsn=dsn, scale=scale, duration=duration, rate=25, users=60, slo_ms=5.0
    )
    return run_demo(options)


def check_replay(report: DemoReport) -> None:
    assert report.completed and report.bad and report.rollback
    before = report.page_latency(HOT_PAGE, "before")
    during = report.page_latency(HOT_PAGE, "during")
    after = report.page_latency(HOT_PAGE, "after")
    assert before and during and after  # the hot page was served in every phase
    # How much slower v2's hot page is, is the machine's business: tests/test_demo_shop.py
    # counts the work its query does (rows read), bench/detection.py times the replay.

    # Capture saw v2's changed queries, with call sites at their lines in v2's code, and only
    # while v2 ran: from its deploy until the rollback stopped it.
    store = open_store(report.options.store_path)
    try:
        captured = {
            row.fingerprint: row for row in store.top(since=report.run_started_at, limit=200)
        }
        deploys = store.deploys(since=report.run_started_at)
        v2_windows = {
            q.fingerprint: store.statement_windows(q.fingerprint, since=report.run_started_at)
            for q in report.ground_truth
        }
    finally:
        store.close()
    assert len(report.ground_truth) >= 2
    for query in report.ground_truth:
        assert query.path.endswith("releases/v2.py")
        row = captured[query.fingerprint]
        sites = {(Path(s.path).name, s.line) for s in row.call_sites}
        assert ("v2.py", query.line) in sites, (query, row.call_sites)
        assert v2_windows[query.fingerprint], query
        for w in v2_windows[query.fingerprint]:
            assert w.window_start + WINDOW_SECONDS > report.bad.started_at, (query, w)
            assert w.window_start <= report.rollback.finished_at, (query, w)
    assert [(d.version, d.rollback) for d in deploys] == [
        ("v1", False),
        ("v2", False),
        ("v1", True),
    ]

    # The impact figures agree with the load generator's own records.
    bad_at, back_at = report.bad.switched_at, report.rollback.switched_at
    users = {r.user_id for r in report.records}
    affected = {
        r.user_id
        for r in report.records
        if bad_at <= r.scheduled_at < back_at and (r.failed or r.latency_ms > report.summary.slo_ms)
    }
    s = report.summary
    assert s.users_total == len(users)
    assert s.users_affected == len(affected) > 0
    assert s.users_affected_pct == pytest.approx(100 * len(affected) / len(users))
    total = s.before.requests + s.during.requests + s.after.requests
    assert total == len(report.records)
    assert report.as_json()["requests"] == total


def test_replay_on_sqlite_closes_the_loop(tmp_path: Path) -> None:
    report = replay(tmp_path, duration=100)  # up to 50 s on v2 (bench: detection in 20-25 s)
    check_replay(report)
    # The monitor alerted while v2 served, named a query v2 changed, and the rollback followed.
    # (How fast is bench/detection.py's job, not a timed test's.)
    assert not report.monitor_errors, report.monitor_errors
    assert report.detect_after_s is not None and report.detect_after_s > 0, report.alerts
    assert report.incident is not None and report.alerts
    truth = {q.fingerprint: q for q in report.ground_truth}
    top = report.incident.culprits[0]
    assert top.fingerprint in truth
    assert top.call_sites and top.call_sites[0].line == truth[top.fingerprint].line
    # The rollback followed the detection. (Compared with the incident's own detection time:
    # report.detected_at is taken after the monitor's check returns, rollback included.)
    assert report.rollback is not None
    assert report.rollback.started_at >= report.incident.detected_at
    timeline = [(e.kind, e.data.get("action")) for e in report.incident.timeline]
    assert timeline.index(("detected", None)) < timeline.index(("action", "rollback"))
    data = report.as_json()
    assert data["detect_after_s"] == pytest.approx(report.detect_after_s, abs=0.01)
    assert data["culprits"][0]["fingerprint"] == top.fingerprint
    assert data["culprits"][0]["call_site"].endswith(f"v2.py:{truth[top.fingerprint].line}")

    # querywatch rolled back by itself, through the guarded path, and closed the loop.
    assert report.rollback_by == "querywatch"
    assert report.recovered is True and report.incident.status == "resolved"
    outcomes = {
        (e.data.get("action"), e.data.get("outcome"), e.data.get("step"))
        for e in report.incident.timeline
        if e.kind == "action"
    }
    assert ("evidence_check", "confirmed", None) in outcomes
    assert ("rollback", "ok", None) in outcomes
    assert ("runbook", "ok", "cache-flush") in outcomes
    assert ("recovery_check", "recovered", None) in outcomes
    kinds = [e.kind for e in report.incident.timeline]
    assert kinds.index("mitigated") < kinds.index("resolved")
    assert data["rollback_by"] == "querywatch" and data["recovered"] is True
    assert data["mitigate_after_s"] == pytest.approx(report.mitigate_after_s, abs=0.01)
    assert 0 < report.mitigate_after_s < report.rollback.finished_at - report.run_started_at
    assert report.postmortem_path is not None
    postmortem = report.postmortem_path.read_text()
    assert data["postmortem_path"] == str(report.postmortem_path)
    assert report.incident.id in postmortem and "## Root Cause and Resolution" in postmortem
    assert f"v2.py:{truth[top.fingerprint].line}" in postmortem
    # ... with the culprit's plan: what a rule found, and how it differs from before the deploy.
    # (The plan rules judge by size: on this small shop the scan is not yet a finding.)
    evidence = report.incident.plans.get(top.fingerprint)
    assert evidence is not None and evidence["diff"]["changed"], evidence
    large = report.shape.orders >= PlanPolicy().large_table_rows
    assert bool(evidence["findings"]) == large, evidence["findings"]
    assert "Query plans" in postmortem

    # The CI gate would have failed v2's pull request at the changed query, and passes v1.
    assert report.gate["v1"].exit_code == 0 and not report.gate["v1"].failing
    v2 = report.gate["v2"]
    assert v2.exit_code == 1
    lines = {
        f.location.line for f in v2.failing if f.location and f.location.path.endswith("v2.py")
    }
    assert lines & {q.line for q in report.ground_truth}, v2.failing
    assert all(f.fix for f in v2.failing)
    assert data["gate"]["v1"]["passed"] and not data["gate"]["v2"]["passed"]


def test_replay_on_postgres(pg_dsn: str, tmp_path: Path) -> None:
    check_replay(replay(tmp_path, dsn=pg_dsn, scale=200_000))


def test_demo_json_has_the_documented_fields(tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    result = run_cli(
        "demo",
        "--workdir",
        str(tmp_path / "w"),
        "--scale",
        "20000",
        "--duration",
        "6",
        "--rate",
        "15",
        "--users",
        "20",
        "--json",
        str(out),
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    envelope = json.loads(out.read_text())
    assert envelope["ok"] is True
    data = envelope["data"]
    for key in (
        "bad_deploy_at",
        "rollback_at",
        "requests",
        "error_rate",
        "latency_ms",
        "users_total",
        "users_affected",
        "users_affected_pct",
        "ground_truth",
        "rollback_completed_at",
        "rollback_by",
        "mitigate_after_s",
        "recovered",
        "postmortem_path",
        "gate",
        "canary",
    ):
        assert key in data
    # the CLI deploys the bad release as a canary by default
    assert data["canary"]["weight_pct"] == 10 and data["canary"]["started_at"]
    assert set(data["latency_ms"]) == {"before", "during", "after"}
    assert all({"p50", "p95"} <= set(v) for v in data["latency_ms"].values())
    assert data["bad_deploy_at"] < data["rollback_at"]
    assert all(":" in q["call_site"] and q["fingerprint"] for q in data["ground_truth"])
    assert "the outage, replayed" in result.stdout


def test_demo_with_an_unreachable_dsn(tmp_path: Path) -> None:
    dsn = f"postgresql://shop:pw@127.0.0.1:{free_port()}/shop"
    result = run_cli("demo", "--dsn", dsn, "--workdir", str(tmp_path))
    line = assert_one_line_error(result, "cannot connect")
    assert "pw@" not in line


def test_demo_with_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("demo", "--port", str(port), "--workdir", str(tmp_path), "--scale", "2000")
    assert_one_line_error(result, f"port {port}", "already in use")


def test_demo_with_an_unwritable_workdir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_cli("demo", "--workdir", str(blocker / "work"))
    assert_one_line_error(result, "cannot write to the work directory")


def _shop_servers(workdir: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "querywatch.demo.shop.serve" in cmdline and str(workdir) in cmdline:
            pids.append(int(entry.name))
    return pids


def _requests_recorded(store_path: Path) -> bool:
    if not store_path.exists():
        return False
    try:
        store = open_store(store_path, read_only=True)
    except QuerywatchError:  # not created yet
        return False
    try:
        return bool(store.request_windows())
    except QuerywatchError:  # no schema yet: "no data yet"
        return False
    finally:
        store.close()


def test_ctrl_c_stops_cleanly_with_a_partial_summary(tmp_path: Path) -> None:
    workdir = tmp_path / "w"
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUERYWATCH_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "querywatch",
            "demo",
            "--workdir",
            str(workdir),
            "--scale",
            "20000",
            "--duration",
            "60",
            "--rate",
            "10",
            "--users",
            "10",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 120
    while not _shop_servers(workdir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _shop_servers(workdir), "the shop never started"
    # Interrupt once the shop has served and recorded requests, however long that takes here.
    while not _requests_recorded(workdir / "querywatch.sqlite3") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _requests_recorded(workdir / "querywatch.sqlite3"), "no request was recorded"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "stopping" in err
    assert "interrupted" in out and "before (v1)" in out
    assert _shop_servers(workdir) == []


def canary_replay(workdir: Path, release: str, duration: float) -> DemoReport:
    options = DemoOptions(
        workdir=workdir,
        scale=50_000,
        duration=duration,
        rate=25,
        users=60,
        slo_ms=5.0,
        release=release,
        canary=CanaryPlan(20),
    )
    return run_demo(options)


def test_a_bad_canary_is_aborted_and_only_its_cohort_met_it(tmp_path: Path) -> None:
    report = canary_replay(tmp_path, "v2", duration=100)
    assert report.completed and report.bad and report.rollback and report.canary
    canary = report.canary
    assert not report.monitor_errors, report.monitor_errors
    # The canary analysis failed it (not the demo by hand), and named a query v2 changed.
    assert canary.aborted_by == CANARY_AGENT and canary.failed is not None, canary.verdict
    assert canary.failed.status == "fail"
    truth = {q.fingerprint for q in report.ground_truth}
    assert {f.fingerprint for f in canary.failed.findings} & truth, canary.failed.findings
    assert canary.aborted_at is not None and report.rollback.switched_at == canary.aborted_at
    # Only the canary's cohort met v2: the users the router's hash put there, no one else.
    cohort = {u for u in range(1, 61) if bucket(u) < 20}
    met = {r.user_id for r in report.records if r.routed_to == "v2"}
    assert met and met <= cohort
    assert not [r for r in report.records if r.release == "v2" and r.user_id not in cohort]
    # After the abort, v1 serves every request.
    after = [r for r in report.records if r.scheduled_at > report.rollback.finished_at + 0.05]
    assert after and {(r.routed_to, r.release) for r in after if not r.failed} == {("v1", "v1")}
    affected = {
        r.user_id
        for r in report.records
        if r.routed_to == "v2" and (r.failed or r.latency_ms > report.summary.slo_ms)
    }
    assert report.summary.users_affected == len(affected) <= len(met)
    # --json keeps today's keys and adds the canary's.
    data = report.as_json()["canary"]
    assert data["verdict"] == "fail" and data["status"] == "aborted"
    assert data["weight_pct"] == 20 and data["users_in_canary"] == len(met)
    assert data["abort_after_s"] == pytest.approx(canary.aborted_at - report.bad.switched_at, 0.01)
    assert data["aborted_at"] and data["started_at"] and data["promoted_at"] is None
    assert {c["fingerprint"] for c in data["culprits"]} & truth
    # The incident says it was caught in canary, and went through the rollback path.
    assert report.incident is not None and report.incident.id == canary.incident
    actions = {e.data.get("action"): e for e in report.incident.timeline if e.kind == "action"}
    abort = actions["canary_abort"]
    assert "caught in canary" in abort.message
    assert abort.data["users_in_canary"] > 0 and abort.data["weight_pct"] == 20
    assert abort.data["verdict"]["status"] == "fail"
    assert actions["rollback"].data["outcome"] == "ok"
    assert report.postmortem_path is not None
    assert "**Caught in canary:** v2 took 20% of users" in report.postmortem_path.read_text()
    assert _shop_servers(tmp_path) == []


def test_a_harmless_canary_is_promoted(tmp_path: Path) -> None:
    report = canary_replay(tmp_path, "v1.1", duration=80)
    assert report.completed and report.canary is not None, report.monitor_errors
    assert report.canary.status == "promoted", (report.canary.verdict, report.monitor_errors)
    assert report.promoted is not None and report.rollback is None and report.incident is None
    after = [r for r in report.records if r.scheduled_at > report.promoted.finished_at + 0.05]
    assert after and {r.release for r in after if not r.failed} == {"v1.1"}
    data = report.as_json()["canary"]
    assert data["verdict"] == "pass" and data["promoted_at"] and data["aborted_at"] is None
    assert _shop_servers(tmp_path) == []
