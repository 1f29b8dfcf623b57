"""Every `--json` output is the one envelope of docs/json.md, success and error alike.

Each command that has ``--json`` runs as a user runs it (a subprocess, a real SQLite store, a real
SQLite database for ``explain``) once where it succeeds and once where it fails. A command that
gains ``--json`` and is not listed here fails :func:`test_every_json_command_is_covered`, so a new
bare-JSON output cannot slip in unnoticed.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from cli_helpers import run_cli
from querywatch import deploys
from querywatch.cli import cli
from querywatch.cli.options import json_option
from querywatch.store import open_store
from respond_helpers import ORDERS_SQL, open_incident, write_traffic


@dataclass(frozen=True)
class World:
    cwd: Path
    env: dict[str, str]
    incident_id: str
    app_db: Path


@pytest.fixture
def world(tmp_path: Path) -> World:
    """A store with traffic, two deploys and an incident blaming the second; a rollback command
    (run only as a dry run here); a runbook step; a SQLite application database."""
    store_path = tmp_path / "store.sqlite3"
    now = time.time()
    with open_store(store_path) as store:
        write_traffic(store, now - 600, now - 300)
        deploys.start_deploy(store, "v1", at=now - 7200, deploy_id="d1")
        deploys.finish_deploy(store, deploy_id="d1", at=now - 7190)
        deploys.start_deploy(store, "v2", at=now - 300, deploy_id="d2")
        deploys.finish_deploy(store, deploy_id="d2", at=now - 290)
        incident_id = open_incident(store, at=now - 200).id
    (tmp_path / "querywatch.toml").write_text(
        'rollback_command = "true {previous_version}"\n[runbook.cache-flush]\ncommand = "true"\n'
    )
    app_db = tmp_path / "app.sqlite3"
    with sqlite3.connect(app_db) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER)")
    return World(tmp_path, {"QUERYWATCH_STORE": str(store_path)}, incident_id, app_db)


def run(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=world.cwd, env=world.env)


def envelope_of(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    """stdout is exactly one envelope, of exactly the documented shape."""
    data = json.loads(result.stdout)  # one JSON document: anything else around it fails here
    assert isinstance(data, dict), result.stdout
    if data.get("ok") is True:
        assert set(data) == {"ok", "data"}, data
    else:
        assert data.get("ok") is False and set(data) == {"ok", "error"}, data
        error = data["error"]
        assert isinstance(error, dict) and set(error) == {"code", "message"}, data
        assert error["message"] and "\n" not in str(error["message"]), data
    return data


# command -> (a run that succeeds, the type of its data)
SUCCEEDS: dict[str, tuple[tuple[str, ...], type]] = {
    "top": (("top",), list),
    "fingerprint": (("fingerprint", ORDERS_SQL), dict),
    "settings": (("settings",), list),
    "lint": (("lint", "--sql", "SELECT id FROM orders WHERE id = 1"), dict),
    "explain": (("explain", "SELECT id FROM orders WHERE customer_id = 7", "--dsn", "{db}"), dict),
    "incidents": (("incidents",), list),
    "incident show": (("incident", "show", "{incident}"), dict),
    "deploy start": (("deploy", "start", "--version", "v3", "--id", "d3"), dict),
    "deploy finish": (("deploy", "finish", "--id", "d3"), dict),
    "deploys": (("deploys",), list),
    "rollback": (("rollback", "{incident}", "--dry-run"), dict),
    "runbook": (("runbook",), list),
    "canary start": (("canary", "start", "--release", "v3", "--stable", "v2"), dict),
    "canary status": (("canary", "status"), dict),
    "canary step": (("canary", "step"), dict),
    "canary watch": (("canary", "watch"), dict),
    "canary promote": (("canary", "promote"), dict),
    "canary abort": (("canary", "abort"), dict),
    "digest": (("digest", "{pglog}"), dict),
}

# command -> (a run that fails, its error code, its exit code)
FAILS: dict[str, tuple[tuple[str, ...], str, int]] = {
    "top": (("top", "--since", "nan"), "config_error", 1),
    "fingerprint": (("fingerprint", "SELECT 1", "--dialect", "oracle"), "usage_error", 2),
    "settings": (("settings", "--no-such-option"), "usage_error", 2),
    "lint": (("lint", "--sql", "SELEC id FROM orders"), "could_not_check", 2),
    "explain": (("explain", "SELECT 1", "--dsn", "{missing}"), "could_not_check", 2),
    "incidents": (("incidents", "--store", "{missing}"), "config_error", 1),
    "incident show": (("incident", "show", "QW-19700101-9"), "not_found", 1),
    "deploy start": (("deploy", "start", "--version=-x"), "invalid_deploy", 1),
    "deploy finish": (("deploy", "finish", "--version", "v404"), "not_found", 1),
    "deploys": (("deploys", "--until", "soon"), "config_error", 1),
    "rollback": (("rollback", "QW-19700101-9", "--dry-run"), "not_found", 1),
    "runbook": (("--config", "{broken_runbook}", "runbook"), "config_error", 1),
    "canary start": (("canary", "start", "--release=-x", "--stable", "v2"), "config_error", 1),
    "canary status": (("canary", "status", "--store", "{missing}"), "config_error", 1),
    "canary step": (("canary", "step"), "not_found", 1),
    "canary watch": (("canary", "watch"), "not_found", 1),
    "canary promote": (("canary", "promote"), "not_found", 1),
    "canary abort": (("canary", "abort"), "not_found", 1),
    "digest": (("digest", "{missing}"), "source_error", 1),
}


def json_commands() -> dict[str, click.Command]:
    """Every command of the real CLI with a ``--json`` flag, by its full name."""
    found: dict[str, click.Command] = {}

    def walk(command: click.Command, name: str, ctx: click.Context) -> None:
        if any(
            isinstance(p, click.Option) and "--json" in p.opts and p.is_flag for p in command.params
        ):
            found[name] = command
        if isinstance(command, click.Group):
            for sub_name in command.list_commands(ctx):
                sub = command.get_command(ctx, sub_name)
                assert sub is not None, sub_name
                walk(sub, f"{name} {sub_name}".strip(), ctx)

    with cli.make_context("querywatch", [], resilient_parsing=True) as ctx:
        walk(cli, "", ctx)
    return found


def fill(args: tuple[str, ...], world: World) -> list[str]:
    values = {"{db}": str(world.app_db), "{incident}": world.incident_id}
    values["{missing}"] = str(world.cwd / "missing" / "nothing.sqlite3")
    broken = world.cwd / "broken-runbook.toml"
    broken.write_text("[runbook.flush]\ntimeout_s = 1\n")  # no command
    values["{broken_runbook}"] = str(broken)
    pglog = world.cwd / "postgresql.log"
    pglog.write_text(
        "2026-12-05 10:00:00.000 UTC [42] LOG:  duration: 1.500 ms  statement: SELECT 1\n"
    )
    values["{pglog}"] = str(pglog)
    return [values.get(a, a) for a in args]


def test_every_json_command_is_covered() -> None:
    assert sorted(json_commands()) == sorted(SUCCEEDS) == sorted(FAILS)


def test_every_json_flag_is_the_shared_option() -> None:
    """The shared option marks the run as JSON, so errors come out as an envelope too."""
    shared = json_option("x")(lambda: None).__click_params__[0]  # type: ignore[attr-defined]
    for name, command in json_commands().items():
        [flag] = [p for p in command.params if "--json" in p.opts]
        assert flag.callback is shared.callback and flag.is_eager, name


@pytest.mark.parametrize("name", sorted(SUCCEEDS))
def test_success_is_one_envelope(world: World, name: str) -> None:
    args, kind = SUCCEEDS[name]
    if name == "deploy finish":
        assert run(world, "deploy", "start", "--version", "v3", "--id", "d3").returncode == 0
    if name in ("canary step", "canary watch", "canary promote", "canary abort"):
        assert run(world, "canary", "start", "--release", "v3", "--stable", "v2").returncode == 0
    if name == "canary watch":  # an ended rollout is reported at once: promoted, exit 0
        assert run(world, "canary", "promote").returncode == 0
    result = run(world, *fill(args, world), "--json")
    assert result.returncode == 0, result.stderr
    data = envelope_of(result)
    assert data["ok"] is True and isinstance(data["data"], kind), data
    if kind is list and name not in ("runbook",):
        assert data["data"], f"{name}: the world should give it something to list"


@pytest.mark.parametrize("name", sorted(FAILS))
def test_an_error_is_one_envelope_with_the_same_exit_code(world: World, name: str) -> None:
    args, code, exit_code = FAILS[name]
    argv = fill(args, world)
    with_json = run(world, *argv, "--json")
    envelope = envelope_of(with_json)
    assert envelope["ok"] is False, envelope
    assert envelope["error"]["code"] == code, envelope  # type: ignore[index]
    assert with_json.returncode == exit_code, with_json.stderr
    # The person reading stderr gets the same one line as without --json.
    without = run(world, *argv)
    assert without.returncode == exit_code and without.stdout == ""
    assert with_json.stderr == without.stderr
    assert "Traceback" not in with_json.stderr and len(with_json.stderr.splitlines()) == 1


def test_a_failed_rollback_is_one_error_envelope(world: World) -> None:
    """The rollback ran and failed: ok false (not a success envelope and then an error)."""
    (world.cwd / "querywatch.toml").write_text('rollback_command = "false {previous_version}"\n')
    result = run(world, "rollback", world.incident_id, "--json")
    envelope = envelope_of(result)
    assert envelope["ok"] is False and result.returncode == 1, result.stdout
    assert envelope["error"]["code"] == "action_failed", envelope  # type: ignore[index]
    assert "rollback failed" in envelope["error"]["message"]  # type: ignore[index]


def test_lint_findings_are_ok_with_exit_code_1(world: World) -> None:
    """Checked and found problems is not an error: the findings, in ``data``, and exit 1."""
    result = run(world, "lint", "--sql", "DELETE FROM orders", "--assume-large", "--json")
    envelope = envelope_of(result)
    assert envelope["ok"] is True and result.returncode == 1
    assert envelope["data"]["counts"]["error"] == 1  # type: ignore[index]
