import json
from pathlib import Path

import pytest

from cli_helpers import assert_one_line_error, run_cli
from querywatch.config import SETTINGS, load_config
from querywatch.errors import ConfigError


def test_defaults_when_nothing_is_set(tmp_path: Path) -> None:
    cfg = load_config(environ={}, cwd=tmp_path)
    assert cfg["interval"] == 10.0
    assert cfg["store"] == ".querywatch/store.sqlite3"
    assert all(origin == "default" for origin in cfg.origins.values())


def test_flags_beat_environment_beat_file(tmp_path: Path) -> None:
    (tmp_path / "querywatch.toml").write_text(
        'interval = 7\nstore = "from-file.sqlite3"\nstatement_timeout_ms = 900\n'
    )
    env = {"QUERYWATCH_INTERVAL": "3", "QUERYWATCH_STORE": "from-env.sqlite3"}
    cfg = load_config({"interval": 1.5}, environ=env, cwd=tmp_path)
    assert cfg["interval"] == 1.5 and cfg.origins["interval"] == "--interval"
    assert cfg["store"] == "from-env.sqlite3" and cfg.origins["store"] == "QUERYWATCH_STORE"
    assert cfg["statement_timeout_ms"] == 900
    assert cfg.origins["statement_timeout_ms"].endswith("querywatch.toml: statement_timeout_ms")


def test_pyproject_table_is_read(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.querywatch]\ninterval = 4\n'
    )
    assert load_config(environ={}, cwd=tmp_path)["interval"] == 4.0


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("interval = [", "invalid TOML"),
        ("intervall = 3", "unknown setting 'intervall'"),
        ("interval = -1", "must be greater than 0"),
        ('interval = "soon"', "must be a number"),
        ("statement_timeout_ms = 1.5", "must be a whole number"),
    ],
)
def test_broken_config_file_names_file_and_problem(
    tmp_path: Path, content: str, needle: str
) -> None:
    (tmp_path / "querywatch.toml").write_text(content + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(environ={}, cwd=tmp_path)
    assert needle in str(info.value)
    assert "querywatch.toml" in str(info.value)


def test_every_setting_has_an_environment_variable_and_help() -> None:
    for setting in SETTINGS:
        assert setting.env == "QUERYWATCH_" + setting.name.upper()
        assert setting.help.endswith(".")


def test_cli_reports_broken_config_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "querywatch.toml").write_text("interval = [\n")
    result = run_cli("settings", cwd=tmp_path)
    assert_one_line_error(result, "querywatch.toml", "invalid TOML")


def test_cli_reports_missing_and_unreadable_config_file(tmp_path: Path) -> None:
    assert_one_line_error(
        run_cli("--config", str(tmp_path / "nope.toml"), "settings"), "nope.toml", "not found"
    )
    (tmp_path / "dir.toml").mkdir()
    assert_one_line_error(
        run_cli("--config", str(tmp_path / "dir.toml"), "settings"),
        "dir.toml",
        "cannot read config file",
    )


def test_settings_never_print_a_password(tmp_path: Path) -> None:
    result = run_cli(
        "settings",
        cwd=tmp_path,
        env={"QUERYWATCH_DSN": "postgresql://app:hunter2@db.internal/shop"},
    )
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout
    assert "postgresql://app:***@db.internal/shop" in result.stdout


@pytest.mark.parametrize(
    "content",
    [
        "rollback_timeout_s = nan",  # NaN compares false: it meant "no timeout"
        "rollback_cooldown_s = inf",
        "rollback_window_s = -nan",
        "interval = +inf",
        "statement_timeout_ms = inf",  # was an OverflowError traceback
        "recovery_check_s = 1" + "0" * 400,  # an integer too large for a float
        '[runbook.flush]\ncommand = "true"\ntimeout_s = nan',
        "[environments.production]\nrollback_timeout_s = nan",
    ],
)
def test_file_refuses_nan_and_infinity(tmp_path: Path, content: str) -> None:
    (tmp_path / "querywatch.toml").write_text(content + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(environ={}, cwd=tmp_path)
    message = str(info.value)
    assert "must be a finite number" in message and "querywatch.toml" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("QUERYWATCH_ROLLBACK_TIMEOUT_S", "nan"),
        ("QUERYWATCH_ROLLBACK_COOLDOWN_S", "infinity"),
        ("QUERYWATCH_ROLLBACK_WINDOW_S", "1e400"),  # reads as infinity
        ("QUERYWATCH_ALERT_RENOTIFY_S", "-inf"),
        ("QUERYWATCH_STATEMENT_TIMEOUT_MS", "NaN"),
        ("QUERYWATCH_RETENTION_RAW_HOURS", "inf"),
    ],
)
def test_environment_refuses_nan_and_infinity(tmp_path: Path, name: str, raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(environ={name: raw}, cwd=tmp_path)
    assert "must be a finite number" in str(info.value)
    assert str(info.value).startswith(name + ": ")


def test_flags_refuse_nan_and_infinity(tmp_path: Path) -> None:
    for value in (float("nan"), float("inf")):
        with pytest.raises(ConfigError, match=r"--interval: .*must be a finite number"):
            load_config({"interval": value}, environ={}, cwd=tmp_path)
    # and through the real command line, as one line with a non-zero exit
    assert_one_line_error(
        run_cli("watch", "--interval", "nan", cwd=tmp_path), "--interval", "finite number"
    )
    assert_one_line_error(
        run_cli("settings", cwd=tmp_path, env={"QUERYWATCH_ROLLBACK_TIMEOUT_S": "nan"}),
        "QUERYWATCH_ROLLBACK_TIMEOUT_S",
        "finite number",
    )


def test_finite_numbers_still_pass(tmp_path: Path) -> None:
    (tmp_path / "querywatch.toml").write_text(
        "rollback_cooldown_s = 0\nrollback_timeout_s = 2.5\n"
        '[runbook.flush]\ncommand = "true"\ntimeout_s = 30.0\n'
    )
    cfg = load_config(environ={"QUERYWATCH_INTERVAL": "1e3"}, cwd=tmp_path)
    assert (cfg["rollback_cooldown_s"], cfg["rollback_timeout_s"], cfg["interval"]) == (
        0.0,
        2.5,
        1000.0,
    )
    assert cfg.runbook["flush"]["timeout_s"] == 30.0


@pytest.mark.parametrize("name", ["querywatch.toml", "pyproject.toml"])
def test_non_utf8_config_file_is_one_line(tmp_path: Path, name: str) -> None:
    header = b"[tool.querywatch]\n" if name == "pyproject.toml" else b""
    # Latin-1 "é" in a comment: a file saved by an editor in the wrong encoding.
    (tmp_path / name).write_bytes(header + b"# caf\xe9\ninterval = 4\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(environ={}, cwd=tmp_path)
    line = assert_one_line_error(run_cli("settings", cwd=tmp_path), name, "not UTF-8")
    assert "0xe9" in line
    assert_one_line_error(
        run_cli("--config", str(tmp_path / name), "top", cwd=tmp_path), name, "not UTF-8"
    )


def test_settings_never_print_tokens_or_webhook_urls(tmp_path: Path) -> None:
    # Webhook URLs carry their secret in the path (Slack) or in userinfo (Alertmanager).
    secrets = {
        "api_token": "tok-7f3a9c1e5b2d4f60",
        "alert_webhook_url": "https://hooks.example.com/in/whsec-4b1d9e",
        "alert_slack_url": "https://hooks.slack.com/services/T000/B000/xoxsecret91",
        "alert_alertmanager_url": "https://admin:amsecret77@am.internal:9093",
        "rollback_webhook_url": "https://deploy.internal/hook?token=rbsecret55",
    }
    file_secret = "https://hooks.example.com/file/filesecret13"
    (tmp_path / "querywatch.toml").write_text(f'alert_webhook_url = "{file_secret}"\n')
    env = {f"QUERYWATCH_{name.upper()}": value for name, value in secrets.items()}
    env.pop("QUERYWATCH_ALERT_WEBHOOK_URL")  # this one comes from the file
    env["QUERYWATCH_STORE"] = "postgresql://qw:storepw42@store.internal/qw"
    for args in (("settings",), ("settings", "--json")):
        result = run_cli(*args, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        shown = result.stdout + result.stderr
        for needle in ("7f3a9c1e", "whsec-4b1d9e", "xoxsecret91", "amsecret77", "rbsecret55"):
            assert needle not in shown, needle
        assert "filesecret13" not in shown and "storepw42" not in shown
    data = json.loads(result.stdout)["data"]
    rows = {row["name"]: row for row in data}
    for name in secrets:
        assert rows[name]["value"] == "***", name
    assert rows["alert_webhook_url"]["from"].endswith("querywatch.toml: alert_webhook_url")
    assert rows["store"]["value"] == "postgresql://qw:***@store.internal/qw"
