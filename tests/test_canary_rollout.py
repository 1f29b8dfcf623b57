"""The progressive rollout driver (querywatch.respond.canary) on a real SQLite store, with real
command templates (a script that appends its argv to a file) and a real webhook on loopback: the
weights it sets, when it holds, advances, promotes and aborts, what it records, and the incident
and rollback after a failing verdict."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from querywatch import deploys
from querywatch.config import load_config
from querywatch.errors import ConfigError, InvalidTransition, NotFound
from querywatch.incidents import service
from querywatch.incidents.postmortem import render_postmortem
from querywatch.respond.actions import CommandAction, WebhookAction
from querywatch.respond.canary import (
    CanaryActionFailed,
    CanaryRollout,
    canary_rollout_from_config,
)
from querywatch.respond.canary_settings import CANARY_PLACEHOLDERS, CanarySettings
from querywatch.respond.canary_state import abort_due, fails_in_a_row, load_rollout
from querywatch.respond.responder import Responder
from querywatch.respond.settings import RollbackSettings
from querywatch.store import SqlStore, open_store
from respond_helpers import WRITE_ARGS, script, written
from test_canary_analysis import ORDERS, SHOP, T0, simulate, swap
from test_canary_analysis_store import write

ENV = "production"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with open_store(str(tmp_path / "store.sqlite3")) as s:
        yield s


def command(tmp_path: Path, log: str, *args: str) -> CommandAction:
    """``<python> writer.py <log> ARGS…`` as a canary command template."""
    template = script(tmp_path / "writer.py", WRITE_ARGS) + f" {tmp_path / log} " + " ".join(args)
    return CommandAction(
        template, setting="canary_weight_command", placeholders=CANARY_PLACEHOLDERS
    )


def rollout(
    store: SqlStore,
    tmp_path: Path,
    *,
    steps: tuple[float, ...] = (5.0, 25.0, 50.0, 100.0),
    interval_s: float = 30.0,
    promote: CommandAction | None = None,
    responder: Responder | None = None,
    fail_threshold: int = 2,
) -> CanaryRollout:
    settings = CanarySettings(
        environment=ENV, steps=steps, interval_s=interval_s, fail_threshold=fail_threshold
    )
    return CanaryRollout(
        store,
        settings,
        weight=command(tmp_path, "weights.log", "{release}", "{weight}", "{stable_release}"),
        promote=promote,
        responder=responder,
        clock=lambda: T0,
        repo_root=tmp_path,
    )


def test_start_sets_the_first_weight_through_the_command_and_keeps_the_state(
    store: SqlStore, tmp_path: Path
) -> None:
    r = rollout(store, tmp_path)
    started = r.start("v2", "v1", by="ci", now=T0)
    assert written(tmp_path / "weights.log") == [["v2", "5", "v1"]]
    assert (started.status, started.step, started.weight) == ("running", 0, 5.0)
    assert [(e.action, e.outcome) for e in started.events] == [
        ("start", "recorded"),
        ("weight", "ok"),
    ]
    kept = load_rollout(store, ENV)
    assert kept is not None and kept.to_dict() == started.to_dict()
    with pytest.raises(InvalidTransition, match="already running"):
        r.start("v3", "v1", by="ci", now=T0 + 1)
    assert len(written(tmp_path / "weights.log")) == 1  # the refused start ran nothing


def test_a_slow_canary_is_aborted_weight_0_first_then_the_incident_and_the_rollback(
    store: SqlStore, tmp_path: Path
) -> None:
    deploys.start_deploy(store, "v1", at=T0 - 7200, deploy_id="d1", environment=ENV)
    deploys.finish_deploy(store, deploy_id="d1", at=T0 - 7190)
    deploys.start_deploy(store, "v2", at=T0 - 20, deploy_id="d2", environment=ENV)
    deploys.finish_deploy(store, deploy_id="d2", at=T0 - 10)
    rollback = (
        script(tmp_path / "rb.py", WRITE_ARGS)
        + f" {tmp_path / 'rollback.log'} {{previous_version}}"
    )
    responder = Responder(
        store,
        action=CommandAction(rollback),
        settings=RollbackSettings(environment=ENV),
        clock=lambda: T0 + 60,
    )
    slow = replace(ORDERS, mean_ms=ORDERS.mean_ms * 100)
    write(store, *simulate(1, 60, canary=swap(SHOP, ORDERS, slow)))
    r = rollout(store, tmp_path, responder=responder)
    assert r.start("v2", "v1", by="ci", now=T0).deploy_id == "d2"

    first = r.step(now=T0 + 55)  # one failing verdict of the default two in a row: hold
    assert (first.verdict.status, first.did) == ("fail", "held"), first.verdict.reason
    assert written(tmp_path / "weights.log") == [["v2", "5", "v1"]]
    done = r.step(now=T0 + 60)

    assert done.did == "aborted" and done.verdict.status == "fail"
    assert written(tmp_path / "weights.log") == [["v2", "5", "v1"], ["v2", "0", "v1"]]
    assert written(tmp_path / "rollback.log") == [["v1"]]
    state = load_rollout(store, ENV)
    assert state is not None
    assert (state.status, state.weight, state.ended_by) == ("aborted", 0.0, "querywatch canary")
    assert state.aborted_at is not None and state.aborted_at >= T0 + 60
    assert state.end_reason is not None and "failed it (2 failing verdicts" in state.end_reason
    assert [v.status for v in state.verdicts] == ["fail", "fail"]
    assert [(e.action, e.outcome) for e in state.events][-3:] == [
        ("weight", "ok"),
        ("incident", "recorded"),
        ("rollback", "ok"),
    ]
    incident = service.get_incident(store, state.incident or "")
    assert incident.deploy_id == "d2"
    assert [c.fingerprint for c in incident.culprits] == [ORDERS.fp]
    (abort,) = [e for e in incident.timeline if e.data.get("action") == "canary_abort"]
    assert abort.data["weight_pct"] == 5.0 and abort.data["canary_release"] == "v2"
    assert abort.data["verdict"]["status"] == "fail"
    assert "caught in canary" in abort.message and "went to 0" in abort.message
    assert any(e.data.get("action") == "rollback" for e in incident.timeline)
    text = render_postmortem(store, incident.id, now=T0 + 120).text
    assert "Caught in canary" in text and "v2 took 5% of traffic" in text  # no user ids here
    with pytest.raises(InvalidTransition, match="already aborted"):
        r.step(now=T0 + 70)


def slow_canary(store: SqlStore) -> None:
    slow = replace(ORDERS, mean_ms=ORDERS.mean_ms * 100)
    write(store, *simulate(1, 60, canary=swap(SHOP, ORDERS, slow)))


def test_threshold_1_aborts_on_the_first_failing_verdict(store: SqlStore, tmp_path: Path) -> None:
    slow_canary(store)
    r = rollout(store, tmp_path, fail_threshold=1)
    r.start("v2", "v1", by="ci", now=T0)
    done = r.step(now=T0 + 60)
    assert (done.verdict.status, done.did) == ("fail", "aborted"), done.verdict.reason
    assert written(tmp_path / "weights.log") == [["v2", "5", "v1"], ["v2", "0", "v1"]]
    assert done.rollout.end_reason is not None and "in a row" not in done.rollout.end_reason


def test_a_verdict_that_does_not_fail_starts_the_count_again(
    store: SqlStore, tmp_path: Path
) -> None:
    slow_canary(store)
    r = rollout(store, tmp_path, fail_threshold=2)
    r.start("v2", "v1", by="ci", now=T0)
    assert r.step(now=T0 + 50).did == "held"  # fail 1 of 2
    # a poll with too little to judge: the span since the start holds no window yet
    quiet = r.step(now=T0 + 1)
    assert (quiet.verdict.status, quiet.did) == ("inconclusive", "held"), quiet.verdict.reason
    again = r.step(now=T0 + 55)
    assert (again.verdict.status, again.did) == ("fail", "held")  # 1 of 2 again, not 2
    assert written(tmp_path / "weights.log") == [["v2", "5", "v1"]]
    done = r.step(now=T0 + 60)
    assert done.did == "aborted"
    state = load_rollout(store, ENV)
    assert state is not None and state.status == "aborted"
    assert [v.status for v in state.verdicts] == ["fail", "inconclusive", "fail", "fail"]


def test_the_fail_threshold_setting(tmp_path: Path) -> None:
    assert CanarySettings.from_config(load_config({}, environ={}, cwd=tmp_path)).fail_threshold == 2
    one = load_config({"canary_fail_threshold": 1}, environ={}, cwd=tmp_path)
    assert CanarySettings.from_config(one).fail_threshold == 1
    env = load_config({}, environ={"QUERYWATCH_CANARY_FAIL_THRESHOLD": "3"}, cwd=tmp_path)
    assert CanarySettings.from_config(env).fail_threshold == 3
    with pytest.raises(ConfigError, match="canary_fail_threshold"):
        load_config({"canary_fail_threshold": 0}, environ={}, cwd=tmp_path)
    never = load_config({"canary_fail_threshold": 1000}, environ={}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="would never abort"):
        CanarySettings.from_config(never)


def test_fails_in_a_row_counts_only_the_latest_run() -> None:
    assert fails_in_a_row([]) == 0
    assert fails_in_a_row(["fail", "fail", "pass", "fail"]) == 1
    assert fails_in_a_row(["pass", "fail", "fail"]) == 2
    assert fails_in_a_row(["fail", "inconclusive"]) == 0
    assert abort_due(["fail"], 1) and not abort_due(["fail"], 2)
    assert abort_due(["inconclusive", "fail", "fail"], 2)


def test_a_harmless_canary_holds_each_step_then_advances_and_is_promoted(
    store: SqlStore, tmp_path: Path
) -> None:
    renamed = replace(ORDERS, name="orders-v2", sql="SELECT o.id, o.total FROM orders o WHERE 1=1")
    write(store, *simulate(8, 130, canary=swap(SHOP, ORDERS, renamed), canary_share=0.2))
    promote = command(tmp_path, "promote.log", "promote", "{release}")
    r = rollout(store, tmp_path, steps=(20.0, 100.0), interval_s=30.0, promote=promote)
    r.start("v2", "v1", by="ci", now=T0)

    assert r.step(now=T0 + 20).did == "held"  # the step has not lasted its interval yet
    advanced = r.step(now=T0 + 60)
    assert (advanced.verdict.status, advanced.did) == ("pass", "advanced"), advanced.verdict.reason
    assert advanced.rollout.weight == 100.0 and advanced.rollout.step == 1
    assert r.step(now=T0 + 70).did == "held"
    promoted = r.step(now=T0 + 120)
    assert promoted.did == "promoted", promoted.verdict.reason

    assert written(tmp_path / "weights.log") == [["v2", "20", "v1"], ["v2", "100", "v1"]]
    assert written(tmp_path / "promote.log") == [["promote", "v2"]]
    state = load_rollout(store, ENV)
    assert state is not None and state.status == "promoted" and state.promoted_at is not None
    assert [v.status for v in state.verdicts] == ["pass"] * 4
    with pytest.raises(InvalidTransition, match="already promoted"):
        r.abort(by="alice", now=T0 + 130)


def test_an_inconclusive_canary_holds_without_moving(store: SqlStore, tmp_path: Path) -> None:
    r = rollout(store, tmp_path, interval_s=1.0)
    r.start("v2", "v1", by="ci", now=T0)
    held = r.step(now=T0 + 300)  # nothing recorded for either release
    assert (held.verdict.status, held.did) == ("inconclusive", "held")
    assert written(tmp_path / "weights.log") == [["v2", "5", "v1"]]


def test_a_failing_promote_command_leaves_the_canary_running_and_says_why(
    store: SqlStore, tmp_path: Path
) -> None:
    failing = CommandAction(
        script(tmp_path / "fail.py", "import sys\nprint('lb says no')\nsys.exit(3)\n")
    )
    r = rollout(store, tmp_path, promote=failing)
    r.start("v2", "v1", by="ci", now=T0)
    with pytest.raises(CanaryActionFailed, match="exited with code 3"):
        r.promote(by="alice", now=T0 + 10)
    state = load_rollout(store, ENV)
    assert state is not None and state.status == "running"
    last = state.events[-1]
    assert (last.action, last.outcome, last.exit_code, last.by) == ("promote", "failed", 3, "alice")
    assert last.output is not None and "lb says no" in last.output


def test_a_manual_abort_without_an_incident_sets_weight_0_and_says_the_rollback_did_not_run(
    store: SqlStore, tmp_path: Path
) -> None:
    r = rollout(store, tmp_path)
    r.start("v2", "v1", by="ci", now=T0)
    done = r.abort(by="alice", reason="support tickets", now=T0 + 5)
    assert written(tmp_path / "weights.log")[-1] == ["v2", "0", "v1"]
    assert (done.status, done.ended_by, done.end_reason) == ("aborted", "alice", "support tickets")
    assert done.events[-1].action == "rollback" and done.events[-1].outcome == "skipped"
    assert done.incident is None


def test_a_start_whose_weight_command_fails_ends_aborted(store: SqlStore, tmp_path: Path) -> None:
    failing = CommandAction(
        script(tmp_path / "fail.py", "import sys\nsys.exit(1)\n") + " {release} {weight}",
        placeholders=CANARY_PLACEHOLDERS,
    )
    r = CanaryRollout(store, CanarySettings(environment=ENV), weight=failing)
    with pytest.raises(CanaryActionFailed, match="not started"):
        r.start("v2", "v1", by="ci", now=T0)
    state = load_rollout(store, ENV)
    assert state is not None and state.status == "aborted" and state.weight == 0.0
    fixed = CanaryRollout(store, CanarySettings(environment=ENV))  # the command fixed
    again = fixed.start("v2", "v1", by="ci", now=T0 + 1)  # an ended rollout does not block it
    assert again.started_at == T0 + 1


def test_release_names_that_could_be_options_are_refused(store: SqlStore, tmp_path: Path) -> None:
    r = rollout(store, tmp_path)
    with pytest.raises(ConfigError, match="not a release name"):
        r.start("--upload-pack=evil", "v1", by="ci")
    with pytest.raises(ConfigError, match="both 'v1'"):
        r.start("v1", "v1", by="ci")
    assert load_rollout(store, ENV) is None and written(tmp_path / "weights.log") == []


def test_no_rollout_is_not_found_and_no_weight_action_only_records(store: SqlStore) -> None:
    r = CanaryRollout(store, CanarySettings(environment=ENV))
    with pytest.raises(NotFound):
        r.abort(by="alice")
    started = r.start("v2", "v1", by="ci", now=T0)
    assert started.weight == 5.0 and started.events[-1].outcome == "not_configured"


class _Hook(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_the_weight_webhook_gets_release_and_weight_as_json_on_loopback(
    store: SqlStore, tmp_path: Path
) -> None:
    _Hook.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/weight"
        cfg = load_config(
            {"canary_weight_webhook_url": url, "environment": ENV, "canary_steps": "10,100"},
            environ={},
            cwd=tmp_path,
        )
        r = canary_rollout_from_config(cfg, store, clock=lambda: T0)
        assert isinstance(r.weight_action, WebhookAction)
        r.start("v2", "v1", by="ci", now=T0)
        r.abort(by="alice", now=T0 + 5)
    finally:
        server.shutdown()
        server.server_close()
    assert [
        (b["action"], b["release"], b["weight"], b["stable_release"]) for b in _Hook.bodies
    ] == [
        ("canary_weight", "v2", "10", "v1"),
        ("canary_weight", "v2", "0", "v1"),
    ]


def test_bad_canary_settings_stop_at_configuration(tmp_path: Path, store: SqlStore) -> None:
    cfg = load_config(
        {"canary_weight_command": "./lb.sh {release} {weigth}"}, environ={}, cwd=tmp_path
    )
    with pytest.raises(ConfigError, match=r"unknown placeholder \{weigth\}"):
        canary_rollout_from_config(cfg, store)
    both = load_config(
        {"canary_promote_command": "./p.sh", "canary_promote_webhook_url": "http://127.0.0.1:9/"},
        environ={},
        cwd=tmp_path,
    )
    with pytest.raises(ConfigError, match="not both"):
        canary_rollout_from_config(both, store)
    with pytest.raises(ConfigError, match="must rise"):
        load_config({"canary_steps": "50,25"}, environ={}, cwd=tmp_path)
