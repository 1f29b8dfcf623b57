"""May EXPLAIN ANALYZE run this statement? Only if every function it can run is immutable or stable.

EXPLAIN ANALYZE executes the statement. querywatch runs it in a read-only transaction that is
always rolled back, which undoes writes to tables, but a function can act outside the
transaction: ``pg_stat_statements_reset()`` empties the statistics, ``pg_terminate_backend()``
ends a session, ``pg_advisory_lock()`` holds a lock for the whole session, ``dblink_exec()``
writes to another database. PostgreSQL labels each function (``pg_proc.provolatile``):
IMMUTABLE and STABLE functions may not modify anything (the server runs their queries
read-only); VOLATILE ones may do anything. So ANALYZE is allowed only when every function the
statement can reach is immutable or stable; otherwise the refusal names the function.

What is checked, each conservatively (a name that could mean a volatile function blocks):

- function calls written in the statement (``f(``, ``schema.f(``, ``"F"(``) outside strings
  and comments, including LIMIT/OFFSET expressions, which EXPLAIN does not print;
- function calls in the plain ``EXPLAIN (VERBOSE)`` plan, which shows what the statement expands
  to: view bodies, row-level security policies, inlined SQL function bodies, default arguments;
- views the statement names, and the views they read: every function and operator their
  definitions use, exactly, from ``pg_depend``;
- an unqualified name stands for every overload visible on the search_path, a qualified one for
  every overload in that schema: argument types are not resolved again here, so if any
  candidate is volatile the statement is refused;
- operators: the function behind every operator (``pg_operator.oprcode``) spelled with a symbol
  the statement or the plan uses;
- aggregates: also their transition, final, combine and (de)serialization functions, since
  PostgreSQL labels an aggregate immutable whatever those are;
- casts: cast functions (``pg_cast``) and input/output functions of any type whose name the
  statement or plan mentions.

Not checked: functions the planner picks by type without naming them (sort comparison, hashing,
GREATEST/LEAST comparison) and domain CHECK constraints. PostgreSQL ships none of them volatile;
a volatile one would be a user-defined operator class or domain.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from querywatch.pg import Connection, tagged
from querywatch.plans.sqltext import (
    _DOLLAR_TAG,
    _is_escape_string,
    _skip_block_comment,
    _skip_quoted,
)

_OPERATOR_CHARS = frozenset("+-*/<>=~!@#%^&|`?")


@dataclass(slots=True)
class Mentions:
    """What a piece of SQL text names: called functions, words, operator symbols."""

    calls: set[str] = field(default_factory=set)  # unqualified function names
    qualified_calls: set[tuple[str, str]] = field(default_factory=set)  # (schema, name)
    names: set[str] = field(default_factory=set)  # every identifier (views, types)
    qualified_names: set[tuple[str, str]] = field(default_factory=set)
    operators: set[str] = field(default_factory=set)

    def add(self, sql: str) -> None:
        tokens = list(_tokens(sql))
        for i, (kind, value) in enumerate(tokens):
            if kind == "op":
                # Every prefix too: "a<-1" lexes as "<" and "-1" in PostgreSQL, not "<-".
                self.operators.update(value[:k] for k in range(1, len(value) + 1))
                continue
            if kind != "ident":
                continue
            self.names.add(value)
            schema = tokens[i - 2][1] if i >= 2 and tokens[i - 1] == ("punct", ".") else None
            if schema is not None and tokens[i - 2][0] == "ident":
                self.qualified_names.add((schema, value))
            called = i + 1 < len(tokens) and tokens[i + 1] == ("punct", "(")
            if called and schema is not None and tokens[i - 2][0] == "ident":
                self.qualified_calls.add((schema, value))
            elif called:
                self.calls.add(value)


@dataclass(frozen=True, slots=True)
class Blocker:
    """A volatile function the statement can run: ``function`` is its signature (``f(int)``)."""

    function: str
    via: str | None = None  # how the statement reaches it, when not by calling it by name

    @property
    def name(self) -> str:
        return self.function.split("(", 1)[0]

    def __str__(self) -> str:
        return self.function + ("" if self.via is None else f" ({self.via})")


def volatile_calls(conn: Connection, sql: str, plan: Any) -> list[Blocker]:
    """The volatile functions ``sql`` can run; empty when EXPLAIN ANALYZE may run it.

    ``plan`` is the statement's plain ``EXPLAIN (VERBOSE, FORMAT JSON)`` document.
    """
    seen = Mentions()
    seen.add(sql)
    for text in _plan_strings(plan):
        seen.add(text)
    params = {
        "calls": sorted(seen.calls),
        "call_schemas": [s for s, _ in sorted(seen.qualified_calls)],
        "call_names": [n for _, n in sorted(seen.qualified_calls)],
        "names": sorted(seen.names),
        "rel_schemas": [s for s, _ in sorted(seen.qualified_names)],
        "rel_names": [n for _, n in sorted(seen.qualified_names)],
        "operators": sorted(seen.operators),
    }
    rows = conn.execute(tagged(_VOLATILE_SQL), params).fetchall()
    blockers = [Blocker(str(function), via) for function, via in rows]
    for typname, formatted, function in conn.execute(tagged(_VOLATILE_TYPES_SQL)).fetchall():
        if typname in seen.names or set(str(formatted).split()) <= seen.names:
            blockers.append(Blocker(str(function), f"converts type {formatted}"))
    return list(dict.fromkeys(blockers))


# Every candidate function (named, behind a named operator, used by a named view), then the
# volatile ones and the volatile support functions of candidate aggregates.
_VOLATILE_SQL = """
WITH RECURSIVE
views(oid) AS (
    SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'v'
      AND ((c.relname = ANY(%(names)s::text[]) AND pg_table_is_visible(c.oid))
           OR (n.nspname, c.relname) IN (
               SELECT * FROM unnest(%(rel_schemas)s::text[], %(rel_names)s::text[])))
    UNION
    SELECT d.refobjid FROM views v
    JOIN pg_rewrite r ON r.ev_class = v.oid
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                    AND d.refclassid = 'pg_class'::regclass
    JOIN pg_class c ON c.oid = d.refobjid AND c.relkind = 'v'
),
view_deps AS (
    SELECT d.refclassid, d.refobjid, v.oid::regclass::text AS view FROM views v
    JOIN pg_rewrite r ON r.ev_class = v.oid
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
),
candidates(oid, via) AS (
    SELECT p.oid,
           CASE WHEN EXISTS (SELECT FROM pg_proc q WHERE q.proname = p.proname
                             AND q.pronamespace = p.pronamespace AND q.provolatile <> 'v')
           THEN 'if that is the overload called: another ' || p.proname || ' is not volatile'
           END
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE (p.proname = ANY(%(calls)s::text[]) AND pg_function_is_visible(p.oid))
       OR (n.nspname, p.proname) IN (
           SELECT * FROM unnest(%(call_schemas)s::text[], %(call_names)s::text[]))
    UNION
    SELECT o.oprcode::oid, 'operator ' || o.oprname FROM pg_operator o
    WHERE o.oprname = ANY(%(operators)s::text[])
    UNION
    SELECT d.refobjid, 'in view ' || d.view FROM view_deps d
    WHERE d.refclassid = 'pg_proc'::regclass
    UNION
    SELECT o.oprcode::oid, 'operator ' || o.oprname || ' in view ' || d.view FROM view_deps d
    JOIN pg_operator o ON o.oid = d.refobjid WHERE d.refclassid = 'pg_operator'::regclass
)
SELECT p.oid::regprocedure::text, c.via FROM candidates c JOIN pg_proc p ON p.oid = c.oid
WHERE p.provolatile = 'v'
UNION
SELECT s.oid::regprocedure::text,
       concat_ws(' ', 'support of aggregate ' || c.oid::regprocedure::text, c.via)
FROM candidates c
JOIN pg_aggregate a ON a.aggfnoid = c.oid
JOIN pg_proc s ON s.oid IN (a.aggtransfn, a.aggfinalfn, a.aggcombinefn, a.aggserialfn,
                            a.aggdeserialfn, a.aggmtransfn, a.aggminvtransfn, a.aggmfinalfn)
WHERE s.provolatile = 'v'
ORDER BY 1, 2
"""

# Types whose conversion (a cast function, or text input/output for a cast through text) is
# volatile: none in a stock PostgreSQL; listed so a statement that names one is refused.
_VOLATILE_TYPES_SQL = """
SELECT t.typname::text, format_type(t.oid, NULL), p.oid::regprocedure::text
FROM pg_type t JOIN pg_proc p ON p.oid IN (t.typinput, t.typoutput) WHERE p.provolatile = 'v'
UNION
SELECT t.typname::text, format_type(t.oid, NULL), p.oid::regprocedure::text
FROM pg_cast k JOIN pg_type t ON t.oid IN (k.casttarget, k.castsource)
JOIN pg_proc p ON p.oid = k.castfunc WHERE p.provolatile = 'v'
ORDER BY 1, 3
"""


def _plan_strings(value: Any) -> Iterator[str]:
    """Every string in an EXPLAIN (FORMAT JSON) document but the Settings (not expressions)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _plan_strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key != "Settings":
                yield from _plan_strings(item)


def _tokens(sql: str) -> Iterator[tuple[str, str]]:
    """("ident", name) with unquoted names lower-cased, ("op", symbols), ("punct", char).

    Strings, dollar-quoted bodies, comments and numbers are skipped: a function name inside a
    string literal is not a call.
    """
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch.isspace():
            i += 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
        elif sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
        elif ch == "'":
            i = _skip_quoted(sql, i, "'", backslash=_is_escape_string(sql, i))
        elif ch == '"':
            j = _skip_quoted(sql, i, '"', backslash=False)
            yield "ident", sql[i + 1 : j - 1].replace('""', '"')
            i = j
        elif ch == "$" and (m := _DOLLAR_TAG.match(sql, i)):
            end = sql.find(m.group(0), m.end())
            i = n if end < 0 else end + len(m.group(0))
        elif ch.isalpha() or ch == "_":
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] in "_$"):
                j += 1
            word = sql[i:j]
            if j < n and sql[j] == "'" and word.lower() in ("e", "x", "b", "n"):
                i = j  # E'…', X'…': the prefix of a string, not a name
                continue
            yield "ident", word.lower()
            i = j
        elif ch.isdigit() or ch == "$":
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] in "._"):
                j += 1
            i = j
        elif ch == ":" and sql.startswith("::", i):
            yield "punct", "::"
            i += 2
        elif ch in _OPERATOR_CHARS:
            j = i + 1
            while j < n and sql[j] in _OPERATOR_CHARS and not sql.startswith(("--", "/*"), j):
                j += 1
            yield "op", sql[i:j]
            i = j
        else:
            yield "punct", ch
            i += 1
