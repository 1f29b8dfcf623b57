"""`querywatch canary …` as a user runs it: a subprocess over a SQLite file, the weight command a
real script appending its argv to a file; JSON in the envelope, one-line errors, exit codes."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from cli_helpers import assert_one_line_error, run_cli
from querywatch.detect.canary import ReleaseWindows
from querywatch.store import open_store
from respond_helpers import WRITE_ARGS, script, written
from test_canary_analysis import ORDERS, SHOP, T0, simulate, swap
from test_canary_analysis_store import write


def setup(tmp_path: Path) -> dict[str, str]:
    weight = script(tmp_path / "lb.py", WRITE_ARGS) + f" {tmp_path / 'weights.log'}"
    return {
        "QUERYWATCH_STORE": str(tmp_path / "store.sqlite3"),
        "QUERYWATCH_CANARY_WEIGHT_COMMAND": weight + " {release} {weight}",
        "QUERYWATCH_CANARY_STEPS": "10,50,100",
    }


def envelope(stdout: str) -> dict[str, object]:
    data = json.loads(stdout)
    assert isinstance(data, dict)
    return data


def test_start_status_abort_with_json_and_one_line_errors(tmp_path: Path) -> None:
    env = setup(tmp_path)
    open_store(env["QUERYWATCH_STORE"]).close()

    started = run_cli(
        "canary", "start", "--release", "v2", "--stable", "v1", "--json", cwd=tmp_path, env=env
    )
    assert started.returncode == 0, started.stderr
    data = envelope(started.stdout)
    assert data["ok"] is True
    rollout = data["data"]
    assert isinstance(rollout, dict)
    assert (rollout["weight"], rollout["steps"], rollout["status"]) == (
        10.0,
        [10.0, 50.0, 100.0],
        "running",
    )
    assert written(tmp_path / "weights.log") == [["v2", "10"]]

    again = run_cli(
        "canary", "start", "--release", "v3", "--stable", "v1", "--json", cwd=tmp_path, env=env
    )
    assert envelope(again.stdout)["error"] == {
        "code": "conflict",
        "message": envelope(again.stdout)["error"]["message"],  # type: ignore[index]
    }
    assert_one_line_error(again, "already running")

    shown = run_cli("canary", "status", cwd=tmp_path, env=env)
    assert shown.returncode == 0 and "canary v2 next to v1 in production: running" in shown.stdout

    aborted = run_cli(
        "canary", "abort", "--reason", "tickets", "--by", "alice", cwd=tmp_path, env=env
    )
    assert aborted.returncode == 0, aborted.stderr
    assert "canary v2 aborted" in aborted.stdout
    assert written(tmp_path / "weights.log")[-1] == ["v2", "0"]
    status = envelope(run_cli("canary", "status", "--json", cwd=tmp_path, env=env).stdout)
    kept = status["data"]["rollout"]  # type: ignore[index]
    assert (kept["status"], kept["ended_by"], kept["end_reason"]) == ("aborted", "alice", "tickets")

    nothing = run_cli("canary", "promote", cwd=tmp_path, env=env)
    assert_one_line_error(nothing, "already aborted")
    bad = run_cli(
        "canary",
        "start",
        "--release",
        "v2",
        "--stable",
        "v1",
        "--steps",
        "50,20",
        cwd=tmp_path,
        env=env,
    )
    assert bad.returncode == 1
    assert_one_line_error(bad, "must rise")


def test_status_without_a_rollout_and_step_that_holds(tmp_path: Path) -> None:
    env = setup(tmp_path)
    open_store(env["QUERYWATCH_STORE"]).close()
    none = run_cli("canary", "status", "--env", "staging", cwd=tmp_path, env=env)
    assert none.returncode == 0 and "no canary rollout in staging" in none.stdout
    assert (
        run_cli(
            "canary", "start", "--release", "v2", "--stable", "v1", cwd=tmp_path, env=env
        ).returncode
        == 0
    )
    held = run_cli("canary", "step", "--json", cwd=tmp_path, env=env)
    assert held.returncode == 0, held.stderr
    step = envelope(held.stdout)["data"]
    assert step["did"] == "held" and step["verdict"]["status"] == "inconclusive"  # type: ignore[index]


def shifted(side: ReleaseWindows, delta: int) -> ReleaseWindows:
    return ReleaseWindows(
        [replace(w, window_start=w.window_start + delta) for w in side.statements],
        [replace(w, window_start=w.window_start + delta) for w in side.requests],
        [replace(w, window_start=w.window_start + delta) for w in side.repeats],
    )


def test_watch_aborts_a_slow_canary_and_exits_1(tmp_path: Path) -> None:
    env = setup(tmp_path)
    # Windows from a minute ago to two minutes ahead: the canary's data arrives as time passes.
    start = int(time.time() // 10 * 10) - 60
    slow = replace(ORDERS, mean_ms=ORDERS.mean_ms * 100)
    canary, stable = simulate(3, 180, canary=swap(SHOP, ORDERS, slow), canary_share=0.3)
    with open_store(env["QUERYWATCH_STORE"]) as store:
        write(store, shifted(canary, start - T0), shifted(stable, start - T0))
    assert (
        run_cli(
            "canary", "start", "--release", "v2", "--stable", "v1", cwd=tmp_path, env=env
        ).returncode
        == 0
    )

    watched = run_cli("canary", "watch", "--every", "1", cwd=tmp_path, env=env, timeout=170)

    line = assert_one_line_error(watched, "canary v2 aborted", "failed it")
    assert "orders" in line
    assert watched.returncode == 1
    assert "fail:" in watched.stdout and "-> aborted" in watched.stdout
    assert written(tmp_path / "weights.log") == [["v2", "10"], ["v2", "0"]]
