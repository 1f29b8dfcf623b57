"""Bad numbers on the command line, and outside text on the terminal, as a user meets them.

The CLI runs in a subprocess (its stdout a pipe), against real SQLite files.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import assert_one_line_error, run_cli

ESC = "\x1b"
# An OSC that retitles the window, then Rich markup that would turn into bold or italics.
TITLE_AND_MARKUP = f"{ESC}]0;pwn\x07[bold]x[i]"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "1e400", "-1", "0"])
def test_watch_duration_must_be_a_finite_positive_number(value: str) -> None:
    result = run_cli("watch", "--dsn", "postgresql://nowhere.invalid/x", "--duration", value)
    line = assert_one_line_error(result, "--duration")
    assert result.returncode == 2, line
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("option", ["--interval", "--duration"])
def test_watch_refuses_nan_before_touching_the_database(option: str) -> None:
    result = run_cli("watch", "--dsn", "postgresql://nowhere.invalid/x", option, "nan")
    assert_one_line_error(result, option, "not a finite number")


def test_demo_refuses_a_nan_rate() -> None:
    assert_one_line_error(run_cli("demo", "--rate", "nan"), "--rate", "not a finite number")


def shows_literally(output: str, text: str) -> None:
    """``text`` printed with its control characters escaped and its markup untouched."""
    assert ESC not in output and "\x07" not in output and "\x9b" not in output, repr(output)
    assert text.encode("unicode_escape").decode("ascii").replace("\\\\", "\\") in output, output


def test_explain_shows_names_from_the_database_literally(tmp_path: Path) -> None:
    db = tmp_path / "app.sqlite3"
    table = f"t{TITLE_AND_MARKUP}"
    with sqlite3.connect(db) as conn:
        conn.execute(f'CREATE TABLE "{table}" (id INTEGER, name TEXT)')
    result = run_cli("explain", f"SELECT id FROM \"{table}\" WHERE name = 'a'", "--dsn", str(db))
    assert result.returncode == 0, result.stderr
    shows_literally(result.stdout, table)


def test_lint_shows_sql_and_paths_literally(tmp_path: Path) -> None:
    column = f"a{TITLE_AND_MARKUP}"
    statement = f"SELECT * FROM t WHERE lower(\"{column}\") = 'x'"
    result = run_cli("lint", "--sql", statement)
    assert result.returncode == 0, result.stderr
    shows_literally(result.stdout, column)
    assert "fix: " in result.stdout and "    sql: " in result.stdout

    name = f"q{ESC}[2J[bold].sql"
    (tmp_path / name).write_text("SELECT * FROM t;\n")
    in_file = run_cli("lint", ".", cwd=tmp_path)
    assert in_file.returncode == 0, in_file.stderr
    shows_literally(in_file.stdout, name)


def test_deploys_listing_shows_versions_and_ids_literally(tmp_path: Path) -> None:
    """Versions and ids refuse C0 controls, but a C1 CSI (\\x9b) or a right-to-left override
    (U+202E) is printable text to Python: the listing must not let the terminal act on it."""
    store = str(tmp_path / "store.sqlite3")
    version, deploy_id = "v1\u202egnp", "ci-\x9b2J"
    started = run_cli("deploy", "start", "--version", version, "--id", deploy_id, "--store", store)
    assert started.returncode == 0, started.stderr
    assert "\\u202e" in started.stdout and "\u202e" not in started.stdout
    listed = run_cli("deploys", "--store", store)
    assert listed.returncode == 0, listed.stderr
    assert "v1\\u202egnp" in listed.stdout and "\u202e" not in listed.stdout
    shows_literally(listed.stdout, deploy_id)


WATCH_IMPORTS = """
import sys
from querywatch.cli import main
main(["watch", "--help"])
heavy = ("sqlglot", "http.server", "querywatch.gate.check", "querywatch.cli.lint", "querywatch.web")
print("loaded:", ",".join(m for m in heavy if m in sys.modules))
"""


def test_watch_loads_only_its_own_command() -> None:
    """Commands are imported when they run: the agent (`watch`) carries no sqlglot, no gate and
    no HTTP server (about 10 MiB of its memory, bench/RESULTS.md)."""
    result = subprocess.run(
        [sys.executable, "-c", WATCH_IMPORTS], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "Poll pg_stat_statements" in result.stdout
    assert result.stdout.splitlines()[-1] == "loaded: ", result.stdout
