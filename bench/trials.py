"""Trials: ``pytest --querywatch`` on real open-source test suites, run twice.

Why: the gate must be quiet on code nobody here wrote. For each project in ``PROJECTS`` this makes
a venv under the work directory, installs the project's sdist from PyPI with its test
dependencies and querywatch (editable, from this repository), then runs the project's own test
suite with the gate twice:

1. ``pytest --querywatch --querywatch-update-baseline``: the findings a new user sees (there is no
   baseline yet, so every finding is new) and a baseline that accepts them;
2. the identical command without ``--querywatch-update-baseline``: it must pass against that
   baseline (a gate whose baseline does not survive an identical rerun gets switched off).

A small pytest plugin (``qw_trial_probe``, written to the work directory) saves each session's
check report as JSON. PostgreSQL projects run on ``--pg-dsn`` or, by default, on a throwaway
cluster started with tests/pg_cluster.py. Prints a table (``--json`` for JSON); per-project logs,
run files and reports stay in the work directory.

    .venv/bin/python bench/trials.py [--work /tmp/qw-trials] [--only NAME ...] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Project:
    """One trial: a PyPI sdist whose tests ship in it, run on one database."""

    name: str  # the trial's name (a project may be tried on several databases)
    package: str  # the PyPI name
    version: str
    database: str  # "sqlite" (a file in the trial directory) or "postgres"
    deps: tuple[str, ...]  # test dependencies (pytest and querywatch are always installed)
    pytest_args: tuple[str, ...]
    # Environment for the tests: {work}, {pg_host}, {pg_port}, {pg_user}, {pg_dsn} are filled in.
    env: dict[str, str] = field(default_factory=dict)
    # A Django project whose settings use an in-memory SQLite: the trial runs it with these
    # settings and DATABASES pointed at the trial's database (a file, so it can be EXPLAINed).
    django_settings: str | None = None
    # A PostgreSQL database the tests expect to exist: created empty before each run.
    createdb: str | None = None


PROJECTS: tuple[Project, ...] = (
    Project(
        "django-treebeard",
        "django-treebeard",
        "7.0.3",
        "postgres",
        ("Django>=5.2,<5.3", "pytest-django>=4.9,<5", "psycopg[binary]>=3.1"),
        ("tests", "-p", "no:cacheprovider"),
        env={
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_ENGINE": "psql",
            "DATABASE_HOST": "{pg_host}",
            "DATABASE_PORT_POSTGRES": "{pg_port}",
            "DATABASE_USER_POSTGRES": "{pg_user}",
        },
    ),
    Project(
        "django-filter",
        "django-filter",
        "26.2",
        "sqlite",
        (
            "Django>=5.2,<5.3",
            "djangorestframework",
            "pytest-django>=4.9,<5",
            "pytz",
            "markdown",
            "django-crispy-forms",
        ),
        ("tests", "-p", "no:cacheprovider"),
        django_settings="tests.settings",
    ),
    Project(
        "django-model-utils",
        "django-model-utils",
        "5.0.0",
        "postgres",
        ("Django>=5.2,<5.3", "pytest-django>=4.9,<5", "psycopg[binary]>=3.1", "time-machine"),
        ("tests", "-p", "no:cacheprovider"),
        env={
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "POSTGRES_HOST": "{pg_host}",
            "POSTGRES_PORT": "{pg_port}",
            "POSTGRES_USER": "{pg_user}",
        },
    ),
    Project(
        "dataset-sqlite",
        "dataset",
        "2.0.0",
        "sqlite",
        (),
        ("test", "-p", "no:cacheprovider"),
        env={"DATABASE_URL": "sqlite:///{work}/dataset.db"},
    ),
    Project(
        "dataset-postgres",
        "dataset",
        "2.0.0",
        "postgres",
        ("psycopg[binary]>=3.1",),
        ("test", "-p", "no:cacheprovider"),
        env={"DATABASE_URL": "postgresql+psycopg://{pg_user}@{pg_host}:{pg_port}/qw_trial_dataset"},
        createdb="qw_trial_dataset",
    ),
    # Most of its tests use in-memory databases (a note each, never planned); the rest use files
    # under pytest's tmp_path, planned while the test runs.
    Project(
        "sqlite-utils",
        "sqlite-utils",
        "4.2.1",
        "sqlite",
        ("hypothesis",),
        ("tests", "-p", "no:cacheprovider"),
    ),
)

PROBE = '''"""Saves the querywatch check report of this pytest session as JSON (bench/trials.py)."""
import json
import os

import pytest


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    out = {"exitstatus": int(exitstatus), "outcomes": {}}
    for key in ("passed", "failed", "skipped", "error", "xfailed", "xpassed"):
        out["outcomes"][key] = len(terminalreporter.stats.get(key, []))
    plugin = config.pluginmanager.get_plugin("querywatch-gate")
    out["error"] = getattr(plugin, "error", None)
    report = getattr(plugin, "report", None)
    if report is not None:
        out["exit_code"] = report.exit_code
        out["queries"] = len(report.queries)
        out["explained"] = sum(1 for q in report.queries if q.explained)
        out["query_details"] = [
            {"fingerprint": q.fingerprint, "normalized": q.normalized[:400], "dialect": q.dialect,
             "explained": q.explained, "note": q.note, "max_calls": q.max_calls,
             "rules": [f.rule for f in q.findings]}
            for q in report.queries
        ]
        for part in ("new", "regressions", "unchecked", "accepted"):
            out[part] = [f.as_dict() for f in getattr(report, part)]
        out["fixed"] = len(report.fixed)
        out["notes"] = list(report.notes)
    with open(os.environ["QW_TRIAL_REPORT"], "w") as fh:
        json.dump(out, fh, indent=1, default=str)
'''

DJANGO_OVERLAY = '''"""The project's test settings, DATABASES pointed at the trial's database."""
from {base} import *  # noqa: F403

DATABASES = {{"default": {database}}}
'''


class TrialError(Exception):
    """One line saying why a trial could not run."""


def log(msg: str) -> None:
    print(f"[trials {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(
    cmd: list[str],
    *,
    cwd: Path,
    logfile: Path,
    env: dict[str, str] | None = None,
    timeout: float = 600,
) -> int:
    """Run ``cmd`` with its output in ``logfile``; its exit code (TrialError on timeout)."""
    with logfile.open("a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        try:
            return subprocess.run(
                cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=timeout
            ).returncode
        except subprocess.TimeoutExpired:
            raise TrialError(f"{cmd[0]} timed out after {timeout:.0f} s (see {logfile})") from None


# -- setup --------------------------------------------------------------------------------------


def sdist(p: Project, cache: Path, logfile: Path, again: bool = False) -> Path:
    """The project's sdist, downloaded once into ``cache``."""
    cache.mkdir(parents=True, exist_ok=True)
    stem = p.package.replace("-", "_").lower()
    for found in cache.glob("*.tar.gz"):
        if found.name.lower().replace("-", "_") == f"{stem}_{p.version}.tar.gz":
            return found
    if again:
        raise TrialError(f"pip download saved no {stem}-{p.version}.tar.gz in {cache}")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        p.package,
        "-d",
        str(cache),
        f"{p.package}=={p.version}",
    ]
    if run(cmd, cwd=cache, logfile=logfile, timeout=300) != 0:
        raise TrialError(f"pip download {p.package}=={p.version} failed (see {logfile})")
    return sdist(p, cache, logfile, again=True)


def prepare(p: Project, work: Path, cache: Path) -> tuple[Path, Path]:
    """A fresh copy of the sdist's tree and a venv with everything installed: (tree, python)."""
    home = work / p.name
    home.mkdir(parents=True, exist_ok=True)
    logfile = home / "install.log"
    logfile.write_text("")
    archive = sdist(p, cache, logfile)
    tree = home / "src"
    shutil.rmtree(tree, ignore_errors=True)
    with tarfile.open(archive) as tar:
        tar.extractall(home, filter="data")
        top = tar.getnames()[0].split("/")[0]
    (home / top).rename(tree)
    venv = home / "venv"
    python = venv / "bin" / "python"
    want = json.dumps([str(archive), sorted(p.deps), str(REPO)])
    stamp = venv / "qw-trial-stamp"
    if not (python.exists() and stamp.exists() and stamp.read_text() == want):
        shutil.rmtree(venv, ignore_errors=True)
        log(f"{p.name}: venv and install (log {logfile})")
        if run([sys.executable, "-m", "venv", str(venv)], cwd=home, logfile=logfile) != 0:
            raise TrialError(f"cannot create a venv in {venv} (see {logfile})")
        cmd = [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            str(archive),
            *p.deps,
            "pytest>=8",
            "-e",
            str(REPO),
        ]
        if run(cmd, cwd=home, logfile=logfile, timeout=600) != 0:
            raise TrialError(f"pip install failed (see {logfile})")
        stamp.write_text(want)
    (home / "qw_trial_probe.py").write_text(PROBE)
    return tree, python


@contextlib.contextmanager
def postgres(dsn: str | None) -> Iterator[str]:
    """``dsn``, or a throwaway cluster from tests/pg_cluster.py for the duration."""
    if dsn:
        yield dsn
        return
    sys.path.insert(0, str(REPO / "tests"))
    import pg_cluster

    log("starting a throwaway PostgreSQL cluster")
    try:
        with pg_cluster.running_cluster() as started:
            yield started
    except pg_cluster.ClusterUnavailable as exc:
        raise TrialError(f"cannot start PostgreSQL: {str(exc).splitlines()[0]}") from None


def pg_parts(dsn: str) -> dict[str, str]:
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(dsn)
    return {
        "pg_dsn": dsn,
        "pg_host": str(info.get("host") or "127.0.0.1"),
        "pg_port": str(info.get("port") or "5432"),
        "pg_user": str(info.get("user") or "postgres"),
    }


def fresh_database(dsn: str, name: str) -> None:
    import psycopg

    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        raise TrialError(f"cannot create database {name}: {str(exc).strip()}") from None


def django_database(p: Project, home: Path, pg: dict[str, str]) -> str:
    if p.database == "sqlite":
        test = home / "django-test.sqlite3"
        return repr(
            {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(home / "django.sqlite3"),
                "TEST": {"NAME": str(test)},
            }
        )
    return repr(
        {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "qw_trial",
            "HOST": pg["pg_host"],
            "PORT": pg["pg_port"],
            "USER": pg["pg_user"],
        }
    )


# -- the two runs -------------------------------------------------------------------------------


def session(
    p: Project,
    tree: Path,
    python: Path,
    home: Path,
    pg: dict[str, str],
    n: int,
    update: bool,
    timeout: float,
) -> dict[str, Any]:
    """One ``pytest --querywatch`` session over the project's tests; its saved report."""
    report = home / f"report{n}.json"
    report.unlink(missing_ok=True)
    fill = {"work": str(home), **pg}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO", "QW_"))}
    env.update({k: v.format(**fill) for k, v in p.env.items()})
    env["PYTHONPATH"] = str(home)
    env["QW_TRIAL_REPORT"] = str(report)
    args = [
        str(python),
        "-m",
        "pytest",
        *p.pytest_args,
        "-q",
        "-p",
        "qw_trial_probe",
        "--querywatch",
        "--querywatch-run",
        str(home / f"run{n}.json"),
        "--querywatch-baseline",
        str(home / "baseline.json"),
    ]
    if p.django_settings:
        (home / "qw_trial_settings.py").write_text(
            DJANGO_OVERLAY.format(base=p.django_settings, database=django_database(p, home, pg))
        )
        args += ["--ds", "qw_trial_settings"]
    if update:
        args.append("--querywatch-update-baseline")
    for leftover in home.glob("*.db"):
        leftover.unlink()
    if p.createdb:
        fresh_database(pg["pg_dsn"], p.createdb)
    start = time.monotonic()
    code = run(args, cwd=tree, logfile=home / f"run{n}.log", env=env, timeout=timeout)
    if not report.exists():
        raise TrialError(f"run {n}: pytest exited {code} without a report (see {home}/run{n}.log)")
    out: dict[str, Any] = json.loads(report.read_text())
    out["pytest_exit"] = code
    out["seconds"] = round(time.monotonic() - start, 1)
    if out.get("error"):
        raise TrialError(f"run {n}: querywatch could not check: {out['error']}")
    return out


def statements_of(run_file: Path) -> tuple[int, int]:
    """(statements recorded, distinct fingerprints) of a run file."""
    data = json.loads(run_file.read_text())
    total = sum(
        u["count"] + u["fixture_count"]
        for usages in data["tests"].values()
        for u in usages.values()
    )
    return total, len(data["statements"])


def trial(
    p: Project, work: Path, cache: Path, pg_dsn: str | None, timeout: float
) -> dict[str, Any]:
    home = work / p.name
    tree, python = prepare(p, work, cache)
    pg = pg_parts(pg_dsn) if pg_dsn else {}
    (home / "baseline.json").unlink(missing_ok=True)
    log(f"{p.name}: run 1 (log {home}/run1.log)")
    first = session(p, tree, python, home, pg, 1, True, timeout)
    log(f"{p.name}: run 1 done in {first['seconds']} s; run 2")
    second = session(p, tree, python, home, pg, 2, False, timeout)
    statements, fingerprints = statements_of(home / "run1.json")
    seen = first["new"] + first["regressions"] + first["unchecked"]
    again = second["new"] + second["regressions"] + second["unchecked"]
    fps1, fps2 = (
        set(json.loads((home / f).read_text())["statements"]) for f in ("run1.json", "run2.json")
    )
    return {
        "project": p.name,
        "package": p.package,
        "version": p.version,
        "database": p.database,
        "tests": first["outcomes"],
        "statements": statements,
        "fingerprints": fingerprints,
        "checked": first.get("queries", 0),
        "explained": first.get("explained", 0),
        "findings": len(seen),
        # What fails the gate at the default --querywatch-fail-on (warning); info never fails.
        "failing": sum(1 for f in seen if f["severity"] != "info"),
        "by_rule": dict(Counter(f["rule"] for f in seen).most_common()),
        "by_severity": dict(Counter(f["severity"] for f in seen).most_common()),
        "could_not_check": len(first["unchecked"]),
        "run1_exit": first.get("exit_code"),
        "run2_exit": second.get("exit_code"),
        "run2_passed": second.get("exit_code") == 0,
        "run2_failing": len(again),
        "run2_by_rule": dict(Counter(f["rule"] for f in again).most_common()),
        "run2_fingerprints_not_in_run1": len(fps2 - fps1),
        "run2_accepted": len(second.get("accepted", [])),
        "seconds": [first["seconds"], second["seconds"]],
    }


# -- output -------------------------------------------------------------------------------------


def code_version() -> str:
    """The querywatch commit under trial (``-dirty`` when the work tree has changes)."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


def table(results: list[dict[str, Any]]) -> str:
    head = (
        "project",
        "version",
        "db",
        "tests p/f/s",
        "statements",
        "fingerprints",
        "checked/EXPLAINed",
        "findings (failing)",
        "by rule (run 1)",
        "could not check",
        "run 2",
    )
    rows = []
    for r in results:
        if "error" in r:
            rows.append(
                (
                    r["project"],
                    r.get("version", ""),
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    r["error"],
                    "",
                    "error",
                )
            )
            continue
        t = r["tests"]
        rule = ", ".join(f"{k} {v}" for k, v in r["by_rule"].items()) or "-"
        second = (
            "passed"
            if r["run2_passed"]
            else (f"FAILED ({', '.join(f'{k} {v}' for k, v in r['run2_by_rule'].items())})")
        )
        rows.append(
            (
                r["project"],
                r["version"],
                r["database"],
                f"{t['passed']}/{t['failed'] + t['error']}/{t['skipped']}",
                f"{r['statements']:,}",
                f"{r['fingerprints']:,}",
                f"{r['checked']}/{r['explained']}",
                f"{r['findings']} ({r['failing']})",
                rule,
                str(r["could_not_check"]),
                second,
            )
        )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/qw-trials"), help="work directory")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these trials")
    ap.add_argument("--pg-dsn", help="PostgreSQL to run on (default: a throwaway cluster)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per pytest session")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    opts = ap.parse_args(argv)
    chosen = [p for p in PROJECTS if not opts.only or p.name in opts.only]
    if opts.only and len(chosen) != len(set(opts.only)):
        known = ", ".join(p.name for p in PROJECTS)
        print(f"trials: unknown trial name in {opts.only} (known: {known})", file=sys.stderr)
        return 2
    work = opts.work.resolve()
    cache = work / "sdists"
    results: list[dict[str, Any]] = []
    needs_pg = any(p.database == "postgres" for p in chosen)
    try:
        with postgres(opts.pg_dsn) if needs_pg else contextlib.nullcontext("") as dsn:
            for p in chosen:
                try:
                    results.append(trial(p, work, cache, dsn or None, opts.timeout))
                except TrialError as exc:
                    log(f"{p.name}: {exc}")
                    results.append({"project": p.name, "version": p.version, "error": str(exc)})
    except TrialError as exc:
        print(f"trials: {exc}", file=sys.stderr)
        return 2
    version = code_version()
    if opts.json:
        print(json.dumps({"querywatch": version, "trials": results}, indent=1))
    else:
        print(f"querywatch {version}, {time.strftime('%Y-%m-%d')}\n{table(results)}")
    return 0 if results and all(r.get("run2_passed") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
