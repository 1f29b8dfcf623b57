"""The pre-commit hook (.pre-commit-hooks.yaml) run the way pre-commit runs it: its `entry`, then
its `args`, then the staged files it selected, from the repository's root. A bad .sql or .py
file fails with one line naming the file, line, rule and message; clean files pass; a
`querywatch: ignore[rule]` comment and the user's own `args` are honoured."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent

BAD_SQL = "SELECT id FROM orders WHERE CAST(customer_id AS TEXT) = '42';\n"
CLEAN_SQL = "SELECT id, total_cents FROM orders WHERE customer_id = 42;\n"
BAD_PY = '''
def search(cur, term):
    """Products whose name contains term: a leading wildcard, no index can serve it."""
    return cur.execute("SELECT id FROM products WHERE name LIKE '%' || %s", (term,)).fetchall()
'''


def hook() -> dict[str, Any]:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    [found] = [h for h in hooks if h["id"] == "querywatch-lint"]
    assert isinstance(found, dict)
    return found


def run_hook(repo: Path, *files: str, args: list[str] | None = None) -> tuple[int, list[str]]:
    """``entry`` + ``args`` (the hook's, or the user's override) + file names, in ``repo``."""
    spec = hook()
    argv = [*shlex.split(spec["entry"]), *(spec.get("args", []) if args is None else args)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUERYWATCH_")}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["COLUMNS"] = "200"
    done = subprocess.run(
        [*argv, *files], cwd=repo, env=env, capture_output=True, text=True, timeout=60
    )
    return done.returncode, (done.stdout + done.stderr).splitlines()


def make_repo(root: Path) -> Path:
    (root / "db").mkdir(parents=True)
    (root / "db" / "bad.sql").write_text(BAD_SQL)
    (root / "db" / "clean.sql").write_text(CLEAN_SQL)
    (root / "shop").mkdir()
    (root / "shop" / "search.py").write_text(textwrap.dedent(BAD_PY).lstrip())
    return root


def test_the_hook_is_a_python_hook_of_the_querywatch_command_for_sql_and_python() -> None:
    spec = hook()
    assert spec["language"] == "python"  # pre-commit pip-installs this repository
    command = shlex.split(spec["entry"])
    assert command[:2] == ["querywatch", "lint"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert command[0] in scripts  # the console script the install provides
    assert set(spec["types_or"]) == {"python", "sql"}
    assert spec.get("pass_filenames", True) is True


def test_a_bad_sql_file_fails_with_one_line_naming_it(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    code, lines = run_hook(repo, "db/bad.sql")
    assert code == 1
    assert lines[0].startswith(
        "db/bad.sql:1:34: warning cast-on-column-in-where cast(customer_id as text) in WHERE"
    )
    assert "Traceback" not in "\n".join(lines)


def test_clean_files_pass(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    code, lines = run_hook(repo, "db/clean.sql")
    assert code == 0, lines
    assert lines == ["no findings in 1 statement from 1 file"]


def test_in_a_batch_only_the_bad_files_are_named(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    code, lines = run_hook(repo, "db/clean.sql", "shop/search.py", "db/bad.sql")
    assert code == 1
    named = sorted(line.split(":", 1)[0] for line in lines if ": warning " in line)
    assert named == ["db/bad.sql", "shop/search.py"]
    assert any(line.startswith("shop/search.py:3:") and "leading-wildcard-like" in line
               for line in lines)  # fmt: skip
    assert "3 statements from 3 files" in lines[-1]


def test_an_ignore_comment_and_the_users_args_are_honoured(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    ignored = repo / "db" / "ignored.sql"
    ignored.write_text(BAD_SQL.replace(";", "; -- querywatch: ignore[cast-on-column-in-where]"))
    code, lines = run_hook(repo, "db/ignored.sql")
    assert code == 0, lines
    code, lines = run_hook(repo, "db/bad.sql", args=[])  # `args: []`: notes, never failing
    assert code == 0, lines
    assert lines[0].startswith("db/bad.sql:1:34: info cast-on-column-in-where")
