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
