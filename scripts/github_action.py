#!/usr/bin/env python3
"""The steps of querywatch's GitHub Action (``action.yml``), so they can run and be tested
outside GitHub with the environment GitHub sets.

``github_action.py install`` installs querywatch the way the ``version`` input asks.
``github_action.py gate`` (the default) runs the gate: the ``command`` input (``pytest
--querywatch``) in the working directory, or, with ``run-file``, no command but ``querywatch
check`` on a run file made elsewhere. Then ``querywatch check`` on the run file writes the
Markdown, SARIF and JUnit reports (the gate's own writers; this script only moves them where
GitHub reads them): the Markdown is appended to ``$GITHUB_STEP_SUMMARY``, the counts and paths go
to ``$GITHUB_OUTPUT``, failing findings become annotations at their call sites, and the exit
status is the gate's: 1 on new findings or regressions at ``fail-on`` or above (or failing
tests), 2 when it could not check.

Inputs arrive as ``INPUT_*`` variables (the step's ``env:`` in action.yml maps each input to
one), never pasted into a shell line, so a value cannot run as code. Options the action sets
reach pytest through ``PYTEST_ADDOPTS`` (before the user's own); a ``--querywatch-*`` option
written in ``command`` wins over the input of the same meaning and is used for the report too.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, unquote

FAIL_ON = ("error", "warning")
SUMMARY_LIMIT = 1_000_000  # GitHub refuses a step summary over 1 MiB
ANNOTATION_LIMIT = 10  # GitHub shows at most 10 error (and 10 warning) annotations per step
KINDS = ("new", "regression", "unchecked", "below", "accepted")
_BARE_VERSION = re.compile(r"^v?\d[\w.!+-]*$")
# pytest options of the gate whose value the report's check needs too: the --querywatch-<key>
# option and the `querywatch check` option it maps to.
_GATE_OPTIONS = {
    "run": "--run",
    "baseline": "--baseline",
    "fail-on": "--fail-on",
    "explain-dsn": "--explain-dsn",
    "max-repeats": "--max-repeats",
}


class ActionError(Exception):
    """Something the workflow's author must fix (an input, a missing file): one line, exit 2."""


@dataclass(frozen=True)
class Inputs:
    command: str
    run_file: str
    working_directory: str
    baseline: str
    fail_on: str
    explain_dsn: str
    update_baseline: bool
    dsn: str
    store: str
    sarif: str

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Inputs:
        def get(name: str, default: str = "") -> str:
            return env.get(f"INPUT_{name}", default).strip()

        fail_on = get("FAIL_ON", "warning") or "warning"
        if fail_on not in FAIL_ON:
            raise ActionError(f"fail-on must be one of {', '.join(FAIL_ON)}, not {fail_on!r}")
        update = get("UPDATE_BASELINE", "false").lower()
        if update not in ("true", "false", ""):
            raise ActionError(f"update-baseline must be true or false, not {update!r}")
        return cls(
            command=get("COMMAND", "pytest --querywatch"),
            run_file=get("RUN_FILE"),
            working_directory=get("WORKING_DIRECTORY", ".") or ".",
            baseline=get("BASELINE", "querywatch.baseline.json") or "querywatch.baseline.json",
            fail_on=fail_on,
            explain_dsn=get("EXPLAIN_DSN"),
            update_baseline=update == "true",
            dsn=get("DSN"),
            store=get("STORE"),
            sarif=get("SARIF"),
        )


# -- install --------------------------------------------------------------------------------------


def pip_requirement(version: str, action_path: str) -> str | None:
    """What ``pip install`` gets for the ``version`` input: the action's own checkout when empty
    (querywatch at the ref the workflow pinned the action to), nothing for ``installed``, the
    release for a bare version (``0.2.0``), else the requirement as written (``querywatch[
    sqlalchemy]>=0.2``, ``git+https://…@ref``)."""
    version = version.strip()
    if not version:
        if not (Path(action_path) / "pyproject.toml").is_file():
            raise ActionError(f"no querywatch checkout at {action_path} to install from")
        return action_path
    if version == "installed":
        return None
    if _BARE_VERSION.match(version):
        return f"querywatch=={version.removeprefix('v')}"
    if "querywatch" in version.lower() or "://" in version or version.startswith((".", "/")):
        return version
    # A bare branch name would install whatever PyPI package has that name.
    raise ActionError(
        f"version {version}: give a release (0.2.0), a pip requirement naming querywatch, or"
        " `installed`; for querywatch at a git ref, pin the action itself to that ref"
    )


def install(env: dict[str, str]) -> int:
    action_path = env.get("GITHUB_ACTION_PATH") or str(Path(__file__).resolve().parent.parent)
    requirement = pip_requirement(env.get("INPUT_VERSION", ""), action_path)
    if requirement is not None:
        args = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check"]
        subprocess.run([*args, "--progress-bar", "off", requirement], check=True)
    shown = subprocess.run(
        [sys.executable, "-m", "querywatch", "--version"], capture_output=True, text=True
    )
    if shown.returncode != 0:
        raise ActionError(
            f"querywatch is not installed in {sys.executable}: install it with your"
            " requirements, or leave the version input empty"
        )
    print(shown.stdout.strip())
    return 0


# -- the gate -------------------------------------------------------------------------------------


def command_options(command: str) -> dict[str, str]:
    """The gate options ``command`` sets itself (``--querywatch-baseline x`` or ``=x``), by key."""
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise ActionError(f"command: {exc}: {command!r}") from None
    found: dict[str, str] = {}
    for i, word in enumerate(words):
        for key in _GATE_OPTIONS:
            flag = f"--querywatch-{key}"
            if word.startswith(flag + "="):
                found[key] = word[len(flag) + 1 :]
            elif word == flag and i + 1 < len(words):
                found[key] = words[i + 1]
    return found


def _paths(env: dict[str, str], inputs: Inputs) -> tuple[Path, Path, Path]:
    """The workspace, the working directory inside it, and the directory for the reports."""
    workspace = Path(env.get("GITHUB_WORKSPACE") or os.getcwd()).resolve()
    cwd = (workspace / inputs.working_directory).resolve()
    if not cwd.is_dir():
        raise ActionError(f"working-directory {inputs.working_directory}: no such directory")
    # A directory of its own per step, so two uses of the action in one job keep their reports.
    temp = Path(env.get("RUNNER_TEMP") or cwd / ".querywatch")
    temp.mkdir(parents=True, exist_ok=True)
    return workspace, cwd, Path(tempfile.mkdtemp(prefix="querywatch-", dir=temp))


def _gate_settings(inputs: Inputs) -> dict[str, str]:
    """The gate's options as the action's inputs set them (paths relative to ``cwd``)."""
    settings = {
        "run": inputs.run_file or ".querywatch/gate-run.json",
        "baseline": inputs.baseline,
        "fail-on": inputs.fail_on,
    }
    if inputs.explain_dsn:
        settings["explain-dsn"] = inputs.explain_dsn
    return settings


def _child_env(env: dict[str, str], inputs: Inputs, settings: dict[str, str]) -> dict[str, str]:
    child = dict(env)
    if inputs.dsn:
        child["QUERYWATCH_DSN"] = inputs.dsn
    if inputs.store:
        child["QUERYWATCH_STORE"] = inputs.store
    ours = [f"--querywatch-{key}={value}" for key, value in settings.items()]
    if inputs.update_baseline:
        ours.append("--querywatch-update-baseline")
    # Ours first: the user's own PYTEST_ADDOPTS and command line come later and win.
    child["PYTEST_ADDOPTS"] = " ".join([shlex.join(ours), env.get("PYTEST_ADDOPTS", "")]).strip()
    return child


def rebase_sarif(doc: dict[str, Any], cwd: Path, workspace: Path) -> None:
    """Make call sites relative to the repository root, as code scanning reads them: the check
    writes them relative to the working directory (``%SRCROOT%``), which code scanning ignores."""
    try:
        prefix = cwd.relative_to(workspace).as_posix()
    except ValueError:
        return  # a working directory outside the workspace: leave the paths as they are
    for run in doc.get("runs", []):
        run["originalUriBaseIds"] = {"%SRCROOT%": {"uri": workspace.as_uri() + "/"}}
        if prefix == ".":
            continue
        for result in run.get("results", []):
            for location in result.get("locations", []):
                artifact = location.get("physicalLocation", {}).get("artifactLocation", {})
                if artifact.get("uriBaseId") == "%SRCROOT%":
                    path = PurePosixPath(prefix) / unquote(artifact["uri"])
                    artifact["uri"] = quote(path.as_posix())


def counts(doc: dict[str, Any]) -> dict[str, int]:
    """Results per kind (``properties.kind`` of each SARIF result, as the check sorted them)."""
    found = dict.fromkeys(KINDS, 0)
    for run in doc.get("runs", []):
        for result in run.get("results", []):
            kind = result.get("properties", {}).get("kind")
            if kind in found:
                found[kind] += 1
    return found


def _escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def annotation_commands(doc: dict[str, Any]) -> list[str]:
    """Workflow commands that annotate the pull request's diff at each failing call site (and a
    warning at each statement that could not be checked), for repositories without code
    scanning."""
    lines: list[str] = []
    shown = {"error": 0, "warning": 0}
    for run in doc.get("runs", []):
        for result in run.get("results", []):
            kind = result.get("properties", {}).get("kind")
            level = {"new": "error", "regression": "error", "unchecked": "warning"}.get(kind)
            if level is None or shown[level] >= ANNOTATION_LIMIT:
                continue
            shown[level] += 1
            where = ""
            for location in result.get("locations", [])[:1]:
                physical = location.get("physicalLocation", {})
                artifact = physical.get("artifactLocation", {})
                if artifact.get("uriBaseId") == "%SRCROOT%":
                    line = physical.get("region", {}).get("startLine", 1)
                    where = f" file={_escape(unquote(artifact['uri']), prop=True)},line={line}"
            title = _escape(f"querywatch {result.get('ruleId', '')} ({kind})", prop=True)
            text = _escape(result.get("message", {}).get("text", ""))
            lines.append(f"::{level}{where},title={title}::{text}")
    return lines


def write_outputs(path: str | None, values: dict[str, str]) -> None:
    """Append ``values`` to ``$GITHUB_OUTPUT`` (the multi-line form, safe for any value)."""
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        for name, value in values.items():
            delimiter = f"ghadelimiter_{uuid.uuid4().hex}"
            out.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def append_summary(path: str | None, text: str, report: Path) -> None:
    if not path:
        return
    data = text.encode("utf-8")
    if len(data) > SUMMARY_LIMIT:
        cut = data[: SUMMARY_LIMIT - 2_000].decode("utf-8", "ignore").rsplit("\n", 1)[0]
        text = f"{cut}\n\n> The report is longer than a job summary may be: the whole of it is"
        text += f" in `{report}` (the `markdown` output).\n"
    with open(path, "a", encoding="utf-8") as out:
        out.write(text)


def _run_command(command: str, cwd: Path, env: dict[str, str]) -> int:
    print(f"$ {command}", flush=True)
    return subprocess.run(command, shell=True, cwd=cwd, env=env).returncode


def _check(
    settings: dict[str, str],
    out: Path,
    cwd: Path,
    env: dict[str, str],
    *,
    update: bool,
    quiet: bool,
) -> tuple[int, str]:
    """``querywatch check`` on the run file, writing the three reports into ``out``."""
    args = [sys.executable, "-m", "querywatch", "check"]
    for key, option in _GATE_OPTIONS.items():
        if key in settings:
            args += [option, settings[key]]
    if update:
        args.append("--update-baseline")
    for fmt, name in (("markdown", "querywatch.md"), ("sarif", "querywatch.sarif"),
                      ("junit", "querywatch-junit.xml")):  # fmt: skip
        args += ["--format", fmt, "-o", str(out / name)]
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=quiet, text=True)
    return done.returncode, (done.stdout or "") + (done.stderr or "")


def gate(env: dict[str, str]) -> int:
    inputs = Inputs.from_env(env)
    workspace, cwd, out = _paths(env, inputs)
    settings = _gate_settings(inputs)
    child = _child_env(env, inputs, settings)
    ran_command = not inputs.run_file
    command_rc = 0
    if ran_command:
        settings.update(command_options(inputs.command))
        run_path = cwd / settings["run"]
        run_path.unlink(missing_ok=True)  # a run file left from before is not this run's
        command_rc = _run_command(inputs.command, cwd, child)
        if not run_path.is_file():
            raise ActionError(
                f"`{inputs.command}` (exit {command_rc}) wrote no run file at {run_path}:"
                " run pytest with --querywatch (or give the run-file input)"
            )
    elif not (cwd / settings["run"]).is_file():
        raise ActionError(f"run-file {inputs.run_file}: no such file in {cwd}")
    check_rc, said = _check(
        settings, out, cwd, child, update=inputs.update_baseline and not ran_command,
        quiet=ran_command,
    )  # fmt: skip
    markdown = out / "querywatch.md"
    sarif_path = out / "querywatch.sarif"
    if not markdown.is_file() or not sarif_path.is_file():
        print(said, end="")
        raise ActionError(f"querywatch check wrote no report (exit {check_rc}); see above")
    if ran_command and check_rc == 2:
        print(said, end="")  # why it could not check; pytest printed the report itself
    doc = json.loads(sarif_path.read_text(encoding="utf-8"))
    rebase_sarif(doc, cwd, workspace)
    final_sarif = cwd / inputs.sarif if inputs.sarif else sarif_path
    final_sarif.parent.mkdir(parents=True, exist_ok=True)
    final_sarif.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for line in annotation_commands(doc):
        print(line)
    exit_code = command_rc or check_rc
    summary = markdown.read_text(encoding="utf-8")
    if command_rc and not check_rc:
        summary += (
            f"\n> `{inputs.command}` exited {command_rc} although the query gate passed:"
            " a test failed or pytest stopped (see the job's log).\n"
        )
    summary += _footer(env)
    append_summary(env.get("GITHUB_STEP_SUMMARY"), summary, markdown)
    found = counts(doc)
    write_outputs(
        env.get("GITHUB_OUTPUT"),
        {
            "exit-code": str(exit_code),
            "findings": str(found["new"] + found["regression"]),
            "new": str(found["new"]),
            "regressions": str(found["regression"]),
            "unchecked": str(found["unchecked"]),
            "below": str(found["below"]),
            "accepted": str(found["accepted"]),
            "sarif": str(final_sarif),
            "markdown": str(markdown),
            "junit": str(out / "querywatch-junit.xml"),
            "run-file": str(cwd / settings["run"]),
            "baseline": str(cwd / settings["baseline"]),
        },
    )
    return exit_code


def _footer(env: dict[str, str]) -> str:
    parts = []
    if env.get("GITHUB_SHA"):
        parts.append(f"commit `{env['GITHUB_SHA'][:12]}`")
    if env.get("GITHUB_BASE_REF"):
        parts.append(f"into `{env['GITHUB_BASE_REF']}`")
    elif env.get("GITHUB_REF"):
        parts.append(f"on `{env['GITHUB_REF']}`")
    return f"\n<sub>querywatch gate · {' '.join(parts)}</sub>\n" if parts else ""


def main(argv: list[str]) -> int:
    env = dict(os.environ)
    step = argv[0] if argv else "gate"
    try:
        if step == "install":
            return install(env)
        if step == "gate":
            return gate(env)
        raise ActionError(f"unknown step {step!r}: install or gate")
    except ActionError as exc:
        print(f"::error title=querywatch::{_escape(str(exc))}", flush=True)
        if step == "gate":
            text = f"## ⚠️ querywatch could not check\n\n{exc}\n" + _footer(env)
            append_summary(env.get("GITHUB_STEP_SUMMARY"), text, Path("-"))
            write_outputs(env.get("GITHUB_OUTPUT"), {"exit-code": "2"})
        return 2
    except subprocess.CalledProcessError as exc:
        print(f"::error title=querywatch::{_escape(f'{exc.cmd[-1]}: exit {exc.returncode}')}")
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
