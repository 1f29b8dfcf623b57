"""Runbook steps: read from a real config file, run as real subprocesses (and Python callables)
after a rollback or on demand, each on the incident timeline; the CLI in a subprocess."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli_helpers import assert_one_line_error, run_cli
from querywatch import deploys
from querywatch.config import load_config
from querywatch.errors import ConfigError, NotFound
from querywatch.incidents import service
from querywatch.respond.actions import ActionContext, CallableAction, CommandAction
from querywatch.respond.guards import ActionRefused
from querywatch.respond.responder import Responder, responder_from_config
from querywatch.respond.runbook import RunbookStep, parse_runbook, runbook_from_config
from querywatch.respond.settings import RollbackSettings
from querywatch.store import SqlStore, open_store
from respond_helpers import (
    NOW,
    WRITE_ARGS,
    actions,
    open_incident,
    script,
    ship_bad_release,
    written,
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("QUERYWATCH_"):
            monkeypatch.delenv(name)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with open_store(tmp_path / "store.sqlite3") as s:
        yield s


@pytest.fixture
def flushed(tmp_path: Path) -> Path:
    return tmp_path / "flushed.jsonl"


def flush_command(tmp_path: Path, out: Path) -> str:
    program = script(tmp_path / "flush.py", WRITE_ARGS)
    return f"{program} {shlex.quote(str(out))} {{environment}} {{previous_version}} {{incident}}"


def responder(
    store: SqlStore, steps: dict[str, RunbookStep], rollback: str | None = "true", **settings: Any
) -> Responder:
    return Responder(
        store,
        action=CommandAction(rollback) if rollback else None,
        settings=RollbackSettings(**{"timeout_s": 30.0, **settings}),
        runbook=steps,
    )


def cache_flush(tmp_path: Path, out: Path, *, after_rollback: bool = True) -> RunbookStep:
    return RunbookStep.from_command(
        "cache-flush", flush_command(tmp_path, out), after_rollback=after_rollback
    )


# -- configuration --------------------------------------------------------------------------------


def test_steps_are_read_from_the_config_file_in_order(tmp_path: Path) -> None:
    toml = tmp_path / "querywatch.toml"
    toml.write_text(
        'rollback_command = "./deploy.sh {previous_version}"\n'
        "[runbook.cache-flush]\n"
        'command = "redis-cli -h cache FLUSHDB"\n'
        'description = """Flush the query cache\n  the bad release filled"""\n'
        "after_rollback = true\n"
        "timeout_s = 60\n"
        "[runbook.warm-up]\n"
        'command = "./warm.sh {environment}"\n'
    )
    steps = runbook_from_config(load_config(config_file=toml))
    assert list(steps) == ["cache-flush", "warm-up"]
    flush, warm = steps["cache-flush"], steps["warm-up"]
    assert (flush.command, flush.after_rollback, flush.timeout_s) == (
        "redis-cli -h cache FLUSHDB",
        True,
        60.0,
    )
    assert flush.description == "Flush the query cache the bad release filled"
    assert (warm.after_rollback, warm.timeout_s, warm.description) == (False, None, "")


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("[runbook.flush]\ndescription = 'no command'\n", "command is required"),
        ("[runbook.flush]\ncommand = '  '\n", "command is required"),
        ("[runbook.flush]\ncommand = 'x'\nafter_rolback = true\n", "unknown key 'after_rolback'"),
        ("[runbook.flush]\ncommand = 'x'\nafter_rollback = 'yes'\n", "must be true or false"),
        ("[runbook.flush]\ncommand = 'x'\ntimeout_s = 0\n", "timeout_s must be a number"),
        ("[runbook.flush]\ncommand = 'x'\ntimeout_s = '10'\n", "timeout_s must be a number"),
        ("[runbook.flush]\ncommand = 'x'\ntimeout_s = true\n", "timeout_s must be a number"),
        ("[runbook.flush]\ncommand = 'x'\ndescription = 5\n", "description must be text"),
        ("[runbook.flush]\ncommand = 'x {version'\n", "bad placeholder"),
        ("[runbook.flush]\ncommand = 'x {shard}'\n", "unknown placeholder {shard}"),
        ("[runbook]\nflush = 'x'\n", "must be a table with a command"),
    ],
)
def test_a_bad_runbook_table_names_the_file_and_the_step(
    tmp_path: Path, table: str, expected: str
) -> None:
    toml = tmp_path / "querywatch.toml"
    toml.write_text(table)
    with pytest.raises(ConfigError) as err:
        runbook_from_config(load_config(config_file=toml))
    assert str(err.value).startswith(f"{toml}: [runbook.flush]")
    assert expected in str(err.value)


def test_a_step_name_must_be_usable_on_a_command_line() -> None:
    with pytest.raises(ConfigError, match="a step name is 1-64 letters"):
        parse_runbook({"flush cache": {"command": "x"}}, "querywatch.toml")


# -- after a rollback -----------------------------------------------------------------------------


def test_after_rollback_steps_run_after_a_successful_rollback_with_its_values(
    store: SqlStore, tmp_path: Path, flushed: Path
) -> None:
    ship_bad_release(store)
    incident = open_incident(store)
    report = RunbookStep.from_command("report", f"{sys.executable} -c 'print(1)'")
    steps = {"cache-flush": cache_flush(tmp_path, flushed), "report": report}
    result = responder(store, steps).rollback(incident.id, by="alice", now=NOW)

    assert [s.step for s in result.steps] == ["cache-flush"]  # "report" is on demand only
    assert written(flushed) == [["production", "v1", incident.id]]
    timeline = service.get_incident(store, incident.id).timeline
    kinds = [(e.kind, e.data.get("action")) for e in timeline[1:]]
    assert kinds == [
        ("action", "evidence_check"),
        ("action", "rollback"),
        ("mitigated", "rollback"),
        ("action", "runbook"),
    ]
    step = timeline[-1]
    assert step.data["step"] == "cache-flush" and step.data["outcome"] == "ok"
    assert (step.data["trigger"], step.data["target_version"]) == ("manual", "v1")
    assert step.data["command"].endswith(f"production v1 {incident.id}")
    assert step.author == "alice" and step.data["exit_code"] == 0


def test_steps_do_not_run_when_the_rollback_failed_and_dry_run_when_it_is_a_dry_run(
    store: SqlStore, tmp_path: Path, flushed: Path
) -> None:
    ship_bad_release(store)
    incident = open_incident(store)
    steps = {"cache-flush": cache_flush(tmp_path, flushed)}
    dry = responder(store, steps).rollback(incident.id, dry_run=True, now=NOW)
    assert [(s.step, s.outcome) for s in dry.steps] == [("cache-flush", "dry_run")]
    events = actions(service.get_incident(store, incident.id), "runbook")
    assert events[0].message.startswith("dry run: runbook step cache-flush would run: ")
    failing = f"{sys.executable} -c 'raise SystemExit(1)'"
    failed = responder(store, steps, rollback=failing).rollback(incident.id, now=NOW + 10)
    assert failed.outcome == "failed" and failed.steps == []
    assert written(flushed) == []


# -- on demand ------------------------------------------------------------------------------------


def test_a_step_on_demand_runs_once_per_ask_and_is_recorded(
    store: SqlStore, tmp_path: Path, flushed: Path
) -> None:
    ship_bad_release(store)
    incident = open_incident(store)
    steps = {"cache-flush": cache_flush(tmp_path, flushed, after_rollback=False)}
    the_responder = responder(store, steps, rollback=None)  # no rollback needed for a step
    done = the_responder.run_step("cache-flush", incident.id, by="bob", now=NOW)
    assert done.outcome == "ok" and written(flushed) == [["production", "v1", incident.id]]
    dry = the_responder.run_step("cache-flush", incident.id, dry_run=True, now=NOW + 5)
    assert dry.outcome == "dry_run" and len(written(flushed)) == 1
    events = actions(service.get_incident(store, incident.id), "runbook")
    assert [(e.data["outcome"], e.data["trigger"]) for e in events] == [
        ("ok", "manual"),
        ("dry_run", "manual"),
    ]
    assert events[0].author == "bob"


def test_a_failing_step_and_a_step_that_overruns_are_recorded_with_their_output(
    store: SqlStore, tmp_path: Path
) -> None:
    ship_bad_release(store)
    incident = open_incident(store)
    broken = script(
        tmp_path / "broken.py",
        "import sys\nprint('FLUSHDB', sys.argv[1])\n"
        "print('ERR connection refused', file=sys.stderr)\nsys.exit(2)\n",
    )
    steps = {
        "flush": RunbookStep.from_command("flush", f"{broken} {{environment}}"),
        "slow": RunbookStep.from_command("slow", "sleep 30", timeout_s=0.5),
    }
    the_responder = responder(store, steps)
    failed = the_responder.run_step("flush", incident.id, now=NOW)
    assert failed.outcome == "failed" and failed.result is not None
    assert "FLUSHDB production" in failed.result.output
    assert "ERR connection refused" in failed.result.output
    slow = the_responder.run_step("slow", incident.id, now=NOW + 1)
    assert slow.outcome == "timeout" and slow.result is not None and slow.result.timed_out
    events = actions(service.get_incident(store, incident.id), "runbook")
    assert [(e.data["step"], e.data["outcome"], e.data["exit_code"]) for e in events] == [
        ("flush", "failed", 2),
        ("slow", "timeout", events[1].data["exit_code"]),
    ]
    assert "did not finish within 0.5 s" in events[1].data["reason"]


def test_a_step_is_refused_while_a_deploy_is_in_progress_or_without_its_values(
    store: SqlStore, tmp_path: Path, flushed: Path
) -> None:
    ship_bad_release(store)
    incident = open_incident(store)
    steps = {"cache-flush": cache_flush(tmp_path, flushed)}
    deploys.start_deploy(store, "v3", at=NOW, deploy_id="d3")
    with pytest.raises(ActionRefused, match=r"deploy d3 .*in progress") as refused:
        responder(store, steps).run_step("cache-flush", incident.id, now=NOW + 1)
    assert refused.value.guard == "deploy_in_progress"
    deploys.finish_deploy(store, deploy_id="d3", at=NOW + 2)
    service.resolve(store, incident.id, at=NOW + 3)

    loose = open_incident(store, None)  # no deploy: no {previous_version}
    with pytest.raises(ActionRefused, match=r"needs \{previous_version\}.*names no deploy"):
        responder(store, steps).run_step("cache-flush", loose.id, now=NOW + 4)
    refusal = actions(service.get_incident(store, loose.id), "refused")[0]
    assert refusal.data["step"] == "cache-flush" and refusal.data["guard"] == "missing_value"
    assert written(flushed) == []


def test_unknown_step_and_unknown_incident_are_not_found(
    store: SqlStore, tmp_path: Path, flushed: Path
) -> None:
    ship_bad_release(store)
    incident = open_incident(store)
    the_responder = responder(store, {"cache-flush": cache_flush(tmp_path, flushed)})
    with pytest.raises(NotFound, match=r"no runbook step 'flush' \(configured: cache-flush\)"):
        the_responder.run_step("flush", incident.id)
    with pytest.raises(NotFound, match="no incident QW-20990101-1"):
        the_responder.run_step("cache-flush", "QW-20990101-1")
    with pytest.raises(NotFound, match=r"configured: none: add a \[runbook.<name>\] table"):
        responder(store, {}).run_step("cache-flush", incident.id)


# -- Python callables (how the demo drives its in-process deployer) -------------------------------


def test_callables_roll_back_and_run_steps_like_commands(store: SqlStore) -> None:
    ship_bad_release(store)
    incident = open_incident(store)
    calls: list[ActionContext] = []

    def roll_back(context: ActionContext) -> str:
        calls.append(context)
        return f"switched traffic to {context.previous_version}"

    def flush(context: ActionContext) -> None:
        raise RuntimeError("cache unreachable")

    the_responder = Responder(
        store,
        action=CallableAction(roll_back, label="demo deployer: roll back"),
        runbook={
            "flush": RunbookStep(
                "flush", CallableAction(flush, label="flush the cache"), after_rollback=True
            )
        },
    )
    result = the_responder.rollback(incident.id, now=NOW)
    assert result.outcome == "ok" and result.command == "demo deployer: roll back"
    assert [(c.version, c.previous_version, c.deploy_id) for c in calls] == [("v2", "v1", "d2")]
    assert result.result is not None and result.result.output == "switched traffic to v1"
    assert [(s.step, s.outcome) for s in result.steps] == [("flush", "failed")]
    step = actions(service.get_incident(store, incident.id), "runbook")[0]
    assert step.data["reason"] == "RuntimeError: cache unreachable"


def test_a_callable_that_overruns_is_reported_as_a_timeout() -> None:
    def slow(context: ActionContext) -> str:
        time.sleep(5)
        return "late"

    action = CallableAction(slow, label="slow")
    outcome = action.run(ActionContext("QW-1"), 0.2)
    assert outcome.timed_out and outcome.status == "timeout"


# -- CLI ------------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, flushed: Path) -> tuple[Path, dict[str, str], str]:
    broken = f"{sys.executable} -c 'import sys; print(\"no cache\"); sys.exit(5)'"
    (tmp_path / "querywatch.toml").write_text(
        "[runbook.cache-flush]\n"
        f"command = {json.dumps(flush_command(tmp_path, flushed))}\n"
        'description = "Flush the query cache"\n'
        "[runbook.broken]\n"
        f"command = {json.dumps(broken)}\n"
        "timeout_s = 20\n"
    )
    store_path = tmp_path / "store.sqlite3"
    now = time.time()
    with open_store(store_path) as store:
        deploys.start_deploy(store, "v1", at=now - 7200, deploy_id="d1")
        deploys.finish_deploy(store, deploy_id="d1", at=now - 7190)
        deploys.start_deploy(store, "v2", at=now - 300, deploy_id="d2")
        deploys.finish_deploy(store, deploy_id="d2", at=now - 290)
        incident_id = open_incident(store, at=now - 200).id
    return tmp_path, {"QUERYWATCH_STORE": str(store_path), "COLUMNS": "200"}, incident_id


def test_cli_lists_and_runs_steps(project: tuple[Path, dict[str, str], str], flushed: Path) -> None:
    cwd, env, incident_id = project
    listed = run_cli("runbook", cwd=cwd, env=env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:3] == ["cache-flush", "on", "demand"]
    assert lines[1].strip() == "Flush the query cache"
    assert lines[2].split()[:4] == ["broken", "on", "demand", "20"]
    as_json = json.loads(run_cli("runbook", "--json", cwd=cwd, env=env).stdout)["data"]
    assert [s["name"] for s in as_json] == ["cache-flush", "broken"]

    ran = run_cli("runbook", "run", "cache-flush", "--incident", incident_id, cwd=cwd, env=env)
    assert ran.returncode == 0, ran.stderr
    assert "runbook step cache-flush succeeded" in ran.stdout
    assert written(flushed) == [["production", "v1", incident_id]]

    failed = run_cli("runbook", "run", "broken", "--incident", incident_id, cwd=cwd, env=env)
    assert_one_line_error(failed, "runbook step broken failed", "exited with code 5")
    assert "no cache" in failed.stdout  # the output, as the timeline keeps it
    assert_one_line_error(
        run_cli("runbook", "run", "flush", "--incident", incident_id, cwd=cwd, env=env),
        "no runbook step 'flush'",
    )
    assert_one_line_error(
        run_cli("runbook", "run", "cache-flush", "--incident", "QW-1-1", cwd=cwd, env=env),
        "no incident QW-1-1",
    )


def test_cli_reports_a_broken_runbook_table_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "querywatch.toml").write_text("[runbook.flush]\ncomand = 'x'\n")
    assert_one_line_error(
        run_cli("runbook", cwd=tmp_path), "querywatch.toml: [runbook.flush]", "unknown key"
    )


def test_the_responder_from_config_carries_the_runbook(tmp_path: Path, store: SqlStore) -> None:
    toml = tmp_path / "querywatch.toml"
    toml.write_text(
        'rollback_command = "./deploy.sh {previous_version}"\n'
        "[runbook.cache-flush]\ncommand = 'x'\nafter_rollback = true\n"
    )
    built = responder_from_config(load_config(config_file=toml), store)
    assert list(built.runbook) == ["cache-flush"] and built.runbook["cache-flush"].after_rollback
