"""Guarded rollback on real SQLite stores, with real subprocesses, a real loopback webhook, the
real CLI in a subprocess and the real HTTP API."""

from __future__ import annotations

import base64
import http.client
import json
import os
import shlex
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cli_helpers import assert_one_line_error, run_cli, served
from querywatch import deploys
from querywatch.config import load_config
from querywatch.detect.policy import Policy
from querywatch.errors import ConfigError, NotFound
from querywatch.incidents import service
from querywatch.monitor import Monitor
from querywatch.records import DeployMarker
from querywatch.respond.actions import ActionContext, CommandAction, WebhookAction
from querywatch.respond.guards import RollbackRefused
from querywatch.respond.notifier import Notifier
from querywatch.respond.responder import Responder, responder_from_config
from querywatch.respond.settings import RollbackSettings
from querywatch.store import SqlStore, open_store
from querywatch.web.server import WebServer, make_server
from respond_helpers import (
    DEPLOY_AT,
    FINISHED_AT,
    NOW,
    ORDERS_FP,
    ROUTE,
    T0,
    WRITE_ARGS,
    RecordingSink,
    actions,
    bad_from,
    open_incident,
    script,
    ship_bad_release,
    write_traffic,
    written,
)

DATA_KEYS = {
    "action",
    "outcome",
    "trigger",
    "deploy_id",
    "version",
    "target_version",
    "command",
    "exit_code",
    "output",
    "duration_s",
    "step",
    "reason",
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with open_store(tmp_path / "store.sqlite3") as s:
        yield s


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "rollbacks.jsonl"


def deploy_command(tmp_path: Path, out: Path) -> str:
    """Records its arguments: what a real ./deploy.sh would be called with."""
    program = script(tmp_path / "deploy.py", WRITE_ARGS)
    return f"{program} {shlex.quote(str(out))} {{previous_version}} {{version}} {{deploy_id}}"


def make_responder(
    store: SqlStore,
    command: str | None,
    *,
    sink: RecordingSink | None = None,
    **settings: Any,
) -> Responder:
    base: dict[str, Any] = {"environment": "production", "timeout_s": 30.0}
    return Responder(
        store,
        action=CommandAction(command) if command is not None else None,
        settings=RollbackSettings(**{**base, **settings}),
        notifier=Notifier([sink]) if sink is not None else None,
    )


def refused_guard(store: SqlStore, incident_id: str) -> list[str]:
    incident = service.get_incident(store, incident_id)
    return [e.data["guard"] for e in actions(incident) if e.data["outcome"] == "refused"]


# -- the automatic path ---------------------------------------------------------------------------


def test_a_regression_proven_on_the_latest_deploy_is_rolled_back_by_the_monitor(
    store: SqlStore, tmp_path: Path, out: Path
) -> None:
    ship_bad_release(store)
    sink = RecordingSink()
    responder = make_responder(store, deploy_command(tmp_path, out), sink=sink, auto=True)
    result = Monitor(store, n_plus_one=False, responder=responder).check(NOW)

    assert result.incident is not None and result.rollback is not None
    assert result.rollback.outcome == "ok" and result.rollback.evidence == "confirmed"
    assert written(out) == [["v1", "v2", "d2"]]  # ./deploy.sh v1, once
    incident = service.get_incident(store, result.incident.id)
    assert incident.status == "mitigated"
    assert incident.last_event("mitigated").author == "querywatch"  # type: ignore[union-attr]
    steps = [(e.data["action"], e.data["outcome"]) for e in actions(incident)]
    assert steps == [("evidence_check", "confirmed"), ("rollback", "ok")]
    rollback = actions(incident, "rollback")[0]
    assert set(rollback.data) >= DATA_KEYS
    assert rollback.data["trigger"] == "auto"
    assert (rollback.data["deploy_id"], rollback.data["version"]) == ("d2", "v2")
    assert rollback.data["target_version"] == "v1" and rollback.data["exit_code"] == 0
    assert rollback.data["command"].endswith("v1 v2 d2")
    # The next checks see the same incident: no second rollback, no new events.
    again = Monitor(store, n_plus_one=False, responder=responder).check(NOW + 10)
    assert again.rollback is None and written(out) == [["v1", "v2", "d2"]]


def test_nothing_happens_by_itself_without_rollback_auto_or_enough_confidence(
    store: SqlStore, tmp_path: Path, out: Path
) -> None:
    ship_bad_release(store)
    command = deploy_command(tmp_path, out)
    incident = open_incident(store)
    assert make_responder(store, command, auto=False).on_incident(incident, NOW) is None

    weak = service.get_incident(store, open_incident(store, confidence=0.9).id)
    assert weak.id == incident.id  # the same incident: the stored detection is 0.99
    shy = Responder(
        store,
        action=CommandAction(command),
        settings=RollbackSettings(auto=True),
        policy=Policy(rollback_confidence=0.995),
    )
    assert shy.on_incident(weak, NOW) is None
    assert written(out) == [] and actions(service.get_incident(store, incident.id)) == []


def test_an_automatic_refusal_is_written_once_not_at_every_check(
    store: SqlStore, tmp_path: Path, out: Path
) -> None:
    ship_bad_release(store)
    deploys.start_deploy(store, "v3", at=NOW - 20, deploy_id="d3")  # still rolling out
    incident = open_incident(store)
    responder = make_responder(store, deploy_command(tmp_path, out), auto=True)
    for i in range(3):
        assert responder.on_incident(incident, NOW + i) is None
    assert refused_guard(store, incident.id) == ["deploy_in_progress"]
    event = actions(service.get_incident(store, incident.id), "refused")[0]
    assert "d3" in event.data["reason"] and event.data["trigger"] == "auto"
    assert written(out) == []


def test_gone_evidence_stops_the_agent_but_not_a_person(
    store: SqlStore, tmp_path: Path, out: Path
) -> None:
    ship_bad_release(store)
    write_traffic(store, NOW, NOW + 300)  # the orders query is fast again on fresh data
    incident = open_incident(store)
    responder = make_responder(store, deploy_command(tmp_path, out), auto=True)

    assert responder.on_incident(incident, NOW + 300) is None
    assert written(out) == []
    checks = actions(service.get_incident(store, incident.id), "evidence_check")
    assert [e.data["outcome"] for e in checks] == ["gone"]
    assert refused_guard(store, incident.id) == ["evidence"]

    result = responder.rollback(incident.id, by="alice", now=NOW + 310)
    assert result.outcome == "ok" and result.evidence == "gone"
    checks = actions(service.get_incident(store, incident.id), "evidence_check")
    assert [(e.data["outcome"], e.data["trigger"]) for e in checks][-1] == ("gone", "manual")
    assert written(out) == [["v1", "v2", "d2"]]


# -- guards ---------------------------------------------------------------------------------------


def test_a_dry_run_records_what_would_run_and_does_not_use_up_the_deploy(
    store: SqlStore, tmp_path: Path, out: Path
) -> None:
    ship_bad_release(store)
    incident = open_incident(store)
    responder = make_responder(store, deploy_command(tmp_path, out), dry_run=True, auto=True)

    first = responder.on_incident(incident, NOW)
    assert first is not None and first.outcome == "dry_run"
    responder.on_incident(incident, NOW + 10)  # the agent says it once
    manual = responder.rollback(incident.id, by="alice", now=NOW + 20)
    assert manual.outcome == "dry_run" and written(out) == []
    dry = actions(service.get_incident(store, incident.id), "rollback")
    assert [e.data["trigger"] for e in dry] == ["auto", "manual"]
    assert all(e.data["outcome"] == "dry_run" for e in dry)
    assert "would run: " in dry[0].message and dry[0].message.endswith("v1 v2 d2")

    real = responder.rollback(incident.id, by="alice", dry_run=False, now=NOW + 30)
    assert real.outcome == "ok" and written(out) == [["v1", "v2", "d2"]]
    assert service.get_incident(store, incident.id).status == "mitigated"


def test_at_most_one_rollback_per_deploy_and_a_restart_remembers(tmp_path: Path, out: Path) -> None:
    path = tmp_path / "store.sqlite3"
    command = deploy_command(tmp_path, out)
    with open_store(path) as store:
        ship_bad_release(store)
        incident = open_incident(store)
        assert make_responder(store, command).rollback(incident.id, now=NOW).outcome == "ok"
    with open_store(path) as store:  # another process, later: the state is in the store
        with pytest.raises(RollbackRefused, match="at most one rollback per deploy") as refused:
            make_responder(store, command).rollback(incident.id, by="bob", now=NOW + 60)
        assert refused.value.guard == "once_per_deploy"
        assert refused_guard(store, incident.id) == ["once_per_deploy"]
    assert written(out) == [["v1", "v2", "d2"]]


@pytest.mark.postgres
def test_a_shared_postgresql_store_remembers_the_rollback_for_every_agent(
    pg_dsn: str, tmp_path: Path, out: Path
) -> None:
    command = deploy_command(tmp_path, out)
    with open_store(pg_dsn) as first, open_store(pg_dsn) as second:
        ship_bad_release(first)
        incident = open_incident(first)
        assert make_responder(first, command).rollback(incident.id, now=NOW).outcome == "ok"
        with pytest.raises(RollbackRefused, match="was already rolled back"):
            make_responder(second, command, auto=False).rollback(incident.id, now=NOW + 5)
        write_traffic(second, NOW, NOW + 90)
        recovered = make_responder(second, command, recovery_check_s=60).verify(NOW + 90)
        assert [r.recovered for r in recovered] == [True]
    assert written(out) == [["v1", "v2", "d2"]]


def test_a_cooldown_holds_the_next_rollback_in_the_environment(
    store: SqlStore, tmp_path: Path, out: Path
) -> None:
    ship_bad_release(store)
    responder = make_responder(store, deploy_command(tmp_path, out), cooldown_s=1800)
    first = open_incident(store)
    responder.rollback(first.id, now=NOW)
    service.resolve(store, first.id, at=NOW + 50)
    deploys.start_deploy(store, "v3", at=NOW + 100, deploy_id="d3")
    deploys.finish_deploy(store, deploy_id="d3", at=NOW + 110)
    second = open_incident(store, "d3", at=NOW + 200)

    with pytest.raises(RollbackRefused, match="rollback_cooldown_s = 1800") as refused:
        responder.rollback(second.id, now=NOW + 200)
    assert refused.value.guard == "cooldown"
    late = make_responder(store, deploy_command(tmp_path, out), cooldown_s=150)
    assert late.rollback(second.id, now=NOW + 200).outcome == "ok"
    assert [args[:2] for args in written(out)] == [["v1", "v2"], ["v2", "v3"]]


def test_only_within_the_window_after_the_deploy(
    store: SqlStore, tmp_path: Path, out: Path
) -> None:
    ship_bad_release(store)
    incident = open_incident(store)
    responder = make_responder(store, deploy_command(tmp_path, out), window_s=600)
    with pytest.raises(RollbackRefused, match="past rollback_window_s = 600") as refused:
        responder.rollback(incident.id, now=FINISHED_AT + 601)
    assert refused.value.guard == "window" and written(out) == []
    assert responder.rollback(incident.id, now=FINISHED_AT + 599).outcome == "ok"


def test_never_while_another_deploy_is_in_progress(
    store: SqlStore, tmp_path: Path, out: Path
) -> None:
    ship_bad_release(store)
    incident = open_incident(store)
    responder = make_responder(store, deploy_command(tmp_path, out))
    deploys.start_deploy(store, "v3", at=NOW, deploy_id="d3")
    with pytest.raises(RollbackRefused, match="newer deploy d3") as newer:
        responder.rollback(incident.id, now=NOW + 5)
    assert newer.value.guard == "deploy_in_progress"

    other = tmp_path / "other.sqlite3"
    with open_store(other) as fresh:
        deploys.start_deploy(fresh, "v1", at=T0 - 7200, deploy_id="d1")
        deploys.finish_deploy(fresh, deploy_id="d1", at=T0 - 7100)
        deploys.start_deploy(fresh, "v2", at=DEPLOY_AT, deploy_id="d2")  # not finished
        unfinished = open_incident(fresh)
        with pytest.raises(RollbackRefused, match=r"d2 .*still in progress"):
            make_responder(fresh, deploy_command(tmp_path, out)).rollback(unfinished.id, now=NOW)
    assert written(out) == []


def test_a_command_that_overruns_its_timeout_is_killed_with_its_children(
    store: SqlStore, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    hang = script(
        tmp_path / "hang.py",
        "import subprocess, sys, time\n"
        "child = subprocess.Popen(['sleep', '300'])\n"
        "open(sys.argv[1], 'w').write(f'{child.pid}\\n')\n"
        "print('rolling back to', sys.argv[2], flush=True)\n"
        "time.sleep(300)\n",
    )
    ship_bad_release(store)
    incident = open_incident(store)
    responder = make_responder(store, f"{hang} {pids} {{previous_version}}", timeout_s=1.0)
    result = responder.rollback(incident.id, now=NOW)

    assert result.outcome == "timeout" and result.result is not None
    assert result.result.timed_out and "within 1 s" in (result.result.error or "")
    assert "rolling back to v1" in result.result.output
    child = int(pids.read_text())
    assert _gone(child), "the command's child survived the timeout"
    event = actions(service.get_incident(store, incident.id), "rollback")[0]
    assert event.data["outcome"] == "timeout"
    assert service.get_incident(store, incident.id).status == "open"  # not mitigated


def _gone(pid: int, wait_s: float = 5.0) -> bool:
    """No such process, or a zombie waiting to be reaped (it no longer runs)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def test_a_failing_rollback_command_is_recorded_with_its_output_and_alerts(
    store: SqlStore, tmp_path: Path
) -> None:
    fail = script(
        tmp_path / "fail.py",
        "import sys\nprint('pulling image shop:' + sys.argv[1])\n"
        "print('error: image not found', file=sys.stderr)\nsys.exit(3)\n",
    )
    ship_bad_release(store)
    incident = open_incident(store)
    sink = RecordingSink()
    responder = make_responder(store, f"{fail} {{previous_version}}", sink=sink)
    result = responder.rollback(incident.id, by="alice", now=NOW)

    assert result.outcome == "failed" and result.result is not None
    assert result.result.exit_code == 3
    assert "pulling image shop:v1" in result.result.output
    assert "error: image not found" in result.result.output
    after = service.get_incident(store, incident.id)
    assert after.status == "open"
    event = actions(after, "rollback")[0]
    assert (event.data["outcome"], event.data["exit_code"]) == ("failed", 3)
    assert "exited with code 3" in event.data["reason"]
    assert [a.alertname for a in sink.alerts] == ["RollbackFailed"]
    assert after.timeline[-1].kind == "alerted"
    with pytest.raises(RollbackRefused, match="already had a rollback that failed"):
        responder.rollback(incident.id, by="alice", now=NOW + 30)


def test_a_command_that_cannot_start_is_a_failure_not_a_crash(
    store: SqlStore, tmp_path: Path
) -> None:
    ship_bad_release(store)
    incident = open_incident(store)
    missing = tmp_path / "no-such-deploy.sh"
    result = make_responder(store, f"{missing} {{previous_version}}").rollback(incident.id, now=NOW)
    assert result.outcome == "failed" and result.result is not None
    assert result.result.exit_code is None
    assert f"cannot run {missing}" in (result.result.error or "")


def test_values_are_arguments_never_shell_code(tmp_path: Path) -> None:
    out = tmp_path / "args.jsonl"
    program = script(tmp_path / "w.py", WRITE_ARGS)
    # The command runs in tmp_path, so a shell there would leave its files there.
    action = CommandAction(f"{program} {out} --to={{previous_version}} {{commit}}", cwd=tmp_path)
    evil = "v1;touch${IFS}pwned;$(touch${IFS}pwned2)`touch${IFS}x`"
    context = ActionContext("QW-1", "v2", evil, "d2", "production", "abc123")
    result = action.run(context, 10)
    assert result.ok, result.error
    assert written(out) == [[f"--to={evil}", "abc123"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["args.jsonl", "w.py"]


def test_a_value_starting_with_a_dash_never_reaches_a_command_as_an_option(
    store: SqlStore, tmp_path: Path
) -> None:
    """The exploit: `git ls-remote {previous_version} REPO` with a previous version recorded as
    `--upload-pack=touch pwned;true` made git run `touch pwned` through a shell."""
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    evil = "--upload-pack=touch pwned;true"
    # A marker recorded before versions were checked: deploy start refuses this version now.
    store.record_deploy(DeployMarker("d1", evil, None, "production", T0 - 7200, T0 - 7190))
    deploys.start_deploy(store, "v2", commit="bbbb2222", at=DEPLOY_AT, deploy_id="d2")
    deploys.finish_deploy(store, deploy_id="d2", at=FINISHED_AT)
    write_traffic(store, T0, NOW, bad_from(FINISHED_AT))
    incident = open_incident(store)
    action = CommandAction(f"git ls-remote {{previous_version}} {repo}", cwd=tmp_path)
    responder = Responder(store, action=action, settings=RollbackSettings(timeout_s=30.0))
    with pytest.raises(RollbackRefused, match="starting with '-' would be read as an option"):
        responder.rollback(incident.id, by="alice", now=NOW)
    assert not (tmp_path / "pwned").exists()
    assert refused_guard(store, incident.id) == ["unsafe_value"]
    with pytest.raises(deploys.InvalidDeploy, match="must not start with '-'"):
        deploys.start_deploy(store, evil, at=NOW)


def test_template_errors_name_the_placeholder() -> None:
    with pytest.raises(ConfigError, match=r"unknown placeholder \{prev\}.*previous_version"):
        CommandAction("./deploy.sh {prev}")
    with pytest.raises(ConfigError, match=r"unknown placeholder \{version\.__class__\}"):
        CommandAction("./deploy.sh {version.__class__}")
    with pytest.raises(ConfigError, match="cannot split"):
        CommandAction("./deploy.sh 'unclosed")
    with pytest.raises(ConfigError, match="empty"):
        CommandAction("   ")


def test_unknown_incident_and_missing_configuration_are_clear_errors(
    store: SqlStore, tmp_path: Path
) -> None:
    ship_bad_release(store)
    incident = open_incident(store)
    with pytest.raises(NotFound, match="no incident QW-20990101-1"):
        make_responder(store, "true").rollback("QW-20990101-1", now=NOW)
    with pytest.raises(ConfigError, match="no rollback configured for production") as missing:
        make_responder(store, None).rollback(incident.id, now=NOW)
    assert missing.value.setting == "rollback_command"
    assert "rollback_webhook_url" in str(missing.value)


def test_a_command_naming_a_value_the_deploy_lacks_is_refused_not_a_crash(
    store: SqlStore,
) -> None:
    ship_bad_release(store)
    deploys.start_deploy(store, "v3", at=NOW - 30, deploy_id="d3")  # no commit
    deploys.finish_deploy(store, deploy_id="d3", at=NOW - 25)
    incident = open_incident(store, "d3")
    responder = Responder(
        store,
        action=CommandAction("./deploy.sh --commit {commit}"),
        settings=RollbackSettings(auto=True),
    )
    assert responder.on_incident(incident, NOW) is None  # the agent goes on
    assert refused_guard(store, incident.id) == ["missing_value"]
    with pytest.raises(RollbackRefused, match=r"needs \{commit\}"):
        responder.rollback(incident.id, now=NOW)


def test_a_deploy_without_a_previous_version_or_an_incident_without_a_deploy_is_refused(
    store: SqlStore,
) -> None:
    deploys.start_deploy(store, "v1", at=DEPLOY_AT, deploy_id="first")
    deploys.finish_deploy(store, deploy_id="first", at=FINISHED_AT)
    first = open_incident(store, "first")
    responder = make_responder(store, "true")
    with pytest.raises(RollbackRefused, match="no previous version"):
        responder.rollback(first.id, now=NOW)
    service.resolve(store, first.id, at=NOW)
    loose = open_incident(store, None)
    with pytest.raises(RollbackRefused, match="not attributed to a deploy"):
        responder.rollback(loose.id, now=NOW)
    assert refused_guard(store, loose.id) == ["no_deploy"]


# -- migrations -----------------------------------------------------------------------------------


def test_a_deploy_with_a_migration_freezes_and_alerts_instead_of_rolling_back(
    store: SqlStore, tmp_path: Path, out: Path
) -> None:
    ship_bad_release(store, migration="0042 adds NOT NULL column orders.region")
    sink = RecordingSink()
    responder = make_responder(store, deploy_command(tmp_path, out), sink=sink, auto=True)
    incident = open_incident(store)
    assert responder.on_incident(incident, NOW) is None
    assert responder.on_incident(incident, NOW + 10) is None  # alerted once

    assert written(out) == []
    assert [a.alertname for a in sink.alerts] == ["RollbackFrozen"]
    assert sink.alerts[0].title.startswith("freeze: rollback unsafe: deploy d2 declared")
    after = service.get_incident(store, incident.id)
    freeze = actions(after, "freeze")
    assert len(freeze) == 1 and freeze[0].data["outcome"] == "refused"
    assert "orders.region" in freeze[0].data["reason"]
    alerted = [e for e in after.timeline if e.kind == "alerted"]
    assert len(alerted) == 1 and alerted[0].message.startswith("freeze: rollback unsafe:")
    assert alerted[0].data["alertname"] == "RollbackFrozen"

    with pytest.raises(RollbackRefused, match="--force-unsafe-migration"):
        responder.rollback(incident.id, by="alice", now=NOW + 20)
    forced = responder.rollback(incident.id, by="alice", force_unsafe_migration=True, now=NOW + 30)
    assert forced.outcome == "ok" and written(out) == [["v1", "v2", "d2"]]
    event = actions(service.get_incident(store, incident.id), "rollback")[0]
    assert event.data["forced_unsafe_migration"] is True and event.author == "alice"


def test_a_schema_change_seen_during_the_deploy_freezes_too(
    store: SqlStore, tmp_path: Path, out: Path
) -> None:
    marker = ship_bad_release(store)
    store.record_deploy(replace(marker, schema_change="column orders.region added"))
    incident = open_incident(store)
    with pytest.raises(RollbackRefused, match="the schema changed during deploy d2") as refused:
        make_responder(store, deploy_command(tmp_path, out)).rollback(incident.id, now=NOW)
    assert refused.value.guard == "migration" and written(out) == []


# -- recovery -------------------------------------------------------------------------------------


def test_a_rollback_that_brings_the_figures_back_resolves_the_incident(
    store: SqlStore, tmp_path: Path, out: Path
) -> None:
    ship_bad_release(store)
    sink = RecordingSink()
    responder = make_responder(
        store, deploy_command(tmp_path, out), sink=sink, auto=True, recovery_check_s=60
    )
    incident = Monitor(store, n_plus_one=False, responder=responder).check(NOW).incident
    assert incident is not None
    write_traffic(store, NOW, NOW + 90)  # v1 again: the orders query is fast
    assert responder.verify(NOW + 30) == []  # not yet: recovery_check_s has not passed
    results = responder.verify(NOW + 90)

    assert len(results) == 1 and results[0].recovered
    after = service.get_incident(store, incident.id)
    assert after.status == "resolved" and after.resolved_at == NOW + 90
    resolved = after.last_event("resolved")
    assert resolved is not None and resolved.message.startswith("recovered: ")
    assert resolved.author == "querywatch"
    check = actions(after, "recovery_check")[0]
    assert check.data["outcome"] == "recovered"
    figures = check.data["figures"]
    assert set(figures) == {ORDERS_FP.id, ROUTE}
    for figure in figures.values():
        assert {"before_ms", "after_ms", "ratio"} <= set(figure)
        assert figure["ratio"] <= 1.5
    assert 1.0 < figures[ORDERS_FP.id]["before_ms"] < 4.0
    assert sink.alerts[-1].kind == "resolved"
    assert responder.verify(NOW + 200) == []  # verified once


def test_a_rollback_that_does_not_help_alerts_and_is_never_retried(
    store: SqlStore, tmp_path: Path, out: Path
) -> None:
    ship_bad_release(store)
    sink = RecordingSink()
    responder = make_responder(
        store, deploy_command(tmp_path, out), sink=sink, auto=True, recovery_check_s=60
    )
    monitor = Monitor(store, n_plus_one=False, responder=responder)
    incident = monitor.check(NOW).incident
    assert incident is not None
    write_traffic(store, NOW, NOW + 90, bad_from(0))  # still 30x slower: not the deploy
    results = monitor.check(NOW + 90).recoveries

    assert len(results) == 1 and not results[0].recovered
    after = service.get_incident(store, incident.id)
    assert after.status == "mitigated"
    check = actions(after, "recovery_check")[0]
    assert check.data["outcome"] == "not_recovered"
    assert check.data["figures"][ORDERS_FP.id]["ratio"] > 10
    assert ORDERS_FP.id in check.data["reason"]
    assert [a.alertname for a in sink.alerts if a.alertname.startswith("Rollback")] == [
        "RollbackDidNotHelp"
    ]
    alerted = [e for e in after.timeline if e.kind == "alerted"]
    assert alerted[-1].message.startswith("rollback did not help")
    text = sink.alerts[-1].text
    assert "select id, total from orders where customer_id = ?" in text
    assert "will not roll back again" in text

    with pytest.raises(RollbackRefused, match="did not help, so querywatch will not try again"):
        responder.rollback(incident.id, by="alice", now=NOW + 100)
    monitor.check(NOW + 120)
    assert written(out) == [["v1", "v2", "d2"]]
    assert len(actions(service.get_incident(store, incident.id), "recovery_check")) == 1


def test_verification_waits_for_data_after_the_rollback(
    store: SqlStore, tmp_path: Path, out: Path
) -> None:
    ship_bad_release(store)
    responder = make_responder(store, deploy_command(tmp_path, out), recovery_check_s=10)
    incident = open_incident(store)
    responder.rollback(incident.id, now=NOW)
    assert responder.verify(NOW + 60) == []  # nothing measured since: no verdict yet
    write_traffic(store, NOW + 60, NOW + 80)
    assert [r.recovered for r in responder.verify(NOW + 80)] == [True]


# -- webhook --------------------------------------------------------------------------------------


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.bodies.append(json.loads(body))  # type: ignore[attr-defined]
        self.server.auth.append(self.headers.get("Authorization"))  # type: ignore[attr-defined]
        status = self.server.status  # type: ignore[attr-defined]
        if status == 0:  # read the request, then hang up without an answer
            self.close_connection = True
            return
        reply = b'{"accepted": true}' if status < 300 else b"deploy system is down"
        self.send_response(status)
        if 300 <= status < 400:
            self.send_header("Location", self.server.location)  # type: ignore[attr-defined]
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[ThreadingHTTPServer]:
    yield from _serve_hook()


@pytest.fixture
def other_hook() -> Iterator[ThreadingHTTPServer]:
    yield from _serve_hook()


def _serve_hook() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.bodies = []  # type: ignore[attr-defined]
    server.auth = []  # type: ignore[attr-defined]
    server.status = 200  # type: ignore[attr-defined]
    server.location = ""  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_webhook_rollback_posts_the_values_and_reads_the_answer(
    store: SqlStore, hook: ThreadingHTTPServer
) -> None:
    ship_bad_release(store)
    incident = open_incident(store)
    url = f"http://user:hunter2@127.0.0.1:{hook.server_port}/hooks/rollback?key=secret"
    responder = Responder(store, action=WebhookAction(url), settings=RollbackSettings())
    result = responder.rollback(incident.id, now=NOW)

    assert result.outcome == "ok" and result.result is not None
    assert result.result.exit_code == 200 and '"accepted": true' in result.result.output
    assert hook.bodies == [  # type: ignore[attr-defined]
        {
            "action": "rollback",
            "incident": incident.id,
            "version": "v2",
            "previous_version": "v1",
            "deploy_id": "d2",
            "environment": "production",
            "commit": "bbbb2222",
        }
    ]
    assert hook.auth == ["Basic " + base64.b64encode(b"user:hunter2").decode()]  # type: ignore[attr-defined]
    event = actions(service.get_incident(store, incident.id), "rollback")[0]
    assert event.data["command"] == f"POST http://127.0.0.1:{hook.server_port}/…"
    assert "hunter2" not in json.dumps(event.data) and "secret" not in json.dumps(event.data)


def test_a_webhook_that_answers_an_error_is_a_failed_rollback(
    store: SqlStore, hook: ThreadingHTTPServer
) -> None:
    hook.status = 503  # type: ignore[attr-defined]
    ship_bad_release(store)
    incident = open_incident(store)
    action = WebhookAction(f"http://127.0.0.1:{hook.server_port}/rollback")
    result = Responder(store, action=action).rollback(incident.id, now=NOW)
    assert result.outcome == "failed" and result.result is not None
    assert result.result.exit_code == 503
    assert "deploy system is down" in result.result.output
    assert "HTTP 503" in (result.result.error or "")


@pytest.mark.parametrize("status", [500, 502, 503, 0])  # 0: the connection drops unanswered
def test_a_failing_webhook_rollback_is_never_retried(
    store: SqlStore, hook: ThreadingHTTPServer, status: int
) -> None:
    """Alert sinks retry a 5xx or a dropped connection once; a rollback request must not be sent
    twice, since the first may have rolled back already."""
    hook.status = status  # type: ignore[attr-defined]
    ship_bad_release(store)
    incident = open_incident(store)
    action = WebhookAction(f"http://127.0.0.1:{hook.server_port}/rollback")
    result = Responder(store, action=action).rollback(incident.id, now=NOW)
    assert result.outcome == "failed" and result.result is not None, result
    assert len(hook.bodies) == 1  # type: ignore[attr-defined]
    assert result.result.exit_code == (status or None)
    with pytest.raises(RollbackRefused, match="already had a rollback that failed"):
        Responder(store, action=action).rollback(incident.id, now=NOW + 30)
    assert len(hook.bodies) == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirecting_webhook_rollback_is_not_followed(
    store: SqlStore, hook: ThreadingHTTPServer, other_hook: ThreadingHTTPServer, status: int
) -> None:
    hook.status = status  # type: ignore[attr-defined]
    hook.location = f"http://127.0.0.1:{other_hook.server_port}/elsewhere"  # type: ignore[attr-defined]
    ship_bad_release(store)
    incident = open_incident(store)
    action = WebhookAction(f"http://127.0.0.1:{hook.server_port}/rollback")
    result = Responder(store, action=action).rollback(incident.id, now=NOW)
    assert result.outcome == "failed" and result.result is not None
    assert result.result.exit_code == status
    assert "redirects are not followed: configure the final URL" in (result.result.error or "")
    assert len(hook.bodies) == 1 and other_hook.bodies == []  # type: ignore[attr-defined]


# -- settings -------------------------------------------------------------------------------------


def test_settings_pick_the_environment_s_rollback_and_refuse_contradictions(
    store: SqlStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("QUERYWATCH_"):
            monkeypatch.delenv(name)
    toml = tmp_path / "querywatch.toml"
    toml.write_text(
        'rollback_command = "./deploy.sh production {previous_version}"\n'
        "[environments.staging]\n"
        'rollback_command = "./deploy.sh staging {previous_version}"\n'
        "rollback_auto = true\n"
        "rollback_cooldown_s = 60\n"
    )
    staging = responder_from_config(
        load_config({"environment": "staging"}, config_file=toml), store
    )
    assert staging.settings.environment == "staging" and staging.settings.auto
    assert staging.settings.cooldown_s == 60.0
    assert staging.action is not None
    assert staging.action.describe() == "./deploy.sh staging {previous_version}"
    production = responder_from_config(load_config(config_file=toml), store)
    assert production.action is not None and not production.settings.auto
    assert production.action.describe() == "./deploy.sh production {previous_version}"

    with pytest.raises(ConfigError, match="not both"):
        responder_from_config({"rollback_command": "x", "rollback_webhook_url": "http://h/"}, store)
    with pytest.raises(ConfigError, match="rollback_auto is on but no rollback is configured"):
        responder_from_config({"rollback_auto": True}, store)
    toml.write_text('rollback_command = "./deploy.sh {previous}"\n')
    with pytest.raises(ConfigError, match=r"querywatch.toml: rollback_command.*\{previous\}"):
        responder_from_config(load_config(config_file=toml), store)


def test_an_incident_in_another_environment_is_not_rolled_back_with_these_settings(
    store: SqlStore,
) -> None:
    ship_bad_release(store)
    incident = open_incident(store)
    staging = Responder(
        store, action=CommandAction("true"), settings=RollbackSettings(environment="staging")
    )
    with pytest.raises(RollbackRefused, match="use --env production"):
        staging.rollback(incident.id, now=NOW)
    staging_agent = Responder(
        store,
        action=CommandAction("true"),
        settings=RollbackSettings(environment="staging", auto=True),
    )
    assert staging_agent.on_incident(incident, NOW) is None  # not its deploy: not a word
    assert refused_guard(store, incident.id) == ["environment"]  # only the manual refusal


# -- CLI and API (real clock) ---------------------------------------------------------------------


def live_incident(store: SqlStore) -> str:
    """A bad deploy five minutes ago and its incident, on the real clock."""
    now = time.time()
    deploys.start_deploy(store, "v1", at=now - 7200, deploy_id="d1")
    deploys.finish_deploy(store, deploy_id="d1", at=now - 7190)
    deploys.start_deploy(store, "v2", at=now - 300, deploy_id="d2")
    deploys.finish_deploy(store, deploy_id="d2", at=now - 290)
    return open_incident(store, at=now - 200).id


@pytest.fixture
def project(tmp_path: Path, out: Path) -> tuple[Path, dict[str, str], str]:
    """A working directory with querywatch.toml, the environment for the CLI, an incident."""
    (tmp_path / "querywatch.toml").write_text(
        f"rollback_command = {json.dumps(deploy_command(tmp_path, out))}\n"
    )
    store_path = tmp_path / "store.sqlite3"
    with open_store(store_path) as store:
        incident_id = live_incident(store)
    return tmp_path, {"QUERYWATCH_STORE": str(store_path), "COLUMNS": "200"}, incident_id


def test_cli_rollback_prints_each_step_then_refuses_in_one_line(
    project: tuple[Path, dict[str, str], str], out: Path
) -> None:
    cwd, env, incident_id = project
    dry = run_cli("rollback", incident_id, "--dry-run", cwd=cwd, env=env)
    assert dry.returncode == 0, dry.stderr
    assert "would run: " in dry.stdout and written(out) == []

    done = run_cli("rollback", incident_id, "--by", "alice", cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "evidence re-checked on fresh data" in lines[0]
    assert any("rolled back deploy d2 (v2 → v1)" in line for line in lines)
    assert any(line.endswith(" rolled back v2 → v1") for line in lines)  # mitigated
    assert written(out) == [["v1", "v2", "d2"]]

    again = run_cli("rollback", incident_id, cwd=cwd, env=env)
    assert_one_line_error(again, "at most one rollback per deploy")
    shown = run_cli("incident", "show", incident_id, "--json", cwd=cwd, env=env)
    timeline = json.loads(shown.stdout)["data"]["timeline"]
    assert [e["author"] for e in timeline if e["data"].get("action") == "rollback"][-1] == "alice"


def test_cli_refuses_versions_and_ids_that_read_as_options(
    project: tuple[Path, dict[str, str], str],
) -> None:
    cwd, env, _ = project
    assert_one_line_error(
        run_cli("deploy", "start", "--version=--upload-pack=touch x", cwd=cwd, env=env),
        "version '--upload-pack=touch x' must not start with '-'",
    )
    assert_one_line_error(
        run_cli("deploy", "start", "--version", "v3", "--id=-x", cwd=cwd, env=env),
        "deploy id '-x' must not start with '-'",
    )
    assert_one_line_error(
        run_cli("deploy", "finish", "--version=-v2", cwd=cwd, env=env),
        "version '-v2' must not start with '-'",
    )


def test_cli_refuses_webhooks_to_metadata_addresses_unless_allowed(
    tmp_path: Path, project: tuple[Path, dict[str, str], str]
) -> None:
    _, env, incident_id = project
    bare = tmp_path / "hooked"
    bare.mkdir()
    hooked = {**env, "QUERYWATCH_ROLLBACK_WEBHOOK_URL": "http://169.254.169.254/latest/x"}
    assert_one_line_error(
        run_cli("rollback", incident_id, "--dry-run", cwd=bare, env=hooked),
        "rollback_webhook_url: 169.254.169.254 is a link-local address",
        "refused unless webhook_allow_link_local = true",
    )
    alerting = {
        **env,
        "QUERYWATCH_ROLLBACK_COMMAND": "true",
        "QUERYWATCH_ALERT_WEBHOOK_URL": "http://[::ffff:169.254.169.254]/hook",
    }
    assert_one_line_error(
        run_cli("rollback", incident_id, "--dry-run", cwd=bare, env=alerting),
        "alert_webhook_url: ::ffff:169.254.169.254 is a link-local address",
    )
    allowed = {**hooked, "QUERYWATCH_WEBHOOK_ALLOW_LINK_LOCAL": "true"}
    dry = run_cli("rollback", incident_id, "--dry-run", cwd=bare, env=allowed)
    assert dry.returncode == 0, dry.stderr
    assert "would run: POST http://169.254.169.254/…" in dry.stdout


def test_cli_errors_are_one_line(tmp_path: Path, project: tuple[Path, dict[str, str], str]) -> None:
    cwd, env, incident_id = project
    assert_one_line_error(
        run_cli("rollback", "QW-20990101-1", cwd=cwd, env=env), "no incident QW-20990101-1"
    )
    bare = tmp_path / "bare"
    bare.mkdir()
    assert_one_line_error(
        run_cli("rollback", incident_id, cwd=bare, env=env),
        "no rollback configured",
        "rollback_command",
    )
    failing = f"{sys.executable} -c 'raise SystemExit(4)'"
    (bare / "querywatch.toml").write_text(f"rollback_command = {json.dumps(failing)}\n")
    failed = run_cli("rollback", incident_id, cwd=bare, env=env)
    assert_one_line_error(failed, "rollback failed", "exited with code 4")


TOKEN = "s3cret-token-for-tests-0123456789"


@pytest.fixture
def api(project: tuple[Path, dict[str, str], str]) -> Iterator[tuple[WebServer, str]]:
    cwd, env, incident_id = project
    toml = cwd / "querywatch.toml"
    store_path = env["QUERYWATCH_STORE"]
    server = make_server(
        store_path,
        "127.0.0.1",
        0,
        TOKEN,
        environment="production",
        config_for=lambda e: load_config(
            {"store": store_path, "environment": e}, config_file=toml, environ={}
        ),
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server, incident_id
    server.shutdown()
    server.server_close()
    thread.join(5)


def post(base: str, path: str, body: object = None, token: str | None = TOKEN) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base + path, data, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read())


def test_api_rollback_status_codes(api: tuple[WebServer, str], out: Path) -> None:
    server, incident_id = api
    path = f"/api/incidents/{incident_id}/rollback"
    assert post(server.url, path, {"dry_run": True}, token=None)[0] == 401

    status, dry = post(server.url, path, {"dry_run": True, "by": "ci"})
    assert status == 200 and dry["data"]["outcome"] == "dry_run" and written(out) == []

    status, done = post(server.url, path, {"by": "ci"})
    assert status == 200, done
    assert done["data"]["outcome"] == "ok" and done["data"]["target_version"] == "v1"
    assert written(out) == [["v1", "v2", "d2"]]

    status, refused = post(server.url, path)
    assert status == 409 and refused["error"]["code"] == "conflict"
    assert "at most one rollback per deploy" in refused["error"]["message"]

    status, missing = post(server.url, "/api/incidents/QW-20990101-1/rollback")
    assert status == 404 and "no incident QW-20990101-1" in missing["error"]["message"]

    status, bad = post(server.url, path, {"dry_run": "yes"})
    assert status == 400 and "must be true or false" in bad["error"]["message"]
    status, bad = post(server.url, path, {"force": True})
    assert status == 400 and "unknown field 'force'" in bad["error"]["message"]


def raw_request(
    url: str, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, Any]:
    """One request with exactly these headers (a browser's, or a forged Host)."""
    host, _, port = url.removeprefix("http://").rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body, headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_a_cross_site_form_cannot_roll_back_through_serve_no_auth(
    project: tuple[Path, dict[str, str], str], out: Path
) -> None:
    """A page on another site, open in a browser on the operator's machine, targets
    `querywatch serve --no-auth` on 127.0.0.1: an auto-submitted form, a no-cors fetch, DNS
    rebinding. None of them may run the rollback command; the operator's own request still can."""
    cwd, env, incident_id = project
    no_auth = r"on (http://\S+) \(no auth, loopback only\)"
    with served("--no-auth", cwd=cwd, env=env, banner=no_auth) as url:
        port = url.rpartition(":")[2]
        path = f"/api/incidents/{incident_id}/rollback"
        form = {
            "Origin": "http://evil.example",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        status, reply = raw_request(url, "POST", path, form)  # <form method=post> with no fields
        assert status == 403 and reply["error"]["code"] == "forbidden", reply
        status, reply = raw_request(url, "POST", path, {"Content-Type": "text/plain"})
        assert status == 415, reply  # a "simple" request that carries no Origin
        rebound = {"Host": f"evil.example:{port}", "Content-Type": "application/json"}
        status, reply = raw_request(url, "POST", path, rebound, b"{}")
        assert status == 421, reply
        status, reply = raw_request(url, "GET", "/api/deploys", {"Host": f"evil.example:{port}"})
        assert status == 421 and "data" not in reply  # rebinding reads nothing either
        assert written(out) == []  # the rollback command never ran

        own = {"Content-Type": "application/json"}
        status, reply = raw_request(url, "POST", path, own, b'{"by": "ann"}')
        assert status == 200 and reply["data"]["outcome"] == "ok", reply
        assert written(out) == [["v1", "v2", "d2"]]


def test_api_without_rollback_settings_is_400(tmp_path: Path) -> None:
    store_path = tmp_path / "bare.sqlite3"
    with open_store(store_path) as store:
        incident_id = live_incident(store)
    server = make_server(
        store_path,
        "127.0.0.1",
        0,
        TOKEN,
        config_for=lambda e: load_config(
            {"store": str(store_path), "environment": e}, cwd=tmp_path, environ={}
        ),
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        status, body = post(server.url, f"/api/incidents/{incident_id}/rollback")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert status == 400 and "no rollback configured" in body["error"]["message"]
