"""``select-star``: advice (info) — ``SELECT *`` reads every column and changes shape when a
column is added. Never fails the CI gate. Not reported where ``*`` means nothing (``EXISTS``) or
the rows are copied into a table."""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp

from querywatch.findings import Rule
from querywatch.sql.rules._base import Ctx, Hit, LintRule


def _in_exists(select: exp.Select) -> bool:
    parent = select.parent
    while isinstance(parent, exp.Subquery | exp.Paren):
        parent = parent.parent
    return isinstance(parent, exp.Exists)


def _into_table(select: exp.Select) -> bool:
    """True when the rows go into a table (CREATE TABLE … AS SELECT *, INSERT … SELECT *): a
    copy needs every column, and the application reads none of them."""
    child: exp.Expr = select
    parent = select.parent
    while isinstance(parent, exp.Subquery | exp.Paren | exp.Union):
        child, parent = parent, parent.parent
    return isinstance(parent, exp.Create | exp.Insert) and parent.expression is child


def check(tree: exp.Expr, ctx: Ctx) -> Iterator[Hit]:
    for select in tree.find_all(exp.Select):
        if _in_exists(select) or _into_table(select):
            continue
        for e in select.expressions:
            if isinstance(e, exp.Star) or (
                isinstance(e, exp.Column) and isinstance(e.this, exp.Star)
            ):
                yield Hit(
                    e,
                    "SELECT * reads every column: more I/O and network, no index-only scans, and "
                    "results change shape when a column is added",
                    "name the columns the code uses",
                    {"projection": e.sql(dialect=ctx.dialect)},
                )
                break


RULE: LintRule = Rule(
    "select-star", "info", "SELECT * reads every column and breaks when columns change.", check
)
