"""Find the SQL an application sends, in its source code, and lint it where it is written.

A slow query is cheapest to fix in review, at the line that builds it. Python files are read with
``ast`` (never imported or run): string literals passed to execute-like calls (``execute``,
``executemany``, ``executescript``, SQLAlchemy ``text()``, Django ``raw()``, asyncpg ``fetch*``…),
also through a name assigned once in the function or module, ``+`` concatenation and f-strings
(each ``{…}`` stands for a value; an f-string that then does not parse is skipped, since its real
text is unknown). ``.sql`` files are split into statements. Every finding carries a
:class:`~querywatch.findings.Location`; ``# querywatch: ignore[rule-id]`` on the line of the call
or of the string silences it, as ``-- querywatch: ignore[rule-id]`` does inside SQL.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from querywatch.errors import QuerywatchError
from querywatch.findings import SEVERITIES, Finding, Location
from querywatch.sql.lint import (
    ALL_RULES,
    PARAM_PREFIX,
    PARSE_ERROR,
    lint_sql,
    parse_suppressions,
    split_statements,
)

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

# The first argument of these calls is SQL, whatever it looks like.
_SQL_CALLS = frozenset(
    {"execute", "executemany", "executescript", "exec_driver_sql", "execute_sql", "mogrify"}
)
# These take SQL too, but the names are common: their argument must start like a statement.
_MAYBE_SQL_CALLS = frozenset(
    {"text", "raw", "RawSQL", "SQL", "query", "read_sql", "read_sql_query", "prepare"}
)
_SQL_KEYWORDS = {"sql", "query", "statement", "operation", "stmt"}
_LOOKS_LIKE_SQL = re.compile(
    r"\s*(?:(?:--[^\n]*(?:\n|\Z)|/\*.*?\*/)\s*)*\(?\s*"
    r"(?:select|insert|update|delete|with|create|alter|drop|truncate|replace|merge|explain|"
    r"values|grant|revoke|analyze|vacuum|copy|lock|call|pragma|show|set)\b",
    re.IGNORECASE | re.DOTALL,
)
_MARKER = re.compile(rf"\b{PARAM_PREFIX}\d+\b")
_FORMAT_FIELD = re.compile(r"\{\{|\}\}|\{[^{}]*\}")


class LintPathError(QuerywatchError):
    """A path given to lint does not exist or cannot be read: the check could not run."""


@dataclass(slots=True)
class ScanResult:
    """Findings sorted by place, and how much was looked at (for "clean: N statements")."""

    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    statements: int = 0

    def counts(self) -> dict[str, int]:
        return {s: sum(f.severity == s for f in self.findings) for s in SEVERITIES}


# -- Python ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Text:
    text: str
    exact: bool  # False when parts were interpolated: the real text is unknown
    node: ast.expr  # where it is written
    lines: frozenset[int]  # source lines whose comments may suppress its findings
    function: str | None  # the function it is written in


def _assigned_names(body: Iterable[ast.stmt]) -> dict[str, list[ast.AST]]:
    """Every assignment to a plain name in a scope (not inside nested functions or classes)."""
    out: dict[str, list[ast.AST]] = {}
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                out.setdefault(node.name, []).append(node)
            continue
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(
            node,
            ast.AnnAssign
            | ast.AugAssign
            | ast.NamedExpr
            | ast.For
            | ast.AsyncFor
            | ast.comprehension,
        ):
            targets = [node.target]
        elif isinstance(node, ast.With | ast.AsyncWith):
            targets = [i.optional_vars for i in node.items if i.optional_vars is not None]
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                out.setdefault(bound, []).append(node)
        for target in targets:
            for n in ast.walk(target):
                if isinstance(n, ast.Name):
                    out.setdefault(n.id, []).append(node)
        stack.extend(ast.iter_child_nodes(node))
    return out


class _PyScanner(ast.NodeVisitor):
    def __init__(self, path: str, source: str, dialect: str, tree: ast.Module) -> None:
        self.path, self.dialect = path, dialect
        self.lines = source.splitlines()
        self.suppress = _comment_suppressions(source)
        self.findings: list[Finding] = []
        self.statements = 0
        self.scopes: list[dict[str, list[ast.AST]]] = [_assigned_names(tree.body)]
        self.scope_names: list[str | None] = [None]  # the function each scope belongs to
        self.names: list[str] = []  # enclosing classes and functions, outermost first

    # scopes and function names -----------------------------------------------------------
    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._scope(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._scope(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.names.append(node.name)
        self.generic_visit(node)
        self.names.pop()

    def _scope(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.names.append(node.name)
        self.scopes.append(_assigned_names(node.body))
        self.scope_names.append(".".join(self.names))
        for param in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs):
            self.scopes[-1].setdefault(param.arg, []).append(param)
        self.generic_visit(node)
        self.scopes.pop()
        self.scope_names.pop()
        self.names.pop()

    # calls ---------------------------------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if not isinstance(name, str):
            return
        strict = name in _SQL_CALLS
        if not (strict or name in _MAYBE_SQL_CALLS or name.startswith("fetch")):
            return
        arg = node.args[0] if node.args else None
        if arg is None:
            arg = next((k.value for k in node.keywords if k.arg in _SQL_KEYWORDS), None)
        if arg is None or isinstance(arg, ast.Starred):
            return
        found = self._resolve(arg, depth=0)
        if found is None or not found.text.strip():
            return
        if not strict and not _LOOKS_LIKE_SQL.match(found.text):
            return
        lines = found.lines | {node.lineno, node.end_lineno or node.lineno}
        self._lint(found, lines)

    def _resolve(self, node: ast.expr, depth: int) -> _Text | None:
        """The SQL text an expression evaluates to, as far as it can be known statically."""
        span = frozenset({node.lineno, node.end_lineno or node.lineno})
        here = ".".join(self.names) or None
        if depth > 8:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return _Text(node.value, True, node, span, here)
        if isinstance(node, ast.JoinedStr):
            parts: list[str] = []
            for i, value in enumerate(node.values):
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    parts.append(value.value)
                else:
                    parts.append(f"{PARAM_PREFIX}{i}")
            return _Text("".join(parts), False, node, span, here)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left = self._resolve(node.left, depth + 1)
            right = self._resolve(node.right, depth + 1)
            if left is None or right is None:
                return None
            exact = left.exact and right.exact
            lines = span | left.lines | right.lines
            return _Text(left.text + right.text, exact, node, lines, left.function)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            left = self._resolve(node.left, depth + 1)  # "… %s" % args: the format string
            if left is None:
                return None
            return _Text(left.text, False, node, span | left.lines, left.function)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"
        ):
            base = self._resolve(node.func.value, depth + 1)
            if base is None:
                return None
            text = _FORMAT_FIELD.sub(
                lambda m: m.group()[0] if m.group() in ("{{", "}}") else PARAM_PREFIX + "0",
                base.text,
            )
            return _Text(text, False, node, span | base.lines, base.function)
        if isinstance(node, ast.Name):
            for index in range(len(self.scopes) - 1, -1, -1):
                scope = self.scopes[index]
                if node.id in scope:
                    assigned = scope[node.id]
                    if len(assigned) != 1 or not isinstance(
                        assigned[0], ast.Assign | ast.AnnAssign
                    ):
                        return None  # reassigned, a parameter, a loop variable…: unknown
                    stmt = assigned[0]
                    if stmt.value is None:
                        return None
                    saved = self.names
                    # The value is written in that scope: names in it resolve from there.
                    scopes, self.scopes = self.scopes, self.scopes[: index + 1]
                    self.names = (self.scope_names[index] or "").split(".") if index else []
                    try:
                        found = self._resolve(stmt.value, depth + 1)
                    finally:
                        self.scopes, self.names = scopes, saved
                    if found is None:
                        return None
                    own = {stmt.lineno, stmt.end_lineno or stmt.lineno}
                    return _Text(
                        found.text, found.exact, found.node, found.lines | own, found.function
                    )
            return None
        return None

    def _lint(self, found: _Text, lines: frozenset[int] | set[int]) -> None:
        ignored: set[str] = set()
        for line in lines:
            ignored |= self.suppress.get(line, frozenset())
        if ALL_RULES in ignored:
            return
        node = found.node
        mapped = (
            found.exact
            and isinstance(node, ast.Constant)
            and (node.end_lineno or node.lineno) - node.lineno == found.text.count("\n")
        )
        column = self._column(node.lineno, node.col_offset)
        if mapped:
            column += self._opening(node.lineno, node.col_offset)
        where = Location(self.path, node.lineno, column, found.function)
        self.statements += len(split_statements(found.text, self.dialect))
        for f in lint_sql(found.text, self.dialect, location=where, map_positions=mapped):
            if f.rule in ignored or (f.rule == PARSE_ERROR and not found.exact):
                continue
            if not found.exact and f.sql:  # show interpolations as the f-string fields they are
                f = replace(f, sql=_MARKER.sub("{…}", f.sql))
            self.findings.append(f)

    def _column(self, lineno: int, col_offset: int) -> int:
        """1-based character column (ast gives UTF-8 byte offsets)."""
        if 0 < lineno <= len(self.lines):
            line = self.lines[lineno - 1]
            return len(line.encode()[:col_offset].decode(errors="replace")) + 1
        return col_offset + 1

    def _opening(self, lineno: int, col_offset: int) -> int:
        """Length of a string's prefix and opening quotes, so columns land inside the string."""
        if not 0 < lineno <= len(self.lines):
            return 0
        rest = self.lines[lineno - 1].encode()[col_offset:].decode(errors="replace")
        m = re.match(r"[rRuUbBfF]{0,2}(\"\"\"|'''|\"|')", rest)
        return len(m.group()) if m else 0


def _comment_suppressions(source: str) -> dict[int, frozenset[str]]:
    out: dict[int, frozenset[str]] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                rules = parse_suppressions(tok.string)
                if rules:
                    out[tok.start[0]] = out.get(tok.start[0], frozenset()) | rules
    except (tokenize.TokenError, SyntaxError):
        pass  # ast already parsed the file; a tokenizer quirk only loses suppressions
    return out


def scan_python(source: str, path: str, dialect: str = "postgres") -> ScanResult:
    """Lint the SQL found in one Python source text; a syntax error is one finding."""
    try:
        tree = ast.parse(source, filename=path)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None) or 1
        msg = getattr(exc, "msg", None) or str(exc)
        finding = Finding(
            PARSE_ERROR,
            "warning",
            f"cannot parse this Python file ({msg}): the SQL in it was not checked",
            "fix the Python syntax, or exclude the file from the paths linted",
            {"language": "python", "reason": msg},
            location=Location(path, line, getattr(exc, "offset", None) or 1),
        )
        return ScanResult([finding], files=1)
    scanner = _PyScanner(path, source, dialect, tree)
    scanner.visit(tree)
    return ScanResult(_sorted(scanner.findings), files=1, statements=scanner.statements)


def scan_sql(text: str, path: str, dialect: str = "postgres") -> ScanResult:
    """Lint every statement of a ``.sql`` file, each finding at its own line."""
    findings = lint_sql(text, dialect, location=Location(path, 1, 1))
    return ScanResult(_sorted(findings), 1, len(split_statements(text, dialect)))


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
    total.findings = _sorted(_unique(total.findings))
    return total


def scan_paths(paths: Iterable[str | os.PathLike[str]], dialect: str = "postgres") -> list[Finding]:
    """The findings of :func:`scan`, each with its location."""
    return scan(paths, dialect).findings


def _undecodable(path: str, exc: Exception) -> ScanResult:
    finding = Finding(
        PARSE_ERROR,
        "warning",
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
