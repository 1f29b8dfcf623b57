"""Find the SQL an application sends, in its source code, and lint it where it is written.

A slow query is cheapest to fix in review, at the line that builds it. This module walks the
paths given, reads each file and hands it to its reader: Python files to
:mod:`querywatch.sql.source_python` (SQL found with ``ast``, never imported or run; pieces a
query builder completes later are counted as fragments, never reported as parse errors),
``.sql`` files to the lint runner, split into statements. Every finding carries a
:class:`~querywatch.findings.Location`; ``# querywatch: ignore[rule-id]`` on the line of the call
or of the string silences it, as ``-- querywatch: ignore[rule-id]`` does inside SQL.
"""

from __future__ import annotations

import ast
import io
import os
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from querywatch.errors import QuerywatchError
from querywatch.findings import SEVERITIES, Finding, Location
from querywatch.sql.lint import PARSE_ERROR, RULES, lint_text
from querywatch.sql.source_python import PythonScanner

__all__ = [
    "SKIP_DIRS",
    "LintPathError",
    "ScanResult",
    "scan",
    "scan_paths",
    "scan_python",
    "scan_sql",
]

SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "venv"})
"""Directories never walked into, besides hidden ones (``.git``, ``.venv``…)."""


class LintPathError(QuerywatchError):
    """A path given to lint does not exist or cannot be read: the check could not run."""


@dataclass(slots=True)
class ScanResult:
    """Findings sorted by place, and how much was looked at (for "clean: N statements")."""

    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    statements: int = 0
    fragments: int = 0  # pieces of statements a query builder completes: not linted

    def counts(self) -> dict[str, int]:
        return {s: sum(f.severity == s for f in self.findings) for s in SEVERITIES}


# -- files -------------------------------------------------------------------------------------
def scan_python(source: str, path: str, dialect: str = "postgres") -> ScanResult:
    """Lint the SQL found in one Python source text; a syntax error is one finding."""
    try:
        tree = ast.parse(source, filename=path)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None) or 1
        msg = getattr(exc, "msg", None) or str(exc)
        finding = Finding(
            PARSE_ERROR,
            RULES[PARSE_ERROR].severity,
            f"cannot parse this Python file ({msg}): the SQL in it was not checked",
            "fix the Python syntax, or exclude the file from the paths linted",
            {"language": "python", "reason": msg},
            location=Location(path, line, getattr(exc, "offset", None) or 1),
        )
        return ScanResult([finding], files=1)
    scanner = PythonScanner(path, source, dialect, tree)
    scanner.visit(tree)
    return ScanResult(_sorted(scanner.findings), 1, scanner.statements, fragments=scanner.fragments)


def scan_sql(text: str, path: str, dialect: str = "postgres") -> ScanResult:
    """Lint every statement of a ``.sql`` file, each finding at its own line."""
    result = lint_text(text, dialect, location=Location(path, 1, 1))
    return ScanResult(_sorted(result.findings), 1, result.statements)


# -- paths -----------------------------------------------------------------------------------
def _files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, files in os.walk(path, onerror=_walk_error):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
                for name in sorted(files):
                    if name.endswith((".py", ".sql")):
                        yield Path(root) / name
        elif path.exists():
            yield path
        else:
            raise LintPathError(f"{raw}: no such file or directory")


def _walk_error(exc: OSError) -> None:
    raise LintPathError(f"{exc.filename}: cannot read: {exc.strerror}")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LintPathError(f"{path}: cannot read: {exc.strerror or exc}") from None


def scan(paths: Iterable[str | os.PathLike[str]], dialect: str = "postgres") -> ScanResult:
    """Lint ``.py`` and ``.sql`` files under ``paths`` (files given by name are linted whatever
    their suffix: ``.py`` as Python, anything else as SQL). A path that is missing or unreadable
    raises :class:`LintPathError`; broken SQL or Python is a ``parse-error`` finding."""
    total = ScanResult()
    for path in _files(paths):
        data = _read(path)
        name = str(path)
        if path.suffix == ".py":
            try:
                encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
                source = data.decode(encoding)
            except (SyntaxError, LookupError, UnicodeDecodeError) as exc:
                source = ""
                part = _undecodable(name, exc)
            else:
                part = scan_python(source, name, dialect)
        else:
            try:
                part = scan_sql(data.decode("utf-8-sig"), name, dialect)
            except UnicodeDecodeError as exc:
                part = _undecodable(name, exc)
        total.findings.extend(part.findings)
        total.files += part.files
        total.statements += part.statements
        total.fragments += part.fragments
    total.findings = _sorted(_unique(total.findings))
    return total


def scan_paths(paths: Iterable[str | os.PathLike[str]], dialect: str = "postgres") -> list[Finding]:
    """The findings of :func:`scan`, each with its location."""
    return scan(paths, dialect).findings


def _undecodable(path: str, exc: Exception) -> ScanResult:
    finding = Finding(
        PARSE_ERROR,
        RULES[PARSE_ERROR].severity,
        f"cannot decode this file as text ({type(exc).__name__}): nothing in it was checked",
        "save the file as UTF-8 (or declare its encoding), or exclude it from the paths linted",
        {"reason": str(exc)[:200]},
        location=Location(path, 1, 1),
    )
    return ScanResult([finding], files=1)


def _unique(findings: list[Finding]) -> list[Finding]:
    """A constant executed from several calls is linted once per call: keep each finding once."""
    seen: set[tuple[object, ...]] = set()
    out: list[Finding] = []
    for f in findings:
        key = (f.rule, f.location, f.message, f.fingerprint)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def _sorted(findings: list[Finding]) -> list[Finding]:
    def key(f: Finding) -> tuple[str, int, int, str]:
        loc = f.location
        return ("", 0, 0, f.rule) if loc is None else (loc.path, loc.line, loc.column, f.rule)

    return sorted(findings, key=key)
