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


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
