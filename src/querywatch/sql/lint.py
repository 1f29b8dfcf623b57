"""Static SQL lint: rules that judge a statement's shape, before it ever runs.

The report's outage was one query that could not use an index on a large table. Some such shapes
are visible in the text alone (a leading-wildcard LIKE, a function around an indexed column, a
deep OFFSET…), so they are caught here, in review and CI, from source code and from captured
statements. Static lint cannot know table sizes; the plan rules judge sizes.

This module is the runner: it splits a text into statements, reads ``querywatch: ignore[…]``
comments, parses each statement (:mod:`querywatch.sql.lint_parse`: placeholders of every driver,
format holes, user-defined functions) and runs :data:`querywatch.sql.rules.RULES`. A statement
that does not parse is an ``info`` ``parse-error`` finding (or :class:`LintParseError` with
``strict=True``), never a crash; with ``pieces=True`` (SQL found in source code) a piece of a
statement that a query builder completes later is counted as a fragment, not reported.

Findings carry their rule's severity: what the shape costs when the table is large. A rule marked
``needs_plan`` cannot see whether it is (nor the indexes); :func:`without_plan` gives such findings
the severity they have where no plan judged the statement (``info``), which is what `querywatch
lint` reports unless told to assume large tables.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from sqlglot import exp

from querywatch.errors import ConfigError, QuerywatchError
from querywatch.findings import Finding, Location, Rule
from querywatch.sql.fingerprint import fingerprint
from querywatch.sql.lint_parse import (
    DIALECTS,
    ROUTINE,
    Parsed,
    Rewrite,
    Unparsable,
    dialect_name,
    glued_holes,
    has_holes,
    lexer,
    parse,
    words_outside_strings,
)
from querywatch.sql.lint_pieces import incomplete_piece
from querywatch.sql.rules import PARSE_ERROR as PARSE_ERROR_RULE
from querywatch.sql.rules import RULES as RULE_LIST
from querywatch.sql.rules import Ctx, Hit
from querywatch.sql.rules._base import reads_only_catalog

__all__ = [
    "ALL_RULES",
    "DIALECTS",
    "PARSE_ERROR",
    "RULES",
    "LintParseError",
    "LintResult",
    "SourceStatement",
    "lint_sql",
    "lint_text",
    "parse_suppressions",
    "split_statements",
    "without_plan",
]

PARSE_ERROR = PARSE_ERROR_RULE.id
ALL_RULES = "*"
"""In a suppression set: every rule (a bare ``querywatch: ignore``)."""

_ALL: tuple[Rule[Callable[..., Any]], ...] = (*RULE_LIST, PARSE_ERROR_RULE)
RULES: Mapping[str, Rule[Callable[..., Any]]] = MappingProxyType({r.id: r for r in _ALL})
"""Every lint rule by id, ``parse-error`` included (the ordered list is ``sql.rules.RULES``)."""


class LintParseError(QuerywatchError):
    """A statement that does not parse in the chosen dialect (raised only with ``strict=True``)."""


@dataclass(frozen=True, slots=True)
class SourceStatement:
    """One statement of a text: where it starts (offset, 1-based line and column) and the rules
    its own comments suppress."""

    text: str
    offset: int
    line: int
    column: int
    suppressed: frozenset[str]


@dataclass(slots=True)
class LintResult:
    """Findings, and how much was looked at: statements linted, fragments skipped."""

    findings: list[Finding] = field(default_factory=list)
    statements: int = 0
    fragments: int = 0


def without_plan(findings: Iterable[Finding]) -> list[Finding]:
    """The findings as they stand where no plan judged their statement: those of a rule that
    needs a plan (its verdict depends on table sizes and indexes the text cannot show) become
    ``info``, with ``needs_plan`` in their evidence; the others are unchanged."""
    out: list[Finding] = []
    for f in findings:
        rule = RULES.get(f.rule)
        if rule is not None and rule.needs_plan:
            f = replace(f, severity="info", evidence={**f.evidence, "needs_plan": True})
        out.append(f)
    return out


_IGNORE = re.compile(r"querywatch:\s*ignore(?:\[([^\]]*)\])?", re.IGNORECASE)


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


def split_statements(text: str, dialect: str = "postgres") -> list[SourceStatement]:
    """Split a text into statements at top-level ``;`` (not inside strings, quoted names,
    comments or dollar quotes); comment-only pieces are dropped.

    A comment after a statement's ``;`` on the same line belongs to that statement, so
    ``SELECT …; -- querywatch: ignore[select-star]`` works as it reads.
    """
    name = dialect_name(dialect)
    lex = lexer(name)
    pieces: list[tuple[int, int, list[str]]] = []  # start, end, comments
    start, last, comments = 0, 0, []
    same_line_as: int | None = None  # the statement whose ";" is on this line, nothing since
    for m in lex.finditer(text):
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
    out: list[SourceStatement] = []
    for begin, end, notes in pieces:
        chunk = text[begin:end]
        blanked = lex.sub(lambda m: " " * len(m.group()) if m.group("c") else m.group(), chunk)
        if not blanked.strip():
            continue
        # Parse from the first character of code (leading comments were read for suppressions)
        # so positions are the statement's own.
        lead = len(blanked) - len(blanked.lstrip())
        line, column = _position(text, begin + lead)
        suppressed = frozenset().union(*(parse_suppressions(n) for n in notes))
        out.append(SourceStatement(chunk[lead:].rstrip(), begin + lead, line, column, suppressed))
    return out


def _inside_body(piece: str, dialect: str) -> bool:
    """True at a ";" inside a trigger's or routine's BEGIN … END body (SQLite, MySQL)."""
    code = words_outside_strings(piece, dialect)
    if not ROUTINE.match(code):
        return False
    return len(_OPENS.findall(code)) > len(_CLOSES.findall(code))


_OPENS = re.compile(r"\b(?:begin|case)\b", re.I)
_CLOSES = re.compile(r"\bend\b(?!\s+(?:if|loop|while|repeat)\b)", re.I)


# -- running the rules ---------------------------------------------------------------------------
def _locate(
    base: Location | None, sql: str, stmt: SourceStatement, at: tuple[int, int] | None, mapped: bool
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


def _at(stmt: SourceStatement, node: exp.Expr, rewrite: Rewrite) -> tuple[int, int] | None:
    """Line and column in the statement's own text where ``node`` starts."""
    starts = [n.meta["start"] for n in node.walk() if "start" in n.meta]
    if not starts:
        return None
    offset = rewrite.original_offset(min(starts))
    return None if offset > len(stmt.text) else _position(stmt.text, offset)


def _hole_as_alias(tree: exp.Expr, rewrite: Rewrite) -> bool:
    """A hole written right after a name (``DELETE FROM t {where}``) parses as an alias, but may
    hold a whole clause: the statement's shape is unknown."""
    for node in tree.find_all(exp.TableAlias, exp.Alias):
        name = node.alias if isinstance(node, exp.Alias) else node.name
        if rewrite.is_hole(name) and not re.search(
            rf"\bAS\s+{re.escape(name)}", rewrite.text, re.IGNORECASE
        ):
            return True
    return False


def lint_sql(
    sql: str,
    dialect: str = "postgres",
    *,
    location: Location | None = None,
    map_positions: bool = True,
    strict: bool = False,
    rules: Iterable[str] | None = None,
) -> list[Finding]:
    """The findings of :func:`lint_text` (every statement of ``sql``, split at ``;``)."""
    return lint_text(
        sql,
        dialect,
        location=location,
        map_positions=map_positions,
        strict=strict,
        rules=rules,
    ).findings


def lint_text(
    sql: str,
    dialect: str = "postgres",
    *,
    location: Location | None = None,
    map_positions: bool = True,
    strict: bool = False,
    rules: Iterable[str] | None = None,
    pieces: bool = False,
) -> LintResult:
    """Lint every statement of ``sql`` (split at ``;``), never truncated.

    ``location`` is where the text starts in a file; findings then point at the offending line
    (or all at ``location`` with ``map_positions=False``). A statement that does not parse is a
    ``parse-error`` finding, or :class:`LintParseError` with ``strict=True``. ``rules`` limits
    the run to those ids. ``pieces=True`` says the text was found in source code and may be a
    piece of a statement (``"SELECT * FROM "``, ``" AND x = ?"``): such a piece, or a text with
    format holes that does not parse, is counted in ``fragments`` and not reported.
    ``Finding.sql`` is the normalized statement (no literal values).
    """
    name = dialect_name(dialect)
    wanted = set(RULES) if rules is None else set(rules)
    unknown = wanted - set(RULES)
    if unknown:
        raise ConfigError(f"unknown lint rule(s): {', '.join(sorted(unknown))}")
    result = LintResult()
    pending = split_statements(sql, name)
    while pending:
        stmt = pending.pop(0)
        if pieces and (incomplete_piece(stmt.text, name) or glued_holes(stmt.text, name)):
            result.fragments += 1
            continue
        try:
            parsed = parse(stmt.text, name)
        except Unparsable as exc:
            parts = _paragraphs(stmt, name)
            if len(parts) > 1:
                pending[:0] = parts  # named-query files: statements separated by comments
                continue
            if pieces and has_holes(stmt.text, name):
                result.fragments += 1  # its real text is only known at run time
                continue
            result.statements += 1
            finding = _parse_error(sql, stmt, exc, name, location, map_positions, strict)
            if PARSE_ERROR in wanted and not _suppressed(PARSE_ERROR, stmt.suppressed):
                result.findings.append(finding)
            continue
        if pieces and parsed.tree is not None and _hole_as_alias(parsed.tree, parsed.rewrite):
            result.fragments += 1
            continue
        result.statements += 1
        for hit, rule_id in _run(parsed, name, wanted, stmt.suppressed):
            result.findings.append(
                _finding(rule_id, hit, parsed.rewrite, sql, stmt, name, location, map_positions)
            )
    return result


_PARAGRAPH = re.compile(r"\n[ \t]*\n(?=[ \t]*(?:--|/\*))")


def _paragraphs(stmt: SourceStatement, dialect: str) -> list[SourceStatement]:
    """A statement that does not parse, cut where a blank line is followed by a comment: files
    of named queries (aiosql's ``-- name: …``) separate statements that way, without ``;``."""
    cuts = [m.end() for m in _PARAGRAPH.finditer(stmt.text)]
    if not cuts:
        return []
    out: list[SourceStatement] = []
    for begin, end in zip([0, *cuts], [*cuts, len(stmt.text)], strict=True):
        for part in split_statements(stmt.text[begin:end], dialect):
            offset = begin + part.offset
            line, column = _position(stmt.text, offset)
            out.append(
                SourceStatement(
                    part.text,
                    stmt.offset + offset,
                    stmt.line + line - 1,
                    column if line > 1 else stmt.column + column - 1,
                    stmt.suppressed | part.suppressed,
                )
            )
    return out


def _run(
    parsed: Parsed, dialect: str, wanted: set[str], ignored: frozenset[str]
) -> Iterable[tuple[Hit, str]]:
    if parsed.tree is None:
        return
    dialect = parsed.dialect or dialect
    if reads_only_catalog(parsed.tree, dialect):
        return  # the database's own catalog: small by construction, nothing to advise
    ctx = Ctx(dialect, parsed.rewrite.text)
    for rule in RULE_LIST:
        if rule.id in wanted and not _suppressed(rule.id, ignored):
            for hit in rule.check(parsed.tree, ctx):
                yield hit, rule.id


def _finding(
    rule_id: str,
    hit: Hit,
    rewrite: Rewrite,
    sql: str,
    stmt: SourceStatement,
    dialect: str,
    location: Location | None,
    map_positions: bool,
) -> Finding:
    fp = fingerprint(stmt.text, dialect)
    return Finding(
        rule_id,
        RULES[rule_id].severity,
        rewrite.unmark(hit.message),
        rewrite.unmark(hit.fix),
        rewrite.unmark_value(hit.evidence),
        fingerprint=fp.id,
        sql=fp.normalized,
        location=_locate(location, sql, stmt, _at(stmt, hit.node, rewrite), map_positions),
    )


def _parse_error(
    sql: str,
    stmt: SourceStatement,
    exc: Unparsable,
    dialect: str,
    location: Location | None,
    map_positions: bool,
    strict: bool,
) -> Finding:
    at = (exc.line, exc.column) if exc.line and exc.column else None
    # With a file location the finding points at the line itself.
    shown = at and (strict or location is None or not map_positions)
    where = f" (line {exc.line}, column {exc.column})" if shown else ""
    message, fix = PARSE_ERROR_RULE.check(exc.reason + where, dialect)
    if strict:
        raise LintParseError(message)
    fp = fingerprint(stmt.text, dialect)
    return Finding(
        PARSE_ERROR,
        PARSE_ERROR_RULE.severity,
        message,
        fix,
        {"dialect": dialect, "reason": exc.reason},
        fingerprint=fp.id,
        sql=fp.normalized,
        location=_locate(location, sql, stmt, at, map_positions),
    )
