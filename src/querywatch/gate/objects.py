"""Objects a test run made itself: tables, views, indexes and triggers it created, dropped,
renamed or altered, and SQL functions it registered on a connection.

A test suite creates temporary tables (``dogs_new_<hex>`` while sqlite-utils rebuilds a table),
drops them again, and registers functions (``conn.create_function``) that live only on its own
connection. ``querywatch check`` EXPLAINs after the run, on a fresh session, where those objects
are gone; the statements that used them are *not checkable* (counted in one note), not "could
not check" findings. Only an EXPLAIN error that names such an object counts: a table the run never
touched that is missing is still reported.
"""

from __future__ import annotations

import re

from querywatch.sql.fingerprint import generated_name

_NAME = r'(?:"[^"]*"|`[^`]*`|\[[^\]]*\]|[^\s(;,."`\[]+)'
_QUALIFIED = rf"{_NAME}(?:\.{_NAME})?"
_DDL = re.compile(
    r"(?:create|drop|alter)\s+(?:or\s+replace\s+)?"
    r"(?:(?:temp|temporary|unique|virtual|materialized|unlogged|global|local)\s+)*"
    r"(?:table|view|index|trigger|function|procedure|aggregate|sequence|type)\s+"
    r"(?:if\s+(?:not\s+)?exists\s+)?(?:concurrently\s+)?"
    rf"({_QUALIFIED})",
    re.I,
)
_RENAME_TO = re.compile(rf"\brename\s+to\s+({_QUALIFIED})", re.I)
_VERBS = ("create", "drop", "alter")

# What EXPLAIN says when an object is missing, per dialect (the name is group 1).
_MISSING = [
    re.compile(p, re.I)
    for p in (
        r"no such (?:table|view|index|function|collation sequence|module): (\S+)",
        r"table (\S+) has no column named",
        r"no such column: ([^\s.]+)\.\S+",
        r'relation "([^"]+)" does not exist',
        r'column "[^"]+" of relation "([^"]+)" does not exist',
        r"function ([^\s(]+)\(.*\) does not exist",
        r'type "([^"]+)" does not exist',
    )
]


def object_key(name: str, *, schema: bool = True) -> str:
    """One spelling of a name for matching: unquoted, without its schema (unless ``schema`` is
    False: a dot may be part of the name), lower-cased, with generated tokens as in fingerprints
    (``"Dogs_New_9f3a…"`` and ``dogs_new_0c1d…`` match)."""
    last = name.strip()
    if schema:
        last = re.split(r'\.(?=(?:[^"]*"[^"]*")*[^"]*$)', last)[-1]
    if len(last) >= 2 and last[0] + last[-1] in ('""', "``", "[]"):
        last = last[1:-1]
    return generated_name(last).lower()


def ddl_objects(sql: str) -> list[str]:
    """Keys of the objects a DDL statement creates, drops, renames or alters (empty for other
    statements)."""
    text = sql.lstrip()
    if not text[:6].lower().startswith(_VERBS):
        return []
    out = [object_key(m[1]) for m in _DDL.finditer(text)]
    out += [object_key(m[1]) for m in _RENAME_TO.finditer(text)]
    return out


def missing_objects(reason: str) -> set[str]:
    """Keys the object an EXPLAIN error says is missing may have (``main.t`` is ``t``, but
    ``http://example.com`` is one name), or none when the error names no object."""
    for pattern in _MISSING:
        m = pattern.search(reason)
        if m is not None:
            return {object_key(m[1]), object_key(m[1], schema=False)}
    return set()
