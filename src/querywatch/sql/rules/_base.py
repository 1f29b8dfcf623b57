"""What every lint rule shares: the check's signature, its context, and helpers over the tree.

A check reads sqlglot's syntax tree, never table or column names, and yields :class:`Hit`; the
runner (``querywatch.sql.lint``) turns hits into findings with the rule's severity, a location
and messages in the user's own text (format holes shown as written, never as markers).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from querywatch.findings import Rule
from querywatch.sql.fingerprint import fingerprint
from querywatch.sql.lint_parse import HOLE


@dataclass(frozen=True, slots=True)
class Hit:
    """One place a rule fired: the node (for the position), one-line message and fix."""

    node: exp.Expr
    message: str
    fix: str
    evidence: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Ctx:
    """``text`` is the statement as parsed (parameters in one form, holes as markers)."""

    dialect: str
    text: str


LintCheck = Callable[[exp.Expr, Ctx], Iterator[Hit]]
LintRule = Rule[LintCheck]

COMPARISONS = (
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


def unparen(node: exp.Expr) -> exp.Expr:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def is_hole(col: exp.Column) -> bool:
    """A format hole (``{x}`` in source) parsed as a column: it stands for a value or a name
    only known at run time, not for a column."""
    return col.name.lower().startswith(HOLE) and not col.table


def walk(node: exp.Expr, into_queries: bool = True) -> Iterator[exp.Expr]:
    """Every node under ``node`` (iterative: deep OR chains and long IN lists are fine)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        for child in current.iter_expressions():
            if into_queries or not isinstance(child, exp.Subquery | exp.Select):
                stack.append(child)


def columns(node: exp.Expr) -> list[exp.Column]:
    """Columns of ``node``, not those inside subqueries (another scope), nor holes."""
    return [
        n
        for n in walk(node, into_queries=False)
        if isinstance(n, exp.Column) and not isinstance(n.this, exp.Star) and not is_hole(n)
    ]


def shape(node: exp.Expr, dialect: str) -> str:
    """Readable text of a node with literals replaced (messages never carry values)."""
    text = fingerprint(node.sql(dialect=dialect), dialect).normalized
    return text if len(text) <= 80 else text[:77] + "..."


_CATALOG_SCHEMAS = frozenset(
    {"pg_catalog", "information_schema", "mysql", "performance_schema", "sys"}
)
_SQLITE_CATALOG = re.compile(
    r"sqlite_(?:temp_)?(?:master|schema)\Z|sqlite_sequence\Z|sqlite_stat\d"
)


def reads_only_catalog(tree: exp.Expr, dialect: str) -> bool:
    """True when every table the statement reads is the database's own system catalog
    (``sqlite_master``, ``pg_catalog``/``pg_*``, ``information_schema``…) or a table function:
    catalogs are small by construction, so index and paging advice does not apply."""
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    tables = [t for t in tree.find_all(exp.Table) if isinstance(t.this, exp.Identifier)]
    if isinstance(tree, exp.Update | exp.Delete | exp.Insert | exp.Create):
        return False
    for table in tables:
        name, schema = table.name.lower(), table.db.lower()
        if name in ctes and not schema:
            continue
        if schema in _CATALOG_SCHEMAS:
            continue
        if dialect == "sqlite" and _SQLITE_CATALOG.match(name):
            continue
        if dialect == "postgres" and name.startswith("pg_") and not schema:
            continue
        return False
    return True
