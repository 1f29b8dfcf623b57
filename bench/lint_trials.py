"""Lint trials: ``querywatch lint`` on real open-source codebases that send SQL.

Why: static lint must earn its place on code nobody here wrote, without a database: no false
parse errors, no noise, and findings a maintainer would act on. For each project in
``PROJECTS`` this downloads the sdist from PyPI (``pip download --no-deps --no-binary``, once,
into the work directory's cache), unpacks it, and runs ``querywatch lint --json`` (this
repository's, with the interpreter running this script) on the package's own source and, as a
second row, on its test suite when the sdist ships one. Each is linted twice: as a user runs it
(rules that depend on table sizes report ``info``) and with ``--assume-large`` (each rule's own
severity). Prints a Markdown table (``--json`` for JSON); every lint's JSON output stays in the
work directory for reading the findings one by one.

``--relint RUN.json`` lints instead every statement recorded in a gate run file (``pytest
--querywatch`` writes them; bench/trials.py keeps them as ``<work>/<project>/run1.json``), with
the lint rules alone, as the gate does before any plan: how many findings each rule gives on the
SQL a real test suite sent.

    .venv/bin/python bench/lint_trials.py [--work /tmp/qw-lint-trials] [--only NAME ...] [--json]
    .venv/bin/python bench/lint_trials.py --relint /tmp/qw-trials/django-treebeard/run1.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Project:
    """One codebase: a PyPI sdist, the dialect its SQL is written in, what to lint in it."""

    package: str
    version: str
    dialect: str
    source: tuple[str, ...]  # paths in the unpacked sdist: the package's own code
    tests: tuple[str, ...] = ()  # its test suite, when the sdist ships one


PROJECTS: tuple[Project, ...] = (
    Project("sqlite-utils", "4.2.1", "sqlite", ("sqlite_utils",), ("tests",)),
    Project("peewee", "4.5.3", "sqlite", ("peewee.py", "playhouse")),  # sdist has no test suite
    Project("datasette", "0.65.5", "sqlite", ("datasette",), ("tests",)),
    Project("procrastinate", "3.10.0", "postgres", ("procrastinate",)),
    Project("pgcli", "4.7.1", "postgres", ("pgcli",), ("tests",)),
    Project("django-extensions", "4.1", "postgres", ("django_extensions",), ("tests",)),
    Project("dataset", "2.0.0", "sqlite", ("dataset",), ("test",)),
)


class TrialError(Exception):
    """One line saying why a trial could not run."""


@dataclass
class Lint:
    """One ``querywatch lint`` run over one part of a project."""

    project: str
    version: str
    part: str  # "source" or "tests"
    dialect: str
    paths: list[str]
    command: str
    exit_code: int = 0
    exit_code_assume_large: int = 0
    seconds: float = 0.0
    files: int = 0
    statements: int = 0
    fragments: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)  # "rule severity" -> count, as run
    by_rule_assume_large: dict[str, int] = field(default_factory=dict)
    output: str = ""  # the JSON file with every finding


def log(msg: str) -> None:
    print(f"[lint-trials {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _names(p: Project) -> set[str]:
    return {f"{n}-{p.version}.tar.gz" for n in (p.package, p.package.replace("-", "_"))}


def sdist(p: Project, cache: Path) -> Path:
    """The project's sdist, downloaded once into ``cache``."""
    cache.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        for found in cache.glob("*.tar.gz"):
            if found.name.lower() in _names(p):
                return found
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", p.package]
        cmd += ["-d", str(cache), f"{p.package}=={p.version}"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise TrialError(f"pip download {p.package}=={p.version} failed: {done.stderr[-300:]}")
    raise TrialError(f"pip download saved none of {sorted(_names(p))} in {cache}")


def unpack(archive: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        top = {m.name.split("/", 1)[0] for m in tar.getmembers()}
        if len(top) != 1:
            raise TrialError(f"{archive.name}: expected one top directory, found {sorted(top)}")
        root = into / top.pop()
        if not root.exists():
            tar.extractall(into, filter="data")
    return root


def lint(p: Project, root: Path, part: str, paths: tuple[str, ...], out_dir: Path) -> Lint:
    present = [x for x in paths if (root / x).exists()]
    if not present:
        raise TrialError(f"{p.package}: none of {paths} in the sdist")
    base = [sys.executable, "-m", "querywatch", "lint", "--json", "--dialect", p.dialect]
    shown = f"querywatch lint --dialect {p.dialect} {' '.join(present)}"
    result = Lint(p.package, p.version, part, p.dialect, present, shown)
    output = out_dir / f"{p.package}-{part}.json"
    for assume_large in (False, True):
        cmd = base + (["--assume-large"] if assume_large else []) + present
        started = time.perf_counter()
        done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=600)
        elapsed = time.perf_counter() - started
        if done.returncode not in (0, 1):
            raise TrialError(f"{shown} exited {done.returncode}: {done.stderr.strip()[-300:]}")
        data = json.loads(done.stdout)
        counts = Counter(f"{f['rule']} {f['severity']}" for f in data["findings"])
        if assume_large:
            result.exit_code_assume_large = done.returncode
            result.by_rule_assume_large = dict(sorted(counts.items()))
        else:
            result.exit_code, result.seconds = done.returncode, round(elapsed, 2)
            result.files, result.statements = data["files"], data["statements"]
            result.fragments = data["fragments"]
            result.by_rule = dict(sorted(counts.items()))
            output.write_text(json.dumps(data, indent=2))
            result.output = str(output)
    return result


def relint(run_file: Path) -> dict[str, Any]:
    """How many of a gate run file's fingerprints each lint rule fires on (the gate keeps one
    finding per rule and fingerprint)."""
    from querywatch.sql.lint import lint_sql

    statements = json.loads(run_file.read_text())["statements"]
    counts: Counter[str] = Counter()
    for stmt in statements.values():
        counts.update({f.rule for f in lint_sql(stmt["sample"], stmt["dialect"])})
    return {"run": str(run_file), "fingerprints": len(statements), "by_rule": dict(counts)}


def commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return done.stdout.strip() + (" (plus uncommitted changes in the tree)" if dirty else "")


def _counts(by_rule: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in by_rule.items()) or "none"


def table(rows: list[Lint]) -> str:
    head = (
        "| project | version | part | dialect | files | statements | fragments skipped "
        "| findings (as run) | exit | with --assume-large | exit |\n"
        "|---|---|---|---|---:|---:|---:|---|---:|---|---:|\n"
    )
    return head + "".join(
        f"| {r.project} | {r.version} | {r.part} | {r.dialect} | {r.files} | {r.statements} "
        f"| {r.fragments} | {_counts(r.by_rule)} | {r.exit_code} "
        f"| {_counts(r.by_rule_assume_large)} | {r.exit_code_assume_large} |\n"
        for r in rows
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/qw-lint-trials"), help="work dir")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="lint only these packages")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--relint", type=Path, metavar="RUN", help="lint a gate run file's statements")
    args = ap.parse_args(argv)
    if args.relint:
        print(json.dumps({"querywatch": commit()} | relint(args.relint), indent=2))
        return 0
    chosen = [p for p in PROJECTS if not args.only or p.package in args.only]
    if not chosen:
        print(f"no project named {args.only}: {[p.package for p in PROJECTS]}", file=sys.stderr)
        return 2
    rows: list[Lint] = []
    failed: list[str] = []
    for p in chosen:
        try:
            log(f"{p.package} {p.version}: download and unpack")
            root = unpack(sdist(p, args.work / "cache"), args.work / "src")
            for part, paths in (("source", p.source), ("tests", p.tests)):
                if paths:
                    log(f"{p.package}: lint {part}")
                    rows.append(lint(p, root, part, paths, args.work))
        except (TrialError, subprocess.TimeoutExpired, OSError, ValueError) as exc:
            failed.append(f"{p.package}: {exc}")
            log(f"{p.package}: {exc}")
    if args.json:
        doc: dict[str, Any] = {"querywatch": commit(), "rows": [asdict(r) for r in rows]}
        print(json.dumps(doc | {"failed": failed}, indent=2))
    else:
        print(f"querywatch {commit()}\n")
        print(table(rows))
        total = Counter[str]()
        for r in rows:
            total.update(r.by_rule)
        print(
            f"{len(rows)} lints, {sum(r.files for r in rows)} files, "
            f"{sum(r.statements for r in rows)} statements, "
            f"{sum(r.fragments for r in rows)} fragments skipped; findings: {_counts(dict(total))}"
        )
        for line in failed:
            print(f"could not run: {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
