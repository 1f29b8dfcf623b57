"""Find the SQL a Python module sends, without importing or running it, and lint it in place.

The SQL passed to execute-like calls (``execute``, ``executemany``, ``executescript``, asyncpg
``fetch*``…) and to composers (SQLAlchemy ``text()``, psycopg ``sql.SQL``/``Composed``, Django
``raw()``…) is read from the module's ``ast``, also through a name assigned once in the function
or module. Query builders compose SQL from pieces (``+``, ``%``, ``.format``, ``"".join``,
f-strings, ``SQL(…).format(…)``): a piece whose value is unknown here becomes a hole
(:mod:`querywatch.sql.source_holes`), and a piece that is not a statement by itself is counted as
a fragment by the lint runner. ``# querywatch: ignore[rule-id]`` on the line of the call or of
the string silences it.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass

from querywatch.findings import Finding, Location
from querywatch.sql.lint import ALL_RULES, RULES, lint_text, parse_suppressions
from querywatch.sql.source_holes import format_holes, hole, percent_holes, touch

__all__ = ["PythonScanner", "comment_suppressions"]

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


@dataclass(frozen=True, slots=True)
class _Class:
    """A class body being visited: what it assigns, and where its methods' ``self`` resolves."""

    path: str  # dotted name, for findings' function
    names: dict[str, list[ast.AST]]  # class-body assignments
    rebound: frozenset[str]  # attributes some code assigns on an instance (self.x = …)
    depth: int  # how many scopes enclose the class body


def _rebound(node: ast.ClassDef) -> frozenset[str]:
    out: set[str] = set()
    for n in ast.walk(node):
        targets: list[ast.expr] = []
        if isinstance(n, ast.Assign):
            targets = n.targets
        elif isinstance(n, ast.AugAssign | ast.AnnAssign):
            targets = [n.target]
        for t in targets:
            for sub in ast.walk(t):
                if isinstance(sub, ast.Attribute):
                    out.add(sub.attr)
    return frozenset(out)


class PythonScanner(ast.NodeVisitor):
    """Visits one module: every SQL call's text is resolved, linted, and counted."""

    def __init__(self, path: str, source: str, dialect: str, tree: ast.Module) -> None:
        self.path, self.dialect = path, dialect
        self.lines = source.splitlines()
        self.suppress = comment_suppressions(source)
        self.findings: list[Finding] = []
        self.statements = self.fragments = 0
        self.linted: set[int] = set()  # ids of the nodes whose text was linted
        self.parents = {
            id(child): parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)
        }
        self.scopes: list[dict[str, list[ast.AST]]] = [_assigned_names(tree.body)]
        self.scope_names: list[str | None] = [None]  # the function each scope belongs to
        self.names: list[str] = []  # enclosing classes and functions, outermost first
        self.classes: list[_Class] = []
        self.receivers: list[str | None] = [None]  # the name ``self`` has in the function

    # scopes and function names -----------------------------------------------------------
    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._scope(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._scope(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.names.append(node.name)
        self.classes.append(
            _Class(
                ".".join(self.names), _assigned_names(node.body), _rebound(node), len(self.scopes)
            )
        )
        self.generic_visit(node)
        self.classes.pop()
        self.names.pop()

    def _scope(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.names.append(node.name)
        self.scopes.append(_assigned_names(node.body))
        self.scope_names.append(".".join(self.names))
        params = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
        for param in params:
            self.scopes[-1].setdefault(param.arg, []).append(param)
        receiver = self.receivers[-1]  # a closure in a method sees the method's self
        if isinstance(self.parents.get(id(node)), ast.ClassDef):
            static = any(_decorator_name(d) == "staticmethod" for d in node.decorator_list)
            receiver = params[0].arg if params and not static else None
        elif receiver in {p.arg for p in params}:
            receiver = None  # shadowed
        self.receivers.append(receiver)
        self.generic_visit(node)
        self.receivers.pop()
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
        for found in self._candidates(top):
            if not found.text.strip() or found.hole:
                continue
            if not strict and not _LOOKS_LIKE_SQL.match(found.text):
                continue
            if id(found.node) in self.linted:
                continue  # a composed text and the execute() that runs it are one statement
            self.linted.add(id(found.node))
            lines = found.lines | {node.lineno, node.end_lineno or node.lineno}
            self._lint(found, lines)

    def _candidates(self, node: ast.expr) -> list[_Text]:
        """The texts a call's SQL argument may hold. A name assigned in several places (``if
        …: sql = "…" else: sql = "…"``) holds each of them, when every one is known (a
        ``+=``, a loop or a parameter among them makes it unknown)."""
        if isinstance(node, ast.Name):
            for index in range(len(self.scopes) - 1, -1, -1):
                assigned = self.scopes[index].get(node.id)
                if assigned is None:
                    continue
                plain = [a for a in assigned if isinstance(a, ast.Assign | ast.AnnAssign)]
                if len(assigned) < 2 or len(plain) < len(assigned):
                    break
                texts = [self._assigned_value(a, index, 0) for a in plain]
                known = [t for t in texts if t is not None]
                return known if len(known) == len(texts) else []
        found = self._resolve(node, depth=0)
        return [] if found is None else [found]

    def _resolve(self, node: ast.expr, depth: int, inner: bool = False) -> _Text | None:
        """The SQL text an expression evaluates to, as far as it can be known statically.

        Inside a composition (``inner``) a part whose value is unknown becomes a hole written
        as its source (``{table}``); at the top an unknown value is not SQL we can see."""
        span = frozenset({node.lineno, node.end_lineno or node.lineno})
        here = ".".join(self.names) or None
        found = None if depth > 8 else self._known(node, depth, span, here)
        if found is None and inner:
            return _Text(hole(node), False, node, span, here, hole=True)
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
                    parts.append(hole(value.value))
            return _Text("".join(parts), False, node, span, here)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left = self._resolve(node.left, depth + 1, inner=True)
            right = self._resolve(node.right, depth + 1, inner=True)
            if left is None or right is None or (left.hole and right.hole):
                return None
            glue = " " if (left.hole or right.hole) and touch(left.text, right.text) else ""
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
            text = percent_holes(base.text, node.right)
            return _Text(text, False, node, span | base.lines, base.function)
        if isinstance(node, ast.Call):
            return self._call(node, depth, span, here)
        if isinstance(node, ast.Name):
            return self._name(node, depth)
        if isinstance(node, ast.Attribute):
            return self._attribute(node, depth)
        return None

    def _attribute(self, node: ast.Attribute, depth: int) -> _Text | None:
        """``self.QUERY`` in a method: the class attribute, when the class body assigns it once
        and no code assigns it on an instance."""
        receiver = self.receivers[-1]
        if not (self.classes and isinstance(node.value, ast.Name) and node.value.id == receiver):
            return None
        cls = self.classes[-1]
        assigned = cls.names.get(node.attr, [])
        if len(assigned) != 1 or node.attr in cls.rebound:
            return None
        stmt = assigned[0]
        if not isinstance(stmt, ast.Assign | ast.AnnAssign):
            return None
        scopes, scope_names = self.scopes, self.scope_names
        # The value is written in the class body: its names resolve there, then outside.
        self.scopes = [*scopes[: cls.depth], cls.names]
        self.scope_names = [*scope_names[: cls.depth], cls.path]
        try:
            return self._assigned_value(stmt, len(self.scopes) - 1, depth)
        finally:
            self.scopes, self.scope_names = scopes, scope_names

    def _call(
        self, node: ast.Call, depth: int, span: frozenset[int], here: str | None
    ) -> _Text | None:
        name = _call_name(node)
        if isinstance(node.func, ast.Attribute) and name == "format":
            base = self._resolve(node.func.value, depth + 1)
            if base is None:
                return None
            text = format_holes(base.text, node)
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
            return self._assigned_value(assigned[0], index, depth)
        return None

    def _assigned_value(
        self, stmt: ast.Assign | ast.AnnAssign, index: int, depth: int
    ) -> _Text | None:
        """The text assigned by ``stmt``, written in scope ``index``: names in it resolve from
        there."""
        if stmt.value is None:
            return None
        saved, scopes = self.names, self.scopes
        self.scopes = self.scopes[: index + 1]
        self.names = (self.scope_names[index] or "").split(".") if index else []
        try:
            found = self._resolve(stmt.value, depth + 1)
        finally:
            self.scopes, self.names = scopes, saved
        if found is None:
            return None
        own = {stmt.lineno, stmt.end_lineno or stmt.lineno}
        return _Text(found.text, found.exact, found.node, found.lines | own, found.function)

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


def _decorator_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else None


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


def comment_suppressions(source: str) -> dict[int, frozenset[str]]:
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
