"""What the plan code must know about a statement's text before sending it to EXPLAIN.

A small lexer (quotes, dollar quotes, comments) rather than a parser: it must accept every statement
the server accepts, including ones sqlglot cannot read, and answer only safe questions: is this one
statement, which bind placeholders does it use, is it a plain read (the only kind EXPLAIN ANALYZE
may run), and what are its literal LIMIT / OFFSET.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from querywatch.plans.model import Dialect

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_QMARK = re.compile(r"\?\d*")
_PLACEHOLDER = re.compile(r"\$\d+|%(?:\([A-Za-z_][A-Za-z0-9_]*\))?s\b")

WRITE_WORDS = frozenset(
    {
        "INSERT",
        "UPDATE",
        "DELETE",
        "MERGE",
        "INTO",  # SELECT … INTO creates a table
        "COPY",
        "CALL",
        "DO",
        "TRUNCATE",
        "CREATE",
        "ALTER",
        "DROP",
        "GRANT",
        "REVOKE",
        "LOCK",
        "SET",
        "NEXTVAL",
        "SETVAL",
        "REFRESH",
        "VACUUM",
        "ANALYZE",
        "CLUSTER",
        "REINDEX",
        "NOTIFY",
        "LISTEN",
    }
)
"""Words that disqualify a statement from EXPLAIN ANALYZE, which really runs it. Conservative on
purpose (a ``FOR UPDATE`` takes row locks, so it is kept out too). The read-only, rolled-back
transaction ANALYZE runs in is the second line of defence.
"""

READ_STARTS = frozenset({"SELECT", "WITH", "VALUES", "TABLE"})


@dataclass(slots=True)
class LexedStatement:
    """The lexer's answers about one SQL text."""

    text: str  # the statement without a trailing semicolon
    first_word: str  # upper-cased first keyword ("" when there is none)
    words: set[str] = field(default_factory=set)  # upper-cased keywords outside quotes/comments
    placeholders: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, token)
    extra_statements: bool = False  # text after the first top-level semicolon

    @property
    def parameterized(self) -> bool:
        return bool(self.placeholders)

    @property
    def is_plain_read(self) -> bool:
        """A SELECT (or WITH/VALUES/TABLE) that writes nothing, locks nothing, calls no setter."""
        return self.first_word in READ_STARTS and not (self.words & WRITE_WORDS)


def scan(sql: str, dialect: Dialect = "postgres") -> LexedStatement:
    """Lex ``sql``: statement boundary, keywords and bind placeholders outside quotes/comments."""
    text = sql.strip()
    words: set[str] = set()
    first = ""
    placeholders: list[tuple[int, int, str]] = []
    extra = False
    end = len(text)
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "-" and text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
        elif ch == "/" and text.startswith("/*", i):
            i = _skip_block_comment(text, i)
        elif ch == "'":
            i = _skip_quoted(text, i, "'", backslash=_is_escape_string(text, i))
        elif ch == '"' or (ch == "`" and dialect == "sqlite"):
            i = _skip_quoted(text, i, ch, backslash=False)
        elif ch == "[" and dialect == "sqlite":
            j = text.find("]", i + 1)
            i = n if j < 0 else j + 1
        elif ch == "$" and dialect == "postgres" and (m := _DOLLAR_TAG.match(text, i)):
            if i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_"):
                i += 1  # part of an identifier such as a$b
                continue
            close = text.find(m.group(0), m.end())
            i = n if close < 0 else close + len(m.group(0))
        elif ch in "$%" and (m := _PLACEHOLDER.match(text, i)):
            placeholders.append((i, m.end(), m.group(0)))
            i = m.end()
        elif ch == "?" and dialect == "sqlite":
            m2 = _QMARK.match(text, i)
            assert m2 is not None
            placeholders.append((i, m2.end(), m2.group(0)))
            i = m2.end()
        elif ch in ":@$" and dialect == "sqlite" and (m := _WORD.match(text, i + 1)):
            placeholders.append((i, m.end(), text[i : m.end()]))
            i = m.end()
        elif ch == ";":
            rest = scan_rest_is_empty(text[i + 1 :])
            end = i
            extra = not rest
            break
        elif ch.isalpha() or ch == "_":
            m = _WORD.match(text, i)
            assert m is not None
            word = m.group(0).upper()
            if not first:
                first = word
            words.add(word)
            i = m.end()
        else:
            i += 1
    return LexedStatement(
        text=text[:end].rstrip(),
        first_word=first,
        words=words,
        placeholders=placeholders,
        extra_statements=extra,
    )


def scan_rest_is_empty(rest: str) -> bool:
    """True when ``rest`` holds only whitespace, comments and semicolons."""
    i, n = 0, len(rest)
    while i < n:
        if rest[i].isspace() or rest[i] == ";":
            i += 1
        elif rest.startswith("--", i):
            j = rest.find("\n", i)
            i = n if j < 0 else j + 1
        elif rest.startswith("/*", i):
            i = _skip_block_comment(rest, i)
        else:
            return False
    return True


def postgres_placeholders(stmt: LexedStatement) -> tuple[str, int]:
    """The statement with ``%s`` / ``%(name)s`` turned into ``$n``, and the number of parameters.

    ``$n`` placeholders (pg_stat_statements' normalized text) stay as they are; driver-style ones
    are numbered after the highest ``$n`` so the two can never collide.
    """
    highest = max((int(t[1:]) for _, _, t in stmt.placeholders if t.startswith("$")), default=0)
    out: list[str] = []
    last = 0
    names: dict[str, int] = {}
    count = highest
    for start, end, token in stmt.placeholders:
        if token.startswith("$"):
            continue
        out.append(stmt.text[last:start])
        if token.startswith("%("):
            name = token[2:-2]
            if name not in names:
                count += 1
                names[name] = count
            number = names[name]
        else:
            count += 1
            number = count
        out.append(f"${number}")
        last = end
    out.append(stmt.text[last:])
    return "".join(out), count


def sqlite_placeholders(stmt: LexedStatement) -> tuple[str, int]:
    """The statement with every placeholder turned into ``?``, and how many there are.

    EXPLAIN QUERY PLAN needs a value bound to each; binding NULL to all of them is enough because
    SQLite's plan does not depend on the values.
    """
    out: list[str] = []
    last = 0
    for start, end, _token in stmt.placeholders:
        out.append(stmt.text[last:start])
        out.append("?")
        last = end
    out.append(stmt.text[last:])
    return "".join(out), len(stmt.placeholders)


def limit_offset(sql: str, dialect: Dialect) -> tuple[int | None, int | None]:
    """The outermost query's literal LIMIT and OFFSET (None: absent, a parameter, unparsable)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except (SqlglotError, ValueError, RecursionError):
        return None, None
    if not isinstance(tree, exp.Query):
        return None, None

    def literal(node: exp.Expression | None) -> int | None:
        if node is None:
            return None
        value = node.args.get("expression") or node.this
        if isinstance(value, exp.Literal) and not value.is_string:
            try:
                return int(value.this)
            except ValueError:
                return None
        return None

    limit = tree.args.get("limit")
    offset = tree.args.get("offset")
    if limit is not None and offset is None:
        offset = limit.args.get("offset")  # MySQL-style LIMIT o, n
    return literal(limit), literal(offset)


def _skip_block_comment(text: str, i: int) -> int:
    depth = 0
    n = len(text)
    while i < n:
        if text.startswith("/*", i):
            depth += 1
            i += 2
        elif text.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return n


def _is_escape_string(text: str, i: int) -> bool:
    return (
        i > 0
        and text[i - 1] in "eE"
        and (i == 1 or not (text[i - 2].isalnum() or text[i - 2] == "_"))
    )


def _skip_quoted(text: str, i: int, quote: str, *, backslash: bool) -> int:
    n = len(text)
    j = i + 1
    while j < n:
        c = text[j]
        if backslash and c == "\\":
            j += 2
            continue
        if c == quote:
            if j + 1 < n and text[j + 1] == quote:
                j += 2
                continue
            return j + 1
        j += 1
    return n
