"""The incident commands as a user runs them: a real SQLite store, the CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli_helpers import assert_one_line_error
from querywatch.cli import cli
from querywatch.incidents import service
from querywatch.incidents.model import Impact
from querywatch.store import open_store
from test_incidents import T0, culprit, detection, triage


def run(
    *args: str, store: Path | None = None, columns: int | None = 200
) -> subprocess.CompletedProcess[str]:
    """The CLI with its output captured (a pipe); ``columns=None``: Rich's default width."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUERYWATCH_")}
    if store is not None:
        env["QUERYWATCH_STORE"] = str(store)
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run(
        [sys.executable, "-m", "querywatch", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store.sqlite3"


@pytest.fixture
def incident_id(store_path: Path) -> str:
    with open_store(store_path) as store:
        incident = service.open_incident(
            store,
            [detection()],
            [culprit()],
            triage(),
            Impact(3000, 2610, 300, 261, 1000.0, since=T0, until=T0 + 9000),
            "d2",
            T0 + 31,
        )
        service.record_alert(store, incident.id, "paged #oncall", at=T0 + 32)
    return incident.id


def test_the_lifecycle_through_the_cli_shows_in_json(store_path: Path, incident_id: str) -> None:
    ack = run("incident", "ack", incident_id, "--by", "alice", store=store_path)
    assert ack.returncode == 0, ack.stderr
    assert ack.stdout.strip() == f"{incident_id} acknowledged by alice"
    note = run(
        "incident", "note", incident_id, "the network?", "--by", "bob", "--misleading",
        store=store_path,
    )  # fmt: skip
    assert note.returncode == 0, note.stderr
    resolved = run(
        "incident", "resolve", incident_id, "--by", "alice", "--note", "rolled back to v1",
        store=store_path,
    )  # fmt: skip
    assert resolved.returncode == 0, resolved.stderr
    assert resolved.stdout.startswith(f"{incident_id} resolved by alice, ")

    shown = run("incident", "show", incident_id, "--json", store=store_path)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)["data"]
    assert data["id"] == incident_id and data["status"] == "resolved"
    assert data["deploy_id"] == "d2" and data["detected_at"] == T0 + 30
    assert data["resolved_at"] >= data["opened_at"]
    assert data["culprits"][0]["call_sites"][0] == {
        "path": "shop/orders.py",
        "line": 88,
        "function": "order_history",
    }
    assert data["triage"]["verdict"].startswith("The database is the bottleneck")
    assert data["impact"]["users_pct"] == 87.0
    timeline = data["timeline"]
    assert [(e["kind"], e["author"]) for e in timeline] == [
        ("detected", None),
        ("alerted", None),
        ("acknowledged", "alice"),
        ("note", "bob"),
        ("resolved", "alice"),
    ]
    assert timeline[3]["message"] == "the network?" and timeline[3]["tags"] == ["misleading"]
    assert timeline[4]["message"] == "rolled back to v1"
    assert [e["at"] for e in timeline] == sorted(e["at"] for e in timeline)

    text = run("incident", "show", incident_id, store=store_path)
    assert text.returncode == 0, text.stderr
    for needle in (
        f"{incident_id}  RESOLVED",
        "deploy     d2",
        "87.0% of users affected (261 of 300)",
        "at shop/orders.py:88 in order_history  (commit deadbeef)",
        "The database is the bottleneck",
        "bob: the network?  [misleading]",
        "rolled back to v1 (by alice)",
    ):
        assert needle in text.stdout, text.stdout


def test_the_list_as_a_table_and_as_json(store_path: Path, incident_id: str) -> None:
    table = run("incidents", store=store_path)
    assert table.returncode == 0, table.stderr
    assert incident_id in table.stdout and "open" in table.stdout
    assert "shop/orders.py:88" in table.stdout and "d2" in table.stdout
    listed = json.loads(run("incidents", "--json", store=store_path).stdout)["data"]
    assert [i["id"] for i in listed] == [incident_id]
    assert json.loads(
        run("incidents", "--status", "resolved", "--json", store=store_path).stdout
    ) == {"ok": True, "data": []}
    none = run("incidents", "--status", "resolved", store=store_path)
    assert none.stdout.strip() == "no incidents resolved recorded"
    unresolved = run("incidents", "--status", "unresolved", "--json", store=store_path)
    assert len(json.loads(unresolved.stdout)["data"]) == 1


@pytest.mark.parametrize("columns", [80, None, 120])
def test_the_list_stays_readable_at_80_columns_and_on_a_pipe(
    store_path: Path, incident_id: str, columns: int | None
) -> None:
    """The title column wrapped at 7 characters on an 80-column terminal: "Slower", "query:"…"""
    result = run("incidents", store=store_path, columns=columns)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= (columns or 80), result.stdout
    row = next(i for i, line in enumerate(lines) if incident_id in line)
    assert lines[row].split()[:3] == [incident_id, "open", lines[row].split()[2]]
    # The title reads in lines of a readable width, and all of it is there.
    assert "Slower query: SELECT * FROM" in lines[row], result.stdout
    text = " ".join(result.stdout.split())
    for needle in ("fp-orders WHERE user_id = $1", "since deploy d2", "shop/orders.py:88"):
        assert needle in text, result.stdout


def test_an_unknown_id_is_one_line_and_exit_1(store_path: Path, incident_id: str) -> None:
    for args in (
        ("incident", "show", "QW-404"),
        ("incident", "ack", "QW-404"),
        ("incident", "note", "QW-404", "text"),
        ("incident", "resolve", "QW-404"),
    ):
        result = run(*args, store=store_path)
        assert result.returncode == 1
        assert_one_line_error(result, "no incident QW-404 (querywatch incidents lists them)")


def test_invalid_transitions_are_one_line_errors(store_path: Path, incident_id: str) -> None:
    assert run("incident", "resolve", incident_id, "--by", "a", store=store_path).returncode == 0
    twice = run("incident", "resolve", incident_id, store=store_path)
    assert_one_line_error(twice, f"incident {incident_id} is already resolved by a at ")
    ack = run("incident", "ack", incident_id, store=store_path)
    assert_one_line_error(ack, f"cannot acknowledge incident {incident_id}: it is resolved")
    # A note after resolution is fine (the postmortem adds them).
    assert run("incident", "note", incident_id, "root cause: N+1", store=store_path).returncode == 0


def test_a_missing_store_is_one_line_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "none.sqlite3"
    result = run("incidents", store=missing)
    assert_one_line_error(result, f"no store at {missing}")
    assert not missing.exists()


def test_the_store_flag_wins_over_the_environment(
    store_path: Path, incident_id: str, tmp_path: Path
) -> None:
    result = run("incidents", "--json", "--store", str(store_path), store=tmp_path / "other")
    assert [i["id"] for i in json.loads(result.stdout)["data"]] == [incident_id]


def test_commands_run_in_process_on_the_main_group(
    store_path: Path, incident_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commands as the main group registers them, with its own settings context."""
    for name in [n for n in os.environ if n.startswith("QUERYWATCH_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(store_path.parent)
    runner = CliRunner()
    ack = runner.invoke(cli, ["incident", "ack", incident_id, "--store", str(store_path)])
    assert ack.exit_code == 0, ack.output
    mitigated = runner.invoke(
        cli, ["incident", "mitigate", incident_id, "--note", "flushed", "--store", str(store_path)]
    )
    assert mitigated.exit_code == 0, mitigated.output
    shown = runner.invoke(
        cli, ["incident", "show", incident_id, "--json", "--store", str(store_path)]
    )
    data = json.loads(shown.output)["data"]
    assert data["status"] == "mitigated"
    assert [e["kind"] for e in data["timeline"]][-2:] == ["acknowledged", "mitigated"]
    with cli.make_context("querywatch", [], resilient_parsing=True) as ctx:
        assert {"incidents", "incident", "postmortem"} <= set(cli.list_commands(ctx))
