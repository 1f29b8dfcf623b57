"""Deploy markers: the library rules and the `deploy start|finish` / `deploys` commands."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from querywatch.cli import Context
from querywatch.cli.deploys import deploy, deploys_cmd
from querywatch.deploys import InvalidDeploy, finish_deploy, start_deploy
from querywatch.errors import ConfigError, InvalidTransition, NotFound
from querywatch.store.sqlite import SqliteStore

T0 = 1_700_000_000.0


@pytest.fixture(autouse=True)
def deploy_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A clean environment in an empty directory."""
    for name in list(os.environ):
        if name.startswith("QUERYWATCH_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "deploys.sqlite3")
    yield s
    s.close()


# -- library --------------------------------------------------------------------------------------


def test_start_derives_the_id_and_the_previous_version_per_environment(store: SqliteStore) -> None:
    first = start_deploy(store, "v1", commit="ABC1234", author="ci", at=T0)
    assert first.id == f"production:v1:{int(T0)}"
    assert (first.commit, first.previous_version, first.finished_at) == ("abc1234", None, None)
    second = start_deploy(store, "v2", at=T0 + 100)
    assert second.previous_version == "v1" and second.environment == "production"
    elsewhere = start_deploy(store, "v9", environment="staging", at=T0 + 200)
    assert elsewhere.previous_version is None
    assert store.deploys(environment="production") == [first, second]


def test_a_backfilled_start_takes_the_deploy_before_it_as_previous(store: SqliteStore) -> None:
    start_deploy(store, "v1", at=T0)
    start_deploy(store, "v3", at=T0 + 300)
    assert start_deploy(store, "v2", at=T0 + 100).previous_version == "v1"


def test_finish_takes_the_latest_unfinished_deploy_of_the_version(store: SqliteStore) -> None:
    old = start_deploy(store, "v1", at=T0)
    finish_deploy(store, "v1", at=T0 + 10)
    again = start_deploy(store, "v1", at=T0 + 100)  # a redeploy of the same version
    done = finish_deploy(store, "v1", at=T0 + 160)
    assert done.id == again.id and done.finished_at == T0 + 160
    assert done.previous_version == "v1"
    assert [d.finished_at for d in store.deploys()] == [T0 + 10, T0 + 160]
    assert old.id != again.id


def test_finish_by_id_ignores_the_environment(store: SqliteStore) -> None:
    marker = start_deploy(store, "v1", environment="staging", at=T0, deploy_id="gha-4242")
    done = finish_deploy(store, deploy_id="gha-4242", at=T0 + 5)
    assert done.id == marker.id == "gha-4242" and done.finished_at == T0 + 5


def test_nothing_to_finish_is_one_clear_line(store: SqliteStore) -> None:
    with pytest.raises(NotFound, match="no deploy of version v7 in production to finish"):
        finish_deploy(store, "v7")
    with pytest.raises(NotFound, match="no deploy with id nope"):
        finish_deploy(store, deploy_id="nope")
    with pytest.raises(InvalidDeploy, match="give its version or its id"):
        finish_deploy(store)
    start_deploy(store, "v7", at=T0, deploy_id="d7")
    finish_deploy(store, "v7", at=T0 + 1)
    with pytest.raises(InvalidTransition, match=r"deploy d7 .* already finished at 2023-11-14 "):
        finish_deploy(store, "v7", at=T0 + 2)
    with pytest.raises(InvalidTransition, match="already finished"):
        finish_deploy(store, deploy_id="d7")


def test_a_deploy_cannot_finish_before_it_started(store: SqliteStore) -> None:
    start_deploy(store, "v1", at=T0)
    with pytest.raises(InvalidDeploy, match="before it started"):
        finish_deploy(store, "v1", at=T0 - 1)


def test_a_retried_start_returns_the_recorded_marker(store: SqliteStore) -> None:
    first = start_deploy(store, "v1", commit="abc1234", at=T0, deploy_id="run-1")
    assert start_deploy(store, "v1", at=T0 + 30, deploy_id="run-1") == first
    assert len(store.deploys()) == 1
    with pytest.raises(InvalidTransition, match="run-1 is already used by version v1"):
        start_deploy(store, "v2", at=T0 + 30, deploy_id="run-1")


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"version": ""}, "version must not be empty"),
        ({"version": "   "}, "version must not be empty"),
        ({"version": "v 1"}, "without spaces"),
        ({"version": "v1", "commit": "not-a-sha"}, "is not a hex commit id"),
        ({"version": "v1", "commit": "abc"}, "is not a hex commit id"),
        ({"version": "v1", "environment": "prod env"}, "environment 'prod env' must be"),
        ({"version": "v1", "environment": ""}, "environment '' must be"),
        ({"version": "v1", "author": "ann\nbob"}, "author must be one line"),
        ({"version": "v1", "deploy_id": "a b"}, "deploy id 'a b'"),
    ],
)
def test_bad_fields_are_rejected_in_one_line(
    store: SqliteStore, fields: dict[str, str], needle: str
) -> None:
    version = fields.pop("version")
    with pytest.raises(InvalidDeploy) as caught:
        start_deploy(store, version, **fields)  # type: ignore[arg-type]
    assert needle in str(caught.value) and "\n" not in str(caught.value)
    assert store.deploys() == []


# -- CLI ------------------------------------------------------------------------------------------


@click.group()
@click.pass_context
def root(ctx: click.Context) -> None:
    ctx.obj = Context(debug=False, config_file=None)


root.add_command(deploy)
root.add_command(deploys_cmd)


def run(*args: str) -> Result:
    return CliRunner().invoke(root, list(args))


def test_cli_start_finish_and_list_round_trip(tmp_path: Path) -> None:
    where = str(tmp_path / "ci" / "store.sqlite3")
    started = run(
        "deploy", "start", "--version", "2.4.0", "--commit", "9f1c2e7d00aa11bb22",
        "--env", "staging", "--author", "ci-bot", "--store", where,
    )  # fmt: skip
    assert started.exit_code == 0, started.output
    line = started.output.strip()
    assert line.startswith("deploy staging:2.4.0:") and line.endswith(
        "started: version 2.4.0 (9f1c2e7d00aa) in staging"
    )
    deploy_id = line.split()[1]

    listed = run("deploys", "--store", where)
    assert listed.exit_code == 0 and "unfinished" in listed.output and deploy_id in listed.output

    finished = run("deploy", "finish", "--version", "2.4.0", "--env", "staging", "--store", where)
    assert finished.exit_code == 0, finished.output
    assert finished.output.startswith(f"deploy {deploy_id} finished: version 2.4.0")

    as_json = run("deploys", "--env", "staging", "--since", "1h", "--json", "--store", where)
    assert as_json.exit_code == 0, as_json.output
    envelope = json.loads(as_json.output)
    assert envelope["ok"] is True and set(envelope) == {"ok", "data"}
    [marker] = envelope["data"]
    assert marker["id"] == deploy_id and marker["author"] == "ci-bot"
    assert marker["finished_at"] >= marker["started_at"] and marker["duration_s"] >= 0
    assert json.loads(run("deploys", "--env", "production", "--json", "--store", where).output) == {
        "ok": True,
        "data": [],
    }


def test_cli_json_start_and_finish_by_id(tmp_path: Path) -> None:
    where = str(tmp_path / "store.sqlite3")
    started = run(
        "deploy", "start", "--version", "v3", "--id", "run-77", "--json", "--store", where
    )
    assert json.loads(started.output)["data"]["id"] == "run-77"
    finished = run("deploy", "finish", "--id", "run-77", "--json", "--store", where)
    data = json.loads(finished.output)["data"]
    assert data["version"] == "v3" and data["finished_at"] is not None


def test_the_environment_setting_is_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUERYWATCH_ENVIRONMENT", "canary")
    monkeypatch.setenv("QUERYWATCH_STORE", str(tmp_path / "env.sqlite3"))
    assert run("deploy", "start", "--version", "v1").output.rstrip().endswith("in canary")
    assert "in canary" in run("deploy", "finish", "--version", "v1").output


@pytest.mark.parametrize(
    ("args", "error", "needle"),
    [
        (["deploy", "finish", "--version", "v9"], NotFound, "no deploy of version v9"),
        (["deploy", "finish"], InvalidDeploy, "pass --version or --id"),
        (["deploy", "start", "--version", ""], InvalidDeploy, "version must not be empty"),
        (["deploy", "start", "--version", "v1", "--commit", "xyz"], InvalidDeploy, "not a hex"),
        (["deploys", "--since", "last tuesday"], ConfigError, "cannot read 'last tuesday'"),
    ],
)
def test_cli_errors_are_one_line(
    tmp_path: Path, args: list[str], error: type[Exception], needle: str
) -> None:
    # `finish` and `deploys` need an existing store; `start` creates it.
    run("deploy", "start", "--version", "v0", "--store", str(tmp_path / "s.sqlite3"))
    result = run(*args, "--store", str(tmp_path / "s.sqlite3"))
    assert result.exit_code != 0
    assert isinstance(result.exception, error), result.exception
    assert needle in str(result.exception) and "\n" not in str(result.exception)


def test_finish_without_a_store_says_so(tmp_path: Path) -> None:
    result = run("deploy", "finish", "--version", "v1", "--store", str(tmp_path / "none.sqlite3"))
    assert isinstance(result.exception, ConfigError)
    assert "no store at" in str(result.exception)
    assert not (tmp_path / "none.sqlite3").exists()


def test_errors_reach_the_user_as_one_red_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the real entry point and its registered commands."""
    from querywatch import cli

    where = str(tmp_path / "s.sqlite3")
    cli.main(["deploy", "start", "--version", "v1", "--store", where])
    with pytest.raises(SystemExit) as exited:
        cli.main(["deploy", "finish", "--version", "v2", "--store", where])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith("querywatch: error: no deploy of version v2 in production")
