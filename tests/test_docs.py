"""Docs that cannot drift: the reference pages are generated from the code and checked here."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_cli_and_settings_reference_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_readme_documents_every_setting_and_both_commands() -> None:
    from querywatch.config import SETTINGS

    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    for setting in SETTINGS:
        assert f"`{setting.name}`" in readme and setting.env in readme


def test_readme_settings_table_shows_the_code_defaults() -> None:
    """README repeats the defaults for the reader; they must be the settings table's."""
    from querywatch.config import SETTINGS

    rows = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].startswith("`") and cells[1].startswith("`QUERYWATCH_"):
            rows[cells[0].strip("`")] = cells[2].strip("`")
    assert set(rows) == {s.name for s in SETTINGS}
    for s in SETTINGS:
        shown = rows[s.name]
        if s.default is None:
            assert shown in ("–", "auto"), (s.name, shown)
        elif isinstance(s.default, bool):
            assert shown == str(s.default).lower(), (s.name, shown)
        elif isinstance(s.default, int | float):
            assert float(shown) == float(s.default), (s.name, shown)
        else:
            assert shown == str(s.default), (s.name, shown)


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
