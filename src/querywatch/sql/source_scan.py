"""Find the SQL an application sends, in its source code, and lint it where it is written.

A slow query is cheapest to fix in review, at the line that builds it. Python files are read with
``ast`` (never imported or run): the SQL passed to execute-like calls (``execute``,
``executemany``, ``executescript``, asyncpg ``fetch*``…) and to composers (SQLAlchemy
``text()``, psycopg ``sql.SQL``/``Composed``, Django ``raw()``…), also through a name assigned
once in the function or module. Query builders compose SQL from pieces (``+``, ``%``,
``.format``, ``"".join``, f-strings, ``SQL(…).format(…)``): a piece whose value is unknown here
becomes a hole written as its source (``{table}``), so the statement is linted with holes and
messages show the source text. A piece that is not a statement by itself (``SQL("SELECT * FROM
")``, ``" AND x = ?"``) is counted as a skipped fragment, never reported as a parse error.
``.sql`` files are split into statements. Every finding carries a
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
from dataclasses import dataclass, field
from pathlib import Path

from querywatch.errors import QuerywatchError
from querywatch.findings import SEVERITIES, Finding, Location
from querywatch.sql.lint import (
    ALL_RULES,
    PARSE_ERROR,
    RULES,
    lint_text,
    parse_suppressions,
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
# These take SQL too, but the names are common: their argument must look like SQL.
_MAYBE_SQL_CALLS = frozenset(
    {"text", "raw", "RawSQL", "SQL", "query", "read_sql", "read_sql_query", "prepare"}
)
# Composers: their value is SQL text built from their arguments (psycopg.sql, SQLAlchemy).
_COMPOSERS = frozenset({"SQL", "text", "RawSQL", "Composed"})
_SQL_KEYWORDS = {"sql", "query", "statement", "operation", "stmt"}
_LOOKS_LIKE_SQL = re.compile(
    r"\s*(?:(?:--[^\n]*(?:\n|\Z)|/\*.*?\*/)\s*)*\(?\s*"
    r"(?:select|insert|update|delete|with|create|alter|drop|truncate|replace|merge|explain|"
    r"values|grant|revoke|analyze|vacuum|copy|lock|call|pragma|show|set|"
    # clauses: a piece of a statement, counted as a skipped fragment
    r"where|and|or|from|join|inner|left|order|group|having|limit|offset|returning|on|into|"
    r"union)\b",
    re.IGNORECASE | re.DOTALL,
)
_FORMAT_FIELD = re.compile(r"\{\{|\}\}|\{([^{}!:]*)(?:![rsa])?(?::[^{}]*)?\}")
_PERCENT_FIELD = re.compile(r"%(?:\((\w+)\))?[-#0 +]*\d*(?:\.\d+)?[sdirfgeExXoc%]")


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


# -- Python ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Text:
    text: str
    exact: bool  # False when parts were interpolated: the real text is unknown
    node: ast.expr  # where it is written
    lines: frozenset[int]  # source lines whose comments may suppress its findings
    function: str | None  # the function it is written in
    hole: bool = False  # the whole text is one hole (a value unknown here)


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
        self.statements = self.fragments = 0
        self.linted: set[int] = set()  # ids of the nodes whose text was linted
        self.parents = {
            id(child): parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)
        }
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
        name = _call_name(node)
        if name is None:
            return
        strict = name in _SQL_CALLS
        if not (strict or name in _MAYBE_SQL_CALLS or name.startswith("fetch")):
            return
        arg = node.args[0] if node.args else None
        if arg is None:
            arg = next((k.value for k in node.keywords if k.arg in _SQL_KEYWORDS), None)
        if arg is None or isinstance(arg, ast.Starred):
            return
        top: ast.expr = arg
        if name in _COMPOSERS:
            # SQL("… {} …").format(…) and SQL("a") + SQL("b") are linted as one text.
            top = _composition_top(node, self.parents)
        found = self._resolve(top if top is not arg else arg, depth=0)
        if found is None or not found.text.strip() or found.hole:
            return
        if not strict and not _LOOKS_LIKE_SQL.match(found.text):
            return
        if id(found.node) in self.linted:
            return  # a composed text and the execute() that runs it are one statement
        self.linted.add(id(found.node))
        lines = found.lines | {node.lineno, node.end_lineno or node.lineno}
        self._lint(found, lines)

    def _resolve(self, node: ast.expr, depth: int, inner: bool = False) -> _Text | None:
        """The SQL text an expression evaluates to, as far as it can be known statically.

        Inside a composition (``inner``) a part whose value is unknown becomes a hole written
        as its source (``{table}``); at the top an unknown value is not SQL we can see."""
        span = frozenset({node.lineno, node.end_lineno or node.lineno})
        here = ".".join(self.names) or None
        found = None if depth > 8 else self._known(node, depth, span, here)
        if found is None and inner:
            return _Text(_hole(node), False, node, span, here, hole=True)
        return found

    def _known(
        self, node: ast.expr, depth: int, span: frozenset[int], here: str | None
    ) -> _Text | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return _Text(node.value, True, node, span, here)
        if isinstance(node, ast.JoinedStr):
            parts: list[str] = []
            for value in node.values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    parts.append(value.value)
                elif isinstance(value, ast.FormattedValue):
                    parts.append(_hole(value.value))
            return _Text("".join(parts), False, node, span, here)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left = self._resolve(node.left, depth + 1, inner=True)
            right = self._resolve(node.right, depth + 1, inner=True)
            if left is None or right is None or (left.hole and right.hole):
                return None
            glue = " " if (left.hole or right.hole) and _touch(left.text, right.text) else ""
            return _Text(
                left.text + glue + right.text,
                left.exact and right.exact,
                node,
                span | left.lines | right.lines,
                here,
            )
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            base = self._resolve(node.left, depth + 1)  # "… %s" % args: the format string
            if base is None:
                return None
            text = _percent_holes(base.text, node.right)
            return _Text(text, False, node, span | base.lines, base.function)
        if isinstance(node, ast.Call):
            return self._call(node, depth, span, here)
        if isinstance(node, ast.Name):
            return self._name(node, depth)
        return None

    def _call(
        self, node: ast.Call, depth: int, span: frozenset[int], here: str | None
    ) -> _Text | None:
        name = _call_name(node)
        if isinstance(node.func, ast.Attribute) and name == "format":
            base = self._resolve(node.func.value, depth + 1)
            if base is None:
                return None
            text = _format_holes(base.text, node)
            return _Text(text, False, node, span | base.lines, base.function)
        if isinstance(node.func, ast.Attribute) and name == "join" and len(node.args) == 1:
            sep = self._resolve(node.func.value, depth + 1)
            items = node.args[0]
            if sep is None or not isinstance(items, ast.List | ast.Tuple):
                return None
            parts = [self._resolve(e, depth + 1, inner=True) for e in items.elts]
            if any(p is None for p in parts):
                return None
            texts = [p.text for p in parts if p is not None]
            return _Text(sep.text.join(texts), False, node, span, here)
        if name in _COMPOSERS and node.args:
            first = node.args[0]
            if name == "Composed" and isinstance(first, ast.List | ast.Tuple):
                parts = [self._resolve(e, depth + 1, inner=True) for e in first.elts]
                if any(p is None for p in parts):
                    return None
                texts = [p.text for p in parts if p is not None]
                return _Text("".join(texts), False, node, span, here)
            inner = self._resolve(first, depth + 1)
            if inner is None:
                return None
            return _Text(inner.text, inner.exact, inner.node, inner.lines, inner.function)
        return None

    def _name(self, node: ast.Name, depth: int) -> _Text | None:
        for index in range(len(self.scopes) - 1, -1, -1):
            scope = self.scopes[index]
            if node.id not in scope:
                continue
            assigned = scope[node.id]
            if len(assigned) != 1 or not isinstance(assigned[0], ast.Assign | ast.AnnAssign):
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
            return _Text(found.text, found.exact, found.node, found.lines | own, found.function)
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
        wanted = set(RULES) - ignored
        result = lint_text(
            found.text,
            self.dialect,
            location=where,
            map_positions=mapped,
            rules=wanted,
            pieces=True,
        )
        self.statements += result.statements
        self.fragments += result.fragments
        self.findings.extend(result.findings)

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


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name if isinstance(name, str) else None


def _composition_top(node: ast.expr, parents: dict[int, ast.AST]) -> ast.expr:
    """The whole expression a composer call is a part of: ``SQL(…).format(…)``, ``SQL(a) +
    SQL(b)``, ``Composed([…])``, ``SQL(", ").join(…)``, or the call itself."""
    top = node
    while True:
        parent = parents.get(id(top))
        if isinstance(parent, ast.Attribute) and parent.attr in ("format", "join"):
            call = parents.get(id(parent))
            if isinstance(call, ast.Call) and call.func is parent:
                top = call
                continue
        if isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Add | ast.Mod):
            top = parent
            continue
        if isinstance(parent, ast.List | ast.Tuple):
            call = parents.get(id(parent))
            if isinstance(call, ast.Call) and _call_name(call) == "Composed":
                top = call
                continue
        return top


def _hole(node: ast.expr) -> str:
    """A value unknown here, written as its source: ``{table}``, ``{quote(name)}``."""
    try:
        text = ast.unparse(node)
    except Exception:  # an odd node only loses its name
        text = "…"
    text = " ".join(text.replace("{", "(").replace("}", ")").split())
    return "{" + (text if len(text) <= 40 else text[:39] + "…") + "}"


def _touch(left: str, right: str) -> bool:
    """True when two concatenated pieces would glue two words together."""
    return bool(left and right and (left[-1].isalnum() or left[-1] in "_}")) and (
        right[0].isalnum() or right[0] in "_{"
    )


def _percent_holes(text: str, args: ast.expr) -> str:
    """``"… %s …" % args`` with each conversion as a hole named by its argument."""
    values = list(args.elts) if isinstance(args, ast.Tuple) else [args]
    index = 0

    def field(m: re.Match[str]) -> str:
        nonlocal index
        if m.group() == "%%":
            return "%"
        if m.group(1):
            return "{" + m.group(1) + "}"
        value = values[index] if index < len(values) else None
        index += 1
        return _hole(value) if value is not None else "{…}"

    return _PERCENT_FIELD.sub(field, text)


def _format_holes(text: str, call: ast.Call) -> str:
    """``"… {} …".format(a)`` with each field as a hole named by its argument."""
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    auto = 0

    def field(m: re.Match[str]) -> str:
        nonlocal auto
        if m.group() in ("{{", "}}"):
            return m.group()[0]
        key = (m.group(1) or "").strip()
        value: ast.expr | None = None
        if not key:
            value = call.args[auto] if auto < len(call.args) else None
            auto += 1
        elif key.isdigit():
            value = call.args[int(key)] if int(key) < len(call.args) else None
        else:
            value = keywords.get(key.split(".")[0].split("[")[0])
        if value is None:
            return "{" + key + "}"
        if isinstance(value, ast.Constant) and isinstance(value.value, str | int | float):
            return str(value.value)
        return _hole(value)

    return _FORMAT_FIELD.sub(field, text)


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
            RULES[PARSE_ERROR].severity,
            f"cannot parse this Python file ({msg}): the SQL in it was not checked",
            "fix the Python syntax, or exclude the file from the paths linted",
            {"language": "python", "reason": msg},
            location=Location(path, line, getattr(exc, "offset", None) or 1),
        )
        return ScanResult([finding], files=1)
    scanner = _PyScanner(path, source, dialect, tree)
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
