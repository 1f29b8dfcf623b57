"""The GitHub Action (action.yml) run as GitHub runs it: each step's `run:` line under bash with
the step's `env:` filled from the inputs and the variables a runner sets (GITHUB_STEP_SUMMARY,
GITHUB_OUTPUT, GITHUB_WORKSPACE, RUNNER_TEMP, GITHUB_SHA…), on a small project in a temp dir
whose test runs an N+1 against the test PostgreSQL. The job fails on the new finding with the
report in the summary, the counts in the outputs and valid SARIF at the repository-relative
call site; it passes once the baseline accepts it."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml

import gate_helpers

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "github_action.py"
SCHEMAS = Path(__file__).parent / "fixtures" / "schemas"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
SHA = "3f2c9a1e5b7d4c6f8a0b1c2d3e4f5a6b7c8d9e0f"

APP = '''
def titles(conn, ids):
    """One query per book: N+1."""
    out = []
    for i in ids:
        out.append(conn.execute("SELECT title FROM books WHERE id = %s", (i,)).fetchone()[0])
    return out
'''

TESTS = """
import os

import psycopg
import pytest

import app


@pytest.fixture
def conn():
    with psycopg.connect(os.environ["QW_TEST_PG"], autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS books (id int PRIMARY KEY, title text NOT NULL)")
        conn.execute("TRUNCATE books")
        conn.execute("INSERT INTO books SELECT g, 'book ' || g FROM generate_series(1, 20) g")
        yield conn


def test_titles(conn):
    assert app.titles(conn, range(1, 13))[0] == "book 1"
"""


def action() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "action.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("github_action", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["github_action"] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class StepRun:
    returncode: int
    log: str
    summary: str
    outputs: dict[str, str]


def read_outputs(path: Path) -> dict[str, str]:
    """$GITHUB_OUTPUT as the runner reads it: `name=value` or `name<<DELIMITER` … `DELIMITER`."""
    lines = path.read_text().splitlines()
    out: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, i + 1)
            out[name] = "\n".join(lines[i + 1 : end])
            i = end + 1
        else:
            name, value = line.split("=", 1)
            out[name] = value
            i += 1
    return out


class Runner:
    """One job's runner: a workspace, RUNNER_TEMP, and fresh summary/output files per step."""

    def __init__(self, tmp: Path, extra_env: dict[str, str] | None = None) -> None:
        self.workspace = tmp / "work" / "shop"
        self.workspace.mkdir(parents=True)
        self.temp = tmp / "runner-temp"
        self.temp.mkdir()
        self.files = tmp / "runner-files"
        self.files.mkdir()
        self.extra_env = extra_env or {}
        self.steps = 0

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("QUERYWATCH_", "PYTEST_", "GITHUB_", "RUNNER_")) and k != "COLUMNS"
        }
        venv_bin = str(Path(sys.executable).parent)  # `python` and `pytest` of this venv
        env.update(
            {
                "PATH": venv_bin + os.pathsep + env.get("PATH", ""),
                "COLUMNS": "160",
                "CI": "true",
                "GITHUB_ACTIONS": "true",
                "GITHUB_WORKSPACE": str(self.workspace),
                "GITHUB_ACTION_PATH": str(ROOT),
                "GITHUB_SHA": SHA,
                "GITHUB_REF": "refs/pull/7/merge",
                "GITHUB_BASE_REF": "main",
                "GITHUB_HEAD_REF": "faster-titles",
                "GITHUB_EVENT_NAME": "pull_request",
                "GITHUB_REPOSITORY": "acme/shop",
                "RUNNER_OS": "Linux",
                "RUNNER_TEMP": str(self.temp),
                "PYTEST_ADDOPTS": "-p no:cacheprovider",  # the user's own: kept by the action
            }
        )
        env.update(self.extra_env)
        return env

    def run(self, step_id: str, **given: str) -> StepRun:
        """Run the action's step ``step_id`` with ``given`` inputs (by their action.yml names)."""
        spec = action()
        declared = spec["inputs"]
        assert set(given) <= set(declared), set(given) - set(declared)
        inputs = {name: str(d.get("default", "")) for name, d in declared.items()} | given
        [step] = [s for s in spec["runs"]["steps"] if s.get("id", s.get("name")) == step_id]
        self.steps += 1
        summary = self.files / f"step_summary_{self.steps}"
        output = self.files / f"output_{self.steps}"
        summary.touch()
        output.touch()
        env = self.env() | {"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(output)}
        for name, value in step.get("env", {}).items():
            env[name] = fill(str(value), inputs)
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=self.workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        return StepRun(
            done.returncode, done.stdout + done.stderr, summary.read_text(), read_outputs(output)
        )


def fill(value: str, inputs: dict[str, str]) -> str:
    """``${{ inputs.x }}`` as the runner evaluates it; any other expression fails the test."""

    def one(match: re.Match[str]) -> str:
        expression = match.group(1)
        assert expression.startswith("inputs."), expression
        return inputs[expression.removeprefix("inputs.")]

    return EXPRESSION.sub(one, value)


def sarif_validator() -> Any:
    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def write_project(root: Path, app: str = APP, tests: str = TESTS) -> None:
    gate_helpers.write_project(root, app, tests)


# -- the steps on a real project ------------------------------------------------------------------


@pytest.mark.postgres
def test_a_new_n_plus_one_fails_the_job_then_the_baseline_accepts_it(
    pg_dsn: str, tmp_path: Path
) -> None:
    runner = Runner(tmp_path, {"QW_TEST_PG": pg_dsn})
    service = runner.workspace / "services" / "api"
    write_project(service)

    installed = runner.run("Install querywatch", version="installed")
    assert installed.returncode == 0, installed.log
    assert "querywatch, version" in installed.log

    failed = runner.run("gate", **{"working-directory": "services/api"})
    assert failed.returncode == 1, failed.log
    log = failed.log
    assert "$ pytest --querywatch" in log and "1 passed" in log  # the tests pass, the gate fails
    assert "n-plus-one (warning) at app.py:5 in titles" in log  # pytest's own report, once
    assert log.count("querywatch check failed") == 1
    assert "::error file=services/api/app.py,line=5,title=querywatch n-plus-one (new)::" in log

    summary = failed.summary
    assert summary.startswith("## ❌ querywatch check failed: 1 new finding")
    assert "| new | `select title from books where id = ?` | `app.py:5 in titles` |" in summary
    assert "**n-plus-one**: test_app.py::test_titles runs this statement 12 times" in summary
    assert "WHERE id = ANY(%s)" in summary  # the fix, in PostgreSQL's words
    assert f"commit `{SHA[:12]}` into `main`" in summary

    out = failed.outputs
    assert set(out) == set(action()["outputs"])
    counts = ("exit-code", "findings", "new", "regressions", "unchecked", "below", "accepted")
    assert [out[name] for name in counts] == ["1", "1", "1", "0", "0", "0", "0"]
    assert out["run-file"] == str(service / ".querywatch" / "gate-run.json")
    assert out["baseline"] == str(service / "querywatch.baseline.json")
    assert Path(out["markdown"]).read_text() in summary
    assert Path(out["markdown"]).parent.parent == runner.temp
    assert Path(out["junit"]).read_text().startswith("<?xml")

    sarif = json.loads(Path(out["sarif"]).read_text())
    sarif_validator().validate(sarif)
    [run] = sarif["runs"]
    [result] = run["results"]
    assert (result["ruleId"], result["level"], result["baselineState"]) == (
        "n-plus-one",
        "warning",
        "new",
    )
    physical = result["locations"][0]["physicalLocation"]
    # Relative to the repository root, as code scanning reads it (not to services/api).
    assert physical["artifactLocation"] == {"uri": "services/api/app.py", "uriBaseId": "%SRCROOT%"}
    assert physical["region"]["startLine"] == 5
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == runner.workspace.as_uri() + "/"

    # The run file alone (as a later job would check it): a warning below --fail-on error
    # is reported, not failing; the terminal report is in the log this time.
    lenient = runner.run(
        "gate",
        **{
            "working-directory": "services/api",
            "run-file": ".querywatch/gate-run.json",
            "fail-on": "error",
            "command": "false",  # not run: run-file replaces it
        },
    )
    assert lenient.returncode == 0, lenient.log
    assert "$ false" not in lenient.log and "querywatch check passed" in lenient.log
    assert lenient.summary.startswith("## ✅ querywatch check passed")
    assert "| warning, not failing |" in lenient.summary
    assert (lenient.outputs["findings"], lenient.outputs["below"]) == ("0", "1")
    assert "::error" not in lenient.log

    accept = runner.run(
        "gate",
        **{
            "working-directory": "services/api",
            "run-file": ".querywatch/gate-run.json",
            "update-baseline": "true",
        },
    )
    assert accept.returncode == 0, accept.log
    assert "baseline updated" in accept.summary
    baseline = json.loads((service / "querywatch.baseline.json").read_text())
    assert [e["accepted"] for e in baseline["fingerprints"].values() if e["accepted"]] == [
        ["n-plus-one"]
    ]

    passed = runner.run("gate", **{"working-directory": "services/api"})
    assert passed.returncode == 0, passed.log
    assert passed.summary.startswith("## ✅ querywatch check passed")
    assert "1 accepted by the baseline" in passed.summary
    assert (passed.outputs["exit-code"], passed.outputs["findings"]) == ("0", "0")
    assert passed.outputs["accepted"] == "1"
    [accepted] = json.loads(Path(passed.outputs["sarif"]).read_text())["runs"][0]["results"]
    assert accepted["baselineState"] == "unchanged" and accepted["suppressions"]
    assert "::error" not in passed.log


def test_a_failing_test_fails_the_job_when_the_gate_passes(tmp_path: Path) -> None:
    runner = Runner(tmp_path)
    tests = """
    import os
    import sqlite3

    def test_broken(tmp_path):
        conn = sqlite3.connect(tmp_path / "db.sqlite")
        assert conn.execute("SELECT 1").fetchone() == (2,)

    def test_the_dsn_and_store_inputs_reach_the_tests():
        assert os.environ["QUERYWATCH_DSN"] == "postgresql://app@db/shop"
        assert os.environ["QUERYWATCH_STORE"] == "qw.sqlite3"
    """
    write_project(runner.workspace, app="", tests=tests)
    sarif = runner.workspace / "reports" / "querywatch.sarif"
    done = runner.run(
        "gate", sarif="reports/querywatch.sarif", dsn="postgresql://app@db/shop", store="qw.sqlite3"
    )
    assert done.returncode == 1, done.log
    assert "1 failed, 1 passed" in done.log
    assert done.summary.startswith("## ✅ querywatch check passed")
    assert "`pytest --querywatch` exited 1 although the query gate passed" in done.summary
    assert done.outputs["exit-code"] == "1" and done.outputs["findings"] == "0"
    assert done.outputs["sarif"] == str(sarif)
    sarif_validator().validate(json.loads(sarif.read_text()))


def test_a_command_without_the_gate_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    runner = Runner(tmp_path)
    write_project(runner.workspace, app="", tests="def test_ok():\n    pass\n")
    done = runner.run("gate", command="pytest")
    assert done.returncode == 2, done.log
    [error] = [line for line in done.log.splitlines() if line.startswith("::error")]
    assert "`pytest` (exit 0) wrote no run file at" in error
    assert "run pytest with --querywatch" in error
    assert done.summary.startswith("## ⚠️ querywatch could not check")
    assert done.outputs == {"exit-code": "2"}


@pytest.mark.parametrize(
    ("inputs", "said"),
    [
        ({"fail-on": "info"}, "fail-on must be one of error, warning, not 'info'"),
        ({"working-directory": "nowhere"}, "working-directory nowhere: no such directory"),
        ({"run-file": "missing.json"}, "run-file missing.json: no such file in"),
        ({"update-baseline": "yes"}, "update-baseline must be true or false, not 'yes'"),
    ],
)
def test_bad_inputs_are_one_line_before_anything_runs(
    tmp_path: Path, inputs: dict[str, str], said: str
) -> None:
    runner = Runner(tmp_path)
    done = runner.run("gate", command="touch ran", **inputs)
    assert done.returncode == 2
    assert done.log.startswith("::error title=querywatch::") and said in done.log
    assert len(done.log.splitlines()) == 1 and "Traceback" not in done.log
    assert not (runner.workspace / "ran").exists()


# -- action.yml itself ----------------------------------------------------------------------------


def test_action_yml_declares_every_input_it_uses_and_runs_the_script() -> None:
    spec = action()
    text = (ROOT / "action.yml").read_text()
    declared = set(spec["inputs"])
    # in ${{ }} and in the bare expressions of `if:`
    used = set(re.findall(r"\binputs\.([\w-]+)", text))
    assert used == declared, (used - declared, declared - used)
    assert spec["runs"]["using"] == "composite"
    steps = spec["runs"]["steps"]
    setup, install, gate, upload = steps
    assert setup["uses"].startswith("actions/setup-python@")
    assert setup["with"]["python-version"] == "${{ inputs.python-version }}"
    assert setup["if"] == "inputs.python-version != ''"
    for step, arg in ((install, "install"), (gate, "gate")):
        assert step["shell"] == "bash"
        assert f'"$GITHUB_ACTION_PATH/scripts/github_action.py" {arg}' in step["run"]
        assert "${{" not in step["run"]  # inputs reach the script through env only
    assert gate["id"] == "gate"
    assert {name: str(v) for name, v in gate["env"].items()} == {
        "INPUT_" + name.upper().replace("-", "_"): f"${{{{ inputs.{name} }}}}"
        for name in declared
        if name not in ("python-version", "version", "upload-sarif", "sarif-category")
    }
    assert upload["uses"].startswith("github/codeql-action/upload-sarif@")
    assert upload["if"].startswith("always() && inputs.upload-sarif == 'true'")
    assert upload["with"]["sarif_file"] == "${{ steps.gate.outputs.sarif }}"
    for name, output in spec["outputs"].items():
        assert output["value"] == f"${{{{ steps.gate.outputs.{name} }}}}"
    assert spec["inputs"]["command"]["default"] == "pytest --querywatch"
    assert spec["inputs"]["python-version"]["default"] == "3.12"


def test_the_version_input_picks_what_pip_installs() -> None:
    module = script()
    pick = module.pip_requirement
    assert pick("", str(ROOT)) == str(ROOT)  # the action's own checkout
    assert pick("installed", str(ROOT)) is None
    assert pick("0.2.0", str(ROOT)) == "querywatch==0.2.0"
    assert pick("v0.2.0", str(ROOT)) == "querywatch==0.2.0"
    assert pick("querywatch[sqlalchemy]>=0.2", str(ROOT)) == "querywatch[sqlalchemy]>=0.2"
    ref = "git+https://github.com/acme/querywatch@main"
    assert pick(ref, str(ROOT)) == ref
    with pytest.raises(module.ActionError, match="version main: give a release"):
        pick("main", str(ROOT))  # not PyPI's package "main"


def test_gate_options_in_the_command_win_and_reach_the_report() -> None:
    options = script().command_options
    assert options(
        "pytest --querywatch --querywatch-baseline ci/qw.json --querywatch-fail-on=error -x"
    ) == {"baseline": "ci/qw.json", "fail-on": "error"}
    assert options("pytest --querywatch") == {}


def test_the_docs_workflows_use_only_inputs_and_outputs_the_action_has() -> None:
    spec = action()
    doc = (ROOT / "docs" / "integrations" / "github-actions.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", doc, re.S)
    uses = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if str(node.get("uses", "")).startswith("OWNER/querywatch@"):
                uses.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for block in blocks:
        walk(yaml.safe_load(textwrap.dedent(block)))
    assert len(uses) >= 4
    for step in uses:
        assert set(step.get("with", {})) <= set(spec["inputs"]), step
    referenced = set(re.findall(r"steps\.querywatch\.outputs\.([\w-]+)", doc))
    assert referenced and referenced <= set(spec["outputs"])
    rows = {
        m
        for cell in re.findall(r"^\| ([^|]+) \|", doc, re.M)
        for m in re.findall(r"`([\w-]+)`", cell)
    }
    assert set(spec["inputs"]) <= rows and set(spec["outputs"]) <= rows  # both tables complete
