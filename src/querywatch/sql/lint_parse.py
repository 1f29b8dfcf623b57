"""From a statement's text to a syntax tree, for lint: whatever the code around it wrote.

Real statements carry bind parameters of every driver (``%s``, ``%(name)s``, ``?``, ``?1``,
``:name``, ``$1``, ``@name``) and, in source code, format holes (``{}``, ``{table}``, f-string
fields). Before sqlglot reads a statement every parameter becomes the one form the dialect parses
and every hole a marker identifier (``qw_hole_0_``); :class:`Rewrite` maps positions back to the
user's text and :meth:`Rewrite.unmark` turns markers back into the source text, so messages show
``{table}``, never a marker. A user-defined function named like a function sqlglot parses
specially (``convert(x)`` read as a CAST) is retried as a plain function call; SQLite's own parser
has the last word on SQLite syntax. The text is never truncated.
"""

from __future__ import annotations

import bisect
import functools
import logging
import re
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError

from querywatch.errors import ConfigError

__all__ = [
    "DIALECTS",
    "UNCHECKED",
    "Parsed",
    "Rewrite",
    "Unparsable",
    "dialect_name",
    "first_word",
    "glued_holes",
    "has_holes",
    "parse",
    "words_outside_strings",
]

# sqlglot logs "unsupported syntax, falling back to Command" for statements it does not model
# (VACUUM, triggers…). Those are not our findings, and the CLI's stderr must stay clean.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

DIALECTS = ("postgres", "sqlite", "mysql")
_ALIASES = {"postgresql": "postgres", "pg": "postgres", "mariadb": "mysql", "sqlite3": "sqlite"}

HOLE, FUNC = "qw_hole_", "qw_fn_"
_MARK = re.compile(r"[\"`\[]?(qw_(?:hole|fn)_\d+_)[\"`\]]?", re.IGNORECASE)

# -- lexing just enough: strings, comments, quoted names, parameters, holes, ";" ----------------
_COMMENT = r"(?P<c>--[^\n]*+|/\*[\s\S]*?(?:\*/|\Z))"
_PARAM = r"\$\d+|%\(\w+\)s|%s|\?\d*|(?<![:\w]):[A-Za-z_]\w*"
_HOLE = r"|(?P<h>\{[^{}\n]*\})"
_LEX = {
    "postgres": re.compile(
        _COMMENT + r"|(?P<s>(?<![\w$])[eE]'(?:[^'\\]|\\[\s\S]|'')*+'?|'(?:[^']|'')*+'?"
        r"|\$\$[\s\S]*?(?:\$\$|\Z)|\$(?P<tag>[A-Za-z_]\w*)\$[\s\S]*?(?:\$(?P=tag)\$|\Z))"
        r'|(?P<q>"(?:[^"]|"")*+"?)'
        rf"|(?P<p>{_PARAM}){_HOLE}|(?P<semi>;)"
    ),
    "mysql": re.compile(
        r"(?P<c>(?:--(?=\s|\Z)|#)[^\n]*+|/\*[\s\S]*?(?:\*/|\Z))"
        r"""|(?P<s>'(?:[^'\\]|\\[\s\S]|'')*+'?|"(?:[^"\\]|\\[\s\S]|"")*+"?)"""
        rf"|(?P<q>`(?:[^`]|``)*+`?)|(?P<p>{_PARAM}){_HOLE}|(?P<semi>;)"
    ),
    "sqlite": re.compile(
        _COMMENT + r"|(?P<s>'(?:[^']|'')*+'?)"
        r'|(?P<q>"(?:[^"]|"")*+"?|`(?:[^`]|``)*+`?|\[[^\]]*+\]?)'
        rf"|(?P<p>{_PARAM}|(?<![\w@$])[@$][A-Za-z_]\w*){_HOLE}|(?P<semi>;)"
    ),
}
_CANON_PARAM = {"postgres": "%s", "mysql": "?", "sqlite": "?"}
"""The one parameter form sqlglot reads everywhere in each dialect (``?::int`` does not parse
in postgres, ``%s`` does not in sqlite or mysql)."""
_WORD = re.compile(r"[A-Za-z_][\w.]{0,39}\Z")


def dialect_name(dialect: str) -> str:
    """The canonical dialect name (``postgresql`` → ``postgres``), or :class:`ConfigError`."""
    name = str(dialect).lower()
    name = _ALIASES.get(name, name)
    if name not in DIALECTS:
        raise ConfigError(
            f"unknown SQL dialect {dialect!r}: use {', '.join(DIALECTS)}", setting="dialect"
        )
    return name


def lexer(dialect: str) -> re.Pattern[str]:
    return _LEX[dialect]


def words_outside_strings(text: str, dialect: str) -> str:
    """The text with strings, comments and quoted names blanked: keywords, names, parameters
    and holes stay."""
    return _LEX[dialect].sub(lambda m: m.group() if m.group("p") or m.group("h") else " ", text)


def first_word(text: str, dialect: str) -> str | None:
    code = _LEX[dialect].sub(lambda m: " " if m.group("c") is not None else m.group(), text)
    m = re.match(r"\s*([A-Za-z_]\w*)", code)
    return m.group(1) if m and _WORD.match(m.group(1)) else None


def has_holes(text: str, dialect: str) -> bool:
    """True when the text has format holes (``{}``, ``{name}``) outside strings: its real text
    is only known at run time."""
    return any(m.group("h") for m in _LEX[dialect].finditer(text))


def glued_holes(text: str, dialect: str) -> bool:
    """True when two holes touch (``{sets}{where}``): what they hold together, a clause or a
    name, is unknown."""
    last_end = -1
    for m in _LEX[dialect].finditer(text):
        if m.group("h") is not None:
            if m.start() == last_end:
                return True
            last_end = m.end()
    return False


# -- rewriting with a position map -----------------------------------------------------------------
@dataclass(slots=True)
class Rewrite:
    """The text sqlglot reads, and how to get back to the user's text (positions, markers)."""

    original: str
    text: str = ""
    marks: dict[str, str] = field(default_factory=dict)  # lowercase marker -> source text
    _new: list[int] = field(default_factory=list)  # start of each replaced span in ``text``
    _spans: list[tuple[int, int, int]] = field(default_factory=list)  # new_end, old_start, old_end

    @classmethod
    def build(cls, original: str, dialect: str, rename: frozenset[str] = frozenset()) -> Rewrite:
        """Parameters to the dialect's form, holes to markers (a hole glued to a word stays
        part of that name: ``logs_{year}``), functions in ``rename`` (upper case) to markers."""
        out = cls(original)
        parts: list[str] = []
        pos = 0
        size = 0  # len("".join(parts)), kept as it grows: summing per match is quadratic
        canon = _CANON_PARAM[dialect]
        for m in _LEX[dialect].finditer(original):
            new: str | None = None
            glued = m.start() > 0 and (
                original[m.start() - 1].isalnum() or original[m.start() - 1] == "_"
            )
            if m.group("p") is not None and glued:
                new = out._mark(HOLE, m.group())  # a generated name's suffix (t? normalized)
            elif m.group("p") is not None:
                new = canon
            elif m.group("h") is not None:
                new = out._mark(HOLE, m.group())
            if new is None:
                continue
            parts.append(original[pos : m.start()])
            size += m.start() - pos
            out._add(size, new, m.start(), m.end())
            parts.append(new)
            size += len(new)
            pos = m.end()
        parts.append(original[pos:])
        out.text = "".join(parts)
        if rename:
            out._rename(rename, dialect)
        return out

    def _mark(self, prefix: str, source: str) -> str:
        marker = f"{prefix}{len(self.marks)}_"
        self.marks[marker] = source
        return marker

    def _add(self, new_start: int, new: str, old_start: int, old_end: int) -> None:
        self._new.append(new_start)
        self._spans.append((new_start + len(new), old_start, old_end))

    def _rename(self, names: frozenset[str], dialect: str) -> None:
        """Function calls named in ``names`` become marker calls (a second pass over ``text``)."""
        code = words_outside_strings(self.text, dialect)
        hits = [
            m
            for m in re.finditer(r"(?<![\w.$])([A-Za-z_]\w*)(?=\s*\()", code)
            if m.group(1).upper() in names
        ]
        for m in reversed(hits):
            self.replace(m.start(1), m.end(1), self._mark(FUNC, m.group(1)))

    def replace(self, start: int, end: int, new: str) -> None:
        """Replace ``text[start:end]`` (a span not yet replaced) and keep the position map."""
        old_start, old_end = self.original_offset(start), self.original_offset(end)
        self.text = self.text[:start] + new + self.text[end:]
        shift = len(new) - (end - start)
        i = bisect.bisect_right(self._new, start)
        self._new[i:] = [n + shift for n in self._new[i:]]
        self._spans[i:] = [(e + shift, a, b) for e, a, b in self._spans[i:]]
        self._new.insert(i, start)
        self._spans.insert(i, (start + len(new), old_start, old_end))

    def original_offset(self, offset: int) -> int:
        """Where ``offset`` of :attr:`text` is in the user's text."""
        i = bisect.bisect_right(self._new, offset) - 1
        if i < 0:
            return offset
        new_end, old_start, old_end = self._spans[i]
        if offset < new_end:  # inside a replaced span: its start
            return old_start
        return old_end + (offset - new_end)

    def unmark(self, text: str) -> str:
        """``text`` (a message, an expression) with markers back as the user wrote them."""
        if not self.marks:
            return text
        return _MARK.sub(lambda m: self.marks.get(m.group(1).lower(), m.group()), text)

    def unmark_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.unmark(value)
        if isinstance(value, dict):
            return {k: self.unmark_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.unmark_value(v) for v in value)
        return value

    def is_hole(self, name: str) -> bool:
        return name.lower().startswith(HOLE) and name.lower() in self.marks


# -- parsing ---------------------------------------------------------------------------------
class Unparsable(Exception):
    """sqlglot (and, for SQLite, SQLite itself) could not read the statement."""

    def __init__(
        self, reason: str, line: int | None, column: int | None, at: int | None = None
    ) -> None:
        super().__init__(reason)
        self.reason, self.line, self.column = reason, line, column
        self.at = at  # offset of the word sqlglot stopped at, in the text it parsed


@dataclass(frozen=True, slots=True)
class Parsed:
    """``tree`` is None for a statement accepted but not checked (a session command, a routine
    body, SQLite syntax sqlglot does not know); ``dialect`` is set when the statement only
    parsed as another dialect's SQL (rules then judge it, and advise, in that dialect)."""

    tree: exp.Expr | None
    rewrite: Rewrite
    dialect: str | None = None  # another dialect the statement parsed in, when not the one asked


def parse(text: str, dialect: str) -> Parsed:
    """Parse one statement; :class:`Unparsable` (positions in ``text``) when it does not."""
    rewrite = Rewrite.build(text, dialect)
    try:
        return Parsed(_parse_one(rewrite, dialect), rewrite)
    except Unparsable as first:
        word = first_word(text, dialect)
        if word is not None and word.upper() in UNCHECKED:
            return Parsed(None, rewrite)  # another dialect's session or maintenance command
        if word is not None and word.upper() not in _keywords(dialect):
            # "SELEC id FROM t": the typo, not sqlglot's complaint further on, is the news.
            raise Unparsable(f"not a SQL statement (unknown keyword {word!r})", 1, 1) from None
        special = _special_functions(dialect)
        if any(w.upper() in special for w in re.findall(r"(\w+)\s*\(", rewrite.text)):
            # A user-defined function named like one sqlglot parses specially (convert(x) is
            # not MySQL's CONVERT(x USING …)): read such calls as plain function calls.
            again = Rewrite.build(text, dialect, special)
            try:
                return Parsed(_parse_one(again, dialect), again)
            except Unparsable:
                pass
        unarrayed = _array_casts_as_scalar(text, dialect)
        if unarrayed is not None:
            return unarrayed
        quoted = _quote_keywords(text, dialect, first)
        if quoted is not None:
            return quoted
        if dialect == "sqlite" and _sqlite_accepts(rewrite.text):
            return Parsed(None, rewrite)
        for other in DIALECTS:
            # A library that supports several databases holds each one's SQL (``?::regclass``
            # in a project linted as SQLite): read it as the dialect it is written in.
            if other != dialect:
                again = Rewrite.build(text, other)
                try:
                    return Parsed(_parse_one(again, other), again, other)
                except Unparsable:
                    continue
        raise first from None


_ARRAY_CAST = re.compile(r"(?:::|\bAS)\s*[A-Za-z_]\w*(\s*\[\s*\])", re.IGNORECASE)


def _array_casts_as_scalar(text: str, dialect: str) -> Parsed | None:
    """Retry with ``::regtype[]`` read as ``::regtype``: sqlglot cannot parse an array of some
    types it knows by name (``regtype``, ``oid``), which PostgreSQL's catalog queries use. No
    rule judges whether a cast's target is an array."""
    if dialect != "postgres":
        return None
    rewrite = Rewrite.build(text, dialect)
    code = words_outside_strings(rewrite.text, dialect)
    spans = [m.span(1) for m in _ARRAY_CAST.finditer(code)]
    if not spans:
        return None
    for start, end in reversed(spans):
        rewrite.replace(start, end, "")
    try:
        return Parsed(_parse_one(rewrite, dialect), rewrite)
    except Unparsable:
        return None


_QUOTE = {"postgres": '"', "sqlite": '"', "mysql": "`"}


def _quote_keywords(text: str, dialect: str, error: Unparsable, tries: int = 4) -> Parsed | None:
    """Retry with the keyword sqlglot stopped at quoted as a name, when it stands in a list of
    names: ``lock`` or ``key`` are column names in real schemas, and the database reads them so."""
    rewrite = Rewrite.build(text, dialect)
    q = _QUOTE[dialect]
    for _ in range(tries):
        at = error.at
        m = re.match(r"[A-Za-z_]\w*", rewrite.text[at:]) if at is not None else None
        if at is None or m is None or m.group().upper() not in _keywords(dialect):
            return None
        before, after = rewrite.text[:at].rstrip()[-1:], rewrite.text[at + m.end() :].lstrip()[:1]
        if before not in (",", "(", ".") and after not in (",", ")", "."):
            return None  # a keyword where a name is listed (SELECT id, lock, …), not a clause
        rewrite.replace(at, at + m.end(), f"{q}{m.group()}{q}")
        try:
            return Parsed(_parse_one(rewrite, dialect), rewrite)
        except Unparsable as again:
            error = again
    return None


def _offset_of(text: str, line: int, col: int) -> int:
    start = 0
    for _ in range(line - 1):
        start = text.find("\n", start) + 1
    return start + col - 1


def _position_in(text: str, offset: int) -> tuple[int, int]:
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _parse_one(rewrite: Rewrite, dialect: str) -> exp.Expr | None:
    text, original = rewrite.text, rewrite.original
    try:
        trees = sqlglot.parse(text, read=dialect)
    except ParseError as exc:
        first: dict[str, Any] = exc.errors[0] if exc.errors else {}
        reason = _clean_reason(str(first.get("description") or "invalid syntax"))
        near = str(first.get("highlight") or "").strip()
        before = str(first.get("start_context") or "").split()
        # Quote only words, never literals: captured statements may hold user data.
        if near and _WORD.match(near) and not near.lower().startswith(("qw_hole_", "qw_fn_")):
            reason += "" if repr(near) in reason else f" at {near!r}"
        elif before and _WORD.match(before[-1]):
            reason += f" after {before[-1]!r}"
        line, col = first.get("line"), first.get("col")
        at = None
        if isinstance(col, int) and near and "\n" not in near:
            col = max(col - len(near) + 1, 1)  # sqlglot points at the token's last character
        if isinstance(line, int) and isinstance(col, int):
            at = _offset_of(text, line, col) if near and _WORD.match(near) else None
            if text != original:
                line, col = _position_in(
                    original, rewrite.original_offset(_offset_of(text, line, col))
                )
        raise Unparsable(reason, line, col, at) from None
    except TokenError:
        raise Unparsable("an unterminated string, quoted name or comment", None, None) from None
    except (RecursionError, ValueError, KeyError, TypeError, AttributeError) as exc:
        # sqlglot bugs on odd input must not stop a lint run over a whole project.
        raise Unparsable(f"sqlglot failed ({type(exc).__name__})", None, None) from None
    found = [t for t in trees if t is not None]
    if len(found) > 1:
        if ROUTINE.match(words_outside_strings(text, dialect)):
            return None  # a trigger or routine body (BEGIN …; …; END): accepted, not checked
        raise Unparsable("more than one statement without ';' between them", None, None)
    if found and isinstance(found[0], _NOT_STATEMENTS):
        # sqlglot reads a bare expression ("SELEC x" is a column with an alias) without error.
        word = first_word(original, dialect)
        if word is not None and word.upper() in UNCHECKED:
            return None
        what = f" (unknown keyword {word!r})" if word else ""
        raise Unparsable(f"not a SQL statement{what}", None, None)
    return found[0] if found else None


_NOT_STATEMENTS = (exp.Condition, exp.Alias, exp.Identifier, exp.Star, exp.DataType)
ROUTINE = re.compile(r"\s*create\b[^;]*?\b(?:trigger|procedure|function)\b", re.I)

UNCHECKED_WORDS = """
    ABORT ANALYZE ATTACH BEGIN BINLOG CALL CHANGE CHECKPOINT CHECKSUM CLOSE CLUSTER COMMENT
    COMMIT COPY DEALLOCATE DECLARE DESC DESCRIBE DETACH DISCARD DO DROP END EXECUTE EXPLAIN FETCH
    FLUSH GET GRANT HANDLER HELP IMPORT INSTALL KILL LISTEN LOAD LOCK MOVE NOTIFY OPTIMIZE
    PRAGMA PREPARE PURGE REASSIGN REFRESH REINDEX RELEASE REPAIR RESET RESIGNAL REVOKE ROLLBACK
    SAVEPOINT SECURITY SET SHOW SIGNAL START STOP TRUNCATE UNINSTALL UNLISTEN UNLOCK USE VACUUM
    XA
"""
UNCHECKED = frozenset(UNCHECKED_WORDS.split())
"""Session, transaction and maintenance commands, and DROP. None of the rules reads them, so
when one does not parse (another dialect's syntax, one sqlglot does not model) it is accepted,
not reported."""


@functools.cache
def _keywords(dialect: str) -> frozenset[str]:
    return frozenset(Dialect.get_or_raise(dialect).tokenizer_class.KEYWORDS)


@functools.cache
def _special_functions(dialect: str) -> frozenset[str]:
    """Function names sqlglot parses with a grammar of their own (CAST, CONVERT, EXTRACT…)."""
    return frozenset(Dialect.get_or_raise(dialect).parser_class.FUNCTION_PARSERS)


def _clean_reason(text: str) -> str:
    """sqlglot's description, without Python reprs, internal tokens or literal values."""
    m = re.match(r"Required keyword: '\w+' missing for <class '[\w.]*?(\w+)'>", text)
    if m:
        return f"incomplete {m.group(1).upper()}"

    def token(m: re.Match[str]) -> str:
        if m.group(1) == "TokenType.SENTINEL":
            return "the end of the statement"
        return repr(m.group(2)) if _WORD.match(m.group(2)) else "a literal"

    text = re.sub(r"<Token token_type: ([\w.]*), text: ([^,]*), [^>]*>", token, text)
    text = re.sub(r"<class '[\w.]*?(\w+)'>", r"\1", text)
    text = text.replace("Expecting )", "expected ')'")
    text = text.replace("Expected table name but got", "expected a table name, got")
    return text.replace("Invalid expression / Unexpected token", "unexpected token")


_SQLITE_SYNTAX = ("syntax error", "incomplete input", "unrecognized token")


def _sqlite_accepts(text: str) -> bool:
    """True when SQLite's own parser accepts ``text`` (sqlglot does not know all of SQLite).

    The statement is only compiled (EXPLAIN), on an empty in-memory database whose authorizer
    denies everything: a missing table, function or permission means the syntax was fine.
    """
    db = sqlite3.connect(":memory:")
    try:
        db.set_authorizer(lambda *_: sqlite3.SQLITE_DENY)
        db.execute("EXPLAIN " + text)
    except sqlite3.Warning:  # more than one statement
        return False
    except sqlite3.Error as exc:
        return not any(s in str(exc) for s in _SQLITE_SYNTAX)
    finally:
        db.close()
    return True
