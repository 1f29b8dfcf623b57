"""Static SQL lint: rules that judge a statement's shape, before it ever runs.

The report's outage was one query that could not use an index on a large table. Some such shapes
are visible in the text alone (a leading-wildcard LIKE, a function around an indexed column, a
deep OFFSET…), so they are caught here, in review and CI, from source code and from captured
statements. Static lint cannot know table sizes: its verdicts are warnings (an UPDATE or DELETE
without WHERE is an error); the plan rules judge sizes.

Rules work on sqlglot's syntax tree, never on table or column names. Statements may carry
placeholders (``$1``, ``?``, ``%s``, ``:name``) as captured statements and fingerprints do. A
statement that does not parse becomes a ``parse-error`` finding (or :class:`LintParseError` with
``strict=True``), never a crash. ``querywatch: ignore[rule-id]`` in a SQL comment silences a rule
for that statement. docs/lint.md documents every rule.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError

from querywatch.errors import ConfigError, QuerywatchError
from querywatch.findings import Finding, Location, Severity
from querywatch.sql.fingerprint import fingerprint

__all__ = [
    "DIALECTS",
    "PARSE_ERROR",
    "RULES",
    "LintParseError",
    "Rule",
    "Statement",
    "lint_sql",
    "parse_suppressions",
    "split_statements",
]

# sqlglot logs "unsupported syntax, falling back to Command" for statements it does not model
# (VACUUM, triggers…). Those are not our findings, and the CLI's stderr must stay clean.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

DIALECTS = ("postgres", "sqlite", "mysql")
_ALIASES = {"postgresql": "postgres", "pg": "postgres", "mariadb": "mysql", "sqlite3": "sqlite"}

PARSE_ERROR = "parse-error"
ALL_RULES = "*"
"""In a suppression set: every rule (a bare ``querywatch: ignore``)."""

PARAM_PREFIX = "qw_param_"
"""Columns named like this stand for interpolated values (f-strings in source): they count as
values, not columns."""

DEEP_OFFSET = 1000


class LintParseError(QuerywatchError):
    """A statement that does not parse in the chosen dialect (raised only with ``strict=True``)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """A lint rule: ``id`` is the stable slug users suppress and baselines record."""

    id: str
    severity: Severity
    summary: str


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement of a text: where it starts (offset, 1-based line and column) and the rules
    its own comments suppress."""

    text: str
    offset: int
    line: int
    column: int
    suppressed: frozenset[str]


# -- lexing just enough: strings, comments, quoted names, parameters, ";" ------------------------
_COMMENT = r"(?P<c>--[^\n]*+|/\*[\s\S]*?(?:\*/|\Z))"
_LEX = {
    "postgres": re.compile(
        _COMMENT + r"|(?P<s>(?<![\w$])[eE]'(?:[^'\\]|\\[\s\S]|'')*+'?|'(?:[^']|'')*+'?"
        r"|\$\$[\s\S]*?(?:\$\$|\Z)|\$(?P<tag>[A-Za-z_]\w*)\$[\s\S]*?(?:\$(?P=tag)\$|\Z))"
        r'|(?P<q>"(?:[^"]|"")*+"?)'
        r"|(?P<p>\$\d+|%\(\w+\)s|%s|\?|(?<![:\w]):[A-Za-z_]\w*)|(?P<semi>;)"
    ),
    "mysql": re.compile(
        r"(?P<c>(?:--(?=\s|\Z)|#)[^\n]*+|/\*[\s\S]*?(?:\*/|\Z))"
        r"""|(?P<s>'(?:[^'\\]|\\[\s\S]|'')*+'?|"(?:[^"\\]|\\[\s\S]|"")*+"?)"""
        r"|(?P<q>`(?:[^`]|``)*+`?)|(?P<p>%\(\w+\)s|%s|\?)|(?P<semi>;)"
    ),
    "sqlite": re.compile(
        _COMMENT + r"|(?P<s>'(?:[^']|'')*+'?)"
        r'|(?P<q>"(?:[^"]|"")*+"?|`(?:[^`]|``)*+`?|\[[^\]]*+\]?)'
        r"|(?P<p>\?\d*|(?<![:\w])[:@$][A-Za-z_]\w*)|(?P<semi>;)"
    ),
}
_CANON_PARAM = {"postgres": "%s", "mysql": "?", "sqlite": "?"}
_IGNORE = re.compile(r"querywatch:\s*ignore(?:\[([^\]]*)\])?", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z_][\w.]{0,39}\Z")


def _dialect(dialect: str) -> str:
    name = str(dialect).lower()
    name = _ALIASES.get(name, name)
    if name not in DIALECTS:
        raise ConfigError(
            f"unknown SQL dialect {dialect!r}: use {', '.join(DIALECTS)}", setting="dialect"
        )
    return name


def parse_suppressions(comment: str) -> frozenset[str]:
    """Rule ids a comment silences: ``querywatch: ignore[a, b]`` → {a, b}; a bare
    ``querywatch: ignore`` → {"*"} (every rule)."""
    found: set[str] = set()
    for m in _IGNORE.finditer(comment):
        if m.group(1) is None:
            found.add(ALL_RULES)
        else:
            found.update(r.strip().lower() for r in m.group(1).split(",") if r.strip())
    return frozenset(found)


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def split_statements(text: str, dialect: str = "postgres") -> list[Statement]:
    """Split a text into statements at top-level ``;`` (not inside strings, quoted names,
    comments or dollar quotes); comment-only pieces are dropped.

    A comment after a statement's ``;`` on the same line belongs to that statement, so
    ``SELECT …; -- querywatch: ignore[select-star]`` works as it reads.
    """
    name = _dialect(dialect)
    lexer = _LEX[name]
    pieces: list[tuple[int, int, list[str]]] = []  # start, end, comments
    start, last, comments = 0, 0, []
    same_line_as: int | None = None  # the statement whose ";" is on this line, nothing since
    for m in lexer.finditer(text):
        gap = text[last : m.start()]
        last = m.end()
        if gap.strip() or "\n" in gap:
            same_line_as = None
        if m.group("c") is not None:
            if same_line_as is not None:
                pieces[same_line_as][2].append(m.group())
                start = m.end()
            else:
                comments.append(m.group())
        elif m.group("semi") is not None:
            if _inside_body(text[start : m.start()], name):
                same_line_as = None
                continue
            pieces.append((start, m.start(), comments))
            same_line_as = len(pieces) - 1
            start, comments = m.end(), []
        else:
            same_line_as = None
    pieces.append((start, len(text), comments))
    out: list[Statement] = []
    for begin, end, notes in pieces:
        chunk = text[begin:end]
        blanked = lexer.sub(lambda m: " " * len(m.group()) if m.group("c") else m.group(), chunk)
        if not blanked.strip():
            continue
        # Parse from the first character of code (leading comments were read for suppressions)
        # so positions are the statement's own.
        lead = len(blanked) - len(blanked.lstrip())
        line, column = _position(text, begin + lead)
        suppressed = frozenset().union(*(parse_suppressions(n) for n in notes))
        out.append(Statement(chunk[lead:].rstrip(), begin + lead, line, column, suppressed))
    return out


def _inside_body(piece: str, dialect: str) -> bool:
    """True at a ";" inside a trigger's or routine's BEGIN … END body (SQLite, MySQL)."""
    code = _words_outside_strings(piece, dialect)
    if not _ROUTINE.match(code):
        return False
    return len(_OPENS.findall(code)) > len(_CLOSES.findall(code))


_ROUTINE = re.compile(r"\s*create\b[^;]*?\b(?:trigger|procedure|function)\b", re.I)
_OPENS = re.compile(r"\b(?:begin|case)\b", re.I)
_CLOSES = re.compile(r"\bend\b(?!\s+(?:if|loop|while|repeat)\b)", re.I)


def _canonical_params(text: str, dialect: str) -> str:
    """The text with every bind parameter as the one form sqlglot reads in that dialect
    (``?::int`` and MySQL ``%s`` do not parse as they are)."""
    canon = _CANON_PARAM[dialect]
    return _LEX[dialect].sub(lambda m: canon if m.group("p") is not None else m.group(), text)


def _words_outside_strings(text: str, dialect: str) -> str:
    """The text with strings, comments and quoted names blanked: only keywords and names stay."""
    return _LEX[dialect].sub(lambda m: " " if m.group("p") is None else m.group(), text)


# -- parsing ---------------------------------------------------------------------------------
class _Unparsable(Exception):
    def __init__(self, reason: str, line: int | None, column: int | None) -> None:
        super().__init__(reason)
        self.reason, self.line, self.column = reason, line, column


def _parse(text: str, dialect: str) -> exp.Expr | None:
    try:
        return _parse_one(text, dialect)
    except _Unparsable as first:
        word = _first_word(text, dialect)
        if word is not None and word.upper() in _UNCHECKED:
            return None  # another dialect's session or maintenance command: no rule reads it
        if word is not None and word.upper() not in _keywords(dialect):
            # "SELEC id FROM t": the typo, not sqlglot's complaint further on, is the news.
            raise _Unparsable(f"not a SQL statement (unknown keyword {word!r})", 1, 1) from None
        retry = _canonical_params(text, dialect)
        if retry == text:
            raise
        try:
            return _parse_one(retry, dialect)
        except _Unparsable:
            raise first from None  # its position is in the user's own text


def _first_word(text: str, dialect: str) -> str | None:
    code = _LEX[dialect].sub(lambda m: " " if m.group("c") is not None else m.group(), text)
    m = re.match(r"\s*([A-Za-z_]\w*)", code)
    return m.group(1) if m and _WORD.match(m.group(1)) else None


_UNCHECKED_WORDS = """
    ABORT ANALYZE ATTACH BEGIN BINLOG CALL CHANGE CHECKPOINT CHECKSUM CLOSE CLUSTER COMMENT
    COMMIT COPY DEALLOCATE DECLARE DESC DESCRIBE DETACH DISCARD DO END EXECUTE EXPLAIN FETCH
    FLUSH GET GRANT HANDLER HELP IMPORT INSTALL KILL LISTEN LOAD LOCK MOVE NOTIFY OPTIMIZE
    PRAGMA PREPARE PURGE REASSIGN REFRESH REINDEX RELEASE REPAIR RESET RESIGNAL REVOKE ROLLBACK
    SAVEPOINT SECURITY SET SHOW SIGNAL START STOP TRUNCATE UNINSTALL UNLISTEN UNLOCK USE VACUUM
    XA
"""
_UNCHECKED = frozenset(_UNCHECKED_WORDS.split())
"""Session, transaction and maintenance commands. None of the rules reads them, so when one does
not parse (another dialect's syntax, one sqlglot does not model) it is accepted, not reported."""


@functools.cache
def _keywords(dialect: str) -> frozenset[str]:
    return frozenset(Dialect.get_or_raise(dialect).tokenizer_class.KEYWORDS)


def _clean_reason(text: str) -> str:
    """sqlglot's description, without Python reprs (and without literal values)."""
    m = re.match(r"Required keyword: '\w+' missing for <class '[\w.]*?(\w+)'>", text)
    if m:
        return f"incomplete {m.group(1).upper()}"

    def token(m: re.Match[str]) -> str:
        return repr(m.group(1)) if _WORD.match(m.group(1)) else "a literal"

    text = re.sub(r"<Token token_type: [^,]*, text: ([^,]*), [^>]*>", token, text)
    text = re.sub(r"<class '[\w.]*?(\w+)'>", r"\1", text)
    text = text.replace("Expecting )", "expected ')'")
    return text.replace("Invalid expression / Unexpected token", "unexpected token")


def _parse_one(text: str, dialect: str) -> exp.Expr | None:
    try:
        trees = sqlglot.parse(text, read=dialect)
    except ParseError as exc:
        first: dict[str, Any] = exc.errors[0] if exc.errors else {}
        reason = _clean_reason(str(first.get("description") or "invalid syntax"))
        near = str(first.get("highlight") or "").strip()
        before = str(first.get("start_context") or "").split()
        # Quote only words, never literals: captured statements may hold user data.
        if near and _WORD.match(near):
            reason += "" if repr(near) in reason else f" at {near!r}"
        elif before and _WORD.match(before[-1]):
            reason += f" after {before[-1]!r}"
        line, col = first.get("line"), first.get("col")
        if isinstance(col, int) and near and "\n" not in near:
            col = max(col - len(near) + 1, 1)  # sqlglot points at the token's last character
        raise _Unparsable(reason, line, col) from None
    except TokenError:
        raise _Unparsable("an unterminated string, quoted name or comment", None, None) from None
    except (RecursionError, ValueError, KeyError, TypeError, AttributeError) as exc:
        # sqlglot bugs on odd input must not stop a lint run over a whole project.
        raise _Unparsable(f"sqlglot failed ({type(exc).__name__})", None, None) from None
    found = [t for t in trees if t is not None]
    if len(found) > 1:
        if _ROUTINE.match(_words_outside_strings(text, dialect)):
            return None  # a trigger or routine body (BEGIN …; …; END): accepted, not checked
        raise _Unparsable("more than one statement without ';' between them", None, None)
    if found and isinstance(found[0], _NOT_STATEMENTS):
        # sqlglot reads a bare expression ("SELEC x" is a column with an alias) without error.
        word = _first_word(text, dialect)
        if word is not None and word.upper() in _UNCHECKED:
            return None
        what = f" (unknown keyword {word!r})" if word else ""
        raise _Unparsable(f"not a SQL statement{what}", None, None)
    return found[0] if found else None


_NOT_STATEMENTS = (exp.Condition, exp.Alias, exp.Identifier, exp.Star, exp.DataType)


# -- helpers over the tree ---------------------------------------------------------------------
def _unparen(node: exp.Expr) -> exp.Expr:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _is_value_column(col: exp.Column) -> bool:
    return col.name.startswith(PARAM_PREFIX) and not col.table


def _walk(node: exp.Expr, into_queries: bool = True) -> Iterator[exp.Expr]:
    yield node
    for child in node.iter_expressions():
        if into_queries or not isinstance(child, exp.Subquery | exp.Select):
            yield from _walk(child, into_queries)


def _columns(node: exp.Expr) -> list[exp.Column]:
    """Columns of ``node``, not those inside subqueries (another scope), nor interpolations."""
    return [
        n
        for n in _walk(node, into_queries=False)
        if isinstance(n, exp.Column)
        and not isinstance(n.this, exp.Star)
        and not _is_value_column(n)
    ]


def _offset(node: exp.Expr) -> int | None:
    """Where ``node`` starts in the parsed text (the first token sqlglot kept a position for)."""
    starts = [n.meta["start"] for n in _walk(node) if "start" in n.meta]
    return min(starts) if starts else None


def _shape(node: exp.Expr, dialect: str) -> str:
    """Readable text of a node with literals replaced (messages never carry values)."""
    text = fingerprint(node.sql(dialect=dialect), dialect).normalized
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True, slots=True)
class _Hit:
    node: exp.Expr
    message: str
    fix: str
    evidence: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Ctx:
    dialect: str
    text: str


_Check = Callable[["exp.Expr", _Ctx], Iterator[_Hit]]
RULES: dict[str, Rule] = {}
_CHECKS: dict[str, _Check] = {}


def _rule(rule_id: str, severity: Severity, summary: str) -> Callable[[_Check], _Check]:
    def register(check: _Check) -> _Check:
        RULES[rule_id] = Rule(rule_id, severity, summary)
        _CHECKS[rule_id] = check
        return check

    return register


RULES[PARSE_ERROR] = Rule(PARSE_ERROR, "warning", "The statement does not parse in the dialect.")


# -- the rules -----------------------------------------------------------------------------------
def _leftmost(node: exp.Expr) -> exp.Expr:
    node = _unparen(node)
    while True:
        if isinstance(node, exp.DPipe):
            node = _unparen(node.this)
        elif isinstance(node, exp.Concat | exp.ConcatWs) and node.expressions:
            parts = node.expressions[1:] if isinstance(node, exp.ConcatWs) else node.expressions
            if not parts:
                return node
            node = _unparen(parts[0])
        else:
            return node


_SEARCH_FIX = {
    "postgres": "a trigram index (CREATE EXTENSION pg_trgm; CREATE INDEX … USING gin "
    "(col gin_trgm_ops)) or full-text search",
    "mysql": "a FULLTEXT index with MATCH … AGAINST",
    "sqlite": "an FTS5 virtual table",
}


@_rule(
    "leading-wildcard-like",
    "warning",
    "LIKE/ILIKE with a pattern that starts with a wildcard cannot use a b-tree index.",
)
def _leading_wildcard(tree: exp.Expr, ctx: _Ctx) -> Iterator[_Hit]:
    for node in tree.find_all(exp.Like, exp.ILike):
        first = _leftmost(node.expression)
        if not (isinstance(first, exp.Literal) and first.is_string):
            continue
        pattern = first.this
        if not pattern or pattern[0] not in "%_":
            continue
        if first is _unparen(node.expression) and not pattern.strip("%"):
            continue  # LIKE '%' alone matches every non-NULL value: not a search
        op = "ILIKE" if isinstance(node, exp.ILike) else "LIKE"
        subject = _shape(node.this, ctx.dialect)
        yield _Hit(
            node,
            f"{subject} {op} '{pattern[0]}…' starts with a wildcard: no b-tree index on "
            f"{subject} can be used, every row is read",
            f"anchor the pattern at the start ('abc%') or use {_SEARCH_FIX[ctx.dialect]}",
            {"operator": op, "subject": subject, "wildcard": pattern[0]},
        )


_COMPARISONS = (
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.NullSafeEQ,
    exp.Like,
    exp.ILike,
    exp.In,
    exp.Between,
)
# Functions whose result is not "the column, transformed": aggregates and window calls are not
# allowed in WHERE anyway; JSON extraction is how a JSON column is read, not a defeated index.
_NOT_TRANSFORMS = tuple(
    t
    for t in (
        getattr(exp, name, None)
        for name in (
            "AggFunc",
            "JSONExtract",
            "JSONExtractScalar",
            "JSONBExtract",
            "JSONBExtractScalar",
            "Window",
        )
    )
    if isinstance(t, type)
)


def _clause(node: exp.Expr) -> str | None:
    """ "where" or "on" when ``node`` sits in a WHERE or a JOIN … ON of its own query."""
    child, parent = node, node.parent
    while parent is not None:
        if isinstance(parent, exp.Where):
            return "where"
        if isinstance(parent, exp.Join):
            return "on" if parent.args.get("on") is child else None
        if isinstance(parent, exp.Select | exp.Subquery | exp.Having | exp.Order | exp.Group):
            return None
        child, parent = parent, parent.parent
    return None


def _wrapped_column(side: exp.Expr) -> tuple[exp.Func, exp.Column] | None:
    side = _unparen(side)
    if not isinstance(side, exp.Func) or isinstance(side, _NOT_TRANSFORMS):
        return None
    cols = _columns(side)
    return (side, cols[0]) if cols else None


def _sides(cmp: exp.Expr) -> list[tuple[exp.Expr, list[exp.Expr]]]:
    if isinstance(cmp, exp.In):
        if cmp.args.get("query") is not None or cmp.args.get("unnest") is not None:
            return []
        return [(cmp.this, list(cmp.expressions))]
    if isinstance(cmp, exp.Between):
        return [(cmp.this, [cmp.args["low"], cmp.args["high"]])]
    left, right = cmp.this, cmp.expression
    return [(left, [right]), (right, [left])]


@_rule(
    "cast-on-column-in-where",
    "warning",
    "A cast or function around a column in WHERE/ON, compared to a value, defeats the index "
    "on that column.",
)
def _cast_on_column(tree: exp.Expr, ctx: _Ctx) -> Iterator[_Hit]:
    for cmp in tree.find_all(*_COMPARISONS):
        clause = _clause(cmp)
        if clause is None:
            continue
        for side, others in _sides(cmp):
            wrapped = _wrapped_column(side)
            if wrapped is None or any(o is None or _columns(o) for o in others):
                continue
            func, col = wrapped
            fname = (
                func.name.lower()
                if isinstance(func, exp.Anonymous)
                else "cast"
                if isinstance(func, exp.Cast)
                else func.sql_name().lower()
            )
            expr = _shape(func, ctx.dialect)
            where = "WHERE" if clause == "where" else "JOIN … ON"
            yield _Hit(
                cmp,
                f"{expr} in {where} wraps column {col.sql(dialect=ctx.dialect)}: an index on "
                "the column cannot be used for this comparison",
                f"compare the bare column (convert the value instead, e.g. a range for dates), "
                f"or create an index on the expression: CREATE INDEX … (({expr}))",
                {"clause": clause, "expression": expr, "column": col.name, "function": fname},
            )
            break


def _in_exists(select: exp.Select) -> bool:
    parent = select.parent
    while isinstance(parent, exp.Subquery | exp.Paren):
        parent = parent.parent
    return isinstance(parent, exp.Exists)


@_rule("select-star", "info", "SELECT * reads every column and breaks when columns change.")
def _select_star(tree: exp.Expr, ctx: _Ctx) -> Iterator[_Hit]:
    for select in tree.find_all(exp.Select):
        if _in_exists(select):
            continue
        for e in select.expressions:
            if isinstance(e, exp.Star) or (
                isinstance(e, exp.Column) and isinstance(e.this, exp.Star)
            ):
                yield _Hit(
                    e,
                    "SELECT * reads every column: more I/O and network, no index-only scans, and "
                    "results change shape when a column is added",
                    "name the columns the code uses",
                    {"projection": e.sql(dialect=ctx.dialect)},
                )
                break


@_rule(
    "update-or-delete-without-where",
    "error",
    "UPDATE or DELETE without WHERE changes every row of the table.",
)
def _no_where(tree: exp.Expr, ctx: _Ctx) -> Iterator[_Hit]:
    for node in tree.find_all(exp.Update, exp.Delete):
        if node.args.get("where") is not None:
            continue
        verb = "UPDATE" if isinstance(node, exp.Update) else "DELETE"
        target = node.this
        table = target.sql(dialect=ctx.dialect) if isinstance(target, exp.Table) else "the table"
        yield _Hit(
            node,
            f"{verb} of {table} has no WHERE: it changes every row and locks the whole table",
            "add the WHERE clause that selects the rows meant; to empty a table on purpose use "
            "TRUNCATE, or suppress with querywatch: ignore[update-or-delete-without-where]",
            {"statement": verb.lower(), "table": table},
        )


@_rule("deep-offset", "warning", f"A literal OFFSET of {DEEP_OFFSET} or more (slow deep paging).")
def _deep_offset(tree: exp.Expr, ctx: _Ctx) -> Iterator[_Hit]:
    for node in tree.find_all(exp.Offset):
        value = _unparen(node.expression) if node.expression is not None else None
        if not (isinstance(value, exp.Literal) and not value.is_string):
            continue
        try:
            offset = int(str(value.this))
        except ValueError:
            continue
        if offset < DEEP_OFFSET:
            continue
        yield _Hit(
            node,
            f"OFFSET {offset} reads and throws away {offset} rows before returning any: each "
            "page costs more than the last",
            "use keyset pagination: WHERE sort_key > :last_seen ORDER BY sort_key LIMIT n",
            {"offset": offset, "threshold": DEEP_OFFSET},
        )


@_rule(
    "not-in-subquery",
    "warning",
    "NOT IN (SELECT …): no rows at all once the subquery yields a NULL; often not an anti-join.",
)
def _not_in_subquery(tree: exp.Expr, ctx: _Ctx) -> Iterator[_Hit]:
    for node in tree.find_all(exp.Not):
        inner = _unparen(node.this)
        if isinstance(inner, exp.In) and inner.args.get("query") is not None:
            subject = _shape(inner.this, ctx.dialect)
            yield _Hit(
                node,
                f"{subject} NOT IN (SELECT …) is empty as soon as the subquery returns a NULL, "
                "and the planner often cannot turn it into an anti-join (a subplan per row)",
                "rewrite as NOT EXISTS (SELECT 1 FROM … WHERE inner.col = outer.col)",
                {"subject": subject},
            )


@_rule("order-by-random", "warning", "ORDER BY random() sorts the whole result to pick rows.")
def _order_by_random(tree: exp.Expr, ctx: _Ctx) -> Iterator[_Hit]:
    for node in tree.find_all(exp.Ordered):
        if isinstance(_unparen(node.this), exp.Rand):
            fn = _shape(_unparen(node.this), ctx.dialect)
            sample = {
                "postgres": "TABLESAMPLE SYSTEM (…) or a random key range",
                "mysql": "a random key range (WHERE id >= ? ORDER BY id LIMIT n)",
                "sqlite": "a random key range (WHERE rowid >= ? ORDER BY rowid LIMIT n)",
            }[ctx.dialect]
            yield _Hit(
                node,
                f"ORDER BY {fn} reads and sorts every matching row to return a few",
                f"pick random keys instead: {sample}, or sample in the application",
                {"function": fn},
            )


def _source_names(node: exp.Expr) -> str | None:
    if isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier):
        return node.alias_or_name.lower()
    return None


def _is_comma_join(join: exp.Join, ctx: _Ctx) -> bool:
    if join.args.get("on") is not None or join.args.get("using"):
        return False
    if join.args.get("side") or join.args.get("method"):
        return False
    kind = str(join.args.get("kind") or "").upper()
    if not kind:
        return True
    # SQLite's parser records "a, b" as a CROSS JOIN; a written CROSS JOIN is deliberate.
    return (
        kind == "CROSS"
        and ctx.dialect == "sqlite"
        and not re.search(r"\bcross\b", _words_outside_strings(ctx.text, "sqlite"), re.I)
    )


class _Groups:
    """Union-find over table names: which tables predicates link together."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        while self.parent.get(x, x) != x:
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


@_rule(
    "implicit-cross-join",
    "warning",
    "Tables listed with commas and no predicate linking them: a cartesian product.",
)
def _implicit_cross_join(tree: exp.Expr, ctx: _Ctx) -> Iterator[_Hit]:
    for select in tree.find_all(exp.Select):
        joins: list[exp.Join] = list(select.args.get("joins") or [])
        comma = [j for j in joins if _is_comma_join(j, ctx)]
        comma_ids = {id(j) for j in comma}
        from_ = select.args.get("from") or select.args.get("from_")
        first = _source_names(from_.this) if isinstance(from_, exp.From) else None
        if not comma or first is None:
            continue
        groups = _Groups()
        for j in joins:
            name = _source_names(j.this)
            if name is None:
                continue
            if id(j) not in comma_ids:  # an explicit join is linked on purpose
                groups.union(name, first)
        predicates: list[exp.Expr] = []
        where = select.args.get("where")
        if where is not None:
            predicates.extend(where.find_all(*_COMPARISONS))
        linked_all = False
        for pred in predicates:
            cols = _columns(pred)
            if len(cols) < 2:
                continue
            tables = {c.table.lower() for c in cols if c.table}
            if any(not c.table for c in cols):
                linked_all = True  # unqualified names: cannot tell which table, assume linked
                break
            ordered = sorted(tables)
            for a in ordered[1:]:
                groups.union(a, ordered[0])
        if linked_all:
            continue
        for j in comma:
            name = _source_names(j.this)
            if name is not None and groups.find(name) != groups.find(first):
                yield _Hit(
                    j,
                    f"{name} is joined with a comma and nothing in WHERE links it to {first}: "
                    "every row of one is paired with every row of the other",
                    f"write an explicit JOIN {name} ON … (or CROSS JOIN if the product is meant)",
                    {"table": name, "joined_to": first},
                )


# -- running the rules ---------------------------------------------------------------------------
def _locate(
    base: Location | None, sql: str, stmt: Statement, at: tuple[int, int] | None, mapped: bool
) -> Location | None:
    """The file position of ``at`` (line, column in the statement) given where ``sql`` starts."""
    if base is None or not mapped:
        return base
    line, col = _position(sql, stmt.offset)
    if at is not None:
        line, col = (line + at[0] - 1, at[1] if at[0] > 1 else col + at[1] - 1)
    return replace(
        base, line=base.line + line - 1, column=col if line > 1 else base.column + col - 1
    )


def _suppressed(rule: str, ignored: frozenset[str]) -> bool:
    return ALL_RULES in ignored or rule in ignored


def _at(stmt: Statement, node: exp.Expr) -> tuple[int, int] | None:
    offset = _offset(node)
    return None if offset is None or offset > len(stmt.text) else _position(stmt.text, offset)


def lint_sql(
    sql: str,
    dialect: str = "postgres",
    *,
    location: Location | None = None,
    map_positions: bool = True,
    strict: bool = False,
    rules: Iterable[str] | None = None,
) -> list[Finding]:
    """Lint every statement of ``sql`` (split at ``;``).

    ``location`` is where the text starts in a file; findings then point at the offending line
    (or all at ``location`` with ``map_positions=False``). A statement that does not parse is a
    ``parse-error`` finding, or :class:`LintParseError` with ``strict=True``. ``rules`` limits
    the run to those ids. ``Finding.sql`` is the normalized statement (no literal values).
    """
    name = _dialect(dialect)
    wanted = set(RULES) if rules is None else set(rules)
    unknown = wanted - set(RULES)
    if unknown:
        raise ConfigError(f"unknown lint rule(s): {', '.join(sorted(unknown))}")
    findings: list[Finding] = []
    for stmt in split_statements(sql, name):
        fp = fingerprint(stmt.text, name)
        try:
            tree = _parse(stmt.text, name)
        except _Unparsable as exc:
            at = (exc.line, exc.column) if exc.line and exc.column else None
            # With a file location the finding points at the line itself.
            shown = at and (strict or location is None or not map_positions)
            where = f" (line {exc.line}, column {exc.column})" if shown else ""
            message = f"cannot parse this statement as {name} SQL: {exc.reason}{where}"
            if strict:
                raise LintParseError(message) from None
            if PARSE_ERROR in wanted and not _suppressed(PARSE_ERROR, stmt.suppressed):
                findings.append(
                    Finding(
                        PARSE_ERROR,
                        "warning",
                        message,
                        f"fix the syntax, or lint with the right dialect (--dialect; this was "
                        f"{name}); nothing else was checked in this statement",
                        {"dialect": name, "reason": exc.reason},
                        fingerprint=fp.id,
                        sql=fp.normalized,
                        location=_locate(location, sql, stmt, at, map_positions),
                    )
                )
            continue
        if tree is None:
            continue
        ctx = _Ctx(name, stmt.text)
        for rule_id, check in _CHECKS.items():
            if rule_id not in wanted or _suppressed(rule_id, stmt.suppressed):
                continue
            for hit in check(tree, ctx):
                findings.append(
                    Finding(
                        rule_id,
                        RULES[rule_id].severity,
                        hit.message,
                        hit.fix,
                        hit.evidence,
                        fingerprint=fp.id,
                        sql=fp.normalized,
                        location=_locate(location, sql, stmt, _at(stmt, hit.node), map_positions),
                    )
                )
    return findings
